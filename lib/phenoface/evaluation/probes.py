"""Memorisation that can fail: probes beyond the detector's design, an ROC, a threshold set on validation.

The detector of :mod:`phenoface.evaluation.privacy` was designed for exact copies, pixel noise and shifts
of one pixel. A generator that memorises a face may return it moved, cropped, mirrored, softened or
aged, so the probes here are training faces changed in those ways:

- ``exact``, ``noise`` (sigma 3 grey levels + 3 % brightness): inside the design, the sanity line;
- ``shift`` (2-4 px in x and y), ``crop90`` (the central 90 %, resized back), ``flip`` (mirrored),
  ``blur`` (Gaussian sigma 0.8 px): outside it;
- ``other_age``: the same identity re-rendered at an age at least 10 years away (same term amounts):
  the hardest, and arguably not a copy at all.

Each candidate's score is the detector's distance (``report.table["score"]``: 0 = a copy). The threshold
flags the closest 1 % of **validation** faces (fresh people, never in training); on **test** it gives the
true-positive rate per probe kind, the ROC AUC of probes vs test faces and the share of test faces flagged.

    >>> probes, src, kind = make_probes(train.images, train.table, per_kind=32, seed=0)
    >>> thr = threshold_at_fpr(val_scores, 0.01)
    >>> roc_summary(probe_scores, test_scores, thr)     # {"auc", "tpr", "fpr", "curve": (fpr, tpr)}
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..cohort import render_table
from ..stats import bootstrap_ci
from .perturb import blur_images, crop_resize, flip_images, noise_images, shift_images

__all__ = ["PROBE_KINDS", "make_probes", "other_age", "threshold_at_fpr", "roc_summary", "detection_by_kind"]

PROBE_KINDS = ("exact", "noise", "shift", "crop90", "flip", "blur", "other_age")


def other_age(age, rng) -> np.ndarray:
    """An age at least 10 years away within 2-60: children and teenagers older, adults younger."""
    age = np.asarray(age, float)
    gap = rng.uniform(10.0, 25.0, len(age))
    return np.where(age < 25.0, np.minimum(age + gap, 60.0), np.maximum(age - gap, 2.0))


def make_probes(images, table: pd.DataFrame, per_kind: int = 16, seed: int = 0, kinds=PROBE_KINDS,
                exclude=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``per_kind`` probes of each kind, each from a different training face (drawn without replacement
    across kinds, skipping indices in ``exclude``). ``table`` is the training cohort's table (rows aligned
    with ``images``), needed only for ``other_age``. Returns (images, source index, kind)."""

    images = np.asarray(images)
    rng = np.random.default_rng(seed)
    unknown = [k for k in kinds if k not in PROBE_KINDS]
    if unknown:
        raise ValueError(f"unknown probe kinds {unknown}; known: {', '.join(PROBE_KINDS)}")
    pool = np.setdiff1d(np.arange(len(images)), np.asarray([] if exclude is None else exclude, int))
    need = per_kind * len(kinds)
    if need > len(pool):
        raise ValueError(f"{need} probes need as many distinct training faces, only {len(pool)} available")
    src_all = rng.choice(pool, size=need, replace=False)
    outs, srcs, kind_col = [], [], []
    size = images.shape[1]
    for j, kind in enumerate(kinds):
        src = src_all[j * per_kind:(j + 1) * per_kind]
        base = images[src]
        if kind == "exact":
            out = base.copy()
        elif kind == "noise":
            out = noise_images(base.astype(np.float32) * rng.uniform(0.97, 1.03, (len(src), 1, 1, 1)), 3.0,
                               seed=seed + j)
        elif kind == "shift":
            out = np.empty_like(base)
            for i in range(len(src)):
                dx, dy = (int(rng.integers(2, 5)) * int(rng.choice([-1, 1])) for _ in range(2))
                out[i] = shift_images(base[i:i + 1], dx, dy)[0]
        elif kind == "crop90":
            out = crop_resize(base, 0.9)
        elif kind == "flip":
            out = flip_images(base)
        elif kind == "blur":
            out = blur_images(base, 0.8)
        else:  # other_age: the training row re-rendered at another age
            rows = table.iloc[src].copy()
            rows["age"] = other_age(rows["age"].to_numpy(float), rng)
            out = render_table(rows.reset_index(drop=True), size)[0]
        outs.append(out)
        srcs.append(src)
        kind_col += [kind] * len(src)
    return np.concatenate(outs), np.concatenate(srcs).astype(np.int64), np.array(kind_col)


def threshold_at_fpr(heldout_scores, fpr: float = 0.01) -> float:
    """The largest threshold that flags (score < threshold) at most ``fpr`` of these held-out faces."""
    s = np.sort(np.asarray(heldout_scores, float))
    k = int(np.floor(fpr * len(s)))
    if len(s) == 0:
        return float("nan")
    return float(s[k]) if k < len(s) else float(np.inf)


def roc_summary(probe_scores, heldout_scores, threshold: float) -> dict:
    """ROC of probes (positives) vs held-out faces (negatives) on the detector's distance (smaller = more
    copy-like): AUC, and the TPR / FPR of flagging score < ``threshold``."""
    from sklearn.metrics import roc_auc_score, roc_curve

    p = np.asarray(probe_scores, float)
    h = np.asarray(heldout_scores, float)
    y = np.r_[np.ones(len(p)), np.zeros(len(h))]
    s = -np.r_[p, h]
    fpr, tpr, _ = roc_curve(y, s)
    return {"auc": float(roc_auc_score(y, s)), "tpr": float((p < threshold).mean()) if len(p) else float("nan"),
            "fpr": float((h < threshold).mean()) if len(h) else float("nan"), "threshold": float(threshold),
            "curve": (fpr, tpr), "n_probes": int(len(p)), "n_heldout": int(len(h))}


def detection_by_kind(probe_scores, kinds, threshold: float, seed: int = 0) -> pd.DataFrame:
    """Per probe kind: probes, detected share (score < threshold) with its 95 % bootstrap interval, median
    score."""

    s = np.asarray(probe_scores, float)
    kinds = np.asarray(kinds).astype(str)
    rows = []
    for k in pd.unique(kinds):
        hit = (s[kinds == k] < threshold).astype(float)
        rate, (lo, hi) = bootstrap_ci(hit, seed=seed)
        rows.append({"kind": k, "probes": int(len(hit)), "detected": rate, "ci_low": lo, "ci_high": hi,
                     "median_score": float(np.median(s[kinds == k]))})
    return pd.DataFrame(rows).set_index("kind")
