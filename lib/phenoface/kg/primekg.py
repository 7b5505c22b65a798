"""Read PrimeKG's ``kg.csv`` into a :class:`KnowledgeGraph`, and merge it with the HPO graph.

Id normalisation (PrimeKG stores bare numbers plus a source column):
- ``HPO`` phenotypes: ``316`` -> ``HP:0000316`` (zero-padded to 7 digits), so they coincide with HPO.
- ``MONDO`` diseases: ``8608`` -> ``MONDO:0008608``; ``MONDO_grouped`` ids (``"123_456"``, PrimeKG's
  merged near-duplicate diseases) keep their first member as the id.
- ``NCBI`` genes: ``NCBIGene:<id>``, the same ids HPO's genes_to_phenotype uses.
- anything else: ``<source>:<id>``.

PrimeKG lists most edges in both directions; each is stored once, oriented the way the HPO graph
orients it (disease first, then phenotype, then gene; is_a child -> parent as HPO says, when HPO
knows the pair).

Merging diseases: kg.csv carries no OMIM/ORPHA cross-references, so a MONDO disease is linked to
the OMIM/ORPHA diseases whose HPO name matches its name (case, punctuation and spacing ignored),
or to those given in ``xrefs`` (e.g. from MONDO's SSSOM mapping file) — as ``disease_same_as``
edges MONDO -> OMIM/ORPHA. Both nodes are kept; profiles follow the edges (``graph.aliases``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .. import hpo
from .graph import (DISEASE, EDGE_COLUMNS, GENE, PHEN_PHEN, PHENOTYPE, SAME_AS, KnowledgeGraph, edge_frame,
                    name_key)

REQUIRED_COLUMNS = ("relation", "display_relation", "x_index", "x_id", "x_type", "x_name", "x_source",
                    "y_index", "y_id", "y_type", "y_name", "y_source")
# Which end comes first when an edge is stored once.
_TYPE_ORDER = {DISEASE: 0, PHENOTYPE: 1, GENE: 2}


class PrimeKGFormatError(ValueError):
    """A kg.csv that lacks PrimeKG columns (the message names them)."""


def normalise_id(raw_id, source) -> str:
    raw = str(raw_id).strip()
    src = str(source).strip()
    if src == "HPO":
        return raw if raw.startswith("HP:") else f"HP:{int(float(raw)):07d}"
    if src.startswith("MONDO"):
        first = raw.split("_")[0]
        return first if first.startswith("MONDO:") else f"MONDO:{int(float(first)):07d}"
    if src == "NCBI":
        return f"NCBIGene:{raw}"
    return raw if raw.startswith(f"{src}:") else f"{src}:{raw}"


def _normalise_column(ids: pd.Series, sources: pd.Series) -> np.ndarray:
    # kg.csv has ~8M rows: normalise each distinct (id, source) pair once.
    pairs = pd.MultiIndex.from_arrays([ids, sources])
    uniq = pairs.unique()
    mapping = pd.Series([normalise_id(i, s) for i, s in uniq], index=uniq)
    return mapping.reindex(pairs).to_numpy(dtype=object)


def load_primekg(path: str | Path, relations=None) -> KnowledgeGraph:
    """PrimeKG ``kg.csv`` -> KnowledgeGraph (``relations`` keeps only those relation names)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"PrimeKG file {path} does not exist (see data/README.md for where to get kg.csv).")
    header = pd.read_csv(path, nrows=0).columns
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise PrimeKGFormatError(
            f"{path} is not a PrimeKG kg.csv: missing column(s) {', '.join(missing)} "
            f"(found {', '.join(map(str, header)) or 'none'}).")
    df = pd.read_csv(path, dtype=str, keep_default_na=False, usecols=list(REQUIRED_COLUMNS))
    if relations is not None:
        df = df[df["relation"].isin(set(relations))]
    x = _normalise_column(df["x_id"], df["x_source"])
    y = _normalise_column(df["y_id"], df["y_source"])

    nodes = pd.concat([
        pd.DataFrame({"id": x, "type": df["x_type"].to_numpy(), "name": df["x_name"].to_numpy(),
                      "source": df["x_source"].to_numpy()}),
        pd.DataFrame({"id": y, "type": df["y_type"].to_numpy(), "name": df["y_name"].to_numpy(),
                      "source": df["y_source"].to_numpy()}),
    ]).drop_duplicates("id").set_index("id")[["type", "name", "source"]]

    xo = df["x_type"].map(_TYPE_ORDER).fillna(9).to_numpy()
    yo = df["y_type"].map(_TYPE_ORDER).fillna(9).to_numpy()
    # Same-type edges: a stable order by id makes the two mirrored copies identical.
    swap = (yo < xo) | ((yo == xo) & (y < x))
    head = np.where(swap, y, x)
    tail = np.where(swap, x, y)
    rel = df["relation"].to_numpy(dtype=object)
    is_pp = rel == PHEN_PHEN
    if is_pp.any():
        parents = hpo.ontology()["parents"]
        # HPO knows the is_a direction; PrimeKG's undirected copy does not.
        flip = np.zeros(len(rel), dtype=bool)
        idx = np.flatnonzero(is_pp)
        flip[idx] = [head[i] in parents.get(tail[i], ()) for i in idx]
        head, tail = np.where(flip, tail, head), np.where(flip, head, tail)
    edges = edge_frame(head, rel, tail, source="primekg").drop_duplicates(["head", "relation", "tail"])
    return KnowledgeGraph(nodes, edges.reset_index(drop=True), {"sources": ["primekg"], "primekg_path": str(path)})


def merge(a: KnowledgeGraph, b: KnowledgeGraph, xrefs: dict[str, list[str]] | None = None) -> KnowledgeGraph:
    """Union of two graphs by id (HPO terms and genes coincide), plus ``disease_same_as`` edges
    from each MONDO disease to the OMIM/ORPHA diseases matching its name or listed in ``xrefs``."""
    nodes = pd.concat([a.nodes, b.nodes])
    nodes = nodes[~nodes.index.duplicated(keep="first")]
    edges = pd.concat([a.edges, b.edges], ignore_index=True)
    # The HPO copy of an edge carries frequency and onset: keep it over PrimeKG's bare one.
    edges = edges.assign(_hpo=(edges["source"] != "hpo")).sort_values("_hpo", kind="stable")
    edges = edges.drop_duplicates(["head", "relation", "tail"]).drop(columns="_hpo")

    dis = nodes[nodes["type"] == DISEASE]
    mondo = dis[dis.index.str.startswith("MONDO:")]
    other = dis[~dis.index.str.startswith("MONDO:")]
    by_name: dict[str, list[str]] = {}
    for did, name in other["name"].items():
        by_name.setdefault(name_key(name), []).append(did)
    links = []
    for mid, name in mondo["name"].items():
        targets = set(by_name.get(name_key(name), ())) | set((xrefs or {}).get(mid, ()))
        links += [(mid, t) for t in sorted(targets) if t in nodes.index]
    if links:
        h, t = zip(*links)
        edges = pd.concat([edges, edge_frame(h, SAME_AS, t, source="merge")], ignore_index=True)
        edges = edges.drop_duplicates(["head", "relation", "tail"])
    meta = {**a.meta, **b.meta, "sources": list(dict.fromkeys(a.meta.get("sources", []) + b.meta.get("sources", []))),
            "merged_diseases": len(links)}
    return KnowledgeGraph(nodes, edges[EDGE_COLUMNS].reset_index(drop=True), meta)
