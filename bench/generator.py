"""Generator speed, measured side by side in one run (CPU here; CUDA where present).

    .venv/bin/python -m bench.generator [--size quick] [--steps 30] [--batch 64] [--out reports/bench/generator.json]

1. Training throughput of the Lightning loop (``phenoface.model.train.fit``: Trainer, EMA, clipping,
   checkpoints off) against a plain PyTorch loop on the same DiffusionModule, data and batch (goal: >= 0.95x).
2. What channels-last and bf16 autocast give the plain loop on this machine.
3. Sampling: seconds per image for DPM-Solver++ at 25 steps and DDPM at 1000 (with a model folder given by
   ``--model``). What the samplers and step counts cost in quality (recogniser top-1, FD) is
   ``python -m studies.samplers``.

Random-weight models are fine for timing; nothing here is a quality figure unless ``--model`` is given.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from phenoface.benchmarks import results_path, write_results


def _data(n: int, size: int, seed: int = 0):
    from phenoface.model.train import synthetic_training_set

    return synthetic_training_set(n, size, seed)


def _module(size, image_size, kg_dim):
    from phenoface.conditioning import term_text_embeddings
    from phenoface.model.components import autoencoder_config, size_config, unet_config
    from phenoface.model.diffusion import DiffusionModule

    cfg = size_config(size)
    return DiffusionModule(autoencoder_config(cfg, image_size), unet_config(cfg, image_size), kg_dim,
                           term_text_embeddings(), total_steps=10_000, warmup=1)


def plain_loop(dm, latents, cond, steps, batch, channels_last=False, bf16=False) -> float:
    """Images per second of a hand-written loop: AdamW, clipping, EMA update, like the LightningModule."""
    import torch

    from phenoface.model.diffusion import batch_condition

    opt = torch.optim.AdamW([p for p in dm.trained().parameters() if p.requires_grad], lr=1e-4)
    if channels_last:
        dm.unet.to(memory_format=torch.channels_last)
    g = torch.Generator().manual_seed(0)
    n = len(latents)
    t0 = None
    for i in range(steps + 2):  # two warm-up steps
        if i == 2:
            t0 = time.perf_counter()
        idx = torch.randint(0, n, (batch,), generator=g)
        x = torch.as_tensor(latents[idx.numpy()])
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        b = {k: torch.as_tensor(v[idx.numpy()]) for k, v in cond.items()}
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = dm.loss(x, batch_condition(b))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(dm.trained().parameters(), 1.0)
        opt.step()
        dm.ema.update_parameters(dm.trained())
    return steps * batch / (time.perf_counter() - t0)


def lightning_loop(dm, latents, cond, steps, batch, folder) -> float:
    from phenoface.model.data import FaceDataModule
    from phenoface.model.train import fit

    data = FaceDataModule(latents, cond, key="latent", batch_size=batch, val_fraction=0.0)
    fit(dm, data, folder, {"bench": True, "seed": 0}, 2, progress=False, every=10**9, accelerator="cpu", devices=1)
    r = fit(dm, data, folder, {"bench": True, "seed": 0}, steps + 2, progress=False, every=10**9, accelerator="cpu",
            devices=1)
    return (r["steps"] - 2) * batch / r["seconds"]


def main(argv=None) -> int:
    import tempfile

    import torch

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="quick")
    ap.add_argument("--image-size", type=int, default=64)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--model", type=Path, help="a model folder: also time and compare its samplers")
    ap.add_argument("--out", type=Path, default=results_path("bench", "generator"))
    a = ap.parse_args(argv)
    images, cond, diseases = _data(max(256, a.batch * 2), a.image_size)
    dm = _module(a.size, a.image_size, diseases.kg_dim)
    c, s = dm.unet.config.in_channels, dm.unet.config.sample_size
    latents = np.random.default_rng(0).normal(size=(len(images), c, s, s)).astype(np.float32)
    out = {"size": a.size, "batch": a.batch, "steps": a.steps, "threads": torch.get_num_threads(),
           "device": "cuda" if torch.cuda.is_available() else "cpu"}
    with tempfile.TemporaryDirectory() as tmp:
        out["lightning_images_per_s"] = lightning_loop(dm, latents, cond, a.steps, a.batch, Path(tmp))
    out["plain_images_per_s"] = plain_loop(dm, latents, cond, a.steps, a.batch)
    out["lightning_vs_plain"] = out["lightning_images_per_s"] / out["plain_images_per_s"]
    out["plain_channels_last_images_per_s"] = plain_loop(dm, latents, cond, a.steps, a.batch, channels_last=True)
    out["plain_bf16_images_per_s"] = plain_loop(dm, latents, cond, a.steps, a.batch, bf16=True)
    if a.model:
        from phenoface.model import load_model
        from phenoface.sampling import generate

        m = load_model(a.model)
        for name, steps in (("dpm++", 25), ("ddpm", 1000)):
            t0 = time.perf_counter()
            generate(m, disease="UNAFFECTED", n=8, steps=steps, scheduler=name, seed=0)
            out[f"sampling_{name}_{steps}_s_per_image"] = (time.perf_counter() - t0) / 8
    write_results(out, a.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
