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


def _checkout_above(path: Path) -> Path | None:
    for parent in (path, *path.parents):
        if (parent / "run_all.sh").is_file() and (parent / "notebooks").is_dir():
            return parent
    return None


def repo_root() -> Path:
    """The compendium root: ``$PHENOFACE_ROOT`` (set by ``run_all.sh`` to its own checkout, so another
    checkout's environment never runs or overwrites this one); else the checkout the current directory is in
    (a notebook run by hand runs in its checkout's ``notebooks/``, whichever checkout's editable install
    supplies this package); else the checkout above this package; else the cwd."""
    if os.environ.get("PHENOFACE_ROOT"):
        return Path(os.environ["PHENOFACE_ROOT"]).resolve()
    cwd = Path.cwd().resolve()
    return _checkout_above(cwd) or _checkout_above(Path(__file__).resolve().parent) or cwd


def git_commit() -> str:
    """The checkout's short commit ('' outside git): recorded on model cards and the index."""
    import subprocess

    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).parent, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def params_path(profile: str | os.PathLike, folder: Path | None = None) -> Path:
    """``<folder>/<profile>.yaml`` for a name (``folder`` defaults to ``notebooks/params``), or the file itself
    for a path to a YAML file, so users can keep profiles of their own."""
    text = str(profile)
    if text.endswith((".yaml", ".yml")) or os.sep in text or "/" in text:
        path = Path(os.path.expanduser(text)).resolve()
        if not path.is_file():
            raise ValueError(f"Profile file {path} does not exist.")
        return path
    folder = Path(folder) if folder else repo_root() / "notebooks" / "params"
    path = folder / f"{text}.yaml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in folder.glob("*.yaml")))
        raise ValueError(f"Unknown profile {text!r}: no {path}. Known profiles: {known}; or give a path to a YAML file.")
    return path


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


PARTIAL = ".partial-"  # atomic_path's temp files: .<name>.partial-<pid>-<random><suffix>


def clean_partials(folder: str | os.PathLike) -> list[Path]:
    """Remove temp files that ``atomic_path`` left behind under ``folder`` when its process was killed
    (SIGKILL, a killed kernel): those whose writer's PID is gone. A live writer's files are kept."""
    removed = []
    folder = Path(folder)
    if not folder.is_dir():
        return removed
    for path in folder.rglob(f".*{PARTIAL}*"):
        if not is_partial(path):
            continue
        try:
            pid = int(path.name.split(PARTIAL, 1)[1].split("-", 1)[0])
        except (IndexError, ValueError):
            continue
        if not _alive(pid) and path.is_file():
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def is_partial(path: Path) -> bool:
    """Whether ``path`` is an ``atomic_path`` temp file (never a finished artifact)."""
    return path.name.startswith(".") and PARTIAL in path.name


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temp path beside ``target``; it replaces ``target`` only if the block succeeds."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}{PARTIAL}{os.getpid()}-",
                               suffix=suffix or target.suffix)
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
