"""LLM-derived, age-aware disease profiles through any OpenAI-compatible endpoint, grounded in HPO.

    >>> from phenoface.llm import open_llm, elicit_features, mine_negatives, ground
    >>> with open_llm("embedded", cache_dir="data/processed/quick/llm/cache") as llm:
    ...     replies, claims = elicit_features(llm, {"OMIM:190685": "Down syndrome"}, ["child"])
    >>> ground(["wide-set eyes", "a flat nasal bridge"])   # [(phrase, HPO id or None, similarity)]
    >>> from phenoface.llm.agreement import evaluate_grounding   # threshold chosen on validation, test scored

``open_llm(..., packaged="packaged")`` also reads the embedded model's replies shipped with the package for the
offline profiles (:mod:`.shipped`, made by ``python -m phenoface.ship replies --profile quick``).

``llm`` imports ``hpo``/``kg`` (upstream) and never ``profiles``: the notebook turns grounded claims
into ``Profile.with_evidence("llm", ...)``.
"""

from .cache import ReplyCache, cache_key
from .client import EMBEDDED, ENV_HELP, LLM, LLMUnavailable, Reply, open_llm
from .ground import DEFAULT_THRESHOLD, agreement, ground
from .parse import Parsed, parse_features, parse_negatives
from .prompts import TYPICAL, feature_messages, negative_messages, retry_messages
from .server import EmbeddedServer, ServerError, convert_gguf, gguf_model_id
from .terms import related, term_index

__all__ = ["ground", "agreement", "related", "term_index", "DEFAULT_THRESHOLD", "open_llm", "LLM", "LLMUnavailable",
           "Reply", "EMBEDDED", "ENV_HELP", "ReplyCache", "cache_key", "EmbeddedServer", "ServerError", "convert_gguf",
           "gguf_model_id", "Parsed", "parse_features", "parse_negatives", "TYPICAL", "feature_messages",
           "negative_messages", "retry_messages", "elicit_features", "mine_negatives", "nearest_diseases",
           "llm_evidence", "annotated_terms", "elicitation_outcome", "evaluate_grounding", "choose_threshold",
           "resolve_threshold", "load_phrases", "derangement", "claim_hits", "kg_precision_summary"]

_AGREEMENT = {"evaluate_grounding", "choose_threshold", "resolve_threshold", "load_phrases", "derangement", "claim_hits",
            "kg_precision_summary"}


def __getattr__(name):  # elicit and agreement pull pandas; load them on first use
    if name in {"elicit_features", "mine_negatives", "nearest_diseases", "llm_evidence", "annotated_terms",
                "elicitation_outcome"}:
        from . import elicit

        return getattr(elicit, name)
    if name in _AGREEMENT:
        from . import agreement

        return getattr(agreement, name)
    raise AttributeError(name)
