"""Notebook 06's edits as functions: test faces edited healthy -> diseased and back with both methods, and one
person at a time along severity.

    >>> healthy, sick = edit_faces(test.table, targets, n=16, seed=0)
    >>> edits = edit_both_ways(model, test, healthy, sick, targets, strength=0.6, steps=10, guidance=7.5, seed=0)
    >>> edits.images, edits.table                  # per edit: method, direction, inversion error, test row
    >>> images, table = progressions(model, test, healthy, targets[:4], np.linspace(0, 1, 5), strength=0.6)

Every edit carries its seed and its test row, so notebook 07 can measure identity kept and the move toward the
target from pixels.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..labels import UNAFFECTED
from . import edit, progression

METHODS = ("ddim", "sdedit")
DIRECTIONS = ("healthy -> diseased", "diseased -> healthy")
FACE_STREAM = 660  # the edited faces' own random stream, beside the run's seed


def edit_faces(table: pd.DataFrame, targets, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Rows of ``table`` to edit: ``n`` unaffected faces and ``n`` faces of the ``targets`` diseases (drawn with
    replacement, so a small cohort still gives ``n``)."""
    rng = np.random.default_rng([seed, FACE_STREAM])
    healthy = rng.choice(np.flatnonzero((table["disease_id"] == UNAFFECTED).to_numpy()), n, replace=True)
    sick = rng.choice(np.flatnonzero(table["disease_id"].isin(targets).to_numpy()), n, replace=True)
    return healthy, sick


@dataclass
class Edits:
    """Inputs and outputs of every edit (same order), one table row each, and the time they took."""

    inputs: np.ndarray
    images: np.ndarray
    table: pd.DataFrame
    seconds: float

    def inversions_ok(self) -> pd.Series:
        """Per DDIM edit: does its inversion reconstruct the input within the threshold?"""
        return self.table.loc[self.table["method"] == "ddim", "inversion_ok"].astype(bool)

    def shown(self, direction: str, n: int = 6) -> dict:
        """The first ``n`` edits of one direction: row label -> images (input, DDIM inversion, SDEdit)."""
        sel = {m: np.flatnonzero(((self.table["direction"] == direction) & (self.table["method"] == m)).to_numpy())[:n]
               for m in METHODS}
        return {"input": self.inputs[sel["ddim"]], "DDIM inversion": self.images[sel["ddim"]],
                "SDEdit": self.images[sel["sdedit"]]}

    def targets_shown(self, direction: str, n: int = 6) -> list:
        ddim = np.flatnonzero(((self.table["direction"] == direction) & (self.table["method"] == "ddim")).to_numpy())[:n]
        return list(self.table.loc[ddim, "target"])


def edit_both_ways(model, cohort, healthy, sick, targets, strength: float = 0.6, steps: int = 25,
                   guidance: float = 3.0, seed: int = 0) -> Edits:
    """Each ``healthy`` face edited toward a target disease (cycling through ``targets``), each ``sick`` face
    toward unaffected, by DDIM inversion and by SDEdit; one face per call, the k-th face of a pass seeded
    ``seed + k``. Each face keeps its own age and sex; the source severity is its own, clipped to [0, 1]."""
    inputs, outputs, rows = [], [], []
    start = time.perf_counter()
    for direction, idx in zip(DIRECTIONS, (healthy, sick)):
        faces = cohort.table.iloc[idx]
        to_disease = direction == DIRECTIONS[0]
        for method in METHODS:
            for k, (i, row) in enumerate(zip(idx, faces.itertuples())):
                res = edit(model, cohort.images[i:i + 1], target=targets[k % len(targets)] if to_disease else UNAFFECTED,
                           source=UNAFFECTED if to_disease else row.disease_id, age=row.age, sex=row.sex, severity=1.0,
                           source_severity=min(max(row.severity, 0.0), 1.0), method=method, strength=strength,
                           steps=steps, guidance=guidance, seed=seed + k)
                inputs.append(cohort.images[i])
                outputs.append(res.images[0])
                rows.append({**res.table.iloc[0].to_dict(), "direction": direction, "test_row": int(i)})
    seconds = time.perf_counter() - start
    return Edits(np.stack(inputs), np.stack(outputs), pd.DataFrame(rows), seconds)


def progressions(model, cohort, faces, diseases, levels, **kw) -> tuple[list, pd.DataFrame]:
    """The j-th disease drawn on face ``faces[j]`` (cycling) along severity ``levels``, one inversion each
    (:func:`phenoface.editing.progression` at the face's own age and sex); ``kw``: strength, steps, guidance.
    Returns (one image array per disease, one table row per image)."""
    images, rows = [], []
    for j, d in enumerate(diseases):
        i = faces[j % len(faces)]
        row = cohort.table.iloc[i]
        res = progression(model, cohort.images[i], d, levels=levels, age=row["age"], sex=row["sex"], **kw)
        images.append(res.images)
        rows += [{"series": j, "disease_id": d, "level": v, "test_row": int(i)} for v in levels]
    return images, pd.DataFrame(rows)
