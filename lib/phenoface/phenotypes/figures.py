"""Figures of notebook 04's instrument checks: meter specificity, landmark errors, the pixel instrument's
training loss and validation choice, and its term, severity and age checks on the test cohort.

Every function returns a matplotlib figure (the notebook saves and shows it); ``short`` maps HPO ids to the
short labels of :func:`short_names`.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from ..cohort.terms import TERM_IDS, TERMS
from ..datasets.landmarks import draw_landmarks
from .backends import landmarks_for
from .scoring import PEARSON_GOAL, SPEARMAN_GOAL

BACKENDS_SHOWN = ("mediapipe", "dlib", "regressor")


def short_names(terms: dict = TERMS) -> dict:
    """HPO id -> term name with "palpebral fissure(s)" shortened to "fissures" (axis labels)."""
    return {t: n.replace("palpebral fissures", "fissures").replace("palpebral fissure", "fissures")
            for t, n in terms.items()}


def specificity_heatmap(spec: pd.DataFrame, short: dict):
    """The :func:`phenoface.phenotypes.checks.specificity` matrix, each row's own-term signal to noise beside it."""
    fig, ax = plt.subplots(figsize=(13, 9))
    sns.heatmap(spec.clip(-1, 1).rename(index=short, columns=short), cmap="RdBu_r", center=0, vmin=-1, vmax=1, ax=ax,
                cbar_kws={"label": "change / own-term change", "shrink": 0.6})
    for yy, t in enumerate(spec.index):
        v = spec.attrs["own_sd"][t]
        ax.text(len(spec.columns) + 0.2, yy + 0.5, f"{v:.1f} SD" if v < 1000 else "no spread", va="center", fontsize=7)
    ax.set(xlabel="term applied at full severity", ylabel="measurement")
    ax.set_title("Meter specificity on renders")
    return fig


def regressor_examples(images, truth, predicted, errors):
    """The best, median and worst test faces (render's landmarks green, predicted magenta) and the NME histogram."""
    mean = float(np.mean(errors))
    show = np.argsort(errors)[[0, len(errors) // 2, -1]]
    fig, axes = plt.subplots(1, len(show) + 1, figsize=(3.2 * (len(show) + 1), 3.4))
    for ax, i in zip(axes, show):
        draw_landmarks(ax, images[i], truth[i], color="#2ca02c", size=4)
        ax.scatter(predicted[i, :, 0], predicted[i, :, 1], s=5, c="#ff00ff", zorder=4)
        ax.set_title(f"NME {errors[i]:.3f}", fontsize=9)
    axes[-1].hist(errors, bins=30, color="#555")
    axes[-1].axvline(mean, color="C3", lw=1.5, label=f"mean {mean:.3f}")
    axes[-1].set(title="test NME", xlabel="NME")
    axes[-1].legend()
    fig.suptitle("Regressor on test faces: best, median, worst (green = render's landmarks, magenta = predicted)")
    fig.tight_layout()
    return fig


def backend_examples(image, truth, table: pd.DataFrame, regressor, backends=BACKENDS_SHOWN):
    """One render at 256 px: its own landmarks (green) against each backend's (magenta), with the backend's NME."""

    fig, axes = plt.subplots(1, len(backends), figsize=(11, 3.9), squeeze=False)
    for ax, b in zip(axes[0], backends):
        found, pts = landmarks_for(image[None], b, regressor=regressor)
        draw_landmarks(ax, image, truth, color="#2ca02c", size=4)
        if found[0]:
            ax.scatter(pts[0, :, 0], pts[0, :, 1], s=6, c="#ff00ff", zorder=4)
        r = table.loc[b]
        ax.set_title(f"{b}: NME {r['nme']:.3f}, found {r['found']}/{r['n']}", fontsize=9)
    fig.suptitle("One render at 256 px: the render's landmarks (green) vs each backend (magenta)")
    fig.tight_layout()
    return fig


def training_loss(loss):
    """The pixel instrument's training loss per epoch."""
    fig, ax = plt.subplots(figsize=(5, 2.8))
    ax.plot(np.arange(1, len(loss) + 1), loss, marker="o")
    ax.set(xlabel="epoch", ylabel="training loss", title="pixel instrument: training loss")
    return fig


def sd_floor_curves(curves: dict):
    """Validation precision@k against the residual-SD floor, one line per candidate instrument."""
    fig, ax = plt.subplots(figsize=(5.5, 3))
    for name, curve in curves.items():
        ax.plot(curve.index, curve.values, marker="o", label=name)
    ax.set(xlabel="residual-SD floor (fraction of the median term SD)", ylabel="mean precision@k",
           title="validation: image-learned profiles vs the truth", ylim=(0, 1.02))
    ax.legend(fontsize=8)
    return fig


def term_check_bars(checks, short: dict):
    """:class:`.scoring.TermChecks` per term: Spearman on a rising series (left) and Pearson across faces
    (right), clean and blurred, against their goals."""

    fig, axes = plt.subplots(1, 2, figsize=(15, 4.2), sharey=True)
    x = np.arange(len(TERM_IDS))
    for ax, clean, soft, col, goal, title in [
            (axes[0], checks.spearman["spearman"], checks.spearman_blur["spearman"], "#1f77b4", SPEARMAN_GOAL,
             "same face, rising intensity: Spearman"),
            (axes[1], checks.pearson["pearson"], checks.pearson_blur["pearson"], "#2ca02c", PEARSON_GOAL,
             "across test faces: Pearson(true, measured)")]:
        ax.bar(x - 0.2, clean.reindex(TERM_IDS), 0.4, color=col, label="clean")
        ax.bar(x + 0.2, soft.reindex(TERM_IDS), 0.4, color=col, alpha=0.4, label="blurred σ 0.7")
        ax.axhline(goal, color="C3", ls="--", lw=1, label=f"goal {goal}")
        ax.set_xticks(x)
        ax.set_xticklabels([short[t] for t in TERM_IDS], rotation=75, fontsize=7)
        ax.set(title=title, ylim=(min(0, float(np.nanmin(soft))) - 0.05, 1.02))
        ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    return fig


def severity_lines(check):
    """:class:`.scoring.SeverityCheck`: each same-age series' profile-weighted score against the requested severity."""
    fig, ax = plt.subplots(figsize=(7, 3.6))
    for _, g in check.table.assign(score=check.score).groupby("series"):
        ax.plot(g["severity"], g["score"], color="#d62728", alpha=0.35)
    ax.set(xlabel="requested severity", ylabel="profile-weighted measurement",
           title=f"{len(check.per_series)} series (one person, one age, one disease): order accuracy {check.accuracy:.2f}")
    return fig


def age_scatter(check):
    """:class:`.scoring.AgeCheck`: age from pixels against the true age, the mean-age guess's error in the title."""
    fig, ax = plt.subplots(figsize=(4.6, 4.2))
    ax.scatter(check.true, check.predicted, s=6, alpha=0.5)
    ax.plot([0, 62], [0, 62], color="k", lw=0.8)
    ax.set(xlabel="true age (years)", ylabel="estimated from pixels",
           title=f"test MAE {check.mae:.1f} y (mean-age guess {check.mean_age_mae:.1f} y)")
    return fig


def photo_landmarks(photos, landmarks: dict, n: int, backends=("mediapipe", "dlib")):
    """Photos (columns) with each backend's landmarks (rows); ``landmarks[(i, backend)]`` is None without a face."""
    fig, axes = plt.subplots(2, n, figsize=(3.3 * n, 6.8), squeeze=False)
    for i in range(n):
        for r, b in enumerate(backends):
            draw_landmarks(axes[r, i], photos[i]["image"], landmarks[(i, b)])
            axes[r, i].set_title(f"{photos[i]['source']} · {b}" + ("" if landmarks[(i, b)] is not None else " (no face)"),
                                 fontsize=8)
    fig.tight_layout()
    return fig
