"""Where along the noise chain does a generator lose the face? Denoising error per timestep, and sampling
started from real faces noised to several depths.

    .venv/bin/python -m studies.denoising_by_t --model data/processed/quick/model [--model other/model ...]
        [--data-dir data/processed/quick] [--n 32]

For each model folder, on validation faces (unconditional: the null condition, so every model is asked the
same thing):

- **per timestep** t: the mean squared error of the model's clean-face estimate (from its epsilon or v output)
  against the faces, beside two trivial estimates: the noisy input rescaled (``identity``, right at small t) and
  the mean face (``mean``, right at t = 999). A model worse than ``mean`` at large t starts its samples from
  a wrong guess.
- **sampling from a depth**: the faces noised to t0 (100, 300, 600, 999) and denoised by 50 DDIM steps; the
  result's mean squared error to the original face and its high-frequency energy (mean |Laplacian|, grey
  levels) beside the real faces'. Clean from 300 but noisy from 999 means the early (high-noise) steps
  leave what the late ones cannot remove.

Writes ``reports/studies/denoising_by_t.json``; a model is named by its folder's parent and name.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from phenoface.benchmarks import results_path, write_results
from phenoface.config import repo_root

TIMESTEPS = (5, 20, 50, 100, 200, 400, 700, 950)
DEPTHS = (100, 300, 600, 999)


def high_frequency(images: np.ndarray) -> float:
    """Mean |4-neighbour Laplacian| of uint8 faces, grey levels: noise left in a face raises it."""
    x = images.astype(np.float64)
    lap = 4 * x[:, 1:-1, 1:-1] - x[:, :-2, 1:-1] - x[:, 2:, 1:-1] - x[:, 1:-1, :-2] - x[:, 1:-1, 2:]
    return float(np.abs(lap).mean())


def clean_estimate(pred, noisy, alpha_bar, prediction_type: str):
    """The model's estimate of the clean latent from its output at cumulative alpha ``alpha_bar``."""
    if prediction_type == "v_prediction":
        return alpha_bar.sqrt() * noisy - (1 - alpha_bar).sqrt() * pred
    return (noisy - (1 - alpha_bar).sqrt() * pred) / alpha_bar.sqrt()


def measure(model, images: np.ndarray, seed: int = 0) -> dict:
    import torch
    from diffusers import DDIMScheduler, DDPMScheduler

    from phenoface.conditioning import unet_kwargs
    from phenoface.model.golden import golden_conditions
    from phenoface.pixels import to_model_range, to_uint8

    n = len(images)
    z0 = model.vae.encode(to_model_range(torch.as_tensor(images))).latent_dist.mode() * model.latent_scale
    null = golden_conditions(model, 1).only(())
    kw = {k: (v.expand(n, *v.shape[1:]) if torch.is_tensor(v) else v)
          for k, v in unet_kwargs(model.encoder, null).items()}
    ddpm = DDPMScheduler.from_config(model.scheduler)
    kind = model.prediction_type
    g = torch.Generator().manual_seed(seed)
    out = {}
    mean_face = z0.mean(0, keepdim=True)
    with torch.no_grad():
        for t in TIMESTEPS:
            tt = torch.full((n,), t)
            noisy = ddpm.add_noise(z0, torch.randn(z0.shape, generator=g), tt)
            a = ddpm.alphas_cumprod[t]
            x0 = clean_estimate(model.unet(noisy, tt, **kw).sample, noisy, a, kind)
            out[f"t{t}_mse_model"] = float(((x0 - z0) ** 2).mean())
            out[f"t{t}_mse_identity"] = float(((noisy / a.sqrt() - z0) ** 2).mean())
            out[f"t{t}_mse_mean"] = float(((mean_face - z0) ** 2).mean())
        for depth in DEPTHS:
            sched = DDIMScheduler.from_config({**model.scheduler, "timestep_spacing": "trailing"})
            sched.set_timesteps(50)
            steps = [t for t in sched.timesteps if int(t) <= depth]
            z = ddpm.add_noise(z0, torch.randn(z0.shape, generator=g), torch.full((n,), int(steps[0])))
            for t in steps:
                z = sched.step(model.unet(z, t, **kw).sample, t, z).prev_sample
            faces = to_uint8(model.vae.decode(z / model.latent_scale).sample).numpy()
            out[f"from{depth}_mse_to_face"] = float(((faces.astype(np.float64) - images) ** 2).mean())
            out[f"from{depth}_high_frequency"] = high_frequency(faces)
    out["real_high_frequency"] = high_frequency(images)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, nargs="+", default=[repo_root() / "data" / "processed" / "quick" / "model"])
    ap.add_argument("--data-dir", type=Path, default=repo_root() / "data" / "processed" / "quick")
    ap.add_argument("--n", type=int, default=32, help="validation faces")
    ap.add_argument("--out", type=Path, default=results_path("studies", "denoising_by_t"))
    a = ap.parse_args(argv)

    from phenoface.cohort import load_split
    from phenoface.model import load_model

    faces = load_split(a.data_dir, "validation").images[: a.n]
    results = {"split": "validation", "faces": len(faces), "timesteps": list(TIMESTEPS), "depths": list(DEPTHS)}
    for folder in a.model:
        model = load_model(folder, check=False)
        name = f"{folder.parent.name}/{folder.name}"
        results |= {f"{name}:{k}": v for k, v in measure(model, faces).items()}
        results[f"{name}:prediction_type"] = model.prediction_type
    write_results(results, a.out, width=48)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
