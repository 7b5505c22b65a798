"""Train, validation and test cohorts with disjoint identities.

Every choice (epochs, widths, thresholds, calibration) is made on ``validation``; ``test`` is scored once
and reported. Each split is its own rendered cohort with its own seed, so identities are new people;
:func:`assert_disjoint` checks that no identity is shared (and is called on every save and load).

    >>> from phenoface.cohort.splits import make_splits, save_splits, load_split
    >>> splits = make_splits({"train": 2048, "validation": 512, "test": 512}, seed=0, size=64)
    >>> save_splits(splits, data_dir)            # <data_dir>/cohort, cohort_validation, cohort_test
    >>> test = load_split(data_dir, "test")
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from .table import Cohort

SPLITS = ("train", "validation", "test")
SEED_OFFSET = {"train": 0, "validation": 1000, "test": 2000}
FOLDER = {"train": "cohort", "validation": "cohort_validation", "test": "cohort_test"}


def _check_name(name: str) -> str:
    if name not in SPLITS:
        raise ValueError(f"unknown split {name!r}; choose one of {', '.join(SPLITS)}")
    return name


def split_seed(seed: int, name: str) -> int:
    return int(seed) + SEED_OFFSET[_check_name(name)]


def make_splits(sizes: dict, seed: int = 0, size: int = 64, **generate_kwargs) -> dict:
    """Render one cohort per split (seed + 0 / 1000 / 2000) and check that identities are disjoint."""

    out = {}
    for name, n in sizes.items():
        _check_name(name)
        if not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"split {name!r} needs a positive number of faces, got {n!r}")
        out[name] = Cohort.generate(n=int(n), seed=split_seed(seed, name), size=size, **generate_kwargs)
        out[name].meta["split"] = name
    assert_disjoint(out)
    return out


def assert_disjoint(cohorts: dict) -> None:
    """Raise ValueError naming the splits and identities when two splits share a person."""
    names = list(cohorts)
    ids = {k: set(np.asarray(c.table["identity"], np.int64).tolist()) for k, c in cohorts.items()}
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            shared = ids[a] & ids[b]
            if shared:
                raise ValueError(f"splits {a!r} and {b!r} share {len(shared)} identities "
                                 f"(e.g. {sorted(shared)[:3]}): train, validation and test must be different people")


def split_dir(data_dir, name: str) -> Path:
    return Path(data_dir) / FOLDER[_check_name(name)]


def save_splits(cohorts: dict, data_dir) -> dict:
    assert_disjoint(cohorts)
    return {name: c.save(split_dir(data_dir, name)) for name, c in cohorts.items()}


def load_split(data_dir, name: str):
    """The saved cohort of one split; a missing split names notebook 00 as the step that writes it."""

    path = split_dir(data_dir, name)
    if not (path / "meta.json").is_file():
        raise FileNotFoundError(f"{path} holds no saved {name} cohort: run notebook 00_data with the same DATA_DIR "
                                "first (run_all.sh --only 00)")
    return Cohort.load(path)


def load_splits(data_dir, names=SPLITS) -> dict:
    out = {n: load_split(data_dir, n) for n in names}
    assert_disjoint(out)
    return out
