"""Fusing evidence sources into one weight per term, with explicit per-source trust weights.

    fused(t) = mean_s(w_s * v_s(t)) / mean_s(w_s)  *  max_s w_s      over sources s with a value for t

i.e. a trust-weighted mean of the values, shrunk by the trust of the most trusted source that
speaks about the term: a term only a weak source proposes (KG completion, w = 0.25) stays low,
while a term the annotations give at 0.9 (w = 1) keeps 0.9; image evidence at 0.3 next to it
(w = 1) pulls it to 0.6. A source silent on a term has no say about it. New sources (``llm``,
``images``) need only a weight here — the Profile type does not change.
"""

from __future__ import annotations

import math
from typing import Mapping

DEFAULT_WEIGHTS: dict[str, float] = {
    "kg_frequency": 1.0,  # HPO annotation frequency: curated
    "kg_completion": 0.25,  # embedding proposals: a guess from similar diseases (weak; see notebook 02)
    "llm": 0.5,  # a language model's claim, grounded to HPO ids
    "images": 1.0,  # measured on faces
}


def fuse(evidence: Mapping[str, Mapping[str, float]], weights: Mapping[str, float] | None = None
         ) -> dict[str, float]:
    """``evidence[source][hpo_id] = value in [0, 1]`` -> ``{hpo_id: fused weight in [0, 1]}``."""
    w = dict(DEFAULT_WEIGHTS if weights is None else weights)
    for source in evidence:
        if source not in w:
            raise KeyError(f"no fusion weight for evidence source {source!r}; weights given: {sorted(w)}")
    for source, value in w.items():
        if not (0.0 <= float(value) <= 1.0):
            raise ValueError(f"fusion weight for {source!r} must be in [0, 1], got {value}")
    num: dict[str, float] = {}
    den: dict[str, float] = {}
    top: dict[str, float] = {}
    for source, values in evidence.items():
        ws = float(w[source])
        for term, v in values.items():
            v = float(v)
            if math.isnan(v):
                continue
            if not (0.0 <= v <= 1.0):
                raise ValueError(f"{source} value for {term} must be in [0, 1], got {v}")
            num[term] = num.get(term, 0.0) + ws * v
            den[term] = den.get(term, 0.0) + ws
            top[term] = max(top.get(term, 0.0), ws)
    return {t: (num[t] / den[t]) * top[t] if den[t] > 0 else 0.0 for t in sorted(num)}
