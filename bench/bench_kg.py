"""Time the HPO graph build (cold: empty cache; warm: on-disk cache in a new process) and the
quick-profile embedding training, and write the numbers to reports/bench/kg.json.

    .venv/bin/python bench/bench_kg.py [--model RotatE --dim 64 --epochs 60] [--out reports/bench/kg.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUILD = ("import time; t=time.perf_counter(); from phenoface.kg import build_hpo_graph; g=build_hpo_graph(); "
         "import json; print(json.dumps({'seconds': time.perf_counter()-t, 'triples': g.n_triples, "
         "'entities': g.n_entities, 'face_triples': g.face_subgraph().n_triples}))")


def build_in_fresh_process(cache: str) -> dict:
    env = {**os.environ, "PHENOFACE_CACHE": cache}
    out = subprocess.run([sys.executable, "-c", BUILD], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="RotatE")
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--test-diseases", type=int, default=300)
    ap.add_argument("--out", type=Path, default=ROOT / "reports" / "bench" / "kg.json")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as cache:
        cold = build_in_fresh_process(cache)  # parses hp.obo, phenotype.hpoa and the gene file too
        warm = build_in_fresh_process(cache)
    print(json.dumps({"cold": cold, "warm": warm}), flush=True)

    from phenoface.kg import build_hpo_graph, evaluate, holdout_split, train_embedding

    face = build_hpo_graph().face_subgraph()
    holdout = holdout_split(face, n_diseases=args.test_diseases, seed=0)
    start = time.perf_counter()
    emb = train_embedding(holdout.train, args.model, dim=args.dim, epochs=args.epochs, seed=0)
    train_s = time.perf_counter() - start
    table = evaluate(emb, holdout)
    result = {
        "build_cold_seconds": round(cold["seconds"], 2), "build_warm_seconds": round(warm["seconds"], 2),
        "kg_triples": cold["triples"], "kg_entities": cold["entities"], "face_triples": cold["face_triples"],
        "train_model": args.model, "train_dim": args.dim, "train_epochs": args.epochs,
        "train_seconds": round(train_s, 1), "cpu_threads": os.cpu_count(),
        "link_prediction": table.reset_index().to_dict(orient="records"),
    }
    print(json.dumps(result, indent=2))
    from phenoface.config import write_json

    write_json(args.out, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
