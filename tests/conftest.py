import os
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
if os.environ.get("PYTEST_XDIST_WORKER"):
    # pytest-xdist (run_all.sh --test): the cores are shared out between the workers before torch is imported
    # (and the notebook kernels they start inherit it): oversubscribed OpenMP threads spin and slow both workers.
    _threads = str(max(1, (os.cpu_count() or 1) // int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))))
    for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_var, _threads)

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


# The tests that read the one session-wide smoke run (every notebook, executed once per process): under
# pytest-xdist they must share a worker, or each worker would run the notebooks again.
SMOKE_MODULES = ("tests/test_notebooks.py", "tests/test_browser.py")


def _module(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def pytest_collection_modifyitems(config, items):
    strays = [item.nodeid for item in items if "smoke_run" in getattr(item, "fixturenames", ())
              and _module(item.nodeid) not in SMOKE_MODULES]
    if strays:
        raise pytest.UsageError(f"{', '.join(strays)} use smoke_run outside {SMOKE_MODULES}: move them there or add "
                                "their module to SMOKE_MODULES in tests/conftest.py")


@pytest.hookimpl(optionalhook=True)  # a hook of pytest-xdist, which may be absent
def pytest_xdist_make_scheduler(config, log):
    """``--dist loadscope`` (run_all.sh --test) with the smoke modules as one scope: a module's tests stay on one
    worker (its module fixtures are built once) and the smoke run's readers all go to one worker."""
    if config.getvalue("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class SmokeTogether(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return "smoke" if _module(nodeid) in SMOKE_MODULES else _module(nodeid)

    return SmokeTogether(config, log)
