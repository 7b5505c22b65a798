"""Overview figures of the synthetic cohort (used by notebook 00)."""

from __future__ import annotations

import numpy as np
from .diseases import DISEASES, severity_course
from .table import render_face, true_frequencies
from .terms import TERMS, TERM_IDS


def term_grid(size: int = 64, severities=(0, 0.33, 0.66, 1.0), identity: int = 14, age: float = 25.0,
              sex: str = "F", terms=None):
    """One row per renderable term, one column per severity, same identity throughout."""
    import matplotlib.pyplot as plt


    terms = list(terms or TERMS)
    fig, axes = plt.subplots(len(terms), len(severities), figsize=(1.25 * len(severities) + 2.6, 1.25 * len(terms)),
                             squeeze=False)
    for i, t in enumerate(terms):
        for j, s in enumerate(severities):
            img, _ = render_face(identity=identity, age=age, sex=sex, terms={t: s}, size=size)
            ax = axes[i, j]
            ax.imshow(img)
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(f"severity {s:g}", fontsize=8)
            if j == 0:
                ax.set_ylabel(f"{TERMS[t]}\n{t}", fontsize=7, rotation=0, ha="right", va="center")
    fig.tight_layout(pad=0.3)
    return fig


def disease_grid(ages=(3, 8, 15, 30), size: int = 64, diseases=None, seed: int = 0):
    """One row per disease, one column per age: each disease's true term probabilities rounded to
    the terms it most likely shows, at the disease's severity for that age (same identity per row)."""
    import matplotlib.pyplot as plt


    truth, _ = true_frequencies()
    diseases = list(diseases or DISEASES)
    fig, axes = plt.subplots(len(diseases), len(ages), figsize=(1.25 * len(ages) + 2.6, 1.25 * len(diseases)),
                             squeeze=False)
    for i, d in enumerate(diseases):
        p = truth.loc[d]
        for j, a in enumerate(ages):
            sev = float(severity_course(d, a))
            terms = {t: sev for t in TERM_IDS if p[t] >= 0.3}
            if "HP:0000582" in terms and "HP:0000494" in terms:
                terms.pop("HP:0000494" if p["HP:0000582"] >= p["HP:0000494"] else "HP:0000582")
            if "HP:0000154" in terms and "HP:0000160" in terms:
                terms.pop("HP:0000160" if p["HP:0000154"] >= p["HP:0000160"] else "HP:0000154")
            img, _ = render_face(identity=seed * 1000 + i, age=a, sex="FM"[(i + j) % 2], terms=terms, size=size)
            ax = axes[i, j]
            ax.imshow(img)
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(f"age {a:g}", fontsize=8)
            if j == 0:
                ax.set_ylabel(f"{DISEASES[d]}\n{d}", fontsize=7, rotation=0, ha="right", va="center")
    fig.tight_layout(pad=0.3)
    return fig


AGE_STEPS = (2, 6, 10, 14, 20, 30, 45, 60)


def age_strip(ages=AGE_STEPS, identities=((11, "F"), (22, "M"), (33, "F"), (44, "M")), size: int = 64):
    """One row per identity, one column per age: the same unaffected person growing up and ageing."""
    import matplotlib.pyplot as plt


    fig, axes = plt.subplots(len(identities), len(ages), figsize=(1.1 * len(ages), 1.1 * len(identities)),
                             squeeze=False)
    for i, (ident, sex) in enumerate(identities):
        for j, a in enumerate(ages):
            ax = axes[i, j]
            ax.imshow(render_face(identity=ident, age=a, sex=sex, size=size)[0])
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(f"age {a:g}", fontsize=8)
    fig.tight_layout(pad=0.3)
    return fig


def landmark_overlay(image, landmarks, ax=None):
    """Show an image with its 68 landmarks."""
    import matplotlib.pyplot as plt

    ax = ax or plt.gca()
    ax.imshow(image)
    lm = np.asarray(landmarks)
    ax.scatter(lm[:, 0] - 0.5, lm[:, 1] - 0.5, s=4, c="cyan")
    ax.set_axis_off()
    return ax
