"""Control from pixels: severity order and per-term Spearman along notebook 06's same-noise series, against
two ceilings (the same series rendered, and those renders through the generator's autoencoder)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ...cohort.terms import TERMS
from ...model.quality import reconstruct, term_retention
from ...phenotypes import measure_images
from ...sampling.generated_cohort import load_arrays
from ...stats import bootstrap_stat_ci, fmt_ci, spearman
from ..generated import rendered_series, series_control, series_severity
from .base import StepResult, timed

GOAL = 0.8  # per-term Spearman(requested intensity, measured) every term should reach
GENERATED = "generated"
RENDERS = "renders"
THROUGH_AE = "renders through the autoencoder"
RETENTION = "test faces: readings kept through the autoencoder (Pearson)"


@dataclass
class TermControlResult(StepResult):
    ceiling: dict  # renders / renders through the autoencoder / generated -> series_control
    terms: pd.DataFrame  # term (name) x kind: Spearman, and the test faces' retention
    link: float  # Spearman across terms: generated vs the autoencoder ceiling
    link_ci: tuple
    seconds: dict = field(default_factory=dict)

    @property
    def generated(self) -> dict:
        return self.ceiling[GENERATED]

    @property
    def lost(self) -> list:
        """Terms the autoencoder ceiling already puts under the goal."""
        return self.terms.index[self.terms[THROUGH_AE] < GOAL].tolist()

    def metrics(self) -> dict:
        gen, ren, ae = self.generated, self.ceiling[RENDERS], self.ceiling[THROUGH_AE]
        return {"generated_severity_order_accuracy": float(gen["severity_order_accuracy"]),
                "generated_term_spearman_min": float(gen["term_spearman"].min()),
                "generated_term_spearman_median": float(gen["term_spearman"].median()),
                "generated_terms_at_goal": int((gen["term_spearman"] >= GOAL).sum()),
                "ceiling_severity_order_accuracy_renders": float(ren["severity_order_accuracy"]),
                "ceiling_severity_order_accuracy_autoencoder": float(ae["severity_order_accuracy"]),
                "ceiling_term_spearman_min_renders": float(ren["term_spearman"].min()),
                "ceiling_term_spearman_min_autoencoder": float(ae["term_spearman"].min()),
                "ceiling_term_spearman_median_autoencoder": float(ae["term_spearman"].median()),
                "ceiling_terms_below_goal_autoencoder": len(self.lost),
                "term_control_vs_autoencoder_spearman": float(self.link),
                "term_control_vs_autoencoder_spearman_ci": list(self.link_ci), **super().metrics()}

    def table(self) -> pd.DataFrame:
        return pd.DataFrame({k: {"severity order accuracy (goal ≥ 0.9)": v["severity_order_accuracy"],
                                 f"terms at Spearman ≥ {GOAL} (goal: all)":
                                     f"{int((v['term_spearman'] >= GOAL).sum())} of {len(v['term_spearman'])}",
                                 "weakest term": v["term_spearman"].min(), "median term": v["term_spearman"].median()}
                             for k, v in self.ceiling.items()})

    def summary(self) -> str:
        lost = self.lost
        return (f"Severity order accuracy along generated series: {self.generated['severity_order_accuracy']:.2f}. "
                f"Through the autoencoder, **{len(lost)} of {len(self.terms)} terms** fall under the {GOAL} goal before "
                f"any UNet is involved: {', '.join(lost) or 'none'}. Across terms, the generated control follows "
                f"the autoencoder's ceiling with Spearman {fmt_ci(self.link, self.link_ci)} (interval over terms).")

    def figures(self) -> dict:
        import matplotlib.pyplot as plt

        term_sp = self.generated["term_spearman"].rename(index=TERMS).sort_values()
        first, ax = plt.subplots(figsize=(7, 5))
        ax.barh(term_sp.index, term_sp.to_numpy(), color=["tab:green" if v >= GOAL else "tab:red" for v in term_sp])
        ax.axvline(GOAL, color="k", ls="--", lw=1)
        ax.set(xlim=(-1, 1), xlabel="Spearman(requested intensity, measured)", title="generated term control (same noise)")

        t = self.terms
        second, ax = plt.subplots(figsize=(7.5, 6.2))
        y = np.arange(len(t))
        ax.barh(y, t[GENERATED], color="tab:blue", alpha=0.6, label="generated")
        ax.plot(t[RENDERS], y, "k|", ms=12, mew=2, label="renders (instrument ceiling)")
        ax.plot(t[THROUGH_AE], y, "D", color="tab:orange", ms=5, label="renders through the autoencoder (latent ceiling)")
        ax.axvline(GOAL, color="tab:red", ls="--", lw=1, label="goal")
        ax.set(yticks=y, yticklabels=t.index, xlim=(-1, 1.05), xlabel="Spearman(requested intensity, measured)",
               title="term control: generated faces against their two ceilings")
        ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.45, -0.12), ncol=2)  # below: never over a bar
        second.tight_layout()
        return {"generated_term_control": first, "term_control_ceilings": second}


def term_control_step(ev, measured, severity, generated) -> TermControlResult:
    """Notebook 06's series (pixel severity score, the scorer chosen on validation; per-term readings) and the
    same series rendered (seed + 5000, age 8, sex F), measured directly and through the autoencoder."""

    data_dir, scorer = ev.data_dir, severity.scorer("pixels")
    ser_images, ser_table = load_arrays(data_dir, "series")
    ser_measured = measure_images(ser_images, data_dir=data_dir)
    control_gen = series_control(ser_table, series_severity(scorer, ser_table, ser_measured), ser_measured)
    seconds = {}
    with timed(seconds, "ceiling"):
        ren_images, ren_table = rendered_series(ser_table, seed=ev.seed + 5000, size=ev.train.size)
        ceiling = {}
        for label, imgs in ((RENDERS, ren_images), (THROUGH_AE, reconstruct(generated.model, ren_images))):
            m = measure_images(imgs, data_dir=data_dir)
            ceiling[label] = series_control(ren_table, series_severity(scorer, ren_table, m), m)
        ceiling[GENERATED] = control_gen
        terms = pd.DataFrame({k: v["term_spearman"] for k, v in ceiling.items()})
        terms[RETENTION] = term_retention(measured["test", "pixels"],
                                          measure_images(generated.test_reconstructed, data_dir=data_dir))
        terms = terms.rename(index=TERMS).sort_values(THROUGH_AE)
    ae_col, gen_col = terms[THROUGH_AE].to_numpy(), terms[GENERATED].to_numpy()
    link, link_ci = bootstrap_stat_ci(lambda i: spearman(ae_col[i], gen_col[i]), len(terms), seed=ev.seed)
    return TermControlResult(ceiling, terms, link, link_ci, seconds)
