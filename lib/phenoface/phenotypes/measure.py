"""Pixels in, phenotypes out: the one entry point generated and real faces are measured with.

    >>> from phenoface.phenotypes import measure_images, estimate_age
    >>> m = measure_images(images_uint8_nhwc)   # DataFrame, one column per renderable term; larger = more
    >>> ages = estimate_age(images_uint8_nhwc)   # years

Both use the instrument notebook 04 trains, chooses on the validation split and saves under
``<DATA_DIR>/phenotypes/instrument/``; ``DATA_DIR`` is the ``data_dir`` argument, else
``$PHENOFACE_DATA_DIR``, else the quick profile's ``data/processed/quick``. Two kinds exist (see
``instrument.json``'s ``kind``): ``pixel`` (:mod:`.instrument`, a CNN trained on independent-term renders)
and ``landmarks`` (the landmark regressor + :class:`~phenoface.phenotypes.meter.Meter`). No true landmark or
render parameter is read: only pixels.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from ..cohort.terms import TERM_IDS
from ..config import repo_root, write_json
from .backends import landmarks_for
from .instrument import PhenotypeInstrument
from .meter import Meter
from .regressor import FILE_NAME, LandmarkRegressor

_cache: dict = {}


def default_data_dir() -> Path:
    env = os.environ.get("PHENOFACE_DATA_DIR")
    return Path(env).expanduser().resolve() if env else repo_root() / "data" / "processed" / "quick"


def instrument_dir(data_dir=None) -> Path:
    return Path(data_dir or default_data_dir()) / "phenotypes" / "instrument"


class LandmarkInstrument:
    """The landmark route as an instrument: regressor landmarks, then the meter (geometry + pixels placed by
    the landmarks). Images where the regressor finds no face get NaN rows (kept, never dropped)."""

    kind = "landmarks"

    def __init__(self, regressor, meta: dict | None = None):
        self.regressor, self.meter, self.meta = regressor, Meter(), dict(meta or {})

    def measure(self, images, batch_size: int = 256) -> pd.DataFrame:
        _, lm = landmarks_for(np.asarray(images), "regressor", regressor=self.regressor)
        return self.meter.measure(lm, np.asarray(images))[TERM_IDS].reset_index(drop=True)

    def __repr__(self):
        return f"LandmarkInstrument({self.regressor})"


def check_images(images) -> np.ndarray:
    """uint8 (N, H, W, 3) (a single (H, W, 3) image becomes N = 1); anything else is a clear error."""
    arr = np.asarray(images)
    if arr.ndim == 3 and arr.shape[-1] == 3:
        arr = arr[None]
    if arr.ndim != 4 or arr.shape[-1] != 3:
        raise ValueError(f"images must be uint8 of shape (N, H, W, 3), got shape {arr.shape}")
    if arr.dtype != np.uint8:
        raise ValueError(f"images must be uint8 (0-255), got {arr.dtype}; convert with "
                         "np.clip(x * 255, 0, 255).astype(np.uint8) for floats in [0, 1]")
    if arr.shape[1] < 16 or arr.shape[2] < 16:
        raise ValueError(f"images of {arr.shape[1]}x{arr.shape[2]} px are too small to measure (>= 16 px)")
    return arr


def load_instrument(data_dir=None):
    """The instrument notebook 04 saved (cached per folder and file time)."""
    folder = instrument_dir(data_dir)
    card = folder / "instrument.json"
    if not card.is_file():
        raise FileNotFoundError(f"no phenotype instrument in {folder}: run notebook 04_image_profiles for this "
                                "DATA_DIR first (run_all.sh --only 04), or set PHENOFACE_DATA_DIR to a data folder "
                                "where it ran")
    key = (str(folder), card.stat().st_mtime_ns)
    if key not in _cache:
        meta = json.loads(card.read_text())
        if meta.get("kind") == "landmarks":
            inst = LandmarkInstrument(LandmarkRegressor.load(folder.parent / FILE_NAME), meta)
        elif meta.get("kind") == "pixel":
            inst = PhenotypeInstrument.load(folder / "pixel")
        else:
            raise ValueError(f"{card}: unknown instrument kind {meta.get('kind')!r} (pixel | landmarks)")
        _cache.clear()
        _cache[key] = inst
    return _cache[key]


def save_choice(data_dir, kind: str, pixel: PhenotypeInstrument, evidence: dict | None = None) -> Path:
    """Save the pixel instrument (always: it also carries the age head) under ``instrument/pixel`` and record
    which kind :func:`measure_images` uses, with the validation figures that chose it."""
    if kind not in ("pixel", "landmarks"):
        raise ValueError(f"instrument kind must be 'pixel' or 'landmarks', got {kind!r}")
    folder = instrument_dir(data_dir)
    pixel.save(folder / "pixel")

    if kind == "landmarks" and not (folder.parent / FILE_NAME).is_file():
        raise FileNotFoundError(f"the landmark instrument needs {folder.parent / FILE_NAME}")
    write_json(folder / "instrument.json", {"kind": kind, "chosen_on": "validation", "evidence": evidence or {}})
    return folder


def measure_images(images, data_dir=None, instrument=None, batch_size: int = 256) -> pd.DataFrame:
    """One row per image, one column per renderable term (HPO id), larger = more of it; from pixels only."""
    arr = check_images(images)
    if len(arr) == 0:
        return pd.DataFrame(columns=TERM_IDS, dtype=float)
    inst = instrument or load_instrument(data_dir)
    return inst.measure(arr, batch_size=batch_size)[TERM_IDS]


def estimate_age(images, data_dir=None, instrument=None, batch_size: int = 256) -> np.ndarray:
    """Age in years from pixels (the pixel instrument's age head; kept beside a landmark instrument)."""
    arr = check_images(images)
    if len(arr) == 0:
        return np.empty(0, np.float32)
    inst = instrument or load_instrument(data_dir)
    if getattr(inst, "kind", "") != "pixel":
        inst = PhenotypeInstrument.load(instrument_dir(data_dir) / "pixel")
    return inst.age(arr, batch_size=batch_size)
