"""How much of a face survives the autoencoder: PSNR, the recogniser's top-1 before and after, and the
phenotype instrument's measurements before and after (everything from pixels)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from ..stats import pearson


@torch.no_grad()
def reconstruct(model, images: np.ndarray, batch_size: int = 128) -> np.ndarray:
    """uint8 faces through the model's autoencoder (posterior mean) and back."""
    from .autoencoder import to_model_range, to_uint8

    out = []
    for i in range(0, len(images), batch_size):
        x = to_model_range(torch.as_tensor(images[i:i + batch_size]))
        out.append(to_uint8(model.vae.decode(model.vae.encode(x).latent_dist.mode()).sample).numpy())
    return np.concatenate(out) if out else np.zeros_like(images)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0 ** 2 / max(mse, 1e-12)))


def term_retention(before: pd.DataFrame, after: pd.DataFrame) -> pd.Series:
    """Per term, the Pearson between the instrument's readings on faces (``before``) and on the same faces after
    a transformation (``after``, e.g. through the autoencoder): how much of each term survives it. A term the
    autoencoder loses cannot be controlled by any generator diffusing in its latent."""
    missing = [c for c in before.columns if c not in after.columns]
    if missing or len(before) != len(after):
        raise ValueError(f"before and after must measure the same faces and terms (missing terms: {missing}; "
                         f"{len(before)} vs {len(after)} faces)")
    return pd.Series({c: pearson(before[c], after[c]) for c in before.columns}, name="kept (Pearson)")


def autoencoder_check(model, images, labels, recogniser, data_dir=None, ages=None) -> dict:
    """Figures of the autoencoder on held-out faces, the ceiling of any UNet in its latent: PSNR, recogniser top-1
    on originals and reconstructions (and their ratio; goal >= 0.9), the per-term Pearson between the
    instrument's readings before and after, and with ``ages`` the age estimator's MAE on both (goal: the
    reconstructions' at most 1.5 x the originals')."""
    from ..phenotypes import estimate_age, measure_images

    rec = reconstruct(model, images)
    top_real = recogniser.evaluate(images, labels, k=1)["top1"]
    top_rec = recogniser.evaluate(rec, labels, k=1)["top1"]
    before, after = measure_images(images, data_dir=data_dir), measure_images(rec, data_dir=data_dir)
    r = term_retention(before, after).to_numpy(float)
    out = {"psnr": psnr(images, rec), "top1_real": float(top_real), "top1_reconstructed": float(top_rec),
           "top1_ratio": float(top_rec / top_real) if top_real > 0 else float("nan"),
           "term_pearson_median": float(np.nanmedian(r)), "term_pearson_min": float(np.nanmin(r)),
           "reconstructions": rec}
    rows = {"PSNR (dB)": (out["psnr"], ""), "recogniser top-1, originals": (out["top1_real"], ""),
            "recogniser top-1, reconstructions": (out["top1_reconstructed"], ""),
            "top-1 ratio": (out["top1_ratio"], "≥ 0.9"),
            "term readings before vs after, median Pearson": (out["term_pearson_median"], ""),
            "term readings before vs after, min Pearson": (out["term_pearson_min"], "")}
    if ages is not None:
        ages = np.asarray(ages, float)
        out["age_mae_real"] = float(np.mean(np.abs(estimate_age(images, data_dir=data_dir) - ages)))
        out["age_mae_reconstructed"] = float(np.mean(np.abs(estimate_age(rec, data_dir=data_dir) - ages)))
        out["age_mae_ratio"] = out["age_mae_reconstructed"] / max(out["age_mae_real"], 1e-9)
        rows |= {"age MAE, originals (years)": (out["age_mae_real"], ""),
                 "age MAE, reconstructions (years)": (out["age_mae_reconstructed"], ""),
                 "age MAE ratio": (out["age_mae_ratio"], "≤ 1.5")}
    out["allows_goals"] = bool(out["top1_ratio"] >= 0.9 and out.get("age_mae_ratio", 0.0) <= 1.5)
    out["table"] = pd.DataFrame([{"figure": k, "value": round(v, 3), "goal": g} for k, (v, g) in rows.items()]).set_index("figure")
    return out


def term_steps(model, data_dir=None, seed: int = 0, levels=np.linspace(0, 1, 5)) -> pd.Series:
    """Can a step of each term survive the autoencoder? Every term alone 0 -> 1 at ``levels``, rendered on new
    people (seeds ``seed + 101`` and ``seed + 102``), passed through the autoencoder and measured from pixels: the
    Spearman of the reading with the level per term (mean over the people; goal ≥ 0.8)."""
    from ..cohort.terms import TERM_IDS
    from ..evaluation.generated import rendered_series, series_control
    from ..phenotypes import measure_images
    from ..sampling.cohort import series_table

    table = series_table({t: ("term", t) for t in TERM_IDS}, levels, seeds=[seed + 101, seed + 102])
    rec = reconstruct(model, rendered_series(table, seed=seed + 101, size=model.image_size)[0])
    return series_control(table, np.full(len(table), np.nan), measure_images(rec, data_dir=data_dir))["term_spearman"]
