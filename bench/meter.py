"""Benchmark the phenotype meter: landmark-regressor images/s at 64 px (batched, several batch
sizes and thread counts) and Meter throughput (landmark columns only, and with the pixel columns).

    python -m bench.meter [--n 2048] [--regressor data/processed/quick/phenotypes/regressor.safetensors]
                                [--out reports/bench/meter.json]

Without --regressor (or when the file is missing) an untrained network of the default width is
timed: throughput does not depend on the weights.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
import warnings
from pathlib import Path

from phenoface.benchmarks import results_path
from phenoface.config import write_json


def _best(fn, repeat=3):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2048)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--regressor", default="data/processed/quick/phenotypes/regressor.safetensors")
    ap.add_argument("--batch-sizes", default="1,32,256")
    ap.add_argument("--out", type=Path, default=results_path("bench", "meter"))
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore")

    import torch

    from phenoface.cohort import Cohort
    from phenoface.phenotypes import LandmarkNet, LandmarkRegressor, Meter

    c = Cohort.generate(n=args.n, seed=args.seed, size=64)
    path = Path(args.regressor)
    reg = LandmarkRegressor.load(path) if path.is_file() else LandmarkRegressor(LandmarkNet())
    res = {"n": args.n, "size": 64, "regressor": str(path) if path.is_file() else "untrained (default width)",
           "params": int(sum(p.numel() for p in reg.net.parameters())), "cpus": os.cpu_count(),
           "python": platform.python_version(), "torch": torch.__version__, "regressor_images_per_s": {}}
    default_threads = torch.get_num_threads()
    for threads in sorted({1, default_threads}):
        torch.set_num_threads(threads)
        for bs in [int(b) for b in args.batch_sizes.split(",")]:
            n = min(args.n, 256) if bs == 1 else args.n
            reg.predict(c.images[:min(n, 64)], batch_size=bs)  # warm-up
            dt = _best(lambda: reg.predict(c.images[:n], batch_size=bs))
            ips = n / dt
            res["regressor_images_per_s"][f"threads{threads}_batch{bs}"] = round(ips, 1)
            print(f"regressor: {ips:,.0f} images/s at 64 px, batch {bs}, {threads} thread(s)")
    torch.set_num_threads(default_threads)
    meter = Meter()
    dt = _best(lambda: meter.measure(c.landmarks))
    res["meter_landmarks_faces_per_s"] = round(args.n / dt, 1)
    print(f"Meter (landmark columns): {args.n / dt:,.0f} faces/s")
    dt = _best(lambda: meter.measure(c.landmarks, c.images), repeat=1)
    res["meter_with_images_faces_per_s"] = round(args.n / dt, 1)
    print(f"Meter (all columns, with 64 px images): {args.n / dt:,.0f} faces/s")
    out = write_json(args.out, res)  # atomic, like every artifact of the project
    print(f"wrote {out}")
    return res


if __name__ == "__main__":
    main(sys.argv[1:])
