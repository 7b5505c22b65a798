"""The papermill runner: order, skip-when-unchanged, failure handling, secret scrubbing."""
import json

import nbformat
import pytest

from phenoface import runner


def _notebook(path, *sources):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    params = nbformat.v4.new_code_cell(sources[0])
    params.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell(f"# {path.stem}"), params] + [nbformat.v4.new_code_cell(s) for s in sources[1:]]
    nbformat.write(nb, path)


@pytest.fixture
def project(tmp_path):
    nbs = tmp_path / "notebooks"
    (nbs / "params").mkdir(parents=True)
    (nbs / "params" / "smoke.yaml").write_text("PROFILE: smoke\nSEED: 0\n")
    _notebook(nbs / "00_a.ipynb", "PROFILE = 'quick'\nSEED = 1",
              "import os\nfrom phenoface.report import record_metrics\n"
              "record_metrics('00_a', {'seed': SEED, 'profile': PROFILE})\n"
              "print('key is', os.environ.get('PHENOFACE_TEST_API_KEY'))")
    _notebook(nbs / "01_b.ipynb", "SEED = 1", "x = SEED + 1")
    return tmp_path


def test_runs_in_order_then_skips_unchanged(project, monkeypatch, capsys):
    monkeypatch.setenv("PHENOFACE_TEST_API_KEY", "sk-test-0123456789abcdef")
    reports = project / "reports"
    log = runner.run("smoke", reports=reports, notebook_dir=project / "notebooks")
    assert not log["failed"]
    assert [log["steps"][s]["status"] for s in ("00_a", "01_b")] == ["ok", "ok"]
    metrics = json.loads((reports / "metrics" / "00_a.json").read_text())
    assert metrics == {"seed": 0, "profile": "smoke"}  # the profile file's values were injected
    html = (reports / "00_a.html").read_text()
    executed = (reports / "00_a.ipynb").read_text()
    for text in (html, executed):
        assert "sk-test-0123456789abcdef" not in text and "redacted" in text
    assert "00_a.html" in (reports / "index.html").read_text()

    log = runner.run("smoke", reports=reports, notebook_dir=project / "notebooks")
    assert [log["steps"][s]["status"] for s in ("00_a", "01_b")] == ["unchanged", "unchanged"]

    # Changing the first notebook reruns it and everything after it.
    _notebook(project / "notebooks" / "00_a.ipynb", "PROFILE = 'quick'\nSEED = 2",
              "from phenoface.report import record_metrics\nrecord_metrics('00_a', {'seed': SEED})")
    log = runner.run("smoke", reports=reports, notebook_dir=project / "notebooks", only=["01"])
    assert log["steps"]["01_b"]["status"] == "ok"
    log = runner.run("smoke", reports=reports, notebook_dir=project / "notebooks", only=["01"], force=False)
    assert log["steps"]["01_b"]["status"] == "unchanged"


def test_failure_is_recorded_and_stops_the_chain(project):
    _notebook(project / "notebooks" / "00_a.ipynb", "SEED = 1", "raise ValueError('broken step')")
    log = runner.run("smoke", reports=project / "reports", notebook_dir=project / "notebooks")
    assert log["failed"]
    assert log["steps"]["00_a"]["status"] == "failed" and "broken step" in log["steps"]["00_a"]["error"]
    assert log["steps"]["01_b"]["status"] == "skipped"
    assert not (project / "reports" / "00_a.ipynb").exists()  # no half-written artifact
    assert "failed" in (project / "reports" / "index.html").read_text()


def test_selection_errors_name_known_notebooks(project):
    with pytest.raises(SystemExit, match="00_a"):
        runner.select(runner.notebooks(project / "notebooks"), ["07"])
