"""The same figures for every method (this work's model, notebook 01's baselines, the KG-profile ablation of
notebook 06) and notebook 01's average patient portraits."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ...cohort.terms import TERM_IDS
from ...labels import UNAFFECTED
from ...phenotypes import estimate_age, measure_images
from ...sampling.generated_cohort import load_arrays
from ...stats import bootstrap_ci, fmt_ci, pearson
from .. import frechet_distance, kernel_distance
from ..generated import age_mae
from ..recogniser import topk_hits
from .base import StepResult, timed

# key -> (stem of notebook 01 / 06's arrays, the notebook that makes them)
METHODS = {"class": ("baseline_class", "01"), "prompt": ("baseline_prompt", "01"), "kg": ("method_kg", "06")}
LABELS = {"profile": "KG + LLM + image profile (this work)", "class": "class-conditional (GestaltGAN-style)",
          "prompt": "prompt-only (disease name)", "kg": "KG profile only (swapped in at inference)"}


def face_figures(ev, images, table, recogniser, realism, memorisation) -> dict:
    """Recogniser top-1 / top-5 (conditioned rows, interval over faces), zero-shot top-1, age MAE, FD / KID to
    test faces, memorisation rate at the validation threshold, seconds per image."""

    cond = (table["mode"] == "conditioned").to_numpy()
    r = recogniser.evaluate(images[cond], table.loc[cond, "disease_id"], k=5)
    zs = ~cond
    _, sc = memorisation.scores(images)
    test, extractor = ev.test, realism.extractor
    return {"faces": int(len(images)), "top1": float(r["top1"]),
            "top1_ci": list(bootstrap_ci(r["hits1"].astype(float), seed=ev.seed)[1]), "top5": float(r["top5"]),
            "zero_shot_top1": float(recogniser.evaluate(images[zs], table.loc[zs, "disease_id"], k=1)["top1"])
            if zs.any() else float("nan"),
            "age_mae": age_mae(estimate_age(images, data_dir=ev.data_dir), table["age"], seed=ev.seed)[0],
            "fd": float(frechet_distance(test.images, images, extractor)),
            "kid": float(kernel_distance(test.images, images, extractor, seed=ev.seed)[0]),
            "memorisation_rate": float((sc < memorisation.threshold).mean()),
            "seconds_per_image": float(table["seconds"].mean())}


@dataclass
class MethodsResult(StepResult):
    figs: dict  # method key -> face_figures
    real_top1: float
    missing: list  # notes on methods whose faces are missing
    seconds: dict = field(default_factory=dict)

    def metrics(self) -> dict:
        return {**{f"method_{k}_{f}": v for k, figs in self.figs.items() for f, v in figs.items()}, **super().metrics()}

    def table(self) -> pd.DataFrame:
        t = pd.DataFrame({LABELS[k]: {**v, "top1_ci": fmt_ci(v["top1"], v["top1_ci"])} for k, v in self.figs.items()}).T
        t["top-1 / real top-1"] = t["top1"].astype(float) / self.real_top1
        return t

    def notes(self) -> list[str]:
        """The methods whose faces are missing, and the evidence ablation's verdict when it ran."""
        return [*self.missing, *([self.ablation()] if "kg" in self.figs else [])]

    def ablation(self) -> str:
        """The evidence ablation: the same noise and conditions, KG profiles instead of fused ones."""
        if "kg" not in self.figs:
            return ""
        (a, (alo, ahi)), (b, (blo, bhi)) = ((self.figs[k]["top1"], self.figs[k]["top1_ci"]) for k in ("profile", "kg"))
        verdict = ("the intervals overlap: at this scale the fused profile adds no disease signal that the KG profile "
                   "(and the KG embedding token, which both share) does not carry" if alo <= bhi and blo <= ahi else
                   "the intervals do not overlap" + (": the fused profile helps" if a > b else ": the KG profile does better"))
        return f"top-1, fused profile {a:.3f} [{alo:.3f}, {ahi:.3f}] vs KG profile only {b:.3f} [{blo:.3f}, {bhi:.3f}]: {verdict}"


def methods_step(ev, generated, recogniser, realism, memorisation) -> MethodsResult:
    """This work's figures (from the generated step) and the same for each method in :data:`METHODS` whose
    faces exist."""

    seconds, missing = {}, []
    with timed(seconds, "baselines"):
        figs = {"profile": generated.method_figures()}
        for key, (stem, made_by) in METHODS.items():
            try:
                images, table = load_arrays(ev.data_dir, stem)
            except FileNotFoundError as exc:
                missing.append(f"{key}: {exc} (run notebook {made_by})")
                continue
            figs[key] = face_figures(ev, images, table, recogniser.recogniser, realism, memorisation)
    return MethodsResult(figs, recogniser.top1, missing, seconds)


@dataclass
class PortraitsResult(StepResult):
    table: pd.DataFrame | None  # one row per portrait
    summary: pd.DataFrame  # per kind: top-1, top-5 hit, phenotypes vs profile, portraits
    note: str = ""

    def metrics(self) -> dict:
        def kind(k):
            return "aligned" if k.startswith("aligned") else "latent"

        s = self.summary
        return {**{f"portrait_top{k}_{kind(name)}": float(v) for k, col in ((1, "top-1"), (5, "top-5 hit"))
                   for name, v in s.get(col, pd.Series(dtype=float)).items()},
                **{f"portrait_phenotype_pearson_{kind(name)}": float(v)
                   for name, v in s.get("phenotypes vs profile", pd.Series(dtype=float)).items()}}


def portraits_step(ev, generated, recogniser) -> PortraitsResult:
    """Notebook 01's average portraits: the recogniser's top-1 / top-5 hit, and the terms the instrument reads
    as raised against the unaffected portrait of the same kind, correlated with the disease's profile."""

    try:
        portraits, ptable = load_arrays(ev.data_dir, "portraits")
    except FileNotFoundError as exc:
        return PortraitsResult(None, pd.DataFrame(), f"portraits: {exc} (run notebook 01)")
    pred = recogniser.predict(portraits, k=5)
    ptable["recogniser top-1"] = pred["top1"].to_numpy()
    ptable["hit"] = (ptable["recogniser top-1"] == ptable["disease_id"]).astype(float)
    ptable["top-5 hit"] = topk_hits(pred, ptable["disease_id"], 5)
    measured = measure_images(portraits, data_dir=ev.data_dir)[TERM_IDS].to_numpy(float)
    prof = dict(zip(generated.model.diseases.ids, generated.model.diseases.profile))
    agree = []
    for i, row in enumerate(ptable.itertuples()):
        ref = np.flatnonzero(((ptable["kind"] == row.kind) & (ptable["disease_id"] == UNAFFECTED)).to_numpy())
        w = prof.get(row.disease_id)
        agree.append(pearson(measured[i] - measured[ref[0]], w) if w is not None and len(ref) else np.nan)
    ptable["phenotypes vs profile"] = agree
    summary = ptable.groupby("kind")[["hit", "top-5 hit", "phenotypes vs profile"]].mean().rename(columns={"hit": "top-1"})
    summary["portraits"] = ptable.groupby("kind").size()
    return PortraitsResult(ptable, summary)
