"""The published run: HTML pages without secrets, slides only where a notebook asks, and the index page."""
import json

import matplotlib.pyplot as plt

from phenoface.publish import build_index, scrub_secrets, wants_slides
from phenoface.report import record_metrics, save_figure


def test_scrub_secrets_hides_long_secret_values_only(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-verysecret123")
    monkeypatch.setenv("MY_TOKEN", "short")  # under 8 characters: too common a string to replace
    monkeypatch.setenv("MODEL_NAME", "sk-verysecret456")
    text = scrub_secrets("key sk-verysecret123, token short, model sk-verysecret456")
    assert text == "key <OPENAI_API_KEY redacted>, token short, model sk-verysecret456"


def test_index_lists_metrics_figures_and_status(tmp_path):
    nbs = tmp_path / "nbs"
    nbs.mkdir()
    (nbs / "00_data.ipynb").write_text(json.dumps({"cells": [{"cell_type": "markdown", "source": "# Data\ntext"}]}))
    reports = tmp_path / "reports"
    record_metrics("00_data", {"cohort_faces_per_s": 1234.5}, metrics_dir=reports / "metrics")
    fig, ax = plt.subplots()
    ax.plot([0, 1])
    save_figure(fig, "00_data", "a_line", figures_dir=reports / "figures")
    (reports / "00_data.html").write_text("<html></html>")
    (reports / "run.json").write_text(json.dumps({"profile": "smoke", "steps": {"00_data": {"status": "ok", "seconds": 3}}}))
    page = build_index(reports, notebooks=nbs).read_text()
    assert "href='00_data.html'" in page and "Data" in page
    assert "cohort_faces_per_s" in page and "1234" in page
    assert "figures/00_data/a_line.png" in page
    assert "status ok" in page


def test_only_a_notebook_that_declares_slides_gets_them(tmp_path):
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
    code = ("import sys; from phenoface.publish import build_index; "
            f"page = build_index({str(tmp_path)!r}, notebooks={str(tmp_path)!r}).read_text(); "
            "print(sorted(m for m in ('torch', 'diffusers', 'lightning', 'pandas') if m in sys.modules)); "
            "print('torch 2' in page or 'torch ' in page)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True).stdout
    imported, named = out.strip().splitlines()
    assert imported == "['pandas']" and named == "True"


def test_index_header_shows_run_and_headlines(tmp_path):
    reports = tmp_path / "reports"
    record_metrics("07_evaluate", {"generated_memorisation_rate": 0.0}, reports / "metrics")
    (reports / "run.json").write_text(json.dumps({"profile": "quick", "steps": {"07_evaluate": {"status": "ok"}}}))
    html = build_index(reports, notebooks=tmp_path).read_text()
    assert "What was run" in html and "quick" in html
    assert "memorisation rate, generated faces" in html and "pass" in html
