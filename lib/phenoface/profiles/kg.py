"""Profiles from the knowledge graph: HPO annotation frequencies (``kg_frequency``) and, when an
embedding is given, proposed facial terms the disease lacks (``kg_completion``).

Choices, documented once:
- An annotation without a frequency counts as "frequent" (0.545, the 30-79 % band midpoint), as
  the cohort does; "excluded" (0 %) annotations are dropped.
- Onset: an annotated onset (e.g. "Adult onset") removes the term from the age bands that end
  before that onset; unknown onset means every band.
- A MONDO disease merged with an OMIM/ORPHA one (``disease_same_as``) pools their annotations
  (largest frequency wins).
"""

from __future__ import annotations

import functools
import math

from .. import hpo
from ..ages import AGE_BANDS
from ..kg import DIS_PHEN, DISEASE, KnowledgeGraph, build_hpo_graph, hpo_release
from .fusion import DEFAULT_WEIGHTS
from .profile import ALL, BANDS, NO_EVIDENCE, Evidence, Profile

PROFILE_VERSION = "1"
UNKNOWN_FREQUENCY = hpo.FREQUENT

# Earliest age (years) of each HPO onset term; antenatal/congenital terms are 0.
ONSET_YEARS = {
    "HP:0030674": 0.0, "HP:0011460": 0.0, "HP:0011461": 0.0, "HP:0034199": 0.0, "HP:0034198": 0.0,
    "HP:0034197": 0.0, "HP:0003577": 0.0, "HP:0003623": 0.0, "HP:0410280": 0.0, "HP:0003593": 28 / 365,
    "HP:0011463": 1.0, "HP:0003621": 5.0, "HP:0003581": 16.0, "HP:0011462": 16.0, "HP:0025708": 16.0,
    "HP:0025709": 19.0, "HP:0025710": 25.0, "HP:0003596": 40.0, "HP:0003584": 60.0,
}


@functools.lru_cache(maxsize=1)
def _default_graph() -> KnowledgeGraph:
    return build_hpo_graph()


def resolve(disease_id: str, graph: KnowledgeGraph) -> str:
    """Disease name from the graph, or UnknownDiseaseError listing close matches."""
    key = str(disease_id).strip()
    nodes = graph.nodes
    if key in nodes.index and nodes.at[key, "type"] == DISEASE:
        return str(nodes.at[key, "name"])
    extra = {i: str(n) for i, n in nodes.loc[nodes["type"] == DISEASE, "name"].items()}
    return hpo.resolve_disease(key, extra=extra)


def kg_profile(disease_id: str, graph: KnowledgeGraph | None = None, embedding=None, top_k: int = 5,
               weights=None, terms=None, candidates=None) -> Profile:
    """The KG profile of an OMIM / ORPHA / DECIPHER (or merged MONDO) disease.

    ``embedding`` (a :class:`phenoface.kg.KGEmbedding`) adds up to ``top_k`` completion terms
    among ``candidates`` (default: every facial term the embedding knows)."""
    graph = _default_graph() if graph is None else graph
    name = resolve(disease_id, graph)
    facial = set(hpo.facial_terms() if terms is None else terms)
    ids = graph.aliases(disease_id)
    dp = graph.disease_phenotypes(ids, facial)
    term_names = {}
    best: dict[str, tuple[float, str, str]] = {}
    for t, f, onset in dp[["tail", "frequency", "onset"]].itertuples(index=False):
        f = float(f)
        if f == 0.0:
            continue
        given = not math.isnan(f)
        value = f if given else UNKNOWN_FREQUENCY
        detail = f"HPO frequency {f:.3g}" if given else "HPO annotation without frequency (counted as frequent)"
        if onset:
            detail += f"; onset {onset} {hpo.term_names().get(onset, '')}".rstrip()
        if t not in best or value > best[t][0]:
            best[t] = (value, onset or "", detail)
        term_names[t] = graph.name(t)

    evidence = {b: {} for b in BANDS}
    for t, (value, onset, detail) in best.items():
        start = ONSET_YEARS.get(onset, 0.0) if onset else 0.0
        for band in BANDS:
            if band != ALL and AGE_BANDS[band][1] <= start:
                continue  # the term has not appeared yet at this age
            evidence[band].setdefault("kg_frequency", {})[t] = Evidence("kg_frequency", value, detail)

    notes = []
    if embedding is not None:
        cands = sorted(c for c in (candidates if candidates is not None else embedding.entity_to_id) if c in facial)
        proposed = embedding.complete(disease_id, cands, known=set(best), top_k=top_k)
        model = embedding.config.get("model", "embedding")
        for t, score in proposed.items():
            term_names[t] = graph.name(t)
            ev = Evidence("kg_completion", float(score), f"{model} proposal, percentile {score:.3f} among "
                                                          f"{len(cands)} facial terms")
            for band in BANDS:
                evidence[band].setdefault("kg_completion", {})[t] = ev
    if not best and not any(evidence[ALL].values()):
        notes.append(NO_EVIDENCE)
    version = f"{PROFILE_VERSION}+hpo-{hpo_release()}" + (
        f"+{embedding.config.get('model')}" if embedding is not None else "")
    return Profile.from_evidence(disease_id, name, evidence, version,
                                 dict(DEFAULT_WEIGHTS if weights is None else weights), term_names, notes)
