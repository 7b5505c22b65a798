"""PyKEEN embeddings of the (face) graph: training, scoring a disease's candidate terms, saving.

How well they recover hidden facial terms is measured in :mod:`phenoface.kg.linkpred`.

Saved as ``model.safetensors`` (the PyKEEN model's state_dict) + ``model.json`` (model name, dimension,
entity and relation -> id maps, training config and losses) through :mod:`phenoface.modelio`, and loaded
by rebuilding the PyKEEN model from that config and loading the state_dict: nothing is unpickled. A
folder holding only PyKEEN's pickled ``trained_model.pkl`` (written by older versions) is refused.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..modelio import ModelFileError, check_not_pickle, load_model, save_model
from .graph import DIS_PHEN, KnowledgeGraph

MODELS = ("TransE", "RotatE", "ComplEx")
KIND = "kg_embedding"
WEIGHTS = "model.safetensors"  # + model.json beside it
REBUILD = "re-run notebook 02_kg_profiles (run_all.sh --only 02 --force) to rebuild the embedding"


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
        """State dict (``model.safetensors``) and model name, dimension, label maps, config and losses
        (``model.json``) into ``folder``, replaced as a whole."""

        folder = Path(folder)
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}."))
        try:
            dim = self.config.get("dim") or self.model.entity_representations[0].shape[0]
            card = {"model": type(self.model).__name__, "dim": int(dim),
                    "num_entities": len(self.entity_to_id), "num_relations": len(self.relation_to_id),
                    "config": self.config, "losses": self.losses,
                    "entity_to_id": self.entity_to_id, "relation_to_id": self.relation_to_id}
            save_model(tmp / WEIGHTS, self.model.state_dict(), card, kind=KIND)
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
        """Rebuild the PyKEEN model from ``model.json`` and load ``model.safetensors`` into it (no unpickling;
        a folder with only PyKEEN's pickled ``trained_model.pkl`` is refused)."""
        import torch
        from pykeen.models import model_resolver
        from pykeen.triples import CoreTriplesFactory
        from pykeen.utils import NoRandomSeedNecessary

        folder = Path(folder)
        check_not_pickle(folder, REBUILD)
        weights = folder / WEIGHTS
        if not weights.is_file() and (folder / "trained_model.pkl").is_file():
            check_not_pickle(folder / "trained_model.pkl", REBUILD)
        state, card = load_model(weights, kind=KIND, rebuild=REBUILD)
        try:
            name, dim = card["model"], card["dim"]
            if name not in MODELS:
                raise ValueError(f"unknown model {name!r} (this code knows {', '.join(MODELS)})")
            entity_to_id = {str(k): int(v) for k, v in card["entity_to_id"].items()}
            relation_to_id = {str(k): int(v) for k, v in card["relation_to_id"].items()}
            factory = CoreTriplesFactory.create(mapped_triples=torch.zeros((0, 3), dtype=torch.long),
                                                num_entities=len(entity_to_id), num_relations=len(relation_to_id))
            with torch.random.fork_rng(devices=[]):  # the initial weights are overwritten: leave the RNG alone
                model = model_resolver.make(name, embedding_dim=int(dim), triples_factory=factory,
                                            random_seed=NoRandomSeedNecessary)
            model.load_state_dict(state)
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise ModelFileError(f"{folder} does not hold a KG embedding this code can read ({exc}); "
                                 f"{REBUILD}") from None
        return cls(model.eval(), entity_to_id, relation_to_id, dict(card.get("config", {})),
                   [float(x) for x in card.get("losses", [])])


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
