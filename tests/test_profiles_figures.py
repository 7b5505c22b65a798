"""Notebook 04's profile figures draw what they are given."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from phenoface.cohort.terms import TERM_IDS, TERMS  # noqa: E402
from phenoface.profiles import figures as prf  # noqa: E402
from phenoface.profiles.pipeline import SOURCES  # noqa: E402


def _effects(flag=""):
    table = pd.DataFrame({"effect": [1.5, 0.2], "ci_low": [1.0, -0.3], "ci_high": [2.0, 0.7], "n_pos": [30, 30],
                          "n_neg": [40, 40]}, index=TERM_IDS[:2])
    s = pd.Series([1.5, 0.2], index=TERM_IDS[:2])
    s.attrs = {"table": table, "flag": flag}
    return s


def test_precision_bars_one_bar_per_source_with_the_goal():
    summary = pd.DataFrame({"mean": np.linspace(0.2, 0.9, len(SOURCES)),
                            "ci": [(m - 0.1, m + 0.05) for m in np.linspace(0.2, 0.9, len(SOURCES))]}, index=SOURCES)
    fig = prf.precision_bars(summary)
    ax = fig.axes[0]
    assert len(ax.patches) == len(SOURCES) and ax.patches[-1].get_width() == summary["mean"].iloc[0]
    assert [line.get_xdata()[0] for line in ax.lines if line.get_linestyle() == "--"] == [0.95]
    plt.close(fig)


def test_forest_plot_colours_true_terms_and_marks_the_kg():
    truth = pd.Series({TERM_IDS[0]: 0.8, TERM_IDS[1]: 0.0})
    fig = prf.forest_plot(_effects(), truth, {TERM_IDS[1]: 0.5}, "D", dict(TERMS))
    ax = fig.axes[0]
    assert ax.get_title().startswith("D: image-learned effects (n = 30 vs 40")
    assert [line.get_color() for line in ax.lines[:2]] == ["#8c8c8c", "#ff7f0e"]  # drawn bottom-up
    plt.close(fig)


def test_heatmaps_blank_a_flagged_disease_and_box_the_divergence():
    learned = {"A": _effects(), "B": _effects("too few positives")}
    truth = pd.DataFrame(0.5, index=["A", "B"], columns=list(TERMS))
    divergence = [{"disease_id": "A", "hpo_id": TERM_IDS[1]}, {"disease_id": "Z", "hpo_id": TERM_IDS[0]}]
    fig = prf.truth_image_kg_heatmaps(learned, truth, {"A": {TERM_IDS[0]: 1.0}}, divergence, {"A": "a", "B": "b"},
                                      dict(TERMS))
    assert sum(len(ax.patches) for ax in fig.axes[:3]) == 3  # one box per panel, only for the cohort's disease
    mid = fig.axes[1].collections[0].get_array()
    assert np.ma.getmaskarray(mid).reshape(2, -1)[1].all()  # the flagged disease has no image-learned row
    plt.close(fig)
