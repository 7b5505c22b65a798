"""Notebook 04's instrument figures draw what they are given."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from phenoface.cohort.terms import TERM_IDS, TERMS  # noqa: E402
from phenoface.phenotypes import figures as pf  # noqa: E402
from phenoface.phenotypes.scoring import AgeCheck, SeverityCheck, TermChecks  # noqa: E402


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def test_short_names_shorten_only_the_fissures():
    short = pf.short_names()
    assert set(short) == set(TERMS)
    assert all("palpebral" not in v for v in short.values())
    assert sum(a != b for a, b in zip(short.values(), TERMS.values())) == sum("palpebral fissure" in v for v in TERMS.values())


def test_specificity_heatmap_labels_each_row_with_its_signal_to_noise():
    spec = pd.DataFrame(np.eye(len(TERM_IDS)), index=TERM_IDS, columns=TERM_IDS)
    spec.attrs["own_sd"] = pd.Series([2.0] * (len(TERM_IDS) - 1) + [5000.0], index=TERM_IDS)
    fig = pf.specificity_heatmap(spec, pf.short_names())
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert texts.count("2.0 SD") == len(TERM_IDS) - 1 and "no spread" in texts


def test_regressor_examples_show_best_median_worst_and_the_histogram():
    rng = np.random.default_rng(0)
    images, truth = np.zeros((5, 16, 16, 3), np.uint8), rng.uniform(0, 16, (5, 68, 2))
    errors = np.array([0.3, 0.1, 0.2, 0.5, 0.4])
    fig = pf.regressor_examples(images, truth, truth, errors)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["NME 0.100", "NME 0.300", "NME 0.500", "test NME"]


def test_term_severity_and_age_figures():
    frame = pd.DataFrame({"spearman": np.linspace(0, 1, len(TERM_IDS)), "pearson": 0.5}, index=TERM_IDS)
    checks = TermChecks(frame, frame, frame, frame, 10, 1.0)
    fig = pf.term_check_bars(checks, pf.short_names())
    assert len(fig.axes) == 2 and len(fig.axes[0].patches) == 2 * len(TERM_IDS)
    table = pd.DataFrame({"series": ["a"] * 3 + ["b"] * 3, "severity": [0, 0.5, 1] * 2})
    sev = SeverityCheck(table, np.arange(6.0), 1.0, 1.0, pd.Series([1.0, 1.0]), 1.0, (1.0, 1.0))
    assert len(pf.severity_lines(sev).axes[0].lines) == 2
    age = AgeCheck(np.array([5.0, 30.0]), np.array([6.0, 28.0]), 1.5, (1.0, 2.0), 12.5, 2.0)
    assert "test MAE 1.5 y" in pf.age_scatter(age).axes[0].get_title()
    assert len(pf.training_loss([3.0, 2.0, 1.0]).axes[0].lines[0].get_xdata()) == 3
    curves = {"a": pd.Series([0.5, 0.7], index=[0.0, 0.5]), "b": pd.Series([0.4, 0.4], index=[0.0, 0.5])}
    assert len(pf.sd_floor_curves(curves).axes[0].lines) == 2


def test_photo_landmarks_mark_photos_without_a_face():
    photos = [{"image": np.zeros((16, 16, 3), np.uint8), "source": "x"}]
    fig = pf.photo_landmarks(photos, {(0, "mediapipe"): np.full((68, 2), 8.0), (0, "dlib"): None}, 1)
    assert [ax.get_title() for ax in fig.axes] == ["x · mediapipe", "x · dlib (no face)"]
