"""The ship command: one program with a sub-command per shipped checkpoint, the options each had, and the
runner called as a child process with the same profile, notebooks, timeout and overrides."""
import sys
from pathlib import Path

import pytest

from phenoface import ship
from phenoface.baselines import METHODS, SHIPPED_BASELINES
from phenoface.llm import packaged as llm_replies
from phenoface.model.pipeline import SHIPPED
from phenoface.phenotypes.packaged import COMMAND, FOLDER, RECIPE


def test_sub_commands_keep_their_options_and_defaults():
    g = ship.parser().parse_args(["generator"])
    assert (g.profile, g.timeout, g.out, g.set, g.reuse_inputs) == ("quick", 6 * 3600, SHIPPED, [], False)
    g = ship.parser().parse_args(["generator", "--set", "UNET_STEPS=4000", "AE_STEPS=1500", "--reuse-inputs"])
    assert g.set == ["UNET_STEPS=4000", "AE_STEPS=1500"] and g.reuse_inputs and g.ship is ship.ship_generator
    b = ship.parser().parse_args(["baselines", "--method", "class"])
    assert (b.profile, b.method, b.no_ship, b.ship) == ("quick", ["class"], False, ship.ship_baselines)
    assert ship.parser().parse_args(["baselines"]).method == list(METHODS)
    i = ship.parser().parse_args(["instrument", "--n", "64", "--batch-size", "8"])
    assert i.out == FOLDER and i.n == 64 and i.batch_size == 8 and i.epochs == RECIPE["epochs"]
    assert COMMAND == "python -m phenoface.ship instrument"
    r = ship.parser().parse_args(["replies", "--profile", "smoke"])
    assert (r.profile, r.kg_profiles, r.out, r.ship) == ("smoke", None, llm_replies.FOLDER, ship.ship_replies)
    with pytest.raises(SystemExit):
        ship.parser().parse_args(["replies"])  # the profile names the file, so it is required
    with pytest.raises(SystemExit):
        ship.parser().parse_args([])  # a sub-command is required
    with pytest.raises(SystemExit):
        ship.parser().parse_args(["baselines", "--method", "warp"])


def test_runner_command_is_the_runners_own_cli():
    cmd = ship.runner_command("quick", ["05"], force=True, timeout=60, sets=["TRAIN_MODEL=true", "UNET_STEPS=4"])
    assert cmd == [sys.executable, "-m", "phenoface.runner", "--profile", "quick", "--only", "05", "--force",
                   "--timeout", "60", "--set", "TRAIN_MODEL=true", "UNET_STEPS=4"]
    assert ship.runner_command("smoke", ["00", "02"]) == [sys.executable, "-m", "phenoface.runner", "--profile",
                                                          "smoke", "--only", "00", "02"]


def test_generator_stops_when_notebook_05_fails(monkeypatch, capsys):
    calls = []

    def fake_run(profile, only, **kw):
        calls.append((profile, only, kw))
        return 1 if only == ["05"] else 0

    monkeypatch.setattr(ship, "run_notebooks", fake_run)
    assert ship.main(["generator", "--profile", "smoke", "--timeout", "9", "--set", "UNET_STEPS=4"]) == 1
    assert calls == [("smoke", ["00", "02", "03", "04"], {"timeout": 9}),
                     ("smoke", ["05"], {"force": True, "timeout": 9, "sets": ["TRAIN_MODEL=true", "UNET_STEPS=4"]})]
    assert "nothing shipped" in capsys.readouterr().out


def test_generator_stops_when_another_run_holds_a_step(monkeypatch):
    calls = []
    monkeypatch.setattr(ship, "run_notebooks", lambda profile, only, **kw: calls.append(only) or 3)
    assert ship.main(["generator"]) == 3 and calls == [["00", "02", "03", "04"]]


def test_baselines_ship_to_the_package_folder_by_default():
    assert SHIPPED_BASELINES == Path(ship.__file__).resolve().parent / "assets" / "baselines_quick"


def test_replies_records_the_ship_command(monkeypatch, tmp_path, capsys):
    made = {}

    def build(profile, kg_profiles, out, command):
        made.update(profile=profile, kg=kg_profiles, out=out, command=command)
        return tmp_path / "smoke.json"

    monkeypatch.setattr(llm_replies, "build", build)
    monkeypatch.setattr(llm_replies, "read_file", lambda path: {"provenance": {"replies": 2, "prompts": 2, "seconds": 1}})
    assert ship.main(["replies", "--profile", "smoke", "--kg-profiles", "kg.json", "--out", str(tmp_path)]) == 0
    assert made == {"profile": "smoke", "kg": "kg.json", "out": tmp_path,
                    "command": "python -m phenoface.ship replies --profile smoke --kg-profiles kg.json"}
    assert "2 replies to 2 prompts" in capsys.readouterr().out
