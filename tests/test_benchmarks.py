"""The benchmarks' and studies' shared helper: where results go, how they are written, and the results page
that shows exactly what the scripts wrote (and "not run" for the others); the scripts run as modules."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from phenoface import benchmarks
from phenoface.config import write_json

ROOT = Path(__file__).resolve().parents[1]


def test_results_path_is_per_group_and_script(tmp_path):
    assert benchmarks.results_path("bench", "cohort", root=tmp_path) == tmp_path / "reports" / "bench" / "cohort.json"
    assert benchmarks.results_path("studies", "seeds", ".png", root=tmp_path).name == "seeds.png"
    with pytest.raises(ValueError, match="unknown group"):
        benchmarks.results_path("misc", "x")


def test_write_results_writes_json_atomically_and_prints(tmp_path, capsys):
    path = tmp_path / "deep" / "r.json"
    out = benchmarks.write_results({"images_per_s": 41.123456, "device": "cpu", "n": 3}, path)
    assert out == path and json.loads(path.read_text()) == {"images_per_s": 41.123456, "device": "cpu", "n": 3}
    printed = capsys.readouterr().out
    assert "images_per_s" in printed and "41.123" in printed and "cpu" in printed
    assert [p.name for p in path.parent.iterdir()] == ["r.json"]  # no temporary file left beside it


def test_results_file_belongs_to_the_longest_script_name():
    names = ["samplers", "sampling_faults", "sd", "study_load"]
    assert benchmarks._owner("samplers", names) == "samplers"
    assert benchmarks._owner("samplers_guidance", names) == "samplers"
    assert benchmarks._owner("sampling_faults", names) == "sampling_faults"
    assert benchmarks._owner("sdxl", names) is None


def _script(folder: Path, name: str, doc: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.py").write_text(f'"""{doc}\n\n    usage line\n"""\nraise SystemExit("never imported")\n')


def test_page_shows_what_the_scripts_wrote_and_not_run_for_the_rest(tmp_path):
    _script(tmp_path / "bench", "speed", "How fast is it?")
    _script(tmp_path / "bench", "__init__", "package")
    _script(tmp_path / "bench", "page", "the page itself")
    _script(tmp_path / "studies", "sweep", "Which setting?")
    _script(tmp_path / "studies", "curve", "How long to train?")
    res = tmp_path / "reports"
    write_json(res / "bench" / "speed.json", {"images_per_s": 41.123456, "device": "cpu",
                                                          "nested": {"a": 1, "ci": [0.5, 0.75]}})
    write_json(res / "studies" / "sweep_guidance.json",
                          {"split": "validation", "rows": [{"scale": 3, "top1": 0.3}, {"scale": 7.5, "top1": 0.37}]})
    write_json(res / "studies" / "orphan.json", {"x": 2})
    (res / "studies" / "sweep_guidance.png").write_bytes(b"png")
    page = benchmarks.results_page(tmp_path, tmp_path / "reports" / "results.md")

    assert "python -m bench.speed" in page and "How fast is it?" in page
    assert "### `python -m bench.page`" not in page and "__init__" not in page
    speed = page.split("python -m bench.speed")[1].split("###")[0]
    assert "| `images_per_s` | 41.12 |" in speed and "| `nested.a` | 1 |" in speed and "[0.5, 0.75]" in speed
    sweep = page.split("python -m studies.sweep")[1].split("###")[0]
    assert "reports/studies/sweep_guidance.json" in sweep and "| 7.5 | 0.37 |" in sweep
    assert "![sweep_guidance](studies/sweep_guidance.png)" in sweep
    curve = page.split("python -m studies.curve")[1].split("###")[0]
    assert "*not run*" in curve and "|" not in curve
    assert "reports/studies/orphan.json` (no script of that name)" in page


def test_page_says_so_when_a_results_file_is_unreadable(tmp_path):
    _script(tmp_path / "bench", "speed", "How fast?")
    (tmp_path / "reports" / "bench").mkdir(parents=True)
    (tmp_path / "reports" / "bench" / "speed.json").write_text("{not json")
    assert "unreadable" in benchmarks.results_page(tmp_path)


def test_every_script_writes_where_the_page_reads():
    for group in benchmarks.GROUPS:
        assert (ROOT / group / "__init__.py").is_file()
        found = benchmarks.scripts(ROOT, group)
        assert found, group
        for name, doc in found.items():
            source = (ROOT / group / f"{name}.py").read_text()
            assert doc, f"{group}/{name}.py has no docstring"
            assert f'results_path("{group}", "{name}")' in source, f"{group}/{name}.py: default --out"
            assert "sys.path" not in source, f"{group}/{name}.py edits sys.path"
            assert not re.search(r"^\s*(from|import) (bench|studies)\b", source, re.M), f"{group}/{name}.py imports a script"


@pytest.mark.slow
def test_scripts_run_as_modules_from_the_checkout(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PHENOFACE_ROOT": str(ROOT)}
    out = tmp_path / "cohort.json"
    subprocess.run([sys.executable, "-m", "bench.cohort", "--n", "16", "--skip-likeness", "--out", str(out)],
                   cwd=ROOT, env=env, check=True, capture_output=True, text=True)
    assert json.loads(out.read_text())["n"] == 16
    page = tmp_path / "results.md"
    subprocess.run([sys.executable, "-m", "bench.page", "--out", str(page)], cwd=ROOT, env=env, check=True,
                   capture_output=True, text=True)
    text = page.read_text()
    assert "python -m bench.cohort" in text and "python -m studies.samplers" in text
