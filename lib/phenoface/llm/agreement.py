"""Measuring the grounding step and the LLM's agreement with the KG.

Grounding is measured on a labelled phrase set kept as data (``assets/grounding_phrases.csv``): lay and
clinical phrases written by hand from HPO term names and synonyms, each with its correct facial HPO id, plus
phrases that name no facial term (empty id: the right answer is "nothing"). The file fixes each phrase's
split: whole terms alternate between ``validation`` (chooses the similarity threshold) and ``test`` (reported
once).

    >>> from phenoface.llm.agreement import evaluate_grounding
    >>> ev = evaluate_grounding("auto")       # or a number in [0, 1] to force the threshold
    >>> ev["threshold"], ev["metrics"]["grounding_accuracy"]

The LLM's KG precision gets a disease-shuffled baseline: the terms grounded for disease A scored against
the KG annotations of another disease (seeded derangements), so "agrees with the KG" can be read against
"agrees with the KG of some other dysmorphic disease".
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pandas as pd

from .. import hpo
from ..stats import bootstrap_ci, bootstrap_stat_ci
from .terms import related, term_index

PHRASES = Path(__file__).resolve().parents[1] / "assets" / "grounding_phrases.csv"
SPLITS = ("validation", "test")
WORDINGS = ("lay", "clinical")
GRID = np.round(np.arange(0.50, 1.0001, 0.01), 2)  # candidate thresholds (cosine similarity)


# -- the labelled phrase set -----------------------------------------------------------------------------
def load_phrases(path: str | Path | None = None) -> pd.DataFrame:
    """The labelled phrases: ``phrase``, ``hpo_id`` ("" = no facial term), ``wording`` (lay / clinical) and
    ``split`` (validation / test). Raises ValueError on a malformed file."""
    path = Path(path) if path is not None else PHRASES
    df = pd.read_csv(path, comment="#", dtype=str, keep_default_na=False)
    need = {"phrase", "hpo_id", "wording", "split"}
    if not need <= set(df.columns):
        raise ValueError(f"{path} needs columns {sorted(need)}, has {list(df.columns)}")
    df = df.assign(phrase=df["phrase"].str.strip(), hpo_id=df["hpo_id"].str.strip())
    bad = sorted(set(df["split"]) - set(SPLITS)) + sorted(set(df["wording"]) - set(WORDINGS))
    if bad or (df["phrase"] == "").any() or df["phrase"].duplicated().any():
        raise ValueError(f"{path}: unknown split/wording {bad}, or an empty or repeated phrase")
    return df.reset_index(drop=True)


def predict(phrases, terms=None) -> pd.DataFrame:
    """Each phrase's nearest facial term (name or synonym) and its cosine similarity, before any threshold."""
    phrases = [str(p) for p in phrases]
    index = term_index(None if terms is None else frozenset(terms))
    best, sims = index.search(phrases)
    return pd.DataFrame({"phrase": phrases, "top_id": [index.ids[b] for b in best],
                         "top_text": [index.texts[b] for b in best], "similarity": np.asarray(sims, float)})


# -- scoring and the threshold ----------------------------------------------------------------------------
def _none(x) -> str:
    return "" if x is None or (isinstance(x, float) and np.isnan(x)) else str(x)


def grounded_at(top_ids, similarity, threshold: float) -> list[str]:
    """The grounded id per phrase at ``threshold`` ("" below it)."""
    return [t if s >= threshold else "" for t, s in zip(top_ids, np.asarray(similarity, float))]


def correct(predicted, truth, family: bool = False) -> np.ndarray:
    """1 where the grounded id is the labelled one (or both are nothing); with ``family`` a direct is_a
    parent or child of the labelled term also counts. 0 otherwise."""
    out = []
    for p, t in zip(predicted, truth):
        p, t = _none(p), _none(t)
        out.append(p == t or (family and bool(p) and bool(t) and related(p, t)))
    return np.asarray(out, float)


def accuracy_curve(top_ids, similarity, truth, grid=GRID) -> pd.DataFrame:
    """Accuracy at every candidate threshold."""
    return pd.DataFrame({"threshold": np.asarray(grid, float),
                         "accuracy": [correct(grounded_at(top_ids, similarity, th), truth).mean() for th in grid]})


def choose_threshold(top_ids, similarity, truth, grid=GRID) -> tuple[float, pd.DataFrame]:
    """The threshold with the highest accuracy on these (validation) phrases; ties go to the higher
    threshold (the stricter grounding). Returns ``(threshold, accuracy curve)``."""
    if not len(truth):
        raise ValueError("no phrases to choose a grounding threshold on")
    curve = accuracy_curve(top_ids, similarity, truth, grid)
    best = curve["accuracy"].max()
    return float(curve.loc[np.isclose(curve["accuracy"], best), "threshold"].max()), curve


def resolve_threshold(value) -> str | float:
    """``"auto"`` (choose on the validation phrases) or a number in [0, 1]; anything else is an error that
    says what is allowed (notebook parameter ``LLM_THRESHOLD``)."""
    if isinstance(value, str):
        text = value.strip().lower()
        if text == "auto":
            return "auto"
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"LLM_THRESHOLD={value!r}: use \"auto\" (chosen on the validation phrases) or a "
                             "cosine similarity between 0 and 1, e.g. 0.8") from None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)) or \
            not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"LLM_THRESHOLD={value!r}: use \"auto\" (chosen on the validation phrases) or a cosine "
                         "similarity between 0 and 1, e.g. 0.8")
    return float(value)


def evaluate_grounding(threshold="auto", phrases: pd.DataFrame | None = None, terms=None, seed: int = 0) -> dict:
    """Choose (or take) the threshold on the validation phrases and score the test phrases once.

    Returns ``threshold``, ``source`` ("validation" or "forced"), ``curve`` (validation accuracy per
    threshold), ``table`` (every phrase with its prediction at the threshold) and ``metrics``:
    ``grounding_accuracy`` / ``grounding_accuracy_family`` on test with 95 % bootstrap intervals (over
    phrases), their validation counterparts, and two trivial baselines on test: ground nothing
    (``grounding_accuracy_reject_all``) and always take the nearest term (``grounding_accuracy_no_threshold``);
    ``grounding_accuracy_lay`` / ``_clinical`` split the test figure by wording."""
    df = load_phrases() if phrases is None else phrases.reset_index(drop=True)
    pred = predict(df["phrase"], terms)
    df = df.assign(top_id=pred["top_id"].values, top_text=pred["top_text"].values,
                   similarity=pred["similarity"].values)
    val, test = df[df["split"] == "validation"], df[df["split"] == "test"]
    forced = resolve_threshold(threshold)
    chosen, curve = choose_threshold(val["top_id"], val["similarity"], val["hpo_id"])
    th = chosen if forced == "auto" else forced
    df["grounded_id"] = grounded_at(df["top_id"], df["similarity"], th)
    df["correct"] = correct(df["grounded_id"], df["hpo_id"])
    df["correct_family"] = correct(df["grounded_id"], df["hpo_id"], family=True)
    names = hpo.term_names()
    df["hpo_name"] = [names.get(t, "") for t in df["hpo_id"]]
    df["grounded_name"] = [names.get(t, "") for t in df["grounded_id"]]
    test = df[df["split"] == "test"]
    val = df[df["split"] == "validation"]
    acc, acc_ci = bootstrap_ci(test["correct"].values, seed=seed)
    fam, fam_ci = bootstrap_ci(test["correct_family"].values, seed=seed)
    truth = test["hpo_id"].tolist()
    metrics = {
        "grounding_threshold": th, "grounding_threshold_source": "validation" if forced == "auto" else "forced",
        "grounding_threshold_validation_choice": chosen,
        "grounding_accuracy": acc, "grounding_accuracy_ci": list(acc_ci),
        "grounding_accuracy_family": fam, "grounding_accuracy_family_ci": list(fam_ci),
        "grounding_accuracy_validation": float(val["correct"].mean()) if len(val) else float("nan"),
        "grounding_accuracy_reject_all": float(correct([""] * len(test), truth).mean()) if len(test) else float("nan"),
        "grounding_accuracy_no_threshold": float(correct(test["top_id"], truth).mean()) if len(test) else float("nan"),
        "grounding_phrases_test": int(len(test)), "grounding_phrases_validation": int(len(val)),
    }
    for w in WORDINGS:  # lay vs clinical wording on test (the non-facial phrases carry a wording too)
        part = test[test["wording"] == w]
        metrics[f"grounding_accuracy_{w}"] = float(part["correct"].mean()) if len(part) else float("nan")
    return {"threshold": th, "source": metrics["grounding_threshold_source"], "curve": curve, "table": df,
            "metrics": metrics}


def threshold_stability(table: pd.DataFrame, n: int = 200, seed: int = 0) -> pd.DataFrame:
    """How much the choice depends on which validation phrases were written: the threshold chosen on ``n``
    bootstrap resamples of the validation phrases of ``table`` (``evaluate_grounding(...)["table"]``) and the
    test accuracy each would give. For benchmarks, not for choosing."""
    val, test = table[table["split"] == "validation"], table[table["split"] == "test"]
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        v = val.iloc[rng.integers(0, len(val), len(val))]
        th, _ = choose_threshold(v["top_id"], v["similarity"], v["hpo_id"])
        acc = correct(grounded_at(test["top_id"], test["similarity"], th), test["hpo_id"]).mean()
        rows.append({"threshold": th, "test_accuracy": float(acc)})
    return pd.DataFrame(rows)


@functools.lru_cache(maxsize=1)
def calibrated_threshold() -> float:
    """The threshold chosen on the packaged validation phrases (default facial-term index)."""
    df = load_phrases()
    val = df[df["split"] == "validation"]
    pred = predict(val["phrase"])
    return choose_threshold(pred["top_id"], pred["similarity"], val["hpo_id"])[0]


# -- KG precision and its disease-shuffled baseline ------------------------------------------------------
def derangement(ids, seed: int = 0) -> dict:
    """A seeded random permutation of ``ids`` with no fixed point: ``{id: another id}``. Needs two ids."""
    ids = list(dict.fromkeys(ids))
    if len(ids) < 2:
        raise ValueError(f"a derangement needs at least two diseases, got {len(ids)}")
    rng = np.random.default_rng(seed)
    while True:  # rejection sampling: uniform over derangements, ~e tries on average
        perm = rng.permutation(len(ids))
        if not np.any(perm == np.arange(len(ids))):
            return {ids[i]: ids[j] for i, j in enumerate(perm)}


def claim_hits(claimed: dict[str, set[str]], annotated: dict[str, set[str]], pool=None, n_shuffles: int = 20,
               seed: int = 0) -> pd.DataFrame:
    """One row per distinct grounded claim (disease, term): ``hit`` (1 when the term or its direct parent or
    child is annotated to that disease, as in :func:`~phenoface.llm.ground.agreement`) and ``hit_shuffled``
    (the share of ``n_shuffles`` seeded derangements of ``pool``, default the diseases of ``annotated``, under
    which the claim matches the *other* disease's annotations). The mean of ``hit`` is the micro KG
    precision; NaN shuffled hits when the pool has fewer than two diseases."""
    pool = list(dict.fromkeys(list(annotated) if pool is None else list(pool)))
    maps = [derangement(pool, seed + k) for k in range(n_shuffles)] if len(pool) >= 2 else []
    rows = []
    for d in sorted(claimed):
        for t in sorted(claimed[d]):
            hit = any(related(t, a) for a in annotated.get(d, ()))
            others = [m[d] for m in maps if d in m]
            sh = (float(np.mean([any(related(t, a) for a in annotated.get(o, ())) for o in others]))
                  if others else float("nan"))
            rows.append({"disease_id": d, "hpo_id": t, "hit": float(hit), "hit_shuffled": sh})
    return pd.DataFrame(rows, columns=["disease_id", "hpo_id", "hit", "hit_shuffled"])


def kg_precision_summary(hits: pd.DataFrame, seed: int = 0) -> dict:
    """``kg_precision`` and ``kg_precision_shuffled`` with 95 % intervals from resampling diseases, the
    paired difference with its interval, and the number of diseases with claims."""
    nan2 = [float("nan"), float("nan")]
    if not len(hits):
        return {"kg_precision": float("nan"), "kg_precision_ci": nan2, "kg_precision_shuffled": float("nan"),
                "kg_precision_shuffled_ci": nan2, "kg_precision_lift": float("nan"), "kg_precision_lift_ci": nan2,
                "kg_precision_diseases": 0}
    groups = hits["disease_id"].values
    p, p_ci = bootstrap_ci(hits["hit"].values, groups=groups, seed=seed)
    sh = hits["hit_shuffled"].values
    if np.isfinite(sh).all() and hits["disease_id"].nunique() < 2:  # no interval from a single disease
        s, s_ci, lift, lift_ci = float(np.mean(sh)), tuple(nan2), float(np.mean(hits["hit"].values - sh)), tuple(nan2)
    elif np.isfinite(sh).all():
        s, s_ci = bootstrap_ci(sh, groups=groups, seed=seed)
        diff = hits["hit"].values - sh
        lift, lift_ci = bootstrap_stat_ci(lambda i: float(np.mean(diff[i])), len(diff), groups=groups, seed=seed)
    else:
        s, s_ci, lift, lift_ci = float("nan"), tuple(nan2), float("nan"), tuple(nan2)
    return {"kg_precision": p, "kg_precision_ci": list(p_ci), "kg_precision_shuffled": s,
            "kg_precision_shuffled_ci": list(s_ci), "kg_precision_lift": lift, "kg_precision_lift_ci": list(lift_ci),
            "kg_precision_diseases": int(hits["disease_id"].nunique())}
