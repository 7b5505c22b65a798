"""Checks of the generator itself: the sampling-side faults before and after their fixes, zero-shot diseases
judged by the terms they raise, and membership inference from the model's own denoising loss."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ...cohort.terms import TERMS
from ...conditioning import Condition
from ...model.data import condition_arrays, tags_from_measurements
from ...model.quality import denoising_losses
from ...phenotypes import measure_images
from ...profiles import load_profiles
from ...sampling import zero_shot_terms
from ...sampling.generated_cohort import load_arrays
from .. import figures as evfig
from ..faults import fault_metrics, sampling_faults
from ..generated import membership_auc, zero_shot_precision
from .base import StepResult, timed

MEMBERSHIP_N = 256  # faces per side of the membership test


@dataclass
class FaultsResult(StepResult):
    table: pd.DataFrame  # fault, metric, setting, value, lo, hi
    seconds: dict = field(default_factory=dict)

    def metrics(self) -> dict:
        return {**fault_metrics(self.table), **super().metrics()}

    def display_table(self) -> pd.DataFrame:
        t = self.table
        return t.assign(interval=[f"[{lo:.2f}, {hi:.2f}]" for lo, hi in zip(t["lo"], t["hi"])]).drop(
            columns=["lo", "hi"]).set_index(["fault", "metric", "setting"])

    def figures(self) -> dict:
        return {"sampling_faults": evfig.sampling_faults(self.table)}


def faults_step(ev, generated, recogniser, severity, per_disease: int, steps: int, guidance: float) -> FaultsResult:
    """:func:`~phenoface.evaluation.faults.sampling_faults` on validation conditions (seed + 31), judged by the
    recogniser and the pixel severity scorer chosen on validation."""

    seconds = {}
    with timed(seconds, "sampling_faults"):
        kg_profiles = {p.disease_id: p for p in load_profiles(ev.data_dir / "profiles" / "kg_profiles.json")}
        table = sampling_faults(generated.model, ev.val, recogniser, ev.data_dir, kg_profiles, per_disease=per_disease,
                                steps=steps, guidance=guidance, seed=ev.seed + 31, scorer=severity.scorer("pixels"))
    return FaultsResult(table, seconds)


@dataclass
class ZeroShotResult(StepResult):
    precision: dict  # disease -> zero_shot_precision
    note: str

    def metrics(self) -> dict:
        p = self.precision
        return {"zero_shot_precision": float(np.mean([r["precision"] for r in p.values()])) if p else float("nan"),
                "zero_shot_precision_chance": float(np.mean([r["chance"] for r in p.values()])) if p else float("nan")}


def zero_shot_step(ev, generated) -> ZeroShotResult:
    """Per zero-shot disease: the terms measured as raised against the unaffected faces drawn from the same
    noise, against its KG profile (precision at k beside chance)."""

    precision, lines = {}, []
    try:
        images, table = load_arrays(ev.data_dir, "zero_shot")
        ctrl, _ = load_arrays(ev.data_dir, "zero_shot_control")
    except FileNotFoundError as exc:
        return ZeroShotResult(precision, str(exc))
    for d, g in table.groupby("disease_id"):
        rows = g.index.to_numpy()
        r = zero_shot_precision(measure_images(images[rows], data_dir=ev.data_dir),
                                measure_images(ctrl[rows], data_dir=ev.data_dir), zero_shot_terms(generated.model, d))
        precision[d] = r
        lines.append(f"{ev.names.get(d, d)}: precision@{r['k']} {r['precision']:.2f} (chance {r['chance']:.2f}); "
                     f"raised most: {', '.join(TERMS.get(t, t) for t in r['top'])}")
    return ZeroShotResult(precision, "\n".join(lines))


@dataclass
class MembershipResult(StepResult):
    auc: float
    tpr: float  # members caught at a 1 % false-positive rate on non-members
    n_train: int
    n_test: int

    def metrics(self) -> dict:
        return {"membership_auc": float(self.auc), "membership_tpr_at_fpr1": self.tpr}

    def summary(self) -> str:
        return (f"membership inference (denoising loss, {self.n_train} train vs {self.n_test} test faces): AUROC "
                f"{self.auc:.3f}, TPR at 1 % FPR {self.tpr:.3f} (goal ≤ 0.02; chance 0.01)")


def membership_inputs(model, cohort, measured, n: int):
    """The first ``n`` faces of ``cohort`` whose disease the model was trained on, with their conditions
    (terms tagged from the pixel measurements, as the model was trained)."""

    held = set(model.card.get("zero_shot", []))
    tags = tags_from_measurements(measured)
    idx = np.flatnonzero(~cohort.table["disease_id"].isin(held).to_numpy())[:n]
    arrays = condition_arrays(cohort.table.iloc[idx], model.diseases, tags[idx])
    return cohort.images[idx], Condition.from_arrays(**arrays)


def membership_step(ev, generated, measured) -> MembershipResult:
    """Can the model's denoising loss tell its training faces from test faces (AUROC; 0.5: it cannot)?"""

    model, n = generated.model, min(MEMBERSHIP_N, len(ev.test))
    tr_img, tr_cond = membership_inputs(model, ev.train, measured["train", "pixels"], n)
    te_img, te_cond = membership_inputs(model, ev.test, measured["test", "pixels"], n)
    loss_train = denoising_losses(model, tr_img, tr_cond, seed=ev.seed)
    loss_test = denoising_losses(model, te_img, te_cond, seed=ev.seed)
    tpr = float((loss_train < np.quantile(loss_test, 0.01)).mean())
    return MembershipResult(membership_auc(loss_train, loss_test), tpr, len(tr_img), len(te_img))
