"""The papermill runner: order, skip-when-unchanged, failure handling, secret scrubbing, bad parameters,
degraded steps, kills, locks and parallel runs."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from phenoface import publish, runner
from phenoface.report import record_status

ROOT = Path(__file__).resolve().parents[1]


def _notebook(path, *sources):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    params = nbformat.v4.new_code_cell(sources[0])
    params.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell(f"# {path.stem}"), params] + [nbformat.v4.new_code_cell(s) for s in sources[1:]]
    nbformat.write(nb, path)


@pytest.fixture
def project(tmp_path, monkeypatch):
    # The package's own digest is tested by the notebook smoke runs; here it must not move under the test.
    monkeypatch.setattr(runner, "_package_digest", lambda: "package")
    nbs = tmp_path / "notebooks"
    (nbs / "params").mkdir(parents=True)
    # A complete profile (the schema is checked before anything runs), with its data kept in tmp_path.
    shutil.copy(ROOT / "notebooks" / "params" / "smoke.yaml", nbs / "params" / "smoke.yaml")
    _notebook(nbs / "00_a.ipynb", "PROFILE = 'quick'\nSEED = 1\nDATA_DIR = 'x'",
              "import os\nfrom pathlib import Path\nfrom phenoface.report import record_metrics\n"
              "record_metrics('00_a', {'seed': SEED, 'profile': PROFILE})\n"
              "Path(DATA_DIR).mkdir(parents=True, exist_ok=True); (Path(DATA_DIR) / 'a.txt').write_text('a')\n"
              "print('key is', os.environ.get('PHENOFACE_TEST_API_KEY'))")
    _notebook(nbs / "01_b.ipynb", "SEED = 1", "x = SEED + 1")
    return tmp_path


def _statuses(log, *stems):
    return [log["steps"][s]["status"] for s in stems]


def test_runs_in_order_then_skips_unchanged(project, monkeypatch, capsys):
    monkeypatch.setenv("PHENOFACE_TEST_API_KEY", "sk-test-0123456789abcdef")
    reports = project / "reports"
    log = runner.run("smoke", reports=reports, notebook_dir=project / "notebooks")
    assert not log["failed"]
    assert _statuses(log, "00_a", "01_b") == ["ok", "ok"]
    assert log["steps"]["00_a"]["artifacts"] and "a.txt" in log["steps"]["00_a"]["artifacts"]
    metrics = json.loads((reports / "metrics" / "00_a.json").read_text())
    assert metrics == {"seed": 0, "profile": "smoke"}  # the profile file's values were injected
    html = (reports / "00_a.html").read_text()
    executed = (reports / "00_a.ipynb").read_text()
    for text in (html, executed):
        assert "sk-test-0123456789abcdef" not in text and "redacted" in text
    assert "00_a.html" in (reports / "index.html").read_text()

    capsys.readouterr()
    log = runner.run("smoke", reports=reports, notebook_dir=project / "notebooks")
    assert _statuses(log, "00_a", "01_b") == ["ok", "ok"]
    assert capsys.readouterr().out.count("unchanged, skipped") == 2

    # Changing the first notebook reruns it and everything after it.
    _notebook(project / "notebooks" / "00_a.ipynb", "PROFILE = 'quick'\nSEED = 2",
              "from phenoface.report import record_metrics\nrecord_metrics('00_a', {'seed': SEED})")
    capsys.readouterr()
    runner.run("smoke", reports=reports, notebook_dir=project / "notebooks", only=["01"])
    assert "01_b: running" in capsys.readouterr().out
    runner.run("smoke", reports=reports, notebook_dir=project / "notebooks", only=["01"], force=False)
    assert "01_b: inputs, parameters and artifacts unchanged, skipped" in capsys.readouterr().out


def test_a_report_shows_only_its_own_parameters_and_no_warning_boxes(project):
    """papermill gets only the parameters the notebook declares (its injected cell and HTML list those, not the
    whole profile), and the environment warnings every kernel would print (tqdm without ipywidgets, torch on a
    read-only array) and text progress bars stay out of the report."""
    import nbformat

    nbs, reports = project / "notebooks", project / "reports"
    for old in nbs.glob("*.ipynb"):
        old.unlink()
    _notebook(nbs / "00_a.ipynb", "PROFILE = 'quick'\nSEED = 1  # seed\nDATA_DIR: str = 'x'",
              "import numpy as np\nimport torch\nfrom tqdm.auto import tqdm\n"
              "a = np.zeros(3)\na.flags.writeable = False\nt = torch.from_numpy(a)\n"
              "total = sum(tqdm(range(3), desc='counting'))\nprint('total', total)")
    log = runner.run("smoke", reports=reports, notebook_dir=nbs, overrides={"COHORT_N": 64, "SEED": 5})
    assert log["steps"]["00_a"]["status"] == "ok", log["steps"]["00_a"].get("error")
    executed = nbformat.read(reports / "00_a.ipynb", as_version=4)
    injected = next(c for c in executed.cells if "injected-parameters" in c.metadata.get("tags", []))
    assert set(runner._ASSIGNED.findall(injected.source)) == {"PROFILE", "SEED", "DATA_DIR"}
    assert "SEED = 5" in injected.source and "COHORT_N" not in injected.source
    assert set(executed.metadata["papermill"]["parameters"]) == {"PROFILE", "SEED", "DATA_DIR"}
    streams = [o for c in executed.cells for o in c.get("outputs", []) if o.get("output_type") == "stream"]
    assert [o["text"] for o in streams] == ["total 3\n"], streams
    html = (reports / "00_a.html").read_text()
    assert 'data-mime-type="application/vnd.jupyter.stderr"' not in html and "Warning" not in html
    assert "LLM_BASE_URL" not in html and "COHORT_N" not in html


def test_environment_lines_leave_the_report_and_everything_else_stays():
    import nbformat

    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("x")
    cell.outputs = [
        nbformat.v4.new_output("stream", name="stderr", text="INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n"
                               "W0000 00:00:1796676827.747690    2996 landmark_projection_calculator.cc:186] Using\n"),
        nbformat.v4.new_output("stream", name="stderr", text="GPU available: False, used: False\nreal trouble\n"),
        nbformat.v4.new_output("stream", name="stderr", text="The config attributes {'thresholding': False} were passed "
                               "to DDIMInverseScheduler, but are not expected and will be ignored. Please verify\n"),
        nbformat.v4.new_output("stream", name="stdout", text="GPU available: False, used: False\n"),
        nbformat.v4.new_output("stream", name="stderr", text="RuntimeWarning: invalid value encountered in divide\n")]
    nb.cells = [cell]
    kept = publish.without_environment_lines(nb).cells[0].outputs
    assert [(o["name"], o["text"]) for o in kept] == [
        ("stderr", "real trouble\n"), ("stdout", "GPU available: False, used: False\n"),
        ("stderr", "RuntimeWarning: invalid value encountered in divide\n")]


def test_rewritten_artifact_or_unfinished_step_reruns(project, capsys):
    reports, nbs = project / "reports", project / "notebooks"
    runner.run("smoke", reports=reports, notebook_dir=nbs)
    written = project / "data" / "processed" / "smoke" / "a.txt"
    assert written.is_file()
    written.write_text("changed by a killed later run")
    capsys.readouterr()
    log = runner.run("smoke", reports=reports, notebook_dir=nbs)
    out = capsys.readouterr().out
    assert "00_a: running" in out and "01_b: running" in out, "a rewritten artifact reruns the step and those after it"
    assert _statuses(log, "00_a", "01_b") == ["ok", "ok"]

    # A step recorded as running (its process was killed) is never taken as done.
    record = json.loads((reports / "run.json").read_text())
    record["steps"]["01_b"]["status"] = "running"
    (reports / "run.json").write_text(json.dumps(record))
    runner.run("smoke", reports=reports, notebook_dir=nbs)
    assert "01_b: running with smoke.yaml (timeout 600 s per cell) (the last run did not finish)" in capsys.readouterr().out


def test_failure_is_recorded_and_stops_the_chain(project, capsys):
    _notebook(project / "notebooks" / "00_a.ipynb", "SEED = 1", "raise ValueError('broken step')")
    log = runner.run("smoke", reports=project / "reports", notebook_dir=project / "notebooks")
    assert log["failed"]
    assert log["steps"]["00_a"]["status"] == "failed" and "broken step" in log["steps"]["00_a"]["error"]
    assert "01_b" not in log["steps"] and "01_b: not run, an earlier step failed" in capsys.readouterr().err
    assert not (project / "reports" / "00_a.ipynb").exists()  # no half-written artifact
    assert not list((project / "reports").glob(".00_a*"))
    assert "failed" in (project / "reports" / "index.html").read_text()


def test_degraded_step_is_recorded_and_reruns(project, capsys):
    _notebook(project / "notebooks" / "01_b.ipynb", "SEED = 1",
              "from phenoface.report import record_status\n"
              "record_status('01_b', 'degraded', ['LLM unavailable: HTTP 500 (3 of 3 requests)'])")
    log = runner.run("smoke", reports=project / "reports", notebook_dir=project / "notebooks")
    assert not log["failed"]
    assert _statuses(log, "00_a", "01_b") == ["ok", "degraded"]
    assert log["steps"]["01_b"]["reasons"] == ["LLM unavailable: HTTP 500 (3 of 3 requests)"]
    assert "degraded" in (project / "reports" / "index.html").read_text()
    capsys.readouterr()
    runner.run("smoke", reports=project / "reports", notebook_dir=project / "notebooks")
    out = capsys.readouterr().out
    assert "00_a: inputs, parameters and artifacts unchanged" in out
    assert "01_b: running" in out and "degraded last time" in out
    with pytest.raises(ValueError, match="ok' or 'degraded"):
        record_status("01_b", "fine", status_dir=project / "s")


def test_a_steps_figures_are_only_what_its_last_run_wrote(project):
    """A figure drawn by one run (a patient photo, shown) and not by the next (not shown) is gone from the figures
    folder and from the index."""
    nbs, reports = project / "notebooks", project / "reports"
    _notebook(nbs / "00_a.ipynb", "SHOW_REAL_PATIENTS = False",
              "import matplotlib.pyplot as plt\nfrom phenoface.report import save_figure\n"
              "fig, ax = plt.subplots(); ax.plot([0, 1])\nsave_figure(fig, '00_a', 'cohort')\n"
              "if SHOW_REAL_PATIENTS:\n    save_figure(fig, '00_a', 'real_photo_landmarks')")
    runner.run("smoke", reports=reports, notebook_dir=nbs, only=["00"], overrides={"SHOW_REAL_PATIENTS": True})
    figures = reports / "figures" / "00_a"
    assert sorted(p.name for p in figures.iterdir()) == ["cohort.png", "real_photo_landmarks.png"]
    log = runner.run("smoke", reports=reports, notebook_dir=nbs, only=["00"], overrides={"SHOW_REAL_PATIENTS": False})
    assert log["steps"]["00_a"]["status"] == "ok"
    assert sorted(p.name for p in figures.iterdir()) == ["cohort.png"]
    index = (reports / "index.html").read_text()
    assert "figures/00_a/cohort.png" in index and "real_photo_landmarks" not in index
    # a failed run leaves nothing of the run before it to be taken for its own
    _notebook(nbs / "00_a.ipynb", "SHOW_REAL_PATIENTS = False", "raise ValueError('broken step')")
    runner.run("smoke", reports=reports, notebook_dir=nbs, only=["00"])
    assert not figures.exists() and not (reports / "metrics" / "00_a.json").exists()
    assert not (reports / "00_a.html").exists() and not (reports / "00_a.ipynb").exists()


def _by_hand(project, nb, out, **env):
    """papermill on a notebook outside the runner, as a student would: from notebooks/, no PHENOFACE_REPORTS."""
    clean = {k: v for k, v in os.environ.items() if k not in ("PHENOFACE_REPORTS", "PHENOFACE_ROOT")}
    proc = subprocess.run([sys.executable, "-m", "papermill", str(nb), str(out), "-k", "python3"], cwd=nb.parent,
                          env={**clean, **env}, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_a_notebook_run_by_hand_leaves_the_recorded_reports_alone(project, capsys):
    nbs, reports = project / "notebooks", project / "reports"
    (project / "run_all.sh").write_text("#!/bin/sh\n")  # a checkout: the hand run writes into it, nowhere else
    runner.run("smoke", reports=reports, notebook_dir=nbs, only=["00"])
    recorded = reports / "metrics" / "00_a.json"
    before = recorded.read_bytes(), recorded.stat().st_mtime_ns
    _by_hand(project, nbs / "00_a.ipynb", project / "by_hand.ipynb")
    assert (recorded.read_bytes(), recorded.stat().st_mtime_ns) == before
    mine = json.loads((reports / "interactive" / "metrics" / "00_a.json").read_text())
    assert mine == {"seed": 1, "profile": "quick"}  # the notebook's own defaults, recorded apart
    assert "not run by run_all.sh" in (project / "by_hand.ipynb").read_text()  # the notebook says where it wrote
    assert "interactive" not in (reports / "index.html").read_text()
    capsys.readouterr()
    runner.run("smoke", reports=reports, notebook_dir=nbs, only=["00"])
    assert "00_a: inputs, parameters and artifacts unchanged, skipped" in capsys.readouterr().out
    # whatever rewrites a recorded step's reports (an older version's hand run, a copy), the runner reruns it
    recorded.write_text(json.dumps({"seed": 1, "profile": "quick"}))
    log = runner.run("smoke", reports=reports, notebook_dir=nbs, only=["00"])
    assert "00_a: running" in capsys.readouterr().out
    assert log["steps"]["00_a"]["status"] == "ok" and json.loads(recorded.read_text())["profile"] == "smoke"
    stray = reports / "figures" / "00_a" / "from_elsewhere.png"
    stray.parent.mkdir(parents=True, exist_ok=True)
    stray.write_bytes(b"png")
    runner.run("smoke", reports=reports, notebook_dir=nbs, only=["00"])
    assert "00_a: running" in capsys.readouterr().out and not stray.exists()


def test_llm_endpoint_is_part_of_the_llm_step_fingerprint(monkeypatch, tmp_path):
    llm_step, other = tmp_path / "03_llm.ipynb", tmp_path / "02_kg.ipynb"
    monkeypatch.setenv("OPENAI_BASE_URL", "http://a:1/v1")
    before = runner._step_env(llm_step), runner._step_env(other)
    monkeypatch.setenv("OPENAI_BASE_URL", "http://b:1/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-never-in-a-fingerprint")
    after = runner._step_env(llm_step), runner._step_env(other)
    assert before[0] != after[0] and before[1] == after[1]
    assert "sk-never" not in after[0]


@pytest.mark.parametrize("edit, words", [
    ("COHORT_N: lots", ["COHORT_N", "'lots'", "integer"]),
    ("COHORT_N: -5", ["COHORT_N", "-5", "out of range", "x ≥ 16"]),
    ("COHORT_NN: 64", ["COHORT_NN: unknown parameter (did you mean COHORT_N?)"]),
    ("DATA_DIR: null", ["DATA_DIR"]),
    ("-DATA_DIR", ["DATA_DIR: missing"]),
    ("KG_MODEL: RotateE", ["KG_MODEL", "did you mean 'RotatE'"]),
    ("LLM_BANDS: child,teen", ["LLM_BANDS", "'teen'", "infant, child, adolescent, adult"]),
    ("RECOGNISER_GRID: 16by20", ["RECOGNISER_GRID", "'16by20'"]),
    ("LLM_THRESHOLD: 1.5", ["LLM_THRESHOLD", "out of range"]),
    ("LLM_BASE_URL: localhost:8000", ["LLM_BASE_URL", "http(s)://"]),
    ("PRIMEKG_PATH: /no/such/kg.csv", ["PRIMEKG_PATH", "does not exist"]),
    ("SD_MODEL_PATH: /no/such/stable-diffusion", ["SD_MODEL_PATH", "does not exist"]),
    ("REAL_PHOTOS: celeba\nRAW_DIR: /no/such/raw", ["RAW_DIR", "REAL_PHOTOS=celeba"]),
    ("SHOW_REAL_PATIENTS: yes please", ["SHOW_REAL_PATIENTS", "true or false"]),
])
def test_bad_parameter_stops_before_anything_runs(project, edit, words):
    path = project / "notebooks" / "params" / "smoke.yaml"
    lines = path.read_text().splitlines()
    if edit.startswith("-"):
        lines = [line for line in lines if not line.startswith(edit[1:] + ":")]
    else:
        names = {e.split(":")[0] for e in edit.splitlines()}
        lines = [line for line in lines if line.split(":")[0] not in names] + edit.splitlines()
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(SystemExit) as err:
        runner.run("smoke", reports=project / "reports", notebook_dir=project / "notebooks")
    message = str(err.value)
    for word in words:
        assert word in message
    assert "Nothing was run" in message
    assert not (project / "reports").exists()


def test_own_profile_by_name_or_path_and_overrides_are_checked(project, capsys):
    mine = project / "notebooks" / "params" / "mine.yaml"
    mine.write_text((project / "notebooks" / "params" / "smoke.yaml").read_text().replace("PROFILE: smoke", "PROFILE: mine"))
    log = runner.run("mine", reports=project / "r1", notebook_dir=project / "notebooks", only=["00"])
    assert log["profile"] == "mine" and _statuses(log, "00_a") == ["ok"]
    elsewhere = project / "elsewhere.yaml"
    shutil.copy(mine, elsewhere)
    log = runner.run(str(elsewhere), reports=project / "r2", notebook_dir=project / "notebooks", only=["00"])
    assert _statuses(log, "00_a") == ["ok"]
    with pytest.raises(SystemExit, match="Unknown profile 'nope'.*mine, smoke"):
        runner.run("nope", reports=project / "r3", notebook_dir=project / "notebooks")
    with pytest.raises(SystemExit, match="COHORT_N"):
        runner.run("mine", reports=project / "r3", notebook_dir=project / "notebooks", overrides={"COHORT_N": "lots"})


def test_selection_errors_name_known_notebooks(project):
    with pytest.raises(SystemExit, match="00_a"):
        runner.select(runner.notebooks(project / "notebooks"), ["07"])
    with pytest.raises(SystemExit, match="at least one notebook"):
        runner.select(runner.notebooks(project / "notebooks"), [""])


def test_only_without_a_value_is_an_error():
    proc = subprocess.run(["bash", str(ROOT / "run_all.sh"), "--only"], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PHENOFACE_VENV": sys.prefix})
    assert proc.returncode == 2 and "--only needs one or more notebooks" in proc.stderr
    with pytest.raises(SystemExit):
        runner.main(["--only"])


def test_second_run_of_the_same_step_is_refused(project):
    reports = project / "reports"
    with runner.step_lock(reports, "00_a"):
        with pytest.raises(runner.StepBusy, match=rf"00_a is already running .*PID {os.getpid()}"):
            runner.run("smoke", reports=reports, notebook_dir=project / "notebooks", only=["00"])


def _cli(project, *args, **kw):
    code = ("import sys; from phenoface.runner import main; "
            f"sys.exit(main(['--reports', {str(project / 'reports')!r}] + {list(args)!r}))")
    env = {**os.environ, "PHENOFACE_ROOT": str(project)}
    return subprocess.Popen([sys.executable, "-c", code], cwd=project, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)


@pytest.mark.slow
def test_a_step_waits_while_another_run_reads_what_it_writes(project):
    """01_b of another run on the same DATA_DIR is reading 00_a's artifacts: a run of 00_a waits, writes nothing
    meanwhile, and goes on once the reader is done."""
    data = project / "data" / "processed" / "smoke"
    stems = [p.stem for p in runner.notebooks(project / "notebooks")]
    with runner.data_locks(data, stems, "01_b"):
        proc = _cli(project, "--profile", "smoke", "--only", "00", "--no-html")
        waiting = proc.stderr.readline()  # blocks until the runner says why it waits
        assert "00_a: waiting until 01_b (PID" in waiting and "it reads what this step writes" in waiting, waiting
        assert not (data / "a.txt").exists() and proc.poll() is None
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert "00_a: done" in out and (data / "a.txt").read_text() == "a"
    log = json.loads((project / "reports" / "run.json").read_text())
    assert not any(a.startswith(".locks") for a in log["steps"]["00_a"]["artifacts"])  # locks are no artifacts
    # and the other way round: a step waits while an earlier step it reads from is being rewritten
    with runner.data_locks(data, stems, "00_a"):
        proc = _cli(project, "--profile", "smoke", "--only", "01", "--no-html", "--force")
        waiting = proc.stderr.readline()
        assert "01_b: waiting until 00_a (PID" in waiting and "this step reads what 00_a writes" in waiting, waiting
    assert proc.wait(timeout=300) == 0


@pytest.mark.slow
def test_parallel_steps_keep_every_record(project):
    procs = [_cli(project, "--profile", "smoke", "--only", stem, "--no-html") for stem in ("00", "01")]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    log = json.loads((project / "reports" / "run.json").read_text())
    assert _statuses(log, "00_a", "01_b") == ["ok", "ok"]


@pytest.mark.slow
def test_sigterm_stops_the_step_cleanly_and_the_rerun_redoes_it(project):
    _notebook(project / "notebooks" / "01_b.ipynb", "SEED = 1", "import time\ntime.sleep(120)")
    proc = _cli(project, "--profile", "smoke", "--no-html")
    log_path = project / "reports" / "run.json"
    deadline = time.time() + 120
    while time.time() < deadline:
        steps = json.loads(log_path.read_text())["steps"] if log_path.is_file() else {}
        if steps.get("01_b", {}).get("status") == "running" and list((project / "reports").glob(".01_b.ipynb*")):
            break
        time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("the step never started: " + proc.communicate()[1])
    time.sleep(3)  # the kernel is inside time.sleep now
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "stopped; the interrupted step stays 'running'" in err
    leftovers = [p.name for p in (project / "reports").iterdir() if p.name.startswith(".01_b")]
    assert leftovers == [], "no partial notebook stays in reports/"
    assert json.loads(log_path.read_text())["steps"]["01_b"]["status"] == "running"
    _notebook(project / "notebooks" / "01_b.ipynb", "SEED = 1", "x = 1")
    proc = _cli(project, "--profile", "smoke", "--no-html")
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert "01_b: running" in out and "00_a: inputs, parameters and artifacts unchanged" in out


def test_new_answers_in_the_study_database_change_notebook_09s_fingerprint(tmp_path):
    """A rerun after raters answered more must not be skipped: the answers file (and its WAL) is an input."""
    from phenoface.runner import _step_inputs

    db = tmp_path / "answers.sqlite"
    db.write_bytes(b"x")
    nb = tmp_path / "09_reader_study.ipynb"
    params = {"STUDY_ANSWERS": str(db)}
    first = _step_inputs(nb, params, tmp_path)
    assert first and _step_inputs(tmp_path / "07_evaluate.ipynb", params, tmp_path) == ""
    (tmp_path / "answers.sqlite-wal").write_bytes(b"new rows")
    assert _step_inputs(nb, params, tmp_path) != first
    assert _step_inputs(nb, {"STUDY_ANSWERS": ""}, tmp_path) == ""


def test_set_on_the_command_line_becomes_overrides(monkeypatch):
    seen = {}

    def fake_run(profile, only, force, timeout, reports, overrides, html):
        seen.update(profile=profile, only=only, overrides=overrides)
        return {"failed": False}

    monkeypatch.setattr(runner, "run", fake_run)
    monkeypatch.setattr(runner.signal, "signal", lambda *a: None)  # leave pytest's own SIGTERM handling alone
    assert runner.main(["--profile", "smoke", "--only", "05", "--set", "TRAIN_MODEL=true", "UNET_STEPS=40",
                        "ZERO_SHOT_DISEASES=OMIM:1,OMIM:2"]) == 0
    assert seen["overrides"] == {"TRAIN_MODEL": True, "UNET_STEPS": 40, "ZERO_SHOT_DISEASES": "OMIM:1,OMIM:2"}
    assert runner.main(["--only", "00"]) == 0 and seen["overrides"] is None
