"""Elicitation: ask the LLM per disease and age band, retry malformed replies a bounded number of
times, record failures; mine hard negatives against the disease's nearest diseases in the KG; ground
every phrase to HPO; turn grounded claims into per-band ``llm`` evidence values.

The asking never dies on a broken endpoint: an :class:`~phenoface.llm.client.LLMUnavailable` ends the
asking (that attempt is recorded as ``unavailable``, every later prompt the cache cannot answer as
``skipped``, "not asked"), and what was received is kept. :func:`elicitation_outcome` then says how it
went (``ok`` / ``degraded``, the reasons, and what failed how often) for the notebook and ``record_status``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import pandas as pd

from .. import hpo
from ..ages import AGE_BANDS
from .client import LLM, LLMUnavailable
from .ground import DEFAULT_THRESHOLD, ground, matched_text
from .terms import related
from .parse import Parsed, parse_features, parse_negatives
from .prompts import TYPICAL, feature_messages, negative_messages, retry_messages

UNSTATED_TYPICAL = TYPICAL["common"]  # a claim without a usable "typical" counts as common
NOT_ASKED = "not asked: the LLM endpoint had failed"
BUDGET_SPENT = "time budget spent"
# Every reply table has every column, whatever happened: a run where every request failed has no reply, no
# model, no timing, and the notebook must still be able to count and time what it got.
REPLY_COLUMNS = ["kind", "disease_id", "disease_name", "band", "attempt", "status", "problem", "items", "error",
                 "reply", "model_id", "cached", "source", "seconds", "finish_reason", "completion_tokens", "prompt",
                 "bad_reply"]


def _reply_frame(rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=REPLY_COLUMNS)
    frame["cached"] = frame["cached"].astype("boolean").fillna(False).astype(bool)
    frame["bad_reply"] = frame["bad_reply"].astype("boolean").fillna(False).astype(bool)
    return frame


def reply_speed(replies: pd.DataFrame) -> dict:
    """The replies the endpoint sent in this run (not read from the cache): how many, their seconds, their
    completion tokens and tokens per second (NaN when there were none, e.g. every request failed)."""
    if len(replies) and {"reply", "cached", "seconds", "completion_tokens"} <= set(replies.columns):
        fresh = replies[replies["reply"].notna() & ~replies["cached"].astype("boolean").fillna(False).astype(bool)]
    else:
        fresh = replies.iloc[0:0]
    seconds = float(pd.to_numeric(fresh["seconds"], errors="coerce").fillna(0).sum()) if len(fresh) else 0.0
    tokens = float(pd.to_numeric(fresh["completion_tokens"], errors="coerce").fillna(0).sum()) if len(fresh) else 0.0
    return {"fresh": int(len(fresh)), "seconds": seconds, "completion_tokens": tokens,
            "tokens_per_s": tokens / seconds if seconds > 0 else float("nan")}


def _ask(llm: LLM, messages: list[dict], parse: Callable[[str], Parsed], retries: int, max_tokens: int,
         row: dict) -> tuple[list[dict], Parsed]:
    """One request plus at most ``retries`` retries (each asked afresh with a note on what was wrong);
    every attempt becomes a reply row."""
    rows, parsed, msgs = [], Parsed("malformed", problem="not asked"), messages
    for attempt in range(int(retries) + 1):
        try:
            reply = llm.chat(msgs, max_tokens=max_tokens)
        except LLMUnavailable as err:  # the endpoint is broken: stop here, keep what came before
            rows.append({**row, "attempt": attempt, "status": "unavailable" if err.asked else "skipped",
                         "problem": err.reason if err.asked else NOT_ASKED, "items": 0, "error": str(err),
                         "reply": None, "cached": False, "prompt": msgs[-1]["content"]})
            return rows, Parsed("malformed", problem=str(err))
        # a bad reply (no choices, empty content) is malformed like unusable text: retried, then a failure
        parsed = Parsed("malformed", problem=reply.problem) if reply.problem else parse(reply.text)
        rows.append({**row, "attempt": attempt, "status": parsed.status, "problem": parsed.problem,
                     "items": len(parsed.items), "reply": reply.text, "model_id": reply.model_id,
                     "cached": reply.cached, "source": reply.source, "seconds": reply.seconds,
                     "finish_reason": reply.finish_reason,
                     "completion_tokens": reply.completion_tokens, "prompt": msgs[-1]["content"],
                     "bad_reply": bool(reply.problem)})
        if parsed.status != "malformed":
            break
        msgs = retry_messages(messages, reply.text, parsed.problem)
    if parsed.status == "malformed":
        rows[-1]["status"] = "failed"
    return rows, parsed


def _over(deadline: float | None) -> bool:
    return deadline is not None and time.monotonic() > deadline


def elicit_features(llm: LLM, diseases: dict[str, str], bands, n_features: int = 5, max_tokens: int = 96,
                    retries: int = 1, deadline: float | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Ask for each disease (id -> name) at each band. Returns ``(replies, claims)``: one row per
    attempt (status ok / salvaged / malformed / failed / unavailable / skipped) and one per claimed phrase.
    An endpoint that fails (LLMUnavailable) ends the asking; what came before is kept (see module doc)."""
    replies, claims = [], []
    for d, name in diseases.items():
        for band in bands:
            row = {"kind": "features", "disease_id": d, "disease_name": name, "band": band}
            if _over(deadline):
                replies.append({**row, "attempt": 0, "status": "skipped", "problem": BUDGET_SPENT, "items": 0,
                                "reply": None, "cached": False})
                continue
            rows, parsed = _ask(llm, feature_messages(name, band, n_features),
                                lambda text, b=band: parse_features(text, b, 3 * n_features), retries, max_tokens, row)
            replies += rows
            for item in parsed.items:
                claims.append({"disease_id": d, "disease_name": name, "band": band, "phrase": item["phrase"],
                               "typical": item["typical"], "band_given": item["band_given"],
                               "reply_status": parsed.status, "model_id": rows[-1]["model_id"]})
    cols = ["disease_id", "disease_name", "band", "phrase", "typical", "band_given", "reply_status", "model_id"]
    return _reply_frame(replies), pd.DataFrame(claims, columns=cols)


def asked_diseases(profiles, n: int = 0) -> dict[str, str]:
    """Disease id -> name of the first ``n`` profiles (0: all), in their order; ``profiles`` are Profile objects
    or their JSON dicts (notebook 02's ``kg_profiles.json``)."""
    def pair(p):
        return (p["disease_id"], p["disease_name"]) if isinstance(p, dict) else (p.disease_id, p.disease_name)

    chosen = list(profiles) if int(n) <= 0 else list(profiles)[: int(n)]
    return dict(pair(p) for p in chosen)


def parse_bands(text: str) -> list[str]:
    """The age bands of ``LLM_BANDS`` ("child,adult"); an unknown or missing band is an error naming the allowed."""
    bands = [b.strip() for b in str(text).split(",") if b.strip()]
    unknown = [b for b in bands if b not in AGE_BANDS]
    if unknown or not bands:
        raise ValueError(f"LLM_BANDS has unknown bands {unknown}; use some of {', '.join(AGE_BANDS)}")
    return bands


@dataclass
class Asked:
    """What one round of asking produced: feature replies and claims, negative-mining replies and items, each
    disease's KG neighbours, the seconds it took and the embedded server's start-up seconds (NaN: none)."""
    replies: pd.DataFrame
    claims: pd.DataFrame
    neg_replies: pd.DataFrame
    neg_items: pd.DataFrame
    neighbours: dict = field(default_factory=dict)
    seconds: float = 0.0
    server_start: float = float("nan")

    @property
    def all_replies(self) -> pd.DataFrame:
        return pd.concat([self.replies, self.neg_replies], ignore_index=True)


def ask(llm: LLM, diseases: dict[str, str], bands, n_features: int, max_tokens: int, retries: int,
        negatives: bool = True, n_neighbours: int = 3, annotations: dict[str, set[str]] | None = None,
        budget_s: float = 0.0) -> Asked:
    """Notebook 03's asking: features per disease and band, then (``negatives``) negative mining against each
    disease's ``n_neighbours`` nearest KG diseases with half as many features; stops asking after ``budget_s``
    seconds (0: no limit). The server (if any) stops on return. The shipped reply cache is built by this too."""
    deadline = time.monotonic() + budget_s if budget_s > 0 else None
    annotations = facial_annotations() if annotations is None else annotations
    neighbours = {d: nearest_diseases(d, n_neighbours, annotations) for d in diseases} if negatives else {}
    neg_replies, neg_items = pd.DataFrame(), pd.DataFrame(columns=["disease_id", "disease_name", "kind", "phrase"])
    server_start = float("nan")
    t0 = time.perf_counter()
    with llm:  # a failing endpoint ends the asking inside these calls; what came before is kept
        replies, claims = elicit_features(llm, diseases, bands, n_features, max_tokens, retries, deadline)
        if negatives:
            neg_replies, neg_items = mine_negatives(llm, diseases, neighbours, max(1, n_features // 2), max_tokens,
                                                    retries, deadline)
        if llm.server is not None and llm.server.startup_seconds:
            server_start = llm.server.startup_seconds
    return Asked(replies, claims, neg_replies, neg_items, neighbours, time.perf_counter() - t0, server_start)


def facial_annotations() -> dict[str, set[str]]:
    """Disease -> facial HPO terms annotated to it (HPO, NOT and 0 % excluded)."""
    ann = hpo.annotations()
    ann = ann[ann["hpo_id"].isin(hpo.facial_terms()) & ~(ann["frequency"] == 0.0)]
    return {d: set(g) for d, g in ann.groupby("disease_id")["hpo_id"]}


def annotated_terms(disease_ids) -> dict[str, set[str]]:
    table = facial_annotations()
    return {d: table.get(d, set()) for d in disease_ids}


def nearest_diseases(disease_id: str, k: int = 3, annotations: dict[str, set[str]] | None = None
                     ) -> list[tuple[str, str, float]]:
    """The ``k`` diseases whose facial HPO annotations overlap most (Jaccard) with ``disease_id``'s:
    ``[(id, name, jaccard)]``."""
    table = facial_annotations() if annotations is None else annotations
    mine = table.get(disease_id, set())
    if not mine:
        return []
    names = hpo.disease_names()
    scores = []
    for other, terms in table.items():
        if other == disease_id or not (terms & mine):
            continue
        scores.append((len(terms & mine) / len(terms | mine), other))
    scores.sort(key=lambda s: (-s[0], s[1]))
    out, seen_names = [], {names.get(disease_id, "").lower()}
    for score, other in scores:
        name = names.get(other, other)
        if name.lower() in seen_names:  # the same disease under another id
            continue
        seen_names.add(name.lower())
        out.append((other, name, round(score, 4)))
        if len(out) >= k:
            break
    return out


def mine_negatives(llm: LLM, diseases: dict[str, str], neighbours: dict[str, list[tuple[str, str, float]]],
                   n_features: int = 3, max_tokens: int = 96, retries: int = 1, deadline: float | None = None
                   ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Generative negative mining: ``(replies, items)``, items with kind distinguishing / absent."""
    replies, items = [], []
    for d, name in diseases.items():
        near = [n for _, n, _ in neighbours.get(d, [])]
        row = {"kind": "negatives", "disease_id": d, "disease_name": name, "band": "all"}
        if _over(deadline):
            replies.append({**row, "attempt": 0, "status": "skipped", "problem": BUDGET_SPENT, "items": 0,
                            "reply": None, "cached": False})
            continue
        rows, parsed = _ask(llm, negative_messages(name, near, n_features),
                            lambda text: parse_negatives(text, 3 * n_features), retries, max_tokens, row)
        replies += rows
        for item in parsed.items:
            items.append({"disease_id": d, "disease_name": name, "kind": item["kind"], "phrase": item["phrase"],
                          "neighbours": "; ".join(near), "reply_status": parsed.status,
                          "model_id": rows[-1]["model_id"]})
    cols = ["disease_id", "disease_name", "kind", "phrase", "neighbours", "reply_status", "model_id"]
    return _reply_frame(replies), pd.DataFrame(items, columns=cols)


def ground_table(table: pd.DataFrame, annotated: dict[str, set[str]], threshold: float | str = DEFAULT_THRESHOLD
                 ) -> pd.DataFrame:
    """``table`` (with disease_id, phrase) plus hpo_id, hpo_name, similarity, nearest HPO text and
    whether the grounded term matches an annotation of that disease (``in_kg``)."""
    out = table.copy()
    if out.empty:
        for c in ("hpo_id", "hpo_name", "similarity", "nearest_hpo_text", "in_kg"):
            out[c] = pd.Series(dtype=object)
        return out
    phrases = out["phrase"].tolist()
    g = ground(phrases, threshold=threshold)
    names = hpo.term_names()
    out["hpo_id"] = [t for _, t, _ in g]
    out["hpo_name"] = [names.get(t, "") if t else "" for _, t, _ in g]
    out["similarity"] = [s for _, _, s in g]
    out["nearest_hpo_text"] = matched_text(phrases)
    out["in_kg"] = [bool(t) and any(related(t, a) for a in annotated.get(d, ())) for d, t in
                    zip(out["disease_id"], out["hpo_id"])]
    return out


def llm_evidence(grounded: pd.DataFrame, bands, all_band: str = "all") -> dict[str, dict[str, dict[str, float]]]:
    """Grounded claims -> ``{disease_id: {band: {hpo_id: value}}}`` for ``Profile.with_evidence``.

    The value is the claimed typicality as an HPO frequency midpoint (very common 0.895, common 0.545,
    occasional 0.17; unstated counts as common); the largest claim wins. Bands that were asked get
    their own claims, ``all`` the largest over them; bands not asked get none (no LLM evidence)."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    rows = grounded[grounded["hpo_id"].notna() & (grounded["hpo_id"] != "")] if len(grounded) else grounded
    for d in sorted(set(grounded["disease_id"])) if len(grounded) else []:
        per = {b: {} for b in bands}
        per[all_band] = {}
        for _, r in rows[rows["disease_id"] == d].iterrows():
            v = TYPICAL.get(r["typical"], UNSTATED_TYPICAL)
            for b in (r["band"], all_band):
                if b in per:
                    per[b][r["hpo_id"]] = max(per[b].get(r["hpo_id"], 0.0), v)
        out[d] = per
    return out


def _plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


def elicitation_outcome(llm: LLM, replies: pd.DataFrame) -> dict:
    """How the asking went: ``status`` ("ok" or "degraded"), ``reasons`` (for
    ``report.record_status``), ``table`` (what happened, how often) and ``counts`` (flat, for metrics).

    ``replies`` is every reply row of the run (features and negatives together). The step is degraded when
    the endpoint became unavailable (its requests failed: HTTP errors after the client's retries, bodies that
    are not chat-completions JSON, unreachable, timed out) or sent bad replies (no choices, empty content),
    even ones a retry made good: a rerun may well go better, and such replies are never cached. Replies whose
    *content* did not parse (the model's own answer, cached and deterministic at temperature 0) and prompts
    skipped because the time budget was spent are counted and shown but do not degrade the step: a rerun
    would read the same answers, so rerunning by itself would only cost time. ``llm_answered_live`` counts the
    replies the endpoint sent, ``llm_answered_cache`` those read from a cache (this run's or the shipped one),
    ``llm_answered_packaged`` those of the shipped cache alone."""
    c = llm.counts()
    cols = {"status": "", "problem": "", "kind": "", "disease_id": "", "band": "", "bad_reply": False}
    r = replies.reindex(columns=list(dict.fromkeys([*replies.columns, *cols]))) if len(replies) else \
        pd.DataFrame(columns=list(cols))
    for col, empty in cols.items():
        r[col] = r[col].fillna(empty)
    status, problem = r["status"].astype(str), r["problem"].astype(str)
    bad_reply = r["bad_reply"].astype(bool)
    prompts = int(len(r[["kind", "disease_id", "band"]].drop_duplicates())) if len(r) else 0
    failed = status == "failed"
    not_asked = (status == "skipped") & (problem == NOT_ASKED)
    budget = (status == "skipped") & (problem == BUDGET_SPENT)
    unusable = status.isin(["malformed", "failed"]) & ~bad_reply  # content that did not parse
    rows = [("prompts", prompts), ("requests sent to the endpoint", c["requests"]),
            ("HTTP attempts (the client's retries included)", c["http_attempts"]),
            ("replies received", c["replies"]), ("replies read from this run's cache", c["cache_hits"]),
            ("replies read from the shipped cache", c["packaged_hits"])]
    rows += [(f"failed requests: {reason}", n) for reason, n in sorted(c["failures"].items())]
    rows += [(f"bad replies from the endpoint: {p}", n) for p, n in sorted(c["bad_reply_problems"].items())]
    rows += [(f"unusable reply content: {p}", int(n)) for p, n in problem[unusable].value_counts().sort_index().items()]
    rows += [("prompts without a usable reply after retries", int(failed.sum())),
             ("prompts not asked (LLM unavailable)", int(not_asked.sum())),
             ("prompts not asked (time budget spent)", int(budget.sum()))]
    table = pd.DataFrame(rows, columns=["what", "count"]).set_index("what")
    reasons = []
    if c["unavailable"]:
        reasons.append(f"LLM unavailable after {_plural(c['requests'], 'request')}"
                       f" ({_plural(int(not_asked.sum()), 'prompt')} not asked): {c['unavailable'].splitlines()[0]}")
    endpoint_failed = failed & bad_reply
    if endpoint_failed.any():
        why = problem[endpoint_failed].value_counts()
        reasons.append(f"{int(endpoint_failed.sum())} of {_plural(prompts, 'prompt')} ended without a usable reply "
                       f"after retries (" + "; ".join(f"{p}: {n}" for p, n in why.items()) + ")")
    if c["bad_replies"]:
        reasons.append(f"{_plural(c['bad_replies'], 'bad reply', 'bad replies')} from the endpoint ("
                       + "; ".join(f"{p}: {n}" for p, n in sorted(c["bad_reply_problems"].items())) + ")")
    counts = {"llm_prompts": prompts, "llm_requests": c["requests"], "llm_http_attempts": c["http_attempts"],
              "llm_failed_requests": c["failed_requests"], "llm_bad_replies": c["bad_replies"],
              "llm_unusable_replies": int(unusable.sum()), "llm_prompts_failed": int(failed.sum()),
              "llm_prompts_not_asked": int(not_asked.sum()), "llm_prompts_over_budget": int(budget.sum()),
              "llm_unavailable_reason": next(iter(c["failures"]), "") if c["unavailable"] else "",
              "llm_answered_live": c["replies"], "llm_answered_cache": c["cache_hits"] + c["packaged_hits"],
              "llm_answered_packaged": c["packaged_hits"]}
    return {"status": "degraded" if reasons else "ok", "reasons": reasons, "table": table, "counts": counts,
            "error": c["unavailable"]}
