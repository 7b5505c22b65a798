"""Benchmark the evaluation suite: recogniser embedding images/s at 64 px (the number that decides how fast
generated batches can be scored), training, FD and memorisation-check times, and the headline figures
repeated over seeds with their spread (each seed renders its own train / validation / test splits).

    python -m bench.evaluation [--n 1024] [--eval-n 256] [--seeds 0,1,2] [--epochs 20] [--width 16]
                                     [--out reports/bench/evaluation.json]

Per seed: test top-1 (clean and blurred with sigma 0.7), and the memorisation detector's AUC and TPR on
probes vs test faces at the threshold set on validation faces (1 % false positives). Then, side by side: the
memorisation check of several batches, recalibrated per batch vs one detector calibrated once.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from phenoface.benchmarks import results_path
from phenoface.config import write_json


def one_seed(seed: int, args) -> dict:
    from phenoface.cohort import make_splits
    from phenoface.evaluation import (make_probes, memorisation_check, recogniser_report, roc_summary,
                                      threshold_at_fpr, train_recogniser)

    s = make_splits({"train": args.n, "validation": args.eval_n, "test": args.eval_n}, seed=seed, size=args.size)
    train, val, test = s["train"], s["validation"], s["test"]
    t0 = time.perf_counter()
    rec = train_recogniser(train.images, train.table["disease_id"], epochs=args.epochs, width=args.width, seed=seed)
    train_seconds = time.perf_counter() - t0
    rep = recogniser_report(rec, test.images, test.table["disease_id"], train.table["disease_id"], seed=seed)
    feats = rec.features(train.images, kind="grid")
    vp, vsrc, _ = make_probes(train.images, train.table, per_kind=args.probes, seed=seed)
    tp, _, _ = make_probes(train.images, train.table, per_kind=args.probes, seed=seed + 1, exclude=vsrc)
    t0 = time.perf_counter()
    sv = memorisation_check(np.concatenate([vp, val.images]), train.images, features=rec,
                            train_features=feats).table["score"].to_numpy()
    memorisation_seconds = time.perf_counter() - t0
    thr = threshold_at_fpr(sv[len(vp):], 0.01)
    st = memorisation_check(np.concatenate([tp, test.images]), train.images, features=rec,
                            train_features=feats).table["score"].to_numpy()
    mem = roc_summary(st[:len(tp)], st[len(tp):], thr)
    return {"seed": seed, "recogniser_top1": rep["top1"], "recogniser_top1_ci": rep["top1_ci"],
            "recogniser_top1_blur07": rep["top1_blur"], "recogniser_majority_top1": rep["majority_top1"],
            "memorisation_auc": mem["auc"], "memorisation_tpr_at_fpr1": mem["tpr"], "memorisation_rate": mem["fpr"],
            "train_seconds": round(train_seconds, 2), "memorisation_seconds": round(memorisation_seconds, 2),
            "rec": rec, "train": train, "test": test}


def detector_reuse(rec, train, test, batches: int) -> dict:
    """Notebook 07 judges several batches (validation probes, test faces, each generator's faces) against one
    training set: ``batches`` batches of test faces with a fresh ``memorisation_check`` each, against one
    ``MemorisationDetector`` calibrated once, side by side (07's search: 3 px shifts and the mirror image).
    The scores must agree exactly."""
    from phenoface.evaluation import MemorisationDetector, memorisation_check

    feats = rec.features(train.images, kind="grid")
    parts = np.array_split(test.images, batches)
    t0 = time.perf_counter()
    each = [memorisation_check(p, train.images, features=rec, max_shift=3, mirror=True, train_features=feats)
            for p in parts]
    fresh = time.perf_counter() - t0
    t0 = time.perf_counter()
    detector = MemorisationDetector(train.images, features=rec, max_shift=3, mirror=True, train_features=feats)
    once = [detector.check(p) for p in parts]
    reused = time.perf_counter() - t0
    same = all(np.array_equal(a.table["score"], b.table["score"]) for a, b in zip(each, once))
    print(f"memorisation, {batches} batches: {fresh:.1f} s with a check each, {reused:.1f} s with one detector "
          f"({fresh / reused:.2f}x; identical scores: {same})")
    return {"memorisation_batches": batches, "memorisation_fresh_seconds": round(fresh, 2),
            "memorisation_detector_seconds": round(reused, 2), "memorisation_detector_speedup": round(fresh / reused, 2),
            "memorisation_detector_identical": bool(same)}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1024, help="training faces per seed")
    ap.add_argument("--eval-n", type=int, default=256, help="validation and test faces per seed")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--probes", type=int, default=16, help="memorisation probes per kind")
    ap.add_argument("--batch", type=int, default=256, help="embedding batch size")
    ap.add_argument("--batches", type=int, default=5, help="batches judged against one training set (detector reuse)")
    ap.add_argument("--out", type=Path, default=results_path("bench", "evaluation"))
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore")

    import torch

    from phenoface.evaluation import frechet_distance

    res = {"n": args.n, "eval_n": args.eval_n, "size": args.size, "epochs": args.epochs, "width": args.width,
           "torch_threads": torch.get_num_threads(), "cpus": os.cpu_count(), "python": platform.python_version()}
    runs = [one_seed(int(s), args) for s in args.seeds.split(",")]
    last = runs[-1]
    rec, train, test = last["rec"], last["train"], last["test"]
    rec.embed(test.images[: args.batch], batch_size=args.batch)  # warm-up
    t0 = time.perf_counter()
    rec.embed(train.images, batch_size=args.batch)
    res["embed_images_per_s"] = round(len(train) / (time.perf_counter() - t0), 1)
    t0 = time.perf_counter()
    res["fd_train_vs_test"] = round(frechet_distance(train.images, test.images, rec.feature_extractor()), 5)
    res["fd_seconds"] = round(time.perf_counter() - t0, 3)
    res.update(detector_reuse(rec, train, test, args.batches))
    res["seeds"] = [{k: v for k, v in r.items() if k not in ("rec", "train", "test")} for r in runs]
    for key in ("recogniser_top1", "recogniser_top1_blur07", "memorisation_auc", "memorisation_tpr_at_fpr1",
                "memorisation_rate"):
        vals = np.array([r[key] for r in runs], float)
        res[f"{key}_mean"] = round(float(vals.mean()), 4)
        res[f"{key}_sd"] = round(float(vals.std(ddof=1)), 4) if len(vals) > 1 else float("nan")
    res["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1)
    for key in ("recogniser_top1", "recogniser_top1_blur07", "memorisation_auc", "memorisation_tpr_at_fpr1"):
        print(f"{key}: {res[key + '_mean']:.3f} +- {res[key + '_sd']:.3f} over seeds {args.seeds}")
    print(f"recogniser embed: {res['embed_images_per_s']:,.0f} images/s at {args.size} px (batch {args.batch}); "
          f"FD in {res['fd_seconds']:.2f} s")
    out = write_json(args.out, res)  # atomic, like every artifact of the project
    print(f"wrote {out}")
    return res


if __name__ == "__main__":
    main(sys.argv[1:])
