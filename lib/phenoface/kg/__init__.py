"""Knowledge graph: the HPO graph (and PrimeKG when present), its face subgraph, PyKEEN embeddings.

    >>> from phenoface.kg import build_hpo_graph, train_embedding, holdout_split, evaluate
    >>> g = build_hpo_graph(); face = g.face_subgraph()
    >>> h = holdout_split(face, n_test=200, n_valid=100, seed=0)   # alias-aware: twins lose the term too
    >>> emb = train_embedding(h.train, "TransE", dim=64, epochs=60, seed=0)
    >>> result = evaluate(emb, h, g)   # filtered MRR / Hits@10 on test, settings chosen on validation
    >>> result.table, result.verdict()

``kg`` never imports ``profiles`` (profiles builds on kg).
"""

from .embed import MODELS, KGEmbedding, train_embedding
from .graph import (DIS_GENE, DIS_PHEN, DIS_PHEN_NOT, DISEASE, GENE, PHEN_GENE, PHEN_PHEN, PHENOTYPE,
                    SAME_AS, KnowledgeGraph, build_hpo_graph, edge_frame, hpo_release, name_key, nodes_frame)
from .linkpred import (EMBEDDING, FREQUENCY, LINK, NEAREST, LinkPrediction, NearestDisease, evaluate,
                       frequency_scores, metrics, rank_hidden)
from .primekg import (REQUIRED_COLUMNS, PrimeKGFormatError, PrimeKGRowWarning, load_primekg, merge,
                      normalise_id)
from .split import TEST, VALIDATION, Holdout, alias_clusters, holdout_split

__all__ = ["KnowledgeGraph", "build_hpo_graph", "hpo_release", "load_primekg", "merge", "normalise_id",
           "PrimeKGFormatError", "PrimeKGRowWarning", "REQUIRED_COLUMNS", "train_embedding", "KGEmbedding",
           "holdout_split", "Holdout", "alias_clusters", "evaluate", "LinkPrediction", "NearestDisease", "frequency_scores",
           "rank_hidden", "metrics", "MODELS", "DISEASE", "PHENOTYPE", "GENE", "DIS_PHEN", "DIS_PHEN_NOT",
           "PHEN_PHEN", "DIS_GENE", "PHEN_GENE", "SAME_AS", "TEST", "VALIDATION", "LINK", "EMBEDDING",
           "FREQUENCY", "NEAREST", "edge_frame", "nodes_frame", "name_key", "select_diseases"]


def select_diseases(graph: KnowledgeGraph, n: int, keep=(), seed: int = 0) -> list[str]:
    """``n`` seeded diseases of ``graph`` (plus ``keep``, e.g. the cohort's), for quick subsets;
    n <= 0 means all."""
    import numpy as np

    ds = sorted(set(graph.disease_phenotypes()["head"]))
    if n <= 0 or n >= len(ds):
        return ds
    rng = np.random.default_rng(seed)
    chosen = set(rng.choice(ds, size=n, replace=False)) | {k for k in keep if k in set(ds)}
    return sorted(chosen)
