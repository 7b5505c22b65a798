"""Execute the numbered notebooks with papermill, render them to HTML and rebuild the index.

``run_all.sh`` calls ``python -m phenoface.runner``. The profile file is checked against the parameter
schema (``phenoface.params``) before anything runs. A step is skipped when its fingerprint (the notebook's
code, the parameters, the ``phenoface`` sources, the LLM endpoint for the steps that ask one, and the
fingerprints and written artifacts of the steps before it) matches its last ``ok`` run and the files it
wrote are as it left them, unless ``--force``.

``reports/run.json`` records each step as ``running`` (before it starts), then ``ok``, ``degraded`` (it
finished on a fallback, see ``report.record_status``; rerun next time) or ``failed``. Each update is a
read-modify-write under a file lock, so runs of different steps at once keep every record; a second run
of the same step is refused while the first holds that step's lock. Runs on the same ``DATA_DIR`` wait for
each other where one step writes what another reads (:func:`data_locks`).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

import yaml

from .config import atomic_path, clean_partials, is_partial, params_path, repo_root, write_json
from .params import BY_NAME, ParameterError, coerce_overrides, read_profile, resolve_param_path, validate
from .publish import SlidesUnavailable, build_index, render_html, render_slides, scrub_secrets, wants_slides
from .report import read_status, recorded_reports_dir

DEFAULT_TIMEOUT = {"smoke": 600, "quick": 1800, "full": 6 * 3600}
# What else decides a step's result besides its parameters: the LLM endpoint may come from the environment.
_STEP_ENV = {"LLM_BASE_URL": ("OPENAI_BASE_URL", "OPENAI_MODEL")}


class StepBusy(RuntimeError):
    """Another process is running the same step of the same reports folder."""


def notebooks(folder: Path | None = None) -> list[Path]:
    folder = folder or repo_root() / "notebooks"
    return sorted(folder.glob("[0-9][0-9]_*.ipynb"))


def select(paths: list[Path], only: list[str] | None) -> list[Path]:
    if only is None:
        return paths
    wanted = [o.strip() for item in only for o in item.split(",") if o.strip()]
    if not wanted:
        raise SystemExit("--only needs at least one notebook (a number prefix such as 02, or a stem); "
                         f"known: {', '.join(p.stem for p in paths)}")
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


def _step_env(nb_path: Path) -> str:
    """Environment values that change this step's result (the LLM endpoint and model; never the key)."""
    prefix = nb_path.stem[:2]
    names = [env for param, envs in _STEP_ENV.items() if prefix in BY_NAME[param].notebooks for env in envs]
    return json.dumps({n: os.environ.get(n, "") for n in names}, sort_keys=True)


def _step_inputs(nb_path: Path, params: dict, notebook_dir: Path) -> str:
    """Size and modification time of the user files a step reads through its path parameters (the reader study's
    answers, PrimeKG, weights): new answers in the same database rerun notebook 09. A SQLite database in WAL mode
    takes new rows into its ``-wal`` file first, so that file counts too."""
    prefix = nb_path.stem[:2]
    seen = {}
    for p in BY_NAME.values():
        value = params.get(p.name)
        if p.kind != "path" or not p.must_exist or prefix not in p.notebooks or not value:
            continue
        path = resolve_param_path(str(value), notebook_dir)
        for f in (path, path.with_name(path.name + "-wal")):
            if f.is_file():
                st = f.stat()
                seen[str(f)] = [st.st_size, st.st_mtime_ns]
    return json.dumps(seen, sort_keys=True) if seen else ""


DATA_LOCKS = ".locks"  # under DATA_DIR: the runner's own lock files, never a step's artifact


def artifacts_since(folder: Path, since: float) -> dict[str, list[int]]:
    """Files under ``folder`` written at or after ``since``: relative path -> [size, mtime_ns]."""
    found = {}
    if folder.is_dir():
        for path in folder.rglob("*"):
            if path.is_file() and not is_partial(path) and path.relative_to(folder).parts[0] != DATA_LOCKS:
                st = path.stat()
                if st.st_mtime >= since - 1:
                    found[path.relative_to(folder).as_posix()] = [st.st_size, st.st_mtime_ns]
    return found


def artifacts_intact(folder: Path, recorded: dict[str, list[int]]) -> bool:
    """Whether every file a step wrote is still as it left it (a killed later run may have rewritten one)."""
    for rel, (size, mtime_ns) in recorded.items():
        path = folder / rel
        if not path.is_file():
            return False
        st = path.stat()
        if st.st_size != size or st.st_mtime_ns != mtime_ns:
            return False
    return True


def step_outputs(out_root: Path, stem: str) -> list[Path]:
    """What a step leaves in the reports folder: its executed and rendered notebook, slides, metrics, status
    and every file under ``figures/<stem>/``."""
    named = [out_root / f"{stem}.ipynb", out_root / f"{stem}.html", out_root / f"{stem}.slides.html",
             out_root / "metrics" / f"{stem}.json", out_root / "status" / f"{stem}.json"]
    figures = out_root / "figures" / stem
    found = sorted(p for p in figures.rglob("*") if p.is_file()) if figures.is_dir() else []
    return [p for p in named if p.is_file()] + [p for p in found if not is_partial(p)]


def report_files(out_root: Path, stem: str) -> dict[str, list[int]]:
    """``step_outputs`` as relative path -> [size, mtime_ns]: what the runner records after a step and compares
    before it skips one, so a file it did not write (a notebook run by hand, a stale figure) is never taken
    for its own."""
    out = {}
    for path in step_outputs(out_root, stem):
        st = path.stat()
        out[path.relative_to(out_root).as_posix()] = [st.st_size, st.st_mtime_ns]
    return out


def clear_step_outputs(out_root: Path, stem: str) -> None:
    """Remove what the step's previous run left in the reports folder, so what is there afterwards is what this
    run wrote: a figure the previous run drew (a patient photo, say) and this one does not, is gone."""
    import shutil

    for path in step_outputs(out_root, stem):
        path.unlink(missing_ok=True)
    shutil.rmtree(out_root / "figures" / stem, ignore_errors=True)


def _digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:20]


def _slides(executed: Path, target: Path) -> dict:
    """reveal.js slides of a notebook that ran with SLIDES true; a missing local reveal.js is reported, not fatal."""
    if not wants_slides(executed):
        return {}
    try:
        render_slides(executed, target)
    except SlidesUnavailable as exc:
        print(f"[phenoface] {executed.stem}: slides not rendered: {exc}", file=sys.stderr)
        return {"slides": f"unavailable: {exc}"}
    return {"slides": target.name}


_ASSIGNED = re.compile(r"^([A-Za-z_][A-Za-z_0-9]*)\s*(?::[^=\n]*)?=(?!=)", re.M)
# Warnings about the kernel's surroundings, not about the results, that would otherwise open every report in a
# warning box: tqdm's notebook bars need ipywidgets (absent), torch warns on wrapping a read-only array it only
# reads, pykeen's data loader asks for pinned memory on a machine with no accelerator.
KERNEL_WARNINGS = ("ignore:IProgress not found:Warning",
                   "ignore:The given NumPy array is not writable:UserWarning",
                   "ignore:'pin_memory' argument is set as true but no accelerator is found:UserWarning",
                   # Lightning: a rerun reuses its checkpoint folder; small smoke runs log less often than the
                   # default interval; the frozen autoencoder is in eval mode on purpose; its own deprecated call.
                   "ignore:Checkpoint directory:UserWarning:lightning.pytorch.callbacks.model_checkpoint",
                   "ignore:The number of training batches:UserWarning:lightning.pytorch.loops.fit_loop",
                   "ignore:Found:UserWarning:lightning.pytorch.loops.fit_loop",
                   "ignore:`isinstance(treespec:Warning")  # PYTHONWARNINGS splits at commas: the text up to one


def declared_parameters(nb_path: Path) -> set[str] | None:
    """The names the notebook's ``parameters`` cell assigns (None: it has no such cell)."""
    nb = json.loads(Path(nb_path).read_text(encoding="utf-8"))
    for cell in nb.get("cells", []):
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            return set(_ASSIGNED.findall("".join(cell.get("source", ""))))
    return None


def kernel_env() -> dict[str, str]:
    """The environment papermill and the kernel run in."""
    # A non-inline MPLBACKEND (e.g. Agg from a test runner) would stop figures reaching the notebook.
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    env["PYTHONWARNINGS"] = ",".join(w for w in (env.get("PYTHONWARNINGS", ""), *KERNEL_WARNINGS) if w)
    # Text progress bars (no ipywidgets in the kernel) would fill the reports with stderr frames; papermill's own
    # bar goes to the pipe below, and the runner prints each step's progress.
    env.setdefault("TQDM_DISABLE", "1")
    return env


def execute(nb_path: Path, out_path: Path, params_file: Path, timeout: int, overrides: dict | None = None) -> None:
    """papermill -k python3 with the profile's parameters that the notebook declares (its parameters cell shows
    only those) and an execution timeout. A kill of this process (SIGTERM, Ctrl-C) stops papermill and its
    kernel and leaves no partial notebook behind."""
    declared = declared_parameters(nb_path)
    own = {k: v for k, v in read_profile(params_file).items() if declared is None or k in declared}
    with atomic_path(out_path) as tmp, tempfile.TemporaryDirectory(prefix="phenoface-params-") as folder:
        own_file = Path(folder) / params_file.name
        own_file.write_text(yaml.safe_dump(own, sort_keys=False, allow_unicode=True), encoding="utf-8")
        cmd = [sys.executable, "-m", "papermill", str(nb_path), str(tmp), "-k", "python3",
               "-f", str(own_file), "--execution-timeout", str(timeout), "--cwd", str(nb_path.parent),
               "--progress-bar"]
        for name, value in (overrides or {}).items():
            if declared is None or name in declared:
                cmd += ["-p", name, str(value)]
        proc = subprocess.Popen(cmd, text=True, stderr=subprocess.PIPE, env=kernel_env(), start_new_session=True)
        try:
            _, stderr = proc.communicate()
        except BaseException:
            _stop(proc)
            raise
        if proc.returncode != 0:
            raise RuntimeError(_papermill_error(stderr, tmp))
        tmp.write_text(scrub_secrets(tmp.read_text(encoding="utf-8")), encoding="utf-8")


def _stop(proc: subprocess.Popen) -> None:
    """Stop papermill and the kernel it started (its own process group)."""
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        if proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(wait)


def _papermill_error(stderr: str, partial: Path) -> str:
    tail = "\n".join(stderr.strip().splitlines()[-25:])
    return scrub_secrets(tail or f"papermill failed; partial output at {partial}")


# ---- run.json and locks -------------------------------------------------------------------------------

@contextlib.contextmanager
def _flock(path: Path, blocking: bool = True) -> Iterator[int]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        yield fd
    finally:
        os.close(fd)  # closing releases the lock; a killed process releases it too


def update_log(log_path: Path, profile: str, stem: str, record: dict) -> dict:
    """Set one step's record in ``run.json`` under the log's lock (read, change, write back atomically)."""
    with _flock(log_path.with_name(".run.json.lock")):
        log = read_log(log_path)
        if log.get("profile") != profile:
            log = {"profile": profile, "steps": {}}  # another profile's fingerprints never match
        log["steps"][stem] = record
        write_json(log_path, log)
        return log


def read_log(log_path: Path) -> dict:
    try:
        log = json.loads(log_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"steps": {}}
    return log if isinstance(log, dict) and isinstance(log.get("steps"), dict) else {"steps": {}}


@contextlib.contextmanager
def step_lock(out_root: Path, stem: str) -> Iterator[None]:
    """Hold ``<reports>/.locks/<stem>.lock`` for the step; a second run of the same step is refused."""
    path = out_root / ".locks" / f"{stem}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            other = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            raise StepBusy(f"{stem} is already running in another process (PID {other}) for {out_root}; "
                           "wait for it or stop it, then run again.") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)


@contextlib.contextmanager
def data_locks(data_dir: Path, stems: list[str], stem: str) -> Iterator[None]:
    """While ``stem`` runs, hold ``<DATA_DIR>/.locks/<stem>.lock`` exclusively (it writes its artifacts) and the
    lock of every step before it shared (it reads theirs). So a run of 00 waits while 07, in another run on the
    same DATA_DIR, reads the cohort, and 07 waits while 00 rewrites it; steps that only read the same earlier
    artifacts run at once. Locks are taken in notebook order, so two runs never wait on each other in a circle."""
    folder = data_dir / DATA_LOCKS
    folder.mkdir(parents=True, exist_ok=True)
    fds = []
    try:
        for other in stems[: stems.index(stem) + 1]:
            mode = fcntl.LOCK_EX if other == stem else fcntl.LOCK_SH
            fd = os.open(folder / f"{other}.lock", os.O_RDWR | os.O_CREAT, 0o644)
            fds.append(fd)
            try:
                fcntl.flock(fd, mode | fcntl.LOCK_NB)
            except BlockingIOError:
                why = ("it reads what this step writes" if other == stem else
                       f"this step reads what {other} writes")
                print(f"[phenoface] {stem}: waiting until {_running_on(folder)} is done with {data_dir} ({why})",
                      file=sys.stderr, flush=True)
                fcntl.flock(fd, mode)
            if other == stem:
                os.ftruncate(fd, 0)
                os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        for fd in fds:
            os.close(fd)  # closing releases the lock; a killed process releases it too


def _running_on(folder: Path) -> str:
    """The steps that hold their data lock now (running in some process), with their PIDs."""
    running = []
    for path in sorted(folder.glob("*.lock")):
        fd = os.open(path, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            running.append(f"{path.stem} (PID {os.pread(fd, 64, 0).decode(errors='replace').strip() or '?'})")
        finally:
            os.close(fd)
    return ", ".join(running) or "another run"


# ---- the run -------------------------------------------------------------------------------------------

def load_profile(profile: str | os.PathLike, notebook_dir: Path, overrides: dict | None) -> tuple[Path, dict]:
    """The profile's file and its parameters with ``overrides`` applied, checked against the schema."""
    try:
        params_file = params_path(profile, notebook_dir / "params")
    except ValueError as err:
        raise SystemExit(str(err)) from None
    try:
        params = {**read_profile(params_file), **coerce_overrides(overrides or {})}
        validate(params, notebook_dir, str(params_file))
    except ParameterError as err:
        raise SystemExit(f"{err}\nNothing was run. What each parameter allows: the README's parameter table, or "
                         "python -m phenoface.params"
                         ) from None
    return params_file.resolve(), params


def run(profile: str = "quick", only: list[str] | None = None, force: bool = False, timeout: int | None = None,
        reports: Path | None = None, overrides: dict | None = None, html: bool = True,
        notebook_dir: Path | None = None) -> dict:
    notebook_dir = Path(notebook_dir).resolve() if notebook_dir else repo_root() / "notebooks"
    params_file, params = load_profile(profile, notebook_dir, overrides)
    all_nbs = notebooks(notebook_dir)
    chosen = set(select(all_nbs, only))
    name = str(params.get("PROFILE", params_file.stem))
    out_root = Path(reports).resolve() if reports else recorded_reports_dir()
    out_root.mkdir(parents=True, exist_ok=True)
    data_dir = resolve_param_path(str(params["DATA_DIR"]), notebook_dir).resolve()
    log_path = out_root / "run.json"
    timeout = int(timeout or DEFAULT_TIMEOUT.get(name, DEFAULT_TIMEOUT["quick"]))
    package = _package_digest()
    extra = json.dumps(overrides or {}, sort_keys=True)
    env_reports = os.environ.get("PHENOFACE_REPORTS")
    os.environ["PHENOFACE_REPORTS"] = str(out_root)
    upstream, failed = "", False
    try:
        for nb in all_nbs:
            log = read_log(log_path)
            previous = log["steps"].get(nb.stem, {}) if log.get("profile") == name else {}
            fp = fingerprint(nb, params_file, upstream, package, extra + _step_env(nb) + _step_inputs(nb, params, notebook_dir))
            artifacts = previous.get("artifacts", {})
            if nb in chosen and failed:
                print(f"[phenoface] {nb.stem}: not run, an earlier step failed", file=sys.stderr)
            elif nb in chosen:
                record = _run_step(nb, previous, fp, params_file, out_root, data_dir, name, timeout, overrides,
                                   html, force, log_path, [p.stem for p in all_nbs])
                failed = record["status"] == "failed"
                artifacts = record.get("artifacts", {})
            # What follows depends on what this step wrote: a rerun that rewrote its artifacts reruns them too.
            upstream += fp + _digest(artifacts)
    finally:
        if env_reports is None:
            os.environ.pop("PHENOFACE_REPORTS", None)
        else:
            os.environ["PHENOFACE_REPORTS"] = env_reports
    index = build_index(out_root, notebooks=notebook_dir, profile=name)
    print(f"[phenoface] index: {index}")
    log = read_log(log_path)
    log["failed"] = failed
    return log


def _run_step(nb: Path, previous: dict, fp: str, params_file: Path, out_root: Path, data_dir: Path, profile: str,
              timeout: int, overrides: dict | None, html: bool, force: bool, log_path: Path, stems: list[str]) -> dict:
    executed, rendered = out_root / f"{nb.stem}.ipynb", out_root / f"{nb.stem}.html"
    with step_lock(out_root, nb.stem):
        if (not force and previous.get("status") == "ok" and previous.get("fingerprint") == fp
                and executed.is_file() and (rendered.is_file() or not html)
                and report_files(out_root, nb.stem) == previous.get("reports")
                and artifacts_intact(data_dir, previous.get("artifacts", {}))):
            print(f"[phenoface] {nb.stem}: inputs, parameters and artifacts unchanged, skipped (use --force to rerun)")
            return previous
        with data_locks(data_dir, stems, nb.stem):  # waits while another run reads or writes them
            why = {"degraded": " (it was degraded last time)", "running": " (the last run did not finish)"}
            print(f"[phenoface] {nb.stem}: running with {params_file.name} (timeout {timeout} s per cell)"
                  f"{why.get(previous.get('status'), '')}", flush=True)
            for folder in (out_root, data_dir):
                clean_partials(folder)  # left by a killed earlier run
            clear_step_outputs(out_root, nb.stem)
            start = time.time()
            update_log(log_path, profile, nb.stem, {"status": "running", "fingerprint": fp, "pid": os.getpid(),
                                                    "started": start})
            record = {"fingerprint": fp}
            try:
                execute(nb, executed, params_file, timeout, overrides)
                if html:
                    render_html(executed, rendered)
                    record.update(_slides(executed, out_root / f"{nb.stem}.slides.html"))
            except Exception as exc:  # record, render the index, then report failure
                record.update(status="failed", seconds=time.time() - start, error=str(exc))
                print(f"[phenoface] {nb.stem}: FAILED\n{exc}", file=sys.stderr)
            except BaseException:  # killed: the step stays "running", so the next run redoes it
                raise
            else:
                said = read_status(nb.stem, out_root / "status")
                status = "degraded" if said.get("status") == "degraded" else "ok"
                record.update(status=status, seconds=time.time() - start, artifacts=artifacts_since(data_dir, start),
                              reports=report_files(out_root, nb.stem))
                if status == "degraded":
                    record["reasons"] = said.get("reasons", [])
                    print(f"[phenoface] {nb.stem}: DEGRADED in {record['seconds']:.0f} s (it will rerun next time): "
                          + "; ".join(record["reasons"]), file=sys.stderr, flush=True)
                else:
                    print(f"[phenoface] {nb.stem}: done in {record['seconds']:.0f} s", flush=True)
            update_log(log_path, profile, nb.stem, record)
            return record


def _terminate(signum, frame):  # noqa: ARG001
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m phenoface.runner", description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="quick", help="a profile name (notebooks/params/<name>.yaml) or a YAML path")
    ap.add_argument("--only", nargs="+", action="extend", help="notebook stems or number prefixes, e.g. 00 02_kg_profiles")
    ap.add_argument("--force", action="store_true", help="rerun steps whose inputs did not change")
    ap.add_argument("--timeout", type=int, help="papermill execution timeout per cell, seconds")
    ap.add_argument("--reports", type=Path, help="output folder (default: reports/)")
    ap.add_argument("--no-html", action="store_true")
    ap.add_argument("--set", nargs="*", default=[], metavar="NAME=VALUE",
                    help="parameter overrides, each value read as YAML, e.g. TRAIN_MODEL=true UNET_STEPS=4000")
    args = ap.parse_args(argv)
    overrides = {k: yaml.safe_load(v) for k, v in (item.split("=", 1) for item in args.set)} or None
    # SIGTERM runs the same clean-up as Ctrl-C: papermill and its kernel stop, temp files go.
    signal.signal(signal.SIGTERM, _terminate)
    try:
        log = run(args.profile, args.only, args.force, args.timeout, args.reports, overrides, html=not args.no_html)
    except StepBusy as err:
        print(f"[phenoface] {err}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        print("[phenoface] stopped; the interrupted step stays 'running' in run.json and reruns next time",
              file=sys.stderr)
        return 130
    return 1 if log.get("failed") else 0


if __name__ == "__main__":
    raise SystemExit(main())
