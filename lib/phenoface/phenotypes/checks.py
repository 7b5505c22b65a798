"""Does each measurement respond to its own term, and only to it? (checked on renders, where the truth is known)

``specificity`` renders the same identities (several ages and both sexes) neutral and with one term at
full severity, for every term, and measures them. Entry (measurement m, applied term t) is the mean
change of m caused by t *as a fraction of m's change under its own term*: the diagonal is 1, the
off-diagonal entries are cross-talk (positive cross-talk can put a wrong term into a profile).
``.attrs["own_sd"]`` gives each term's own change in units of its measurement's spread over neutral
faces of many identities, ages and sexes (the signal-to-noise of the measurement).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..cohort import TERMS, face_table, render_table
from .meter import Meter


def specificity(size: int = 64, identities: int = 8, spread_n: int = 60, seed: int = 0) -> pd.DataFrame:
    """Measurements (rows) x applied term (columns): mean change at full severity / neutral SD."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, 2 ** 31 - 1, identities)
    specs = [(int(i), age, sex) for i in ids for sex, age in (("F", 30.0), ("M", 8.0), ("F", 14.0))]
    tables = [face_table(i, a, s) for i, a, s in specs]
    for t in TERMS:
        tables += [face_table(i, a, s, {t: 1.0}) for i, a, s in specs]
    imgs, lms, _ = render_table(pd.concat(tables, ignore_index=True), size)
    m = Meter().measure(lms, imgs)
    n = len(specs)
    base = m.iloc[:n].to_numpy()
    deltas = {t: np.nanmean(m.iloc[n * (j + 1):n * (j + 2)].to_numpy() - base, axis=0) for j, t in enumerate(TERMS)}
    spread_ids = rng.integers(0, 2 ** 31 - 1, spread_n)
    ages = rng.uniform(2, 60, spread_n)
    sexes = rng.choice(["F", "M"], spread_n)
    st = pd.concat([face_table(int(i), float(a), str(s)) for i, a, s in zip(spread_ids, ages, sexes)], ignore_index=True)
    si, sl, _ = render_table(st, size)
    sd = Meter().measure(sl, si).std().to_numpy()
    own = np.array([deltas[t][j] for j, t in enumerate(TERMS)])
    out = pd.DataFrame({t: d / own for t, d in deltas.items()}, index=list(TERMS))
    out.index.name, out.columns.name = "measurement", "applied term"
    out.attrs["own_sd"] = pd.Series(own / np.maximum(sd, 1e-12 * np.abs(own) + 1e-15), index=list(TERMS))
    return out
