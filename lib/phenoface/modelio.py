"""Model files: tensors as safetensors plus a JSON card, written atomically and read without unpickling.

Every model file phenoface writes or reads (landmark regressor, phenotype instrument, KG embedding,
recogniser) goes through here, so loading one never runs code: ``torch.load`` and ``pickle`` unpickle,
and a checkpoint someone hands a reviewer could execute anything while it loads. safetensors holds
only tensors and a JSON header; the card is plain JSON.

    >>> save_model("run/regressor.safetensors", net.state_dict(), {"width": 12}, kind="landmark_regressor")
    >>> tensors, config = load_model("run/regressor.safetensors", kind="landmark_regressor",
    ...                              rebuild="re-run notebook 04")

- ``x.safetensors`` (tensors) and ``x.json`` (the card: the caller's config plus a ``model_file``
  record: format, kind, weights file name and a save id) are each replaced atomically
  (:func:`phenoface.config.atomic_path`), weights first. The save id is written into both; a card and
  weights from different saves (a save killed between the two files) are refused at load.
- A file that would need unpickling (``.pt``, ``.pth``, ``.pkl``, ``.ckpt``, ``.bin``, ..., or any file
  that starts like a pickle or a torch zip archive) is refused with :class:`UnsafeModelFile`, whose
  message says why and how to rebuild the file; so is a safetensors file whose old pickle twin is
  all that is there (``regressor.pt`` from an older version).

Pickle stays only for the project's own caches (:func:`phenoface.config.disk_cached`), keyed by version.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Mapping

import numpy as np

from .config import atomic_path, write_json

FORMAT = "phenoface-model/1"
WEIGHTS_SUFFIX = ".safetensors"
CARD_SUFFIX = ".json"
# Suffixes of files that torch.load / pickle / joblib would unpickle.
PICKLE_SUFFIXES = (".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".bin", ".joblib", ".dill", ".tar")
_PICKLE_MAGIC = (b"\x80", b"PK\x03\x04")  # pickle protocol >= 2; torch's zip archive


class UnsafeModelFile(ValueError):
    """A model file that only unpickling could read: refused, because loading it could run code."""


class ModelFileError(ValueError):
    """A model file that is not what phenoface wrote: corrupt, of another kind, or from an interrupted save."""


def refuse_pickle(path: str | os.PathLike, rebuild: str = "") -> None:
    """Raise :class:`UnsafeModelFile` for ``path`` (a pickle-based model file)."""
    raise UnsafeModelFile(
        f"Refused to load {path}: it is a pickle-based file (torch.save / pickle), and loading it could run "
        "arbitrary code. phenoface loads model files only as safetensors + JSON"
        + (f"; {rebuild}" if rebuild else "; rebuild the file with the notebook that wrote it") + ".")


def is_pickle_file(path: str | os.PathLike) -> bool:
    """Whether ``path`` is named or starts like a file that only unpickling could read."""
    path = Path(path)
    if path.suffix.lower() in PICKLE_SUFFIXES:
        return True
    try:
        with open(path, "rb") as fh:
            head = fh.read(4)
    except OSError:
        return False
    return any(head.startswith(m) for m in _PICKLE_MAGIC)


def check_not_pickle(path: str | os.PathLike, rebuild: str = "") -> None:
    """Refuse ``path`` (:class:`UnsafeModelFile`) if it is named or starts like a pickle-based file."""
    if is_pickle_file(path):
        refuse_pickle(path, rebuild)


def model_paths(path: str | os.PathLike, card: str | os.PathLike | None = None) -> tuple[Path, Path]:
    """(weights, card) for ``x.safetensors``, ``x.json`` or a bare ``x``; ``card`` overrides the card's path."""
    path = Path(path)
    if path.suffix == WEIGHTS_SUFFIX:
        weights = path
    elif path.suffix == CARD_SUFFIX:
        weights = path.with_suffix(WEIGHTS_SUFFIX)
    else:
        weights = path.with_name(path.name + WEIGHTS_SUFFIX)
    return weights, Path(card) if card is not None else weights.with_suffix(CARD_SUFFIX)


def _tensors(tensors: Mapping) -> dict:
    import torch

    out, seen = {}, set()
    for name, value in tensors.items():
        t = torch.from_numpy(np.ascontiguousarray(value)) if isinstance(value, np.ndarray) else value
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name}: a model file holds tensors, got {type(value).__name__}")
        t = t.detach().cpu().contiguous()
        # safetensors refuses tensors that share memory (tied weights): store each one on its own
        key = (t.untyped_storage().data_ptr(), t.storage_offset()) if t.numel() else None
        if key in seen:
            t = t.clone()
        seen.add(key)
        out[str(name)] = t
    return out


def save_model(path: str | os.PathLike, tensors: Mapping, config: dict, kind: str,
               card: str | os.PathLike | None = None) -> Path:
    """Write ``tensors`` (name -> torch tensor or numpy array) to ``x.safetensors`` and ``config`` (plain
    JSON types) plus a ``model_file`` record to the card ``x.json``, each atomically. Returns the weights path."""
    from safetensors.torch import save_file

    if Path(path).suffix.lower() in PICKLE_SUFFIXES:
        raise ValueError(f"{path}: model files are saved as safetensors + JSON, never pickled; "
                         f"pass a {WEIGHTS_SUFFIX} path (e.g. {Path(path).with_suffix(WEIGHTS_SUFFIX).name})")
    if "model_file" in config:
        raise ValueError("config must not hold a 'model_file' key: the card reserves it")
    weights, card_path = model_paths(path, card)
    save_id = uuid.uuid4().hex
    record = {"format": FORMAT, "kind": kind, "weights": weights.name, "save_id": save_id}
    with atomic_path(weights) as tmp:
        save_file(_tensors(tensors), str(tmp), metadata={k: str(v) for k, v in record.items()})
    # the card last: a save killed in between leaves weights whose save id the old card does not match
    write_json(card_path, {**config, "model_file": record})
    return weights


def read_card(card: Path) -> dict:
    try:
        value = json.loads(card.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError(f"{card} is not a JSON model card ({exc})") from None
    if not isinstance(value, dict):
        raise ModelFileError(f"{card} is not a JSON model card (a {type(value).__name__}, not an object)")
    return value


def load_model(path: str | os.PathLike, kind: str | None = None, rebuild: str = "",
               card: str | os.PathLike | None = None) -> tuple[dict, dict]:
    """(tensors, config) saved by :func:`save_model`, read without unpickling. ``kind`` (when given) must
    match the card's; ``rebuild`` says how to make the file again (used in every error message).

    Refused: a path with a pickle suffix or pickle/zip content, and a missing safetensors file whose
    pickle twin (``x.pt``, ``x.pkl``, ...) is there."""
    from safetensors import SafetensorError, safe_open

    hint = f"; {rebuild}" if rebuild else ""
    if Path(path).suffix.lower() in PICKLE_SUFFIXES:
        refuse_pickle(path, rebuild)
    weights, card_path = model_paths(path, card)
    if not weights.is_file():
        twins = [weights.with_suffix(s) for s in PICKLE_SUFFIXES]
        old = [p for p in twins if p.is_file()]
        if old:
            refuse_pickle(old[0], rebuild)
        raise FileNotFoundError(f"no model file {weights}{hint}")
    if is_pickle_file(weights):
        refuse_pickle(weights, rebuild)
    if not card_path.is_file():
        raise FileNotFoundError(f"{weights} has no model card {card_path.name} beside it{hint}")
    config = read_card(card_path)
    record = config.pop("model_file", None)  # absent in cards written before modelio (no save id to check)
    if record is not None:
        if record.get("format") != FORMAT:
            raise ModelFileError(f"{card_path}: model file format {record.get('format')!r}, this code reads "
                                 f"{FORMAT!r}{hint}")
        if kind is not None and record.get("kind") != kind:
            raise ModelFileError(f"{card_path} describes a {record.get('kind')!r}, not a {kind!r}{hint}")
    try:
        with safe_open(str(weights), framework="pt") as fh:
            meta = fh.metadata() or {}
            tensors = {name: fh.get_tensor(name) for name in fh.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise ModelFileError(f"{weights} is not a readable safetensors file ({exc}){hint}") from None
    if record is not None and meta.get("save_id") != record.get("save_id"):
        raise ModelFileError(f"{weights} and {card_path.name} come from different saves (was a save interrupted?)"
                             f"{hint}")
    return tensors, config
