"""Figures of notebook 01: the average patient portraits."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd


def portrait_grid(portraits: np.ndarray, table: pd.DataFrame, diseases, names: dict):
    """One row per portrait kind, one column per disease (in ``diseases`` order); empty where a kind has none."""
    kinds = list(table["kind"].unique())
    fig, axes = plt.subplots(len(kinds), len(diseases), figsize=(1.3 * len(diseases), 1.5 * len(kinds)), squeeze=False)
    for i, k in enumerate(kinds):
        for j, d in enumerate(diseases):
            ax = axes[i, j]
            ax.axis("off")
            hit = np.flatnonzero(((table["kind"] == k) & (table["disease_id"] == d)).to_numpy())
            if len(hit):
                ax.imshow(portraits[hit[0]])
            if i == 0:
                ax.set_title(names[d][:14], fontsize=7)
        axes[i, 0].text(-4, 32, k, ha="right", va="center", fontsize=7)
    return fig
