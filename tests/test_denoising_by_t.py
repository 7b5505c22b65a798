"""studies.denoising_by_t: the clean-face estimate from either parametrisation, the noise measure, and one run
on a tiny model."""

import numpy as np
import pytest
import torch
from diffusers import DDPMScheduler

from phenoface.cohort import Cohort
from phenoface.model import load_model
from phenoface.model.train import main
from studies.denoising_by_t import DEPTHS, TIMESTEPS, clean_estimate, high_frequency, measure


@pytest.mark.parametrize("kind", ["epsilon", "v_prediction"])
def test_a_perfect_prediction_gives_back_the_clean_latent(kind):
    sched = DDPMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012)
    z0, noise = torch.randn(2, 4, 8, 8), torch.randn(2, 4, 8, 8)
    for t in (5, 500, 950):
        tt = torch.full((2,), t)
        noisy = sched.add_noise(z0, noise, tt)
        target = noise if kind == "epsilon" else sched.get_velocity(z0, noise, tt)
        torch.testing.assert_close(clean_estimate(target, noisy, sched.alphas_cumprod[t], kind), z0, atol=1e-3, rtol=1e-3)


def test_high_frequency_rises_with_noise():
    faces = Cohort.generate(n=4, seed=1, size=32).images
    noisy = np.clip(faces + np.random.default_rng(0).normal(0, 20, faces.shape), 0, 255).astype(np.uint8)
    assert high_frequency(noisy) > 2 * high_frequency(faces) > 0


def test_measure_reports_every_timestep_and_depth(tmp_path):
    assert main(["--out", str(tmp_path), "--patch", "4", "--faces", "16", "--image-size", "32", "--unet-steps", "2",
                 "--batch-size", "8"]) == 0
    faces = Cohort.generate(n=4, seed=2, size=32).images
    r = measure(load_model(tmp_path / "model"), faces)
    for t in TIMESTEPS:
        assert r[f"t{t}_mse_model"] >= 0 and r[f"t{t}_mse_identity"] >= 0
    # the mean-face estimate does not depend on t; the rescaled input is right at small t only
    assert r[f"t{TIMESTEPS[0]}_mse_identity"] < r[f"t{TIMESTEPS[0]}_mse_mean"]
    assert r[f"t{TIMESTEPS[-1]}_mse_identity"] > r[f"t{TIMESTEPS[-1]}_mse_mean"]
    assert all(np.isfinite(r[f"from{d}_high_frequency"]) for d in DEPTHS)
    assert r["real_high_frequency"] == pytest.approx(high_frequency(faces))
