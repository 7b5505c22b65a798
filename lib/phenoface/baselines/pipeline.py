"""Notebook 01's classical baselines as steps: GestaltGAN's two average portraits per disease, and the landmark
warp of photos by HPO profiles with its check (does the pixel instrument measure what the warp applied?).

    >>> images, table = average_portraits(train, diseases, class_model, zero_shot, n=16, seed=7)
    >>> warps = warp_photos(photos.images, ["OMIM:190685"], term_displacements(64))
    >>> check = warp_check(warps, term_displacements(64), load_packaged(), seed=0)
    >>> check.table, check.metrics()
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..cohort.terms import TERMS
from ..datasets.landmarks import detect_landmarks, dlib_distance
from ..phenotypes import measure_images
from ..stats import bootstrap_ci, pearson
from .classical import aligned_mean, hpo_profile, latent_mean, warp_face

SEVERITIES = (0.5, 1.0)
GEOMETRIC = 0.25  # px: a term whose largest landmark displacement is below this is not drawn by a warp
ALIGNED, GENERATED = "aligned mean of faces", "mean of generated latents (class)"


def average_portraits(cohort, diseases, model=None, zero_shot=(), n: int = 16, seed: int = 0,
                      **kw) -> tuple[np.ndarray, pd.DataFrame]:
    """Per disease, in order: the aligned mean of its faces in ``cohort`` (where it has any) and, with a
    class-conditional ``model`` and unless zero-shot, the decoded mean of ``n`` generated latents (``kw``:
    sampling steps, guidance, scheduler). Returns (images, one table row each: disease, kind, faces)."""
    portraits, rows = [], []
    for d in diseases:
        mask = (cohort.table["disease_id"] == d).to_numpy()
        if mask.any():
            portraits.append(aligned_mean(cohort.images[mask], cohort.landmarks[mask]))
            rows.append({"disease_id": d, "kind": ALIGNED, "faces": int(mask.sum())})
        if d not in zero_shot and model is not None:
            portraits.append(latent_mean(model, d, n=n, seed=seed, **kw))
            rows.append({"disease_id": d, "kind": GENERATED, "faces": n})
    return np.stack(portraits), pd.DataFrame(rows)


@dataclass
class Warps:
    """Each warp's photo before and after, the profile applied (term -> severity x weight), and its label
    (photo index, disease, severity); ``no_face``: photos dlib found no face in (not warped)."""

    before: list = field(default_factory=list)
    after: list = field(default_factory=list)
    applied: list = field(default_factory=list)
    labels: list = field(default_factory=list)
    no_face: list = field(default_factory=list)

    def __len__(self):
        return len(self.labels)

    def by_photo(self, n: int) -> dict:
        """The first ``n`` warped photos: "photo i" -> the photo, then its warps in order."""
        photos = sorted({lab[0] for lab in self.labels})[:n]
        return {f"photo {i}": np.stack([self.before[[j for j, lab in enumerate(self.labels) if lab[0] == i][0]]]
                                       + [self.after[j] for j, lab in enumerate(self.labels) if lab[0] == i])
                for i in photos}


def warp_photos(images, diseases, displacements: dict, severities=SEVERITIES) -> Warps:
    """Every photo with a face (dlib landmarks) warped by each disease's HPO profile (its terms that have a
    displacement, :func:`.classical.hpo_profile`) at each severity (:func:`.classical.warp_face`)."""

    out = Warps()
    for i, img in enumerate(images):
        lm = detect_landmarks(img, backend="dlib")
        if lm is None:
            out.no_face.append(i)
            continue
        for d in diseases:
            prof = {t: w for t, w in hpo_profile(d).items() if t in displacements}
            for sev in severities:
                warped, _ = warp_face(img, lm, prof, sev, displacements)
                out.before.append(img)
                out.after.append(warped)
                out.applied.append({t: sev * w for t, w in prof.items()})
                out.labels.append((i, d, sev))
    return out


@dataclass
class WarpCheck:
    """Per warp: Pearson(applied, measured change) over the geometric terms and the dlib distance to the
    photo; the measured change per warp and term; the mean Pearson with its bootstrap interval."""

    table: pd.DataFrame
    change: pd.DataFrame
    geometric: list
    pearson: float
    ci: tuple

    def mean_change(self, applied: list) -> pd.DataFrame:
        """Per geometric term (named): the mean applied profile weight beside the mean measured change."""
        return pd.DataFrame({"applied (mean)": pd.DataFrame(applied).reindex(columns=self.geometric).fillna(0).mean(),
                             "measured change (mean)": self.change[self.geometric].mean()}).rename(index=TERMS)

    def metrics(self) -> dict:
        return {"warps": int(len(self.table)), "warp_applied_vs_measured_pearson": self.pearson,
                "warp_applied_vs_measured_pearson_ci": list(self.ci),
                "warp_dlib_distance": float(np.nanmean(self.table["dlib distance to photo"]))}


def warp_check(warps: Warps, displacements: dict, instrument, names: dict | None = None, seed: int = 0) -> WarpCheck:
    """Measure every photo before and after its warp with ``instrument`` (from pixels); compare the change with
    the applied profile over the terms a warp can draw (largest displacement above :data:`GEOMETRIC` px), and the
    identity kept (dlib descriptor distance; the same person is below 0.6)."""

    names = names or {}
    before, after = np.stack(warps.before), np.stack(warps.after)
    measured_before = measure_images(before, instrument=instrument)
    change = measure_images(after, instrument=instrument) - measured_before
    geometric = [t for t in TERMS if np.abs(displacements[t]).max() > GEOMETRIC]
    rows = []
    for k, (i, d, sev) in enumerate(warps.labels):
        a = np.array([warps.applied[k].get(t, 0.0) for t in geometric])
        c = change.iloc[k][geometric].to_numpy(float)
        rows.append({"photo": i, "disease": names.get(d, d), "severity": sev,
                     "Pearson(applied, measured change)": pearson(a, c)})
    table = pd.DataFrame(rows)
    table["dlib distance to photo"] = dlib_distance(before, after)
    r = table["Pearson(applied, measured change)"].to_numpy(float)
    point, ci = bootstrap_ci(r[np.isfinite(r)], seed=seed)
    return WarpCheck(table, change, geometric, point, ci)
