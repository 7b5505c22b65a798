"""Figures for generated faces, all measured from their pixels with the instruments the real test faces get.

- :func:`series_control`: in notebook 06's same-noise series, does the measured value follow the requested
  level? Severity: order accuracy of the severity score along each series. Terms: per term, the Spearman
  between requested intensity and the instrument's reading of that term (mean over seeds).
- :func:`rendered_series`: the same series rendered (new people, the renderer's truth): what the instrument
  reads there is the ceiling of :func:`series_control`, and through the generator's autoencoder the ceiling of
  any generator diffusing in its latent.
- :func:`zero_shot_precision`: for a disease never seen in images, which terms are measured as raised on
  its generated faces against unaffected faces from the same noise (paired), ranked by standardised paired
  difference; precision@k against its profile's terms (k = their number).
- :func:`membership_auc`: can the model's own denoising loss tell its training faces from test faces?
  (AUROC; 0.5 = no leak), the membership-inference test that nearest-neighbour checks miss.
- :func:`age_mae`: the age estimates against the ages asked for, beside the same estimates against those ages
  shuffled across faces (what no age control at all scores).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..cohort import face_table, render_table, true_frequencies
from ..cohort.terms import TERM_IDS
from ..model.quality import reconstruct
from ..phenotypes import measure_images
from ..sampling.generated_cohort import series_table
from ..stats import spearman
from .progression import draw_person, order_accuracy


def series_control(table: pd.DataFrame, severity_score: np.ndarray, measured: pd.DataFrame) -> dict:
    """``table``: notebook 06's series table (label, kind, target, level, series); ``severity_score`` one per
    row (NaN allowed: counts as wrong); ``measured``: ``measure_images`` of the same rows."""
    table = table.reset_index(drop=True)
    sev = (table["kind"] == "severity").to_numpy()
    out = {"severity_order_accuracy": order_accuracy(np.asarray(severity_score)[sev], table.loc[sev, "level"],
                                                     groups=table.loc[sev, "series"]) if sev.any() else float("nan")}
    rows = []
    for (target, series), g in table[table["kind"] == "term"].groupby(["target", "series"]):
        rows.append({"term": target, "series": series,
                     "spearman": spearman(g["level"], measured.loc[g.index, target])})
    per = pd.DataFrame(rows)
    out["term_spearman"] = per.groupby("term")["spearman"].mean() if len(per) else pd.Series(dtype=float)
    return out


def series_severity(scorer, table: pd.DataFrame, measured: pd.DataFrame, age: float = 8.0, sex: str = "F") -> np.ndarray:
    """The severity score of each "severity" row of a series table under its target disease (NaN elsewhere),
    at the series' age and sex (``sampling.generated_cohort.series`` draws at age 8, sex F)."""
    table = table.reset_index(drop=True)
    sev = (table["kind"] == "severity").to_numpy()
    out = np.full(len(table), np.nan)
    if sev.any():
        out[sev] = scorer.score(measured[sev], table.loc[sev, "target"], np.full(int(sev.sum()), float(age)),
                                [sex] * int(sev.sum()))
    return out


def rendered_series(table: pd.DataFrame, seed: int = 0, size: int = 64, age: float = 8.0, sex: str = "F"):
    """Renders that mirror a series table (``sampling.generated_cohort.series``: label, kind, target, level, series), one
    new person per series at ``age`` and ``sex``. A "severity" series: a person with the target disease as the
    cohort draws one (:func:`~.progression.draw_person`; redrawn until at least one term is expressed, since a
    flat series orders nothing), each expressed term at level × its jitter. A "term" series: an unaffected
    person with that term alone at intensity = level. Returns (images, table) with the input's columns, so
    :func:`series_control` reads both the same way."""
    table = table.reset_index(drop=True)
    unknown = sorted(set(table["kind"]) - {"severity", "term"})
    if unknown:
        raise ValueError(f"unknown series kind(s) {unknown} (severity | term)")
    rng = np.random.default_rng([seed, 808])
    truth, _ = true_frequencies()
    rows = []
    for _, g in table.groupby("series", sort=False):
        kind, target = g["kind"].iloc[0], str(g["target"].iloc[0])
        if kind == "severity":
            for _ in range(20):
                identity, _, present, jitter, _ = draw_person(target, rng, truth)
                if present.any():
                    break
            levels = g["value"] if "value" in g else g["level"]  # the severity asked for (its trained range)
            amounts = [{t: lv * j for t, p, j in zip(TERM_IDS, present, jitter) if p} for lv in levels]
        else:
            identity = int(rng.integers(0, 2 ** 31 - 1))
            amounts = [{target: lv} for lv in g["level"]]
        rows += [face_table(identity, age, sex, terms) for terms in amounts]
    images, _, _ = render_table(pd.concat(rows, ignore_index=True), size)
    return images, table


def zero_shot_precision(drawn: pd.DataFrame, control: pd.DataFrame, profile_terms) -> dict:
    """``drawn``/``control``: ``measure_images`` of paired faces (same row = same noise, age, sex)."""
    diff = drawn.to_numpy(float) - control.to_numpy(float)
    sd = diff.std(0, ddof=1)
    effect = pd.Series(np.where(sd > 0, diff.mean(0) / np.where(sd > 0, sd, 1), 0.0), index=drawn.columns)
    truth = [t for t in profile_terms if t in effect.index]
    k = len(truth)
    top = list(effect.sort_values(ascending=False).index[:k])
    prec = sum(t in truth for t in top) / k if k else float("nan")
    return {"precision": float(prec), "k": k, "effect": effect.sort_values(ascending=False), "top": top,
            "chance": k / len(effect) if len(effect) else float("nan")}


def membership_auc(train_losses, test_losses) -> float:
    """AUROC of "lower loss = a training face" (0.5: the model cannot tell; 1.0: it remembers its faces)."""
    from sklearn.metrics import roc_auc_score

    y = np.r_[np.ones(len(train_losses)), np.zeros(len(test_losses))]
    return float(roc_auc_score(y, -np.r_[train_losses, test_losses]))


def age_mae(estimated, requested, seed: int = 0) -> tuple[float, float]:
    """(MAE of ``estimated`` against ``requested`` ages, MAE against ``requested`` in a seeded random order)."""
    est, asked = np.asarray(estimated, float), np.asarray(requested, float)
    shuffled = np.random.default_rng(seed).permutation(asked)
    return float(np.mean(np.abs(est - asked))), float(np.mean(np.abs(est - shuffled)))


def term_steps(model, data_dir=None, seed: int = 0, levels=np.linspace(0, 1, 5)) -> pd.Series:
    """Can a step of each term survive the autoencoder? Every term alone 0 -> 1 at ``levels``, rendered on new
    people (seeds ``seed + 101`` and ``seed + 102``), passed through the autoencoder and measured from pixels: the
    Spearman of the reading with the level per term (mean over the people; goal ≥ 0.8)."""
    table = series_table({t: ("term", t) for t in TERM_IDS}, levels, seeds=[seed + 101, seed + 102])
    rec = reconstruct(model, rendered_series(table, seed=seed + 101, size=model.image_size)[0])
    return series_control(table, np.full(len(table), np.nan), measure_images(rec, data_dir=data_dir))["term_spearman"]
