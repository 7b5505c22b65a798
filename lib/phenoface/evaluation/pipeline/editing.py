"""Notebook 06's edits of cohort faces: identity kept (calibrated first on renders of known identity), the
target read by the recogniser and the severity score, edited progressions and the round trip."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ...cohort.diseases import DISEASES
from ...cohort.terms import TERM_IDS
from ...labels import UNAFFECTED
from ...phenotypes import estimate_age, measure_images
from ...sampling.generated_cohort import load_arrays
from ...stats import bootstrap_ci, spearman
from .. import order_accuracy
from ..edits import edit_scores, identity_calibration, region_cosine, separation_auc, untouched_mask
from .base import StepResult

CALIBRATION_N = 48  # render pairs per kind in the identity calibration
SCORE_COLUMNS = ["identity (whole face)", "identity (untouched regions)", "target top-1", "target score move",
                 "severity score move", "phenotype change vs profile (Pearson)", "inversion_error"]


def edit_key(direction: str, method: str) -> str:
    """``ddim_h2d`` for a DDIM edit healthy -> diseased, ``sdedit_d2h`` for one back."""
    return f"{method}_{'h2d' if direction.startswith('healthy') else 'd2h'}"


@dataclass
class EditsResult(StepResult):
    calibration: pd.DataFrame  # same person / different people / AUROC x whole face / untouched regions
    scores: pd.DataFrame | None = None  # one row per edit
    figs: dict = field(default_factory=dict)  # edit_key -> figures
    progression_order: float = float("nan")
    age_spearman: float = float("nan")
    round_trip_untouched: float = float("nan")
    round_trip_whole: float = float("nan")
    note: str = ""

    def metrics(self) -> dict:
        c = self.calibration
        return {"identity_calibration_auc_untouched": float(c.loc["AUROC same vs different", "untouched regions"]),
                "identity_calibration_auc_whole": float(c.loc["AUROC same vs different", "whole face"]),
                "identity_calibration_same_untouched": float(c.loc["same person", "untouched regions"]),
                "identity_calibration_different_untouched": float(c.loc["different people", "untouched regions"]),
                **{f"edit_{k}_{f}": v for k, figs in self.figs.items() for f, v in figs.items()},
                "edit_progression_order_accuracy": float(self.progression_order),
                "edit_age_progression_spearman": float(self.age_spearman),
                "round_trip_identity_untouched": self.round_trip_untouched,
                "round_trip_identity_whole": self.round_trip_whole}

    def table(self) -> pd.DataFrame | None:
        if self.scores is None:
            return None
        groups = self.scores.groupby(["direction", "method"])
        summary = groups[SCORE_COLUMNS].mean()
        summary["edits"] = groups.size()
        return summary


def edit_figures(group: pd.DataFrame, seed: int) -> dict:
    """Means (identity, target top-1 with intervals over edits, score moves, phenotype agreement) of one
    direction x method."""

    return {"identity_whole": float(group["identity (whole face)"].mean()),
            "identity_untouched": float(group["identity (untouched regions)"].mean()),
            "identity_untouched_ci": list(bootstrap_ci(group["identity (untouched regions)"].to_numpy(float), seed=seed)[1]),
            "target_top1": float(group["target top-1"].mean()),
            "target_top1_ci": list(bootstrap_ci(group["target top-1"].to_numpy(float), seed=seed)[1]),
            "target_score_move": float(group["target score move"].mean()),
            "severity_score_move": float(group["severity score move"].mean()),
            "phenotype_agreement": float(group["phenotype change vs profile (Pearson)"].mean())}


def identity_calibration_table(seed: int) -> pd.DataFrame:
    """Mean cosines of same-person and different-people renders, and the AUROC separating them."""

    calib = identity_calibration([d for d in DISEASES if d != UNAFFECTED], n=CALIBRATION_N, seed=seed)
    table = calib.groupby("kind")[["whole face", "untouched regions"]].mean()
    table.loc["AUROC same vs different"] = [separation_auc(calib, c) for c in ("whole face", "untouched regions")]
    return table


def edits_step(ev, generated, recogniser, severity) -> EditsResult:
    """The identity calibration, then (when notebook 06 made them) the edits scored, the severity score's move
    (pixels, the scorer chosen on validation: up healthy -> diseased, down back), the severity order along
    edited progressions, the estimated age along an age edit and the round trip's identity."""

    result = EditsResult(identity_calibration_table(ev.seed))
    data_dir, test, model, scorer = ev.data_dir, ev.test, generated.model, severity.scorer("pixels")
    try:
        e_in, e_table = load_arrays(data_dir, "edit_inputs")
        e_out, _ = load_arrays(data_dir, "edits")
        profiles = {d: dict(zip(TERM_IDS, model.diseases.profile[i])) for i, d in enumerate(model.diseases.ids)}
        m_in, m_out = measure_images(e_in, data_dir=data_dir), measure_images(e_out, data_dir=data_dir)
        scores = edit_scores(e_in, e_out, e_table, recogniser, m_in, m_out, profiles)
        disease = pd.Series(np.where(scores["target"] == UNAFFECTED, scores["source"], scores["target"]))
        age, sex = scores["age"].to_numpy(float), list(test.table["sex"].to_numpy()[scores["test_row"].to_numpy(int)])
        scores["severity score move"] = (np.asarray(scorer.score(m_out, disease, age, sex), float)
                                         - np.asarray(scorer.score(m_in, disease, age, sex), float))
        result.scores = scores
        result.figs = {edit_key(direction, method): edit_figures(g, ev.seed)
                       for (direction, method), g in scores.groupby(["direction", "method"])}
        p_images, p_table = load_arrays(data_dir, "edit_progression")
        p_score = scorer.score(measure_images(p_images, data_dir=data_dir), p_table["disease_id"],
                               np.full(len(p_table), 8.0), ["F"] * len(p_table))
        result.progression_order = order_accuracy(p_score, p_table["level"], groups=p_table["series"])
        a_images, a_table = load_arrays(data_dir, "edit_age_progression")
        result.age_spearman = spearman(estimate_age(a_images, data_dir=data_dir), a_table["age"].to_numpy(float))
        rt_images, rt_table = load_arrays(data_dir, "round_trip")
        stage = {s: rt_images[(rt_table["stage"] == s).to_numpy()] for s in ("input", "diseased", "back")}
        result.round_trip_untouched = float(np.mean(region_cosine(stage["input"], stage["back"], untouched_mask(test.size))))
        result.round_trip_whole = float(np.mean(region_cosine(stage["input"], stage["back"])))
        result.note = (f"one person along age {a_table['age'].min():.0f} -> {a_table['age'].max():.0f} y: "
                       f"Spearman(requested, estimated age) {result.age_spearman:.2f}; severity order along edited "
                       f"progressions (pixel score): {result.progression_order:.2f}; round trip identity (untouched "
                       f"regions) {result.round_trip_untouched:.3f}, whole face {result.round_trip_whole:.3f}")
    except FileNotFoundError as exc:  # what was scored before the missing file stays
        nan = float("nan")
        result.progression_order = result.age_spearman = result.round_trip_untouched = result.round_trip_whole = nan
        result.note = f"edits: {exc} (run notebook 06)"
    return result
