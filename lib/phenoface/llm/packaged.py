"""The embedded model's replies, shipped with the package (``assets/llm_replies/<profile>.json``), so that the
offline profiles get the same answers on any machine: on a slow or loaded one the time budget (``LLM_BUDGET_S``)
would otherwise cut the asking short after a few prompts, and each machine would end with another answer set.

Each file holds real replies of the embedded SmolLM2, made by asking every prompt of a profile with no time
budget, and its provenance: the model file's SHA-256, the server and the transformers / torch versions that
ran it, the sampling settings, when and by which command it was made. A file answers only requests of the
embedded endpoint whose model file, server, versions, temperature and seed are those in its provenance (the
entry's key also holds the prompt and max tokens); anything else is asked live. A file that cannot be read is
ignored with a warning (its prompts are asked live).

Rebuild one (minutes; the embedded server answers every prompt)::

    python -m phenoface.llm.packaged build --profile quick   # needs notebook 02's kg_profiles.json of that profile
    python -m phenoface.llm.packaged show                    # what is shipped, and whether it applies here
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import importlib.metadata
import json
import os
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from ..config import atomic_path, load_params, repo_root, resolve
from .cache import cache_key
from .client import EMBEDDED, LLM, open_llm
from .server import ServerError, gguf_model_id, smollm2_gguf

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
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


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
        if not (isinstance(entry, dict) and isinstance(entry.get("reply"), str) and isinstance(entry.get("params"), dict)
                and isinstance(entry.get("messages"), list)):
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


def shipped_replies(llm: LLM, folder: str | os.PathLike = FOLDER) -> ShippedReplies:
    """The shipped replies made by exactly this LLM's model, server and settings (none for another endpoint)."""
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


def build(profile: str, kg_profiles: str | os.PathLike | None = None, folder: str | os.PathLike = FOLDER,
          command: str = "") -> Path:
    """Ask the embedded model every prompt notebook 03 asks with ``profile`` (no time budget) and write its
    replies with their provenance to ``folder/<PROFILE>.json`` (atomically). The diseases come from notebook
    02's ``kg_profiles.json`` of that profile (or ``kg_profiles``)."""
    from .elicit import ask, asked_diseases, parse_bands

    params = load_params(profile)
    path = Path(kg_profiles) if kg_profiles else \
        resolve(params["DATA_DIR"], repo_root() / "notebooks") / "profiles" / "kg_profiles.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run notebook 02 with this profile first "
                                f"(run_all.sh --profile {profile} --only 02)")
    diseases = asked_diseases(json.loads(path.read_text(encoding="utf-8")), params["LLM_DISEASES"])
    bands = parse_bands(params["LLM_BANDS"])
    with tempfile.TemporaryDirectory(prefix="phenoface-replies-") as tmp:
        llm = open_llm(EMBEDDED, cache_dir=tmp, seed=params["SEED"], timeout=params["LLM_TIMEOUT"])
        asked = ask(llm, diseases, bands, params["LLM_FEATURES"], params["LLM_MAX_TOKENS"], params["LLM_RETRIES"],
                    params["LLM_NEGATIVES"], params["LLM_NEIGHBOURS"])
        if llm.error:
            raise RuntimeError(f"the embedded model did not answer every prompt, nothing written: {llm.error}")
        entries = {f.stem: json.loads(f.read_text(encoding="utf-8")) for f in Path(tmp).glob("*/*.json")}
    replies = {k: {"messages": e["messages"], "params": e["params"], "reply": e["reply"],
                   "finish_reason": e.get("finish_reason", ""), "completion_tokens": e.get("completion_tokens"),
                   "prompt_tokens": e.get("prompt_tokens")} for k, e in sorted(entries.items())}
    rows = asked.all_replies
    provenance = {
        **identity(), "profile": params["PROFILE"],
        "settings": {"temperature": llm.temperature, "seed": llm.seed, "max_tokens": params["LLM_MAX_TOKENS"],
                     "features": params["LLM_FEATURES"], "bands": bands, "retries": params["LLM_RETRIES"],
                     "negatives": params["LLM_NEGATIVES"], "neighbours": params["LLM_NEIGHBOURS"],
                     "diseases": list(diseases)},
        "prompts": int(len(rows[["kind", "disease_id", "band"]].drop_duplicates())) if len(rows) else 0,
        "replies": len(replies), "bad_replies": llm.counts()["bad_replies"],
        "seconds": round(asked.seconds, 1), "threads": os.environ.get("OMP_NUM_THREADS", f"{os.cpu_count()} cores"),
        "made": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": command or f"python -m phenoface.llm.packaged build --profile {profile}",
    }
    target = Path(folder) / f"{params['PROFILE']}.json"
    with atomic_path(target) as tmp_file:
        tmp_file.write_text(json.dumps({"format": FORMAT, "provenance": provenance, "replies": replies}, indent=1,
                                       sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m phenoface.llm.packaged", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    b = sub.add_parser("build", help="ask every prompt of a profile and write its shipped replies")
    b.add_argument("--profile", required=True, help="profile name or YAML file (its PROFILE names the file)")
    b.add_argument("--kg-profiles", default=None, help="notebook 02's kg_profiles.json (default: the profile's)")
    b.add_argument("--out", default=str(FOLDER), help="folder to write <PROFILE>.json into")
    sub.add_parser("show", help="the shipped files, their provenance, and whether they apply here")
    args = parser.parse_args(argv)
    if args.what == "build":
        command = "python -m phenoface.llm.packaged build --profile " + args.profile + \
            (f" --kg-profiles {args.kg_profiles}" if args.kg_profiles else "")
        path = build(args.profile, args.kg_profiles, args.out, command)
        prov = read_file(path)["provenance"]
        print(f"{path}: {prov['replies']} replies to {prov['prompts']} prompts in {prov['seconds']} s")
        return 0
    llm = open_llm(EMBEDDED, packaged="none")
    for f in sorted(FOLDER.glob("*.json")):
        try:
            prov = read_file(f)["provenance"]
        except ShippedCacheError as err:
            print(f"{f.name}: {err}")
            continue
        why = mismatch(prov, identity(), llm.temperature, llm.seed)
        print(f"{f.name}: {prov['replies']} replies, {prov['model_id']}, transformers {prov['transformers']}, "
              f"torch {prov['torch']}, made {prov['made']}; " + (f"not used here: {why}" if why else "applies here"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
