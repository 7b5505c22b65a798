"""How good is an edit? Measured from pixels, per edited face:

- **identity kept**, twice: over the whole face, and over the regions *no disease touches* (where the
  cohort's syndromic terms change nothing: hair, ears, background, shoulders). A correct syndromic edit
  lowers whole-face similarity, so the untouched-region figure is the fair one. Both are the cosine of the
  mean-centred pixels of the two images over that region. :func:`identity_calibration` says what the figure
  means: the same measure on renders of the **same person** with and without a disease vs **different
  people** with the same disease (truth known), and how well it tells them apart (AUROC);
- the **move toward the target**: the change in the recogniser's class score (cosine to the target's gallery)
  and whether the target becomes its top-1;
- the **phenotype change** measured by the instrument (``measure_images``) after minus before, and its
  Pearson agreement with the target's profile over the renderable terms;
- on **photos**, where renders' identity truth does not exist, dlib's face descriptor distance
  (:func:`phenoface.datasets.landmarks.dlib_distance`; dlib's own same-person threshold is 0.6).
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd

from ..cohort import render_face, true_frequencies
from ..cohort.terms import TERM_IDS
from ..stats import pearson


@functools.lru_cache(maxsize=4)
def untouched_mask(size: int = 64, identities: int = 8, seed: int = 0, tolerance: float = 2.0) -> np.ndarray:
    """(size, size) bool: pixels that no renderable term changes by more than ``tolerance`` grey levels on
    average, found by rendering people without and with every term at full intensity (one at a time)."""

    rng = np.random.default_rng(seed)
    change = np.zeros((size, size))
    for _ in range(identities):
        ident, sex, age = int(rng.integers(0, 2 ** 31 - 1)), str(rng.choice(["F", "M"])), float(rng.uniform(3, 40))
        base = render_face(ident, age, sex, None, size)[0].astype(float)
        for t in TERM_IDS:
            img = render_face(ident, age, sex, {t: 1.0}, size)[0].astype(float)
            change += np.abs(img - base).mean(-1)
    return change / identities < tolerance  # all terms together move the pixel by less than the tolerance


def region_cosine(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Per pair, the cosine of the mean-centred pixels (all channels) of ``a`` and ``b`` over ``mask``."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        raise ValueError(f"pairs must line up: {a.shape} vs {b.shape}")
    m = np.ones(a.shape[1:3], bool) if mask is None else np.asarray(mask, bool)
    x, y = a[:, m].reshape(len(a), -1), b[:, m].reshape(len(b), -1)
    x, y = x - x.mean(1, keepdims=True), y - y.mean(1, keepdims=True)
    den = np.linalg.norm(x, axis=1) * np.linalg.norm(y, axis=1)
    return np.where(den > 0, (x * y).sum(1) / np.where(den > 0, den, 1), np.nan)


def identity_calibration(diseases, n: int = 48, size: int = 64, seed: int = 0) -> pd.DataFrame:
    """The identity measures on renders with known identity: per pair, ``kind`` 'same person' (one person
    unaffected vs with a disease's terms at severity 1, same age) or 'different people' (two people with the
    same disease's terms, same age and sex), with whole-face and untouched-region cosines."""

    truth, _ = true_frequencies()
    rng = np.random.default_rng([seed, 808])
    mask = untouched_mask(size)
    rows, a_img, b_img = [], [], []
    ds = [d for d in diseases if d in truth.index]
    for i in range(n):
        d = ds[i % len(ds)]
        terms = {t: 1.0 for t in TERM_IDS if rng.random() < truth.loc[d, t]}
        age, sex = float(rng.uniform(3, 40)), str(rng.choice(["F", "M"]))
        p, q = (int(v) for v in rng.integers(0, 2 ** 31 - 1, 2))
        sick = render_face(p, age, sex, terms, size)[0]
        a_img += [render_face(p, age, sex, None, size)[0], render_face(q, age, sex, terms, size)[0]]
        b_img += [sick, sick]
        rows += [{"kind": "same person", "disease_id": d}, {"kind": "different people", "disease_id": d}]
    a, b = np.stack(a_img), np.stack(b_img)
    out = pd.DataFrame(rows)
    out["whole face"] = region_cosine(a, b)
    out["untouched regions"] = region_cosine(a, b, mask)
    return out


def separation_auc(calibration: pd.DataFrame, column: str) -> float:
    """AUROC of ``column`` for telling same-person pairs from different-people pairs (0.5 = no better than chance)."""
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(calibration["kind"] == "same person", calibration[column]))


def edit_scores(inputs: np.ndarray, outputs: np.ndarray, table: pd.DataFrame, recogniser, measured_in: pd.DataFrame,
                measured_out: pd.DataFrame, profiles: dict) -> pd.DataFrame:
    """One row per edit (``table`` from :func:`phenoface.editing.edit`, with ``target``): identity cosines,
    recogniser top-1 and target-score move, phenotype-change agreement with the target's profile
    (``profiles``: {disease: {term: weight}}; NaN for a target without one, e.g. unaffected)."""
    out = table.reset_index(drop=True).copy()
    out["identity (whole face)"] = region_cosine(inputs, outputs)
    out["identity (untouched regions)"] = region_cosine(inputs, outputs, untouched_mask(inputs.shape[1]))
    gallery = recogniser.gallery
    s_in = gallery.class_scores(recogniser.embed(inputs))
    s_out = gallery.class_scores(recogniser.embed(outputs))
    tgt = out["target"].astype(str).to_numpy()
    col = {c: j for j, c in enumerate(s_out.columns)}
    idx = np.array([col.get(t, -1) for t in tgt])
    pick = lambda s: np.where(idx >= 0, s.to_numpy()[np.arange(len(s)), np.maximum(idx, 0)], np.nan)  # noqa: E731
    out["target score before"], out["target score after"] = pick(s_in), pick(s_out)
    out["target score move"] = out["target score after"] - out["target score before"]
    out["target top-1"] = (s_out.columns.to_numpy()[np.nanargmax(s_out.to_numpy(), axis=1)] == tgt).astype(float)
    change = measured_out[TERM_IDS].to_numpy(float) - measured_in[TERM_IDS].to_numpy(float)
    agree = []
    for i, t in enumerate(tgt):
        w = np.array([profiles.get(t, {}).get(term, 0.0) for term in TERM_IDS], float)
        agree.append(pearson(change[i], w))
    out["phenotype change vs profile (Pearson)"] = agree
    return out


DLIB_SAME = 0.6  # dlib's documented threshold: descriptors closer than this are the same person


