"""A checkout runs itself: run_all.sh in a second clone, with the first clone's environment, runs the
second clone's notebooks, params and lib/ and writes only the second clone's reports."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _snapshot(folder: Path) -> dict:
    if not folder.is_dir():
        return {}
    return {p.relative_to(folder).as_posix(): p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()}


def _second_clone(dest: Path) -> Path:
    for rel in ("run_all.sh", "pyproject.toml", "lib/constraints.txt", "notebooks/params/smoke.yaml"):
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, dest / rel)
    shutil.copytree(ROOT / "lib" / "phenoface", dest / "lib" / "phenoface",
                    ignore=shutil.ignore_patterns("__pycache__"))
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    params = nbformat.v4.new_code_cell("PROFILE = 'quick'")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(
        "import phenoface\nfrom phenoface.config import repo_root\nfrom phenoface.report import record_metrics\n"
        "record_metrics('00_where', {'package': phenoface.__file__, 'root': str(repo_root()), 'profile': PROFILE})")]
    nbformat.write(nb, dest / "notebooks" / "00_where.ipynb")
    return dest


def test_second_clone_runs_itself_with_the_first_clones_environment(tmp_path):
    venv = Path(sys.prefix)
    want = subprocess.run("cat pyproject.toml lib/constraints.txt | sha256sum | cut -c1-16", shell=True, cwd=ROOT,
                          capture_output=True, text=True).stdout.strip()
    stamp = venv / ".phenoface-setup"
    if not stamp.is_file() or stamp.read_text().strip() != want:
        pytest.skip("needs the environment run_all.sh set up (its set-up stamp), or run_all.sh would reinstall")
    clone = _second_clone(tmp_path / "clone")
    before = {name: _snapshot(ROOT / name) for name in ("reports", "notebooks")}
    env = {k: v for k, v in os.environ.items() if k not in ("PHENOFACE_ROOT", "PYTHONPATH", "PHENOFACE_REPORTS")}
    proc = subprocess.run(["bash", str(clone / "run_all.sh"), "--profile", "smoke", "--only", "00"],
                          cwd=tmp_path, env={**env, "PHENOFACE_VENV": str(venv)}, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    metrics = json.loads((clone / "reports" / "metrics" / "00_where.json").read_text())
    assert Path(metrics["package"]).resolve().is_relative_to(clone / "lib"), metrics
    assert Path(metrics["root"]).resolve() == clone.resolve()
    assert metrics["profile"] == "smoke"
    assert json.loads((clone / "reports" / "run.json").read_text())["steps"]["00_where"]["status"] == "ok"
    assert {name: _snapshot(ROOT / name) for name in ("reports", "notebooks")} == before, \
        "the first clone's notebooks and reports were touched"


def test_papermill_in_a_second_clone_writes_that_clone(tmp_path):
    """papermill run by hand in a second clone's notebooks/, with this checkout's package (its editable install,
    here PYTHONPATH): the notebook writes the second clone's reports (apart from recorded runs), never this one's."""
    clone = _second_clone(tmp_path / "clone")
    before = _snapshot(ROOT / "reports")
    env = {k: v for k, v in os.environ.items() if k not in ("PHENOFACE_ROOT", "PHENOFACE_REPORTS")}
    env["PYTHONPATH"] = str(ROOT / "lib")
    proc = subprocess.run([sys.executable, "-m", "papermill", "00_where.ipynb", str(tmp_path / "out.ipynb"),
                           "-k", "python3"], cwd=clone / "notebooks", env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    metrics = json.loads((clone / "reports" / "interactive" / "metrics" / "00_where.json").read_text())
    assert Path(metrics["package"]).resolve().is_relative_to(ROOT / "lib")  # the other checkout's code ...
    assert Path(metrics["root"]).resolve() == clone.resolve()  # ... writes the checkout it runs in
    assert _snapshot(ROOT / "reports") == before, "the package's own checkout was written to"
