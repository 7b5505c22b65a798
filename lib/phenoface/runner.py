"""Execute the numbered notebooks with papermill, render them to HTML and rebuild the index.

``run_all.sh`` calls ``python -m phenoface.runner``. A step is skipped when its fingerprint (the
notebook's code, the parameter file, the ``phenoface`` sources and the fingerprints of the steps
before it) matches the last successful run, unless ``--force``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from .config import PROFILES, atomic_path, params_path, repo_root, write_json
from .report import build_index, reports_dir

DEFAULT_TIMEOUT = {"smoke": 600, "quick": 1800, "full": 6 * 3600}
_SECRET_ENV = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD)", re.I)


def notebooks(folder: Path | None = None) -> list[Path]:
    folder = folder or repo_root() / "notebooks"
    return sorted(folder.glob("[0-9][0-9]_*.ipynb"))


def select(paths: list[Path], only: list[str] | None) -> list[Path]:
    if not only:
        return paths
    wanted = [o.strip() for item in only for o in item.split(",") if o.strip()]
    chosen = [p for p in paths if any(p.stem == w or p.stem.startswith(w + "_") or p.stem == w.removesuffix(".ipynb")
                                      for w in wanted)]
    unknown = [w for w in wanted if not any(p.stem == w or p.stem.startswith(w + "_") for p in paths)]
    if unknown:
        raise SystemExit(f"Unknown notebook(s) {', '.join(unknown)}; known: {', '.join(p.stem for p in paths)}")
    return chosen


def _code_digest(nb_path: Path) -> str:
    """Hash what decides a notebook's result: its cells' sources and tags, never its outputs."""
    nb = json.loads(nb_path.read_text(encoding="utf-8"))
    h = hashlib.sha256()
    for cell in nb.get("cells", []):
        h.update(cell.get("cell_type", "").encode())
        h.update("".join(cell.get("source", "")).encode())
        h.update(json.dumps(cell.get("metadata", {}).get("tags", [])).encode())
    return h.hexdigest()


def _package_digest() -> str:
    h = hashlib.sha256()
    pkg = Path(__file__).resolve().parent
    for path in sorted(pkg.rglob("*")):
        if path.is_file() and path.suffix in {".py", ".json", ".yaml", ".txt", ".csv"} and "__pycache__" not in path.parts:
            h.update(path.relative_to(pkg).as_posix().encode())
            h.update(path.read_bytes())
    return h.hexdigest()


def fingerprint(nb_path: Path, params_file: Path, upstream: str, package: str, extra: str = "") -> str:
    h = hashlib.sha256()
    for part in (_code_digest(nb_path), params_file.read_bytes().decode(), upstream, package, extra):
        h.update(part.encode())
    return h.hexdigest()[:20]


def scrub_secrets(text: str) -> str:
    """Replace the values of secret-looking environment variables wherever they appear."""
    for name, value in os.environ.items():
        if _SECRET_ENV.search(name) and value and len(value) >= 8:
            text = text.replace(value, f"<{name} redacted>")
    return text


def render_html(executed: Path, target: Path) -> None:
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.read(executed, as_version=4)
    body, _ = HTMLExporter().from_notebook_node(nb)
    with atomic_path(target) as tmp:
        tmp.write_text(scrub_secrets(body), encoding="utf-8")


def execute(nb_path: Path, out_path: Path, params_file: Path, timeout: int, overrides: dict | None = None) -> None:
    """papermill -k python3 with the profile's parameter file and an execution timeout."""
    with atomic_path(out_path) as tmp:
        cmd = [sys.executable, "-m", "papermill", str(nb_path), str(tmp), "-k", "python3",
               "-f", str(params_file), "--execution-timeout", str(timeout), "--cwd", str(nb_path.parent),
               "--progress-bar"]
        for name, value in (overrides or {}).items():
            cmd += ["-p", name, str(value)]
        # A non-inline MPLBACKEND (e.g. Agg from a test runner) would stop figures reaching the notebook.
        env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
        proc = subprocess.run(cmd, text=True, stderr=subprocess.PIPE, env=env)
        if proc.returncode != 0:
            raise RuntimeError(_papermill_error(proc.stderr, tmp))
        tmp.write_text(scrub_secrets(tmp.read_text(encoding="utf-8")), encoding="utf-8")


def _papermill_error(stderr: str, partial: Path) -> str:
    tail = "\n".join(stderr.strip().splitlines()[-25:])
    return scrub_secrets(tail or f"papermill failed; partial output at {partial}")


def run(profile: str = "quick", only: list[str] | None = None, force: bool = False, timeout: int | None = None,
        reports: Path | None = None, overrides: dict | None = None, html: bool = True,
        notebook_dir: Path | None = None) -> dict:
    if profile not in PROFILES:
        raise SystemExit(f"Unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    params_file = Path(notebook_dir) / "params" / f"{profile}.yaml" if notebook_dir else params_path(profile)
    if not params_file.is_file():
        raise SystemExit(f"Parameter file {params_file} is missing.")
    out_root = reports_dir(reports)
    out_root.mkdir(parents=True, exist_ok=True)
    log_path = out_root / "run.json"
    log = json.loads(log_path.read_text()) if log_path.is_file() else {}
    if log.get("profile") != profile:
        log = {"profile": profile, "steps": {}}  # another profile's fingerprints never match
    timeout = int(timeout or DEFAULT_TIMEOUT[profile])
    package = _package_digest()
    extra = json.dumps(overrides or {}, sort_keys=True)
    env_reports = os.environ.get("PHENOFACE_REPORTS")
    os.environ["PHENOFACE_REPORTS"] = str(out_root)
    all_nbs = notebooks(notebook_dir)
    chosen = set(select(all_nbs, only))
    upstream, failed = "", False
    try:
        for nb in all_nbs:
            previous = log["steps"].get(nb.stem, {})
            fp = fingerprint(nb, params_file, upstream, package, extra)
            upstream += fp
            if nb not in chosen:
                continue
            executed, rendered = out_root / f"{nb.stem}.ipynb", out_root / f"{nb.stem}.html"
            if failed:
                log["steps"][nb.stem] = {"status": "skipped", "reason": "an earlier step failed"}
                continue
            if (not force and previous.get("status") in {"ok", "unchanged"} and previous.get("fingerprint") == fp
                    and executed.is_file() and (rendered.is_file() or not html)):
                print(f"[phenoface] {nb.stem}: inputs and parameters unchanged, skipped (use --force to rerun)")
                log["steps"][nb.stem] = {**previous, "status": "unchanged"}
                continue
            print(f"[phenoface] {nb.stem}: running with {params_file.name} (timeout {timeout} s per cell)", flush=True)
            start = time.time()
            try:
                execute(nb, executed, params_file, timeout, overrides)
                if html:
                    render_html(executed, rendered)
            except Exception as exc:  # record, render the index, then report failure
                failed = True
                log["steps"][nb.stem] = {"status": "failed", "fingerprint": fp, "seconds": time.time() - start,
                                         "error": str(exc)}
                print(f"[phenoface] {nb.stem}: FAILED\n{exc}", file=sys.stderr)
            else:
                log["steps"][nb.stem] = {"status": "ok", "fingerprint": fp, "seconds": time.time() - start}
                print(f"[phenoface] {nb.stem}: done in {time.time() - start:.0f} s", flush=True)
            write_json(log_path, log)
    finally:
        write_json(log_path, log)
        if env_reports is None:
            os.environ.pop("PHENOFACE_REPORTS", None)
        else:
            os.environ["PHENOFACE_REPORTS"] = env_reports
    index = build_index(out_root, notebooks=notebook_dir, profile=profile)
    print(f"[phenoface] index: {index}")
    log["failed"] = failed
    return log


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m phenoface.runner", description=__doc__)
    ap.add_argument("--profile", default="quick", choices=PROFILES)
    ap.add_argument("--only", nargs="+", action="extend", help="notebook stems or number prefixes, e.g. 00 02_kg_profiles")
    ap.add_argument("--force", action="store_true", help="rerun steps whose inputs did not change")
    ap.add_argument("--timeout", type=int, help="papermill execution timeout per cell, seconds")
    ap.add_argument("--reports", type=Path, help="output folder (default: reports/)")
    ap.add_argument("--no-html", action="store_true")
    args = ap.parse_args(argv)
    log = run(args.profile, args.only, args.force, args.timeout, args.reports, html=not args.no_html)
    return 1 if log.get("failed") else 0


if __name__ == "__main__":
    raise SystemExit(main())
