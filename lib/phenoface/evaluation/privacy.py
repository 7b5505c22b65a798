"""Memorisation check: does a batch of (generated) images copy training images?

Three tests per candidate image, against every training image:

1. **exact copy** - byte-identical pixels (same shape and values);
2. **perceptual-hash copy** - 64-bit pHash (signs of the low-frequency DCT of a 32x32 grey image)
   within ``hash_bits`` bits of a training image *and* closer than the ``percentile``-th percentile
   of the train-to-train pHash nearest-neighbour distances: catches re-encoded, brightened or
   lightly noised copies. The second condition matters on the synthetic cohort, whose faces are so
   alike at 32x32 that distinct faces often share a pHash (the train-to-train 1st percentile is
   0-1 bits there, so only hash-identical images count); on real photo sets it is far above
   ``hash_bits`` and the fixed limit decides. (dHash is provided too but not used for flags: on the
   cohort's flat shading its bits flip under slight noise.)
3. **thumbnail near copy** - the Euclidean distance between blurred 8x8 colour thumbnails,
   standardised per image (so brightness / contrast changes cancel), minimised over translations of
   the candidate by up to ``max_shift`` pixels, below the ``percentile``-th percentile of the same
   train-to-train distances: catches re-encoded, noised, re-lit and slightly shifted copies where
   the perceptual hash cannot (see above). Without the shift search a 1-pixel translation escapes:
   distinct cohort faces are as close as a shifted copy of one face;
4. **feature-space near copy** - the cosine distance from the candidate to its nearest training
   image, in a feature space (by default the recogniser backbone), below the ``percentile``-th
   percentile (1st by default) of the *train-to-train* nearest-neighbour distances: closer to a
   training image than almost any training image is to its closest other training image.

A candidate is flagged when any test fires. For ROC curves and a threshold chosen on validation faces,
``table["score"]`` is one continuous distance: the feature and thumbnail distances, each divided by
the median train-to-train nearest-neighbour distance of its test, the smaller of the two
(:mod:`phenoface.evaluation.probes` builds probes beyond this design and scores them). By construction about ``percentile`` % of fresh images
from the training distribution fall below each calibrated threshold by chance, so the expected
false-positive rate is between ``percentile`` % and three times that (tests 2-4 overlap); a rate well
above that, or any exact copy, means memorisation.

    >>> rep = memorisation_check(generated, train_images, features=recogniser)
    >>> detector = MemorisationDetector(train_images, features=recogniser)  # several batches, one calibration
    >>> detector.check(generated).rate, detector.check(other_generated).rate
    >>> rep.rate, rep.table.head(), rep.closest(8)
    >>> figures.memorisation_pairs(rep, generated, train_images)
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pandas as pd

__all__ = ["phash", "dhash", "hamming", "thumbnail", "MemorisationReport", "memorisation_check", "nearest_neighbours",
           "euclidean_nn", "plant_copies", "shift_min_nn"]


def _grey(images, size) -> np.ndarray:
    """uint8 (N, H, W, 3) -> float grey (N, size[1], size[0]) with PIL's antialiased resize."""
    from PIL import Image

    out = np.empty((len(images), size[1], size[0]), np.float32)
    for i, img in enumerate(images):
        out[i] = np.asarray(Image.fromarray(np.asarray(img, np.uint8)).convert("L").resize(size, Image.BILINEAR,
                                                                                          reducing_gap=None),
                            np.float32)
    return out


def phash(images, bits: int = 8) -> np.ndarray:
    """pHash: the signs of the low-frequency 8x8 DCT block of a 32x32 grey image vs its median
    (bool (N, 64))."""
    from scipy.fft import dctn

    g = _grey(images, (4 * bits, 4 * bits))
    d = dctn(g, axes=(1, 2), norm="ortho")[:, :bits, :bits].reshape(len(g), -1)
    return d > np.median(d[:, 1:], axis=1, keepdims=True)  # DC term excluded from the median


def dhash(images, bits: int = 8) -> np.ndarray:
    """dHash: whether each pixel is brighter than its right neighbour in a (bits+1) x bits grey image
    (bool (N, bits*bits))."""
    g = _grey(images, (bits + 1, bits))
    return (g[:, :, 1:] > g[:, :, :-1]).reshape(len(g), -1)


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise Hamming distances between bool hash sets a (N, B) and b (M, B) -> (N, M) int."""
    a = np.asarray(a, np.float32)
    b = np.asarray(b, np.float32)
    return np.rint(a @ (1 - b).T + (1 - a) @ b.T).astype(np.int32)


def thumbnail(images, size: int = 8, sigma: float = 1.0) -> np.ndarray:
    """Blurred ``size`` x ``size`` colour thumbnails standardised per image (N, size*size*3)."""
    import torch
    import torch.nn.functional as F
    from scipy.ndimage import gaussian_filter

    x = torch.from_numpy(np.ascontiguousarray(np.asarray(images))).permute(0, 3, 1, 2).float() / 255.0
    x = F.interpolate(x, size=(4 * size, 4 * size), mode="area")
    x = torch.from_numpy(gaussian_filter(x.numpy(), sigma=(0, 0, sigma, sigma)))
    t = F.interpolate(x, size=(size, size), mode="area").reshape(len(x), -1).numpy().astype(np.float64)
    t -= t.mean(axis=1, keepdims=True)
    return t / np.maximum(t.std(axis=1, keepdims=True), 1e-6)


def euclidean_nn(queries: np.ndarray, reference: np.ndarray, exclude_self: bool = False):
    """Euclidean nearest neighbour of each query in ``reference`` (scikit-learn, brute force): (index, distance).
    ``exclude_self``: query row i (e.g. a shifted copy of reference row i) may not match reference row i."""
    from sklearn.neighbors import NearestNeighbors

    ref = np.asarray(reference, np.float64)
    q = np.asarray(queries, np.float64)
    k = 2 if exclude_self and len(ref) > 1 else 1
    dist, idx = NearestNeighbors(n_neighbors=k, algorithm="brute").fit(ref).kneighbors(q)
    if k == 1:
        return idx[:, 0].astype(np.int64), dist[:, 0]
    second = idx[:, 0] == np.arange(len(q))  # the first neighbour is the row itself: take the next one
    return np.where(second, idx[:, 1], idx[:, 0]).astype(np.int64), np.where(second, dist[:, 1], dist[:, 0])


def _digest(img) -> str:
    a = np.ascontiguousarray(np.asarray(img))
    return hashlib.sha1(str(a.shape).encode() + a.tobytes()).hexdigest()


def _unit(x) -> np.ndarray:
    x = np.asarray(x, np.float64).reshape(len(x), -1)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def nearest_neighbours(queries: np.ndarray, reference: np.ndarray, exclude_self: bool = False
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Cosine-distance nearest neighbour of each query in ``reference``: (index, distance). On unit vectors
    the cosine distance is half the squared Euclidean distance, so scikit-learn's Euclidean search serves."""
    idx, d = euclidean_nn(_unit(queries), _unit(reference), exclude_self=exclude_self)
    return idx, np.maximum(0.5 * d ** 2, 0.0)


@dataclass
class MemorisationReport:
    """Per-candidate flags (``table``), the feature threshold and the train-to-train NN distances."""

    table: pd.DataFrame
    threshold: float
    percentile: float
    train_nn: np.ndarray
    hash_bits: int
    meta: dict = field(default_factory=dict)

    @property
    def rate(self) -> float:
        """Share of candidates flagged by any test (every candidate in the denominator)."""
        return float(self.table["flagged"].mean()) if len(self.table) else float("nan")

    def closest(self, k: int = 8) -> pd.DataFrame:
        """The k candidates closest to a training image (flagged first, then by feature distance)."""
        return self.table.sort_values(["flagged", "exact_copy", "thumb_copy", "hash_copy", "feature_distance"],
                                      ascending=[False, False, False, False, True]).head(k)

    def summary(self) -> dict:
        t = self.table
        return {"n": int(len(t)), "rate": self.rate, "exact_copies": int(t["exact_copy"].sum()),
                "hash_copies": int(t["hash_copy"].sum()), "thumbnail_copies": int(t["thumb_copy"].sum()),
                "feature_flags": int(t["feature_flag"].sum()),
                "threshold": float(self.threshold), "percentile": float(self.percentile),
                "hash_limit": float(self.meta.get("hash_limit", np.nan)),
                "thumbnail_limit": float(self.meta.get("thumb_limit", np.nan)),
                "expected_false_positive_rate": float(self.percentile) / 100.0,
                "median_nn_distance": float(t["feature_distance"].median()) if len(t) else float("nan"),
                "train_nn_median": float(np.median(self.train_nn))}

    def __repr__(self):
        s = self.summary()
        return (f"MemorisationReport(n={s['n']}, rate={s['rate']:.3f}, exact={s['exact_copies']}, "
                f"hash={s['hash_copies']}, thumbnail={s['thumbnail_copies']}, feature={s['feature_flags']}, threshold={s['threshold']:.4g})")


def _feature_fn(features) -> Callable:
    if features is None:
        return lambda imgs: np.asarray(imgs, np.float32).reshape(len(imgs), -1) / 255.0  # raw pixels
    if hasattr(features, "features"):  # a Recogniser
        return lambda imgs: features.features(imgs, kind="grid")
    if callable(features):
        return features
    raise TypeError("features must be None (pixels), a Recogniser or a callable images -> (N, D) array")


def shift_min_nn(queries, ref_thumbs, max_shift: int, exclude_self: bool = False, mirror: bool = False):
    """Thumbnail NN distance minimised over translations of the queries by up to max_shift pixels (and, with
    ``mirror``, over the mirrored queries too)."""
    q = np.asarray(queries)
    h, w = q.shape[1:3]
    best_d = np.full(len(q), np.inf)
    best_i = np.zeros(len(q), np.int64)
    for view_q in ((q, q[:, :, ::-1]) if mirror else (q,)):
        pad = np.pad(view_q, ((0, 0), (max_shift, max_shift), (max_shift, max_shift), (0, 0)), mode="edge")
        for dy in range(-max_shift, max_shift + 1):
            for dx in range(-max_shift, max_shift + 1):
                view = pad[:, max_shift + dy:max_shift + dy + h, max_shift + dx:max_shift + dx + w]
                i, d = euclidean_nn(thumbnail(view), ref_thumbs, exclude_self=exclude_self)
                better = d < best_d
                best_d[better], best_i[better] = d[better], i[better]
    return best_i, best_d


def _min_feature_nn(views, ft, exclude_self: bool = False):
    """Feature NN (cosine) minimised over several feature views of the same queries."""
    best_i, best_d = nearest_neighbours(views[0], ft, exclude_self=exclude_self)
    for v in views[1:]:
        i, d = nearest_neighbours(v, ft, exclude_self=exclude_self)
        better = d < best_d
        best_d, best_i = np.where(better, d, best_d), np.where(better, i, best_i)
    return best_i, best_d


class MemorisationDetector:
    """The training side of the check, computed once: train features (and mirrored ones), the calibrated
    thresholds of each test, train digests, pHashes and thumbnails. :meth:`check` then costs only the
    candidates' side, so one detector serves every batch it judges (validation probes, test faces, each
    generator's faces) instead of recalibrating on the training set per call.

    ``features``: a :class:`~phenoface.evaluation.recogniser.Recogniser` (its backbone's spatial features,
    ``kind="grid"``), any callable images -> (N, D), or None for raw pixels; precomputed ``train_features``
    skip the extraction. ``hash_bits``: the largest pHash Hamming distance (of 64 bits) that may count as a
    hash copy (see the module docstring). ``max_shift``: translations (pixels) searched by the thumbnail test.
    ``mirror``: the thumbnail and feature tests also compare the mirrored candidate (and calibrate on mirrored
    training images), so a flipped copy is as close as the copy itself.
    """

    def __init__(self, train_images, features=None, percentile: float = 1.0, hash_bits: int = 6, max_shift: int = 1,
                 mirror: bool = False, train_features: np.ndarray | None = None):
        train_images = np.asarray(train_images)
        if len(train_images) < 2:
            raise ValueError("the memorisation check needs at least two training images")
        if not (0 < percentile < 100):
            raise ValueError(f"percentile must be in (0, 100), got {percentile}")
        self.train_images, self.percentile, self.hash_bits = train_images, float(percentile), int(hash_bits)
        self.max_shift, self.mirror = int(max_shift), bool(mirror)
        self.fn = _feature_fn(features)
        self.ft = np.asarray(train_features if train_features is not None else self.fn(train_images))
        views_t = [self.ft]
        if mirror:
            views_t.append(np.asarray(self.fn(np.ascontiguousarray(train_images[:, :, ::-1]))))
        _, self.train_nn = _min_feature_nn(views_t, self.ft, exclude_self=True)
        self.threshold = float(np.percentile(self.train_nn, percentile))

        self.train_digest = {}
        for j, img in enumerate(train_images):
            self.train_digest.setdefault(_digest(img), j)

        self.pt = phash(train_images)
        tt = hamming(self.pt, self.pt)
        np.fill_diagonal(tt, 1 << 20)
        self.hash_limit = float(min(hash_bits + 1, np.percentile(tt.min(axis=1), percentile)))  # flag d < hash_limit

        self.tt_thumb = thumbnail(train_images)
        _, thumb_train_nn = shift_min_nn(train_images, self.tt_thumb, max_shift, exclude_self=True, mirror=mirror)
        self.thumb_limit = float(np.percentile(thumb_train_nn, percentile))
        # the continuous score divides each distance by the median train-to-train NN distance of its own test
        self.feature_median = max(float(np.median(self.train_nn)), 1e-12)
        self.thumb_median = max(float(np.median(thumb_train_nn)), 1e-12)

    def check(self, candidates, candidate_features: np.ndarray | None = None, ids=None) -> MemorisationReport:
        """Check a batch of candidate images (uint8 (N, H, W, 3)) against the training images."""
        candidates = np.asarray(candidates)
        fc = np.asarray(candidate_features if candidate_features is not None else self.fn(candidates))
        views_c = [fc]
        if self.mirror and len(candidates):
            views_c.append(np.asarray(self.fn(np.ascontiguousarray(candidates[:, :, ::-1]))))
        nn_idx, nn_dist = _min_feature_nn(views_c, self.ft) if len(fc) else (np.zeros(0, int), np.zeros(0))
        exact_idx = np.array([self.train_digest.get(_digest(img), -1) for img in candidates], np.int64)

        n_train = len(self.train_images)
        ph = hamming(phash(candidates), self.pt) if len(candidates) else np.zeros((0, n_train), np.int32)
        hash_idx = ph.argmin(axis=1) if len(candidates) else np.zeros(0, int)
        hash_dist = ph[np.arange(len(candidates)), hash_idx] if len(candidates) else np.zeros(0, int)
        thumb_idx, thumb_dist = (shift_min_nn(candidates, self.tt_thumb, self.max_shift, mirror=self.mirror)
                                 if len(candidates) else (np.zeros(0, int), np.zeros(0)))

        table = pd.DataFrame({
            "candidate": np.arange(len(candidates)) if ids is None else np.asarray(ids),
            "nearest_train": nn_idx, "feature_distance": nn_dist, "feature_flag": nn_dist < self.threshold,
            "exact_copy": exact_idx >= 0, "exact_train": exact_idx,
            "hash_train": hash_idx, "hash_distance": hash_dist, "hash_copy": hash_dist < self.hash_limit,
            "thumb_train": thumb_idx, "thumb_distance": thumb_dist, "thumb_copy": thumb_dist < self.thumb_limit,
        })
        table["flagged"] = table["feature_flag"] | table["exact_copy"] | table["hash_copy"] | table["thumb_copy"]
        # one continuous score for ROC curves: each distance relative to the median train-to-train
        # nearest-neighbour distance of its own test, the closer of the two (0 = a copy; ~1 = a typical neighbour)
        table["score"] = np.minimum(nn_dist / self.feature_median, thumb_dist / self.thumb_median)
        # the training image to show beside the candidate: exact copy, else thumbnail, else hash copy, else the NN
        table["match_train"] = np.where(table["exact_copy"], table["exact_train"],
                                        np.where(table["thumb_copy"], table["thumb_train"],
                                                 np.where(table["hash_copy"], table["hash_train"], table["nearest_train"])))
        return MemorisationReport(table, self.threshold, self.percentile, self.train_nn, self.hash_bits,
                                  meta={"n_train": int(n_train), "feature_dim": int(self.ft.shape[1]),
                                        "hash_limit": self.hash_limit, "thumb_limit": self.thumb_limit,
                                        "feature_median": self.feature_median, "thumb_median": self.thumb_median,
                                        "max_shift": self.max_shift, "mirror": self.mirror})


def memorisation_check(candidates, train_images, features=None, percentile: float = 1.0, hash_bits: int = 6,
                       max_shift: int = 1, mirror: bool = False,
                       candidate_features: np.ndarray | None = None, train_features: np.ndarray | None = None,
                       ids=None) -> MemorisationReport:
    """Check a batch of candidate images (uint8 (N, H, W, 3)) against the training images: a
    :class:`MemorisationDetector` built for this one batch (build the detector yourself to judge several)."""
    return MemorisationDetector(train_images, features, percentile, hash_bits, max_shift, mirror,
                                train_features).check(candidates, candidate_features, ids)


def plant_copies(train_images, n: int = 16, seed: int = 0, noise: float = 2.0, shift: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A test set of planted copies: half exact training images, half perturbed (Gaussian pixel
    noise of ``noise`` grey levels, a brightness change of up to 3 % and a translation of up to
    ``shift`` pixels with edge padding).
    Returns (images, source training indices, kind array 'exact' | 'perturbed')."""
    rng = np.random.default_rng(seed)
    src = rng.choice(len(train_images), size=n, replace=False)
    out = np.asarray(train_images)[src].copy()
    kind = np.array(["exact"] * (n // 2) + ["perturbed"] * (n - n // 2))
    for i in np.where(kind == "perturbed")[0]:
        img = out[i].astype(np.float32)
        if shift > 0:
            dy, dx = (int(v) for v in rng.integers(-shift, shift + 1, 2))
            h, w = img.shape[:2]
            pad = np.pad(img, ((shift, shift), (shift, shift), (0, 0)), mode="edge")
            img = pad[shift + dy:shift + dy + h, shift + dx:shift + dx + w]
        img = img * rng.uniform(0.97, 1.03) + rng.normal(0, noise, img.shape)
        out[i] = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    return out, src, kind
