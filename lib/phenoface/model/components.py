"""Stable Diffusion's shape from diffusers components, built from config: an ``AutoencoderKL`` and a
``UNet2DConditionModel`` whose cross-attention reads the conditioning tokens.

Sizes (``SIZES``): ``quick`` for 64 px on CPU, ``pixel`` the same UNet in pixel space, ``tiny`` for tests
(seconds). At 64 px a phenotype is a few pixels, so the quick autoencoder downsamples only 4x (16 x 16 latent,
8 channels) rather than SD's f = 8 x 4 channels, which was made for 512 px photographs; it still loses the thin
lines that show adult age (the ceiling in notebook 05). ``pixel`` patches the pixels 4 x 4 into a 16 x 16 x 48
grid instead (:mod:`.patch`, lossless) at the same UNet cost. An ``"autoencoder"`` entry with ``"kind":
"patch"`` is the patching; any other is an ``AutoencoderKL``.
"""

from __future__ import annotations

import copy

from .patch import PatchAutoencoder, is_patch, patch_config

# The quick f = 4 autoencoder; the base of studies.autoencoder.
# Measured on 2 CPU cores, batch 32: widths 16/32/64 train at 0.55 s/step, 24/48/96 at 1.17, 32/64/64 at 1.29.
QUICK_KL = {"block_out_channels": [16, 32, 64], "latent_channels": 8, "layers_per_block": 1, "norm_num_groups": 8}
QUICK_UNET = {"block_out_channels": [64, 128, 128], "layers_per_block": 1, "attention_head_dim": 8,
              "norm_num_groups": 32, "down": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"]}

SIZES = {
    "quick": {"autoencoder": QUICK_KL, "unet": QUICK_UNET, "cond_dim": 128},
    # train it with PREDICTION: v_prediction: with epsilon, samples from pure noise keep the noise (docs/generator.md)
    "pixel": {"autoencoder": {"kind": "patch", "patch_size": 4}, "unet": QUICK_UNET, "cond_dim": 128},
    "tiny": {
        "autoencoder": {"block_out_channels": [8, 16, 16], "latent_channels": 4, "layers_per_block": 1,
                        "norm_num_groups": 4},
        "unet": {"block_out_channels": [16, 32], "layers_per_block": 1, "attention_head_dim": 4,
                 "norm_num_groups": 8, "down": ["CrossAttnDownBlock2D", "DownBlock2D"]},
        "cond_dim": 16,
    },
}
UP = {"CrossAttnDownBlock2D": "CrossAttnUpBlock2D", "DownBlock2D": "UpBlock2D"}


def size_config(size: str | dict) -> dict:
    if isinstance(size, dict):
        return copy.deepcopy(size)
    if size not in SIZES:
        raise ValueError(f"unknown model size {size!r}; known: {', '.join(SIZES)}")
    return copy.deepcopy(SIZES[size])


def autoencoder_config(cfg: dict, image_size: int) -> dict:
    a = cfg["autoencoder"]
    if is_patch(a):
        return patch_config(a["patch_size"], image_size)
    n = len(a["block_out_channels"])
    return {"in_channels": 3, "out_channels": 3, "down_block_types": ["DownEncoderBlock2D"] * n,
            "up_block_types": ["UpDecoderBlock2D"] * n, "block_out_channels": list(a["block_out_channels"]),
            "layers_per_block": a["layers_per_block"], "latent_channels": a["latent_channels"],
            "norm_num_groups": a["norm_num_groups"], "sample_size": image_size, "mid_block_add_attention": False}


def latent_factor(cfg: dict) -> int:
    """How many pixels one latent position spans (per side)."""
    a = cfg["autoencoder"]
    return int(a["patch_size"]) if is_patch(a) else 2 ** (len(a["block_out_channels"]) - 1)


def latent_channels(cfg: dict) -> int:
    a = cfg["autoencoder"]
    return 3 * int(a["patch_size"]) ** 2 if is_patch(a) else int(a["latent_channels"])


def latent_size(cfg: dict, image_size: int) -> int:
    return image_size // latent_factor(cfg)


def unet_config(cfg: dict, image_size: int) -> dict:
    u, ch = cfg["unet"], latent_channels(cfg)
    return {"sample_size": latent_size(cfg, image_size), "in_channels": ch, "out_channels": ch,
            "down_block_types": list(u["down"]), "up_block_types": [UP[b] for b in reversed(u["down"])],
            "block_out_channels": list(u["block_out_channels"]), "layers_per_block": u["layers_per_block"],
            "cross_attention_dim": cfg["cond_dim"], "attention_head_dim": u["attention_head_dim"],
            "norm_num_groups": u["norm_num_groups"]}


def build_autoencoder(config: dict):
    """The autoencoder of a config: the pixel patching (:mod:`.patch`) or a diffusers ``AutoencoderKL``."""
    if is_patch(config):
        return PatchAutoencoder(config["patch_size"], config.get("in_channels", 3), config.get("sample_size"))
    from diffusers import AutoencoderKL

    return AutoencoderKL(**config)


def build_unet(config: dict):
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(**config)


def n_params(module) -> int:
    return sum(p.numel() for p in module.parameters())
