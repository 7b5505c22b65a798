"""Notebook 03's figures: the grounding threshold on the validation phrases, and the claims per age band."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd


def grounding_threshold_figure(gev: dict):
    """Validation accuracy against the similarity threshold, with the threshold used marked."""
    gm, threshold = gev["metrics"], gev["threshold"]
    fig, ax = plt.subplots(figsize=(6.5, 3.2))
    ax.plot(gev["curve"]["threshold"], gev["curve"]["accuracy"], color="#264653", label="validation accuracy")
    how = "chosen on validation" if gev["source"] == "validation" else "forced"
    ax.axvline(threshold, color="#e76f51", ls="--", label=f"threshold {threshold:.2f} ({how})")
    ax.set_xlabel("MiniLM cosine similarity threshold")
    ax.set_ylabel("accuracy")
    ax.set_title(f"Grounding accuracy on {gm['grounding_phrases_validation']} validation phrases")
    ax.legend(loc="lower left", fontsize=8)
    return fig


def claims_by_band_figure(counts: pd.DataFrame, title: str):
    """Stacked bars per band: claimed phrases grounded and in the KG, grounded and not, ungrounded."""
    fig, ax = plt.subplots(figsize=(7, 0.6 * len(counts) + 1.8))
    counts.plot.barh(stacked=True, ax=ax, color=["#2a9d8f", "#e9c46a", "#bbbbbb"])
    ax.set_xlabel("claimed phrases")
    ax.set_title(title)
    return fig
