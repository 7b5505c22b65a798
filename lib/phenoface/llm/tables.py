"""What notebook 03 shows and records: the endpoint, how the asking went, example exchanges, the grounding
measurement, the LLM's agreement with the KG, per-band claims, hard negatives, and the step's metrics.

Every function here takes what the asking, grounding and measuring returned and gives back a table, a
Markdown text or a dict; nothing is asked or computed anew.
"""

from __future__ import annotations

import os

import pandas as pd

from ..stats import fmt_ci
from .client import LLM
from .elicit import Asked, reply_speed
from .ground import agreement
from .agreement import claim_hits, kg_precision_summary

OUTCOMES = ["grounded, in KG", "grounded, not in KG", "ungrounded"]


def _pct(x) -> str:
    return "n/a (nothing grounded)" if pd.isna(x) else f"{x:.0%}"


# -- the endpoint and the asking ---------------------------------------------------------------------------------
def endpoint_table(llm: LLM, max_tokens: int) -> pd.Series:
    """Endpoint, model, settings and both reply caches, for the report (the API key is never shown)."""
    return pd.Series({
        "endpoint": llm.endpoint, "model id": llm.model_id, "kind": llm.kind,
        "API key": "set in OPENAI_API_KEY (not shown)" if os.environ.get("OPENAI_API_KEY") else "none",
        "temperature": llm.temperature, "seed": llm.seed, "max tokens": max_tokens,
        "reply cache": str(llm.cache.folder) if llm.cache else "none",
        "cached replies before this run": len(llm.cache) if llm.cache else 0,
        "shipped replies": llm.packaged.describe() if llm.packaged is not None else "not read (LLM_CACHE: none)"},
        name="LLM")


def asking_summary(asked: Asked, outcome: dict) -> str:
    """Markdown: whether the endpoint failed, how many replies came live and from a cache, the speed of the live
    ones, and whether the step is degraded."""
    all_replies, c = asked.all_replies, outcome["counts"]
    parts = []
    if outcome["error"]:
        parts.append(f"**LLM unavailable: the asking stopped.** {outcome['error']}\n\n{len(asked.claims)} claimed "
                     "phrase(s) received before it are kept; prompts not asked get no `llm` evidence.")
    answered = int(all_replies["reply"].notna().sum()) if "reply" in all_replies else 0
    if answered:
        speed = reply_speed(all_replies)
        start = asked.server_start
        tok_s = speed["tokens_per_s"]
        parts.append(f"{answered} replies in {asked.seconds:.1f} s; "
                     + (f"server start {start:.1f} s; " if start == start else "no server started; ")
                     + (f"{tok_s:.1f} tokens/s on fresh replies." if tok_s == tok_s else "no fresh replies."))
    shipped = c["llm_answered_packaged"]
    parts.append(f"**Answered live: {c['llm_answered_live']}; from a cache: {c['llm_answered_cache']}**"
                 + (f" ({shipped} shipped with the package: replies this model file, server and settings gave with "
                    "no time budget, the same on any machine however fast)" if shipped else "") + ".")
    parts.append("**Degraded** — this step will be redone by the next run:\n\n"
                 + "\n".join(f"- {r}" for r in outcome["reasons"]) if outcome["reasons"] else
                 "The endpoint answered every prompt it was asked (unparsable answers, if any, are counted below).")
    return "\n\n".join(parts)


def reply_counts(all_replies: pd.DataFrame):
    """Replies by kind and status (or a note that there were none)."""
    return all_replies.groupby(["kind", "status"]).size().rename("replies").to_frame() if len(all_replies) else \
        "no replies"


def example_exchanges(all_replies: pd.DataFrame) -> list[str]:
    """Markdown for up to four verbatim exchanges: two feature replies, one failed, one negative-mining reply."""
    if not len(all_replies) or "reply" not in all_replies:
        return ["No replies to show (no LLM evidence in this run)."]
    answered = all_replies[all_replies["reply"].notna()]
    examples = pd.concat([answered[answered["kind"] == "features"].head(2),
                          answered[answered["status"] == "failed"].head(1),
                          answered[answered["kind"] == "negatives"].head(1)]).drop_duplicates(
        ["kind", "disease_id", "band", "attempt"])
    out = []
    for _, row in examples.iterrows():
        reply = str(row["reply"]).replace("```", "'''")
        where = {"cache": " (cache)", "packaged": " (shipped cache)"}.get(row.get("source"), "") if "source" in row \
            else (" (cache)" if row["cached"] else "")
        out.append(f"**{row['disease_name']} · {row['band']} · {row['kind']} · attempt {row['attempt']} · "
                   f"status `{row['status']}`** — reply from `{row['model_id']}`{where}\n\n> {row['prompt']}\n\n"
                   f"```\n{reply}\n```")
    return out


# -- grounding, measured -------------------------------------------------------------------------------------------
def grounding_versus_baselines(gev: dict) -> pd.DataFrame:
    """Test-phrase accuracy of the grounder at its threshold beside grounding nothing and the nearest term."""
    gm, threshold = gev["metrics"], gev["threshold"]
    col = "accuracy, parent/child allowed"
    return pd.DataFrame([
        {"grounder (test phrases)": f"MiniLM, threshold {threshold:.2f}",
         "accuracy": fmt_ci(gm["grounding_accuracy"], gm["grounding_accuracy_ci"]),
         col: fmt_ci(gm["grounding_accuracy_family"], gm["grounding_accuracy_family_ci"])},
        {"grounder (test phrases)": "baseline: ground nothing",
         "accuracy": f"{gm['grounding_accuracy_reject_all']:.2f}", col: ""},
        {"grounder (test phrases)": "baseline: nearest term, no threshold",
         "accuracy": f"{gm['grounding_accuracy_no_threshold']:.2f}", col: ""}]).set_index("grounder (test phrases)")


def grounding_note(gev: dict) -> str:
    gm = gev["metrics"]
    test = gev["table"][gev["table"]["split"] == "test"]
    return (f"{gm['grounding_phrases_test']} test phrases ({(test['hpo_id'] == '').sum()} that name no facial term); "
            f"validation accuracy at the threshold {gm['grounding_accuracy_validation']:.2f}; on test, lay wording "
            f"{gm['grounding_accuracy_lay']:.2f} and clinical wording {gm['grounding_accuracy_clinical']:.2f}. "
            "Intervals: 95 % bootstrap over phrases. Test phrases grounded wrongly:")


def wrong_test_phrases(gev: dict):
    table = gev["table"]
    wrong = table[(table["split"] == "test") & (table["correct"] == 0)]
    return wrong[["phrase", "wording", "hpo_id", "hpo_name", "top_text", "similarity", "grounded_id",
                  "grounded_name"]] if len(wrong) else "none"


# -- agreement with the KG -----------------------------------------------------------------------------------------
def kg_agreement(grounded: pd.DataFrame, diseases: dict[str, str], annotated: dict[str, set[str]],
                 seed: int = 0) -> dict:
    """The grounded claims against the KG: ``grounding_rate``, ``claimed`` (disease -> grounded terms),
    ``agree`` (:func:`~phenoface.llm.ground.agreement`), ``per_model`` (a row per model), ``hits`` (one per distinct
    claim, with its disease-shuffled baseline over every disease of ``annotated``) and ``kgp`` (KG precision,
    shuffled baseline and their paired difference with intervals)."""
    ok = grounded["hpo_id"].notna() if len(grounded) else pd.Series(dtype=bool)
    grounding_rate = float(ok.mean()) if len(grounded) else float("nan")
    claimed = {d: set(g["hpo_id"].dropna()) for d, g in grounded[ok].groupby("disease_id")} if len(grounded) else {}
    claimed = {d: claimed.get(d, set()) for d in diseases} if len(grounded) else {}
    rows = []
    for model, g in (grounded.groupby("model_id") if len(grounded) else []):
        cl = {d: set(x["hpo_id"].dropna()) for d, x in g.groupby("disease_id")}
        a = agreement({d: cl.get(d, set()) for d in diseases}, annotated)
        rows.append({"model": model, "claims": len(g), "grounded": int(g["hpo_id"].notna().sum()),
                     "grounding rate": g["hpo_id"].notna().mean(), "KG precision": a["precision"],
                     "KG recall": a["recall"], "distinct grounded terms": a["claims"],
                     "annotated facial terms": a["annotations"]})
    hits = claim_hits(claimed, annotated, pool=list(annotated), seed=seed)  # pool: every disease of notebook 02
    return {"ok": ok, "grounding_rate": grounding_rate, "claimed": claimed, "agree": agreement(claimed, annotated),
            "per_model": pd.DataFrame(rows), "hits": hits, "kgp": kg_precision_summary(hits, seed=seed)}


def kg_precision_table(kgp: dict) -> pd.DataFrame:
    col = "value [95 % CI over diseases]"
    return pd.DataFrame([
        {"KG precision of grounded claims": "the disease's own HPO annotations",
         col: fmt_ci(kgp["kg_precision"], kgp["kg_precision_ci"])},
        {"KG precision of grounded claims": "baseline: another disease's annotations (shuffled)",
         col: fmt_ci(kgp["kg_precision_shuffled"], kgp["kg_precision_shuffled_ci"])},
        {"KG precision of grounded claims": "own minus shuffled (paired)",
         col: fmt_ci(kgp["kg_precision_lift"], kgp["kg_precision_lift_ci"])},
    ]).set_index("KG precision of grounded claims")


def kg_precision_note(kga: dict, n_annotated: int) -> str:
    return (f"{len(kga['hits'])} distinct grounded (disease, term) claims over {kga['kgp']['kg_precision_diseases']} "
            "disease(s). The shuffled baseline scores each disease's grounded terms against the annotations of a "
            f"different disease of notebook 02's {n_annotated} (the mean over 20 seeded derangements, so no disease "
            "is ever paired with itself): a model that names common dysmorphic features regardless of the disease "
            "reaches it too. Intervals resample diseases; with so few diseases they are wide.")


def verdict(model_id: str, n_claims: int, kga: dict, llm_weight: float) -> str:
    """One paragraph: grounding rate, KG precision (and its shuffled baseline), recall; a warning when poor."""
    kgp = kga["kgp"]
    text = (f"**{model_id}**: {_pct(kga['grounding_rate'])} of {n_claims} claimed phrases reach the grounding "
            f"threshold (grounding rate, not correctness); of the distinct grounded terms {_pct(kgp['kg_precision'])} "
            f"agree with the disease's HPO annotations (precision; {_pct(kgp['kg_precision_shuffled'])} against "
            f"another disease's) and they recover {_pct(kga['agree']['recall'])} of the annotated facial terms "
            "(recall).")
    if not kgp["kg_precision"] >= 0.5:
        text += (" **Agreement is poor**: most claims are not backed by the knowledge graph. With the 135M "
                 "default model this is expected — it invents and repeats features — which is why LLM evidence "
                 f"enters profiles with a trust weight of {llm_weight} and the KG annotations keep theirs.")
    return text


# -- per band ------------------------------------------------------------------------------------------------------
def claims_by_band(grounded: pd.DataFrame, ok: pd.Series, bands) -> pd.DataFrame | None:
    """Grounded terms per disease (rows) claimed at each band (✓), with whether the KG annotates them; None when
    nothing was grounded."""
    if not ok.any():
        return None
    g = grounded[ok]
    table = (g.assign(mark="✓").pivot_table(index=["disease_name", "hpo_name"], columns="band", values="mark",
                                             aggfunc="first").reindex(columns=bands).fillna(""))
    table["KG"] = ["annotated" if any(g[(g["disease_name"] == d) & (g["hpo_name"] == t)]["in_kg"]) else ""
                   for d, t in table.index]
    return table


def band_outcomes(grounded: pd.DataFrame, bands) -> pd.DataFrame:
    """Claimed phrases per band: grounded and in the KG, grounded and not, ungrounded."""
    counts = (grounded.assign(outcome=[("grounded, in KG" if k else "grounded, not in KG") if pd.notna(t) else
                                       "ungrounded" for t, k in zip(grounded["hpo_id"], grounded["in_kg"])])
              .groupby(["band", "outcome"]).size().unstack(fill_value=0).reindex(index=bands, fill_value=0)
              if len(grounded) else pd.DataFrame(index=bands))
    for col in OUTCOMES:
        if col not in counts:
            counts[col] = 0
    return counts[OUTCOMES]


# -- negatives -----------------------------------------------------------------------------------------------------
def negative_use(neg: pd.DataFrame) -> pd.DataFrame:
    """``neg`` (grounded negative-mining items) with ``use``: a grounded absent feature the KG does not annotate
    is a negative concept; one it does annotate contradicts the KG and is dropped."""
    if len(neg):
        neg = neg.copy()
        neg["use"] = ["negative concept" if (k == "absent" and pd.notna(t) and not kg) else
                      ("contradicts KG: dropped" if (k == "absent" and pd.notna(t)) else
                       ("" if pd.notna(t) else "ungrounded"))
                      for k, t, kg in zip(neg["kind"], neg["hpo_id"], neg["in_kg"])]
    return neg


def hard_negatives(neg: pd.DataFrame, diseases: dict[str, str], neighbours: dict, model_id: str) -> list[dict]:
    """Per disease: its KG neighbours, distinguishing and absent features (grounded), and ``negative_terms``:
    grounded absent terms the KG does not annotate to it (``llm_negatives.json``)."""
    out = []
    for d, name in diseases.items():
        part = neg[neg["disease_id"] == d] if len(neg) else neg

        def pick(kind):
            return [{"phrase": r.phrase, "hpo_id": r.hpo_id if pd.notna(r.hpo_id) else None,
                     "hpo_name": r.hpo_name, "similarity": r.similarity, "in_kg": bool(r.in_kg)}
                    for r in part[part["kind"] == kind].itertuples()] if len(part) else []

        absent = pick("absent")
        out.append({"disease_id": d, "disease_name": name, "model_id": model_id,
                    "neighbours": [{"disease_id": i, "disease_name": n, "jaccard": j}
                                   for i, n, j in neighbours.get(d, [])],
                    "distinguishing": pick("distinguishing"), "absent": absent,
                    "negative_terms": sorted({a["hpo_id"] for a in absent if a["hpo_id"] and not a["in_kg"]})})
    return out


def negatives_note(negatives: list[dict], neg_replies: pd.DataFrame, asked_negatives: bool) -> str:
    n = sum(len(x["negative_terms"]) for x in negatives)
    failed = int((neg_replies["status"] == "failed").sum()) if len(neg_replies) else 0
    return (f"**{n} hard negative term(s)** saved for {len(negatives)} disease(s); {failed} negative-mining prompt(s) "
            "ended without a usable reply"
            + (" — the model could not answer this task in the asked form, so no negatives are invented for it."
               if n == 0 and asked_negatives else "."))


# -- metrics -------------------------------------------------------------------------------------------------------
def step_metrics(llm: LLM, asked: Asked, outcome: dict, grounded: pd.DataFrame, kga: dict, negatives: list[dict],
                 diseases: dict, bands, gev: dict, seconds: float) -> dict:
    """The step's recorded metrics: model, endpoint, replies and how they went, grounding, KG agreement, hard
    negatives, sizes, seconds; the outcome counts (requests, live / cached answers, ...), grounding accuracy on
    the test phrases and the KG precision with its shuffled baseline (``*_ci`` = [low, high])."""
    all_replies = asked.all_replies
    status = all_replies["status"] if len(all_replies) else pd.Series(dtype=object)
    metrics = {
        "llm_model": llm.model_id, "llm_endpoint": llm.endpoint, "llm_available": int(not outcome["error"]),
        "llm_replies": int(all_replies["reply"].notna().sum()) if "reply" in all_replies else 0,
        "llm_failures": int((status == "failed").sum()), "llm_salvaged": int((status == "salvaged").sum()),
        "llm_skipped": int((status == "skipped").sum()),
        "llm_cached_replies": int(all_replies["cached"].fillna(False).astype(bool).sum()) if len(all_replies) else 0,
        "llm_tokens_per_s": reply_speed(all_replies)["tokens_per_s"],
        "llm_server_start_seconds": asked.server_start,
        "claims": len(grounded), "grounding_rate": kga["grounding_rate"], "kg_recall": kga["agree"]["recall"],
        "hard_negatives": sum(len(n["negative_terms"]) for n in negatives), "diseases_asked": len(diseases),
        "bands_asked": len(bands), "seconds": seconds,
    } | outcome["counts"]
    return metrics | gev["metrics"] | kga["kgp"]
