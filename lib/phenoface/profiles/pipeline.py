"""Notebook 04's profile steps as functions: the instrument whose image profiles are best on validation, the KG
reference, image-learned profiles on the test cohort through
every route and their precision@k beside the KG, frequency-only and chance rankings, and the KG profiles with
image evidence added.

    >>> choice = choose_instrument(pixel, regressor, val, data_dir, check_n=1024, seed=0)  # saved for measure_images
    >>> kg = kg_reference(data_dir, train)
    >>> learned = learned_routes(choice, test, min_positives=20)          
    >>> precision, summary = profile_precision(learned, test.truth, kg.weights, train.kg, seed=0)
    >>> profiles, bands = with_image_evidence(main, m_main, train.table, kg.profiles, sd_floor=choice.sd_floor)
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from ..cohort import DISEASES
from ..cohort.independent import render_independent
from ..cohort.terms import TERM_IDS, TERMS
from ..config import write_json
from ..labels import UNAFFECTED
from ..phenotypes.measure import LandmarkInstrument, measure_images, save_choice
from ..phenotypes.meter import Meter
from ..phenotypes.pipeline import VALIDATION_RENDER_SEED, VIEWS
from ..phenotypes.validation import blurred, term_intensity_pearson
from ..stats import bootstrap_ci
from .images import (add_image_evidence, choose_sd_floor, learn_band_profiles, learn_image_profiles, precision_table,
                     rank_terms, ranking_of)
from .profile import Profile, load_profiles, save_profiles

BLUR = 0.7
# the precision@k summary's rows, in the order they are shown
SOURCES = ["pixels", f"pixels, blurred σ {BLUR}", "landmark route", "oracle (true landmarks)",
           "ceiling (true intensities)", "KG profile", "frequency only", "chance"]
BANDS_SHOWN = ["child", "adolescent", "adult", "all"]


@dataclass
class KGReference:
    """The KG side of the comparison: notebook 02's profiles when they exist, else the annotation frequencies."""

    profiles: dict
    weights: dict
    source: str


def kg_reference(data_dir, cohort) -> KGReference:
    """Notebook 02's KG profiles (disease -> renderable weights), else ``cohort.kg``'s HPO annotation frequencies."""
    path = Path(data_dir) / "profiles" / "kg_profiles.json"
    if path.is_file():
        profiles = {p.disease_id: p for p in load_profiles(path)}
        return KGReference(profiles, {d: p.renderable() for d, p in profiles.items()},
                           f"KG profiles of notebook 02 ({path.name})")
    return KGReference({}, {d: cohort.kg.loc[d].to_dict() for d in cohort.kg.index},
                       "HPO annotation frequencies (notebook 02's profiles not found)")


def learned_routes(choice, cohort, min_positives: int = 20) -> dict:
    """Image-learned profiles of ``cohort`` through each route: the chosen instrument (clean and blurred), the
    landmark route, the meter on the renderer's own landmarks (oracle), and the renderer's true intensities (the
    method's ceiling). ``choice``: :class:`phenoface.phenotypes.pipeline.InstrumentChoice`; each route takes its
    own validation floor (the landmark figures the landmark route's)."""

    measure, floor = choice.measure, choice.sd_floor
    landmark_floor = float(choice.table.loc["landmarks", "sd_floor"])

    def learn(measurements, sd_floor):
        return learn_image_profiles(measurements, cohort.table, min_positives=min_positives, sd_floor=sd_floor)

    return {
        "pixels": learn(measure(cohort.images), floor),
        SOURCES[1]: learn(blurred(measure, BLUR)(cohort.images), floor),
        "landmark route": learn(choice.candidates["landmarks"].measure(cohort.images), landmark_floor),
        "oracle (true landmarks)": learn(Meter().measure(cohort.landmarks, cohort.images), landmark_floor),
        "ceiling (true intensities)": learn(cohort.table[list(TERM_IDS)].reset_index(drop=True), floor),
    }


def profile_precision(learned: dict, truth: pd.DataFrame, kg_weights: dict, frequencies: pd.DataFrame,
                      seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(precision@k per disease and source, its summary: mean and 95 % bootstrap interval over diseases per
    source). Beside the ``learned`` routes: the KG ranking (``kg_weights``), one frequency-only ranking for
    every disease (how often each term is annotated over all diseases, ``frequencies``) and chance."""

    frequency_rank = rank_terms(frequencies.mean().to_dict(), TERM_IDS)
    rankings = {name: ranking_of(s) for name, s in learned.items()}
    rankings["KG profile"] = {d: rank_terms(kg_weights.get(d, {}), TERM_IDS) for d in truth.index}
    rankings["frequency only"] = {d: frequency_rank for d in truth.index}
    precision = precision_table(rankings, truth.drop(index=UNAFFECTED, errors="ignore"), TERM_IDS)
    summary = pd.DataFrame({c: dict(zip(["mean", "ci"], bootstrap_ci(precision[c].dropna().to_numpy(), seed=seed)))
                            for c in SOURCES}).T
    summary["95 % interval"] = [f"[{lo:.2f}, {hi:.2f}]" for lo, hi in summary["ci"]]
    return precision, summary


def precision_metrics(summary: pd.DataFrame) -> dict:
    """The recorded precision@k figures of :func:`profile_precision`'s summary."""
    mean = summary["mean"]
    return {"image_profile_precision_at_k": float(mean["pixels"]),
            "image_profile_precision_at_k_ci": list(summary.loc["pixels", "ci"]),
            "image_profile_precision_at_k_blur07": float(mean[SOURCES[1]]),
            "image_profile_precision_at_k_landmark_route": float(mean["landmark route"]),
            "image_profile_precision_at_k_oracle": float(mean["oracle (true landmarks)"]),
            "image_profile_precision_at_k_ceiling_oracle": float(mean["ceiling (true intensities)"]),
            "kg_profile_precision_at_k": float(mean["KG profile"]),
            "frequency_profile_precision_at_k": float(mean["frequency only"]),
            "chance_precision_at_k": float(mean["chance"])}


def with_image_evidence(learned: dict, measurements: pd.DataFrame, table: pd.DataFrame, kg_profiles: dict,
                        min_positives: int = 20, sd_floor: float = 0.0, names: dict | None = None):
    """(profiles, band effects). Every learned disease's KG profile (an images-only one where the KG has none)
    gains the all-ages image evidence and, per age band, the band's own (:func:`.images.learn_band_profiles`);
    KG profiles of diseases without faces follow unchanged."""

    names = names or DISEASES
    bands = {d: learn_band_profiles(measurements, table, d, min_positives=min_positives, sd_floor=sd_floor)
             for d in learned}
    updated = []
    for d, s in learned.items():
        if d in kg_profiles:
            base = kg_profiles[d]
        else:
            base = Profile.from_evidence(d, names[d], {"all": {}}, "images-only", term_names=dict(TERMS))
        updated.append(add_image_evidence(base, s, bands[d]))
    updated += [p for d, p in kg_profiles.items() if d not in learned]
    return updated, bands


def save_image_profiles(data_dir, profiles, learned: dict) -> Path:
    """``profiles/image_profiles.json`` and the effects behind them (``phenotypes/image_effects.json``)."""

    path = save_profiles(profiles, Path(data_dir) / "profiles" / "image_profiles.json")
    write_json(Path(data_dir) / "phenotypes" / "image_effects.json",
               {d: s.attrs["table"].reset_index().to_dict(orient="records") for d, s in learned.items()})
    return path


def _value(evidence: dict, source: str, term: str):
    return evidence.get(source, {}).get(term).value if term in evidence.get(source, {}) else None


def band_evidence(profile, terms, names: dict, bands=BANDS_SHOWN) -> pd.DataFrame:
    """The image evidence of ``terms`` (rows, labelled by ``names``) in each age band (columns); NaN: none."""
    out = {}
    for b in bands:
        images = profile.evidence(b).get("images", {})
        out[b] = {names[t]: images[t].value if t in images else np.nan for t in terms}
    return pd.DataFrame(out)


def band_positives(band_effects: dict) -> str:
    """"child 12, adolescent 9 (flagged), ...": the positive faces each band's effects were learned from."""
    return ", ".join(f"{b} {int(v.attrs['table']['n_pos'].max())}" + (" (flagged)" if v.attrs["flag"] else "")
                     for b, v in band_effects.items())


def evidence_table(profile, truth: pd.Series, names: dict) -> pd.DataFrame:
    """Per term (labelled by ``names``): the KG and image evidence of all ages, the fused weight and the cohort
    truth, strongest fused weight first."""
    ev = profile.evidence("all")
    return pd.DataFrame([{"term": names[t], "KG": _value(ev, "kg_frequency", t), "images": _value(ev, "images", t),
                          "fused weight": profile.renderable().get(t, 0.0), "truth": truth[t]}
                         for t in TERMS]).set_index("term").sort_values("fused weight", ascending=False)


@dataclass
class InstrumentChoice:
    """The candidates' validation figures (``table``: one row per candidate), their precision@k against the
    residual-SD floor, and the chosen one, saved under ``folder`` for :func:`phenoface.phenotypes.measure_images`."""

    table: pd.DataFrame
    floor_curves: dict
    name: str
    candidates: dict
    folder: Path
    data_dir: Path

    @property
    def kind(self) -> str:
        return "landmarks" if self.name == "landmarks" else "pixel"

    @property
    def saved(self):
        """The pixel instrument saved beside the choice (it carries the age head even when landmarks win)."""
        return self.candidates[self.name] if self.kind == "pixel" else self.candidates["pixel"]

    @property
    def sd_floor(self) -> float:
        return float(self.table.loc[self.name, "sd_floor"])

    @property
    def measure(self):
        """images -> measurements through the saved, chosen instrument."""
        return partial(measure_images, data_dir=self.data_dir)

    def metrics(self) -> dict:
        """What was chosen, with every candidate's validation figures."""
        route = "CNN on independent-term renders" if self.kind == "pixel" else "regressor + meter"
        return {"image_profile_instrument": f"{self.name} ({route})", "image_profile_sd_floor": self.sd_floor,
                "image_profile_instrument_views": int(getattr(self.saved, "views", 1)),
                **{f"validation_{name}_{fig}": float(v) for name, row in self.table.iterrows() for fig, v in row.items()}}


def instrument_candidates(pixel, regressor) -> dict:
    """The pixel instrument reading each image once, the same averaging :data:`VIEWS` views, the landmark route."""
    return {"pixel": pixel, f"pixel_views{VIEWS}": pixel.with_views(VIEWS), "landmarks": LandmarkInstrument(regressor)}


def choose_instrument(pixel, regressor, cohort, data_dir, check_n: int = 1024, seed: int = 0,
                      min_positives: int = 20) -> InstrumentChoice:
    """Each candidate measures the validation ``cohort`` (its residual-SD floor and precision@k, from
    :func:`choose_sd_floor`) and ``check_n`` fresh independent-term renders (per-term
    Pearson); the best precision@k wins (ties: the higher mean Pearson) and is saved with its figures."""
    candidates = instrument_candidates(pixel, regressor)
    images, table = render_independent(check_n, seed=seed + VALIDATION_RENDER_SEED, size=cohort.size)
    choice, curves = {}, {}
    for name, inst in candidates.items():
        floor, curves[name] = choose_sd_floor(inst.measure(cohort.images), cohort.table, cohort.truth, TERM_IDS,
                                              min_positives=min_positives)
        r = term_intensity_pearson(inst.measure, images=images, table=table)["pearson"]
        choice[name] = {"precision_at_k": float(curves[name].max()), "sd_floor": floor,
                        "precision_at_k_no_floor": float(curves[name].loc[0.0]),
                        "pearson_mean": float(r.mean()), "pearson_min": float(r.min())}
    choice = pd.DataFrame(choice).T
    name = choice.sort_values(["precision_at_k", "pearson_mean"], ascending=False).index[0]
    result = InstrumentChoice(choice, curves, name, candidates, Path(), Path(data_dir))
    result.folder = save_choice(data_dir, result.kind, result.saved, choice.to_dict(orient="index"))
    return result
