"""The sampling-side faults of a generator, each measured before and after its fix on the same model and seeds.

- **unaffected**: faces asked to be unaffected, drawn with "unaffected" as the null token ("no disease given")
  vs the meaning the model was trained with (format 1: the disease token of zero
  vectors; format 2: its own unaffected token). Measured: the recogniser's share of them read as unaffected,
  and the instrument's summed term amounts (an unaffected face shows none).
- **zero-shot guidance**: a disease never seen in images drawn as one concept per profile term at its profile
  weight (Composable Diffusion's sum: the guidance multiplied by the number of terms) vs one joint concept with
  the terms at expressed amounts. Measured: zero-shot precision@k against its KG profile (paired with unaffected
  faces of the same noise) and the recogniser's top-1 for the disease.
- **severity range**: severity series 0 -> 1 at age 8 vs across the range the cohort draws at that age.
  Measured: order accuracy along same-noise series of a severity score fitted on the given real faces.
- **DPM-Solver++ spacing**: "leading" (first step t = 900) vs "trailing" (t = 999). Measured: recogniser top-1
  on conditioned faces and the Fréchet distance to the real faces in its features.

    >>> table = sampling_faults(model, val, recogniser, data_dir, per_disease=4)   # one row per figure
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from ..cohort import DISEASES, TERM_IDS
from ..labels import UNAFFECTED
from ..phenotypes import measure_images
from ..sampling import Guide, concepts, decode, denoise, generate, make_scheduler, zero_shot_request, zero_shot_terms
from ..sampling.generated_cohort import generate_cohort, series
from ..stats import bootstrap_ci
from .generated import series_severity, zero_shot_precision
from .progression import order_accuracy
from .realism import frechet_distance
from .severity import SeverityScorer, profile_weights

FAULTS = ("unaffected", "zero_shot", "severity", "spacing")
KEYS = {"read as unaffected": "read_unaffected", "summed term amounts": "term_sum", "zero-shot precision@k": "precision",
        "zero-shot top-1": "top1", "severity order along series": "order", "recogniser top-1": "top1",
        "Fréchet distance": "fd"}
SETTINGS = {"unaffected": ("null token", "trained token"), "zero_shot": ("one concept per term", "one joint concept"),
            "severity": ("0 -> 1", "trained range"), "spacing": ("leading", "trailing")}


def _row(fault, setting, metric, values) -> dict:
    values = np.asarray(values, float)
    values = values[np.isfinite(values)]
    point, (lo, hi) = bootstrap_ci(values) if len(values) else (np.nan, (np.nan, np.nan))
    return {"fault": fault, "setting": setting, "metric": metric, "value": float(point), "lo": float(lo), "hi": float(hi),
            "n": int(len(values))}


def unaffected_faces(model, n: int, meaning: str, seed: int = 0, steps: int = 10, guidance: float = 7.5) -> np.ndarray:
    """``n`` faces asked to be unaffected (ages 3-40, both sexes); ``meaning`` "null" (no disease given: the
    disease and profile tokens dropped) or "trained"."""
    rng = np.random.default_rng([seed, 11])
    age, sex = rng.uniform(3, 40, n), np.where(rng.random(n) < 0.5, "F", "M")
    if meaning == "trained":
        return generate(model, disease=UNAFFECTED, age=age, sex=sex, severity=0.0, n=n, seed=seed, steps=steps,
                        guidance=guidance)
    null, ctx, parts = concepts(model, n, UNAFFECTED, None, age, sex, 0.0, None)
    cond = parts[0][0]
    cond.keep[:, :2] = False
    cond.unaffected[:] = False
    guide = Guide(model, null, ctx, [(cond, 1.0)])
    sched = make_scheduler(model.scheduler)
    sched.set_timesteps(steps)
    g = torch.Generator().manual_seed(seed)
    c, s = model.unet.config.in_channels, model.unet.config.sample_size
    lat = torch.randn((n, c, s, s), generator=g) * sched.init_noise_sigma
    return decode(model, denoise(guide, lat.to(guide.device), sched, sched.timesteps, guidance, generator=g))


@torch.no_grad()
def sampling_faults(model, real, recogniser, data_dir, profiles: dict, per_disease: int = 8, steps: int = 10,
                    guidance: float = 7.5, seed: int = 31, faults=FAULTS, scorer=None, progress: bool = False) -> pd.DataFrame:
    """One row per (fault, setting, metric) with a bootstrap interval. ``real``: a cohort split (faces and their
    table: the conditions drawn, FD, and the severity calibration unless ``scorer``, a fitted
    :class:`~.severity.SeverityScorer`, is given); ``profiles``: {disease: Profile} of the KG (the zero-shot
    truth and the severity weights)."""

    unknown = sorted(set(faults) - set(FAULTS))
    if unknown:
        raise ValueError(f"unknown fault(s) {unknown}; choose from {', '.join(FAULTS)}")
    measure = lambda imgs: measure_images(imgs, data_dir=data_dir)  # noqa: E731
    zero_shot = [d for d in model.card.get("zero_shot", []) if d in model.diseases.ids]
    kw = dict(steps=steps, guidance=guidance)
    rows = []
    it = faults
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(list(faults), desc="sampling faults")
    for fault in it:
        before, after = SETTINGS[fault]
        if fault == "unaffected" and model.method == "profile":
            for meaning, setting in (("null", before), ("trained", after)):
                imgs = unaffected_faces(model, 10 * per_disease, meaning, seed, steps, guidance)
                pred = recogniser.predict(imgs, k=1)["top1"].astype(str).to_numpy()
                rows.append(_row(fault, setting, "read as unaffected", pred == UNAFFECTED))
                rows.append(_row(fault, setting, "summed term amounts", measure(imgs)[TERM_IDS].clip(lower=0).sum(axis=1)))
        elif fault == "zero_shot" and zero_shot and model.method == "profile":
            n = 2 * per_disease
            rng = np.random.default_rng([seed, 12])
            base = dict(age=np.clip(rng.normal(8.0, 3.0, n), 1, 60), sex=np.where(rng.random(n) < 0.5, "F", "M"), n=n,
                        seed=seed, **kw)
            control = measure(generate(model, disease=UNAFFECTED, **base))
            for how, setting in (("sum", before), ("joint", after)):
                prec, hits = [], []
                for d in zero_shot:
                    terms = zero_shot_terms(model, d) if how == "sum" else zero_shot_request(model, d, 1.0, n=n, seed=seed)
                    imgs = generate(model, terms=terms, compose=how, **base)
                    truth = [t for t, w in profiles[d].renderable().items() if w >= 0.05] if d in profiles \
                        else list(zero_shot_terms(model, d))
                    prec.append(zero_shot_precision(measure(imgs), control, truth)["precision"])
                    hits += list(np.asarray(recogniser.evaluate(imgs, [d] * n, k=1)["hits1"], float))
                rows.append(_row(fault, setting, "zero-shot precision@k", prec))
                rows.append(_row(fault, setting, "zero-shot top-1", hits))
        elif fault == "severity" and model.method == "profile":
            scorer = scorer or SeverityScorer(profile_weights(list(profiles.values()))).fit(measure(real.images), real.table)
            targets = [d for d in model.diseases.ids if d not in zero_shot and d in profiles]
            requests = {DISEASES.get(d, d): ("severity", d) for d in targets}
            levels = np.linspace(0, 1, 5)
            seeds = [seed, seed + 1]
            for how, setting in (("full", before), ("trained", after)):
                if how == "trained":
                    imgs, table = series(model, requests, levels, seeds=seeds, age=8.0, **kw)
                else:
                    imgs = np.concatenate([generate(model, disease=d, severity=levels, age=8.0, sex="F", n=len(levels),
                                                    seed=s, shared_noise=True, **kw)
                                           for _, (_, d) in requests.items() for s in seeds])
                    table = pd.DataFrame([{"kind": "severity", "target": d, "level": float(v), "series": f"{lab}|{s}"}
                                          for lab, (_, d) in requests.items() for s in seeds for v in levels])
                score = series_severity(scorer, table, measure(imgs))
                per = [order_accuracy(score[g.index], g["level"]) for _, g in table.groupby("series")]
                rows.append(_row(fault, setting, "severity order along series", per))
        elif fault == "spacing":
            extractor = recogniser.feature_extractor()
            for spacing in (before, after):
                imgs, table = generate_cohort(model, real.table, per_disease, zero_shot=zero_shot, seed=seed,
                                              progress=False, spacing=spacing, **kw)
                cond = (table["mode"] == "conditioned").to_numpy()
                hits = recogniser.evaluate(imgs[cond], table.loc[cond, "disease_id"], k=1)["hits1"]
                rows.append(_row(fault, spacing, "recogniser top-1", np.asarray(hits, float)))
                fd = frechet_distance(real.images, imgs, extractor)
                rows.append({"fault": fault, "setting": spacing, "metric": "Fréchet distance", "value": float(fd),
                             "lo": np.nan, "hi": np.nan, "n": int(len(imgs))})
    return pd.DataFrame(rows, columns=["fault", "setting", "metric", "value", "lo", "hi", "n"])


def fault_metrics(table: pd.DataFrame) -> dict:
    """Flat metric names for a notebook's JSON: ``fault_<fault>_<metric>_<before|after>``."""
    out = {}
    for (fault, metric), g in table.groupby(["fault", "metric"], sort=False):
        key = KEYS[metric]
        for side, setting in zip(("before", "after"), SETTINGS[fault]):
            hit = g[g["setting"] == setting]
            if len(hit):
                out[f"fault_{fault}_{key}_{side}"] = float(hit["value"].iloc[0])
    return out
