"""The embedded model's replies, shipped with the package (``assets/llm_replies/<profile>.json``), so that the
offline profiles get the same answers on any machine: on a slow or loaded one the time budget (``LLM_BUDGET_S``)
would otherwise cut the asking short after a few prompts, and each machine would end with another answer set.

Each file holds real replies of the embedded SmolLM2, made by asking every prompt of a profile with no time
budget, and its provenance: the model file's SHA-256, the server and the transformers / torch versions that
ran it, the sampling settings, when and by which command it was made. A file answers only requests of the
embedded endpoint whose model file, server, versions, temperature and seed are those in its provenance (the
entry's key also holds the prompt and max tokens); anything else is asked live. A file that cannot be read is
ignored with a warning (its prompts are asked live).

Made by ``python -m phenoface.ship replies --profile quick`` (:mod:`phenoface.llm.packaged`).
"""

from __future__ import annotations

import functools
import importlib.metadata
import json
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from .cache import cache_key
from .server import EMBEDDED, ServerError, file_sha256, gguf_model_id, smollm2_gguf

FOLDER = Path(__file__).resolve().parents[1] / "assets" / "llm_replies"
FORMAT = 1
SERVER = "transformers serve --device cpu --default-seed 0"  # how server.EmbeddedServer starts it
MUST_MATCH = ("model_id", "model_sha256", "server", "transformers", "torch")


class ShippedCacheError(ValueError):
    """A shipped reply file that cannot be used as it is (not JSON, another format, entries under wrong keys)."""


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return ""


@functools.lru_cache(maxsize=4)
def _file_sha256(path: str, size: int, mtime_ns: int) -> str:
    """:func:`file_sha256`, once per file version (size and mtime are the cache key's part)."""
    return file_sha256(Path(path))


def identity(gguf: Path | None = None) -> dict:
    """What makes the embedded model's replies what they are: model id and file digest, server command line,
    and the transformers / torch versions that run it."""
    gguf = Path(gguf or smollm2_gguf())
    st = gguf.stat()
    return {"model_id": gguf_model_id(gguf), "model_file": gguf.name,
            "model_sha256": _file_sha256(str(gguf), st.st_size, st.st_mtime_ns), "server": SERVER,
            "transformers": _version("transformers"), "torch": _version("torch")}


def mismatch(provenance: dict, current: dict, temperature: float, seed: int) -> str:
    """"" when replies made under ``provenance`` are the ones this model, server and settings give, else what
    differs (for the report)."""
    for k in MUST_MATCH:
        if provenance.get(k) != current.get(k):
            return f"{k} {provenance.get(k)!r} here {current.get(k)!r}"
    settings = provenance.get("settings") or {}
    for k, v in (("temperature", temperature), ("seed", seed)):
        if settings.get(k) != v:
            return f"{k} {settings.get(k)!r} here {v!r}"
    return ""


def read_file(path: str | os.PathLike) -> dict:
    """A shipped reply file, checked: format, provenance, and every entry under the key its model, messages and
    parameters give. Raises ShippedCacheError otherwise."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise ShippedCacheError(f"{path.name} cannot be read as JSON ({type(err).__name__}: {err})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("provenance"), dict) \
            or not isinstance(data.get("replies"), dict):
        raise ShippedCacheError(f"{path.name} is not a reply file of format {FORMAT} (provenance, replies)")
    model_id = data["provenance"].get("model_id", "")
    for key, entry in data["replies"].items():
        if not (isinstance(entry, dict) and isinstance(entry.get("reply"), str)
                and isinstance(entry.get("params"), dict) and isinstance(entry.get("messages"), list)):
            raise ShippedCacheError(f"{path.name}: entry {key[:12]} lacks messages, params or reply")
        if cache_key(model_id, entry["messages"], entry["params"]) != key:
            raise ShippedCacheError(f"{path.name}: entry {key[:12]} is not stored under its prompt's key")
    return data


@dataclass
class ShippedReplies:
    """The shipped replies that apply to one LLM: ``get(key)`` like a reply cache (read-only); ``used`` the files
    whose replies apply, ``unused`` file -> why not (another model, server, version or setting)."""
    replies: dict[str, dict] = field(default_factory=dict)
    used: list[str] = field(default_factory=list)
    unused: dict[str, str] = field(default_factory=dict)

    def get(self, key: str) -> dict | None:
        return self.replies.get(key)

    def __len__(self) -> int:
        return len(self.replies)

    def describe(self) -> str:
        """One line for the report."""
        if self.used:
            return f"{len(self)} shipped replies ({', '.join(self.used)})"
        why = "; ".join(f"{f}: {r}" for f, r in self.unused.items())
        return "no shipped replies apply" + (f" ({why})" if why else "")


def shipped_replies(llm, folder: str | os.PathLike = FOLDER) -> ShippedReplies:
    """The shipped replies made by exactly this LLM's (:class:`~phenoface.llm.client.LLM`) model, server and
    settings (none for another endpoint)."""
    out = ShippedReplies()
    files = sorted(Path(folder).glob("*.json"))
    if llm.kind != EMBEDDED:
        out.unused = {f.name: "made by the embedded model, not this endpoint" for f in files}
        return out
    try:
        current = identity()
    except (ServerError, OSError) as err:
        out.unused = {f.name: f"no embedded model here ({err})" for f in files}
        return out
    for f in files:
        try:
            data = read_file(f)
        except ShippedCacheError as err:
            warnings.warn(f"{err}; the file is ignored and its prompts are asked live", stacklevel=2)
            out.unused[f.name] = "unreadable"
            continue
        why = mismatch(data["provenance"], current, llm.temperature, llm.seed)
        if why:
            out.unused[f.name] = why
            continue
        out.replies.update(data["replies"])
        out.used.append(f.name)
    return out
