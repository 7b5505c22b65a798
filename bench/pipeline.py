"""Time the two commands (``./run_all.sh``, ``./run_all.sh --test``) end to end and report peak memory.

    .venv/bin/python -m bench.pipeline [--fresh] [--skip-tests] [--out reports/bench/pipeline.json]

--fresh clones HEAD into a temporary folder and times `./run_all.sh --setup` there with an empty
venv (the fresh-machine set-up figure; pip's download cache is whatever this machine has). Then
it times `./run_all.sh --force` (quick profile, every notebook) and `./run_all.sh --test` in the
working tree. Peak RSS is the largest resident set of any child process (getrusage).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import tempfile
import time
from pathlib import Path

from phenoface.benchmarks import results_path
from phenoface.config import repo_root, write_json

ROOT = repo_root()


def timed(cmd: list[str], cwd: Path) -> dict:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    result = {"command": " ".join(cmd), "seconds": round(seconds, 1), "rc": proc.returncode,
              "peak_rss_mb_so_far": round(peak_mb, 1)}
    if proc.returncode:
        result["stderr_tail"] = proc.stderr[-2000:]
    print(json.dumps(result), flush=True)
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fresh", action="store_true", help="also time set-up in a fresh clone")
    ap.add_argument("--skip-tests", action="store_true")
    ap.add_argument("--out", type=Path, default=results_path("bench", "pipeline"))
    args = ap.parse_args()
    results = {}
    if args.fresh:
        with tempfile.TemporaryDirectory() as tmp:
            clone = Path(tmp) / "phenoface"
            subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
            results["fresh_setup"] = timed(["./run_all.sh", "--setup"], clone)
    results["quick_profile"] = timed(["./run_all.sh", "--force"], ROOT)
    if not args.skip_tests:
        results["test_command"] = timed(["./run_all.sh", "--test", "-q"], ROOT)
    results["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1)
    write_json(args.out, results)
    print(f"written {args.out}")
    return 0 if all(r.get("rc", 0) == 0 for r in results.values() if isinstance(r, dict)) else 1


if __name__ == "__main__":
    raise SystemExit(main())
