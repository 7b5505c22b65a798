"""Severity scored from measurements (the method chosen on validation, test scored once) and progression:
new people over age, scored by the chosen scorers, with the control on unaffected people."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ...cohort.diseases import DISEASES
from ...config import write_json
from ...labels import UNAFFECTED
from ...profiles import load_profiles
from ...stats import bootstrap_ci, fmt_ci
from .. import SeverityScorer, age_order_accuracy
from .. import figures as evfig
from .. import order_accuracy, profile_weights, progression_series, progression_table, severity_table
from .base import StepResult, timed
from .instruments import ROUTES

PROFILE_FILES = (("image_profiles.json", "image-fused profiles (notebook 04: KG + images)"),
                 ("kg_profiles.json", "KG profiles (notebook 02)"))


def severity_weights(ev) -> tuple[dict, str]:
    """Per-disease term weights from the run's best profiles (notebook 04, else 02), else the cohort's truth."""

    prof_dir = ev.data_dir / "profiles"
    for fname, label in PROFILE_FILES:
        if (prof_dir / fname).is_file():
            return profile_weights(load_profiles(prof_dir / fname)), label
    return profile_weights(ev.train.truth), "cohort truth (oracle: no profile artifacts found)"


@dataclass
class SeverityResult(StepResult):
    profile_source: str
    methods: list
    scorers: dict  # (route, method) -> fitted SeverityScorer
    tables: dict  # (split, route, method) -> severity_table
    val_rho: dict  # (route, method) -> validation mean Spearman
    chosen: dict  # route -> method
    ci: dict  # column -> 95 % interval over diseases (test, pixels)
    ev: object = field(repr=False)
    measured: object = field(repr=False)
    seconds: dict = field(default_factory=dict)

    def scorer(self, route: str = "pixels"):
        """The scorer of the method chosen on validation for ``route``."""
        return self.scorers[route, self.chosen[route]]

    @property
    def test(self) -> dict:
        return {route: self.tables["test", route, self.chosen[route]] for route in ROUTES}

    @property
    def per_disease(self) -> pd.DataFrame:
        return self.test["pixels"].drop(index=["pooled", "mean"])

    def metrics(self) -> dict:
        sev_test = self.test
        sp = {route: sev_test[route].loc["mean"] for route in ROUTES}
        return {"severity_route": "pixels (measure_images)", "severity_method": self.chosen["pixels"],
                "severity_spearman": float(sp["pixels"]["spearman"]), "severity_spearman_ci": list(self.ci["spearman"]),
                "severity_spearman_age_only": float(sp["pixels"]["spearman_age_only"]),
                "severity_spearman_partial_age": float(sp["pixels"]["spearman_partial_age"]),
                "severity_spearman_partial_age_ci": list(self.ci["spearman_partial_age"]),
                "severity_spearman_pooled": float(sev_test["pixels"].loc["pooled", "spearman"]),
                "severity_spearman_regressor": float(sp["regressor"]["spearman"]),
                "severity_spearman_oracle": float(sp["oracle"]["spearman"]),
                "severity_spearman_partial_age_oracle": float(sp["oracle"]["spearman_partial_age"]),
                "severity_profiles": self.profile_source, **super().metrics()}

    def table(self) -> pd.DataFrame:
        """Test means per route (its chosen method) with the validation Spearman that chose it."""
        sev_test = self.test
        summary = pd.DataFrame({f"{route} (method: {self.chosen[route]})": sev_test[route].loc["mean"]
                                for route in ROUTES}).T
        summary["validation spearman"] = [self.val_rho[r, self.chosen[r]] for r in ROUTES]
        return summary[["n", "n_missing", "spearman", "spearman_age_only", "spearman_partial_age", "validation spearman"]]

    def summary(self) -> str:
        mean, ci = self.test["pixels"].loc["mean"], self.ci
        return (f"Test, pixel route (**{self.chosen['pixels']}** score, chosen on validation), mean over "
                f"{len(self.per_disease)} diseases with a 95 % interval over diseases: score "
                f"**{fmt_ci(mean['spearman'], ci['spearman'])}**, age-only baseline "
                f"{fmt_ci(mean['spearman_age_only'], ci['spearman_age_only'])}, score with age partialled out "
                f"{fmt_ci(mean['spearman_partial_age'], ci['spearman_partial_age'])}. "
                "A score below the age-only line reads less of severity than the birthday does.")

    def save(self, out_dir) -> None:
        write_json(out_dir / "severity_spearman.json", {f"{split}/{route}/{method}": t.reset_index().to_dict(orient="records")
                                                        for (split, route, method), t in self.tables.items()})

    def figures(self) -> dict:
        test, names = self.ev.test, self.ev.names
        first = evfig.severity_baselines(self.test["pixels"], names=names, title=f"severity on test faces, pixel route "
                                         f"({self.chosen['pixels']} score) vs the age-only baseline")
        aff = (test.table["disease_id"] != UNAFFECTED).to_numpy()
        frame = pd.concat([test.table.loc[aff, ["disease_id", "severity"]].assign(
            score=self.scorer(route).score(self.measured["test", route], test.table["disease_id"], test.table["age"],
                                           test.table["sex"])[aff], route=route)
            for route in ("pixels", "oracle")], ignore_index=True)
        second = evfig.severity_scatter(frame, hue="route", col="disease", names=names, title="severity score vs true "
                                        "severity on test faces (pixels; oracle = true landmarks, the ceiling)")
        return {"severity_baselines": first, "severity_scatter": second}


def severity_step(ev, measured, methods: str) -> SeverityResult:
    """Every (route, method) scorer fitted on train (reference: validation's unaffected faces), both scored on
    validation and test affected faces; per route the method with the best validation mean Spearman."""

    weights, profile_source = severity_weights(ev)
    seconds = {}
    with timed(seconds, "severity"):
        methods = [m.strip() for m in methods.split(",")]
        scorers, tables, val_rho = {}, {}, {}
        for route in ROUTES:
            for method in methods:
                scorer = SeverityScorer(weights, method=method).fit(
                    measured["train", route], ev.train.table, reference=(measured["validation", route], ev.val.table))
                scorers[route, method] = scorer
                for name, c in (("validation", ev.val), ("test", ev.test)):
                    aff = (c.table["disease_id"] != UNAFFECTED).to_numpy()
                    s = scorer.score(measured[name, route], c.table["disease_id"], c.table["age"], c.table["sex"])
                    tables[name, route, method] = severity_table(s[aff], c.table["severity"][aff], c.table["age"][aff],
                                                                 c.table["disease_id"][aff])
                val_rho[route, method] = tables["validation", route, method].loc["mean", "spearman"]
        chosen = {route: max(methods, key=lambda m: np.nan_to_num(val_rho[route, m], nan=-2)) for route in ROUTES}
    result = SeverityResult(profile_source, methods, scorers, tables, val_rho, chosen, {}, ev, measured, seconds)
    per_disease = result.per_disease
    result.ci = {c: bootstrap_ci(per_disease[c].dropna(), seed=ev.seed)[1]
                 for c in ("spearman", "spearman_age_only", "spearman_partial_age")}
    result.save(ev.out_dir)
    return result


@dataclass
class ProgressionResult(StepResult):
    images: np.ndarray
    table: pd.DataFrame
    scores: dict  # route -> scores of the progression faces
    accuracy: dict  # route -> progression_table
    control: dict  # route -> age_order_accuracy on unaffected people
    age_only: float
    unaffected: int
    affected: list
    names: dict
    seconds: dict = field(default_factory=dict)

    def metrics(self) -> dict:
        acc, control = self.accuracy, self.control
        return {"progression_order_accuracy": float(acc["pixels"].loc["all", "order_accuracy"]),
                "progression_order_accuracy_age_only": float(self.age_only),
                "progression_order_accuracy_unaffected": float(control["pixels"]["mean"]),
                "progression_order_accuracy_regressor": float(acc["regressor"].loc["all", "order_accuracy"]),
                "progression_order_accuracy_oracle": float(acc["oracle"].loc["all", "order_accuracy"]),
                "progression_order_accuracy_unaffected_oracle": float(control["oracle"]["mean"]), **super().metrics()}

    def table_summary(self) -> pd.DataFrame:
        summary = pd.DataFrame({route: {"order accuracy (affected series)": self.accuracy[route].loc["all", "order_accuracy"],
                                        "control: unaffected ordered over age (~0.5)": self.control[route]["mean"]}
                                for route in ROUTES}).T
        summary["age-only baseline"] = self.age_only
        return summary

    def summary(self) -> str:
        return (f"Correctly ordered pairs, pixel route: **{self.accuracy['pixels'].loc['all', 'order_accuracy']:.2f}** "
                f"(age alone: {self.age_only:.2f} by construction; chance 0.5); control on {self.unaffected} unaffected "
                f"people: {self.control['pixels']['mean']:.2f}.")

    def save(self, out_dir) -> None:
        write_json(out_dir / "progression.json",
                   {route: t.reset_index().to_dict(orient="records") for route, t in self.accuracy.items()})

    def figures(self) -> dict:
        show = self.table.groupby("disease_id")["series"].first().loc[self.affected[:5]].tolist()
        return {"progression_strips": evfig.progression_strip(self.images, self.table, self.scores["pixels"], show,
                                                              by="age", names=self.names)}


def progression_step(ev, measured, severity: SeverityResult, identities: int, unaffected: int) -> ProgressionResult:
    """Series over age of new people per disease (seed + 3000) and of unaffected people (seed + 4000), scored by
    each route's chosen scorer; the unaffected series scored under every disease are the control."""

    affected = [d for d in DISEASES if d != UNAFFECTED]
    seconds = {}
    with timed(seconds, "progression"):
        images, lm, prog = progression_series(affected, n_identities=identities, by="age", seed=ev.seed + 3000,
                                              size=ev.train.size)
        ctrl_images, ctrl_lm, ctrl = progression_series([UNAFFECTED], n_identities=unaffected, by="age",
                                                        seed=ev.seed + 4000, size=ev.train.size)
        scores, accuracy, control = {}, {}, {}
        for route in ROUTES:
            scorer = severity.scorer(route)
            scores[route] = scorer.score(measured.route(route, images, lm), prog["disease_id"], prog["age"], prog["sex"])
            accuracy[route] = progression_table(scores[route], prog, by="severity")
            m_ctrl = measured.route(route, ctrl_images, ctrl_lm)
            control[route] = age_order_accuracy({d: scorer.score(m_ctrl, d, ctrl["age"], ctrl["sex"]) for d in affected},
                                                ctrl)
    age_only = order_accuracy(prog["age"], prog["severity"], prog["series"], min_gap=0.02)
    result = ProgressionResult(images, prog, scores, accuracy, control, age_only, unaffected, affected, ev.names, seconds)
    result.save(ev.out_dir)
    return result
