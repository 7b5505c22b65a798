import json

import matplotlib.pyplot as plt
import pytest

from phenoface import report


def test_record_metrics_is_flat_and_typed(tmp_path):
    path = report.record_metrics("00_data", {"n": 3, "rate": 0.5, "model": "x", "bad": float("nan"), "flag": True},
                                 metrics_dir=tmp_path)
    data = json.loads(path.read_text())
    assert data == {"n": 3, "rate": 0.5, "model": "x", "bad": "nan", "flag": 1}
    with pytest.raises(TypeError, match="'nested'"):
        report.record_metrics("00_data", {"nested": {"a": 1}}, metrics_dir=tmp_path)
    assert report.read_metrics("00_data", tmp_path)["n"] == 3


def test_index_lists_metrics_figures_and_status(tmp_path):
    nbs = tmp_path / "nbs"
    nbs.mkdir()
    (nbs / "00_data.ipynb").write_text(json.dumps({"cells": [{"cell_type": "markdown", "source": "# Data\ntext"}]}))
    reports = tmp_path / "reports"
    report.record_metrics("00_data", {"cohort_faces_per_s": 1234.5}, metrics_dir=reports / "metrics")
    fig, ax = plt.subplots()
    ax.plot([0, 1])
    report.save_figure(fig, "00_data", "a_line", figures_dir=reports / "figures")
    (reports / "00_data.html").write_text("<html></html>")
    (reports / "run.json").write_text(json.dumps({"profile": "smoke", "steps": {"00_data": {"status": "ok", "seconds": 3}}}))
    page = report.build_index(reports, notebooks=nbs).read_text()
    assert "href='00_data.html'" in page and "Data" in page
    assert "cohort_faces_per_s" in page and "1234" in page
    assert "figures/00_data/a_line.png" in page
    assert "status ok" in page


def test_only_a_notebook_that_declares_slides_gets_them(tmp_path):
    import json

    from phenoface.slides import wants_slides

    def nb(source):
        return {"cells": [{"cell_type": "code", "metadata": {"tags": ["parameters"]}, "source": source}],
                "metadata": {"papermill": {"parameters": {"SLIDES": True, "SEED": 0}}}}

    (tmp_path / "a.ipynb").write_text(json.dumps(nb("SEED = 0\nSLIDES = True\n")))
    (tmp_path / "b.ipynb").write_text(json.dumps(nb("SEED = 0\n")))  # the profile has SLIDES, this notebook does not
    assert wants_slides(tmp_path / "a.ipynb") and not wants_slides(tmp_path / "b.ipynb")


def test_index_of_a_skipped_run_imports_no_model_libraries(tmp_path):
    """A rerun that skips every step still rebuilds the index; asking torch, diffusers and lightning for their
    versions by importing them took seconds of that rerun. The versions come from the installed metadata."""
    import subprocess
    import sys

    (tmp_path / "run.json").write_text(json.dumps({"profile": "smoke", "steps": {}}))
    code = ("import sys; from phenoface.report import build_index; "
            f"page = build_index({str(tmp_path)!r}, notebooks={str(tmp_path)!r}).read_text(); "
            "print(sorted(m for m in ('torch', 'diffusers', 'lightning', 'pandas') if m in sys.modules)); "
            "print('torch 2' in page or 'torch ' in page)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True).stdout
    imported, named = out.strip().splitlines()
    assert imported == "['pandas']" and named == "True"
