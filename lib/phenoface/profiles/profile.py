"""The Profile type: a disease's weighted facial HPO terms per age band, with their evidence.

A profile holds one term table per band: ``"all"`` (``age=None``) and each name in
:data:`phenoface.ages.AGE_BANDS`. Every term carries its fused weight in [0, 1] and the evidence
behind it (source, value, detail); the weight is recomputed from the evidence by
:func:`phenoface.profiles.fusion.fuse` whenever evidence is added, so llm and image evidence join
later without changing the type. JSON round-trips exactly and is validated against ``SCHEMA``.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

from .. import hpo
from ..ages import AGE_BANDS, age_band
from ..config import atomic_path
from .fusion import DEFAULT_WEIGHTS, fuse

ALL = "all"
BANDS = (ALL, *AGE_BANDS)
SCHEMA_VERSION = 1
NO_EVIDENCE = "no facial evidence"

# Used only when phenoface.cohort (which owns the vocabulary) cannot be imported: the ids named in
# DESIGN.md, so rendering and tests still work.
_FALLBACK_VOCAB = {
    "HP:0000316": "Hypertelorism", "HP:0000582": "Upslanted palpebral fissure",
    "HP:0000494": "Downslanted palpebral fissures", "HP:0000286": "Epicanthus", "HP:0012368": "Flat face",
    "HP:0005280": "Depressed nasal bridge", "HP:0000343": "Long philtrum", "HP:0000319": "Smooth philtrum",
    "HP:0000154": "Wide mouth", "HP:0000160": "Narrow mouth", "HP:0000158": "Macroglossia",
    "HP:0010808": "Protruding tongue", "HP:0000664": "Synophrys", "HP:0000252": "Microcephaly",
    "HP:0000520": "Proptosis", "HP:0000272": "Malar flattening", "HP:0000293": "Full cheeks",
    "HP:0000179": "Thick lower lip vermilion",
}

_TERM = {
    "type": "object",
    "required": ["weight", "evidence"],
    "additionalProperties": False,
    "properties": {
        "weight": {"type": "number", "minimum": 0, "maximum": 1},
        "evidence": {"type": "array", "minItems": 1, "items": {
            "type": "object", "required": ["source", "value"], "additionalProperties": False,
            "properties": {"source": {"type": "string", "minLength": 1},
                           "value": {"type": "number", "minimum": 0, "maximum": 1},
                           "detail": {"type": "string"}}}},
    },
}
SCHEMA: dict = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "phenoface disease profile",
    "type": "object",
    "required": ["schema_version", "disease_id", "disease_name", "version", "bands", "fusion_weights"],
    "additionalProperties": False,
    "properties": {
        "schema_version": {"const": SCHEMA_VERSION},
        "disease_id": {"type": "string", "pattern": r"^[A-Za-z][A-Za-z0-9_.-]*:\S+$"},
        "disease_name": {"type": "string"},
        "version": {"type": "string", "minLength": 1},
        "fusion_weights": {"type": "object", "additionalProperties": {"type": "number", "minimum": 0, "maximum": 1}},
        "term_names": {"type": "object", "additionalProperties": {"type": "string"}},
        "notes": {"type": "array", "items": {"type": "string"}},
        "bands": {
            "type": "object", "required": [ALL], "additionalProperties": False,
            "properties": {b: {"type": "object", "additionalProperties": False,
                               "patternProperties": {r"^HP:\d{7}$": _TERM}} for b in BANDS},
        },
    },
}


class ProfileSchemaError(ValueError):
    """A profile JSON that does not match ``SCHEMA`` (the message says where)."""


@dataclass(frozen=True)
class Evidence:
    source: str  # kg_frequency | kg_completion | llm | images | ...
    value: float  # in [0, 1]
    detail: str = ""


@dataclass(frozen=True)
class TermEntry:
    weight: float
    evidence: tuple[Evidence, ...]


def renderable_vocabulary() -> dict[str, str]:
    """The cohort's renderable HPO terms (id -> name)."""
    try:
        from ..cohort import TERMS
    except Exception:  # the cohort module is optional for profiles
        return dict(_FALLBACK_VOCAB)
    return dict(TERMS)


@dataclass
class Profile:
    disease_id: str
    disease_name: str
    bands: dict[str, dict[str, TermEntry]]
    version: str
    fusion_weights: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    term_names: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    # -- construction ---------------------------------------------------------------------------
    @classmethod
    def from_evidence(cls, disease_id: str, disease_name: str,
                      evidence: Mapping[str, Mapping[str, Mapping[str, Evidence]]], version: str,
                      weights: Mapping[str, float] | None = None, term_names: Mapping[str, str] | None = None,
                      notes=()) -> "Profile":
        """``evidence[band][source][hpo_id] = Evidence``; bands missing from it copy ``"all"``."""
        weights = dict(DEFAULT_WEIGHTS if weights is None else weights)
        bands = {}
        for band in BANDS:
            per_source = evidence.get(band, evidence.get(ALL, {}))
            fused = fuse({s: {t: e.value for t, e in v.items()} for s, v in per_source.items()}, weights)
            entries = {}
            for term, w in fused.items():
                ev = tuple(per_source[s][term] for s in sorted(per_source) if term in per_source[s])
                entries[term] = TermEntry(float(w), ev)
            bands[band] = dict(sorted(entries.items(), key=lambda kv: (-kv[1].weight, kv[0])))
        return cls(disease_id, disease_name, bands, version, weights, dict(term_names or {}), list(notes))

    def evidence(self, band: str = ALL) -> dict[str, dict[str, Evidence]]:
        out: dict[str, dict[str, Evidence]] = {}
        for term, entry in self.bands[band].items():
            for ev in entry.evidence:
                out.setdefault(ev.source, {})[term] = ev
        return out

    def with_evidence(self, source: str, values: Mapping, weights: Mapping[str, float] | None = None,
                      detail: str = "", term_names: Mapping[str, str] | None = None,
                      version: str | None = None) -> "Profile":
        """A new profile with ``source`` evidence added (replacing earlier evidence of that source)
        and weights re-fused. ``values`` is ``{hpo_id: value}`` for every band, or
        ``{band: {hpo_id: value}}`` per band."""
        per_band = values if values and set(values) <= set(BANDS) else {b: values for b in BANDS}
        evidence = {}
        for band in BANDS:
            ev = {s: dict(v) for s, v in self.evidence(band).items() if s != source}
            new = per_band.get(band, per_band.get(ALL, {}))
            if new:
                ev[source] = {t: Evidence(source, float(v), detail) for t, v in new.items()}
            evidence[band] = ev
        w = {**self.fusion_weights, **(weights or {})}
        names = {**self.term_names, **(term_names or {})}
        notes = [n for n in self.notes if n != NO_EVIDENCE]
        return Profile.from_evidence(self.disease_id, self.disease_name, evidence, version or self.version, w,
                                     names, notes)

    # -- reading --------------------------------------------------------------------------------
    def band_of(self, age=None) -> str:
        if age is None:
            return ALL
        if isinstance(age, str):
            if age not in self.bands:
                raise ValueError(f"unknown age band {age!r}; use one of {', '.join(BANDS)} or an age in years")
            return age
        band = age_band(float(age))
        return band if band in self.bands else ALL

    def terms(self, age=None) -> dict[str, float]:
        """HPO id -> weight in [0, 1] (facial terms only, strongest first) for an age in years,
        a band name, or all ages (None)."""
        return {t: e.weight for t, e in self.bands[self.band_of(age)].items() if e.weight > 0}

    def name_of(self, hpo_id: str) -> str:
        if hpo_id in self.term_names:
            return self.term_names[hpo_id]
        vocab = renderable_vocabulary()
        if hpo_id in vocab:
            return vocab[hpo_id]
        try:
                return hpo.term_names().get(hpo_id, hpo_id)
        except Exception:
            return hpo_id

    def renderable(self, age=None) -> dict[str, float]:
        """The profile mapped onto the cohort's renderable vocabulary: a vocabulary term's weight is
        the largest weight of itself or any profile term below it in HPO (the cohort counts
        annotations to descendants the same way)."""
        vocab = renderable_vocabulary()
        terms = self.terms(age)
        out: dict[str, float] = {}
        for term, w in terms.items():
            if term in vocab:
                hits = {term}
            else:
                try:
                                hits = set(hpo.ancestors(term)) & set(vocab)
                except Exception:
                    hits = set()
            for v in hits:
                out[v] = max(out.get(v, 0.0), w)
        return dict(sorted(out.items(), key=lambda kv: (-kv[1], kv[0])))

    def renderable_terms(self, age=None) -> list[str]:
        """Which of this profile's own terms the cohort can render (directly in its vocabulary)."""
        vocab = renderable_vocabulary()
        return [t for t in self.terms(age) if t in vocab]

    def to_text(self, age=None, renderable_only: bool = False, max_terms: int = 8, min_weight: float = 0.05,
                with_disease: bool = False, mark_renderable: bool = False) -> str:
        """Prompt text: ``"a 6-year-old child with upslanted palpebral fissures, a flat face ..."``.

        ``renderable_only`` keeps the cohort's vocabulary (mapped as in :meth:`renderable`);
        ``mark_renderable`` wraps renderable terms in [brackets]. A profile without facial terms
        says so ("no facial evidence") instead of returning a bare subject."""
        subject = _subject(age)
        terms = self.renderable(age) if renderable_only else self.terms(age)
        chosen = [t for t, w in terms.items() if w >= min_weight][:max_terms]
        disease = f" with {self.disease_name}" if with_disease else ""
        if not chosen:
            where = " among the renderable terms" if renderable_only and self.terms(age) else ""
            return f"{subject}{disease}, {NO_EVIDENCE}{where} for {self.disease_name} ({self.disease_id})"
        vocab = renderable_vocabulary()
        phrases = []
        for t in chosen:
            p = term_phrase(vocab[t] if renderable_only and t in vocab else self.name_of(t))
            phrases.append(f"[{p}]" if mark_renderable and t in vocab else p)
        listed = phrases[0] if len(phrases) == 1 else ", ".join(phrases[:-1]) + " and " + phrases[-1]
        return f"{subject}{disease} with {listed}" if not with_disease else f"{subject}{disease}: {listed}"

    @property
    def has_facial_evidence(self) -> bool:
        return bool(self.terms(None))

    # -- serialisation --------------------------------------------------------------------------
    def to_dict(self) -> dict:
        bands = {b: {t: {"weight": e.weight, "evidence": [
            {"source": ev.source, "value": ev.value, **({"detail": ev.detail} if ev.detail else {})}
            for ev in e.evidence]} for t, e in entries.items()} for b, entries in self.bands.items()}
        used = {t for entries in self.bands.values() for t in entries}
        return {"schema_version": SCHEMA_VERSION, "disease_id": self.disease_id, "disease_name": self.disease_name,
                "version": self.version, "fusion_weights": dict(self.fusion_weights),
                "term_names": {t: n for t, n in sorted(self.term_names.items()) if t in used},
                "notes": list(self.notes), "bands": bands}

    def to_json(self, indent: int | None = None) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls, data: Mapping) -> "Profile":
        validate(data)
        bands = {b: {t: TermEntry(float(e["weight"]), tuple(Evidence(ev["source"], float(ev["value"]),
                                                                     ev.get("detail", "")) for ev in e["evidence"]))
                     for t, e in entries.items()} for b, entries in data["bands"].items()}
        return cls(data["disease_id"], data["disease_name"], bands, data["version"],
                   {k: float(v) for k, v in data["fusion_weights"].items()}, dict(data.get("term_names", {})),
                   list(data.get("notes", [])))

    @classmethod
    def from_json(cls, text: str | bytes) -> "Profile":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ProfileSchemaError(f"profile is not valid JSON: {err}") from None
        return cls.from_dict(data)

    def save(self, path: str | os.PathLike) -> Path:
        with atomic_path(path) as tmp:
            tmp.write_text(self.to_json(indent=1), encoding="utf-8")
        return Path(path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Profile":
        return cls.from_json(Path(path).read_text(encoding="utf-8"))


def validate(data: Any) -> None:
    """Raise ProfileSchemaError naming the first place ``data`` breaks ``SCHEMA``."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(SCHEMA)
    errors = sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))
    if errors:
        err = errors[0]
        where = "/".join(str(p) for p in err.absolute_path) or "(top level)"
        raise ProfileSchemaError(f"invalid profile at {where}: {err.message}"
                                 + (f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""))


def save_profiles(profiles, path: str | os.PathLike) -> Path:
    """Several profiles in one JSON file (a list), written atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps([p.to_dict() for p in profiles], indent=1), encoding="utf-8")
    return Path(path)


def load_profiles(path: str | os.PathLike) -> list[Profile]:
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data, list):
        raise ProfileSchemaError(f"{path} must hold a JSON list of profiles")
    return [Profile.from_dict(d) for d in data]


# -- text helpers -------------------------------------------------------------------------------
_BAND_NOUN = {"infant": "infant", "child": "child", "adolescent": "adolescent", "adult": "adult"}
# Count nouns take "a"; these plural on purpose (faces have two of them).
_COUNT_NOUNS = {"face", "bridge", "philtrum", "mouth", "nose", "tongue", "forehead", "palate", "chin", "jaw",
                "vermilion", "lip", "head", "neck", "skull", "mandible", "maxilla", "midface", "tip", "columella",
                "cleft", "uvula", "nasal", "profile", "appearance"}
_PLURAL = {"fissure": "fissures", "eye": "eyes", "ear": "ears", "nodule": "nodules", "eyebrow": "eyebrows",
           "cheek": "cheeks", "nare": "nares", "eyelash": "eyelashes", "tooth": "teeth", "crease": "creases"}


def _article(word: str) -> str:
    w = word.lower()
    vowel = w[:1] in "aeiou" or w.startswith(("8", "11-", "18-")) or (w[:1] == "8")
    return "an" if vowel and not w.startswith(("uni", "eu", "one")) else "a"


def _subject(age) -> str:
    if age is None:
        return "a person"
    if isinstance(age, str):
        noun = _BAND_NOUN.get(age, "person")
        return f"{_article(noun)} {noun}"
    age = float(age)
    if math.isnan(age):
        return "a person"
    noun = _BAND_NOUN.get(age_band(age), "person")
    if age < 1.0:
        months = max(1, int(round(age * 12)))
        desc = f"{months}-month-old"
    else:
        desc = f"{int(age)}-year-old"
    return f"{_article(desc)} {desc} {noun}"


def term_phrase(name: str) -> str:
    """HPO term name -> a phrase for a prompt: "Flat face" -> "a flat face", "Upslanted
    palpebral fissure" -> "upslanted palpebral fissures", "Hypertelorism" -> "hypertelorism"."""
    words = name.split()
    if not words:
        return name
    words = [w if (len(w) > 1 and w.isupper()) else w.lower() for w in words]
    last = words[-1]
    if last in _PLURAL:
        words[-1] = _PLURAL[last]
        return " ".join(words)
    phrase = " ".join(words)
    if last in _COUNT_NOUNS:
        return f"{_article(phrase)} {phrase}"
    return phrase


def profile_matrix(profiles, age=None, renderable_only: bool = False):
    """Diseases x terms weight table (pandas), e.g. for a heat-map; missing terms are 0."""
    import pandas as pd

    rows = {f"{p.disease_name} ({p.disease_id})": (p.renderable(age) if renderable_only else p.terms(age))
            for p in profiles}
    df = pd.DataFrame(rows).T.fillna(0.0)
    names = {}
    for p in profiles:
        for t in df.columns:
            names.setdefault(t, renderable_vocabulary().get(t) if renderable_only else None)
            if names[t] is None and t in p.term_names:
                names[t] = p.term_names[t]
    df.columns = [f"{names.get(t) or t}" for t in df.columns]
    return df.loc[:, df.max().sort_values(ascending=False).index]
