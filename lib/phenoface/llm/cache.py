"""Replies cached on disk, keyed by endpoint + model id + messages + generation parameters.

A rerun with the same endpoint, model, prompts and parameters reads every reply from here, so it is
deterministic and needs no server at all. Each entry records which model produced the reply (and
at which endpoint host), never an API key: replies are scrubbed before they are stored.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any, Mapping

from ..config import atomic_path


def cache_key(model_id: str, messages: list[Mapping[str, str]], params: Mapping[str, Any], endpoint: str = "") -> str:
    """The entry's name. ``endpoint`` (a remote server's URL, no key) keeps one server's replies from being served
    for another that has a model of the same name; "" (the embedded server) leaves it out of the key."""
    material = {"model": model_id, "messages": [dict(m) for m in messages], "params": dict(params)}
    if endpoint:
        material["endpoint"] = endpoint
    return hashlib.sha256(json.dumps(material, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


class ReplyCache:
    """One JSON file per reply under ``folder/<key[:2]>/<key>.json``."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)

    def _path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict | None:
        path = self._path(key)
        if not path.is_file():
            return None
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):  # a torn or corrupt entry is ignored (and overwritten later)
            return None
        return entry if isinstance(entry, dict) and "reply" in entry else None

    def put(self, key: str, model_id: str, messages, params, reply: str, **meta) -> dict:
        entry = {"model_id": model_id, "messages": [dict(m) for m in messages], "params": dict(params),
                 "reply": reply, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **meta}
        with atomic_path(self._path(key)) as tmp:
            tmp.write_text(json.dumps(entry, indent=1, ensure_ascii=False), encoding="utf-8")
        return entry

    def __len__(self) -> int:
        return sum(1 for _ in self.folder.glob("*/*.json")) if self.folder.is_dir() else 0
