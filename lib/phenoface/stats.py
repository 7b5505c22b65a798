"""Intervals and partial correlations shared by every step that reports a figure.

    >>> from phenoface.stats import bootstrap_ci, spearman_partial
    >>> mean, (lo, hi) = bootstrap_ci(per_face_correct)                 # mean and 95 % percentile interval
    >>> bootstrap_ci(per_face_correct, groups=disease_ids)              # resample diseases, not faces
    >>> spearman_partial(score, severity, age)                          # Spearman of score and severity given age

scipy's ``stats.bootstrap`` resamples one flat sample; several of our figures need the cluster
(disease) as the resampling unit and NaN-aware statistics, hence this small wrapper.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from scipy import stats as _st

LEVEL = 0.95
N_BOOT = 2000


def bootstrap_ci(values, stat: Callable = np.mean, groups=None, n_boot: int = N_BOOT, level: float = LEVEL,
                 seed: int = 0) -> tuple[float, tuple[float, float]]:
    """``stat(values)`` and its percentile bootstrap interval.

    ``values``: 1-D array (NaN counts as a value: pass 0/1 for failures rather than NaN, so failures stay in the
    denominator). ``groups``: resample whole groups (e.g. diseases) instead of single values. Fewer than two
    values (or groups) give a NaN interval."""
    v = np.asarray(values, float).ravel()
    point = float(stat(v)) if len(v) else float("nan")
    rng = np.random.default_rng(seed)
    if groups is None:
        if len(v) < 2:
            return point, (float("nan"), float("nan"))
        idx = rng.integers(0, len(v), (n_boot, len(v)))
        boots = np.array([stat(v[i]) for i in idx], float)
    else:
        g = np.asarray(groups).ravel()
        if len(g) != len(v):
            raise ValueError(f"groups has {len(g)} entries for {len(v)} values")
        labels = np.unique(g)
        if len(labels) < 2:
            return point, (float("nan"), float("nan"))
        members = [np.flatnonzero(g == lab) for lab in labels]
        boots = np.empty(n_boot)
        for b in range(n_boot):
            pick = rng.integers(0, len(labels), len(labels))
            boots[b] = stat(v[np.concatenate([members[k] for k in pick])])
    boots = boots[np.isfinite(boots)]
    if not len(boots):
        return point, (float("nan"), float("nan"))
    a = (1 - level) / 2
    lo, hi = np.quantile(boots, [a, 1 - a])
    return point, (float(lo), float(hi))


def bootstrap_stat_ci(fn: Callable[[np.ndarray], float], n: int, groups=None, n_boot: int = 500,
                      level: float = LEVEL, seed: int = 0) -> tuple[float, tuple[float, float]]:
    """Interval of any statistic computed from row indices ``fn(idx)`` (e.g. a Spearman over faces, a
    precision over diseases). ``groups`` as in :func:`bootstrap_ci`."""
    point = float(fn(np.arange(n)))
    rng = np.random.default_rng(seed)
    if groups is None:
        draws = (rng.integers(0, n, n) for _ in range(n_boot))
    else:
        g = np.asarray(groups).ravel()
        labels = np.unique(g)
        members = [np.flatnonzero(g == lab) for lab in labels]
        draws = (np.concatenate([members[k] for k in rng.integers(0, len(labels), len(labels))])
                 for _ in range(n_boot))
    boots = np.array([fn(i) for i in draws], float)
    boots = boots[np.isfinite(boots)]
    if len(boots) < 2:
        return point, (float("nan"), float("nan"))
    a = (1 - level) / 2
    lo, hi = np.quantile(boots, [a, 1 - a])
    return point, (float(lo), float(hi))


def pearson(a, b) -> float:
    """Pearson r of two paired samples; NaN when either side is constant or any value is missing."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if len(a) < 2 or not (np.isfinite(a).all() and np.isfinite(b).all()) or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def spearman(a, b) -> float:
    """Spearman rho of two paired samples; NaN when fewer than 3 pairs, either side is constant, or any value is
    missing (a missing measurement is never silently dropped from a series)."""
    from scipy.stats import spearmanr

    a, b = np.asarray(a, float), np.asarray(b, float)
    if len(a) < 3 or not (np.isfinite(a).all() and np.isfinite(b).all()) or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(spearmanr(a, b).statistic)


def spearman_partial(x, y, z) -> float:
    """Spearman correlation of ``x`` and ``y`` with ``z`` partialled out (ranks, then the partial Pearson
    formula). NaN when fewer than four complete rows or a variable is constant."""
    x, y, z = (np.asarray(a, float).ravel() for a in (x, y, z))
    ok = np.isfinite(x) & np.isfinite(y) & np.isfinite(z)
    if ok.sum() < 4:
        return float("nan")
    rx, ry, rz = (_st.rankdata(a[ok]) for a in (x, y, z))
    if min(np.std(rx), np.std(ry), np.std(rz)) == 0:
        return float("nan")
    c = np.corrcoef([rx, ry, rz])
    rxy, rxz, ryz = c[0, 1], c[0, 2], c[1, 2]
    den = np.sqrt(max((1 - rxz ** 2) * (1 - ryz ** 2), 1e-12))
    return float((rxy - rxz * ryz) / den)


def fmt_ci(point: float, ci, digits: int = 2) -> str:
    """'0.71 [0.66, 0.76]' for reports."""
    lo, hi = ci
    return f"{point:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def order_accuracy(score, truth, groups=None) -> float:
    """Share of pairs within each group (all pairs when ``groups`` is None) whose ``score`` order matches
    their ``truth`` order; pairs tied in truth are skipped, ties in score count one half, and a NaN score
    counts as wrongly ordered (a face the instrument could not read stays in the denominator)."""
    s, t = np.asarray(score, float).ravel(), np.asarray(truth, float).ravel()
    g = np.zeros(len(s)) if groups is None else np.asarray(groups).ravel()
    right = total = 0.0
    for lab in np.unique(g):
        i = np.flatnonzero(g == lab)
        ds = s[i][:, None] - s[i][None, :]
        dt = t[i][:, None] - t[i][None, :]
        pair = dt > 0
        total += pair.sum()
        right += np.where(np.isnan(ds), 0.0, (ds > 0) + 0.5 * (ds == 0))[pair].sum()
    return float(right / total) if total else float("nan")
