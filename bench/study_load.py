"""Load check of the reader-study server: N simulated raters answer at once for S seconds against
``python -m phenoface.study serve`` on 127.0.0.1, each also re-sending every fifth answer (a double submit).
Afterwards the database must hold exactly the acknowledged answers, none twice; prints the answers per
second and the answer latency (median, 95th percentile) as JSON. Stops by itself.

    .venv/bin/python -m bench.study_load                 # 30 raters, 60 s
    .venv/bin/python -m bench.study_load --raters 5 --seconds 5
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd

from phenoface.benchmarks import results_path
from phenoface.cohort import DISEASES
from phenoface.config import write_json
from phenoface.study import build_study_set, read_answers
from phenoface.study.server import launch, page_version


def synthetic_set(folder: Path, per_disease: int):
    rng = np.random.default_rng(0)
    ids = [d for d in DISEASES for _ in range(per_disease)]
    sources = {s: (rng.integers(0, 256, (len(ids), 32, 32, 3), dtype=np.uint8), pd.DataFrame({"disease_id": ids}))
               for s in ("real", "generated", "edit")}
    return build_study_set(sources, folder, per_disease=per_disease)


def rater(base: str, name: str, until: float, out: dict, lock: threading.Lock) -> None:
    acked, lat, dup, errors = [], [], [], 0
    version = page_version()
    with httpx.Client(base_url=base, timeout=60) as c:
        k = 0
        while time.monotonic() < until:
            try:
                nxt = c.get("/api/next", params={"rater": name}).json()
                if not nxt["item"]:
                    break
                body = {"rater": name, "item": nxt["item"], "said_real": bool(k % 2), "confidence": 1 + k % 3,
                        "disease": "UNAFFECTED", "client_ms": 1000, "page_version": version}
                t = time.perf_counter()
                r = c.post("/api/answer", json=body)
                lat.append(time.perf_counter() - t)
                if r.status_code == 200:
                    acked.append(nxt["item"])
                else:
                    errors += 1
                if k % 5 == 0:
                    dup.append(c.post("/api/answer", json=body).status_code)
            except httpx.TransportError:
                errors += 1
            k += 1
    with lock:
        out[name] = {"acked": acked, "latency": lat, "dup": dup, "errors": errors}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--raters", type=int, default=30)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--per-disease", type=int, default=40, help="faces per disease and source in the synthetic set")
    ap.add_argument("--out", type=Path, default=results_path("bench", "study_load"))
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="study-load-") as tmp:
        study = synthetic_set(Path(tmp) / "set", args.per_disease)
        db = Path(tmp) / "answers.sqlite"
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        try:
            proc, base = launch(study.folder, db, port, presenter_key="bench")
        except RuntimeError as exc:
            raise SystemExit(str(exc)) from None
        try:
            out, lock = {}, threading.Lock()
            until = time.monotonic() + args.seconds
            threads = [threading.Thread(target=rater, args=(base, f"load{i:02d}", until, out, lock)) for i in range(args.raters)]
            start = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join(args.seconds + 120)
            wall = time.perf_counter() - start
        finally:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        rows = read_answers(db)
        acked = {(n, i) for n, r in out.items() for i in r["acked"]}
        stored = list(zip(rows["rater"], rows["item"]))
        lat = np.array([x for r in out.values() for x in r["latency"]]) * 1000
        dups = [c for r in out.values() for c in r["dup"]]
        result = {"raters": args.raters, "seconds": round(wall, 1), "items_in_set": len(study),
                  "answers_acknowledged": len(acked), "rows_stored": len(rows),
                  "rows_duplicated": int(len(stored) - len(set(stored))), "lost": len(acked - set(stored)),
                  "unacknowledged_stored": len(set(stored) - acked), "double_submits": len(dups),
                  "double_submits_refused_409": int(sum(c == 409 for c in dups)),
                  "errors": int(sum(r["errors"] for r in out.values())),
                  "answers_per_s": round(len(rows) / wall, 1),
                  "latency_ms_median": round(float(np.median(lat)), 1) if len(lat) else None,
                  "latency_ms_p95": round(float(np.quantile(lat, 0.95)), 1) if len(lat) else None,
                  "cpu_cores": os.cpu_count()}
    print(json.dumps(result, indent=2))
    write_json(args.out, result)
    ok = (result["lost"] == 0 and result["rows_duplicated"] == 0 and result["unacknowledged_stored"] == 0
          and result["double_submits_refused_409"] == result["double_submits"])
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
