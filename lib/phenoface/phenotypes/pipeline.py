"""Notebook 04's instrument steps as functions: score the landmark regressor and the real-photo backends,
and get the pixel instrument (packaged or trained here). The choice between the candidates, made by the image
profiles each yields, is :func:`phenoface.profiles.pipeline.choose_instrument`.

    >>> check = regressor_test(regressor, test)                     # NME on new people, images/s
    >>> backends = backend_check(test, 32, regressor, seed=0)         # MediaPipe / dlib / regressor at 256 px
    >>> pixel, card = pixel_instrument("packaged")                    # or "train" with the INSTRUMENT_* sizes

Every choice is made on the validation cohort; the test cohort is only scored (:mod:`.scoring`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..cohort.independent import render_independent
from ..cohort.terms import TERM_IDS
from ..cohort.validate import nme
from .backends import backend_nme
from .instrument import train_instrument
from .packaged import load_packaged

BACKENDS_CHECKED = ("mediapipe", "dlib", "regressor")
SOURCES = ("packaged", "train")
CARD_KEYS = ("command", "recipe", "train_images", "train_seconds", "renderer", "commit")
# renders the pixel instrument trains on, and the validation renders that choose it, are new people: seeds of
# their own, away from the cohorts' SEED, SEED + 1000 and SEED + 2000
TRAIN_RENDER_SEED = 3000
VALIDATION_RENDER_SEED = 1000 + 7
VIEWS = 6  # the test-time-augmentation candidate's views


@dataclass
class RegressorTest:
    """The landmark regressor on a cohort it never saw: per-face NME and throughput."""

    predicted: np.ndarray
    errors: np.ndarray
    images_per_s: float

    @property
    def nme(self) -> float:
        return float(np.mean(self.errors))

    def metrics(self) -> dict:
        return {"regressor_nme": self.nme, "regressor_images_per_s": float(self.images_per_s)}


def regressor_test(regressor, cohort, batch_size: int = 256) -> RegressorTest:
    """Predict ``cohort``'s landmarks and score them against the renders' own (NME, outer-eye-corner distance)."""

    start = time.perf_counter()
    predicted = regressor.predict(cohort.images, batch_size=batch_size)
    ips = len(cohort) / (time.perf_counter() - start)
    return RegressorTest(predicted, nme(predicted, cohort.landmarks), ips)


@dataclass
class BackendCheck:
    """Renders re-drawn at a higher resolution, their own landmarks, and each backend's detection rate and NME."""

    images: np.ndarray
    landmarks: np.ndarray
    table: pd.DataFrame
    seconds: float

    def metrics(self) -> dict:
        """NME and found rate per real-photo backend, the regressor's NME (at 256 px)."""
        out = {f"{b}_{c}_256": float(self.table.loc[b, c]) for b in ("mediapipe", "dlib") if b in self.table.index
               for c in ("nme", "found_rate")}
        if "regressor" in self.table.index:
            out["regressor_nme_256"] = float(self.table.loc["regressor", "nme"])
        return out


def backend_check(cohort, n: int, regressor, seed: int = 0, size: int = 256,
                  backends=BACKENDS_CHECKED) -> BackendCheck:
    """``n`` faces of ``cohort`` (drawn with ``seed``, in cohort order) re-rendered at ``size`` px, each backend
    against the render's landmarks (:func:`phenoface.phenotypes.backend_nme`)."""
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(len(cohort), size=min(n, len(cohort)), replace=False))
    images, landmarks = cohort.subset(idx).rerender(size)
    start = time.perf_counter()
    table = pd.DataFrame([backend_nme(images, landmarks, b, regressor=regressor) for b in backends]).set_index("backend")
    return BackendCheck(images, landmarks, table, time.perf_counter() - start)


def pixel_instrument(source: str = "packaged", train_n: int = 48000, epochs: int = 10, width: int = 16,
                     seed: int = 0, size: int = 64):
    """(instrument, card). ``packaged``: the shipped checkpoint (refused when trained on another renderer), its
    card's provenance; ``train``: ``train_n`` independent-term renders of new people, then
    :func:`phenoface.phenotypes.train_instrument`; the card gives the render and training times."""
    if source not in SOURCES:
        raise ValueError(f"instrument source must be one of {SOURCES}, got {source!r}")
    if source == "packaged":
        pixel = load_packaged()
        return pixel, {k: pixel.meta.get(k) for k in CARD_KEYS}

    start = time.perf_counter()
    images, table = render_independent(train_n, seed=seed + TRAIN_RENDER_SEED, size=size)
    render_seconds = time.perf_counter() - start
    pixel = train_instrument(images, table[TERM_IDS].to_numpy(), table["age"].to_numpy(), epochs=epochs, width=width,
                             seed=seed)
    return pixel, {"train_images": int(train_n), "render_seconds": render_seconds,
                   "train_seconds": pixel.meta["train_seconds"]}
