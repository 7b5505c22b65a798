"""Identity similarity: is an edited / generated face still the same person?

Three measures, one per setting:

- cohort faces (truth known): :func:`identity_parameter_distance` - the distance between the
  renderer's identity parameters (10 shape modes + appearance colours) of two cohort identities;
  0 for the same identity whatever the age, disease or severity;
- any images: :func:`embedding_cosine` - cosine between paired embeddings (recogniser or dlib);
- real photos: :func:`dlib_identity` - dlib 128-d descriptor cosine, with per-image face-found flags
  (a pair with a missing face is NaN and listed, never dropped). dlib's own same-person rule is a
  Euclidean distance below 0.6 between descriptors.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..cohort import identity_attributes
from ..cohort.layout import identity_modes
from .recogniser import dlib_embed

__all__ = ["identity_parameters", "identity_parameter_distance", "embedding_cosine", "dlib_identity",
           "DLIB_SAME_PERSON", "identity_pairs"]

DLIB_SAME_PERSON = 0.6  # dlib's documented Euclidean threshold between 128-d descriptors
_APPEARANCE = ["skin_tone", "hair_r", "hair_g", "hair_b", "iris_r", "iris_g", "iris_b"]


def identity_parameters(identity, sex) -> np.ndarray:
    """(N, 17) identity parameters of cohort identities: the 10 standard-normal shape modes and 7
    appearance values (skin tone, hair and iris colour in [0, 1], scaled by 4 to a comparable spread)."""

    ids = np.atleast_1d(np.asarray(identity, np.int64))
    sex = np.broadcast_to(np.asarray(sex, dtype=object), ids.shape)
    att = identity_attributes(ids, sex)[_APPEARANCE].to_numpy(float) * 4.0
    return np.concatenate([identity_modes(ids), att], axis=1)


def identity_parameter_distance(identity_a, sex_a, identity_b, sex_b) -> np.ndarray:
    """Row-wise RMS distance between the identity parameters of paired cohort identities."""
    a = identity_parameters(identity_a, sex_a)
    b = identity_parameters(identity_b, sex_b)
    if len(a) != len(b):
        a, b = np.broadcast_arrays(a, b)
    return np.sqrt(((a - b) ** 2).mean(axis=1))


def embedding_cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine between paired embeddings (N, D); NaN where either row is missing (NaN)."""
    a = np.atleast_2d(np.asarray(a, np.float64))
    b = np.atleast_2d(np.asarray(b, np.float64))
    a, b = np.broadcast_arrays(a, b)
    num = (a * b).sum(1)
    den = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / den, np.nan)


def dlib_identity(images_a, images_b) -> pd.DataFrame:
    """Pairwise identity of paired real photos with dlib descriptors: one row per pair with
    face_a / face_b (found flags), cosine, euclidean and same_person (dlib's 0.6 rule; None when a
    face is missing)."""

    if len(images_a) != len(images_b):
        raise ValueError(f"{len(images_a)} vs {len(images_b)} images: pairs must line up")
    ea, fa = dlib_embed(images_a)
    eb, fb = dlib_embed(images_b)
    eu = np.linalg.norm(ea - eb, axis=1)
    same = [bool(d < DLIB_SAME_PERSON) if np.isfinite(d) else None for d in eu]
    return pd.DataFrame({"face_a": fa, "face_b": fb, "cosine": embedding_cosine(ea, eb), "euclidean": eu,
                         "same_person": same})


def identity_pairs(table: pd.DataFrame, series: str = "series", group: str = "disease_id",
                   order: str = "age") -> pd.DataFrame:
    """Pairs of rows of a progression table (one person per ``series``): ``same person`` = the first vs the
    last face of a series (youngest vs oldest); ``different person, same disease`` = the last face of a
    series vs the last face of the next series of the **same** disease (the same age step; diseases with
    one series give no such pair). Columns a, b (row labels), kind, disease_id."""
    t = table.sort_values([series, order], kind="stable")
    first = t.groupby(series).head(1)
    last = t.groupby(series).tail(1)
    rows = [{"a": i, "b": j, "kind": "same person", group: d}
            for i, j, d in zip(first.index, last.index, last[group])]
    for d, part in last.groupby(group, sort=True):
        idx = list(part.index)
        if len(idx) < 2:
            continue
        for i, j in zip(idx, idx[1:] + idx[:1]):
            if len(idx) == 2 and i == idx[1]:
                break  # two series: one pair, not the same pair twice
            rows.append({"a": i, "b": j, "kind": "different person, same disease", group: d})
    return pd.DataFrame(rows, columns=["a", "b", "kind", group])
