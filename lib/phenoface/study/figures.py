"""Figures of notebook 09: real vs generated per source, confusion matrices, per-rater learning, the page."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd


def sources_figure(sources: pd.DataFrame, recogniser: dict | None = None, title: str = ""):
    """Left: real vs generated balanced accuracy per source (0.5 = indistinguishable). Right: disease accuracy
    per source, with the recogniser on the same faces and chance."""
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 0.5 * len(sources) + 2.2))
    fake = sources.drop(index="real", errors="ignore")
    y = np.arange(len(fake))
    ba = fake["real vs generated (balanced)"].to_numpy(float)
    lo, hi = np.array([c[0] for c in fake["ci"]], float), np.array([c[1] for c in fake["ci"]], float)
    a.errorbar(ba, y, xerr=[ba - lo, hi - ba], fmt="o", color="tab:blue", capsize=3)
    a.axvline(0.5, color="grey", ls="--", lw=1)
    a.set(yticks=y, yticklabels=fake.index, xlim=(0, 1), xlabel="balanced accuracy vs real faces (0.5 = indistinguishable)",
          title="real or generated?")
    a.invert_yaxis()
    y = np.arange(len(sources))
    acc = sources["disease accuracy"].to_numpy(float)
    lo, hi = np.array([c[0] for c in sources["disease ci"]], float), np.array([c[1] for c in sources["disease ci"]], float)
    b.errorbar(acc, y, xerr=[acc - lo, hi - acc], fmt="o", color="tab:green", capsize=3, label="raters")
    if recogniser is not None:
        rec = recogniser.groupby("source")["disease_correct"].mean().reindex(sources.index)
        b.plot(rec.to_numpy(float), y, "x", color="k", label="recogniser, same faces")
    b.set(yticks=y, yticklabels=sources.index, xlim=(0, 1), xlabel="disease named correctly", title="which disease?")
    b.invert_yaxis()
    b.legend(loc="lower right", fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def confusion_figure(tables: dict[str, pd.DataFrame], names: dict[str, str]):
    """Row-normalised confusion matrices side by side (truth rows, answers columns)."""
    fig, axes = plt.subplots(1, len(tables), figsize=(5.2 * len(tables), 4.8), squeeze=False)
    for ax, (title, tab) in zip(axes[0], tables.items()):
        share = tab.div(tab.sum(axis=1).replace(0, np.nan), axis=0).fillna(0).to_numpy()
        ax.imshow(share, vmin=0, vmax=1, cmap="Blues")
        labels = [names.get(d, d)[:14] for d in tab.index]
        ax.set(xticks=range(len(labels)), yticks=range(len(labels)), title=f"{title} ({int(tab.to_numpy().sum())} answers)",
               xlabel="answered", ylabel="truth")
        ax.set_xticklabels(labels, rotation=70, fontsize=7)
        ax.set_yticklabels(labels, fontsize=7)
    fig.tight_layout()
    return fig


def learning_figure(frame: pd.DataFrame, window: int = 10):
    """Each rater's share correct over their ratings (a running mean over ``window`` answers)."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.4), sharey=True)
    for ax, (column, title) in zip(axes, (("realness_correct", "real or generated: correct"),
                                          ("disease_correct", "disease: correct"))):
        for rater, g in frame.groupby("rater"):
            ax.plot(g["position"].to_numpy() + 1, g[column].rolling(window, min_periods=1).mean().to_numpy(), lw=1,
                    alpha=0.7)
        ax.set(xlabel="answer number", title=f"{title} (running mean of {window})", ylim=(0, 1))
    axes[0].set_ylabel("share correct, per rater")
    fig.tight_layout()
    return fig


def image_figure(path, title: str = ""):
    from PIL import Image

    img = np.asarray(Image.open(path).convert("RGB"))
    fig, ax = plt.subplots(figsize=(img.shape[1] / 110, img.shape[0] / 110))
    ax.imshow(img)
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=9)
    return fig
