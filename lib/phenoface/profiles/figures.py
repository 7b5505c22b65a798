"""Figures of notebook 04's image-learned profiles: precision@k against the truth per source, one disease's
effects with intervals, and the image-learned effects beside the cohort truth and the KG."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.lines import Line2D

from ..cohort.terms import TERMS

EFFECT_CAP = 2.0  # SD: the heat map's colour scale ends here


def precision_bars(summary: pd.DataFrame):
    """Mean precision@k over diseases with 95 % intervals, one bar per source of :func:`.pipeline.profile_precision`
    (grey: image routes, olive: oracles, purple: KG, blue: trivial rankings)."""
    fig, ax = plt.subplots(figsize=(7.5, 3.6))
    ax.barh(summary.index[::-1], summary["mean"][::-1], xerr=np.array([[m - c[0], c[1] - m] for m, c in
            zip(summary["mean"][::-1], summary["ci"][::-1])]).T,
            color=["#7f7f7f"] * 3 + ["#bcbd22"] * 2 + ["#9467bd", "#1f77b4", "#1f77b4"])
    ax.axvline(0.95, color="C3", ls="--", lw=1, label="goal 0.95 (pixels)")
    ax.set(xlim=(0, 1.02), xlabel="mean precision@k over diseases (test cohort)", title="image-learned profiles vs the truth")
    ax.legend(fontsize=8)
    return fig


def forest_plot(effects: pd.Series, truth: pd.Series, kg_weights: dict, title: str, short: dict):
    """One disease's image-learned effects with 95 % CIs (orange: terms its patients truly show, per ``truth``;
    grey: not), a cross where the KG annotates the term."""
    tab = effects.attrs["table"].dropna(subset=["effect"]).iloc[::-1]
    is_true = [truth[t] > 0 for t in tab.index]
    in_kg = [kg_weights.get(t, 0) > 0 for t in tab.index]
    fig, ax = plt.subplots(figsize=(8, 0.32 * len(tab) + 1.5))
    y = np.arange(len(tab))
    colors = ["#ff7f0e" if f else "#8c8c8c" for f in is_true]
    for yy, (t, r), c in zip(y, tab.iterrows(), colors):
        ax.plot([r["ci_low"], r["ci_high"]], [yy, yy], color=c, lw=2, solid_capstyle="butt")
    ax.scatter(tab["effect"], y, c=colors, zorder=3)
    for yy, k in zip(y, in_kg):
        if k:
            ax.scatter([ax.get_xlim()[1]], [yy], marker="x", c="k", s=20, clip_on=False)
    ax.axvline(0, color="k", lw=0.8)
    ax.legend(handles=[Line2D([], [], color="#ff7f0e", marker="o", label="patients truly show it"),
                       Line2D([], [], color="#8c8c8c", marker="o", label="patients do not show it"),
                       Line2D([], [], color="k", marker="x", ls="", label="annotated in the KG")],
              fontsize=8, loc="lower right")
    ax.set_yticks(y)
    ax.set_yticklabels([short[t] for t in tab.index], fontsize=8)
    ax.set_xlabel("adjusted effect (residual SD units), 95 % CI")
    ax.set_title(f"{title}: image-learned effects (n = {int(tab['n_pos'].max())} vs {int(tab['n_neg'].max())} unaffected)")
    return fig


def truth_image_kg_heatmaps(learned: dict, truth: pd.DataFrame, kg_weights: dict, divergence, names: dict, short: dict):
    """Per disease (rows) and term: the cohort truth, the image-learned effect (capped at 2 SD, negative as 0,
    empty for flagged diseases) and the KG weight; blue boxes mark the seeded divergence."""
    dis = [d for d in learned]
    truth_m = truth.loc[dis, list(TERMS)].to_numpy(float)
    img_m = np.array([[max(min(learned[d].get(t, np.nan), EFFECT_CAP), 0.0) if not learned[d].attrs["flag"] else np.nan
                       for t in TERMS] for d in dis])
    kg_m = np.array([[kg_weights.get(d, {}).get(t, 0.0) for t in TERMS] for d in dis])
    fig, axes = plt.subplots(1, 3, figsize=(19, 0.42 * len(dis) + 3), sharey=True)
    for ax, mat, title, vmax in zip(axes, [truth_m, img_m, kg_m], ["cohort truth (probability)",
                                                                 "image-learned effect (SD)", "KG weight"], [1, 2, 1]):
        sns.heatmap(pd.DataFrame(mat, index=[names[d] for d in dis], columns=[short[t] for t in TERMS]), ax=ax,
                    cmap="rocket_r", vmin=0, vmax=vmax, cbar_kws={"shrink": 0.6})
        ax.set_title(title)
    for r in divergence:
        if r["disease_id"] in dis:
            yy, xx = dis.index(r["disease_id"]), list(TERMS).index(r["hpo_id"])
            for ax in axes:
                ax.add_patch(plt.Rectangle((xx, yy), 1, 1, fill=False, ec="#00bfff", lw=1.8))
    fig.suptitle("Blue boxes: the seeded divergence between the cohort truth and the KG")
    fig.tight_layout()
    return fig
