"""The parameter schema: shipped profiles match it, notebooks declare exactly what it says they use, and
the table of docs/parameters.md is the generated one."""
import json
import re
from pathlib import Path

import pytest

from phenoface import params
from phenoface.config import PROFILES, params_path
from phenoface.params import load_params

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"


@pytest.mark.parametrize("profile", ["quick", "smoke"])
def test_offline_profiles_match_the_schema(profile):
    assert load_params(profile)["PROFILE"] == profile


def test_full_profile_only_lacks_the_users_own_data():
    found = params.problems(params.read_profile(NOTEBOOKS / "params" / "full.yaml"), NOTEBOOKS)
    # The full profile names datasets the user downloads; until then those paths are the only complaints.
    assert all(p.startswith(("PRIMEKG_PATH:", "RAW_DIR:", "INCEPTION_WEIGHTS:", "SD_MODEL_PATH:"))
               and "does not exist" in p for p in found), found


def _parameter_names(nb_path):
    nb = json.loads(nb_path.read_text())
    cell = next(c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", []))
    return set(re.findall(r"^([A-Z][A-Z_0-9]*)\s*=", "".join(cell["source"]), re.M))


def test_schema_says_which_notebooks_use_each_parameter():
    stems = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    assert stems
    for nb in stems:
        declared = {p.name for p in params.PARAMS if nb.stem[:2] in p.notebooks}
        assert _parameter_names(nb) == declared, nb.stem
    used = {nb.stem[:2] for nb in stems}
    assert all(set(p.notebooks) <= used for p in params.PARAMS)


def test_no_parameter_holds_a_secret():
    secret = re.compile(r"(API_?KEY|_KEY|SECRET|PASSWORD|PASSWD|_TOKEN|^TOKEN)$", re.I)
    assert not [p.name for p in params.PARAMS if secret.search(p.name)], "secrets come from the environment only"


def test_docs_table_is_the_generated_one():
    page = (ROOT / params.DOCS_PAGE).read_text()
    assert params.page_with_table(page) == page, "run: python -m phenoface.params --docs"
    assert len(re.findall(r"^\| `[A-Z_0-9]+` \|", page, re.M)) == len(params.PARAMS)
    with pytest.raises(ValueError, match="no <!-- params:start"):
        params.page_with_table("a page without the markers")


def test_every_problem_is_reported_at_once(tmp_path):
    good = load_params("smoke")
    bad = {**good, "COHORT_N": "lots", "SEED": -1, "TYPO_N": 3}
    del bad["DATA_DIR"]
    with pytest.raises(params.ParameterError) as err:
        params.validate(bad, NOTEBOOKS, "mine.yaml")
    text = str(err.value)
    assert text.startswith("mine.yaml: 4 bad parameter(s)")
    for name in ("COHORT_N: 'lots'", "SEED: -1", "TYPO_N: unknown", "DATA_DIR: missing"):
        assert name in text
    assert params.validate({**good, "LLM_THRESHOLD": 0.5, "RECOGNISER_GRID": "8x6, 16x20"}, NOTEBOOKS)


def test_profile_file_that_is_not_a_mapping(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("- a\n- b\n")
    with pytest.raises(params.ParameterError, match="flat mapping"):
        params.read_profile(path)
    path.write_text("A: [unclosed\n")
    with pytest.raises(params.ParameterError, match="not valid YAML"):
        params.read_profile(path)


def test_overrides_read_as_yaml_scalars():
    assert params.coerce_overrides({"COHORT_N": "64", "DATA_DIR": "/tmp/x", "SHOW_REAL_PATIENTS": "false"}) == {
        "COHORT_N": 64, "DATA_DIR": "/tmp/x", "SHOW_REAL_PATIENTS": False}


def test_a_parameter_given_twice_is_refused(tmp_path):
    from phenoface.runner import load_profile

    (tmp_path / "params").mkdir()
    path = tmp_path / "params" / "mine.yaml"
    text = (NOTEBOOKS / "params" / "smoke.yaml").read_text(encoding="utf-8")
    first = 1 + text.splitlines().index("SEED: 0")
    path.write_text(text + "SEED: 7\n", encoding="utf-8")
    with pytest.raises(params.ParameterError) as err:
        params.read_profile(path)
    message = str(err.value)
    assert str(path) in message and "'SEED' twice" in message and f"first on line {first}" in message
    with pytest.raises(SystemExit, match=r"(?s)'SEED' twice.*Nothing was run"):
        load_profile(path, tmp_path, None)
    # the same key in two nested mappings is fine; only one mapping's duplicates are refused
    path.write_text("A: {x: 1}\nB: {x: 2}\n")
    assert params.read_profile(path) == {"A": {"x": 1}, "B": {"x": 2}}


def test_a_profile_that_is_not_utf8_names_the_file(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("PROFILE: smoke\nDATA_DIR: ../data/processed/café\n".encode("latin-1"))
    with pytest.raises(params.ParameterError, match=r"latin1\.yaml is not UTF-8 text \(byte \d+"):
        params.read_profile(path)


def test_profiles_load_and_share_names():
    names = None
    for profile in PROFILES:
        params = load_params(profile, validate=False)  # full names data the user downloads
        assert params["PROFILE"] == profile
        # A count such as LLM_MAX_TOKENS is fine; a name that holds a credential is not.
        secret = re.compile(r"(API_?KEY|_KEY|SECRET|PASSWORD|PASSWD|_TOKEN|^TOKEN)$", re.I)
        assert not [k for k in params if secret.search(k)], "secrets never in params"
        names = names or set(params)
        assert set(params) == names, f"{profile}.yaml must define the same parameter names"
    with pytest.raises(ValueError, match="Unknown profile 'huge'.*Known profiles: full, quick, smoke"):
        load_params("huge")
    with pytest.raises(ValueError, match="does not exist"):
        params_path("/no/such/profile.yaml")
