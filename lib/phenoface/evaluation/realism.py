"""Realism: Fréchet distance (FD) and kernel inception distance (KID) between two image sets.

Both go through torchmetrics (``FrechetInceptionDistance`` / ``KernelInceptionDistance`` with
``feature=`` a torch Module). Offline the feature extractor is the recogniser backbone
(:meth:`phenoface.evaluation.recogniser.Recogniser.feature_extractor`): numbers are comparable
within this project (e.g. generated vs held-out against training vs held-out), not with published
FIDs. The standard Inception-v3 FID needs torch-fidelity and its weights file, given by path
(:func:`inception_extractor`); without them a clear error says what is missing.

    >>> ext = recogniser.feature_extractor()
    >>> realism(train_images, generated_images, ext)     # {"fd": .., "kid_mean": .., "kid_std": ..}
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

__all__ = ["frechet_distance", "kernel_distance", "realism", "frechet_from_features", "inception_extractor",
           "InceptionWeightsError"]

INCEPTION_HINT = ("Standard FID needs torch-fidelity's Inception-v3 weights "
                  "(pt_inception-2015-12-05-6726825d.pth, from "
                  "https://github.com/toshas/torch-fidelity/releases) saved locally and given by path "
                  "(params INCEPTION_WEIGHTS), plus `pip install torch-fidelity` (which needs torchvision: "
                  "a GPU/full environment, not the offline CPU venv).")


class InceptionWeightsError(FileNotFoundError):
    """The Inception weights path is empty or does not point to a file."""


def _batches(images, batch_size):
    import torch

    for s in range(0, len(images), batch_size):
        chunk = images[s:s + batch_size]
        x = chunk if isinstance(chunk, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(chunk))
        if x.ndim == 4 and x.shape[-1] == 3:
            x = x.permute(0, 3, 1, 2)
        yield x.contiguous()


def _check(images, name):
    if len(images) < 2:
        raise ValueError(f"{name}: at least two images are needed for a distribution distance, got {len(images)}")
    arr = np.asarray(images) if not hasattr(images, "dtype") or not str(images.dtype).startswith("torch") else images
    if str(arr.dtype) not in ("uint8", "torch.uint8"):
        raise ValueError(f"{name}: expected uint8 images (N, H, W, 3), got dtype {arr.dtype}")


def frechet_distance(real, fake, feature, batch_size: int = 256) -> float:
    """FD between two uint8 image sets (N, H, W, 3) through torchmetrics with ``feature`` (a Module
    mapping uint8 (N, 3, H, W) to features, or 2048/768/... for Inception when available)."""
    import torch
    from torchmetrics.image.fid import FrechetInceptionDistance

    _check(real, "real")
    _check(fake, "fake")
    metric = FrechetInceptionDistance(feature=feature, reset_real_features=True, normalize=False)
    with torch.no_grad():
        for x in _batches(real, batch_size):
            metric.update(x, real=True)
        for x in _batches(fake, batch_size):
            metric.update(x, real=False)
        value = float(metric.compute())
    return max(value, 0.0)  # tiny negative values are round-off of identical sets


def kernel_distance(real, fake, feature, subsets: int = 50, subset_size: int | None = None, seed: int = 0,
                    batch_size: int = 256) -> tuple[float, float]:
    """KID (mean, std over random subsets) through torchmetrics; ``subset_size`` defaults to
    min(100, smaller set size). Seeded (torchmetrics draws the subsets with torch's global RNG)."""
    import torch
    from torchmetrics.image.kid import KernelInceptionDistance

    _check(real, "real")
    _check(fake, "fake")
    size = int(subset_size or min(100, len(real), len(fake)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "will save all extracted features in buffer"
        metric = KernelInceptionDistance(feature=feature, subsets=subsets, subset_size=size, normalize=False)
    with torch.no_grad():
        for x in _batches(real, batch_size):
            metric.update(x, real=True)
        for x in _batches(fake, batch_size):
            metric.update(x, real=False)
        state = torch.random.get_rng_state()
        torch.manual_seed(seed)
        try:
            mean, std = metric.compute()
        finally:
            torch.random.set_rng_state(state)
    return float(mean), float(std)


def realism(real, fake, feature, seed: int = 0) -> dict:
    """``{"fd", "kid_mean", "kid_std", "n_real", "n_fake"}`` for two uint8 image sets."""
    kid_mean, kid_std = kernel_distance(real, fake, feature, seed=seed)
    return {"fd": frechet_distance(real, fake, feature), "kid_mean": kid_mean, "kid_std": kid_std,
            "n_real": int(len(real)), "n_fake": int(len(fake))}


def frechet_from_features(a: np.ndarray, b: np.ndarray) -> float:
    """FD between two feature sets (N, D) with numpy/scipy: ||mu_a - mu_b||^2 + Tr(Sa + Sb - 2 sqrt(Sa Sb)).
    The same quantity torchmetrics computes; useful for cached features."""
    from scipy import linalg

    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    mu_a, mu_b = a.mean(0), b.mean(0)
    sa, sb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = linalg.sqrtm(sa @ sb)
    if np.iscomplexobj(covmean):
        covmean = covmean.real
    return float(max(((mu_a - mu_b) ** 2).sum() + np.trace(sa + sb - 2 * covmean), 0.0))


def inception_extractor(weights_path, feature: int = 2048):
    """torchmetrics' standard FID Inception-v3 loaded from a local weights file.

    Raises :class:`InceptionWeightsError` when ``weights_path`` is empty or missing, and ImportError
    when torch-fidelity is not installed, each naming what to get. Returns the FID-ready metric's
    feature module (pass it as ``feature=`` to :func:`frechet_distance`)."""
    if weights_path is None or str(weights_path).strip() == "":
        raise InceptionWeightsError("No Inception weights path given. " + INCEPTION_HINT)
    path = Path(os.path.expanduser(str(weights_path)))
    if not path.is_file():
        raise InceptionWeightsError(f"Inception weights not found at {path}. " + INCEPTION_HINT)
    try:
        import torch_fidelity  # noqa: F401
    except ImportError as exc:
        raise ImportError("torch-fidelity is not installed. " + INCEPTION_HINT) from exc
    from torchmetrics.image.fid import NoTrainInceptionV3

    return NoTrainInceptionV3(name="inception-v3-compat", features_list=[str(feature)],
                              feature_extractor_weights_path=str(path))
