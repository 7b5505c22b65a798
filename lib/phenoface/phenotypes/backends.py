"""Landmark backends behind one interface, all returning the 68-point dlib layout in pixels.

=============  ==============================================================================
backend        what it is
=============  ==============================================================================
``truth``      the cohort's own landmarks (no detection: pass ``truth=`` to :func:`landmarks_for`)
``regressor``  the small CNN of :mod:`.regressor`, trained on cohort renders (for renders and
               generated images; batched, fast)
``mediapipe``  MediaPipe face mesh (478 points mapped to 68), for real photos
``dlib``       dlib HOG detector + 68-point shape predictor, for real photos
=============  ==============================================================================

``detect_landmarks(image, backend)`` answers one image ((68, 2) or None when no face is found);
``landmarks_for(images, backend)`` answers a batch as (found (N,) bool, points (N, 68, 2) with NaN
rows where no face was found), so callers can report face-less images instead of dropping them.
The MediaPipe and dlib paths are :func:`phenoface.datasets.landmarks.detect_landmarks` (not re-implemented).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..cohort.validate import nme
from ..datasets import landmarks as _faces
from .regressor import LandmarkRegressor

BACKENDS = ("truth", "regressor", "mediapipe", "dlib")
FACE_THRESHOLD = 0.5  # regressor face score below this = "no face"

_default: dict[str, LandmarkRegressor] = {}


def set_default_regressor(regressor: LandmarkRegressor | str | os.PathLike | None) -> LandmarkRegressor | None:
    """Make ``regressor`` (or the one saved at a path) what ``backend="regressor"`` uses by default."""
    if regressor is None:
        _default.pop("regressor", None)
        return None
    reg = regressor if isinstance(regressor, LandmarkRegressor) else LandmarkRegressor.load(regressor)
    _default["regressor"] = reg
    return reg


def default_regressor() -> LandmarkRegressor:
    """The default regressor: set with :func:`set_default_regressor`, else loaded from
    ``$PHENOFACE_REGRESSOR`` (a path to ``regressor.safetensors``; a pickled ``regressor.pt`` is refused)."""
    if "regressor" not in _default:
        path = os.environ.get("PHENOFACE_REGRESSOR")
        if not path or not Path(path).is_file():
            raise RuntimeError("no landmark regressor: pass regressor=..., call set_default_regressor(path) or set "
                               "PHENOFACE_REGRESSOR to a regressor.safetensors (notebook 04 writes "
                               "<DATA_DIR>/phenotypes/regressor.safetensors + regressor.json)")
        _default["regressor"] = LandmarkRegressor.load(path)
    return _default["regressor"]


def _regressor(regressor):
    if regressor is None:
        return default_regressor()
    if isinstance(regressor, LandmarkRegressor):
        return regressor
    return LandmarkRegressor.load(regressor)


def detect_landmarks(image, backend: str = "mediapipe", regressor=None) -> np.ndarray | None:
    """(68, 2) pixel landmarks (x, y) in dlib order for one uint8 RGB image, or None when no face is found."""
    if backend == "regressor":
        img = _faces._as_rgb(image)
        pts, score = _regressor(regressor).predict(img, return_score=True)
        return pts if score >= FACE_THRESHOLD else None
    if backend == "truth":
        raise ValueError("backend 'truth' has no detector: use landmarks_for(images, 'truth', truth=cohort.landmarks)")
    if backend in _faces.BACKENDS:
        return _faces.detect_landmarks(image, backend=backend)
    raise ValueError(f"unknown landmark backend {backend!r}; choose one of {', '.join(BACKENDS)}")


def landmarks_for(images, backend: str = "regressor", regressor=None, truth=None, batch_size: int = 256):
    """Landmarks for a batch: (found (N,) bool, points (N, 68, 2) float32, NaN rows where not found)."""
    if backend == "truth":
        if truth is None:
            raise ValueError("backend 'truth' needs truth=<(N, 68, 2) landmarks>")
        pts = np.asarray(truth, np.float32)
        return np.isfinite(pts).all(axis=(1, 2)), pts
    n = len(images)
    if backend == "regressor":
        pts, score = _regressor(regressor).predict(np.asarray(images), batch_size=batch_size, return_score=True)
        found = score >= FACE_THRESHOLD
        pts = np.where(found[:, None, None], pts, np.nan).astype(np.float32)
        return found, pts
    if backend not in _faces.BACKENDS:
        raise ValueError(f"unknown landmark backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    found = np.zeros(n, bool)
    pts = np.full((n, 68, 2), np.nan, np.float32)
    for i in range(n):
        lm = _faces.detect_landmarks(images[i], backend=backend, index=i)
        if lm is not None:
            found[i], pts[i] = True, lm
    return found, pts


def backend_nme(images, truth, backend: str, regressor=None) -> dict:
    """Detection rate and NME (outer-eye-corner normalised, :func:`phenoface.cohort.validate.nme`) of a
    backend against known landmarks; faces it misses are counted in ``found_rate``, not averaged in."""

    found, pts = landmarks_for(images, backend, regressor=regressor)
    errs = nme(pts[found], np.asarray(truth)[found]) if found.any() else np.array([np.nan])
    return {"backend": backend, "n": int(len(found)), "found": int(found.sum()), "found_rate": float(found.mean()),
            "nme": float(np.mean(errs)) if found.any() else float("nan"),
            "nme_median": float(np.median(errs)) if found.any() else float("nan")}
