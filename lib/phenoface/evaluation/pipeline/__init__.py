"""Notebook 07's steps as functions. Each step returns a result whose ``metrics()`` is its share of the
notebook's recorded metrics and whose ``figures()`` draws its figures (``show(stem)`` saves and shows them):

    >>> ev = load_evaluation(data_dir, seed=0)
    >>> rec = recogniser_step(ev, grid="16x20,24x30", lr=0.005, max_blur=1.2)
    >>> rec.show("07_evaluate")                  # reports/figures/07_evaluate/recogniser_confusion.png
    >>> record_metrics("07_evaluate", merge_metrics(ev, rec, ...))

One concern per module: :mod:`.base` (the splits, the result protocol, merging), :mod:`.instruments`
(landmarks, recogniser, measurements), :mod:`.severity` (severity, progression), :mod:`.realism` (FD / KID,
identity), :mod:`.memorisation`, :mod:`.photos` (real photos and their edits), :mod:`.generated`,
:mod:`.control` (term control and its ceilings), :mod:`.model_checks` (sampling faults, zero-shot,
membership), :mod:`.methods` (method table, portraits), :mod:`.editing` (edits of cohort faces).
"""

from .base import Evaluation, StepResult, load_evaluation, merge_metrics, short_names, timed
from .control import TermControlResult, term_control_step
from .editing import EditsResult, edit_figures, edit_key, edits_step, identity_calibration_table
from .generated import GeneratedResult, generated_step
from .instruments import (ROUTES, LandmarkResult, Measurements, RecogniserResult, landmark_step, measurement_step,
                          parse_grid, recogniser_step)
from .memorisation import Detectors, MemorisationResult, memorisation_step
from .methods import MethodsResult, PortraitsResult, face_figures, methods_step, portraits_step
from .model_checks import (FaultsResult, MembershipResult, ZeroShotResult, faults_step, membership_inputs,
                           membership_step, zero_shot_step)
from .photos import PhotoEditsResult, RealPhotosResult, photo_edits_step, real_photos_step
from .realism import IdentityResult, RealismResult, identity_step, realism_step
from .severity import ProgressionResult, SeverityResult, progression_step, severity_step, severity_weights

__all__ = ["Evaluation", "StepResult", "load_evaluation", "merge_metrics", "short_names", "timed", "ROUTES",
           "LandmarkResult", "landmark_step", "RecogniserResult", "recogniser_step", "parse_grid", "Measurements",
           "measurement_step", "SeverityResult", "severity_step", "severity_weights", "ProgressionResult",
           "progression_step", "RealismResult", "realism_step", "IdentityResult", "identity_step", "Detectors",
           "MemorisationResult", "memorisation_step", "RealPhotosResult", "real_photos_step", "PhotoEditsResult",
           "photo_edits_step", "GeneratedResult", "generated_step", "TermControlResult", "term_control_step",
           "FaultsResult", "faults_step", "ZeroShotResult", "zero_shot_step", "MembershipResult", "membership_step",
           "membership_inputs", "MethodsResult", "methods_step", "face_figures", "PortraitsResult", "portraits_step",
           "EditsResult", "edits_step", "edit_figures", "edit_key", "identity_calibration_table"]
