"""Phenotypes from faces. Pixels in, phenotypes out (what generated faces are measured with):

    >>> from phenoface.phenotypes import measure_images, estimate_age
    >>> measure_images(images)     # uint8 (N, H, W, 3) -> DataFrame, one column per renderable term

The phenotype meter: landmarks (and pixels) -> one measurement per renderable HPO term.

    >>> from phenoface.phenotypes import Meter, detect_landmarks
    >>> lm = detect_landmarks(image_rgb_uint8, backend="mediapipe")   # or "dlib", "regressor"; None = no face
    >>> Meter().measure(landmarks, images=None)   # (N, 68, 2) -> DataFrame, one column per HPO id in TERMS

Landmark backends (``truth``, ``regressor``, ``mediapipe``, ``dlib``) live in :mod:`.backends`; the
small CNN regressor (``train_regressor``, ``LandmarkRegressor``) in :mod:`.regressor`.
"""

from .backends import (BACKENDS, FACE_THRESHOLD, backend_nme, default_regressor, detect_landmarks, landmarks_for,
                       set_default_regressor)
from .meter import IMAGE_TERMS, LANDMARK_TERMS, MEASURES, Meter, face_frame, normalise, to_image
from .instrument import PhenotypeInstrument, PhenotypeNet, train_instrument
from .measure import LandmarkInstrument, estimate_age, load_instrument, measure_images, save_choice
from .regressor import LandmarkNet, LandmarkRegressor, train_regressor

__all__ = ["Meter", "MEASURES", "LANDMARK_TERMS", "IMAGE_TERMS", "face_frame", "normalise", "to_image",
           "detect_landmarks", "landmarks_for", "backend_nme", "BACKENDS", "FACE_THRESHOLD",
           "set_default_regressor", "default_regressor", "LandmarkRegressor", "LandmarkNet", "train_regressor",
           "measure_images", "estimate_age", "load_instrument", "save_choice", "PhenotypeInstrument", "PhenotypeNet",
           "train_instrument", "LandmarkInstrument"]
