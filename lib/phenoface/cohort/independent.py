"""Renders with independent random term intensities: training data for instruments that must measure
*terms*, not diseases.

In the disease cohort terms co-occur (a disease shows its set together), so an instrument trained on it
could read one term off another. Here every term is present independently with probability ``p_term``
at an intensity drawn uniformly, on random identities, ages, sexes and poses, so the only way to predict
a term is to see it.

    >>> from phenoface.cohort.independent import independent_table, render_independent
    >>> images, table = render_independent(n=4096, seed=7, size=64)   # table: intensities per term + age, sex
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .terms import TERM_IDS
from .table import EXCLUSIVE, add_pose_jitter, identity_attributes, render_table

AGE_RANGE = (2.0, 60.0)


def independent_table(n: int, seed: int = 0, p_term: float = 0.35, age_range=AGE_RANGE) -> pd.DataFrame:
    """A render table (see :func:`phenoface.cohort.render_table`) with independent term intensities."""

    if n < 1:
        raise ValueError(f"n must be positive, got {n}")
    if not 0.0 < p_term <= 1.0:
        raise ValueError(f"p_term must be in (0, 1], got {p_term}")
    rng = np.random.default_rng([int(seed), 77])
    age = np.round(rng.uniform(age_range[0], age_range[1], n), 2)
    sex = np.where(rng.random(n) < 0.5, "F", "M").astype(object)
    identity = rng.integers(0, 2 ** 31 - 1, n)
    present = rng.random((n, len(TERM_IDS))) < p_term
    amount = present * rng.uniform(0.05, 1.0, (n, len(TERM_IDS)))
    col = {t: i for i, t in enumerate(TERM_IDS)}
    for a, b in EXCLUSIVE:  # opposite terms (up/down slant, wide/narrow mouth) never together
        both = (amount[:, col[a]] > 0) & (amount[:, col[b]] > 0)
        drop_a = both & (rng.random(n) < 0.5)
        amount[drop_a, col[a]] = 0
        amount[both & ~drop_a, col[b]] = 0
    table = pd.DataFrame({"disease_id": "", "age": age, "sex": sex.astype(str), "identity": identity,
                          "severity": 0.0})
    for t in TERM_IDS:
        table[t] = np.round(amount[:, col[t]], 4)
    add_pose_jitter(table, rng)
    return pd.concat([table, identity_attributes(identity, sex)], axis=1)


def render_independent(n: int, seed: int = 0, size: int = 64, p_term: float = 0.35):
    """(uint8 images (n, size, size, 3), table) of independent-term renders."""

    table = independent_table(n, seed=seed, p_term=p_term)
    images, _, _ = render_table(table, size)
    return images, table
