"""The classical, training-free baselines: average patient portraits (GestaltGAN's two ways) and the
landmark thin-plate-spline warp (healthy -> diseased on any photo, as landmark-driven editors do).

- :func:`aligned_mean`: the faces of one disease aligned on their landmarks (a similarity transform to the
  canonical layout, :func:`phenoface.datasets.landmarks.align_face`), then averaged pixel by pixel;
- :func:`latent_mean`: the decoded mean of many generated latents of one disease;
- :func:`term_displacements`: how each renderable term moves the 68 landmarks per unit intensity, measured on
  renders of people with and without it (a shape model, as a face-mesh editor has);
- :func:`warp_face`: move a face's landmarks by a profile's displacements times severity and warp the image
  with scikit-image's ``ThinPlateSplineTransform``. Geometry only: skin, texture and colour terms (nodules,
  erythema, hair) cannot be drawn by a warp, and the measured change shows it.
"""

from __future__ import annotations

import functools

import numpy as np

from .. import hpo
from ..cohort import render_face
from ..cohort.terms import TERM_IDS
from ..datasets.landmarks import align_face
from ..sampling import decode, generate


def aligned_mean(images: np.ndarray, landmarks: np.ndarray, size: int | None = None) -> np.ndarray:
    """uint8 (size, size, 3): the mean of ``images`` after aligning each on its ``landmarks`` (N, 68, 2)."""

    if len(images) == 0:
        raise ValueError("aligned_mean: no faces")
    size = int(size or images.shape[1])
    acc = np.zeros((size, size, 3))
    for img, lm in zip(images, landmarks):
        acc += align_face(img, lm, size)[0].astype(float)
    return np.clip(np.round(acc / len(images)), 0, 255).astype(np.uint8)


def latent_mean(model, disease: str, n: int = 64, seed: int = 0, steps: int = 20, guidance: float = 3.0,
                **kw) -> np.ndarray:
    """uint8 (S, S, 3): ``n`` latents of ``disease`` drawn by ``model``, averaged, decoded."""

    lat = generate(model, disease=disease, n=n, seed=seed, steps=steps, guidance=guidance, return_latents=True, **kw)
    return decode(model, lat.mean(0, keepdim=True))[0]


@functools.lru_cache(maxsize=4)
def term_displacements(size: int = 64, identities: int = 8, seed: int = 0) -> dict:
    """{term: (68, 2) mean landmark displacement in pixels at intensity 1} (neutral pose, random people)."""

    rng = np.random.default_rng([seed, 909])
    people = [(int(rng.integers(0, 2 ** 31 - 1)), str(rng.choice(["F", "M"])), float(rng.uniform(3, 40)))
              for _ in range(identities)]
    out = {}
    base = {p: render_face(p[0], p[2], p[1], None, size)[1] for p in people}
    for t in TERM_IDS:
        out[t] = np.mean([render_face(i, a, s, {t: 1.0}, size)[1] - base[(i, s, a)] for i, s, a in people], axis=0)
    return out


def hpo_profile(disease: str, terms=TERM_IDS) -> dict[str, float]:
    """The disease's HPO annotation over the renderable terms, weighted by the annotated frequency (1 when none
    is given): public knowledge, available before any notebook has run."""

    ann = hpo.annotations()
    rows = ann[(ann["disease_id"] == disease) & ann["hpo_id"].isin(list(terms))]
    if rows.empty and disease not in hpo.disease_ids():
        raise hpo.UnknownDiseaseError(f"unknown disease {disease!r}: not in the packaged HPO annotations")
    freq = rows["frequency"].astype(float).fillna(1.0)
    return {t: float(f) for t, f in zip(rows["hpo_id"], freq)}


def warp_face(image: np.ndarray, landmarks: np.ndarray, profile: dict, severity: float = 1.0,
              displacements: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(warped uint8 image, target landmarks): the face's landmarks moved by sum_t w_t * severity * d_t and the
    image warped so they land there (thin-plate spline through the 68 points and fixed anchors around the image)."""
    from skimage.transform import ThinPlateSplineTransform, warp

    if not 0.0 <= float(severity) <= 1.0:
        raise ValueError(f"severity = {severity!r} is out of range: valid 0 to 1")
    img = np.asarray(image)
    size = img.shape[0]
    disp = displacements or term_displacements(size)
    unknown = [t for t in profile if t not in disp]
    if unknown:
        raise KeyError(f"terms without a landmark displacement: {unknown}; known: {', '.join(disp)}")
    src = np.asarray(landmarks, float)
    move = sum((float(w) * disp[t] for t, w in profile.items()), np.zeros_like(src))
    dst = src + float(severity) * move
    # fixed anchors well outside the image keep the frame still; coincident landmarks (a detector can return
    # two points at one place) make the spline's system singular, so each place is used once
    lo, hi = -0.5 * size, 1.5 * size
    anchors = np.array([[lo, lo], [hi, lo], [lo, hi], [hi, hi], [size / 2, lo], [size / 2, hi], [lo, size / 2],
                        [hi, size / 2]], float)
    _, first = np.unique(np.round(src, 3), axis=0, return_index=True)
    keep = np.sort(first)
    # warp() maps output coordinates to input ones: estimate target -> source
    tps = ThinPlateSplineTransform.from_estimate(np.vstack([dst[keep], anchors]), np.vstack([src[keep], anchors]))
    if not tps:
        raise ValueError(f"thin-plate spline estimation failed (degenerate landmarks): {tps}")
    out = warp(img, tps, output_shape=img.shape[:2], mode="edge", preserve_range=True)
    return np.clip(np.round(out), 0, 255).astype(np.uint8), dst
