"""Age bands shared by the cohort, profiles and LLM prompts."""

from __future__ import annotations

import numpy as np
import pandas as pd

# [low, high) in years; the LLM step and profiles are keyed by these names.
AGE_BANDS = {"infant": (0.0, 2.0), "child": (2.0, 12.0), "adolescent": (12.0, 18.0), "adult": (18.0, 130.0)}


def age_band(age) -> str | pd.Series:
    """Band name for an age in years (scalar or array-like -> Series); NaN ages give 'unknown'."""
    if np.isscalar(age):
        if age is None or (isinstance(age, float) and np.isnan(age)):
            return "unknown"
        if age < 0:
            raise ValueError(f"age must be >= 0 years, got {age}")
        for name, (lo, hi) in AGE_BANDS.items():
            if lo <= age < hi:
                return name
        raise ValueError(f"age {age} is beyond the last band")
    values = pd.Series(np.asarray(age, dtype=float))
    edges = [lo for lo, _ in AGE_BANDS.values()] + [list(AGE_BANDS.values())[-1][1]]
    bands = pd.cut(values, bins=edges, right=False, labels=list(AGE_BANDS)).astype(object)
    return bands.where(values.notna(), "unknown")
