"""Benchmark the evaluation suite: recogniser embedding images/s at 64 px (the number that decides how
fast generated batches can be scored), plus training time, FD and memorisation-check times.

    python bench/bench_evaluation.py [--n 1024] [--epochs 2] [--recogniser data/processed/quick/evaluation/recogniser.pt]
                                     [--out reports/bench/evaluation.json]
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import sys
import time
import warnings

from phenoface.config import write_json


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1024, help="cohort faces to train on and embed")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=2, help="recogniser epochs when no --recogniser is given")
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--batch", type=int, default=256, help="embedding batch size")
    ap.add_argument("--recogniser", default="", help="a saved recogniser.pt to time instead of training one")
    ap.add_argument("--out", default="reports/bench/evaluation.json")
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore")

    import torch

    from phenoface.cohort import Cohort
    from phenoface.evaluation import Recogniser, frechet_distance, memorisation_check, train_recogniser

    c = Cohort.generate(n=args.n, seed=args.seed, size=args.size)
    res = {"n": args.n, "size": args.size, "torch_threads": torch.get_num_threads(), "cpus": os.cpu_count(),
           "python": platform.python_version()}
    if args.recogniser:
        rec = Recogniser.load(args.recogniser)
        res["recogniser"] = args.recogniser
    else:
        t0 = time.perf_counter()
        rec = train_recogniser(c.images, c.table["disease_id"], epochs=args.epochs, seed=args.seed, width=args.width)
        res["train_seconds"] = round(time.perf_counter() - t0, 2)
        res["train_images_per_s"] = round(args.n * args.epochs / res["train_seconds"], 1)
    rec.embed(c.images[: args.batch], batch_size=args.batch)  # warm-up
    t0 = time.perf_counter()
    rec.embed(c.images, batch_size=args.batch)
    dt = time.perf_counter() - t0
    res["embed_images_per_s"] = round(args.n / dt, 1)
    half = args.n // 2
    t0 = time.perf_counter()
    fd = frechet_distance(c.images[:half], c.images[half:], rec.feature_extractor())
    res["fd_seconds"] = round(time.perf_counter() - t0, 3)
    res["fd_half_vs_half"] = round(fd, 5)
    t0 = time.perf_counter()
    rep = memorisation_check(c.images[half:], c.images[:half], features=rec)
    res["memorisation_seconds"] = round(time.perf_counter() - t0, 3)
    res["memorisation_rate_half_vs_half"] = round(rep.rate, 4)
    res["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1)
    print(f"recogniser embed: {res['embed_images_per_s']:,.0f} images/s at {args.size} px (batch {args.batch}); "
          f"FD {half} vs {args.n - half} in {res['fd_seconds']:.2f} s; memorisation check in "
          f"{res['memorisation_seconds']:.2f} s" + (f"; training {res['train_seconds']:.1f} s" if "train_seconds" in res else ""))
    out = write_json(args.out, res)  # atomic, like every artifact of the project
    print(f"wrote {out}")
    return res


if __name__ == "__main__":
    main(sys.argv[1:])
