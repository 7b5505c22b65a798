"""Which autoencoder keeps the phenotypes? The recogniser's top-1 on reconstructions against wall time and
the UNet's cost in that latent, for candidate shapes side by side.

    .venv/bin/python -m studies.autoencoder [--data-dir data/processed/quick] [--steps 1200]
        [--variants f4c8=16,32,64/8 f4c16=16,32,64/16 f2c8=32,64/8] [--work /tmp/phenoface_ae]

The gate: the recogniser on reconstructions should keep >= 0.9 of its top-1 on the real faces before a
UNet in that latent is worth training, since no generator in a latent does better than its autoencoder
(``studies.training_curve`` draws the UNet's curve under that ceiling).

Each variant ``name=widths/latent_channels[/grad_weight]`` is an ``AutoencoderKL`` trained from scratch with
the shipped recipe (``AutoencoderModule``: MSE + L1 + gradient + tiny KL, one-cycle lr, the model card's
batch) for ``--steps`` steps on the training set notebook 05 uses (train split, zero-shot diseases left
out), then measured on the **validation** split with notebook 07's saved recogniser: PSNR, top-1 on the
originals and on the reconstructions, their ratio with a bootstrap interval, and how well the phenotype
instrument's readings survive (per-term Pearson, before vs after). The shipped autoencoder is
measured beside them (its training seconds from its card). What a richer latent costs downstream: one
training step (forward + backward, the card's batch) of the quick UNet in that latent, timed. Resumable:
a killed run keeps the variants already measured and resumes the current one from its checkpoint. Each
trained autoencoder is saved as ``<work>/<name>/autoencoder.safetensors`` (``studies.training_curve
--autoencoder`` trains a UNet in its latent). Run it with nothing else on the machine: the seconds are figures.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from phenoface.benchmarks import results_path, write_results
from phenoface.config import repo_root

DEFAULT_VARIANTS = ("f4c16=16,32,64/16", "f2c8=32,64/8", "f4c8g2=16,32,64/8/2")


def parse_variant(spec: str) -> dict:
    """``name=16,32,64/8[/grad_weight]`` -> {name, widths, latent_channels, grad_weight}."""
    try:
        name, rest = spec.split("=", 1)
        parts = rest.split("/")
        widths = [int(w) for w in parts[0].split(",")]
        out = {"name": name, "widths": widths, "latent_channels": int(parts[1]),
               "grad_weight": float(parts[2]) if len(parts) > 2 else 0.5}
    except (ValueError, IndexError):
        raise SystemExit(f"bad variant {spec!r}: write name=widths/latent_channels[/grad_weight], e.g. f4c16=16,32,64/16")
    if not name or any(w < 1 for w in widths) or out["latent_channels"] < 1:
        raise SystemExit(f"bad variant {spec!r}: widths and channels must be positive")
    return out


def size_of(v: dict, quick: dict) -> dict:
    """The quick size with this variant's autoencoder (a ``QUICK_KL`` of its widths and channels; the UNet's
    widths stay the shipped ones)."""
    from phenoface.model.components import QUICK_KL

    cfg = json.loads(json.dumps(quick))
    groups = int(np.gcd.reduce(v["widths"] + [QUICK_KL["norm_num_groups"]]))
    cfg["autoencoder"] = {**QUICK_KL, "block_out_channels": v["widths"], "latent_channels": v["latent_channels"],
                          "norm_num_groups": groups}
    return cfg


def unet_step_seconds(cfg: dict, image_size: int, batch: int, kg_dim: int, repeats: int = 3) -> float:
    """Median seconds of one UNet training step (forward + backward + AdamW) in this latent, random weights."""
    import torch

    from phenoface.conditioning import term_text_embeddings
    from phenoface.model.components import autoencoder_config, latent_channels, latent_size, unet_config
    from phenoface.model.diffusion import DiffusionModule

    dm = DiffusionModule(autoencoder_config(cfg, image_size), unet_config(cfg, image_size), kg_dim, term_text_embeddings(),
                         latent_scale=1.0)
    s, c = latent_size(cfg, image_size), latent_channels(cfg)
    opt = torch.optim.AdamW(dm.unet.parameters(), lr=1e-4)
    states = torch.randn(batch, 8, cfg["cond_dim"])
    times = []
    for _ in range(repeats + 1):
        x = torch.randn(batch, c, s, s)
        t = torch.randint(0, 1000, (batch,))
        t0 = time.perf_counter()
        loss = dm.unet(x, t, encoder_hidden_states=states).sample.pow(2).mean()
        loss.backward()
        opt.step()
        opt.zero_grad()
        times.append(time.perf_counter() - t0)
    return float(np.median(times[1:]))  # the first step pays for allocation


def measure(vae, val, rec, hits_real, before, data_dir) -> dict:
    """PSNR, top-1 ratio with its paired bootstrap interval (``hits_real``: the recogniser's top-1 hits on the
    originals), and the per-term Pearson between the phenotype instrument's readings on the originals
    (``before``) and on the reconstructions."""
    from types import SimpleNamespace

    from phenoface.model.quality import psnr, reconstruct, term_retention
    from phenoface.phenotypes import measure_images
    from phenoface.stats import bootstrap_stat_ci

    recon = reconstruct(SimpleNamespace(vae=vae.eval()), val.images)  # reconstruct() reads model.vae only
    labels = val.table["disease_id"]
    hits_rec = np.asarray(rec.evaluate(recon, labels, k=1)["hits1"], float)
    # paired over faces: the same resampled faces in numerator and denominator
    ratio, ci = bootstrap_stat_ci(lambda i: hits_rec[i].mean() / max(hits_real[i].mean(), 1e-9), len(labels))
    after = measure_images(recon, data_dir=data_dir)
    terms = term_retention(before, after).to_dict()
    return {"psnr": psnr(val.images, recon), "top1_reconstructed": float(hits_rec.mean()), "top1_ratio": ratio,
            "top1_ratio_ci": list(ci), "term_pearson_median": float(np.nanmedian(list(terms.values()))),
            "term_pearson_min": float(np.nanmin(list(terms.values()))), "term_pearson": terms}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", type=Path, default=repo_root() / "data" / "processed" / "quick")
    ap.add_argument("--work", type=Path, default=Path("/tmp/phenoface_ae"))
    ap.add_argument("--steps", type=int, default=None, help="autoencoder steps (default: the model card's AE_STEPS)")
    ap.add_argument("--variants", nargs="+", default=list(DEFAULT_VARIANTS))
    ap.add_argument("--unet", default=None, help="also time this UNet shape in every latent, side by side with the "
                                                 "shipped shape: widths/blocks, e.g. 32,64,128,128/D,A,A,D")
    ap.add_argument("--out", type=Path, default=results_path("studies", "autoencoder"))
    a = ap.parse_args(argv)
    variants = [parse_variant(s) for s in a.variants]

    import torch

    from phenoface.cohort import load_split
    from phenoface.evaluation.generator_figures import saved_recogniser
    from phenoface.model import load_model
    from phenoface.model.autoencoder import AutoencoderModule
    from phenoface.model.components import (autoencoder_config, latent_channels, latent_factor, latent_size, n_params,
                                            size_config)
    from phenoface.model.data import FaceDataModule
    from phenoface.model.pipeline import training_set
    from phenoface.model.train import fit

    rec, _ = saved_recogniser(a.data_dir)
    shipped = load_model(a.data_dir / "model")
    card, p = shipped.card, shipped.card.get("params", {})
    steps, batch = int(a.steps or p.get("AE_STEPS", 1200)), int(p.get("GEN_BATCH", 32))
    ts = training_set(a.data_dir, tags="true", zero_shot=tuple(card.get("zero_shot", ())))  # tags unused here
    val = load_split(a.data_dir, "validation")
    hits_real = np.asarray(rec.evaluate(val.images, val.table["disease_id"], k=1)["hits1"], float)
    top_real = float(hits_real.mean())
    quick, size = size_config("quick"), shipped.image_size
    print(f"{len(ts)} training faces, {len(val)} validation faces (real top-1 {top_real:.3f}); {steps} steps, batch {batch}",
          flush=True)

    from phenoface import modelio
    from phenoface.config import write_json
    from phenoface.phenotypes import measure_images

    before = measure_images(val.images, data_dir=a.data_dir)
    work_results = a.work / "results.json"
    results = json.loads(work_results.read_text()) if work_results.is_file() else {}
    if "term_pearson" not in results.get("shipped", {}):
        ae = shipped.configs["autoencoder"]
        prior = results.get("shipped", {})
        results["shipped"] = {"widths": ae.get("block_out_channels", []),
                              "latent_channels": latent_channels({"autoencoder": ae}),
                              "f": latent_factor({"autoencoder": ae}), "steps": card["autoencoder"].get("steps", 0),
                              "train_seconds": card["autoencoder"].get("seconds", 0.0), "parameters": n_params(shipped.vae),
                              "unet_step_seconds": prior.get("unet_step_seconds")
                              or unet_step_seconds(quick, size, batch, ts.diseases.kg_dim),
                              **measure(shipped.vae, val, rec, hits_real, before, a.data_dir)}
    for v in variants:
        weights = a.work / v["name"] / "autoencoder.safetensors"
        prior = results.get(v["name"], {})
        if "term_pearson" in prior and weights.is_file():
            continue
        cfg = size_of(v, quick)
        vae_cfg = autoencoder_config(cfg, size)
        torch.manual_seed(0)
        module = AutoencoderModule(vae_cfg, grad_weight=v["grad_weight"], total_steps=steps)
        data = FaceDataModule(ts.images, ts.cond, key="image", batch_size=batch, seed=0)
        r = fit(module, data, a.work / v["name"], {"part": "autoencoder-bench", **v, "steps": steps, "batch_size": batch,
                                                   "seed": 0, "data_dir": str(a.data_dir.resolve())},
                steps, progress=False, every=200)
        if prior.get("steps") == steps:  # resumed: the training seconds are those of the run that trained it
            r = {"steps": steps, "seconds": prior["train_seconds"], "resumed": prior["resumed"]}
        results[v["name"]] = {"widths": v["widths"], "latent_channels": v["latent_channels"], "grad_weight": v["grad_weight"],
                              "f": size // latent_size(cfg, size), "steps": r["steps"], "train_seconds": r["seconds"],
                              "resumed": r["resumed"], "parameters": n_params(module.vae),
                              "unet_step_seconds": prior.get("unet_step_seconds")
                              or unet_step_seconds(cfg, size, batch, ts.diseases.kg_dim),
                              **measure(module.vae, val, rec, hits_real, before, a.data_dir)}
        # the trained autoencoder, for studies.training_curve --autoencoder (safetensors: nothing unpickled)
        modelio.save_model(weights, module.vae.state_dict(), {"config": vae_cfg}, kind="phenoface_bench/autoencoder")
        work_results.parent.mkdir(parents=True, exist_ok=True)
        write_json(work_results, results)
        print(json.dumps({v["name"]: results[v["name"]]}), flush=True)

    if a.unet:  # both shapes in every latent, in this one run, so their ratio is a side-by-side figure
        from phenoface.model.variants import unet_shape

        for name, r in results.items():
            cfg = size_of({"widths": r["widths"], "latent_channels": r["latent_channels"]}, quick)
            try:
                other = unet_shape(cfg, a.unet)
            except ValueError as exc:
                raise SystemExit(f"--unet: {exc}") from None
            r["unet_step_seconds"] = unet_step_seconds(cfg, size, batch, ts.diseases.kg_dim)
            r[f"unet_step_seconds_{a.unet}"] = unet_step_seconds(other, size, batch, ts.diseases.kg_dim)
        write_json(work_results, results)

    out = {"data_dir": str(a.data_dir), "split": "validation", "validation_faces": len(val), "steps": steps,
           "batch": batch, "recogniser_top1_real_validation": top_real}
    for name, r in results.items():
        for k, val_ in r.items():
            if k != "term_pearson":
                out[f"{name}_{k}"] = val_
    write_results(out, a.out)
    print(f"\n{'variant':10s} {'f':>2s} {'ch':>3s} {'PSNR':>6s} {'top-1 ratio':>18s} {'terms r med/min':>16s} "
          f"{'AE s':>6s} {'UNet s/step':>11s}")
    for name, r in results.items():
        ci = r.get("top1_ratio_ci") or [float("nan")] * 2
        print(f"{name:10s} {r['f']:2d} {r['latent_channels']:3d} {r['psnr']:6.2f} {r['top1_ratio']:6.3f} "
              f"[{ci[0]:.2f}, {ci[1]:.2f}] {r['term_pearson_median']:8.2f} {r['term_pearson_min']:6.2f} "
              f"{r['train_seconds']:6.0f} {r['unet_step_seconds']:11.2f}"
              + (f"  {a.unet}: {r[f'unet_step_seconds_{a.unet}']:.2f}" if a.unet else ""))
    import pandas as pd

    print("\nper-term Pearson, instrument readings before vs after (validation):")
    print(pd.DataFrame({n: r["term_pearson"] for n, r in results.items()}).round(2).sort_values("shipped").to_string())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
