"""Quick figures of a trained generator on one split, for choosing how to sample and how long to train
(``studies.samplers``, ``studies.training_curve``, ``studies.autoencoder``): notebook 07's saved recogniser,
the faces drawn for a split's conditions measured with it, and term control along same-noise series.

These are choosing tools: run them on the validation split; notebook 07 reports the test split.
"""

from __future__ import annotations

import time
from pathlib import Path

from ..cohort import TERM_IDS
from ..model.quality import reconstruct
from ..phenotypes import estimate_age, measure_images
from ..sampling.generated_cohort import generate_cohort, series, series_table
from .generated import age_mae, rendered_series, series_control
from .realism import frechet_distance
from .recogniser import Recogniser


def saved_recogniser(data_dir: Path):
    """Notebook 07's saved recogniser for ``data_dir`` and its feature extractor (for FD)."""

    rec_path = Path(data_dir) / "evaluation" / "recogniser.safetensors"
    if not rec_path.is_file():
        raise FileNotFoundError(f"{rec_path} is missing: run notebook 07 for {data_dir} first")
    rec = Recogniser.load(rec_path)
    return rec, rec.feature_extractor()


def draw_and_measure(model, real, rec, extractor, per_disease: int, zero_shot=(), steps: int = 10,
                     guidance: float = 7.5, scheduler: str = "dpm++", context_weight: float = 1.0,
                     data_dir=None) -> dict:
    """Draw ``real``'s conditions (``generate_cohort``, seed 0) and measure them: seconds per face, the
    recogniser's top-1 on the conditioned faces and the FD to ``real``'s faces in its features; with
    ``data_dir`` (the age estimator's) also the age MAE from pixels and, as its no-control yardstick, the MAE
    against the requested ages shuffled across faces."""

    t0 = time.perf_counter()
    images, table = generate_cohort(model, real.table, per_disease, zero_shot=zero_shot, seed=0, steps=int(steps),
                                    guidance=guidance, scheduler=scheduler, progress=False, context_weight=context_weight)
    seconds = (time.perf_counter() - t0) / len(images)
    cond = (table["mode"] == "conditioned").to_numpy()
    out = {"conditioned_faces": int(cond.sum()), "s_per_face": seconds,
           "top1": float(rec.evaluate(images[cond], table.loc[cond, "disease_id"], k=1)["top1"]),
           "fd": float(frechet_distance(real.images, images, extractor))}
    if data_dir is not None:
        out["age_mae"], out["age_mae_shuffled"] = age_mae(estimate_age(images, data_dir=data_dir), table["age"])
    return out


def term_control(model, data_dir, steps: int = 10, guidance: float = 7.5, seeds=(101, 102), vae=None) -> dict:
    """Term control as notebooks 06 and 07 measure it, on seeds apart from theirs: each renderable term alone at
    intensity 0 -> 1 (five levels, the same noise), the instrument's reading against the level (Spearman per
    term, mean over seeds). ``vae`` given (an autoencoder): the same series *rendered* and passed through it
    instead of generated, the ceiling any generator in its latent can hardly exceed."""
    import numpy as np

    requests = {t: ("term", t) for t in TERM_IDS}
    levels = np.linspace(0, 1, 5)
    if vae is None:
        images, table = series(model, requests, levels, seeds=list(seeds), age=8.0, steps=int(steps), guidance=guidance)
    else:
        from types import SimpleNamespace

        table = series_table(requests, levels, seeds)
        images = reconstruct(SimpleNamespace(vae=vae), rendered_series(table, seed=seeds[0])[0])
    sp = series_control(table, np.full(len(table), np.nan), measure_images(images, data_dir=data_dir))["term_spearman"]
    return {"terms_at_goal": int((sp >= 0.8).sum()), "term_spearman_median": float(sp.median()),
            "term_spearman_min": float(sp.min()), "term_spearman": sp.round(3).to_dict()}
