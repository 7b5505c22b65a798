"""Realism (Fréchet distance and KID in the recogniser's feature space, the standard Inception FID when its
weights are given) and identity (pairs from the progression series)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .. import (InceptionWeightsError, embedding_cosine, frechet_distance, identity_pairs, identity_parameter_distance,
                inception_extractor, kernel_distance)
from .base import StepResult, timed

NOISE_SIGMAS = (12, 40)


@dataclass
class RealismResult(StepResult):
    extractor: object
    table: pd.DataFrame  # rows: image-set pairs; columns fd, kid
    inception_fid: float
    inception_note: str
    seconds: dict = field(default_factory=dict)

    @property
    def fd_reference(self) -> float:
        return float(self.table.loc["train vs test", "fd"])

    @property
    def kid_reference(self) -> float:
        return float(self.table.loc["train vs test", "kid"])

    def metrics(self) -> dict:
        return {"fd_real_vs_heldout": self.fd_reference, "kid_real_vs_heldout": self.kid_reference,
                "fd_heldout_noise12": float(self.table.loc["test vs test + noise (sigma 12)", "fd"]),
                "fd_heldout_noise40": float(self.table.loc["test vs test + noise (sigma 40)", "fd"]),
                "inception_fid": self.inception_fid, **super().metrics()}


def realism_step(ev, recogniser, inception_weights="") -> RealismResult:
    """FD and KID between train and test faces (the reference), test and itself, and test and noised copies
    of it (the scale; noise drawn from ``default_rng(seed)``); the Inception FID when ``inception_weights``
    is a file."""

    train, test = ev.train, ev.test
    extractor = recogniser.feature_extractor()
    rng = np.random.default_rng(ev.seed)
    noisy = {s: np.clip(test.images + rng.normal(0, s, test.images.shape), 0, 255).astype(np.uint8) for s in NOISE_SIGMAS}
    rows = {"train vs test": (train.images, test.images), "test vs itself": (test.images, test.images),
            "test vs test + noise (sigma 12)": (test.images, noisy[12]),
            "test vs test + noise (sigma 40)": (test.images, noisy[40])}
    seconds = {}
    with timed(seconds, "realism"):
        table = pd.DataFrame({name: {"fd": frechet_distance(a, b, extractor),
                                     "kid": kernel_distance(a, b, extractor, seed=ev.seed)[0]}
                              for name, (a, b) in rows.items()}).T
    try:
        inception = inception_extractor(inception_weights)
        fid = frechet_distance(train.images, test.images, inception)
        note = f"standard Inception FID, train vs test: {fid:.2f}"
    except (InceptionWeightsError, ImportError) as exc:
        fid, note = float("nan"), f"standard Inception FID skipped: {exc}"
    return RealismResult(extractor, table, fid, note, seconds)


@dataclass
class IdentityResult(StepResult):
    pairs: pd.DataFrame
    table: pd.DataFrame  # per pair kind: pairs, identity-parameter distance, recogniser cosine

    def metrics(self) -> dict:
        cos = self.table["recogniser cosine"]
        return {"identity_cosine_same": float(cos.loc["same person"]),
                "identity_cosine_different_same_disease": float(cos.get("different person, same disease", np.nan))}


def identity_step(progression, recogniser) -> IdentityResult:
    """Same person youngest vs oldest and different people of one disease at one age, from the progression
    series: the renderer's identity-parameter distance (the truth) beside the recogniser's embedding cosine."""

    prog = progression.table
    pairs = identity_pairs(prog)
    emb = recogniser.embed(progression.images)
    a, b = prog.loc[pairs["a"]], prog.loc[pairs["b"]]
    pairs["identity-parameter distance"] = identity_parameter_distance(a["identity"], a["sex"], b["identity"], b["sex"])
    pairs["recogniser cosine"] = embedding_cosine(emb[pairs["a"].to_numpy()], emb[pairs["b"].to_numpy()])
    assert (a["disease_id"].to_numpy() == b["disease_id"].to_numpy()).all()
    table = pairs.groupby("kind")[["identity-parameter distance", "recogniser cosine"]].mean()
    table.insert(0, "pairs", pairs.groupby("kind").size())
    return IdentityResult(pairs, table)
