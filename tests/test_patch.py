"""Diffusion in pixel space through the patching "autoencoder" (the ``pixel`` size): lossless, shaped like a
latent, and a model trained in it saves, loads, draws and edits like one with a trained autoencoder."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from phenoface.cohort import Cohort
from phenoface.model import load_model
from phenoface.model.components import (autoencoder_config, build_autoencoder, latent_channels, latent_factor,
                                        latent_size, size_config, unet_config)
from phenoface.model.patch import PatchAutoencoder, is_patch
from phenoface.model.quality import psnr, reconstruct
from phenoface.model.train import main


def test_patching_is_exact_and_shaped_like_a_latent():
    faces = Cohort.generate(n=6, seed=3, size=64).images
    vae = PatchAutoencoder(4)
    out = reconstruct(SimpleNamespace(vae=vae), faces)
    assert np.array_equal(out, faces)  # pixel for pixel: the ceiling of a generator in this space is the faces
    assert psnr(faces, out) > 100
    z = vae.encode(torch.zeros(2, 3, 64, 64)).latent_dist
    assert z.mode().shape == (2, 48, 16, 16) and z.sample() is z.mode()
    # each latent position holds its own 4 x 4 pixels: a change in one pixel moves one position only
    x = torch.zeros(1, 3, 64, 64)
    x[0, :, 5, 9] = 1.0
    moved = vae.encode(x).latent_dist.mode().abs().sum(1)[0]
    assert moved.nonzero().tolist() == [[1, 2]]


def test_bad_sizes_are_refused():
    with pytest.raises(ValueError, match="multiple of the patch size"):
        PatchAutoencoder(4, sample_size=30)
    with pytest.raises(ValueError, match="positive"):
        PatchAutoencoder(0)
    with pytest.raises(ValueError, match="do not split"):
        PatchAutoencoder(4).encode(torch.zeros(1, 3, 30, 30))


def test_the_pixel_size_diffuses_in_patched_pixels_at_the_quick_cost():
    cfg = size_config("pixel")
    assert cfg["unet"] == size_config("quick")["unet"]
    assert is_patch(cfg["autoencoder"]) and latent_factor(cfg) == 4 and latent_channels(cfg) == 48
    u = unet_config(cfg, 64)
    assert (u["in_channels"], u["out_channels"], u["sample_size"]) == (48, 48, 16) == (48, 48, latent_size(cfg, 64))
    assert isinstance(build_autoencoder(autoencoder_config(cfg, 64)), PatchAutoencoder)
    # the quick and tiny sizes keep a trained AutoencoderKL
    assert not is_patch(autoencoder_config(size_config("quick"), 64)) and not is_patch(size_config("tiny")["autoencoder"])


def test_a_model_trained_in_pixel_space_saves_loads_and_draws(tmp_path):
    from phenoface.editing import edit
    from phenoface.sampling import generate

    assert main(["--out", str(tmp_path), "--patch", "4", "--faces", "24", "--image-size", "32", "--unet-steps", "3",
                 "--batch-size", "8"]) == 0
    assert not (tmp_path / "autoencoder").exists()  # nothing trained before the UNet
    m = load_model(tmp_path / "model")
    assert isinstance(m.vae, PatchAutoencoder) and m.unet.config.in_channels == 48 and m.card["autoencoder"]["steps"] == 0
    d = m.diseases.ids[0]
    a, b = generate(m, disease=d, n=2, seed=5, steps=3), generate(m, disease=d, n=2, seed=5, steps=3)
    assert a.shape == (2, 32, 32, 3) and a.dtype == np.uint8 and np.array_equal(a, b)
    out = edit(m, a, target=d, strength=0.5, steps=4)
    assert out.images.shape == a.shape
