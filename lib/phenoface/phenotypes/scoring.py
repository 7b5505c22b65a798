"""The chosen instrument scored on the test cohort (notebook 04): can it read each term, does "more severe" read
as more severe at a fixed age, how well does it read age; each on clean faces and on faces blurred with
σ :data:`BLUR` px (what a generator's softness does).

    >>> terms = term_checks(measure, identities=3, n=1024, seed=SEED + 2007, size=64)
    >>> severity = severity_check(measure, train.truth, weights, identities=3, seed=SEED + 2007, size=64)
    >>> age = age_check(test.images, test.table["age"], train.table["age"], data_dir)
    >>> {**terms.metrics(), **severity.metrics(), **age.metrics()}

``measure`` is a callable images -> measurements (one column per term), as in :mod:`.validation`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

from ..cohort.independent import render_independent
from ..labels import UNAFFECTED
from ..stats import bootstrap_ci, fmt_ci, order_accuracy
from .measure import estimate_age
from .validation import (LEVELS, blur_images, blurred, profile_score, severity_series, term_intensity_pearson,
                         term_intensity_spearman)

BLUR = 0.7  # px; the metrics' "blur07" suffix
SPEARMAN_GOAL, PEARSON_GOAL = 0.9, 0.8
USUAL = 0.3  # a severity series shows a disease's terms with at least this true probability


@dataclass
class TermChecks:
    """Per term: Spearman on one face at rising intensity, Pearson across faces; clean and blurred."""

    spearman: pd.DataFrame
    spearman_blur: pd.DataFrame
    pearson: pd.DataFrame
    pearson_blur: pd.DataFrame
    renders: int
    seconds: float

    def table(self) -> pd.DataFrame:
        return pd.DataFrame({"spearman": self.spearman["spearman"], "spearman blurred": self.spearman_blur["spearman"],
                             "pearson": self.pearson["pearson"], "pearson blurred": self.pearson_blur["pearson"]})

    def weak(self) -> list:
        """Terms below either goal (Spearman ≥ 0.9, Pearson ≥ 0.8)."""
        t = self.table()
        return list(t.index[(t["spearman"] < SPEARMAN_GOAL) | (t["pearson"] < PEARSON_GOAL)])

    def summary(self, names: dict) -> str:
        """Markdown: the weakest term's figures, and the terms (labelled by ``names``) below a goal."""
        m, weak = self.metrics(), [names[t] for t in self.weak()]
        return (f"Minimum over terms: Spearman **{m['term_intensity_spearman_min']:.2f}** (blurred "
                f"{m['term_intensity_spearman_min_blur07']:.2f}), Pearson **{m['term_intensity_pearson_min']:.2f}** "
                f"(blurred {m['term_intensity_pearson_min_blur07']:.2f}). "
                + (f"Below goal: {', '.join(weak)}." if weak else "Every term meets both goals."))

    def metrics(self) -> dict:
        return {"term_intensity_spearman_min": float(self.spearman["spearman"].min()),
                "term_intensity_spearman_min_blur07": float(self.spearman_blur["spearman"].min()),
                "term_intensity_pearson_min": float(self.pearson["pearson"].min()),
                "term_intensity_pearson_min_blur07": float(self.pearson_blur["pearson"].min())}


def term_checks(measure: Callable, identities: int = 3, n: int = 1024, seed: int = 0, size: int = 64) -> TermChecks:
    """:func:`.validation.term_intensity_spearman` on ``identities`` new people per term and
    :func:`.validation.term_intensity_pearson` on ``n`` independent-term renders, both also blurred."""
    start = time.perf_counter()
    sp = term_intensity_spearman(measure, identities=identities, seed=seed, size=size)
    sp_blur = term_intensity_spearman(blurred(measure, BLUR), identities=identities, seed=seed, size=size)
    images, table = render_independent(n, seed=seed, size=size)
    r = term_intensity_pearson(measure, images=images, table=table)
    r_blur = term_intensity_pearson(blurred(measure, BLUR), images=images, table=table)
    renders = len(sp) * identities * len(LEVELS) + 2 * n
    return TermChecks(sp, sp_blur, r, r_blur, renders, time.perf_counter() - start)


@dataclass
class SeverityCheck:
    """Same-age severity series: the profile-weighted score per face and how well it orders each series."""

    table: pd.DataFrame
    score: np.ndarray
    accuracy: float
    accuracy_blur: float
    per_series: pd.Series
    point: float
    ci: tuple

    def summary(self) -> str:
        return (f"Same-age severity order accuracy: **{fmt_ci(self.point, self.ci)}** (mean over series, 95 % interval; "
                f"pooled pairs {self.accuracy:.3f}); blurred σ {BLUR}: {self.accuracy_blur:.3f}; chance 0.5.")

    def metrics(self) -> dict:
        return {"severity_order_accuracy_same_age": float(self.accuracy),
                "severity_order_accuracy_same_age_ci": list(self.ci),
                "severity_order_accuracy_same_age_blur07": float(self.accuracy_blur)}


def severity_check(measure: Callable, truth: pd.DataFrame, weights: dict, identities: int = 3, seed: int = 0,
                   size: int = 64, ci_seed: int = 0) -> SeverityCheck:
    """Each disease with usual terms (true probability ≥ 0.3) shown on ``identities`` new people at severity
    0 → 1, one age per series (:func:`.validation.severity_series`); the score is the measurement weighted by
    ``weights`` (disease -> term weights); pooled and per-series order accuracy (bootstrap interval over series)."""
    affected = [d for d in truth.index if d != UNAFFECTED and (truth.loc[d] >= USUAL).any()]
    images, table = severity_series(truth, affected, identities=identities, seed=seed, size=size)
    score = profile_score(measure(images), table["disease_id"], weights)
    accuracy = order_accuracy(score, table["severity"], table["series"])
    score_blur = profile_score(blurred(measure, BLUR)(images), table["disease_id"], weights)
    accuracy_blur = order_accuracy(score_blur, table["severity"], table["series"])
    per_series = table.assign(score=score).groupby("series").apply(
        lambda g: order_accuracy(g["score"], g["severity"]), include_groups=False)
    point, ci = bootstrap_ci(per_series.to_numpy(), seed=ci_seed)
    return SeverityCheck(table, score, accuracy, accuracy_blur, per_series, point, ci)


@dataclass
class AgeCheck:
    """Age from pixels against the truth, beside guessing the training cohort's mean age."""

    true: np.ndarray
    predicted: np.ndarray
    mae: float
    ci: tuple
    mean_age_mae: float
    mae_blur: float

    def summary(self) -> str:
        return (f"Age MAE **{fmt_ci(self.mae, self.ci, 1)} years** on {len(self.true)} test faces (goal ≤ 3); blurred "
                f"σ {BLUR}: {self.mae_blur:.1f}; guessing the mean age: {self.mean_age_mae:.1f}.")

    def metrics(self) -> dict:
        return {"age_mae": float(self.mae), "age_mae_ci": list(self.ci), "age_mae_blur07": self.mae_blur,
                "age_mae_mean_age_baseline": self.mean_age_mae}


def age_check(images, ages, train_ages, data_dir=None, seed: int = 0) -> AgeCheck:
    """:func:`phenoface.phenotypes.estimate_age` on ``images`` (clean and blurred); MAE with a bootstrap interval."""

    predicted = estimate_age(images, data_dir=data_dir)
    true = np.asarray(ages, float)
    mae, ci = bootstrap_ci(np.abs(predicted - true), seed=seed)
    mean_age_mae = float(np.abs(true - pd.Series(train_ages).mean()).mean())
    mae_blur = float(np.abs(estimate_age(blur_images(images, BLUR), data_dir=data_dir) - true).mean())
    return AgeCheck(true, predicted, mae, ci, mean_age_mae, mae_blur)
