"""What a reader study's answers say, with intervals: can people tell generated faces from real ones (per
source), do they name the disease as well on generated faces as on real ones, do they agree, do they learn.

Real vs generated is scored as **balanced accuracy** against the real faces (the mean of the share of real
faces called real and the share of the source's faces called generated): 0.5 means indistinguishable whatever
share of the set each kind makes up and however often a rater says "real".

Intervals resample raters and items at once (a two-way bootstrap, by weights): both are samples, and a figure
from two raters of one hundred faces must not look as sure as one from a class of thirty.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .store import COLUMNS
from .studyset import StudySet

LEVEL = 0.95


def merge(answers: pd.DataFrame, study: StudySet) -> pd.DataFrame:
    """Answers joined to the truth; answers to items this set does not hold are dropped (and counted in
    ``attrs['unknown_items']``). ``position``: the answer's rank in its rater's sequence (0 = first)."""
    a = answers.copy()
    known = a["item"].isin(study.items.index)
    a = a[known]
    truth = study.items[["source", "real", "disease_id", "severity"]].rename(columns={"severity": "true_severity"})
    out = a.join(truth, on="item")
    out["said_real"] = out["said_real"].astype(bool)
    out["real"] = out["real"].astype(bool)
    out["realness_correct"] = (out["said_real"] == out["real"]).astype(float)
    out["disease_correct"] = (out["disease"] == out["disease_id"]).astype(float)
    order = "answered_at" if "answered_at" in out else "id"
    out = out.sort_values(["rater", "round", order]).reset_index(drop=True)
    out["position"] = out.groupby(["rater", "round"]).cumcount()
    out.attrs["unknown_items"] = int((~known).sum())
    return out


class TwoWay:
    """Bootstrap weights over raters and items: replicate b weighs answer n by (times rater r was drawn) x
    (times item i was drawn). A statistic is then a weighted mean over answers, computed for all replicates at
    once."""

    def __init__(self, frame: pd.DataFrame, n_boot: int = 1000, seed: int = 0):
        rng = np.random.default_rng(seed)
        raters, r_idx = np.unique(frame["rater"].astype(str), return_inverse=True)
        items, i_idx = np.unique(frame["item"].astype(str), return_inverse=True)
        wr = rng.multinomial(len(raters), np.full(len(raters), 1 / len(raters)), size=n_boot) if len(raters) else None
        wi = rng.multinomial(len(items), np.full(len(items), 1 / len(items)), size=n_boot) if len(items) else None
        self.w = (wr[:, r_idx] * wi[:, i_idx]).astype(float) if len(frame) else np.zeros((n_boot, 0))
        self.frame = frame

    def mean(self, values: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """The weighted mean of ``values`` over ``mask`` in every replicate (NaN where a replicate drew none)."""
        w = self.w[:, mask]
        tot = w.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(tot > 0, (w * values[mask]).sum(axis=1) / np.where(tot > 0, tot, 1), np.nan)


def _ci(boots: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    b = boots[np.isfinite(boots)]
    if len(b) < 10:
        return float("nan"), float("nan")
    a = (1 - level) / 2
    lo, hi = np.quantile(b, [a, 1 - a])
    return float(lo), float(hi)


def _mean(values: np.ndarray, mask: np.ndarray) -> float:
    return float(values[mask].mean()) if mask.any() else float("nan")


def balanced_accuracy(frame: pd.DataFrame, boot: TwoWay, sources=None) -> tuple[float, tuple[float, float]]:
    """Real vs generated, real faces against the faces of ``sources`` (all non-real sources when None)."""
    c = frame["realness_correct"].to_numpy(float)
    real = frame["real"].to_numpy(bool)
    fake = ~real if sources is None else frame["source"].isin(list(sources)).to_numpy()
    point = 0.5 * (_mean(c, real) + _mean(c, fake))
    return point, _ci(0.5 * (boot.mean(c, real) + boot.mean(c, fake)))


def accuracy(frame: pd.DataFrame, boot: TwoWay, column: str, mask) -> tuple[float, tuple[float, float]]:
    v = frame[column].to_numpy(float)
    mask = np.asarray(mask, bool)
    return _mean(v, mask), _ci(boot.mean(v, mask))


def ratio(frame: pd.DataFrame, boot: TwoWay, column: str, top, bottom) -> tuple[float, tuple[float, float]]:
    v = frame[column].to_numpy(float)
    top, bottom = np.asarray(top, bool), np.asarray(bottom, bool)
    with np.errstate(invalid="ignore", divide="ignore"):
        point = _mean(v, top) / _mean(v, bottom)
        boots = boot.mean(v, top) / boot.mean(v, bottom)
    return float(point), _ci(boots)


def learning_slope(frame: pd.DataFrame, boot: TwoWay, column: str) -> tuple[float, tuple[float, float]]:
    """Change in the share correct from a rater's first answer to their last (least squares on the position
    scaled to 0..1 within each rater): positive = they got better as they went."""
    n = frame.groupby(["rater", "round"])["position"].transform("max").to_numpy(float)
    x = np.where(n > 0, frame["position"].to_numpy(float) / np.where(n > 0, n, 1), 0.5)
    y = frame[column].to_numpy(float)

    def slope(w):
        tot = w.sum(axis=-1, keepdims=True)
        tot = np.where(tot > 0, tot, np.nan)
        xm, ym = (w * x).sum(-1, keepdims=True) / tot, (w * y).sum(-1, keepdims=True) / tot
        with np.errstate(invalid="ignore", divide="ignore"):
            return ((w * (x - xm) * (y - ym)).sum(-1) / (w * (x - xm) ** 2).sum(-1))

    return float(slope(np.ones((1, len(x))))[0]) if len(x) else float("nan"), _ci(slope(boot.w))


def rating_matrix(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    """Items x raters, each cell a rater's answer (NaN when that rater did not rate the item)."""
    return frame.pivot_table(index="item", columns="rater", values=column, aggfunc="first")


def fleiss_kappa(counts) -> float:
    """Fleiss' kappa from an items x categories table of counts; every item needs the same number of ratings
    (at least 2)."""
    n = np.asarray(counts, float)
    m = n.sum(axis=1)
    if len(n) == 0 or m[0] < 2 or not np.all(m == m[0]):
        raise ValueError("Fleiss' kappa needs the same number (at least 2) of ratings on every item")
    m = m[0]
    p_item = ((n ** 2).sum(axis=1) - m) / (m * (m - 1))
    p_cat = n.sum(axis=0) / n.sum()
    p_e = float((p_cat ** 2).sum())
    return float((p_item.mean() - p_e) / (1 - p_e)) if p_e < 1 else float("nan")


def krippendorff_alpha_nominal(matrix) -> float:
    """Krippendorff's alpha for nominal data; ``matrix`` is units x coders with NaN / None where a coder did not
    rate the unit (units with fewer than two ratings do not count)."""
    rows = [[v for v in row if v is not None and not (isinstance(v, float) and np.isnan(v))] for row in np.asarray(matrix, object)]
    rows = [r for r in rows if len(r) >= 2]
    values = sorted({v for r in rows for v in r}, key=str)
    if len(values) < 2:
        return float("nan")
    index = {v: k for k, v in enumerate(values)}
    o = np.zeros((len(values), len(values)))
    for r in rows:
        c = np.bincount([index[v] for v in r], minlength=len(values)).astype(float)
        o += (np.outer(c, c) - np.diag(c)) / (len(r) - 1)
    n_c = o.sum(axis=1)
    n = n_c.sum()
    d_o = o.sum() - np.trace(o)
    d_e = (np.outer(n_c, n_c).sum() - (n_c ** 2).sum()) / (n - 1)
    return float(1 - d_o / d_e) if d_e > 0 else float("nan")


def agreement(frame: pd.DataFrame, column: str) -> dict:
    """Fleiss' kappa over the items every rater of the most common count rated, Krippendorff's alpha over all."""
    mat = rating_matrix(frame.assign(**{column: frame[column].astype(str)}), column)
    out = {"alpha": krippendorff_alpha_nominal(mat.to_numpy(object)), "kappa": float("nan"), "kappa_items": 0}
    filled = mat.notna().sum(axis=1)
    if len(filled) and filled.max() >= 2:
        m = int(filled.max())
        full = mat[filled == m]
        cats = sorted(set(full.stack().astype(str)))
        counts = np.array([[int((row.dropna() == c).sum()) for c in cats] for _, row in full.iterrows()])
        if len(cats) >= 2:
            out["kappa"], out["kappa_items"] = fleiss_kappa(counts), int(len(full))
    return out


def confusion(frame: pd.DataFrame, mask, labels) -> pd.DataFrame:
    """Counts: true disease (rows) x answered disease (columns)."""
    sub = frame[np.asarray(mask, bool)]
    tab = pd.crosstab(sub["disease_id"], sub["disease"]).reindex(index=labels, columns=labels, fill_value=0)
    return tab.fillna(0).astype(int)


def analyse(answers: pd.DataFrame, study: StudySet, n_boot: int = 1000, seed: int = 0) -> dict:
    """Every figure of the study with its interval: ``metrics`` (flat, for record_metrics) and ``tables``."""
    f = merge(answers, study)
    if f.empty:
        raise ValueError("no answers to this study set")
    boot = TwoWay(f, n_boot=n_boot, seed=seed)
    real = f["real"].to_numpy(bool)
    generated = (f["source"] == "generated").to_numpy()
    m: dict = {"raters": int(f["rater"].nunique()), "answers": int(len(f)), "items_rated": int(f["item"].nunique()),
               "items": int(len(study)), "answers_to_unknown_items": f.attrs["unknown_items"]}
    m["real_vs_generated_accuracy"], m["real_vs_generated_accuracy_ci"] = balanced_accuracy(f, boot)
    rows = []
    for source in [s for s in f["source"].unique() if s != "real"]:
        ba, ci = balanced_accuracy(f, boot, [source])
        mask = (f["source"] == source).to_numpy()
        dis, dis_ci = accuracy(f, boot, "disease_correct", mask)
        rows.append({"source": source, "answers": int(mask.sum()), "said real": float(f.loc[mask, "said_real"].mean()),
                     "real vs generated (balanced)": ba, "ci": ci, "disease accuracy": dis, "disease ci": dis_ci})
        m[f"real_vs_{source}_accuracy"], m[f"real_vs_{source}_accuracy_ci"] = ba, list(ci)
        m[f"disease_accuracy_{source}"], m[f"disease_accuracy_{source}_ci"] = dis, list(dis_ci)
    m["disease_accuracy_real"], ci_real = accuracy(f, boot, "disease_correct", real)
    m["disease_accuracy_real_ci"] = list(ci_real)
    m["disease_accuracy_generated"], ci_gen = accuracy(f, boot, "disease_correct", generated)
    m["disease_accuracy_generated_ci"] = list(ci_gen)
    m["disease_accuracy_ratio"], ci_ratio = ratio(f, boot, "disease_correct", generated, real)
    m["disease_accuracy_ratio_ci"] = list(ci_ratio)
    m["chance_disease_accuracy"] = 1 / len(study.diseases)
    for question, column in (("disease", "disease"), ("real_vs_generated", "said_real")):
        ag = agreement(f, column)
        suffix = "" if question == "disease" else "_real_vs_generated"
        m[f"fleiss_kappa{suffix}"], m[f"krippendorff_alpha{suffix}"] = ag["kappa"], ag["alpha"]
        m[f"fleiss_kappa{suffix}_items"] = ag["kappa_items"]
    for column, name in (("realness_correct", "real_vs_generated"), ("disease_correct", "disease")):
        m[f"learning_slope_{name}"], ci = learning_slope(f, boot, column)
        m[f"learning_slope_{name}_ci"] = list(ci)
    m["median_seconds_per_answer"] = float(np.nanmedian(f["server_ms"].to_numpy(float)) / 1000) if len(f) else float("nan")
    labels = list(study.diseases)
    tables = {"sources": pd.DataFrame([{"source": "real", "answers": int(real.sum()),
                                        "said real": float(f.loc[real, "said_real"].mean()),
                                        "real vs generated (balanced)": float("nan"), "ci": (np.nan, np.nan),
                                        "disease accuracy": m["disease_accuracy_real"], "disease ci": ci_real}] + rows)
              .set_index("source"),
              "confusion_real": confusion(f, real, labels), "confusion_generated": confusion(f, generated, labels),
              "per_rater": f.groupby("rater").agg(answers=("item", "size"), realness=("realness_correct", "mean"),
                                                  disease=("disease_correct", "mean")),
              "frame": f}
    return {"metrics": m, "tables": tables}


def round_summary(answers: pd.DataFrame, study: StudySet) -> list[dict]:
    """What the presenter shows once a round is closed: per source, the share said real, right about real vs
    generated, right about the disease."""
    if answers.empty:
        return []
    f = merge(answers, study)
    out = []
    for source, g in f.groupby("source", sort=False):
        out.append({"source": source, "answers": int(len(g)), "said_real": float(g["said_real"].mean()),
                    "realness_correct": float(g["realness_correct"].mean()),
                    "disease_correct": float(g["disease_correct"].mean())})
    return sorted(out, key=lambda r: (r["source"] != "real", r["source"]))


def simulate_answers(study: StudySet, raters: int, detect: float, disease_real: float, disease_generated: float,
                     seed: int = 0) -> pd.DataFrame:
    """Answers of simulated raters of known accuracy, in the columns of a study database: each rater calls a face
    real or generated correctly with probability ``detect``, names the disease correctly with probability
    ``disease_real`` on real faces and ``disease_generated`` on all others, and otherwise names one of the other
    diseases at random. Confidence is higher on correct calls; time taken is log-normal around 4 s."""
    for name, p in (("detect", detect), ("disease_real", disease_real), ("disease_generated", disease_generated)):
        if not 0 <= p <= 1:
            raise ValueError(f"{name} must be a probability, got {p}")
    rng = np.random.default_rng([seed, 9090])
    labels = np.array(list(study.diseases))
    items = study.items.loc[study.order]
    truth_real = items["real"].to_numpy(bool)
    truth_dis = items["disease_id"].to_numpy(str)
    rows, t0 = [], 1.7e9
    for r in range(raters):
        n = len(items)
        right = rng.random(n) < detect
        said_real = np.where(right, truth_real, ~truth_real)
        conf = np.where(right, rng.choice([1, 2, 3], n, p=[0.2, 0.4, 0.4]), rng.choice([1, 2, 3], n, p=[0.5, 0.35, 0.15]))
        p_dis = np.where(truth_real, disease_real, disease_generated)
        knows = rng.random(n) < p_dis
        other = np.array([rng.choice(labels[labels != t]) for t in truth_dis])
        disease = np.where(knows, truth_dis, other)
        ms = np.round(rng.lognormal(np.log(4000), 0.4, n)).astype(int)
        when = t0 + r * 1e4 + np.cumsum(ms) / 1000
        for k in range(n):
            rows.append((None, f"sim{r + 1:02d}", items.index[k], 1, bool(said_real[k]), int(conf[k]), str(disease[k]),
                         None, int(ms[k]), int(ms[k]), float(when[k]), "simulated"))
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    frame["id"] = np.arange(1, len(frame) + 1)
    return frame


def recogniser_answers(study: StudySet, recogniser, frame: pd.DataFrame | None = None, n_boot: int = 1000,
                       seed: int = 0) -> dict:
    """The recogniser answering the disease question on the same faces (those the raters answered, when
    ``frame`` is given): its accuracy on real and generated faces and their ratio, beside the humans'."""
    ids = list(study.items.index) if frame is None else list(dict.fromkeys(frame["item"]))
    pred = recogniser.predict(study.images(ids), k=1)["top1"].to_numpy(str)
    items = study.items.loc[ids]
    hit = (pred == items["disease_id"].to_numpy(str)).astype(float)
    table = pd.DataFrame({"item": ids, "rater": "recogniser", "source": items["source"].to_numpy(),
                          "real": items["real"].to_numpy(bool), "disease_id": items["disease_id"].to_numpy(),
                          "disease": pred, "disease_correct": hit})
    boot = TwoWay(table, n_boot=n_boot, seed=seed)
    real, generated = table["real"].to_numpy(), (table["source"] == "generated").to_numpy()
    out = {}
    out["recogniser_disease_accuracy_same_items"], ci = accuracy(table, boot, "disease_correct", np.ones(len(table), bool))
    out["recogniser_disease_accuracy_same_items_ci"] = list(ci)
    for name, mask in (("real", real), ("generated", generated)):
        out[f"recogniser_disease_accuracy_{name}"], ci = accuracy(table, boot, "disease_correct", mask)
        out[f"recogniser_disease_accuracy_{name}_ci"] = list(ci)
    out["recogniser_disease_accuracy_ratio"], ci = ratio(table, boot, "disease_correct", generated, real)
    out["recogniser_disease_accuracy_ratio_ci"] = list(ci)
    return {"metrics": out, "table": table}
