"""Healthy <-> diseased editing and progression with the trained generator.

Two ways, both on the autoencoder's latent of the input face:

- ``ddim`` (default): **DDIM inversion** (diffusers' ``DDIMInverseScheduler``) of the input under its *source*
  condition (its disease or unaffected, its age and sex) up to ``strength`` of the noise chain, then DDIM
  sampling back with the *target* condition and the source as a negative concept (Composable Diffusion, as
  :func:`phenoface.sampling.generate`). Plain inversion can drift, so every input is also reconstructed
  from its inversion under the source condition, and the reconstruction error is reported per image
  (``inversion_error``; ``inversion_ok`` False above ``max_error``), never hidden. Where it is above
  ``max_error``, the image is inverted again exactly (``refine`` fixed-point iterations per step; see
  :func:`invert`) and the better of the two kept (``inversion_refined``);
- ``sdedit``: noise the latent to ``strength`` with seeded noise, then sample with the target condition
  (SDEdit, Meng et al. 2022): simpler, keeps less of the face.

``severity`` (one value or one per face) is the slider; ``target_age`` moves a face along age.

    >>> out = edit(model, faces, target="OMIM:190685", source=UNAFFECTED, age=8.0, sex="F", severity=0.8)
    >>> out.images, out.table        # uint8 (N, H, W, 3); per image: inversion error, ok flag, method ...
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from ..datasets.landmarks import detect_landmarks, upscale
from ..labels import UNAFFECTED
from ..pixels import to_model_range
from ..sampling import Guide, _check, _per_face, concepts, decode, denoise

METHODS = ("ddim", "sdedit")
MAX_ERROR = 0.06  # mean absolute pixel error (0-1 scale) of the inversion's reconstruction beyond the autoencoder's


@dataclass
class EditResult:
    images: np.ndarray  # uint8 (N, H, W, 3)
    table: pd.DataFrame  # per image: method, strength, target, severity, inversion_error, inversion_ok
    reconstructions: np.ndarray | None = None  # ddim: the inversion decoded back under the source condition


def check_images(model, images) -> np.ndarray:
    """The images as uint8 (N, S, S, 3) at the model's size, or a ValueError that says what is wrong."""
    arr = np.asarray(images)
    if arr.ndim == 3:
        arr = arr[None]
    s = model.image_size
    if arr.ndim != 4 or arr.shape[1:] != (s, s, 3):
        raise ValueError(f"images: expected uint8 (N, {s}, {s}, 3) aligned faces at the model's size, got shape "
                         f"{arr.shape} (align and resize photos first, e.g. with phenoface.datasets)")
    if arr.dtype != np.uint8:
        if not np.isfinite(arr).all():
            raise ValueError("images: contain NaN or infinite values")
        raise ValueError(f"images: expected uint8 pixels (0-255), got {arr.dtype}")
    if len(arr) == 0:
        raise ValueError("images: no images given")
    return arr


@torch.no_grad()
def encode(model, images: np.ndarray) -> torch.Tensor:
    """uint8 faces -> the model's scaled latents (the autoencoder's posterior mean)."""
    x = to_model_range(torch.as_tensor(images)).to(next(model.unet.parameters()).device)
    return model.vae.encode(x).latent_dist.mode() * model.latent_scale


def _schedulers(model, steps: int):
    from diffusers import DDIMInverseScheduler, DDIMScheduler

    fwd = DDIMScheduler.from_config(model.scheduler)
    inv = DDIMInverseScheduler.from_config(model.scheduler)
    fwd.set_timesteps(int(steps))
    inv.set_timesteps(int(steps))
    return fwd, inv


@torch.no_grad()
def invert(model, latents: torch.Tensor, guide: Guide, steps: int, k: int, iterations: int = 0) -> torch.Tensor:
    """DDIM inversion of ``latents`` through the first ``k`` of ``steps`` steps, unguided (guidance 1) under
    the source condition ``guide``: the noise that DDIM sampling maps back to the input.

    Plain inversion evaluates the noise at the *less* noisy latent, an approximation that can drift;
    ``iterations`` > 0 refines each step by fixed-point iteration (the noise re-evaluated at the step's own
    result until the forward DDIM step from it lands back on the input: exact inversion in the limit).
    Written here because diffusers' inverse scheduler has no such option."""
    _, inv = _schedulers(model, steps)
    if not iterations:
        return denoise(guide, latents, inv, inv.timesteps[:k], 1.0)
    z = latents
    for t in inv.timesteps[:k]:
        nxt = inv.step(guide(inv.scale_model_input(z, t), t, 1.0), t, z).prev_sample
        for _ in range(int(iterations)):
            nxt = inv.step(guide(inv.scale_model_input(nxt, t), t, 1.0), t, z).prev_sample
        z = nxt
    return z


def faces_found(images) -> np.ndarray:
    """Per image, whether MediaPipe finds a face (on an upscaled copy: the detector needs more than 64 px)."""
    return np.array([detect_landmarks(upscale(img), backend="mediapipe") is not None for img in images], bool)


# per-face arguments of edit(): sliced with the images when only some of them are edited
PER_FACE = ("age", "sex", "severity", "target_age", "source_severity")


def edit(model, images, target: str, source: str = UNAFFECTED, age=30.0, sex="F", severity=1.0, terms=None,
         method: str = "ddim", strength: float = 0.7, steps: int = 25, guidance: float = 3.0, seed: int = 0,
         target_age=None, source_severity=None, max_error: float = MAX_ERROR, refine: int = 3,
         require_face: bool = False) -> EditResult:
    """Edit ``images`` (uint8 aligned faces) from ``source`` to ``target`` (see the module docstring).
    ``require_face``: images in which MediaPipe finds no face are returned unedited, with ``edited`` False and
    a ``note`` saying so in the table; the others are still edited."""
    kw = dict(target=target, source=source, age=age, sex=sex, severity=severity, terms=terms, method=method,
              strength=strength, steps=steps, guidance=guidance, seed=seed, target_age=target_age,
              source_severity=source_severity, max_error=max_error, refine=refine)
    if not require_face:
        return _edit(model, images, **kw)
    arr = check_images(model, images)
    ok = faces_found(arr)
    idx = np.flatnonzero(ok)
    records = [{"method": method, "strength": float(strength), "source": source, "target": target,
                "severity": np.nan, "age": np.nan, "inversion_error": np.nan, "inversion_ok": np.nan,
                "inversion_refined": False}
               for _ in range(len(arr))]
    out, recon = arr.copy(), None
    if len(idx):
        for name in PER_FACE:
            if kw[name] is not None:
                value = _per_face(kw[name], len(arr), name)[idx]
                kw[name] = value if name == "sex" else value.astype(float)
        sub = _edit(model, arr[idx], **kw)
        out[idx] = sub.images
        for j, i in enumerate(idx):
            records[i] = sub.table.iloc[j].to_dict()
        if sub.reconstructions is not None:
            recon = arr.copy()
            recon[idx] = sub.reconstructions
    rows = pd.DataFrame(records)
    rows["edited"] = ok
    rows["note"] = np.where(ok, "", "no face detected: not edited")
    return EditResult(out, rows, recon)


@torch.no_grad()
def _edit(model, images, target, source, age, sex, severity, terms, method, strength, steps, guidance, seed,
          target_age, source_severity, max_error, refine) -> EditResult:
    if method not in METHODS:
        raise ValueError(f"unknown edit method {method!r}; choose one of {', '.join(METHODS)}")
    if int(refine) < 0:
        raise ValueError(f"refine = {refine!r}: the fixed-point iterations of exact inversion, 0 (off) or more")
    if not 0.0 < float(strength) <= 1.0:
        raise ValueError(f"strength = {strength!r} is out of range: valid (0, 1] (share of the noise chain)")
    for name, value in (("guidance", guidance), ("steps", steps), ("severity", severity), ("age", age)):
        _check(name, value)
    if target_age is not None:
        _check("age", target_age)
    images = check_images(model, images)
    for d in (target, source):
        if d in (None, ""):
            raise ValueError("edit: give a target and a source disease (or UNAFFECTED)")
        model.diseases.check(d)  # KeyError listing the available ones
    n = len(images)
    sev = np.asarray(_per_face(severity, n, "severity"), float)
    src_sev = np.zeros(n) if source == UNAFFECTED else np.asarray(
        _per_face(1.0 if source_severity is None else source_severity, n, "source_severity"), float)
    tgt_sev = np.zeros(n) if target == UNAFFECTED else sev
    t_age = age if target_age is None else target_age
    negative = None if source == target else source
    src_guide = Guide(model, *concepts(model, n, source, None, age, sex, src_sev, None))
    tgt_guide = Guide(model, *concepts(model, n, target, terms, t_age, sex, tgt_sev, negative))
    z0 = encode(model, images)
    fwd, _ = _schedulers(model, steps)
    k = max(1, int(round(float(strength) * int(steps))))
    run = fwd.timesteps[len(fwd.timesteps) - k:]
    recon = None
    err = np.full(n, np.nan)
    refined = np.zeros(n, bool)
    if method == "ddim":
        ae = decode(model, z0)

        def checked(guide, rows, iterations):  # the inversion of ``rows``, and how well sampling maps it back
            z = invert(model, z0[rows], guide, steps, k, iterations)
            back = decode(model, denoise(guide, z.clone(), fwd, run, 1.0))
            return z, back, np.abs(back.astype(np.float32) - ae[rows].astype(np.float32)).mean(axis=(1, 2, 3)) / 255.0

        zt, recon, err = checked(src_guide, np.arange(n), 0)
        drift = np.flatnonzero(err > max_error)
        if refine and len(drift):  # where plain inversion drifts: exact (fixed-point) inversion of those, kept where better
            sub = Guide(model, *concepts(model, len(drift), source, None, _per_face(age, n, "age")[drift].astype(float),
                                         list(_per_face(sex, n, "sex")[drift]), src_sev[drift], None))
            z2, recon2, err2 = checked(sub, drift, refine)
            better = err2 < err[drift]
            rows = drift[better]
            refined[rows] = True
            zt[torch.as_tensor(rows)] = z2[torch.as_tensor(better)]
            recon[rows], err[rows] = recon2[better], err2[better]
    else:
        g = torch.Generator(device="cpu").manual_seed(int(seed))
        noise = torch.randn(z0.shape, generator=g).to(z0.device)
        zt = fwd.add_noise(z0, noise, run[:1].repeat(n))
    out = decode(model, denoise(tgt_guide, zt, fwd, run, float(guidance)))
    table = pd.DataFrame({"method": method, "strength": float(strength), "source": source, "target": target,
                          "severity": tgt_sev, "age": np.asarray(_per_face(t_age, n, "age"), float),
                          "inversion_error": err, "inversion_ok": (err <= max_error) if method == "ddim" else np.nan,
                          "inversion_refined": refined})
    return EditResult(out, table, recon)


def progression(model, image, disease: str, levels=(0.0, 0.25, 0.5, 0.75, 1.0), source: str = UNAFFECTED,
                age=8.0, ages=None, sex="F", **kw) -> EditResult:
    """One face along severity ``levels`` (and, with ``ages``, along age too): the same input, inverted the
    same way, sampled with each level; level 0 of a disease is its mildest form, not unaffected."""
    levels = np.asarray(levels, float)
    image = check_images(model, image)[:1]
    batch = np.repeat(image, len(levels), axis=0)
    return edit(model, batch, target=disease, source=source, age=age, sex=sex, severity=levels,
                target_age=None if ages is None else np.asarray(ages, float), **kw)


def round_trip(model, images, disease: str, age=8.0, sex="F", severity=1.0, **kw) -> tuple[EditResult, EditResult]:
    """Healthy -> diseased -> healthy: the two edits (the identity lost on the way is the second's output
    against the input)."""
    there = edit(model, images, target=disease, source=UNAFFECTED, age=age, sex=sex, severity=severity, **kw)
    back = edit(model, there.images, target=UNAFFECTED, source=disease, age=age, sex=sex, severity=severity,
                source_severity=severity, **kw)
    return there, back
