"""The set-up files agree with each other: one place for pins, CI runs the README's test command."""
import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _name(req: str) -> str:
    return re.split(r"[<>=!~\[; ]", req.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "lib" / "constraints.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"constraints.txt line {line!r} is not an exact pin"
            pins[_name(name)] = version
    return pins


def test_every_dependency_is_pinned_once():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    pins = _pins()
    missing = [d for d in deps if _name(d) not in pins]
    assert not missing, f"add exact pins to lib/constraints.txt for {missing}"
    assert "torchvision" not in pins, "PyPI torchvision does not import beside torch 2.13"
    assert pins["torch"] == "2.13.0"


def test_environment_yml_uses_the_same_pins():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert "-c lib/constraints.txt" in pip_section and "-e ." in pip_section
    assert f"torch=={_pins()['torch']}" in pip_section


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "./run_all.sh --test" in readme
    assert re.search(r"^\./run_all\.sh --test\s*$", ci, re.M), ".ci/run must call exactly the README's test command"
    assert re.search(r"^\./run_all\.sh\s", readme, re.M)


def test_run_all_uses_papermill_contract():
    runner = (ROOT / "lib" / "phenoface" / "runner.py").read_text()
    for flag in ('"-k", "python3"', '"-f"', '"--execution-timeout"'):
        assert flag in runner
