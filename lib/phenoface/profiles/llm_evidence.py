"""Notebook 03's last step: grounded LLM claims join the KG profiles as ``llm`` evidence.

``phenoface.llm`` never imports ``profiles`` (it turns replies into ``{disease: {band: {hpo_id: value}}}``); this
module takes those values into the Profile type, with the ``llm`` trust weight of :mod:`.fusion`.
"""

from __future__ import annotations

import dataclasses

import pandas as pd

from .fusion import DEFAULT_WEIGHTS
from .profile import BANDS, Profile


def with_llm_evidence(profiles: list[Profile], evidence: dict, asked, model_id: str, detail: str,
                      llm_error: str = "") -> list[Profile]:
    """Each profile with its ``llm`` evidence (``evidence[disease_id][band] = {hpo_id: value}``) fused in; a profile
    without any gets a note why (the LLM failed, gave no usable reply, or was not asked about the disease)."""
    out = []
    for p in profiles:
        if p.disease_id in evidence:
            values = {b: evidence[p.disease_id].get(b, {}) for b in BANDS}
            q = p.with_evidence("llm", values, weights={"llm": DEFAULT_WEIGHTS["llm"]}, detail=detail,
                                version=f"{p.version}+llm-{model_id}")
        else:
            why = (f"LLM evidence absent: {llm_error.splitlines()[0]}" if llm_error else
                   "LLM evidence absent: no usable reply" if p.disease_id in asked else
                   "LLM not asked about this disease")
            q = dataclasses.replace(p, notes=[*p.notes, why])
        out.append(q)
    return out


def llm_weight_change(before: list[Profile], after: list[Profile], evidence: dict) -> tuple[Profile, pd.DataFrame]:
    """The first profile that gained LLM evidence (else the first profile) and, for all ages, each term's KG
    weight before, the LLM's value and the fused weight after."""
    first = next((q for q in after if q.disease_id in evidence), after[0])
    old = {p.disease_id: p for p in before}[first.disease_id]
    rows = [{"term": first.name_of(t), "hpo_id": t,
             "KG weight": old.bands["all"].get(t).weight if t in old.bands["all"] else 0.0,
             "llm value": next((ev.value for ev in e.evidence if ev.source == "llm"), None), "fused weight": e.weight}
            for t, e in first.bands["all"].items()]
    return first, pd.DataFrame(rows)
