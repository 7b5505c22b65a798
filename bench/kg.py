"""Time the HPO graph build (cold: empty cache; warm: on-disk cache in a new process), then repeat
notebook 02's link-prediction protocol (alias-aware split, settings chosen on validation diseases,
filtered MRR on test diseases) over several seeds and report each method's spread; writes
reports/bench/kg.json.

    .venv/bin/python -m bench.kg [--model RotatE --dim 64 --epochs 60 --seeds 0 1 2] [--out reports/bench/kg.json]
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

import numpy as np

from phenoface.benchmarks import results_path
BUILD = ("import time; t=time.perf_counter(); from phenoface.kg import build_hpo_graph; g=build_hpo_graph(); "
         "import json; print(json.dumps({'seconds': time.perf_counter()-t, 'triples': g.n_triples, "
         "'entities': g.n_entities, 'face_triples': g.face_subgraph().n_triples}))")


def build_in_fresh_process(cache: str) -> dict:
    env = {**os.environ, "PHENOFACE_CACHE": cache}
    out = subprocess.run([sys.executable, "-c", BUILD], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def one_seed(graph, face, clusters, args, seed: int) -> dict:
    from phenoface.kg import holdout_split, evaluate, train_embedding

    holdout = holdout_split(face, n_test=args.test_diseases, n_valid=args.valid_diseases, seed=seed,
                            clusters=clusters)
    start = time.perf_counter()
    emb = train_embedding(holdout.train, args.model, dim=args.dim, epochs=args.epochs, seed=seed)
    train_s = time.perf_counter() - start
    result = evaluate(emb, holdout, graph, seed=seed)
    t = result.table
    out = {"seed": seed, "train_seconds": round(train_s, 1), "prior_weight": result.prior_weight,
           "neighbours": result.neighbours, "hidden_test_edges": int(t["n"].iloc[0]),
           "twin_edges_removed": holdout.twin_edges,
           "methods": {m: {"mrr": r["mrr"], "mrr_ci": [r["mrr_lo"], r["mrr_hi"]], "hits10": r["hits10"],
                           "setting": r["setting"]} for m, r in t.iterrows()},
           "link_minus": {m: [r["diff"], r["lo"], r["hi"]] for m, r in result.versus.iterrows()},
           "verdict": result.verdict()}
    print(json.dumps(out), flush=True)
    return out


def spread(runs: list[dict]) -> dict:
    """Mean, standard deviation and range over seeds of each method's MRR and Hits@10."""
    out = {}
    for m in runs[0]["methods"]:
        for k in ("mrr", "hits10"):
            v = np.array([r["methods"][m][k] for r in runs], float)
            out.setdefault(m, {})[k] = {"mean": float(v.mean()), "sd": float(v.std(ddof=1)) if len(v) > 1 else 0.0,
                                        "min": float(v.min()), "max": float(v.max())}
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="RotatE")
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--test-diseases", type=int, default=300)
    ap.add_argument("--valid-diseases", type=int, default=150)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--skip-build", action="store_true", help="do not time the cold / warm graph build")
    ap.add_argument("--out", type=Path, default=results_path("bench", "kg"))
    args = ap.parse_args()
    result = {"train_model": args.model, "train_dim": args.dim, "train_epochs": args.epochs,
              "test_diseases": args.test_diseases, "valid_diseases": args.valid_diseases, "split": "alias_aware",
              "cpu_threads": os.cpu_count()}
    if not args.skip_build:
        with tempfile.TemporaryDirectory() as cache:
            cold = build_in_fresh_process(cache)  # parses hp.obo, phenotype.hpoa and the gene file too
            warm = build_in_fresh_process(cache)
        result.update({"build_cold_seconds": round(cold["seconds"], 2), "build_warm_seconds": round(warm["seconds"], 2),
                       "kg_triples": cold["triples"], "kg_entities": cold["entities"],
                       "face_triples": cold["face_triples"]})
        print(json.dumps({"cold": cold, "warm": warm}), flush=True)

    from phenoface.kg import alias_clusters, build_hpo_graph

    graph = build_hpo_graph()
    face = graph.face_subgraph()
    clusters = alias_clusters(face)
    runs = [one_seed(graph, face, clusters, args, s) for s in args.seeds]
    result.update({"seeds": args.seeds, "runs": runs, "over_seeds": spread(runs)})
    for m, v in result["over_seeds"].items():
        print(f"{m:>20}: MRR {v['mrr']['mean']:.3f} ± {v['mrr']['sd']:.3f} (range {v['mrr']['min']:.3f}-"
              f"{v['mrr']['max']:.3f}), Hits@10 {v['hits10']['mean']:.3f} ± {v['hits10']['sd']:.3f} over "
              f"{len(runs)} seeds")
    from phenoface.config import write_json

    print("wrote", write_json(args.out, result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
