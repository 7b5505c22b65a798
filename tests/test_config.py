import json
from pathlib import Path

import numpy as np
import pytest

from phenoface import config


def test_atomic_write_leaves_old_file_on_failure(tmp_path):
    target = tmp_path / "m.json"
    config.write_json(target, {"a": 1})
    with pytest.raises(RuntimeError):
        with config.atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash mid-write")
    assert json.loads(target.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]


def test_partials_of_dead_writers_are_cleaned(tmp_path):
    import subprocess

    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = tmp_path / "sub" / f".model.safetensors{config.PARTIAL}{dead.pid}-abc.safetensors"
    live = tmp_path / f".m.json{config.PARTIAL}{__import__('os').getpid()}-xyz.json"
    stale.parent.mkdir()
    stale.write_text("half"), live.write_text("half")
    (tmp_path / "keep.json").write_text("{}")
    assert config.clean_partials(tmp_path) == [stale]
    assert live.exists() and (tmp_path / "keep.json").exists()
    with config.atomic_path(tmp_path / "n.json") as tmp:
        assert config.PARTIAL in tmp.name and str(__import__("os").getpid()) in tmp.name


def test_seed_everything_is_deterministic():
    a = config.seed_everything(3).random(4)
    b = config.seed_everything(3).random(4)
    assert np.array_equal(a, b)
    with pytest.raises(ValueError, match="SEED"):
        config.seed_everything(-1)


def test_repo_root_is_the_checkout_a_notebook_runs_in(tmp_path, monkeypatch):
    """Without PHENOFACE_ROOT (a notebook run by hand), the checkout the current directory is in decides, not the
    checkout whose editable install supplies the package; outside any checkout, the package's own checkout."""
    from phenoface.report import recorded_reports_dir, reports_dir

    second = tmp_path / "second"
    (second / "notebooks").mkdir(parents=True)
    (second / "run_all.sh").write_text("#!/bin/sh\n")
    monkeypatch.delenv("PHENOFACE_ROOT", raising=False)
    monkeypatch.delenv("PHENOFACE_REPORTS", raising=False)
    monkeypatch.chdir(second / "notebooks")
    assert config.repo_root() == second.resolve()
    assert reports_dir() == second.resolve() / "reports" / "interactive"
    assert recorded_reports_dir() == second.resolve() / "reports"
    monkeypatch.setenv("PHENOFACE_REPORTS", str(tmp_path / "r"))  # what the runner sets for its notebooks
    assert reports_dir() == recorded_reports_dir() == (tmp_path / "r").resolve()
    monkeypatch.chdir(tmp_path)
    package_checkout = Path(config.__file__).resolve().parents[2]
    assert config.repo_root() == package_checkout
    monkeypatch.setenv("PHENOFACE_ROOT", str(second))
    assert config.repo_root() == second.resolve()
