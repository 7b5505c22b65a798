"""Diffusion in pixel space, in the UNet's shape for a latent: the "autoencoder" is space-to-depth.

A 64 px face becomes a 16 x 16 grid of 4 x 4 x 3 = 48-channel patches (``torch.nn.PixelUnshuffle``) and back
(``PixelShuffle``): exact and without weights, so what the UNet draws is what is judged, pixel for pixel. A
trained f = 4 ``AutoencoderKL`` loses the thin lines by which the renderer shows adult age and several terms
(the autoencoder ceiling in notebook 05); patching the pixels keeps the UNet at the latent's 16 x 16 and
its cost, where ``UNet2DConditionModel(in_channels=3)`` at 64 x 64 would cost several times more per step
on CPU. Simple Diffusion (Hoogeboom et al., 2023) and pixel-space DiTs patchify the same way.

The class answers the part of diffusers' ``AutoencoderKL`` interface this project calls (``encode(x)
.latent_dist.mode()/.sample()``, ``decode(z).sample``), so training, sampling, editing and the checks run
unchanged. diffusers has no weightless autoencoder, hence this small class.
"""

from __future__ import annotations

from types import SimpleNamespace

import torch

KIND = "patch"


class _Exact:
    """A posterior with no spread: mode and sample are the patches themselves."""

    def __init__(self, z: torch.Tensor):
        self.z = z

    def mode(self) -> torch.Tensor:
        return self.z

    def sample(self, generator=None) -> torch.Tensor:
        return self.z


class PatchAutoencoder(torch.nn.Module):
    """Space-to-depth with factor ``patch_size``: (N, 3, H, W) <-> (N, 3 p², H / p, W / p), lossless."""

    def __init__(self, patch_size: int = 4, in_channels: int = 3, sample_size: int | None = None):
        super().__init__()
        if patch_size < 1 or in_channels < 1:
            raise ValueError(f"patch_size and in_channels must be positive, got {patch_size} and {in_channels}")
        if sample_size is not None and sample_size % patch_size:
            raise ValueError(f"image size {sample_size} px is not a multiple of the patch size {patch_size}")
        self.config = SimpleNamespace(kind=KIND, patch_size=patch_size, in_channels=in_channels,
                                      latent_channels=in_channels * patch_size ** 2, sample_size=sample_size)
        self.down = torch.nn.PixelUnshuffle(patch_size)
        self.up = torch.nn.PixelShuffle(patch_size)

    def encode(self, x: torch.Tensor, return_dict: bool = True):
        if x.shape[-1] % self.config.patch_size or x.shape[-2] % self.config.patch_size:
            raise ValueError(f"images of {tuple(x.shape[-2:])} px do not split into {self.config.patch_size} px patches")
        return SimpleNamespace(latent_dist=_Exact(self.down(x)))

    def decode(self, z: torch.Tensor, return_dict: bool = True):
        return SimpleNamespace(sample=self.up(z))


def patch_config(patch_size: int, image_size: int, in_channels: int = 3) -> dict:
    return {"kind": KIND, "patch_size": int(patch_size), "in_channels": int(in_channels), "sample_size": int(image_size)}


def is_patch(config: dict) -> bool:
    return dict(config).get("kind") == KIND
