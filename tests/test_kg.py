"""phenoface.kg: the HPO graph, the PrimeKG loader and merge, holdout ranking and PyKEEN training."""
import time

import numpy as np
import pandas as pd
import pytest

from phenoface.kg import (DIS_PHEN, PHEN_PHEN, SAME_AS, KnowledgeGraph, PrimeKGFormatError, build_hpo_graph,
                          evaluate, frequency_scores, holdout_split, load_primekg, merge, normalise_id,
                          rank_hidden, train_embedding)
from phenoface.kg.graph import _edge_frame, _nodes_frame
from phenoface.kg.primekg import REQUIRED_COLUMNS

ROWS = [  # relation, display, x_id, x_type, x_name, x_source, y_id, y_type, y_name, y_source
    ("disease_phenotype_positive", "phenotype present", "8608", "disease", "Down syndrome", "MONDO",
     "316", "effect/phenotype", "Hypertelorism", "HPO"),
    ("disease_phenotype_positive", "phenotype present", "316", "effect/phenotype", "Hypertelorism", "HPO",
     "8608", "disease", "Down syndrome", "MONDO"),  # PrimeKG's mirrored copy
    ("disease_phenotype_positive", "phenotype present", "8608", "disease", "Down syndrome", "MONDO",
     "582", "effect/phenotype", "Upslanted palpebral fissure", "HPO"),
    ("phenotype_phenotype", "parent-child", "316", "effect/phenotype", "Hypertelorism", "HPO",
     "100886", "effect/phenotype", "Abnormality of globe location", "HPO"),
    ("phenotype_phenotype", "parent-child", "100886", "effect/phenotype", "Abnormality of globe location", "HPO",
     "316", "effect/phenotype", "Hypertelorism", "HPO"),
    ("disease_protein", "associated with", "8608", "disease", "Down syndrome", "MONDO",
     "4000", "gene/protein", "LMNA", "NCBI"),
    ("disease_phenotype_positive", "phenotype present", "12345_678", "disease", "Made-up syndrome", "MONDO_grouped",
     "252", "effect/phenotype", "Microcephaly", "HPO"),
]


def write_kg(path, rows=ROWS, drop=()):
    df = pd.DataFrame([(r[0], r[1], i, r[2], r[3], r[4], r[5], i + 100, r[6], r[7], r[8], r[9])
                       for i, r in enumerate(rows)], columns=list(REQUIRED_COLUMNS))
    df.drop(columns=list(drop)).to_csv(path, index=False)
    return path


def test_primekg_counts_ids_and_direction(tmp_path):
    g = load_primekg(write_kg(tmp_path / "kg.csv"))
    assert g.n_entities == 7  # 2 diseases, 4 phenotypes, 1 gene
    assert g.n_triples == 5  # the two mirrored copies collapse
    assert set(g.nodes["type"]) == {"disease", "effect/phenotype", "gene/protein"}
    assert "HP:0000316" in g.nodes.index and "MONDO:0008608" in g.nodes.index
    assert "MONDO:0012345" in g.nodes.index  # grouped id keeps its first member
    isa = g.edges[g.edges["relation"] == PHEN_PHEN]
    assert list(isa[["head", "tail"]].iloc[0]) == ["HP:0000316", "HP:0100886"]  # child -> parent, as in HPO
    dp = g.edges[g.edges["relation"] == DIS_PHEN]
    assert set(dp["head"]) <= {"MONDO:0008608", "MONDO:0012345"}


def test_primekg_missing_columns_are_named(tmp_path):
    path = write_kg(tmp_path / "bad.csv", drop=("x_source", "y_type"))
    with pytest.raises(PrimeKGFormatError, match="x_source, y_type"):
        load_primekg(path)
    with pytest.raises(FileNotFoundError):
        load_primekg(tmp_path / "absent.csv")


def test_normalise_id():
    assert normalise_id("316", "HPO") == "HP:0000316"
    assert normalise_id("8608", "MONDO") == "MONDO:0008608"
    assert normalise_id("4000", "NCBI") == "NCBIGene:4000"
    assert normalise_id("DB001", "DrugBank") == "DrugBank:DB001"


def test_merge_links_by_name_and_keeps_hpo_frequency(tmp_path):
    pk = load_primekg(write_kg(tmp_path / "kg.csv"))
    nodes = _nodes_frame({"OMIM:190685": ("disease", "Down Syndrome", "OMIM"),
                          "HP:0000316": ("effect/phenotype", "Hypertelorism", "HPO")})
    edges = _edge_frame(["OMIM:190685"], DIS_PHEN, ["HP:0000316"], np.array([0.5]))
    hp = KnowledgeGraph(nodes, edges, {"sources": ["hpo"]})
    m = merge(hp, pk)
    assert m.n_entities == 8  # the shared phenotype counted once
    same = m.edges[m.edges["relation"] == SAME_AS]
    assert list(same[["head", "tail"]].iloc[0]) == ["MONDO:0008608", "OMIM:190685"]
    assert m.aliases("OMIM:190685") == ["MONDO:0008608", "OMIM:190685"]
    assert m.meta["sources"] == ["hpo", "primekg"]


@pytest.fixture(scope="module")
def hpo_graph():
    return build_hpo_graph()


def test_hpo_graph_shape_and_cache(hpo_graph):
    rel = hpo_graph.edges["relation"].value_counts()
    assert rel["disease_phenotype_positive"] > 100_000 and rel["phenotype_phenotype"] > 10_000
    assert rel["disease_protein"] > 1_000 and rel["phenotype_protein"] > 1_000
    dp = hpo_graph.disease_phenotypes(["OMIM:190685"])
    assert "HP:0000582" in set(dp["tail"])  # Down syndrome: upslanted palpebral fissures
    assert dp["frequency"].between(0, 1).all() or dp["frequency"].isna().any()
    start = time.perf_counter()
    again = build_hpo_graph()
    assert time.perf_counter() - start < 5 and again.n_triples == hpo_graph.n_triples


def test_face_subgraph(hpo_graph):
    face = hpo_graph.face_subgraph()
    assert set(face.edges["relation"]) <= {"disease_phenotype_positive", "phenotype_phenotype", "disease_protein",
                                          "disease_same_as"}
    from phenoface import hpo

    facial = hpo.facial_terms()
    assert set(face.disease_phenotypes()["tail"]) <= facial
    assert "HP:0000316" in face.nodes.index  # hypertelorism sits under globe location
    assert 10_000 < face.n_triples < hpo_graph.n_triples
    g = hpo_graph.neighbourhood(["OMIM:190685", "OMIM:194050"], facial, max_terms=5)
    assert g.number_of_nodes() <= 12 and g.has_node("OMIM:190685")


def toy_graph():
    """Two disease families: A-diseases carry a1..a4, B-diseases b1..b4; b1 is the most common term."""
    rows, nodes = [], {}
    for fam, n in (("A", 6), ("B", 10)):
        for i in range(n):
            d = f"OMIM:{fam}{i}"
            nodes[d] = ("disease", d, "OMIM")
            for k in range(1, 5):
                rows.append((d, f"HP:{fam}{k}"))
            rows.append((d, f"HP:{fam}X"))  # a family marker term every member has
    for t in sorted({t for _, t in rows}):
        nodes[t] = ("effect/phenotype", t, "HPO")
    rows.append(("OMIM:A0", "HP:B1"))
    h, t = zip(*rows)
    return KnowledgeGraph(_nodes_frame(nodes), _edge_frame(h, DIS_PHEN, t))


def test_frequency_baseline_on_toy_graph():
    g = toy_graph()
    cands = ["HP:A1", "HP:B1", "HP:B2"]
    assert list(frequency_scores(g, cands)) == [6.0, 11.0, 10.0]
    h = holdout_split(g, terms=None, n_diseases=4, frac=0.2, min_terms=3, seed=1)
    assert len(h.hidden) == 4 and h.hidden["disease"].nunique() == 4
    assert not set(map(tuple, h.hidden.to_numpy())) & set(zip(h.train.edges["head"], h.train.edges["tail"]))
    # A perfect scorer ranks each hidden term first; the baseline's ranks follow counts.
    hidden = set(map(tuple, h.hidden.to_numpy()))
    perfect = rank_hidden(lambda d: np.array([1.0 if (d, c) in hidden else 0.0 for c in h.candidates]), h)
    assert (perfect == 1).all()
    base = rank_hidden(lambda d: frequency_scores(h.train, h.candidates), h)
    assert (base >= 1).all() and len(base) == 4


@pytest.mark.slow
def test_transe_trains_deterministically_and_learns_families(tmp_path):
    g = toy_graph()
    h = holdout_split(g, n_diseases=8, frac=0.2, min_terms=3, seed=0)
    a = train_embedding(h.train, "TransE", dim=16, epochs=40, seed=3, lr=0.05, batch_size=32, num_negs=4)
    b = train_embedding(h.train, "TransE", dim=16, epochs=40, seed=3, lr=0.05, batch_size=32, num_negs=4)
    ta, tb = evaluate(a, h), evaluate(b, h)
    pd.testing.assert_frame_equal(ta, tb)
    assert ta.loc["TransE", "mrr"] >= ta.loc["frequency baseline", "mrr"]
    assert ta.loc["TransE", "hits10"] == 1.0  # 11 candidates: within ten means family terms ranked first
    proposed = a.complete("OMIM:A1", h.candidates, known={"HP:A1"}, top_k=3)
    assert len(proposed) == 3 and proposed.between(0, 1).all() and "HP:A1" not in proposed.index
    a.save(tmp_path / "emb")
    back = type(a).load(tmp_path / "emb")
    assert np.allclose(back.score_tails("OMIM:A1", h.candidates), a.score_tails("OMIM:A1", h.candidates))
    assert (tmp_path / "emb" / "entity_embeddings.npy").is_file()
    with pytest.raises(ValueError, match="TransE"):
        train_embedding(h.train, "NoSuchModel")
