"""Build the embedded model's shipped replies (:mod:`phenoface.llm.shipped`) for a profile, and show them.

    python -m phenoface.ship replies --profile quick   # needs notebook 02's kg_profiles.json of that profile
    python -m phenoface.llm.packaged show              # what is shipped, and whether it applies here

The build asks the embedded SmolLM2 every prompt notebook 03 asks with that profile, through the same asking
(:func:`phenoface.llm.elicit.ask`), with no time budget (minutes: the embedded server answers every prompt),
and writes ``assets/llm_replies/<PROFILE>.json`` atomically with its provenance.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from ..config import atomic_path, repo_root, resolve
from ..params import load_params
from . import shipped
from .client import EMBEDDED, open_llm
from .elicit import ask, asked_diseases, parse_bands
from .shipped import FOLDER, FORMAT, ShippedCacheError, mismatch, read_file


def build(profile: str, kg_profiles: str | os.PathLike | None = None, folder: str | os.PathLike = FOLDER,
          command: str = "") -> Path:
    """Ask the embedded model every prompt notebook 03 asks with ``profile`` (no time budget) and write its
    replies with their provenance to ``folder/<PROFILE>.json`` (atomically). The diseases come from notebook
    02's ``kg_profiles.json`` of that profile (or ``kg_profiles``)."""

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
        **shipped.identity(), "profile": params["PROFILE"],
        "settings": {"temperature": llm.temperature, "seed": llm.seed, "max_tokens": params["LLM_MAX_TOKENS"],
                     "features": params["LLM_FEATURES"], "bands": bands, "retries": params["LLM_RETRIES"],
                     "negatives": params["LLM_NEGATIVES"], "neighbours": params["LLM_NEIGHBOURS"],
                     "diseases": list(diseases)},
        "prompts": int(len(rows[["kind", "disease_id", "band"]].drop_duplicates())) if len(rows) else 0,
        "replies": len(replies), "bad_replies": llm.counts()["bad_replies"],
        "seconds": round(asked.seconds, 1), "threads": os.environ.get("OMP_NUM_THREADS", f"{os.cpu_count()} cores"),
        "made": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": command or f"python -m phenoface.ship replies --profile {profile}",
    }
    target = Path(folder) / f"{params['PROFILE']}.json"
    with atomic_path(target) as tmp_file:
        tmp_file.write_text(json.dumps({"format": FORMAT, "provenance": provenance, "replies": replies}, indent=1,
                                       sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m phenoface.llm.packaged", description=__doc__.split("\n\n")[0])
    parser.add_subparsers(dest="what", required=True).add_parser(
        "show", help="the shipped files, their provenance, and whether they apply here")
    parser.parse_args(argv)
    llm = open_llm(EMBEDDED, packaged="none")
    for f in sorted(FOLDER.glob("*.json")):
        try:
            prov = read_file(f)["provenance"]
        except ShippedCacheError as err:
            print(f"{f.name}: {err}")
            continue
        why = mismatch(prov, shipped.identity(), llm.temperature, llm.seed)
        print(f"{f.name}: {prov['replies']} replies, {prov['model_id']}, transformers {prov['transformers']}, "
              f"torch {prov['torch']}, made {prov['made']}; " + (f"not used here: {why}" if why else "applies here"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
