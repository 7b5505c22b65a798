"""Benchmark the synthetic cohort: faces/s of Cohort.generate at 64 px, peak RSS, and face-likeness
(MediaPipe found rate and NME at 256 px).

    python -m bench.cohort [--n 4096] [--size 64] [--likeness-n 64] [--out reports/bench/cohort.json]
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

from phenoface.benchmarks import results_path
from phenoface.config import write_json


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=4096)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--likeness-n", type=int, default=64)
    ap.add_argument("--likeness-size", type=int, default=256)
    ap.add_argument("--skip-likeness", action="store_true")
    ap.add_argument("--out", type=Path, default=results_path("bench", "cohort"))
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore")

    import torch

    from phenoface.cohort import Cohort

    t0 = time.perf_counter()
    Cohort.generate(n=256, seed=args.seed + 1, size=args.size)  # warm-up (caches, allocator)
    warm = time.perf_counter() - t0
    t0 = time.perf_counter()
    c = Cohort.generate(n=args.n, seed=args.seed, size=args.size)
    dt = time.perf_counter() - t0
    fps = args.n / dt
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux
    res = {
        "n": args.n, "size": args.size, "seconds": round(dt, 3), "faces_per_s": round(fps, 1),
        "warmup_seconds": round(warm, 3), "peak_rss_mb": round(rss_mb, 1),
        "torch_threads": torch.get_num_threads(), "cpus": os.cpu_count(), "python": platform.python_version(),
        "images_mb": round(c.images.nbytes / 2 ** 20, 1),
    }
    print(f"Cohort.generate: {args.n} faces at {args.size}px in {dt:.2f}s = {fps:.0f} faces/s "
          f"(warm-up {warm:.2f}s), peak RSS {rss_mb:.0f} MB")
    if not args.skip_likeness:
        from phenoface.cohort.validate import face_likeness

        t0 = time.perf_counter()
        fl = face_likeness(n=args.likeness_n, seed=args.seed, size=args.likeness_size)
        fl["seconds"] = round(time.perf_counter() - t0, 2)
        res["face_likeness"] = fl
        print(f"face_likeness: found_rate {fl['found_rate']:.3f}, NME {fl['nme']:.4f} "
              f"(no jaw {fl['nme_no_jaw']:.4f}) over {fl['n']} faces at {fl['size']}px")
        res["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1)
    out = write_json(args.out, res)  # atomic, like every artifact of the project
    print(f"wrote {out}")
    return res


if __name__ == "__main__":
    main(sys.argv[1:])
