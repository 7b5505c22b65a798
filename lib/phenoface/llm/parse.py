"""Parsing model replies against the prompt schemas: strict JSON first, then a bounded salvage of the
complete items in a truncated or slightly broken reply; anything else is malformed.

``status`` is ``"ok"`` (valid JSON of the asked form), ``"salvaged"`` (complete items recovered from
a broken reply) or ``"malformed"`` (nothing usable; the caller retries, then records a failure).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from ..ages import AGE_BANDS
from .prompts import TYPICAL

MAX_PHRASE = 80
_FENCE = re.compile(r"```(?:json)?\s*(.*?)(?:```|$)", re.S)
_ITEM = re.compile(r"\{[^{}\[\]]*\}")
_STRING = re.compile(r'"((?:[^"\\]|\\.)*)"')
_FEATURE_VALUE = re.compile(r'"feature"\s*:\s*"((?:[^"\\]|\\.)*)"')


@dataclass
class Parsed:
    status: str  # ok | salvaged | malformed
    items: list = field(default_factory=list)
    problem: str = ""


def _json_candidates(text: str) -> list[str]:
    text = text.strip()
    out = [m.group(1) for m in _FENCE.finditer(text)] + [text]
    start = min((i for i in (text.find("{"), text.find("[")) if i >= 0), default=-1)
    if start > 0:
        out.append(text[start:])
    return out


def _load(text: str):
    for cand in _json_candidates(text):
        cand = cand.strip()
        try:
            return json.JSONDecoder().raw_decode(cand)[0]
        except ValueError:
            continue
    return None


def clean_phrase(value) -> str | None:
    if not isinstance(value, str):
        return None
    phrase = " ".join(value.replace("\n", " ").split()).strip(" .;,-*•")
    if not phrase or len(phrase) > MAX_PHRASE or phrase.startswith("<") or not re.search(r"[A-Za-z]", phrase):
        return None
    return phrase


_SPLIT = re.compile(r"\s*(?:,|;|/|\band\b|\bwith\b|\bor\b)\s*", re.I)


def split_phrase(value) -> list[str]:
    """One cleaned phrase per finding: "large face with a wide forehead, and wide eyes" ->
    ["large face", "a wide forehead", "wide eyes"] (each is grounded on its own)."""
    if not isinstance(value, str):
        return []
    parts = [clean_phrase(p) for p in _SPLIT.split(value)]
    return [p for p in parts if p and len(p) > 2]


def _typical(value) -> str:
    text = str(value or "").strip().lower()
    return text if text in TYPICAL else ""


def _feature_items(obj, band: str) -> list[dict]:
    if isinstance(obj, str):
        raw, given_band, typical = obj, "", ""
    elif isinstance(obj, dict):
        raw = obj.get("feature") or obj.get("name") or obj.get("phrase")
        given_band = str(obj.get("age_band") or "").strip().lower()
        typical = _typical(obj.get("typical"))
    else:
        return []
    if not isinstance(raw, str) or len(raw) > 4 * MAX_PHRASE:
        return []
    return [{"phrase": p, "age_band": band, "band_given": given_band if given_band in AGE_BANDS else "",
             "typical": typical} for p in split_phrase(raw)]


def _dedupe(items: list[dict]) -> list[dict]:
    seen, out = set(), []
    for it in items:
        k = it["phrase"].lower()
        if k not in seen:
            seen.add(k)
            out.append(it)
    return out


def parse_features(text: str, band: str, max_items: int = 10) -> Parsed:
    """Reply to :func:`~phenoface.llm.prompts.feature_messages` -> feature items for ``band``."""
    data = _load(text or "")
    if isinstance(data, dict) and isinstance(data.get("features"), list):
        items = _dedupe([i for o in data["features"] for i in _feature_items(o, band)])
        if items:
            return Parsed("ok", items[:max_items])
        return Parsed("malformed", problem="the features list holds no usable phrase")
    if isinstance(data, list):
        items = _dedupe([i for o in data for i in _feature_items(o, band)])
        if items:
            return Parsed("salvaged", items[:max_items], "a bare list instead of {\"features\": [...]}")
    # Salvage complete {"feature": ...} objects from a truncated / broken reply.
    found = []
    for m in _ITEM.finditer(text or ""):
        try:
            obj = json.loads(m.group(0))
        except ValueError:
            continue
        if isinstance(obj, dict) and "feature" in obj:
            found += _feature_items(obj, band)
    if not found:  # unclosed objects: the complete "feature": "..." strings
        found = [i for v in _FEATURE_VALUE.findall(text or "") for i in _feature_items(v, band)]
    found = _dedupe(found)
    if found:
        return Parsed("salvaged", found[:max_items], "broken or truncated JSON; complete items kept")
    return Parsed("malformed", problem="no JSON object with a features list" if data is None else
                  f"JSON of the wrong form ({type(data).__name__})")


def parse_negatives(text: str, max_items: int = 10) -> Parsed:
    """Reply to :func:`~phenoface.llm.prompts.negative_messages` -> items ``{"kind", "phrase"}``
    with kind ``distinguishing`` or ``absent``."""
    data = _load(text or "")
    items = []
    if isinstance(data, dict):
        for kind in ("distinguishing", "absent"):
            values = data.get(kind)
            values = values if isinstance(values, list) else [values] if isinstance(values, str) else []
            for v in values:
                raw = v if isinstance(v, str) else v.get("feature") if isinstance(v, dict) else None
                items += [{"kind": kind, "phrase": p} for p in split_phrase(raw)]
        if items:
            return Parsed("ok", _dedupe_kind(items, max_items))
        return Parsed("malformed", problem="neither list holds a usable phrase")
    # Salvage: the strings after each key in a truncated reply.
    for kind in ("distinguishing", "absent"):
        m = re.search(rf'"{kind}"\s*:\s*\[(.*?)(?:\]|$)', text or "", re.S)
        if m:
            for raw in _STRING.findall(m.group(1)):
                items += [{"kind": kind, "phrase": p} for p in split_phrase(raw)]
    if items:
        return Parsed("salvaged", _dedupe_kind(items, max_items), "broken or truncated JSON; complete strings kept")
    return Parsed("malformed", problem="no JSON object with distinguishing / absent lists")


def _dedupe_kind(items: list[dict], max_items: int) -> list[dict]:
    seen, out, count = set(), [], {}
    for it in items:
        k = (it["kind"], it["phrase"].lower())
        if k in seen or count.get(it["kind"], 0) >= max_items:
            continue
        seen.add(k)
        count[it["kind"]] = count.get(it["kind"], 0) + 1
        out.append(it)
    return out
