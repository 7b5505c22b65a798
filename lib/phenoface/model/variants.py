"""Other generator shapes than the shipped one, for the studies that compare latents and UNets
(``studies.autoencoder``, ``studies.training_curve``)."""

from __future__ import annotations

import copy

BLOCKS = {"D": "DownBlock2D", "A": "CrossAttnDownBlock2D"}


def unet_shape(cfg: dict, spec: str) -> dict:
    """``cfg`` (a size config) with the UNet ``widths/blocks``, e.g. ``32,64,128,128/D,A,A,D`` (D: a plain
    convolution block, A: one with cross-attention)."""
    cfg = copy.deepcopy(cfg)
    try:
        widths, blocks = spec.split("/")
        cfg["unet"].update(block_out_channels=[int(w) for w in widths.split(",")],
                           down=[BLOCKS[b.strip().upper()] for b in blocks.split(",")])
    except (ValueError, KeyError):
        raise ValueError(f"UNet shape {spec!r}: write widths/blocks, e.g. 32,64,128,128/D,A,A,D") from None
    if len(cfg["unet"]["block_out_channels"]) != len(cfg["unet"]["down"]):
        raise ValueError(f"UNet shape {spec!r}: one block kind per width")
    cfg["unet"]["norm_num_groups"] = min(cfg["unet"]["norm_num_groups"], min(cfg["unet"]["block_out_channels"]))
    return cfg
