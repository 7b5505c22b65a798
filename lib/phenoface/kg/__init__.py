"""Knowledge graph: the HPO graph (and PrimeKG when present), its face subgraph, PyKEEN embeddings.

    >>> from phenoface.kg import build_hpo_graph, train_embedding, holdout_split, evaluate
    >>> g = build_hpo_graph(); face = g.face_subgraph()
    >>> h = holdout_split(face, n_diseases=200, seed=0)
    >>> emb = train_embedding(h.train, "TransE", dim=64, epochs=60, seed=0)
    >>> evaluate(emb, h)            # MRR / Hits@10 vs the frequency baseline

``kg`` never imports ``profiles`` (profiles builds on kg).
"""

from .embed import (MODELS, Holdout, KGEmbedding, evaluate, frequency_scores, holdout_split, metrics,
                    rank_hidden, train_embedding)
from .graph import (DIS_GENE, DIS_PHEN, DIS_PHEN_NOT, DISEASE, GENE, PHEN_GENE, PHEN_PHEN, PHENOTYPE,
                    SAME_AS, KnowledgeGraph, build_hpo_graph, hpo_release)
from .primekg import REQUIRED_COLUMNS, PrimeKGFormatError, load_primekg, merge, normalise_id

__all__ = ["KnowledgeGraph", "build_hpo_graph", "hpo_release", "load_primekg", "merge", "normalise_id",
           "PrimeKGFormatError", "REQUIRED_COLUMNS", "train_embedding", "KGEmbedding", "holdout_split",
           "Holdout", "evaluate", "frequency_scores", "rank_hidden", "metrics", "MODELS", "DISEASE",
           "PHENOTYPE", "GENE", "DIS_PHEN", "DIS_PHEN_NOT", "PHEN_PHEN", "DIS_GENE", "PHEN_GENE", "SAME_AS",
           "select_diseases"]


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
