"""Figures of the evaluation suite (matplotlib / seaborn; each returns the Figure)."""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["confusion_matrix", "memorisation_pairs", "severity_scatter", "progression_strip", "nn_histogram",
           "memorisation_roc", "severity_baselines", "sampling_faults"]


def _short(name: str, n: int = 22) -> str:
    return name if len(name) <= n else name[: n - 1] + "…"


def confusion_matrix(conf: pd.DataFrame, names: dict | None = None, normalise: bool = True, title: str = ""):
    """Heatmap of a confusion table (rows truth, columns top-1 prediction), row-normalised."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    m = conf.astype(float)
    if normalise:
        m = m.div(m.sum(axis=1).replace(0, np.nan), axis=0)
    labels = [_short((names or {}).get(c, c)) for c in m.columns]
    rows = [_short((names or {}).get(c, c)) for c in m.index]
    fig, ax = plt.subplots(figsize=(0.55 * len(labels) + 3.5, 0.45 * len(rows) + 2.2))
    sns.heatmap(m.to_numpy(), annot=True, fmt=".2f", cmap="mako_r", vmin=0, vmax=1 if normalise else None,
                xticklabels=labels, yticklabels=rows, cbar_kws={"label": "share of row" if normalise else "faces"},
                ax=ax, annot_kws={"fontsize": 7})
    ax.set(xlabel="predicted (top-1)", ylabel="truth", title=title or "disease recogniser: confusion")
    plt.setp(ax.get_xticklabels(), rotation=45, ha="right")
    fig.tight_layout()
    return fig


def memorisation_pairs(report, candidates, train_images, k: int = 8, title: str = ""):
    """The k candidates closest to the training set (flagged first), each above its matching training
    image, with the flag reasons and distances."""
    import matplotlib.pyplot as plt

    top = report.closest(k)
    k = len(top)
    fig, axes = plt.subplots(2, max(k, 1), figsize=(1.7 * max(k, 1), 4.0), squeeze=False)
    for i, (_, row) in enumerate(top.iterrows()):
        c = int(np.where(report.table["candidate"].to_numpy() == row["candidate"])[0][0])
        axes[0, i].imshow(candidates[c])
        axes[1, i].imshow(train_images[int(row["match_train"])])
        why = [w for w, f in (("exact", row["exact_copy"]), ("thumb", row["thumb_copy"]),
                              ("hash", row["hash_copy"]), ("feature", row["feature_flag"])) if f]
        colour = "#b00020" if row["flagged"] else "#333333"
        axes[0, i].set_title(f"{row['candidate']}: {'+'.join(why) or 'ok'}", fontsize=8, color=colour)
        axes[1, i].set_title(f"train {int(row['match_train'])}\nd={row['feature_distance']:.3g} h={int(row['hash_distance'])}",
                             fontsize=7)
    for ax in axes.ravel():
        ax.set_axis_off()
    fig.suptitle(title or f"closest candidates (top) vs training images (bottom); flag rate {report.rate:.1%}",
                 fontsize=10)
    fig.tight_layout()
    return fig


def nn_histogram(report, title: str = ""):
    """Train-to-train vs candidate-to-train nearest-neighbour distances, with the flag threshold."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 3.2))
    bins = np.linspace(0, max(float(np.percentile(report.train_nn, 99.5)),
                              float(report.table["feature_distance"].max() if len(report.table) else 0)), 40)
    ax.hist(report.train_nn, bins=bins, alpha=0.6, density=True, label="train → nearest other train")
    ax.hist(report.table["feature_distance"], bins=bins, alpha=0.6, density=True, label="candidate → nearest train")
    ax.axvline(report.threshold, color="#b00020", ls="--", label=f"{report.percentile:g}th percentile (flag below)")
    ax.set(xlabel="cosine distance in feature space", ylabel="density", title=title or "memorisation check")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def severity_scatter(frame: pd.DataFrame, x: str = "severity", y: str = "score", hue: str = "landmarks",
                     col: str | None = None, names: dict | None = None, title: str = ""):
    """Predicted vs true severity (one dot per held-out face), coloured by ``hue``."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    data = frame.copy()
    if names and "disease_id" in data:
        data["disease"] = data["disease_id"].map(lambda d: _short(names.get(d, d), 18))
    if col:
        g = sns.relplot(data=data, x=x, y=y, hue=hue, col=col, col_wrap=5, height=2.2, s=12, alpha=0.7,
                        facet_kws={"sharex": True, "sharey": True})
        g.set_titles("{col_name}", size=8)
        g.figure.suptitle(title or "severity score vs true severity", y=1.02)
        return g.figure
    fig, ax = plt.subplots(figsize=(5, 4))
    sns.scatterplot(data=data, x=x, y=y, hue=hue, s=14, alpha=0.7, ax=ax)
    ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls=":")
    ax.set(title=title or "severity score vs true severity", xlim=(-0.02, 1.02), ylim=(-0.02, 1.02))
    fig.tight_layout()
    return fig


def progression_strip(images, table: pd.DataFrame, scores, series_ids, by: str = "age", names: dict | None = None):
    """One row per series: the faces in order with true and predicted severity under each."""
    import matplotlib.pyplot as plt

    series_ids = list(series_ids)
    steps = int(table.groupby("series").size().max())
    fig, axes = plt.subplots(len(series_ids), steps, figsize=(1.35 * steps, 1.65 * len(series_ids)), squeeze=False)
    s = np.asarray(scores, float)
    for r, sid in enumerate(series_ids):
        rows = table.index[table["series"] == sid].tolist()
        for c in range(steps):
            ax = axes[r, c]
            ax.set_axis_off()
            if c >= len(rows):
                continue
            i = rows[c]
            ax.imshow(images[i])
            head = f"{table.at[i, 'age']:.0f} y · " if by == "age" else ""
            ax.set_title(f"{head}true {table.at[i, 'severity']:.2f}\nscore {s[i]:.2f}", fontsize=7)
        d = table.at[rows[0], "disease_id"]
        axes[r, 0].text(-0.1, 0.5, _short((names or {}).get(d, d), 16), transform=axes[r, 0].transAxes,
                        ha="right", va="center", fontsize=8)
    fig.suptitle(f"progression: one person per row, ordered by {by}", fontsize=10)
    fig.tight_layout()
    return fig


def memorisation_roc(summary: dict, by_kind: pd.DataFrame, title: str = ""):
    """Left: the ROC of memorisation probes vs held-out test faces, with the operating point of the
    threshold chosen on validation. Right: the share of each probe kind detected at that threshold (95 %
    bootstrap interval), beside the held-out faces' false-positive rate."""
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.6), gridspec_kw={"width_ratios": [1, 1.4]})
    fpr, tpr = summary["curve"]
    a.plot(fpr, tpr, color="#1f5f8b", label=f"AUC {summary['auc']:.3f}")
    a.plot([0, 1], [0, 1], color="grey", lw=0.8, ls=":", label="chance")
    a.scatter([summary["fpr"]], [summary["tpr"]], color="#b00020", zorder=3,
              label=f"validation threshold: TPR {summary['tpr']:.2f} at FPR {summary['fpr']:.3f}")
    a.set(xlabel="false-positive rate (held-out test faces)", ylabel="true-positive rate (probes)",
          title="probes vs held-out faces")
    a.set_xscale("symlog", linthresh=0.01)
    a.set_xlim(0, 1)
    a.legend(fontsize=7, loc="lower right")
    y = np.arange(len(by_kind))
    err = np.vstack([by_kind["detected"] - by_kind["ci_low"], by_kind["ci_high"] - by_kind["detected"]])
    b.barh(y, by_kind["detected"], xerr=np.nan_to_num(err), color="#6b8fb3", capsize=3)
    b.axvline(summary["fpr"], color="#b00020", ls="--", lw=1, label="held-out faces flagged")
    b.set_yticks(y, [f"{k} (n={n})" for k, n in zip(by_kind.index, by_kind["probes"])], fontsize=8)
    b.set(xlim=(0, 1.02), xlabel="detected at the validation threshold", title="per probe kind")
    b.legend(fontsize=7, loc="lower right")
    fig.suptitle(title or "memorisation detector on probes beyond its design", fontsize=10)
    fig.tight_layout()
    return fig


def severity_baselines(table: pd.DataFrame, names: dict | None = None, title: str = ""):
    """Per disease: the score's Spearman with true severity, the age-only baseline and the score's
    age-partialled Spearman (one group of three bars per disease; ``mean`` last)."""
    import matplotlib.pyplot as plt

    t = table.drop(index=[i for i in ("pooled",) if i in table.index])
    cols = [("spearman", "score"), ("spearman_age_only", "age only (baseline)"),
            ("spearman_partial_age", "score, age partialled out")]
    x = np.arange(len(t))
    fig, ax = plt.subplots(figsize=(max(6, 0.32 * len(t) + 2), 3.6))
    for k, (c, label) in enumerate(cols):
        ax.bar(x + (k - 1) * 0.27, t[c].to_numpy(float), width=0.27, label=label)
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xticks(x, [_short((names or {}).get(i, i), 16) for i in t.index], rotation=60, ha="right", fontsize=7)
    ax.set(ylabel="Spearman with true severity", ylim=(-1, 1), title=title or "severity: score vs age-only baseline")
    ax.legend(fontsize=7, ncol=3, loc="lower left")
    fig.tight_layout()
    return fig


def sampling_faults(table: pd.DataFrame, title: str = "sampling-side faults: before and after each fix (same seeds)"):
    """One panel per (fault, metric): the figure before and after the fix, with its bootstrap interval."""
    import matplotlib.pyplot as plt

    keys = list(table.groupby(["fault", "metric"], sort=False).groups)
    fig, axes = plt.subplots(1, len(keys), figsize=(2.1 * len(keys), 2.8), squeeze=False)
    for ax, (fault, metric) in zip(axes[0], keys):
        g = table[(table["fault"] == fault) & (table["metric"] == metric)].reset_index(drop=True)
        err = np.vstack([g["value"] - g["lo"], g["hi"] - g["value"]]).clip(min=0)
        err = np.where(np.isfinite(err), err, 0)
        ax.bar(range(len(g)), g["value"], yerr=err, color=["tab:gray", "tab:green"][: len(g)], capsize=3)
        ax.set_xticks(range(len(g)), [s.replace(" ", "\n", 1) for s in g["setting"]], fontsize=7)
        ax.set_title(f"{fault.replace('_', '-')}\n{metric}", fontsize=8)
        ax.tick_params(axis="y", labelsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig
