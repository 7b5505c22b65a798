"""Figures of merit for severity and progression, each with its trivial baseline beside it.

The cohort's severity is the disease course at the patient's age times a per-patient factor, so age alone
predicts part of it. Every severity figure therefore comes with:

- the **age-only baseline**: the within-disease Spearman of age and true severity, as if age were the score;
- the **age-partialled** Spearman of the score (:func:`phenoface.stats.spearman_partial`): what the score
  knows about severity beyond age;
- for progression (one person over age, where age orders severity perfectly by construction), a
  **control on unaffected people**: their score ordered over age should be about 0.5 (a score that reads
  age instead of the disease would order them too).

Face-less images stay in every denominator: a missing score is a wrong order in :func:`order_accuracy`,
and in a Spearman it takes the group's median score (tied in the middle: it carries no information but
keeps its row), counted in ``n_missing``.

    >>> severity_table(scores, test.table["severity"], test.table["age"], test.table["disease_id"])
    >>> progression_table(scores, series_table)          # order accuracy per disease and overall
    >>> age_order_accuracy({d: scores_d}, unaffected_series)   # ~0.5 for a score that ignores age
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd

from ..cohort import EXCLUSIVE, SEVERITY_FACTOR, TERM_IDS, face_table, render_table, severity_course, true_frequencies
from ..stats import spearman, spearman_partial

__all__ = ["severity_spearman", "severity_table", "order_accuracy", "progression_table", "progression_series",
           "age_order_accuracy"]


def _filled(score: np.ndarray) -> np.ndarray:
    """Missing scores take the median of the present ones (all missing: 0), so the row stays."""
    ok = np.isfinite(score)
    fill = float(np.median(score[ok])) if ok.any() else 0.0
    return np.where(ok, score, fill)




def severity_spearman(scores, truth, groups) -> pd.DataFrame:
    """Spearman rho between scores and true severity per group (disease), plus rows ``pooled`` (all
    rows together) and ``mean`` (the unweighted mean of the per-group rhos). Missing (NaN) scores stay
    in: they take the group's median score (see the module docstring) and are counted in ``n_missing``."""
    return severity_table(scores, truth, None, groups)[["n", "n_missing", "spearman"]]


def severity_table(scores, truth, age, groups) -> pd.DataFrame:
    """Per group (disease): n, n_missing, ``spearman`` (score vs true severity), ``spearman_age_only`` (age vs
    true severity: the trivial predictor) and ``spearman_partial_age`` (score vs severity with age
    partialled out); rows ``pooled`` (all faces together) and ``mean`` (unweighted mean over groups).
    ``age=None`` leaves the two age columns NaN."""

    s = np.asarray(scores, float)
    t = np.asarray(truth, float)
    a = np.full(len(s), np.nan) if age is None else np.asarray(age, float)
    g = np.asarray(groups).astype(str)
    if not (len(s) == len(t) == len(a) == len(g)):
        raise ValueError("scores, truth, age and groups differ in length")
    rows = []
    for k in sorted(set(g)):
        m = g == k
        sf = _filled(s[m])
        rows.append({"group": k, "n": int(m.sum()), "n_missing": int((~np.isfinite(s[m])).sum()),
                     "spearman": spearman(sf, t[m]), "spearman_age_only": spearman(a[m], t[m]),
                     "spearman_partial_age": spearman_partial(sf, t[m], a[m]) if age is not None else np.nan})
    per = pd.DataFrame(rows)
    sf = np.concatenate([_filled(s[g == k]) for k in sorted(set(g))]) if len(g) else s
    order = np.concatenate([np.flatnonzero(g == k) for k in sorted(set(g))]) if len(g) else np.arange(0)
    rows.append({"group": "pooled", "n": int(len(s)), "n_missing": int((~np.isfinite(s)).sum()),
                 "spearman": spearman(sf, t[order]), "spearman_age_only": spearman(a, t),
                 "spearman_partial_age": spearman_partial(sf, t[order], a[order]) if age is not None else np.nan})
    mean = {"group": "mean", "n": int(len(s)), "n_missing": int((~np.isfinite(s)).sum())}
    for c in ("spearman", "spearman_age_only", "spearman_partial_age"):
        mean[c] = float(per[c].mean()) if len(per) and per[c].notna().any() else float("nan")
    rows.append(mean)
    return pd.DataFrame(rows).set_index("group")
def order_accuracy(scores, truth, groups=None, min_gap: float = 0.0) -> float:
    """Fraction of pairs (within each group: one person's series) whose scores are in the same
    order as the truth. Pairs with true difference <= ``min_gap`` are skipped; tied scores count
    half; a NaN score counts as a wrong order (every pair stays in the denominator)."""
    s = np.asarray(scores, float)
    t = np.asarray(truth, float)
    g = np.zeros(len(s), int) if groups is None else pd.factorize(np.asarray(groups).astype(str))[0]
    good, total = 0.0, 0
    for k in np.unique(g):
        idx = np.where(g == k)[0]
        i, j = np.triu_indices(len(idx), 1)
        dt = t[idx[j]] - t[idx[i]]
        keep = np.abs(dt) > min_gap
        if not keep.any():
            continue
        ds = (s[idx[j]] - s[idx[i]])[keep]
        dt = dt[keep]
        credit = np.where(~np.isfinite(ds), 0.0, np.where(ds == 0, 0.5, (np.sign(ds) == np.sign(dt)).astype(float)))
        good += credit.sum()
        total += len(credit)
    return float(good / total) if total else float("nan")


def progression_table(scores, table: pd.DataFrame, by: str = "severity", min_gap: float = 0.02) -> pd.DataFrame:
    """Order accuracy per disease (and ``all``) for a progression table with disease_id and series."""
    rows = []
    s = np.asarray(scores, float)
    for d, part in table.groupby("disease_id", sort=True):
        rows.append({"disease_id": d, "series": int(part["series"].nunique()), "faces": int(len(part)),
                     "order_accuracy": order_accuracy(s[part.index], part[by], part["series"], min_gap)})
    rows.append({"disease_id": "all", "series": int(table["series"].nunique()), "faces": int(len(table)),
                 "order_accuracy": order_accuracy(s, table[by], table["series"], min_gap)})
    return pd.DataFrame(rows).set_index("disease_id")


def draw_person(disease: str, rng: np.random.Generator, truth: pd.DataFrame):
    """One new person with ``disease`` as the cohort draws one: identity, sex, which terms are expressed (from
    the truth frequencies, mutually exclusive terms resolved), the per-term jitter U(0.8, 1) and the patient
    factor (``cohort.SEVERITY_FACTOR``). Returns (identity, sex, present, jitter, factor)."""

    probs = truth.loc[disease, TERM_IDS].to_numpy(float)
    identity = int(rng.integers(0, 2 ** 31 - 1))
    sex = str(rng.choice(["F", "M"]))
    present = rng.random(len(TERM_IDS)) < probs
    for a, b in EXCLUSIVE:
        ia, ib = TERM_IDS.index(a), TERM_IDS.index(b)
        if present[ia] and present[ib]:
            present[ib if probs[ia] >= probs[ib] else ia] = False
    jitter = rng.uniform(0.8, 1.0, len(TERM_IDS))
    factor = float(rng.uniform(*SEVERITY_FACTOR))
    return identity, sex, present, jitter, factor


def progression_series(diseases, n_identities: int = 4, ages=(2.0, 4.0, 7.0, 11.0, 16.0, 25.0, 40.0),
                       by: str = "age", severities=(0.2, 0.4, 0.6, 0.8, 1.0), fixed_age: float = 25.0,
                       seed: int = 0, size: int = 64) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """Render series of the same person: ``by="age"`` follows each disease's severity course over
    ``ages``; ``by="severity"`` holds age at ``fixed_age`` and steps through ``severities``.

    Per person the set of expressed terms (drawn once from the cohort truth frequencies), the
    per-term jitter U(0.8, 1) and the patient factor (``cohort.SEVERITY_FACTOR``) stay fixed along the series, as in
    :meth:`phenoface.cohort.Cohort.generate`. Returns (images, landmarks, table) with columns series,
    identity, disease_id, age, sex, severity and the term amounts.
    """

    rng = np.random.default_rng(seed)
    truth, _ = true_frequencies()
    frames, series = [], 0
    for d in [str(x) for x in diseases]:
        for _ in range(n_identities):
            identity, sex, present, jitter, factor = draw_person(d, rng, truth)
            steps = ages if by == "age" else severities
            for step in steps:
                age = float(step) if by == "age" else float(fixed_age)
                sev = float(severity_course(d, age) * factor) if by == "age" else float(step)
                terms = {t: float(sev * j) for t, p, j in zip(TERM_IDS, present, jitter) if p}
                row = face_table(identity, age, sex, terms)
                row["disease_id"] = d
                row["severity"] = sev
                row["series"] = series
                frames.append(row)
            series += 1
    if not frames:
        raise ValueError("no diseases given")
    table = pd.concat(frames, ignore_index=True)
    images, landmarks, _ = render_table(table, size)
    cols = ["series", "identity", "disease_id", "age", "sex", "severity", *TERM_IDS]
    return images, landmarks, table[cols]


def age_order_accuracy(scores: Mapping[str, np.ndarray], table: pd.DataFrame, min_gap: float = 0.5) -> pd.Series:
    """Control for progression: how well each score orders series over **age** (pairs more than ``min_gap``
    years apart). On unaffected people scored under each disease (``scores[disease] = scores of table's
    rows``) a score that reads the face, not the age, gives about 0.5; the ``mean`` entry is the figure."""
    out = {str(d): order_accuracy(s, table["age"], table["series"], min_gap) for d, s in scores.items()}
    res = pd.Series(out, dtype=float)
    res["mean"] = float(res.mean()) if len(res) else float("nan")
    return res
