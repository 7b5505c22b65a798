"""phenoface.profiles: the Profile type, JSON schema, prompt text, fusion and kg_profile."""
import json

import numpy as np

import pytest

from phenoface.hpo import UnknownDiseaseError
from phenoface.profiles import (NO_EVIDENCE, Evidence, Profile, ProfileSchemaError, fuse, kg_profile,
                                load_profiles, save_profiles, term_phrase)


@pytest.fixture(scope="module")
def down():
    return kg_profile("OMIM:190685")


def test_kg_profile_contract(down):
    terms = down.terms(age=None)
    assert terms and all(0 <= w <= 1 for w in terms.values())
    from phenoface import hpo

    assert set(terms) <= hpo.facial_terms()
    assert terms["HP:0000582"] > 0.5  # upslanted palpebral fissures, very frequent in Down syndrome
    assert down.disease_name == "Down syndrome"
    assert list(terms.values()) == sorted(terms.values(), reverse=True)
    ev = down.bands["all"]["HP:0000582"].evidence
    assert ev[0].source == "kg_frequency" and "HPO frequency" in ev[0].detail
    assert set(down.bands) == {"all", "infant", "child", "adolescent", "adult"}


def test_json_round_trip_and_file(down, tmp_path):
    assert Profile.from_json(down.to_json()) == down
    down.save(tmp_path / "p.json")
    assert Profile.load(tmp_path / "p.json") == down
    save_profiles([down, down], tmp_path / "all.json")
    assert load_profiles(tmp_path / "all.json") == [down, down]


@pytest.mark.parametrize("garble, where", [
    (lambda d: d["bands"]["all"].__setitem__("HP:0000582", {"weight": 1.7, "evidence": d["bands"]["all"]["HP:0000582"]["evidence"]}), "bands/all/HP:0000582/weight"),
    (lambda d: d.pop("disease_id"), "disease_id"),
    (lambda d: d["bands"]["all"].__setitem__("not-an-id", {"weight": 0.1, "evidence": []}), "bands/all"),
    (lambda d: d.__setitem__("schema_version", 99), "schema_version"),
])
def test_schema_rejects_garbled(down, garble, where):
    data = json.loads(down.to_json())
    garble(data)
    with pytest.raises(ProfileSchemaError, match="invalid profile"):
        Profile.from_json(json.dumps(data))
    with pytest.raises(ProfileSchemaError, match="not valid JSON"):
        Profile.from_json('{"disease_id": ')


def test_text_rendering(down):
    text = down.to_text(age=6.0)
    assert text.startswith("a 6-year-old child with upslanted palpebral fissures")
    assert "a flat face" in text
    assert down.to_text(age=0.5).startswith("a 6-month-old infant with")
    assert down.to_text(age=8.0).startswith("an 8-year-old child")
    assert down.to_text(age=30.0).startswith("a 30-year-old adult")
    assert down.to_text(None).startswith("a person with")
    assert "with Down syndrome" in down.to_text(6.0, with_disease=True)
    marked = down.to_text(6.0, mark_renderable=True, max_terms=20)
    assert "[a flat face]" in marked and "brachycephaly" in marked and "[brachycephaly]" not in marked
    r = down.to_text(6.0, renderable_only=True, max_terms=20)
    assert "brachycephaly" not in r
    assert set(down.renderable_terms()) <= set(down.renderable())
    assert term_phrase("Downslanted palpebral fissures") == "downslanted palpebral fissures"
    assert term_phrase("Hypertelorism") == "hypertelorism"
    assert term_phrase("Depressed nasal bridge") == "a depressed nasal bridge"


def test_no_facial_evidence_is_said():
    empty = Profile.from_evidence("OMIM:000001", "Quiet disease", {"all": {}}, "test")
    assert NO_EVIDENCE in empty.to_text(6.0) and empty.terms() == {}
    assert not empty.has_facial_evidence
    assert Profile.from_json(empty.to_json()) == empty
    # a real disease with no facial annotations
    from phenoface.kg import build_hpo_graph
    from phenoface import hpo

    g = build_hpo_graph()
    facial = hpo.facial_terms()
    dp = g.edges[g.edges["relation"] == "disease_phenotype_positive"]
    with_face = set(dp.loc[dp["tail"].isin(facial), "head"])
    quiet = sorted(set(dp["head"]) - with_face)[0]
    p = kg_profile(quiet)
    assert p.terms() == {} and NO_EVIDENCE in p.to_text(30.0) and NO_EVIDENCE in p.notes


def test_unknown_disease_lists_close_matches():
    with pytest.raises(UnknownDiseaseError, match=r"OMIM:190685 \(Down syndrome\)"):
        kg_profile("OMIM:19068")


def test_fusion_weights():
    ev = {"kg_frequency": {"A": 0.9, "B": 0.5}, "kg_completion": {"C": 0.8}, "images": {"B": 0.1}}
    w = {"kg_frequency": 1.0, "kg_completion": 0.5, "images": 1.0}
    out = fuse(ev, w)
    assert out["A"] == pytest.approx(0.9)
    assert out["B"] == pytest.approx(0.3)  # mean of 0.5 and 0.1, both fully trusted
    assert out["C"] == pytest.approx(0.4)  # a weak source alone is shrunk by its weight
    assert fuse(ev, {**w, "kg_completion": 1.0})["C"] == pytest.approx(0.8)
    with pytest.raises(KeyError, match="images"):
        fuse(ev, {"kg_frequency": 1.0, "kg_completion": 0.5})
    with pytest.raises(ValueError):
        fuse(ev, {**w, "images": 2.0})


def test_with_evidence_refuses_and_keeps_type(down):
    p = down.with_evidence("images", {"HP:0000582": 0.1, "HP:0000316": 0.6}, detail="cohort measurement")
    assert p.terms()["HP:0000582"] < down.terms()["HP:0000582"]
    assert "HP:0000316" in p.terms()
    sources = {e.source for e in p.bands["all"]["HP:0000582"].evidence}
    assert sources == {"kg_frequency", "images"}
    assert Profile.from_json(p.to_json()) == p
    assert isinstance(p.bands["child"]["HP:0000316"].evidence[0], Evidence)


def test_onset_restricts_bands():
    p = Profile.from_evidence("OMIM:1", "x", {
        "all": {"kg_frequency": {"HP:0000316": Evidence("kg_frequency", 0.8)}},
        "infant": {}}, "test")
    assert p.terms("infant") == {} and p.terms(1.0) == {} and p.terms(6.0) == {"HP:0000316": 0.8}
    with pytest.raises(ValueError, match="age band"):
        p.terms("toddler")


@pytest.mark.slow
def test_kg_profile_with_embedding_completes():
    from phenoface.kg import DIS_PHEN, KnowledgeGraph, edge_frame, nodes_frame, train_embedding

    nodes = {f"OMIM:{i}": ("disease", f"Toy {i}", "OMIM") for i in range(6)}
    terms = ["HP:0000316", "HP:0000582", "HP:0012368", "HP:0000154"]
    nodes.update({t: ("effect/phenotype", t, "HPO") for t in terms})
    rows = [(f"OMIM:{i}", t) for i in range(6) for t in terms[:3]] + [("OMIM:0", "HP:0000154")]
    rows = [r for r in rows if r != ("OMIM:5", "HP:0012368")]
    h, t = zip(*rows)
    g = KnowledgeGraph(nodes_frame(nodes), edge_frame(h, DIS_PHEN, t, np.full(len(h), 0.9)))
    emb = train_embedding(g, "TransE", dim=8, epochs=5, seed=0, batch_size=8)
    p = kg_profile("OMIM:5", graph=g, embedding=emb, top_k=1, terms=set(terms))
    completion = [tid for tid, e in p.bands["all"].items() if e.evidence[0].source == "kg_completion"]
    assert len(completion) == 1 and completion[0] in {"HP:0012368", "HP:0000154"}
    assert p.terms()[completion[0]] <= 0.25  # weak source, shrunk by its fusion weight
    assert "TransE" in p.version and p.disease_name == "Toy 5"


def test_llm_evidence_joins_asked_profiles_and_others_say_why():
    from phenoface.profiles import DEFAULT_WEIGHTS
    from phenoface.profiles.llm_evidence import llm_weight_change, with_llm_evidence

    def kg(d):
        annotation = {"all": {"kg_frequency": {"HP:0000316": Evidence("kg_frequency", 0.9)}}}
        return Profile.from_evidence(d, d.lower(), annotation, "1")

    profiles = [kg("A"), kg("B"), kg("C")]
    evidence = {"A": {"child": {"HP:0005280": 0.895}, "all": {"HP:0005280": 0.895, "HP:0000316": 0.545}}}
    out = with_llm_evidence(profiles, evidence, {"A": "a", "B": "b"}, "m@1", "detail")
    assert out[0].version == "1+llm-m@1" and out[0].terms("child")["HP:0005280"] == pytest.approx(
        0.895 * DEFAULT_WEIGHTS["llm"])
    assert out[1].notes[-1] == "LLM evidence absent: no usable reply" and out[1].bands == profiles[1].bands
    assert out[2].notes[-1] == "LLM not asked about this disease"
    failed = with_llm_evidence(profiles, {}, {"A": "a"}, "m", "d", "The LLM endpoint x could not be reached.\nmore")
    assert failed[0].notes[-1] == "LLM evidence absent: The LLM endpoint x could not be reached."
    first, change = llm_weight_change(profiles, out, evidence)
    assert first.disease_id == "A" and set(change["hpo_id"]) == {"HP:0000316", "HP:0005280"}
    row = change.set_index("hpo_id").loc["HP:0005280"]
    assert row["KG weight"] == 0.0 and row["llm value"] == 0.895
    assert llm_weight_change(profiles, failed, {})[0].disease_id == "A"  # none gained evidence: the first profile
