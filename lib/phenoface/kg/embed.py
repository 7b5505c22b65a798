"""PyKEEN embeddings of the (face) graph, evaluated on the task profiles need: which facial term
does a disease have that we hid from the graph?

Protocol (``holdout_split`` + ``evaluate``): for a seeded sample of diseases with at least
``min_terms`` facial terms, a fraction of their disease -> facial-term edges is hidden from
training. Each hidden term is ranked among the candidate facial terms (every facial term some
training disease carries), the disease's other known terms filtered out, ties counted half
(the "realistic" rank). Reported: MRR and Hits@10, for the embedding and for a frequency baseline
that ranks terms by how many training diseases carry them.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .graph import DIS_PHEN, KnowledgeGraph

MODELS = ("TransE", "RotatE", "ComplEx")


@dataclass
class Holdout:
    train: KnowledgeGraph
    hidden: pd.DataFrame  # disease, hpo_id
    candidates: list[str]
    dropped: int = 0  # hidden terms no training disease carries (no method can rank them)


def holdout_split(graph: KnowledgeGraph, terms=None, n_diseases: int = 200, frac: float = 0.2,
                  min_terms: int = 3, seed: int = 0) -> Holdout:
    """Hide ``frac`` (at least one) of the facial terms of ``n_diseases`` seeded diseases."""
    rng = np.random.default_rng(seed)
    dp = graph.disease_phenotypes(terms=terms)
    per = dp.groupby("head")["tail"].apply(sorted)
    eligible = np.array(sorted(per.index[per.map(len) >= min_terms]))
    if len(eligible) == 0:
        raise ValueError(f"no disease has >= {min_terms} facial terms to hold out")
    chosen = rng.choice(eligible, size=min(n_diseases, len(eligible)), replace=False)
    rows = []
    for d in sorted(chosen):
        ts = per[d]
        k = min(len(ts) - 1, max(1, int(round(frac * len(ts)))))
        rows += [(d, t) for t in sorted(rng.choice(ts, size=k, replace=False))]
    hidden = pd.DataFrame(rows, columns=["disease", "hpo_id"])
    e = graph.edges
    key = pd.MultiIndex.from_arrays([e["head"], e["tail"]])
    hide = (e["relation"] == DIS_PHEN).to_numpy() & key.isin(list(zip(hidden["disease"], hidden["hpo_id"])))
    train = graph.subgraph(e[~hide], {"holdout": len(hidden)})
    candidates = sorted(set(train.disease_phenotypes(terms=terms)["tail"]))
    keep = hidden["hpo_id"].isin(set(candidates))
    return Holdout(train, hidden[keep].reset_index(drop=True), candidates, int((~keep).sum()))


def frequency_scores(graph: KnowledgeGraph, candidates) -> np.ndarray:
    """How many diseases carry each candidate term (the baseline's score)."""
    dp = graph.disease_phenotypes(terms=set(candidates))
    counts = dp.groupby("tail")["head"].nunique()
    return counts.reindex(list(candidates)).fillna(0).to_numpy(dtype=float)


def rank_hidden(score_fn, holdout: Holdout) -> np.ndarray:
    """Filtered, tie-averaged rank of every hidden term; ``score_fn(disease) -> scores`` over
    ``holdout.candidates``."""
    cands = holdout.candidates
    index = {c: i for i, c in enumerate(cands)}
    known = holdout.train.disease_phenotypes(terms=set(cands)).groupby("head")["tail"].apply(set).to_dict()
    ranks = []
    for d, grp in holdout.hidden.groupby("disease", sort=True):
        s = np.asarray(score_fn(d), dtype=float)
        keep = np.array([c not in known.get(d, ()) for c in cands])
        others = s[keep]
        for t in grp["hpo_id"]:
            st = s[index[t]]
            ranks.append(1.0 + (others > st).sum() + 0.5 * ((others == st).sum() - 1))
    return np.asarray(ranks)


def metrics(ranks: np.ndarray) -> dict:
    return {"mrr": float(np.mean(1.0 / ranks)) if len(ranks) else float("nan"),
            "hits10": float(np.mean(ranks <= 10)) if len(ranks) else float("nan"), "n": int(len(ranks))}


@dataclass
class KGEmbedding:
    """A trained PyKEEN model with its label maps."""

    model: object
    entity_to_id: dict[str, int]
    relation_to_id: dict[str, int]
    config: dict = field(default_factory=dict)
    losses: list[float] = field(default_factory=list)

    def score_tails(self, head: str, candidates, relation: str = DIS_PHEN) -> np.ndarray:
        import torch

        ids = torch.as_tensor([self.entity_to_id.get(c, -1) for c in candidates])
        out = np.full(len(ids), -np.inf)
        if head not in self.entity_to_id or relation not in self.relation_to_id:
            return out
        self.model.eval()
        with torch.no_grad():
            s = self.model.score_t(torch.as_tensor([[self.entity_to_id[head], self.relation_to_id[relation]]]))[0]
        ok = ids >= 0
        out[ok.numpy()] = s[ids[ok]].double().numpy()
        return out

    def complete(self, disease: str, candidates, known=(), top_k: int = 5) -> pd.Series:
        """Terms the disease lacks, best first: a score in [0, 1] (the candidate's percentile
        among all candidates for this disease), top ``top_k``."""
        cands = list(candidates)
        s = self.score_tails(disease, cands)
        if not np.isfinite(s).any():
            return pd.Series(dtype=float)
        pct = pd.Series(s, index=cands).rank(pct=True, method="average")
        pct = pct.drop([k for k in known if k in pct.index])
        return pct.sort_values(ascending=False, kind="stable").head(top_k)

    def entity_embeddings(self) -> pd.DataFrame:
        """Entity vectors (complex models as [real, imag]) indexed by label."""
        rep = self.model.entity_representations[0](indices=None).detach()
        if rep.is_complex():
            rep = __import__("torch").cat([rep.real, rep.imag], dim=-1)
        labels = sorted(self.entity_to_id, key=self.entity_to_id.get)
        return pd.DataFrame(rep.numpy(), index=pd.Index(labels, name="id"))

    def relation_embeddings(self) -> pd.DataFrame:
        rep = self.model.relation_representations[0](indices=None).detach()
        if rep.is_complex():
            rep = __import__("torch").cat([rep.real, rep.imag], dim=-1)
        labels = sorted(self.relation_to_id, key=self.relation_to_id.get)
        return pd.DataFrame(rep.numpy(), index=pd.Index(labels, name="id"))

    def save(self, folder: str | os.PathLike) -> Path:
        """Model, label maps, config and embeddings into ``folder``, replaced as a whole."""
        import torch

        folder = Path(folder)
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}."))
        try:
            torch.save(self.model, tmp / "trained_model.pkl")
            (tmp / "labels.json").write_text(json.dumps({"entity_to_id": self.entity_to_id,
                                                         "relation_to_id": self.relation_to_id}))
            (tmp / "config.json").write_text(json.dumps({**self.config, "losses": self.losses}, indent=2))
            np.save(tmp / "entity_embeddings.npy", self.entity_embeddings().to_numpy())
            np.save(tmp / "relation_embeddings.npy", self.relation_embeddings().to_numpy())
            old = folder.with_name(f".{folder.name}.old")
            if folder.exists():
                shutil.rmtree(old, ignore_errors=True)
                os.replace(folder, old)
            os.replace(tmp, folder)
            shutil.rmtree(old, ignore_errors=True)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return folder

    @classmethod
    def load(cls, folder: str | os.PathLike) -> "KGEmbedding":
        import torch

        folder = Path(folder)
        labels = json.loads((folder / "labels.json").read_text())
        config = json.loads((folder / "config.json").read_text())
        losses = config.pop("losses", [])
        model = torch.load(folder / "trained_model.pkl", weights_only=False)
        return cls(model, labels["entity_to_id"], labels["relation_to_id"], config, losses)


def train_embedding(graph: KnowledgeGraph, model: str = "TransE", dim: int = 64, epochs: int = 60,
                    seed: int = 0, lr: float = 0.01, batch_size: int = 1024, num_negs: int = 1,
                    test_triples: np.ndarray | None = None) -> KGEmbedding:
    """Train ``model`` (TransE, RotatE or ComplEx) on every triple of ``graph`` with
    ``pykeen.pipeline``, seeded. PyKEEN's own evaluation runs on ``test_triples`` (default: 64
    training triples, just to satisfy the pipeline; our task metric is :func:`evaluate`)."""
    import torch
    from pykeen.pipeline import pipeline
    from pykeen.triples import TriplesFactory

    if model not in MODELS:
        raise ValueError(f"model must be one of {', '.join(MODELS)}, got {model!r}")
    triples = graph.triples()
    if len(triples) == 0:
        raise ValueError("the graph has no triples to train on")
    # Sorted triples make the label -> id maps, and so the seeded run, independent of edge order.
    triples = triples[np.lexsort(triples.T[::-1])]
    tf = TriplesFactory.from_labeled_triples(triples)
    if test_triples is None or len(test_triples) == 0:
        test_triples = triples[:: max(1, len(triples) // 64)][:64]
    known = np.array([h in tf.entity_to_id and t in tf.entity_to_id and r in tf.relation_to_id
                      for h, r, t in test_triples])
    test = TriplesFactory.from_labeled_triples(np.asarray(test_triples)[known], entity_to_id=tf.entity_to_id,
                                               relation_to_id=tf.relation_to_id)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    start = time.perf_counter()
    result = pipeline(
        training=tf, testing=test, model=model, model_kwargs={"embedding_dim": dim}, epochs=epochs,
        random_seed=seed, device="cpu", optimizer="Adam", optimizer_kwargs={"lr": lr},
        negative_sampler_kwargs={"num_negs_per_pos": num_negs},
        training_kwargs={"batch_size": batch_size, "use_tqdm": False},
        evaluation_kwargs={"use_tqdm": False}, use_tqdm=False,
    )
    seconds = time.perf_counter() - start
    config = {"model": model, "dim": dim, "epochs": epochs, "seed": seed, "lr": lr, "batch_size": batch_size,
              "num_negs": num_negs, "triples": int(len(triples)), "entities": int(tf.num_entities),
              "train_seconds": seconds}
    return KGEmbedding(result.model, dict(tf.entity_to_id), dict(tf.relation_to_id), config,
                       [float(x) for x in result.losses])


def evaluate(embedding: KGEmbedding, holdout: Holdout, prior_weight: float = 0.5) -> pd.DataFrame:
    """MRR / Hits@10 of the hidden facial terms: the embedding, the frequency baseline, and a
    hybrid (z-scored embedding score + ``prior_weight`` x z-scored log frequency)."""
    cands = holdout.candidates
    freq = frequency_scores(holdout.train, cands)
    logf = np.log1p(freq)
    zf = (logf - logf.mean()) / (logf.std() or 1.0)

    def hybrid(d):
        s = embedding.score_tails(d, cands)
        s = np.where(np.isfinite(s), s, np.nanmin(s[np.isfinite(s)]) if np.isfinite(s).any() else 0.0)
        return (s - s.mean()) / (s.std() or 1.0) + prior_weight * zf

    rows = {
        f"{embedding.config.get('model', 'embedding')}": metrics(rank_hidden(lambda d: embedding.score_tails(d, cands), holdout)),
        "frequency baseline": metrics(rank_hidden(lambda d: freq, holdout)),
        f"{embedding.config.get('model', 'embedding')} + frequency prior": metrics(rank_hidden(hybrid, holdout)),
    }
    table = pd.DataFrame(rows).T
    table.index.name = "method"
    return table
