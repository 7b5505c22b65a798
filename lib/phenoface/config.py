"""Paths, parameter files, seeding and atomic writes shared by every step."""

from __future__ import annotations

import contextlib
import json
import os
import random
import tempfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import yaml

PROFILES = ("quick", "full", "smoke")


def repo_root() -> Path:
    """The compendium root (the folder holding run_all.sh), or the cwd when installed elsewhere."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "run_all.sh").is_file() and (parent / "notebooks").is_dir():
            return parent
    return Path.cwd()


def params_path(profile: str) -> Path:
    if profile not in PROFILES:
        raise ValueError(f"Unknown profile {profile!r}; choose one of {', '.join(PROFILES)}.")
    return repo_root() / "notebooks" / "params" / f"{profile}.yaml"


def load_params(profile: str = "quick") -> dict[str, Any]:
    path = params_path(profile)
    with open(path, encoding="utf-8") as fh:
        params = yaml.safe_load(fh) or {}
    if not isinstance(params, dict):
        raise ValueError(f"{path} must hold a flat mapping NAME: value, got {type(params).__name__}.")
    return params


def resolve(path: str | os.PathLike, base: Path | None = None) -> Path:
    """Resolve a parameter path; relative paths are taken from ``base`` (default: the cwd)."""
    p = Path(os.path.expanduser(str(path)))
    if not p.is_absolute():
        p = (base or Path.cwd()) / p
    return p.resolve()


def seed_everything(seed: int) -> np.random.Generator:
    """Seed python, numpy and torch (when imported) and return a numpy Generator."""
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"SEED must be a non-negative integer, got {seed!r}.")
    random.seed(int(seed))
    np.random.seed(int(seed) % 2**32)
    try:
        import torch

        torch.manual_seed(int(seed))
    except ImportError:  # torch is optional for the lightest steps
        pass
    return np.random.default_rng(int(seed))


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temp path beside ``target``; it replaces ``target`` only if the block succeeds."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=suffix or target.suffix)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    finally:
        tmp_path.unlink(missing_ok=True)


def write_json(target: str | os.PathLike, obj: Any) -> Path:
    with atomic_path(target) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=_jsonable) + "\n", encoding="utf-8")
    return Path(target)


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def cache_dir() -> Path:
    """The project's own cache folder (``$PHENOFACE_CACHE``, default ``~/.cache/phenoface``)."""
    path = Path(os.environ.get("PHENOFACE_CACHE", Path.home() / ".cache" / "phenoface"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def disk_cached(name: str, build):
    """``build()``, memoised as ``<cache_dir>/<name>.pkl``; ``name`` must carry the version and the sources'
    identity (size, mtime), so a new release or code version rebuilds. Pickle is used only here, for files this
    project wrote itself into its own cache; a corrupt file is rebuilt, never trusted. Model files never go
    through this (they are safetensors + JSON)."""
    import pickle

    target = cache_dir() / f"{name}.pkl"
    if target.is_file():
        try:
            with open(target, "rb") as fh:
                return pickle.load(fh)
        except Exception:  # noqa: BLE001  a truncated or stale cache entry: rebuild
            target.unlink(missing_ok=True)
    value = build()
    with atomic_path(target) as tmp, open(tmp, "wb") as fh:
        pickle.dump(value, fh, protocol=pickle.HIGHEST_PROTOCOL)
    return value
