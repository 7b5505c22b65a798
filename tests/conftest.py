import os
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory):
    """Every notebook executed once with params/smoke.yaml into a temporary reports/ and data/ tree."""
    from phenoface.runner import run

    base = tmp_path_factory.mktemp("smoke")
    reports, data = base / "reports", base / "data"
    log = run("smoke", reports=reports, overrides={"DATA_DIR": str(data)}, force=True)
    return {"log": log, "reports": reports, "data": data}
