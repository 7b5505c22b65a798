"""``python -m phenoface.study serve | export | build``: run the rating server, export answers to CSV, or
(re)build a study set from a run's artifacts with other sizes than notebook 07's."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..config import atomic_path
from .server import serve
from .store import read_answers
from .studyset import load_study_set, write_study_set


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m phenoface.study", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="serve a study set to raters (127.0.0.1 unless --host)")
    s.add_argument("--set", required=True, type=Path, help="the study set folder (or its manifest.json)")
    s.add_argument("--db", type=Path, help="the answers database (default: answers.sqlite in the set's folder)")
    s.add_argument("--host", default="127.0.0.1", help="address to bind; anything but loopback requires a token")
    s.add_argument("--port", type=int, default=8765)
    s.add_argument("--token", help="study token raters need in the URL (made up when --host is not loopback)")
    s.add_argument("--presenter-key", help="key of the presenter view (made up when not given)")
    e = sub.add_parser("export", help="write a study database's answers as CSV")
    e.add_argument("--db", required=True, type=Path)
    e.add_argument("--out", type=Path, help="CSV file (default: standard output)")
    b = sub.add_parser("build", help="build a study set from a run's DATA_DIR")
    b.add_argument("--data-dir", required=True, type=Path)
    b.add_argument("--out", type=Path, help="set folder (default: <data-dir>/study)")
    b.add_argument("--per-disease", type=int, default=2, help="faces per disease and source")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--severity", action="store_true", help="also ask for a severity rating")
    args = ap.parse_args(argv)

    if args.command == "serve":
        study = load_study_set(args.set)
        serve(study.folder, args.db or study.folder / "answers.sqlite", host=args.host, port=args.port,
              token=args.token, presenter_key=args.presenter_key)
        return 0
    if args.command == "export":
        text = read_answers(args.db).to_csv(index=False)
        if args.out:
            with atomic_path(args.out) as tmp:
                tmp.write_text(text, encoding="utf-8")
            print(f"{args.out}: {max(text.count(chr(10)) - 1, 0)} answers")
        else:
            sys.stdout.write(text)
        return 0
    study = write_study_set(args.data_dir, seed=args.seed, per_disease=args.per_disease, ask_severity=args.severity,
                            folder=args.out)
    print(f"{study.folder}: {len(study)} faces, " + ", ".join(f"{k} {v}" for k, v in study.meta["counts"].items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
