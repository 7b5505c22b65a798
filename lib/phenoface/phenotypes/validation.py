"""Controlled checks of a pixel phenotype instrument on faces rendered for the purpose.

Each check takes ``measure``, a callable images -> DataFrame (one column per term), so the same check scores the
pixel instrument, the landmark route, or either on blurred images (``blurred(measure, 0.7)``).

- :func:`term_intensity_spearman`: one identity, one term raised 0 -> 1 at a fixed age; Spearman between the
  requested and the measured intensity, per term (median over identities). Can "more" be read as more?
- :func:`term_intensity_pearson`: different faces with independent, co-occurring terms; Pearson between the true
  and measured intensity per term. Does the absolute scale hold across skin tones, ages and identities?
- :func:`severity_series` + :func:`phenoface.stats.order_accuracy`: one identity at one age shown at increasing
  severity of one disease (its usual terms); does a profile-weighted score order them?

Identities come from ``seed`` (use the test split's seed): new people, never the training cohort's.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd
from scipy import stats as st

from ..cohort import face_table, render_table
from ..cohort.independent import render_independent
from ..cohort.terms import TERM_IDS

LEVELS = np.linspace(0.0, 1.0, 11)


def blur_images(images, sigma: float) -> np.ndarray:
    """uint8 images blurred with a Gaussian of ``sigma`` pixels (what a generator's softness does)."""
    from scipy.ndimage import gaussian_filter

    out = gaussian_filter(np.asarray(images, np.float32), sigma=(0, sigma, sigma, 0), mode="nearest")
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def blurred(measure: Callable, sigma: float) -> Callable:
    """``measure`` applied to images blurred with a Gaussian of ``sigma`` pixels."""
    return lambda images: measure(blur_images(images, sigma))


def _people(n: int, seed: int):
    rng = np.random.default_rng([int(seed), 5])
    return (rng.integers(0, 2 ** 31 - 1, n), np.round(rng.uniform(3, 55, n), 1),
            np.where(rng.random(n) < 0.5, "F", "M"))


def term_intensity_spearman(measure: Callable, identities: int = 3, seed: int = 0, size: int = 64,
                            levels=LEVELS, terms=TERM_IDS) -> pd.DataFrame:
    """Per term: median over identities of Spearman(requested intensity, measured value), with min and max."""
    ids, ages, sexes = _people(identities, seed)
    rows, keys = [], []
    for t in terms:
        for k, (idn, age, sex) in enumerate(zip(ids, ages, sexes)):
            for lv in levels:
                rows.append(face_table(int(idn), float(age), str(sex), {t: float(lv)}))
                keys.append((t, k, float(lv)))
    table = pd.concat(rows, ignore_index=True)
    images, _, _ = render_table(table, size)
    measured = measure(images)
    key = pd.DataFrame(keys, columns=["term", "identity", "level"])
    out = {}
    for t in terms:
        rhos = []
        for k in range(identities):
            m = ((key["term"] == t) & (key["identity"] == k)).to_numpy()
            v = measured.loc[m, t].to_numpy(float)
            v = np.where(np.isfinite(v), v, -np.inf)  # an unreadable face ranks lowest: it stays counted
            rhos.append(st.spearmanr(key.loc[m, "level"], v).statistic if np.ptp(v) > 0 else 0.0)
        out[t] = {"spearman": float(np.median(rhos)), "min": float(np.min(rhos)), "max": float(np.max(rhos))}
    return pd.DataFrame(out).T


def term_intensity_pearson(measure: Callable, n: int = 1024, seed: int = 0, size: int = 64,
                           images=None, table=None) -> pd.DataFrame:
    """Per term: Pearson(true, measured) over ``n`` independent-term renders of new people (or the given ones)."""
    if images is None:
        images, table = render_independent(n, seed=seed, size=size)
    measured = measure(images)
    out = {}
    for t in TERM_IDS:
        truth, v = table[t].to_numpy(float), measured[t].to_numpy(float)
        ok = np.isfinite(v)
        r = np.corrcoef(truth[ok], v[ok])[0, 1] if ok.sum() > 2 and np.std(v[ok]) > 0 else 0.0
        out[t] = {"pearson": float(r) * ok.mean(), "read": float(ok.mean()), "shows": float((truth > 0).mean())}
    return pd.DataFrame(out).T


def severity_series(truth: pd.DataFrame, diseases, identities: int = 4, seed: int = 0, size: int = 64,
                    levels=np.linspace(0.0, 1.0, 6), min_probability: float = 0.3):
    """One identity at one age per series, shown at increasing severity of one disease: the disease's usual terms
    (true probability >= ``min_probability``) all at ``level``. Returns images and a table (disease_id, series,
    severity, age, sex)."""
    ids, ages, sexes = _people(identities * len(diseases), seed)
    rows, meta = [], []
    for j, d in enumerate(diseases):
        usual = [t for t in TERM_IDS if truth.loc[d, t] >= min_probability]
        if not usual:
            raise ValueError(f"{d} has no term with probability >= {min_probability}")
        for k in range(identities):
            i = j * identities + k
            for lv in levels:
                rows.append(face_table(int(ids[i]), float(ages[i]), str(sexes[i]), {t: float(lv) for t in usual}))
                meta.append({"disease_id": d, "series": f"{d}#{k}", "severity": float(lv), "age": float(ages[i]),
                             "sex": str(sexes[i])})
    images, _, _ = render_table(pd.concat(rows, ignore_index=True), size)
    return images, pd.DataFrame(meta)


def profile_score(measured: pd.DataFrame, diseases, weights: dict) -> np.ndarray:
    """Score each face on its own disease's profile: sum of the measured terms weighted by the profile's
    non-negative weights (normalised to sum 1)."""
    out = np.full(len(measured), np.nan)
    for i, d in enumerate(diseases):
        w = pd.Series(weights.get(d, {}), dtype=float).reindex(TERM_IDS).fillna(0).clip(lower=0)
        if w.sum() > 0:
            out[i] = float((measured.iloc[i][TERM_IDS].to_numpy(float) * (w / w.sum()).to_numpy()).sum())
    return out
