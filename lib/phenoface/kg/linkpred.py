"""Link prediction scored fairly: which facial term does a disease have that we hid from the graph?

Protocol (:func:`evaluate`, on a :func:`phenoface.kg.holdout_split`):
- each hidden term is ranked among the candidate facial terms with the disease's other known *and*
  hidden terms removed (the standard filtered rank), ties counted half;
- the embedding's blend with the frequency prior (z-scored embedding score + ``w`` x z-scored log
  frequency) takes its ``w`` from the validation diseases, and the nearest-disease baseline its
  number of neighbours ``k``; both are then scored once on the test diseases;
- beside it: the frequency baseline (terms by how many training diseases carry them) and the
  nearest-disease baseline (the facial terms of the most similar other diseases, similar by genes and
  non-facial terms, the disease's own alias cluster excluded, ties broken by frequency);
- MRR carries a 95 % bootstrap interval over test diseases, and each baseline a paired interval of
  its MRR difference to the link predictor.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse

from .. import hpo
from ..stats import bootstrap_ci
from .graph import DIS_GENE, DIS_PHEN, KnowledgeGraph
from .split import TEST, VALIDATION, Holdout

PRIOR_WEIGHTS = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
NEIGHBOURS = (1, 5, 20, 50)
LINK, EMBEDDING, FREQUENCY, NEAREST = "link predictor", "embedding alone", "frequency baseline", "nearest disease"


def frequency_scores(graph: KnowledgeGraph, candidates) -> np.ndarray:
    """How many diseases carry each candidate term (the baseline's score)."""
    dp = graph.disease_phenotypes(terms=set(candidates))
    counts = dp.groupby("tail")["head"].nunique()
    return counts.reindex(list(candidates)).fillna(0).to_numpy(dtype=float)


def rank_hidden(score_fn, holdout: Holdout, split: str | None = None) -> pd.DataFrame:
    """Filtered, tie-averaged rank of every hidden term (of one ``split``, default all):
    disease, hpo_id, rank. ``score_fn(disease) -> scores`` over ``holdout.candidates``."""
    index = {c: i for i, c in enumerate(holdout.candidates)}
    hidden = holdout.hidden if split is None else holdout.split(split)
    rows = []
    for d, terms in hidden.groupby("disease", sort=True)["hpo_id"]:
        terms = terms.tolist()
        s = np.asarray(score_fn(d), dtype=float)
        keep = np.ones(len(s), dtype=bool)
        keep[[index[t] for t in holdout.known.get(d, set()) | set(terms)]] = False
        others = s[keep]
        for t in terms:
            st = s[index[t]]
            rows.append((d, t, 1.0 + (others > st).sum() + 0.5 * (others == st).sum()))
    return pd.DataFrame(rows, columns=["disease", "hpo_id", "rank"])


def metrics(ranks) -> dict:
    """MRR, Hits@10 and the number of ranked terms."""
    r = np.asarray(ranks, dtype=float)
    return {"mrr": float(np.mean(1.0 / r)) if len(r) else float("nan"),
            "hits10": float(np.mean(r <= 10)) if len(r) else float("nan"), "n": int(len(r))}


def _zscore(x: np.ndarray) -> np.ndarray:
    x = np.where(np.isfinite(x), x, np.nanmin(x[np.isfinite(x)]) if np.isfinite(x).any() else 0.0)
    return (x - x.mean()) / (x.std() or 1.0)


class NearestDisease:
    """Scores a disease's candidate terms by the facial terms of its ``k`` most similar training
    diseases (cosine over genes and non-facial terms of ``graph``, weighted by similarity), its own
    alias cluster excluded; ties are broken by term frequency."""

    def __init__(self, graph: KnowledgeGraph, holdout: Holdout, facial=None):
        facial = set(hpo.facial_terms() if facial is None else facial)
        cands = holdout.candidates
        face = holdout.train.disease_phenotypes(terms=set(cands))
        self.pool = np.array(sorted(set(face["head"])), dtype=object)
        self.facial = np.zeros((len(self.pool), len(cands)), dtype=np.float32)
        self.facial[pd.Index(self.pool).get_indexer(face["head"]), pd.Index(cands).get_indexer(face["tail"])] = 1.0
        e = graph.edges
        feats = e[((e["relation"] == DIS_PHEN) & ~e["tail"].isin(facial)) | (e["relation"] == DIS_GENE)]
        feats = feats[["head", "tail"]].drop_duplicates()
        rows = pd.Index(sorted(set(feats["head"]) | set(self.pool)))
        cols = pd.Index(sorted(set(feats["tail"])))
        self.rows = {d: i for i, d in enumerate(rows)}
        x = sparse.csr_matrix((np.ones(len(feats)), (rows.get_indexer(feats["head"]), cols.get_indexer(feats["tail"]))),
                              shape=(len(rows), max(1, len(cols))))
        norm = np.sqrt(np.asarray(x.multiply(x).sum(axis=1)).ravel())
        self.x = sparse.diags(1.0 / np.where(norm > 0, norm, 1.0)) @ x
        self.x_pool = self.x[rows.get_indexer(self.pool)].T.tocsr()
        self.cluster = holdout.clusters
        self.pool_cluster = np.array([holdout.clusters.get(d, d) for d in self.pool], dtype=object)
        freq = frequency_scores(holdout.train, cands)
        self.tiebreak = 1e-6 * freq / (freq.max() or 1.0)
        self._sims: dict[str, np.ndarray] = {}

    def similarities(self, disease: str) -> np.ndarray:
        """Cosine similarity of ``disease`` to every pool disease; its alias cluster gets -1."""
        if disease not in self._sims:
            if disease in self.rows:
                sim = (self.x[self.rows[disease]] @ self.x_pool).toarray().ravel()
            else:
                sim = np.zeros(len(self.pool))
            self._sims[disease] = np.where(self.pool_cluster == self.cluster.get(disease, disease), -1.0, sim)
        return self._sims[disease]

    def scores(self, disease: str, k: int) -> np.ndarray:
        sim = self.similarities(disease)
        k = min(k, len(sim))
        top = np.argpartition(-sim, k - 1)[:k]
        w = np.clip(sim[top], 0.0, None)
        return self.facial[top].T @ w + self.tiebreak


@dataclass
class LinkPrediction:
    """``table``: test figures per method (mrr, hits10, n, mrr_lo, mrr_hi, setting). ``validation``:
    the settings tried (method, setting, mrr, hits10). ``ranks``: test ranks (disease, hpo_id, method,
    rank). ``versus``: the link predictor's MRR minus each other method's, with its paired interval."""

    table: pd.DataFrame
    validation: pd.DataFrame
    ranks: pd.DataFrame
    versus: pd.DataFrame
    prior_weight: float
    neighbours: int

    def verdict(self) -> str:
        """Which method wins on test, in words chosen by comparing the numbers and their intervals."""
        t = self.table
        parts = []
        for name, row in self.versus.iterrows():
            word = "**beats**" if row["lo"] > 0 else "**loses to**" if row["hi"] < 0 else "**cannot be told apart from**"
            parts.append(f"{word} the {name} (MRR {t.loc[LINK, 'mrr']:.3f} vs {t.loc[name, 'mrr']:.3f}, difference "
                         f"{row['diff']:+.3f} [{row['lo']:+.3f}, {row['hi']:+.3f}])")
        listed = ", ".join(parts[:-1]) + " and " + parts[-1] if len(parts) > 1 else "".join(parts)
        return (f"On {t.loc[LINK, 'n']} hidden edges of the test diseases the best MRR is the "
                f"**{t['mrr'].idxmax()}**'s ({t['mrr'].max():.3f}). The link predictor (embedding + frequency "
                f"prior, w = {self.prior_weight:g} chosen on validation) {listed}; differences with 95 % paired "
                f"bootstrap intervals over test diseases.")


def evaluate(embedding, holdout: Holdout, graph: KnowledgeGraph, facial=None, weights=PRIOR_WEIGHTS,
             neighbours=NEIGHBOURS, seed: int = 0) -> LinkPrediction:
    """The protocol of this module: settings chosen on ``holdout``'s validation diseases, figures
    on its test diseases. ``graph``: the graph the nearest-disease baseline reads genes and
    non-facial terms from (the full graph, not the face subgraph)."""
    cands = holdout.candidates
    zf = _zscore(np.log1p(frequency_scores(holdout.train, cands)))
    z = {d: _zscore(embedding.score_tails(d, cands)) for d in sorted(set(holdout.hidden["disease"]))}
    near = NearestDisease(graph, holdout, facial)
    freq = frequency_scores(holdout.train, cands)

    def link(w):
        return lambda d: z[d] + w * zf

    def nearest(k):
        return lambda d: near.scores(d, k)

    val = [(LINK, w, rank_hidden(link(w), holdout, VALIDATION)["rank"]) for w in weights]
    val += [(NEAREST, k, rank_hidden(nearest(k), holdout, VALIDATION)["rank"]) for k in neighbours]
    validation = pd.DataFrame([{"method": m, "setting": s, **metrics(r)} for m, s, r in val])

    def best(method, default):  # the first setting with the highest validation MRR
        v = validation[(validation["method"] == method) & validation["mrr"].notna()]
        return v.loc[v["mrr"].idxmax(), "setting"] if len(v) else default

    w, k = float(best(LINK, weights[0])), int(best(NEAREST, neighbours[0]))
    methods = {LINK: (link(w), f"w = {w:g}"), EMBEDDING: (link(0.0), "w = 0"),
               FREQUENCY: (lambda d: freq, ""), NEAREST: (nearest(k), f"k = {k}")}
    ranks, rows = [], {}
    for name, (fn, setting) in methods.items():
        r = rank_hidden(fn, holdout, TEST).assign(method=name)
        ranks.append(r)
        _, (lo, hi) = bootstrap_ci(1.0 / r["rank"].to_numpy(), groups=r["disease"].to_numpy(), seed=seed)
        rows[name] = {**metrics(r["rank"]), "mrr_lo": lo, "mrr_hi": hi, "setting": setting}
    table = pd.DataFrame(rows).T.rename_axis("method")
    table[["mrr", "hits10", "mrr_lo", "mrr_hi"]] = table[["mrr", "hits10", "mrr_lo", "mrr_hi"]].astype(float)
    ranks = pd.concat(ranks, ignore_index=True)
    ref = 1.0 / ranks.loc[ranks["method"] == LINK, "rank"].to_numpy()
    groups = ranks.loc[ranks["method"] == LINK, "disease"].to_numpy()
    versus = {}
    for name in (FREQUENCY, NEAREST, EMBEDDING):
        diff = ref - 1.0 / ranks.loc[ranks["method"] == name, "rank"].to_numpy()
        d, (lo, hi) = bootstrap_ci(diff, groups=groups, seed=seed)
        versus[name] = {"diff": d, "lo": lo, "hi": hi}
    return LinkPrediction(table, validation, ranks, pd.DataFrame(versus).T, w, k)
