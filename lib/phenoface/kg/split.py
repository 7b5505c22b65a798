"""Alias-aware held-out splits for link prediction: a facial term hidden from a disease is hidden
from every entry that is the same disease, so no twin keeps the answer in the training graph.

Two disease ids are the same disease (an *alias cluster*, closed transitively) when
- their names match once case, punctuation and spacing are ignored (OMIM "DOWN SYNDROME" and
  ORPHA "Down syndrome");
- a ``disease_same_as`` edge links them (PrimeKG's MONDO ids merged by name, or by the
  cross-references given to :func:`phenoface.kg.merge`; the HPO annotation file itself carries no
  OMIM <-> ORPHA cross-references);
- they share a causal gene and most of the same facial terms (Jaccard >= ``min_overlap``): the OMIM /
  ORPHA copies of one disease that are named differently. Jaccard rather than the share of the smaller
  set: with the latter, diseases with one or two facial terms chain FGFR craniosynostoses,
  hypogonadism and CHARGE into one 41-member cluster.

Splits are drawn over clusters: one scored disease per chosen cluster, each cluster in one split
(validation or test), so the diseases that choose a setting and those that report it are disjoint.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from .graph import DIS_GENE, DIS_PHEN, SAME_AS, KnowledgeGraph, name_key

VALIDATION, TEST = "validation", "test"


def alias_clusters(graph: KnowledgeGraph, terms=None, min_overlap: float = 0.5) -> pd.Series:
    """Every disease of ``graph`` -> its alias cluster's id (the cluster's smallest member id).

    ``terms`` (default: all) are the terms whose overlap the shared-gene rule compares."""
    diseases = sorted(graph.diseases())
    parent = {d: d for d in diseases}

    def find(d):
        while parent[d] != d:
            parent[d] = parent[parent[d]]
            d = parent[d]
        return d

    def union(a, b):
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)

    names = graph.nodes.loc[diseases, "name"].map(name_key)
    for group in names.groupby(names).groups.values():
        for other in group[1:]:
            union(group[0], other)
    e = graph.edges
    same = e[(e["relation"] == SAME_AS) & e["head"].isin(parent) & e["tail"].isin(parent)]
    for a, b in same[["head", "tail"]].itertuples(index=False):
        union(a, b)
    term_sets = graph.disease_phenotypes(terms=terms).groupby("head")["tail"].apply(frozenset).to_dict()
    genes = e[(e["relation"] == DIS_GENE) & e["head"].isin(term_sets.keys())]
    pairs = set()
    for members in genes.groupby("tail")["head"].apply(sorted):
        pairs.update((a, b) for i, a in enumerate(members) for b in members[i + 1:])
    for a, b in sorted(pairs):
        ta, tb = term_sets[a], term_sets[b]
        if len(ta & tb) >= min_overlap * len(ta | tb):
            union(a, b)
    return pd.Series({d: find(d) for d in diseases}, name="cluster", dtype=object).rename_axis("disease")


@dataclass
class Holdout:
    """``train``: the graph without the hidden edges (nor their twins' copies). ``hidden``: disease,
    hpo_id, split (validation / test). ``candidates``: facial terms some training disease carries."""

    train: KnowledgeGraph
    hidden: pd.DataFrame
    candidates: list[str]
    clusters: pd.Series
    dropped: int = 0  # hidden terms no training disease carries (no method can rank them)
    twin_edges: int = 0  # copies of hidden edges removed from the scored diseases' aliases

    def split(self, name: str) -> pd.DataFrame:
        return self.hidden[self.hidden["split"] == name].reset_index(drop=True)

    @cached_property
    def known(self) -> dict[str, set[str]]:
        """Each disease's candidate terms in the training graph (what filtered ranking removes)."""
        dp = self.train.disease_phenotypes(terms=set(self.candidates))
        out: dict[str, set[str]] = {}
        for d, t in zip(dp["head"], dp["tail"]):
            out.setdefault(d, set()).add(t)
        return out


def holdout_split(graph: KnowledgeGraph, terms=None, n_test: int = 200, n_valid: int = 0, frac: float = 0.2,
                  min_terms: int = 3, seed: int = 0, clusters: pd.Series | None = None) -> Holdout:
    """Hide ``frac`` (at least one, never all) of the facial terms of one disease in each of
    ``n_valid`` + ``n_test`` seeded alias clusters, and the same terms from the cluster's other
    members. ``clusters``: from :func:`alias_clusters` (computed here when not given)."""
    rng = np.random.default_rng(seed)
    clusters = alias_clusters(graph, terms) if clusters is None else clusters
    dp = graph.disease_phenotypes(terms=terms)
    per = dp.groupby("head")["tail"].apply(sorted)
    eligible = per.index[per.map(len) >= min_terms]
    if len(eligible) == 0:
        raise ValueError(f"no disease has >= {min_terms} facial terms to hold out")
    grouped: dict[str, list[str]] = {}
    for d in sorted(eligible):
        grouped.setdefault(clusters.get(d, d), []).append(d)
    groups = sorted(grouped.items())
    order = rng.permutation(len(groups))[: n_valid + n_test]
    rows = []
    for pos, gi in enumerate(order):
        members = groups[gi][1]
        d = members[rng.integers(len(members))]
        ts = per[d]
        k = min(len(ts) - 1, max(1, int(round(frac * len(ts)))))
        split = VALIDATION if pos < n_valid else TEST
        rows += [(d, t, split) for t in sorted(rng.choice(ts, size=k, replace=False))]
    hidden = pd.DataFrame(rows, columns=["disease", "hpo_id", "split"])
    members = clusters.groupby(clusters).groups
    twins = {d: list(members.get(clusters.get(d, d), [d])) for d in hidden["disease"].unique()}
    drop = {(m, t) for d, t in zip(hidden["disease"], hidden["hpo_id"]) for m in twins[d]}
    e = graph.edges
    key = pd.MultiIndex.from_arrays([e["head"], e["tail"]])
    hide = (e["relation"] == DIS_PHEN).to_numpy() & key.isin(list(drop))
    train = graph.subgraph(e[~hide], {"holdout": len(hidden), "split": "alias_aware"})
    candidates = sorted(set(train.disease_phenotypes(terms=terms)["tail"]))
    keep = hidden["hpo_id"].isin(set(candidates))
    return Holdout(train, hidden[keep].reset_index(drop=True), candidates, clusters, int((~keep).sum()),
                   int(hide.sum()) - len(hidden))
