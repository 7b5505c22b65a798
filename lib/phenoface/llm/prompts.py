"""Prompts: facial features of a disease at an age band, and generative negative mining.

Every prompt asks for JSON matching a small schema (``FEATURE_SCHEMA`` / ``NEGATIVE_SCHEMA``); a
retry repeats the conversation with the malformed reply and a reminder of the schema.
"""

from __future__ import annotations

from ..ages import AGE_BANDS

# Short on purpose: with "describes the facial features (dysmorphology) of ..." SmolLM2-135M answered
# every disease with the single feature "dysmorphology".
SYSTEM = "You are a clinical geneticist. Answer in JSON only."
TYPICAL = {"very common": 0.895, "common": 0.545, "occasional": 0.17}  # HPO frequency band midpoints
BAND_WORDS = {"infant": "an infant", "child": "a child", "adolescent": "an adolescent", "adult": "an adult"}

FEATURE_SCHEMA = {
    "type": "object", "required": ["features"],
    "properties": {"features": {"type": "array", "items": {
        "type": "object", "required": ["feature"],
        "properties": {"feature": {"type": "string", "description": "short phrase, e.g. 'wide-set eyes'"},
                       "age_band": {"enum": list(AGE_BANDS)},
                       "typical": {"enum": list(TYPICAL)}}}}},
}
NEGATIVE_SCHEMA = {
    "type": "object", "required": ["distinguishing", "absent"],
    "properties": {"distinguishing": {"type": "array", "items": {"type": "string"}},
                   "absent": {"type": "array", "items": {"type": "string"}}},
}


def band_text(band: str) -> str:
    if band not in AGE_BANDS:
        raise ValueError(f"unknown age band {band!r}; use one of {', '.join(AGE_BANDS)}")
    lo, hi = AGE_BANDS[band]
    span = f"{lo:g}-{hi:g} years" if hi < 100 else f"{lo:g} years or older"
    return f"{BAND_WORDS[band]} ({span})"


def feature_messages(disease_name: str, band: str, n_features: int = 5) -> list[dict]:
    """Chat messages asking for the facial features of ``disease_name`` at ``band`` as JSON.

    Worded for small models: SmolLM2-135M answered in prose to a longer question and copied
    placeholders such as ``<short phrase>``; this form gave JSON most often."""
    example = '{"features": [{"feature": "...", "typical": "very common|common|occasional"}]}'
    user = (f"List the typical facial features of {band_text(band)} with {disease_name}, at most {int(n_features)}. "
            f"Reply only with JSON: {example}")
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]


def negative_messages(disease_name: str, neighbours: list[str], n_features: int = 3) -> list[dict]:
    """Generative negative mining: what sets the disease apart from its nearest diseases in the KG,
    and which facial features it does not have."""
    near = ", ".join(neighbours) if neighbours else "other genetic syndromes"
    example = '{"distinguishing": ["..."], "absent": ["..."]}'
    user = (f"{disease_name} is often confused with {near}. List the facial features that distinguish {disease_name} "
            f"from them, and the facial features {disease_name} does NOT have, at most {int(n_features)} of each. "
            f"Reply only with JSON: {example}")
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]


def retry_messages(messages: list[dict], bad_reply: str, problem: str) -> list[dict]:
    """The question asked afresh, saying what was wrong with the last reply and asking for JSON only.

    The malformed reply is not replayed as an assistant turn: small models then copy it verbatim
    (SmolLM2-135M returned the identical reply every time), so the retry could never succeed."""
    *head, last = messages
    note = (f"\n\nA previous reply could not be used ({problem}). Reply with valid JSON only, in exactly "
            "this form, with real content instead of \"...\", and nothing else.")
    return [*head, {**last, "content": last["content"] + note}]
