"""Notebook 04's instrument steps as functions: score the landmark regressor and the real-photo backends,
get the pixel instrument (packaged or trained here), and choose between the candidates on validation.

    >>> check = regressor_test(regressor, test)                     # NME on new people, images/s
    >>> backends = backend_check(test, 32, regressor, seed=0)         # MediaPipe / dlib / regressor at 256 px
    >>> pixel, card = pixel_instrument("packaged")                    # or "train" with the INSTRUMENT_* sizes
    >>> choice = choose_instrument(pixel, regressor, val, data_dir, check_n=1024, seed=0)
    >>> choice.name, choice.sd_floor                                  # saved for measure_images

Every choice is made on the validation cohort; the test cohort is only scored (:mod:`.scoring`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from ..cohort.independent import render_independent
from ..cohort.terms import TERM_IDS
from .backends import backend_nme
from .measure import LandmarkInstrument, measure_images, save_choice

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
    from ..cohort.validate import nme

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
        from .packaged import load_packaged

        pixel = load_packaged()
        return pixel, {k: pixel.meta.get(k) for k in CARD_KEYS}
    from .instrument import train_instrument

    start = time.perf_counter()
    images, table = render_independent(train_n, seed=seed + TRAIN_RENDER_SEED, size=size)
    render_seconds = time.perf_counter() - start
    pixel = train_instrument(images, table[TERM_IDS].to_numpy(), table["age"].to_numpy(), epochs=epochs, width=width,
                             seed=seed)
    return pixel, {"train_images": int(train_n), "render_seconds": render_seconds,
                   "train_seconds": pixel.meta["train_seconds"]}


@dataclass
class InstrumentChoice:
    """The candidates' validation figures (``table``: one row per candidate), their precision@k against the
    residual-SD floor, and the chosen one, saved under ``folder`` for :func:`phenoface.phenotypes.measure_images`."""

    table: pd.DataFrame
    floor_curves: dict
    name: str
    candidates: dict
    folder: Path
    data_dir: Path

    @property
    def kind(self) -> str:
        return "landmarks" if self.name == "landmarks" else "pixel"

    @property
    def saved(self):
        """The pixel instrument saved beside the choice (it carries the age head even when landmarks win)."""
        return self.candidates[self.name] if self.kind == "pixel" else self.candidates["pixel"]

    @property
    def sd_floor(self) -> float:
        return float(self.table.loc[self.name, "sd_floor"])

    @property
    def measure(self):
        """images -> measurements through the saved, chosen instrument."""
        return partial(measure_images, data_dir=self.data_dir)

    def metrics(self) -> dict:
        """What was chosen, with every candidate's validation figures."""
        route = "CNN on independent-term renders" if self.kind == "pixel" else "regressor + meter"
        return {"image_profile_instrument": f"{self.name} ({route})", "image_profile_sd_floor": self.sd_floor,
                "image_profile_instrument_views": int(getattr(self.saved, "views", 1)),
                **{f"validation_{name}_{fig}": float(v) for name, row in self.table.iterrows() for fig, v in row.items()}}


def instrument_candidates(pixel, regressor) -> dict:
    """The pixel instrument reading each image once, the same averaging :data:`VIEWS` views, the landmark route."""
    return {"pixel": pixel, f"pixel_views{VIEWS}": pixel.with_views(VIEWS), "landmarks": LandmarkInstrument(regressor)}


def choose_instrument(pixel, regressor, cohort, data_dir, check_n: int = 1024, seed: int = 0,
                      min_positives: int = 20) -> InstrumentChoice:
    """Each candidate measures the validation ``cohort`` (its residual-SD floor and precision@k, from
    :func:`phenoface.profiles.images.choose_sd_floor`) and ``check_n`` fresh independent-term renders (per-term
    Pearson); the best precision@k wins (ties: the higher mean Pearson) and is saved with its figures."""
    from ..profiles.images import choose_sd_floor
    from .validation import term_intensity_pearson

    candidates = instrument_candidates(pixel, regressor)
    images, table = render_independent(check_n, seed=seed + VALIDATION_RENDER_SEED, size=cohort.size)
    choice, curves = {}, {}
    for name, inst in candidates.items():
        floor, curves[name] = choose_sd_floor(inst.measure(cohort.images), cohort.table, cohort.truth, TERM_IDS,
                                              min_positives=min_positives)
        r = term_intensity_pearson(inst.measure, images=images, table=table)["pearson"]
        choice[name] = {"precision_at_k": float(curves[name].max()), "sd_floor": floor,
                        "precision_at_k_no_floor": float(curves[name].loc[0.0]),
                        "pearson_mean": float(r.mean()), "pearson_min": float(r.min())}
    choice = pd.DataFrame(choice).T
    name = choice.sort_values(["precision_at_k", "pearson_mean"], ascending=False).index[0]
    result = InstrumentChoice(choice, curves, name, candidates, Path(), Path(data_dir))
    result.folder = save_choice(data_dir, result.kind, result.saved, choice.to_dict(orient="index"))
    return result
