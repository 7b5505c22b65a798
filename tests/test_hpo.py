import math

import pytest

from phenoface import hpo


def test_frequency_parsing():
    assert hpo.parse_frequency("HP:0040281") == pytest.approx(0.895)
    assert hpo.parse_frequency("298/524") == pytest.approx(298 / 524)
    assert hpo.parse_frequency("25%") == pytest.approx(0.25)
    assert math.isnan(hpo.parse_frequency(""))
    assert math.isnan(hpo.parse_frequency("1/0"))


def test_annotations_down_syndrome_has_facial_terms():
    ann = hpo.annotations()
    down = ann[ann.disease_id == "OMIM:190685"]
    assert set(down.columns) >= {"disease_id", "disease_name", "hpo_id", "frequency", "onset"}
    assert "HP:0000286" in set(down.hpo_id)  # epicanthus, 298/524 in the HPO release
    row = down[down.hpo_id == "HP:0000286"].iloc[0]
    assert row.frequency == pytest.approx(298 / 524)
    assert (ann.qualifier != "NOT").all()


def test_ontology_walks():
    assert "HP:0000582" in hpo.descendants("HP:0000271")  # upslanted fissures are facial
    assert "HP:0000478" in hpo.ancestors("HP:0000316")  # hypertelorism sits under the eye
    assert hpo.term_name("HP:0000316") == "Hypertelorism"
    assert "HP:0000316" in hpo.facial_terms()
    with pytest.raises(KeyError, match="not an HPO term"):
        hpo.term_name("HP:9999999")


def test_unknown_disease_lists_close_matches():
    assert hpo.resolve_disease("OMIM:190685") == "Down syndrome"
    with pytest.raises(hpo.UnknownDiseaseError, match="OMIM:190685"):
        hpo.resolve_disease("OMIM:19068")
    assert hpo.resolve_disease("UNAFFECTED", extra={"UNAFFECTED": "unaffected"}) == "unaffected"


def test_cache_survives_corruption(tmp_path, monkeypatch):
    monkeypatch.setenv("PHENOFACE_CACHE", str(tmp_path))
    src = tmp_path / "src.txt"
    src.write_text("x")
    assert hpo._cached(src, "t", lambda p: {"v": 1}) == {"v": 1}
    (cached,) = tmp_path.glob("hpo-t-*.pkl")
    cached.write_bytes(b"garbage")
    assert hpo._cached(src, "t", lambda p: {"v": 2}) == {"v": 2}


def test_missing_data_dir_is_clear(tmp_path, monkeypatch):
    monkeypatch.setenv("PHENOFACE_HPO_DIR", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="hp.obo"):
        hpo.data_dir()
