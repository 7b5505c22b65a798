"""Image-learned profiles: which measured phenotypes set a disease's faces apart from unaffected ones.

For every term, an ordinary least-squares model over positives (one disease) and negatives
(unaffected) adjusts for age and sex, because the cohort's faces (and real ones) change with both::

    measurement ~ 1 + is_positive + age + age^2 + sex

(age standardised over the pooled sample; sex coded F = 0, M = 1; any other numeric covariate
column is added linearly). The **effect** is the coefficient of ``is_positive`` divided by the
residual standard deviation: a covariate-adjusted standardised mean difference (Cohen's d in
residual-SD units), with a 95 % confidence interval from the t distribution. Meter columns are
oriented so that larger means more of the phenotype, so a term the disease shows has a positive
effect; the ranking is by effect, descending.

A disease with fewer than ``min_positives`` usable faces (default 20) is *flagged*: its effects
are still computed and shown, but it gets no ranking-based score and no image evidence in its
profile. Faces without landmarks (NaN rows) are not used and are counted in ``n_missing``.

**A floor under the residual SD** (``min_sd``, measurement units; 0 = plain Cohen's d). A term the disease
does not show and the instrument reads as near-constant has a tiny residual SD, so a small absolute shift that
another term's rendering leaks into it (a thick lower lip nudging the tongue reading by 0.06 intensity units)
becomes a standardised effect of 1 or more and outranks a term the disease really shows at low penetrance.
Dividing by ``max(residual SD, min_sd)`` says "a shift smaller than the instrument's resolution is not a large
effect". :func:`learn_image_profiles` takes the floor as a fraction (``sd_floor``) of the median per-term SD of
the measurements it is given, so one setting fits any instrument's units; :func:`choose_sd_floor` picks it on
a validation cohort.

Evidence value for :class:`Profile` (must lie in [0, 1]): the effect capped to [0, 1] when its 95 %
CI excludes 0, else 0 — an effect of one residual SD or more counts as full image evidence.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..ages import AGE_BANDS, age_band

MIN_POSITIVES = 20
SOURCE = "images"


def _design(cov: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
    cols, names = [], []
    if "age" in cov:
        age = pd.to_numeric(cov["age"], errors="coerce").to_numpy(float)
        if np.isfinite(age).sum() > 2 and np.nanstd(age) > 0:
            z = (age - np.nanmean(age)) / np.nanstd(age)
            missing = ~np.isfinite(z)
            z = np.where(missing, 0.0, z)
            cols += [z, z * z]
            names += ["age", "age2"]
            if missing.any():
                cols.append(missing.astype(float))
                names.append("age_missing")
    if "sex" in cov:
        sex = cov["sex"].astype(str).str.upper().str[:1]
        male = (sex == "M").astype(float).to_numpy()
        unknown = (~sex.isin(["M", "F"])).astype(float).to_numpy()
        if male.std() > 0:
            cols.append(male)
            names.append("sex")
        if unknown.any() and unknown.std() > 0:
            cols.append(unknown)
            names.append("sex_unknown")
    for c in cov.columns:
        if c in ("age", "sex") or not pd.api.types.is_numeric_dtype(cov[c]):
            continue
        v = cov[c].to_numpy(float)
        if np.isfinite(v).all() and v.std() > 0:
            cols.append((v - v.mean()) / v.std())
            names.append(str(c))
    x = np.stack(cols, 1) if cols else np.zeros((len(cov), 0))
    return x, names


def _covariates(covariates, n_pos, n_neg) -> pd.DataFrame | None:
    if covariates is None:
        return None
    if isinstance(covariates, (tuple, list)) and len(covariates) == 2:
        a, b = (pd.DataFrame(c).reset_index(drop=True) for c in covariates)
        cov = pd.concat([a, b], ignore_index=True)
    else:
        cov = pd.DataFrame(covariates).reset_index(drop=True)
    if len(cov) != n_pos + n_neg:
        raise ValueError(f"covariates have {len(cov)} rows; expected {n_pos} positives + {n_neg} negatives "
                         "(pass one frame for pos then neg, or a (pos_cov, neg_cov) pair)")
    return cov


def _effect_scale(resid_sd, min_sd: float):
    """What an effect divides by: ``max(resid_sd, min_sd)``; a NaN SD (no spread) takes the floor, and a zero
    scale gives NaN (no standardised effect). Works on scalars and arrays."""
    scale = np.fmax(np.asarray(resid_sd, float), min_sd)
    return np.where(scale > 0, scale, np.nan)


def image_effects(pos: pd.DataFrame, neg: pd.DataFrame, covariates=None, alpha: float = 0.05,
                  min_positives: int = MIN_POSITIVES, min_sd: float = 0.0) -> pd.DataFrame:
    """Per-term adjusted effects: DataFrame indexed by HPO id with ``effect, ci_low, ci_high, p,
    beta, se, resid_sd, n_pos, n_neg, n_missing`` (sorted by effect, descending); ``attrs['flag']``
    says why a disease is not to be ranked (or is empty). ``resid_sd`` is the fitted one; effects divide by
    ``max(resid_sd, min_sd)`` (module docstring)."""
    from scipy import stats

    if not np.isfinite(min_sd) or min_sd < 0:
        raise ValueError(f"min_sd must be a finite number >= 0, got {min_sd}")

    pos, neg = pd.DataFrame(pos).reset_index(drop=True), pd.DataFrame(neg).reset_index(drop=True)
    terms = [c for c in pos.columns if c in neg.columns]
    cov = _covariates(covariates, len(pos), len(neg))
    xc, cov_names = _design(cov) if cov is not None else (np.zeros((len(pos) + len(neg), 0)), [])
    is_pos = np.r_[np.ones(len(pos)), np.zeros(len(neg))]
    both = pd.concat([pos[terms], neg[terms]], ignore_index=True)
    rows = []
    for t in terms:
        y = pd.to_numeric(both[t], errors="coerce").to_numpy(float)
        ok = np.isfinite(y)
        n_p, n_n = int((ok & (is_pos == 1)).sum()), int((ok & (is_pos == 0)).sum())
        row = {"hpo_id": t, "n_pos": n_p, "n_neg": n_n, "n_missing": int((~ok).sum())}
        x = np.column_stack([np.ones(ok.sum()), is_pos[ok], xc[ok]])
        df = ok.sum() - x.shape[1]
        if n_p < 2 or n_n < 2 or df < 2:
            rows.append(row | {k: np.nan for k in ("effect", "ci_low", "ci_high", "p", "beta", "se", "resid_sd")})
            continue
        beta, *_ = np.linalg.lstsq(x, y[ok], rcond=None)
        resid = y[ok] - x @ beta
        sigma = np.sqrt(resid @ resid / df)
        xtx_inv = np.linalg.pinv(x.T @ x)
        se = float(np.sqrt(max(xtx_inv[1, 1], 0.0)) * sigma)
        b = float(beta[1])
        if sigma <= 1e-12 * max(1.0, abs(b)):
            sigma = np.nan  # a measurement without spread: no standardised effect
        scale = float(_effect_scale(sigma, min_sd))
        tcrit = stats.t.ppf(1 - alpha / 2, df)
        tval = b / se if se > 0 else np.nan
        row |= {"beta": b, "se": se, "resid_sd": float(sigma), "effect": b / scale,
                "ci_low": (b - tcrit * se) / scale, "ci_high": (b + tcrit * se) / scale,
                "p": float(2 * stats.t.sf(abs(tval), df)) if np.isfinite(tval) else np.nan}
        rows.append(row)
    out = pd.DataFrame(rows).set_index("hpo_id") if rows else pd.DataFrame()
    if len(out):
        out = out.sort_values("effect", ascending=False, na_position="last")
    n_usable = int(pos.notna().any(axis=1).sum())
    flag = ""
    if n_usable < min_positives:
        flag = f"too few positives for a stable effect size ({n_usable} usable faces < {min_positives})"
    out.attrs["flag"] = flag
    out.attrs["covariates"] = cov_names
    out.attrs["min_sd"] = float(min_sd)
    out.attrs["model"] = "measurement ~ 1 + is_positive + " + (" + ".join(cov_names) if cov_names else "(no covariates)")
    return out


def learn_image_profile(pos, neg, covariates=None, min_positives: int = MIN_POSITIVES, min_sd: float = 0.0) -> pd.Series:
    """Meter outputs of positives and negatives -> ``Series`` HPO id -> adjusted effect, sorted
    descending. ``.attrs``: ``table`` (CIs, p, n), ``flag`` (non-empty = too few positives: do not rank)."""
    table = image_effects(pos, neg, covariates, min_positives=min_positives, min_sd=min_sd)
    return _ranked(table, table["effect"] if len(table) else None)


def _ranked(table: pd.DataFrame, effect) -> pd.Series:
    """``effect`` (one value per row of ``table``) sorted descending without NaN, carrying ``table`` and its flag:
    the Series :func:`ranking_of` and the profiles read."""
    s = pd.Series(effect, index=table.index, dtype=float).dropna().sort_values(ascending=False) if len(table) \
        else pd.Series(dtype=float)
    s.name = "effect"
    s.attrs = {"table": table, "flag": table.attrs.get("flag", ""), "model": table.attrs.get("model", "")}
    return s


def evidence_values(effects: pd.Series | pd.DataFrame) -> dict[str, float]:
    """Image evidence for a Profile: effect capped to [0, 1] where the 95 % CI excludes 0, else 0."""
    table = effects.attrs.get("table") if isinstance(effects, pd.Series) else effects
    out = {}
    for t, r in table.iterrows():
        if not np.isfinite(r.get("effect", np.nan)):
            continue
        out[t] = float(np.clip(r["effect"], 0.0, 1.0)) if r["ci_low"] > 0 else 0.0
    return out


def add_image_evidence(profile, effects: pd.Series, band_effects: dict | None = None):
    """``profile`` with 'images' evidence from :func:`learn_image_profile` (all ages) and, optionally,
    per age band (``band_effects[band]``, e.g. from :func:`learn_band_profiles`); a band whose effects
    are flagged (too few positives) or missing takes the all-ages evidence. A flagged disease gets a
    note instead of evidence."""
    flag = effects.attrs.get("flag", "")
    if flag:
        note = f"image evidence withheld: {flag}"
        return type(profile)(profile.disease_id, profile.disease_name, profile.bands, profile.version,
                             profile.fusion_weights, profile.term_names,
                             [*profile.notes, note] if note not in profile.notes else list(profile.notes))
    table = effects.attrs["table"]
    n = int(table["n_pos"].max()) if len(table) else 0
    values = {"all": evidence_values(effects)}
    for band, s in (band_effects or {}).items():
        if len(s.attrs.get("table", [])) and not s.attrs.get("flag"):
            values[band] = evidence_values(s)
    used = sorted(b for b in values if b != "all")
    detail = (f"adjusted effect vs unaffected faces (n={n}), capped at 1; 0 where the 95 % CI includes 0"
              + (f"; learned per band for {', '.join(used)}" if used else ""))
    return profile.with_evidence(SOURCE, values, detail=detail)


def precision_at_k(ranking, truth, k: int | None = None) -> float:
    """Share of the top-k ranked terms that are true terms (k = number of true terms by default).
    A ranking shorter than k counts the missing places as misses."""
    truth = set(truth)
    k = len(truth) if k is None else int(k)
    if k <= 0:
        return float("nan")
    top = list(ranking)[:k]
    return sum(t in truth for t in top) / k


def rank_terms(weights: dict, vocabulary) -> list[str]:
    """Terms of ``vocabulary`` with a positive weight, strongest first (ties by id)."""
    return [t for t, w in sorted(((t, float(weights.get(t, 0.0))) for t in vocabulary), key=lambda kv: (-kv[1], kv[0]))
            if w > 0]


def floor_sd(measurements: pd.DataFrame, sd_floor: float) -> float:
    """``sd_floor`` x the median over terms of each term's SD across all the given faces (measurement units)."""
    if not np.isfinite(sd_floor) or sd_floor < 0:
        raise ValueError(f"sd_floor must be a finite number >= 0, got {sd_floor}")
    if sd_floor == 0:
        return 0.0
    sd = pd.DataFrame(measurements).apply(pd.to_numeric, errors="coerce").std()
    sd = sd[np.isfinite(sd)]
    return float(sd_floor * np.median(sd)) if len(sd) else 0.0


def learn_image_profiles(measurements: pd.DataFrame, table: pd.DataFrame, diseases=None, negative: str = "UNAFFECTED",
                         min_positives: int = MIN_POSITIVES, covariates=("age", "sex"),
                         sd_floor: float = 0.0) -> dict[str, pd.Series]:
    """One :func:`learn_image_profile` per disease of a measured cohort (``table`` rows align with
    ``measurements``; columns ``disease_id`` plus the covariates). ``sd_floor``: the residual-SD floor as a
    fraction of the median term SD over all these faces (0 = plain Cohen's d; module docstring)."""
    table = table.reset_index(drop=True)
    measurements = measurements.reset_index(drop=True)
    min_sd = floor_sd(measurements, sd_floor)
    diseases = [d for d in (diseases or table["disease_id"].unique()) if d != negative]
    neg_mask = (table["disease_id"] == negative).to_numpy()
    cov_cols = [c for c in covariates if c in table]
    out = {}
    for d in diseases:
        m = (table["disease_id"] == d).to_numpy()
        cov = (table.loc[m, cov_cols], table.loc[neg_mask, cov_cols]) if cov_cols else None
        out[d] = learn_image_profile(measurements[m], measurements[neg_mask], cov, min_positives=min_positives,
                                     min_sd=min_sd)
    return out


def learn_band_profiles(measurements: pd.DataFrame, table: pd.DataFrame, disease: str, negative: str = "UNAFFECTED",
                        min_positives: int = MIN_POSITIVES, covariates=("age", "sex"),
                        sd_floor: float = 0.0) -> dict[str, pd.Series]:
    """:func:`learn_image_profile` of one disease within each age band of :data:`phenoface.ages.AGE_BANDS`
    (positives and negatives of that band only); bands with too few positives come back flagged. The
    ``sd_floor`` fraction is taken over all the given faces, as in :func:`learn_image_profiles`."""

    table = table.reset_index(drop=True)
    measurements = measurements.reset_index(drop=True)
    min_sd = floor_sd(measurements, sd_floor)
    bands = np.asarray(age_band(table["age"]), dtype=object)
    cov_cols = [c for c in covariates if c in table]
    out = {}
    for band in AGE_BANDS:
        in_band = bands == band
        pos = ((table["disease_id"] == disease).to_numpy()) & in_band
        neg = ((table["disease_id"] == negative).to_numpy()) & in_band
        if not pos.any() and not neg.any():
            continue
        cov = (table.loc[pos, cov_cols], table.loc[neg, cov_cols]) if cov_cols else None
        out[band] = learn_image_profile(measurements[pos], measurements[neg], cov, min_positives=min_positives,
                                        min_sd=min_sd)
    return out


SD_FLOORS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0)


def choose_sd_floor(measurements: pd.DataFrame, table: pd.DataFrame, truth: pd.DataFrame, vocabulary,
                    floors=SD_FLOORS, min_positives: int = MIN_POSITIVES) -> tuple[float, pd.Series]:
    """On a validation cohort: mean precision@k of the image-learned profiles for each residual-SD floor;
    returns (the smallest floor that reaches the best, the Series floor -> precision). Smallest, because a
    floor is a departure from the plain standardised effect that has to earn its place. The floor changes only
    the divisor, so the regressions are fitted once and re-ranked by ``beta / max(resid_sd, min_sd)`` per floor
    (the same rankings :func:`learn_image_profiles` gives with that ``sd_floor``; a test checks it)."""
    if not len(floors):
        raise ValueError("choose_sd_floor needs at least one floor")
    learned = learn_image_profiles(measurements, table, min_positives=min_positives)
    score = {}
    for f in floors:
        min_sd = floor_sd(measurements, float(f))
        rescaled = {}
        for d, s in learned.items():
            t = s.attrs["table"]
            rescaled[d] = _ranked(t, t["beta"].to_numpy(float) / _effect_scale(t["resid_sd"], min_sd) if len(t) else None)
        score[float(f)] = float(precision_table({"x": ranking_of(rescaled)}, truth, vocabulary)["x"].mean())
    score = pd.Series(score, name="precision_at_k")
    score.index.name = "sd_floor"
    best = float(score.index[np.flatnonzero(np.isclose(score.to_numpy(), score.max()))[0]])
    return best, score


def precision_table(rankings: dict, truth: pd.DataFrame, vocabulary) -> pd.DataFrame:
    """precision@k per disease (rows) and ranking source (columns), k = the disease's number of true terms.

    ``rankings``: source name -> {disease_id: ranked term list, or None when that source could not rank the
    disease (flagged)}; ``truth``: diseases x terms probabilities (a term is true when > 0). Adds ``k`` and a
    ``chance`` column (the expected precision of a random ranking, k / |vocabulary|)."""
    vocabulary = list(vocabulary)
    rows = {}
    for d in truth.index:
        true_terms = [t for t in vocabulary if truth.loc[d, t] > 0]
        if not true_terms:
            continue
        row = {"k": len(true_terms), "chance": len(true_terms) / len(vocabulary)}
        for source, by_disease in rankings.items():
            r = by_disease.get(d)
            row[source] = np.nan if r is None else precision_at_k(r, true_terms)
        rows[d] = row
    return pd.DataFrame(rows).T


def ranking_of(learned: dict) -> dict:
    """{disease: ranked terms} from :func:`learn_image_profiles` output (None for flagged diseases)."""
    return {d: (None if s.attrs.get("flag") else list(s.index)) for d, s in learned.items()}


def divergence_recovered(learned: dict, truth: pd.DataFrame, divergence) -> pd.DataFrame:
    """For each seeded KG/truth difference, did the image ranking get it right? A term the KG annotates but
    patients never show ("dropped") is right when it is outside the top k; a term patients show that the KG
    lacks ("added") is right when it is inside (k = the disease's number of true terms)."""
    rows = []
    for r in divergence:
        d, t = r["disease_id"], r["hpo_id"]
        s = learned.get(d)
        if s is None or s.attrs.get("flag"):
            continue
        k = int((truth.loc[d] > 0).sum())
        in_top = t in list(s.index[:k])
        rows.append({"disease_id": d, "hpo_id": t, "change": r["change"], "true_probability": r.get("true_probability"),
                     "image_effect": float(s.get(t, np.nan)),
                     "right": bool((not in_top) if r["change"] == "dropped" else in_top)})
    return pd.DataFrame(rows, columns=["disease_id", "hpo_id", "change", "true_probability", "image_effect", "right"])
