"""Image perturbations a generator (or a copier) applies: blur, shifts, crops, flips, noise.

Used twice: to report the recogniser on blurred test faces (a judge of generated faces must not score
sharpness), and to build memorisation probes beyond the detector's design
(:mod:`phenoface.evaluation.probes`). All take and return uint8 (N, H, W, 3).

    >>> blur_images(images, 0.7)          # Gaussian blur, sigma in pixels of the given images
    >>> shift_images(images, 3, -2)       # translate by (dx, dy) pixels, edges replicated
    >>> crop_resize(images, 0.9)          # keep the central 90 %, resized back to the full size
"""

from __future__ import annotations

import numpy as np

__all__ = ["blur_images", "shift_images", "crop_resize", "flip_images", "noise_images"]


def _u8(x) -> np.ndarray:
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def blur_images(images, sigma: float) -> np.ndarray:
    """Gaussian blur of ``sigma`` pixels over height and width (not across channels or images)."""
    from scipy.ndimage import gaussian_filter

    images = np.asarray(images)
    if sigma <= 0:
        return images.copy()
    return _u8(gaussian_filter(images.astype(np.float32), sigma=(0, sigma, sigma, 0), mode="nearest"))


def shift_images(images, dx: int, dy: int) -> np.ndarray:
    """Translate by (dx, dy) whole pixels (positive = right / down), replicating the edge pixels."""
    images = np.asarray(images)
    h, w = images.shape[1:3]
    p = max(abs(int(dx)), abs(int(dy)))
    if p == 0:
        return images.copy()
    pad = np.pad(images, ((0, 0), (p, p), (p, p), (0, 0)), mode="edge")
    return np.ascontiguousarray(pad[:, p - dy:p - dy + h, p - dx:p - dx + w])


def crop_resize(images, keep: float = 0.9) -> np.ndarray:
    """The central ``keep`` share of each side, resized back to the original size (bilinear, antialiased)."""
    from PIL import Image

    images = np.asarray(images)
    h, w = images.shape[1:3]
    ch, cw = max(1, int(round(h * keep))), max(1, int(round(w * keep)))
    t, l = (h - ch) // 2, (w - cw) // 2
    out = np.empty_like(images)
    for i, img in enumerate(images):
        out[i] = np.asarray(Image.fromarray(img[t:t + ch, l:l + cw]).resize((w, h), Image.BILINEAR))
    return out


def flip_images(images) -> np.ndarray:
    """Mirror images left-right."""
    return np.ascontiguousarray(np.asarray(images)[:, :, ::-1])


def noise_images(images, sigma: float, seed: int = 0) -> np.ndarray:
    """Add Gaussian pixel noise of ``sigma`` grey levels (seeded)."""
    rng = np.random.default_rng(seed)
    images = np.asarray(images)
    return _u8(images.astype(np.float32) + rng.normal(0, sigma, images.shape))
