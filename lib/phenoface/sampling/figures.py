"""Figures drawn with the sampler: a grid of generated faces per disease."""

from __future__ import annotations

import matplotlib.pyplot as plt

from ..model.figures import image_row
from . import generate, zero_shot_request


def sample_grid(model, diseases, names=None, zero_shot=(), n: int = 4, age: float = 8.0, severity: float = 1.0,
                seed: int = 0, steps: int = 25, guidance: float = 3.0):
    """Rows: diseases (zero-shot ones drawn from their profile terms, one joint concept); columns: seeds."""
    names = names or {}
    fig, axes = plt.subplots(len(diseases), n, figsize=(1.3 * n + 2.2, 1.35 * len(diseases)), squeeze=False)
    total = 0
    for row, d in enumerate(diseases):
        if d in zero_shot:
            imgs = generate(model, terms=zero_shot_request(model, d, severity, n=n, seed=seed), age=age, severity=severity, n=n, seed=seed,
                            steps=steps, guidance=guidance)
        else:
            imgs = generate(model, disease=d, age=age, severity=severity, n=n, seed=seed, steps=steps, guidance=guidance)
        total += len(imgs)
        image_row(axes[row], imgs)
        label = names.get(d, d)[:24] + (" (zero-shot)" if d in zero_shot else "")
        axes[row, 0].text(-0.08, 0.5, label, transform=axes[row, 0].transAxes, ha="right", va="center", fontsize=8)
    fig.subplots_adjust(left=0.3, wspace=0.04, hspace=0.06)
    return fig, total
