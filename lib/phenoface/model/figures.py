"""Figures of notebooks 05 and 06: training curves, reconstructions, sample grids and strips."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd


def _series(log: dict, key: str) -> pd.Series:
    if not log or key not in log:
        return pd.Series(dtype=float)
    s = pd.Series(log[key], index=log.get("step"), dtype=float).dropna()
    return s[~s.index.duplicated(keep="last")]


def training_curves(log: dict):
    """Autoencoder loss / PSNR and UNet training / validation loss against step (from the card's log)."""
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.6))
    ae, un = log.get("autoencoder", {}), log.get("unet", {})
    for ax, (src, keys, title) in zip(axes, ((ae, ("ae_loss", "ae_val_loss"), "autoencoder loss"),
                                             (ae, ("ae_val_psnr", "ae_psnr"), "autoencoder PSNR (dB)"),
                                             (un, ("loss", "val_loss"), "UNet denoising loss"))):
        for k in keys:
            s = _series(src, k)
            if len(s):
                ax.plot(s.index, s.to_numpy(), label=k, lw=1.2, marker="o" if len(s) < 20 else None, ms=3)
        ax.set(title=title, xlabel="step")
        if ax.lines:
            ax.legend(fontsize=8)
        else:
            ax.text(0.5, 0.5, "not logged", ha="center", va="center", transform=ax.transAxes)
    if _series(un, "loss").size:
        axes[2].set_yscale("log")
    fig.tight_layout()
    return fig


def image_row(ax_row, images, titles=None, fontsize=8):
    for i, ax in enumerate(ax_row):
        ax.axis("off")
        if i < len(images):
            ax.imshow(images[i])
            if titles is not None:
                ax.set_title(titles[i], fontsize=fontsize)


def reconstruction_grid(originals, reconstructions):
    n = len(originals)
    fig, axes = plt.subplots(2, n, figsize=(1.4 * n, 3.2), squeeze=False)
    image_row(axes[0], originals, ["original"] + [""] * (n - 1))
    image_row(axes[1], reconstructions, ["reconstructed"] + [""] * (n - 1))
    fig.tight_layout()
    return fig


def strip(images_by_row: dict, column_titles=None, title: str = ""):
    """One row per key (a label), one column per step (e.g. severity 0 -> 1)."""
    rows = list(images_by_row)
    n = max(len(v) for v in images_by_row.values())
    fig, axes = plt.subplots(len(rows), n, figsize=(1.2 * n + 2.2, 1.25 * len(rows) + 0.4), squeeze=False)
    for r, key in enumerate(rows):
        image_row(axes[r], images_by_row[key], column_titles if r == 0 else None)
        axes[r, 0].text(-0.08, 0.5, str(key)[:28], transform=axes[r, 0].transAxes, ha="right", va="center", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.subplots_adjust(left=0.25, wspace=0.04, hspace=0.12)
    return fig
