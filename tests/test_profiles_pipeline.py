"""Notebook 04's profile steps: the KG reference, image-learned profiles through each route with their
precision@k, and the KG profiles with image evidence."""
import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from phenoface.cohort import Cohort
from phenoface.cohort.terms import TERM_IDS, TERMS
from phenoface.labels import UNAFFECTED
from phenoface.profiles import kg_profile, save_profiles
from phenoface.profiles.images import learn_image_profiles
from phenoface.profiles.pipeline import (SOURCES, band_evidence, band_positives, evidence_table, kg_reference,
                                         learned_routes, precision_metrics, profile_precision, save_image_profiles,
                                         with_image_evidence)

DISEASES = ["OMIM:190685", "OMIM:194050"]


@pytest.fixture(scope="module")
def cohort():
    return Cohort.generate(n=180, diseases=DISEASES + [UNAFFECTED], seed=2, size=64)


@pytest.fixture(scope="module")
def truth_learned(cohort):
    """Profiles learned from the renderer's true intensities: the method's ceiling."""
    return learn_image_profiles(cohort.table[list(TERM_IDS)].reset_index(drop=True), cohort.table, min_positives=20)


def test_kg_reference_prefers_notebook_02_profiles(tmp_path, cohort):
    fallback = kg_reference(tmp_path, cohort)
    assert fallback.profiles == {} and "not found" in fallback.source
    assert fallback.weights[DISEASES[0]] == cohort.kg.loc[DISEASES[0]].to_dict()
    save_profiles([kg_profile(DISEASES[0])], tmp_path / "profiles" / "kg_profiles.json")
    ref = kg_reference(tmp_path, cohort)
    assert list(ref.profiles) == [DISEASES[0]] and "notebook 02" in ref.source
    assert ref.weights[DISEASES[0]] == ref.profiles[DISEASES[0]].renderable()


def test_learned_routes_use_each_routes_floor(cohort):
    from phenoface.phenotypes import Meter

    calls = []

    def measure(images):
        calls.append(len(images))
        return Meter().measure(cohort.landmarks[:len(images)], images)[TERM_IDS].reset_index(drop=True)

    choice = SimpleNamespace(measure=measure, sd_floor=0.0, candidates={"landmarks": SimpleNamespace(measure=measure)},
                             table=pd.DataFrame({"sd_floor": [0.5]}, index=["landmarks"]))
    learned = learned_routes(choice, cohort, min_positives=20)
    assert list(learned) == SOURCES[:5] and calls == [len(cohort)] * 3  # clean, blurred, landmark route
    assert set(learned["pixels"]) == set(DISEASES)
    ceiling = learned["ceiling (true intensities)"][DISEASES[0]]
    true_terms = {t for t in TERM_IDS if cohort.truth.loc[DISEASES[0], t] > 0}
    assert ceiling.index[0] in true_terms


def test_profile_precision_summarises_every_source(cohort, truth_learned):
    learned = {name: truth_learned for name in SOURCES[:5]}
    kg_weights = {d: cohort.kg.loc[d].to_dict() for d in cohort.kg.index}
    precision, summary = profile_precision(learned, cohort.truth, kg_weights, cohort.kg, seed=0)
    assert list(summary.index) == SOURCES and UNAFFECTED not in precision.index
    assert ((precision[SOURCES] >= 0) & (precision[SOURCES] <= 1)).all().all()
    assert summary.loc["pixels", "mean"] > summary.loc["chance", "mean"]
    lo, hi = summary.loc["pixels", "ci"]
    assert summary.loc["pixels", "95 % interval"] == f"[{lo:.2f}, {hi:.2f}]"
    m = precision_metrics(summary)
    assert m["image_profile_precision_at_k"] == summary.loc["pixels", "mean"]
    assert m["chance_precision_at_k"] == summary.loc["chance", "mean"] and len(m) == 9


def test_with_image_evidence_adds_images_and_keeps_other_kg_profiles(tmp_path, cohort, truth_learned):
    measurements = cohort.table[list(TERM_IDS)].reset_index(drop=True)
    kg = {d: kg_profile(d) for d in [DISEASES[0], "OMIM:163950"]}
    profiles, bands = with_image_evidence(truth_learned, measurements, cohort.table, kg, min_positives=5)
    by_id = {p.disease_id: p for p in profiles}
    assert set(by_id) == set(DISEASES) | {"OMIM:163950"} and set(bands) == set(DISEASES)
    assert "images" in by_id[DISEASES[0]].evidence("all") and "kg_frequency" in by_id[DISEASES[0]].evidence("all")
    assert set(by_id[DISEASES[1]].evidence("all")) == {"images"}  # no KG profile given: images only
    assert by_id["OMIM:163950"] is kg["OMIM:163950"]
    shown = [t for t in TERMS if cohort.truth.loc[DISEASES[0], t] > 0]
    table = band_evidence(by_id[DISEASES[0]], shown, dict(TERMS))
    assert list(table.columns) == ["child", "adolescent", "adult", "all"] and len(table) == len(shown)
    assert ((table.fillna(0) >= 0) & (table.fillna(0) <= 1)).all().all()
    assert band_positives(bands[DISEASES[0]]).startswith(next(iter(bands[DISEASES[0]])))
    ev = evidence_table(by_id[DISEASES[0]], cohort.truth.loc[DISEASES[0]], dict(TERMS))
    assert len(ev) == len(TERMS) and list(ev["fused weight"]) == sorted(ev["fused weight"], reverse=True)
    path = save_image_profiles(tmp_path, profiles, truth_learned)
    assert path.is_file() and set(json.loads((tmp_path / "phenotypes" / "image_effects.json").read_text())) == set(DISEASES)
    assert np.isfinite(ev["truth"]).all()
