"""Severity and progression from measured phenotypes and learned disease profiles.

**Severity score** (per disease, in [0, 1]):

1. *z-scores*: each measured phenotype column (one per HPO id, larger = more of the phenotype,
   from :class:`phenoface.phenotypes.Meter`) is compared with the unaffected class at the same age
   and sex: an ordinary least-squares reference ``m ~ 1 + min(age, 18) + max(age - 18, 0) + male``
   fitted on unaffected faces, divided by the robust spread of its residuals (1.4826 MAD, at least
   half the SD) and clipped to +-50 (numerical guard only: clipping harder loses the signal of
   floor-valued measurements such as synophrys);
2. *projection*, ``method="fitted"`` (default): per disease, a linear score ``raw = b + sum_t w_t z_t``
   whose weights are a non-negative ridge of true severity on the z-scores of the calibration faces
   (the disease's affected faces plus unaffected faces at severity 0), shrunk toward the profile
   weights rescaled to severity units (``alpha``); ``fit_terms="all"`` (default) lets every measured
   term in (those outside the profile start from weight 0), ``"profile"`` only the profile's. A
   patient shows only some of the disease's terms and the meter measures some terms far better than
   others, so a fixed profile mean is diluted by absent and noisy terms; the fit finds the terms that
   carry severity. Missing z (NaN) count as 0 (the unaffected mean). Diseases with fewer than
   ``min_calibration`` affected calibration faces fall back to the profile projection. Held out on
   the quick cohort (3072 fresh faces, image-fused profiles, fit on the stored cohort + 256 fresh
   faces): mean per-disease Spearman 0.32 vs 0.16 through the landmark regressor, 0.36 vs 0.23 on
   true landmarks; progression order 0.83 vs 0.67 (regressor), 0.94 vs 0.93 (truth).
   ``method="profile"``: over the disease profile's renderable terms ``t`` with weight
   ``w_t >= min_weight`` that were measured (NaN columns, e.g. texture terms without images, drop
   out and the weights renormalise). ``aggregate="mean"`` (default): ``raw = sum_t w_t z_t /
   sum_t w_t``. ``aggregate="expressed"``: the profile-weighted mean z of the *expressed* terms
   (z > ``tau``), or the largest profile z when none is. "expressed" wins when measurements are
   precise (on the cohort's true term amounts plus noise 0.05: mean per-disease Spearman 0.72 vs
   0.38; a linear fit cannot normalise by the number of terms shown either) but loses on the
   landmark meter, whose per-face identity spread hides weakly expressed terms;
3. *calibration*: per disease, a monotone logistic map ``severity = sigmoid(a * raw + b)`` (slope
   ``a`` bounded to [0.25, 4] / sd(raw), so it is neither flat nor a step) fitted by least squares on a calibration split (the disease's affected faces with their true
   severity, plus unaffected faces at severity 0). Strictly increasing, so ranks (Spearman) are the
   raw projection's, and the output lies in [0, 1]. Diseases with fewer than ``min_calibration``
   calibration faces use the fit pooled over all diseases.

Age and sex enter only the unaffected reference, never the fitted score (cohort severity grows
with age along a disease course, so age would predict severity without looking at the face).
``fit(..., reference=(measurements, table))`` takes the reference from other faces' unaffected rows:
notebook 07 calibrates on the stored training cohort, whose faces the landmark regressor was
trained on (their measurements are cleaner than a new face's), with the reference from fresh faces.

Unknown age (NaN) is scored at ``default_age`` and unknown sex as halfway between the sexes. With
fewer than 12 unaffected calibration faces the reference is a plain mean and spread (``adjusted``
is False): tiny smoke runs only.

Figures of merit (Spearman with the age-only baseline and the age-partialled figure, progression order)
live in :mod:`phenoface.evaluation.progression`.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd

__all__ = ["SeverityScorer", "profile_weights"]

from ..cohort import UNAFFECTED
SD_FLOOR = 0.5


def profile_weights(profiles, renderable_only: bool = True, age=None) -> dict[str, dict[str, float]]:
    """``{disease_id: {hpo_id: weight}}`` from Profile objects (their renderable-vocabulary weights)
    or from a mapping that already has that shape (e.g. the cohort's truth table rows)."""
    if isinstance(profiles, pd.DataFrame):
        return {str(d): {t: float(w) for t, w in row.items() if w > 0} for d, row in profiles.iterrows()}
    if isinstance(profiles, Mapping):
        return {str(d): {str(t): float(w) for t, w in ws.items()} for d, ws in profiles.items()}
    out = {}
    for p in profiles:
        out[p.disease_id] = p.renderable(age) if renderable_only else p.terms(age)
    return out


def _design(age, sex, default_age: float) -> np.ndarray:
    age = np.asarray(age, float).reshape(-1)
    age = np.where(np.isfinite(age), age, default_age)
    sex = np.asarray(sex, dtype=object).reshape(-1)
    male = np.array([1.0 if s == "M" else 0.0 if s == "F" else 0.5 for s in sex])
    return np.stack([np.ones_like(age), np.minimum(age, 18.0), np.maximum(age - 18.0, 0.0), male], axis=1)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.clip(x, -50, 50)))


def _fit_logistic(raw: np.ndarray, sev: np.ndarray) -> tuple[float, float]:
    """Least-squares ``sev ~ sigmoid(a * raw + b)`` with the slope bounded to [0.25, 4] / sd(raw):
    never flat (a weak projection would otherwise be fitted to a constant, tying every score and
    erasing the ranking) and never a step (saturated scores tie too)."""
    from scipy.optimize import least_squares

    ok = np.isfinite(raw) & np.isfinite(sev)
    raw, sev = raw[ok], sev[ok]
    if len(raw) < 3 or np.ptp(raw) == 0:
        return 1.0, 0.0
    s = float(np.std(raw)) or 1.0
    lo, hi = 0.25 / s, 4.0 / s
    x0 = [2.0 / s, -2.0 * float(np.mean(raw)) / s]
    res = least_squares(lambda p: _sigmoid(p[0] * raw + p[1]) - sev, x0=x0, bounds=([lo, -np.inf], [hi, np.inf]))
    return float(res.x[0]), float(res.x[1])


class SeverityScorer:
    """Per-disease severity in [0, 1] from phenotype measurements and profile weights.

        >>> scorer = SeverityScorer(profile_weights(profiles)).fit(measured_calib, calib_table)
        >>> scorer.score(measured, disease_id, age, sex)     # calibrated severity in [0, 1]
        >>> scorer.raw(measured, disease_id, age, sex)       # uncalibrated (fitted or profile) projection
        >>> SeverityScorer(weights, method="profile")       # the fixed profile-weighted mean instead
    """

    def __init__(self, weights: Mapping[str, Mapping[str, float]], min_weight: float = 0.05,
                 min_calibration: int = 5, default_age: float = 30.0, aggregate: str = "mean",
                 tau: float = 2.0, method: str = "fitted", fit_terms: str = "all", alpha: float = 0.03):
        if aggregate not in ("expressed", "mean"):
            raise ValueError(f"aggregate must be 'expressed' or 'mean', got {aggregate!r}")
        if method not in ("fitted", "profile"):
            raise ValueError(f"method must be 'fitted' or 'profile', got {method!r}")
        if fit_terms not in ("all", "profile"):
            raise ValueError(f"fit_terms must be 'all' or 'profile', got {fit_terms!r}")
        self.method, self.fit_terms, self.alpha = method, fit_terms, float(alpha)
        self.fitted: dict[str, tuple[list[str], np.ndarray, float]] = {}
        self.aggregate, self.tau = aggregate, float(tau)
        self.z_clip = 50.0
        self.weights = profile_weights(weights)
        self.min_weight = float(min_weight)
        self.min_calibration = int(min_calibration)
        self.default_age = float(default_age)
        self.terms: list[str] = []
        self.coef: pd.DataFrame | None = None
        self.scale: pd.Series | None = None
        self.calibration: dict[str, tuple[float, float]] = {}
        self.calibration_n: dict[str, int] = {}

    def _design(self, age, sex) -> np.ndarray:
        X = _design(age, sex, self.default_age)
        return X if getattr(self, "adjusted", True) else X[:, :1]

    # -- reference ------------------------------------------------------------------------------
    def fit(self, measurements: pd.DataFrame, table: pd.DataFrame,
            reference: tuple[pd.DataFrame, pd.DataFrame] | None = None) -> "SeverityScorer":
        """Fit the unaffected reference and the per-disease calibration on a calibration split.
        ``table`` needs disease_id, age, sex and severity (one row per measurement row).
        ``reference=(measurements, table)``: take the unaffected reference (the z-scores) from these
        faces' unaffected rows instead, e.g. fresh faces measured like the test faces when the
        calibration faces were seen by the landmark regressor in training (their measurements are
        cleaner than a new face's)."""
        m = measurements.reset_index(drop=True)
        t = table.reset_index(drop=True)
        if len(m) != len(t):
            raise ValueError(f"{len(m)} measurement rows but {len(t)} table rows")
        rm, rt = (m, t) if reference is None else (reference[0].reset_index(drop=True),
                                                   reference[1].reset_index(drop=True))
        if len(rm) != len(rt):
            raise ValueError(f"{len(rm)} reference measurement rows but {len(rt)} reference table rows")
        rref = (rt["disease_id"].astype(str) == UNAFFECTED).to_numpy()
        ref = (t["disease_id"].astype(str) == UNAFFECTED).to_numpy()
        if rref.sum() < 3:
            raise ValueError(f"the unaffected reference needs at least 3 unaffected faces, got {int(rref.sum())}")
        # fewer than 12 reference faces: a plain mean/spread (no age or sex adjustment), say so
        self.adjusted = bool(rref.sum() >= 12)
        self.terms = [c for c in rm.columns if c in m.columns and np.isfinite(rm.loc[rref, c].to_numpy(float)).sum() >= 3]
        X = self._design(rt.loc[rref, "age"], rt.loc[rref, "sex"])
        coefs, scales = {}, {}
        for c in self.terms:
            y = rm.loc[rref, c].to_numpy(float)
            ok = np.isfinite(y)
            beta, *_ = np.linalg.lstsq(X[ok], y[ok], rcond=None)
            r = y[ok] - X[ok] @ beta
            mad = 1.4826 * np.median(np.abs(r - np.median(r)))
            # MAD, but never below half the SD: measurements with a floor (e.g. no synophrys in most
            # unaffected faces) have MAD ~ 0 and would turn every affected face into z ~ 1e6
            coefs[c], scales[c] = beta, max(mad, SD_FLOOR * float(np.std(r)), 1e-9)
        self.coef = pd.DataFrame(coefs, index=["intercept", "age_to_18", "age_after_18", "male"][:X.shape[1]])
        self.scale = pd.Series(scales)
        self.fitted = {}
        if self.method == "fitted":
            self._fit_weights(m, t)

        raw_all = self.raw(m, t["disease_id"].astype(str).to_numpy(), t["age"], t["sex"])
        sev = t["severity"].to_numpy(float)
        dis = t["disease_id"].astype(str).to_numpy()
        pooled_raw, pooled_sev = [], []
        for d in self.weights:
            if d == UNAFFECTED:
                continue
            mine = dis == d
            if mine.sum() == 0:
                continue
            # unaffected faces projected on this disease's profile anchor severity 0
            r_ref = self.raw(m[ref], np.full(ref.sum(), d), t.loc[ref, "age"], t.loc[ref, "sex"])
            r = np.r_[raw_all[mine], r_ref]
            s = np.r_[sev[mine], np.zeros(ref.sum())]
            pooled_raw.append(r)
            pooled_sev.append(s)
            self.calibration_n[d] = int(mine.sum())
            if mine.sum() >= self.min_calibration:
                self.calibration[d] = _fit_logistic(r, s)
        self.pooled = _fit_logistic(np.concatenate(pooled_raw), np.concatenate(pooled_sev)) if pooled_raw else (1.0, 0.0)
        return self

    def _profile_vector(self, d: str, cols) -> np.ndarray:
        w = np.array([self.weights.get(str(d), {}).get(c, 0.0) for c in cols])
        return np.where(w >= self.min_weight, w, 0.0)

    def _fit_weights(self, m: pd.DataFrame, t: pd.DataFrame) -> None:
        """Per disease, non-negative ridge of true severity on the z-scores (the disease's affected
        calibration faces plus the unaffected ones at severity 0), shrunk toward the profile-weighted
        mean rescaled to severity units: ``min ||y - b - Z w||^2 + alpha n sum_t sd_t^2 (w_t - k p_t)^2``
        with ``w >= 0``, ``p`` the normalised profile weights and ``k`` the least-squares slope of
        severity on the profile mean. Terms outside the profile (``fit_terms="all"``) have prior 0."""
        from scipy.optimize import nnls

        z = self.zscores(m, t["age"], t["sex"])
        dis = t["disease_id"].astype(str).to_numpy()
        sev = t["severity"].to_numpy(float)
        ref = dis == UNAFFECTED
        for d in self.weights:
            mine = dis == d
            if d == UNAFFECTED or mine.sum() < self.min_calibration:
                continue  # too few faces: raw() falls back to the profile projection
            w0 = self._profile_vector(d, z.columns)
            if w0.sum() == 0:
                continue
            keep = np.ones(len(w0), bool) if self.fit_terms == "all" else w0 > 0
            cols = [c for c, k in zip(z.columns, keep) if k]
            w0 = w0[keep]
            rows = mine | ref
            Z = np.nan_to_num(z.loc[rows, cols].to_numpy(), nan=0.0)
            y = sev[rows]
            ok = np.isfinite(y)
            Z, y = Z[ok], y[ok]
            zc, yc = Z - Z.mean(0), y - y.mean()
            p = zc @ w0 / w0.sum()
            k = max(float(p @ yc) / max(float(p @ p), 1e-12), 0.0)
            prior = k * w0 / w0.sum()
            sd = zc.std(0) + 1e-9
            lam = np.sqrt(self.alpha * len(y))
            w, _ = nnls(np.vstack([zc, lam * np.diag(sd)]), np.r_[yc, lam * sd * prior], maxiter=50 * len(cols))
            self.fitted[d] = (cols, w, float(y.mean() - Z.mean(0) @ w))

    def zscores(self, measurements: pd.DataFrame, age, sex) -> pd.DataFrame:
        """Measurements as z-scores against unaffected faces of the same age and sex."""
        if self.coef is None:
            raise RuntimeError("fit the scorer first (SeverityScorer.fit)")
        X = self._design(age, sex)
        if len(X) == 1 and len(measurements) > 1:
            X = np.repeat(X, len(measurements), axis=0)
        cols = [c for c in self.terms if c in measurements.columns]
        pred = X @ self.coef[cols].to_numpy()
        z = (measurements[cols].to_numpy(float) - pred) / self.scale[cols].to_numpy()
        z = np.clip(z, -self.z_clip, self.z_clip)  # one wild measurement must not decide the projection
        return pd.DataFrame(z, columns=cols, index=measurements.index)

    def raw(self, measurements: pd.DataFrame, disease_id, age, sex) -> np.ndarray:
        """The profile projection (uncalibrated) for each row under ``disease_id`` (scalar or per row)."""
        z = self.zscores(measurements, age, sex)
        dis = np.broadcast_to(np.asarray(disease_id, dtype=object), (len(z),))
        out = np.full(len(z), np.nan)
        zv = z.to_numpy()
        for d in pd.unique(dis):
            rows = dis == d
            w = self._profile_vector(d, z.columns)
            if w.sum() == 0:
                continue  # unaffected / no renderable profile: no severity
            if str(d) in self.fitted:
                cols, wf, b = self.fitted[str(d)]
                zz = z.loc[rows, cols].to_numpy()
                ok = np.isfinite(zz)
                out[rows] = np.where(ok.any(1), b + np.where(ok, zz, 0.0) @ wf, np.nan)
                continue
            if w.sum() == 0:
                continue  # unaffected / no renderable profile: no severity
            zz = zv[rows]
            ok = np.isfinite(zz)
            ww = np.where(ok, w, 0.0)
            z0 = np.where(ok, zz, 0.0)
            with np.errstate(invalid="ignore", divide="ignore"):
                mean = np.where(ww.sum(1) > 0, (z0 * ww).sum(1) / ww.sum(1), np.nan)
                if self.aggregate == "mean":
                    out[rows] = mean
                    continue
                we = ww * (z0 > self.tau)
                top = np.where(ww > 0, z0, -np.inf).max(1)
                expressed = (z0 * we).sum(1) / np.where(we.sum(1) > 0, we.sum(1), 1.0)
                out[rows] = np.where(ww.sum(1) == 0, np.nan,
                                     np.where(we.sum(1) > 0, expressed, np.minimum(top, self.tau)))
        return out

    def score(self, measurements: pd.DataFrame, disease_id, age, sex) -> np.ndarray:
        """Calibrated severity in [0, 1] (NaN where the disease has no profile or nothing was measured)."""
        raw = self.raw(measurements, disease_id, age, sex)
        dis = np.broadcast_to(np.asarray(disease_id, dtype=object), raw.shape)
        out = np.full(raw.shape, np.nan)
        for d in pd.unique(dis):
            rows = dis == d
            a, b = self.calibration.get(str(d), self.pooled)
            out[rows] = _sigmoid(a * raw[rows] + b)
        return np.where(np.isfinite(raw), out, np.nan)

    def __repr__(self):
        return (f"SeverityScorer(diseases={len(self.weights)}, terms={len(self.terms)}, "
                f"calibrated={len(self.calibration)})")
