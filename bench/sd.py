"""Stable Diffusion + LoRA training speed: our Lightning loop against a plain PyTorch loop on the same
module, data and batch, side by side in one run (the GPU benchmark; goal >= 0.95x).

    .venv/bin/python -m bench.sd                          # tiny SD folder, 64 px, CPU here
    .venv/bin/python -m bench.sd --shape sd15 --image-size 512 --batch 4 --steps 20   # GPU: SD-1.5-shaped UNet,
                                                                 # random weights, LoRA, bf16 autocast
    .venv/bin/python -m bench.sd --folder data/raw/stable-diffusion-v1-5 --image-size 512 ...

Random weights are fine for timing; nothing here is a quality figure.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from phenoface.benchmarks import results_path, write_results


def sd15_shaped_folder(path) -> Path:
    """Stable Diffusion 1.5's architecture (UNet 860 M, VAE f = 8, CLIP ViT-L/14 text encoder) with random
    weights and the local byte-level tokenizer, in diffusers layout. About 4 GB on disk."""
    import torch
    from diffusers import AutoencoderKL, DDPMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    from phenoface.model.sd import _byte_vocab

    torch.manual_seed(0)
    unet = UNet2DConditionModel(sample_size=64, cross_attention_dim=768, attention_head_dim=8)  # SD 1.5's config
    vae = AutoencoderKL(block_out_channels=(128, 256, 512, 512), latent_channels=4, sample_size=512,
                        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                        layers_per_block=2)
    vocab = _byte_vocab()
    text = CLIPTextModel(CLIPTextConfig(hidden_size=768, intermediate_size=3072, num_attention_heads=12,
                                        num_hidden_layers=12, vocab_size=len(vocab), max_position_embeddings=77,
                                        bos_token_id=0, eos_token_id=1, pad_token_id=1))
    scheduler = DDPMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, clip_sample=False,
                              steps_offset=1)
    StableDiffusionPipeline(vae=vae, text_encoder=text, tokenizer=CLIPTokenizer(vocab=vocab, merges=[], model_max_length=77),
                            unet=unet, scheduler=scheduler, safety_checker=None, feature_extractor=None,
                            requires_safety_checker=False).save_pretrained(path, safe_serialization=True)
    return Path(path)


def plain_loop(module, images, cond, steps: int, batch: int, bf16: bool) -> float:
    """Images per second of a hand-written loop doing what the LightningModule does: dropout-free loss,
    AdamW over the trainable weights, clipping at 1."""
    import torch

    from phenoface.model.diffusion import batch_condition

    device = "cuda" if torch.cuda.is_available() else "cpu"
    module.to(device).train()
    opt = torch.optim.AdamW([p for p in module.trained().parameters() if p.requires_grad], lr=1e-4)
    g = torch.Generator().manual_seed(0)
    t0 = None
    for i in range(steps + 2):  # two warm-up steps
        if i == 2:
            if device == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
        idx = torch.randint(0, len(images), (batch,), generator=g).numpy()
        b = {"image": torch.as_tensor(images[idx]).to(device), **{k: torch.as_tensor(v[idx]).to(device) for k, v in cond.items()}}
        with torch.autocast(device, dtype=torch.bfloat16, enabled=bf16):
            loss = module.loss(module.batch_latents(b), batch_condition(b))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(module.trained().parameters(), 1.0)
        opt.step()
    if device == "cuda":
        torch.cuda.synchronize()
    return steps * batch / (time.perf_counter() - t0)


def lightning_loop(module, images, cond, steps: int, batch: int, folder: Path, precision: str) -> float:
    from phenoface.model.data import FaceDataModule
    from phenoface.model.train import fit

    data = FaceDataModule(images, cond, key="image", batch_size=batch, val_fraction=0.0)
    kw = dict(progress=False, every=10**9, devices=1, precision=precision)
    fit(module, data, folder, {"bench": True, "seed": 0}, 2, **kw)  # warm-up, as the plain loop's
    r = fit(module, data, folder, {"bench": True, "seed": 0}, steps + 2, **kw)
    return (r["steps"] - 2) * batch / r["seconds"]


def main(argv=None) -> int:
    import torch

    from phenoface.conditioning import term_text_embeddings
    from phenoface.model.sd import SDLoraModule, tiny_sd_folder
    from phenoface.model.train import synthetic_training_set

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", choices=("tiny", "sd15"), default="tiny")
    ap.add_argument("--folder", type=Path, help="an existing SD folder (diffusers layout) instead of random weights")
    ap.add_argument("--image-size", type=int, default=64)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--rank", type=int, default=4)
    ap.add_argument("--out", type=Path, default=results_path("bench", "sd"))
    a = ap.parse_args(argv)
    cuda = torch.cuda.is_available()
    bf16 = cuda and torch.cuda.is_bf16_supported()
    images, cond, diseases = synthetic_training_set(max(32, 4 * a.batch), a.image_size, 0)
    out = {"shape": a.shape if not a.folder else str(a.folder), "image_size": a.image_size, "batch": a.batch,
           "steps": a.steps, "lora_rank": a.rank, "device": torch.cuda.get_device_name(0) if cuda else "cpu",
           "precision": "bf16-mixed" if bf16 else "32-true"}
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        folder = a.folder or (sd15_shaped_folder(Path(tmp) / "sd") if a.shape == "sd15"
                              else tiny_sd_folder(Path(tmp) / "sd", image_size=a.image_size))
        out["folder_seconds"] = time.perf_counter() - t0

        def module():
            return SDLoraModule(str(folder), diseases.kg_dim, term_text_embeddings(), rank=a.rank, total_steps=10**6)

        m = module()
        out["lora_parameters"] = sum(p.numel() for p in m.unet.parameters() if p.requires_grad)
        out["unet_parameters"] = sum(p.numel() for p in m.unet.parameters())
        out["lightning_images_per_s"] = lightning_loop(m, images, cond, a.steps, a.batch, Path(tmp) / "run",
                                                       out["precision"])
        out["plain_images_per_s"] = plain_loop(module(), images, cond, a.steps, a.batch, bf16)
        if cuda:
            out["peak_gpu_memory_gib"] = torch.cuda.max_memory_allocated() / 2**30
    out["lightning_vs_plain"] = out["lightning_images_per_s"] / out["plain_images_per_s"]
    write_results(out, a.out, width=28)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
