"""Image-learned profiles: adjusted effects, flagging, precision@k, Profile evidence."""
import numpy as np
import pandas as pd
import pytest

from phenoface.profiles import Profile, learn_image_profile
from phenoface.profiles.images import (add_image_evidence, choose_sd_floor, evidence_values, floor_sd, image_effects,
                                       learn_image_profiles, precision_at_k, precision_table, rank_terms,
                                       ranking_of)


def _synthetic(n_pos=120, n_neg=120, seed=0, shift=1.0):
    """Term A shifted in positives; term B depends on age only, and positives are older (a confound)."""
    rng = np.random.default_rng(seed)
    age_p, age_n = rng.uniform(20, 60, n_pos), rng.uniform(2, 40, n_neg)
    sex_p, sex_n = rng.choice(["F", "M"], n_pos), rng.choice(["F", "M"], n_neg)
    pos = pd.DataFrame({"A": shift + rng.normal(0, 1, n_pos), "B": 0.1 * age_p + rng.normal(0, 1, n_pos),
                        "C": rng.normal(0, 1, n_pos)})
    neg = pd.DataFrame({"A": rng.normal(0, 1, n_neg), "B": 0.1 * age_n + rng.normal(0, 1, n_neg),
                        "C": rng.normal(0, 1, n_neg)})
    cov = (pd.DataFrame({"age": age_p, "sex": sex_p}), pd.DataFrame({"age": age_n, "sex": sex_n}))
    return pos, neg, cov


def test_adjustment_removes_age_confound_and_ranks_true_term_first():
    pos, neg, cov = _synthetic()
    raw = learn_image_profile(pos, neg)
    adj = learn_image_profile(pos, neg, covariates=cov)
    assert raw.index[0] == "B"  # unadjusted, the older positives make B look like a phenotype
    assert adj.index[0] == "A" and list(adj.values) == sorted(adj.values, reverse=True)
    table = adj.attrs["table"]
    assert table.loc["A", "ci_low"] > 0.5 and table.loc["A", "ci_low"] < table.loc["A", "effect"] < table.loc["A", "ci_high"]
    assert table.loc["B", "ci_low"] < 0 < table.loc["B", "ci_high"]
    assert abs(table.loc["A", "effect"] - 1.0) < 0.4  # effect in residual-SD units
    assert set(table.attrs["covariates"]) >= {"age", "age2", "sex"}


def test_too_few_positives_is_flagged_and_gives_no_evidence():
    pos, neg, _ = _synthetic(n_pos=6)
    s = learn_image_profile(pos, neg, min_positives=20)
    assert "too few positives" in s.attrs["flag"]
    p = Profile.from_evidence("OMIM:190685", "Down syndrome", {"all": {}}, "test")
    q = add_image_evidence(p, s)
    assert not q.evidence().get("images") and any("withheld" in n for n in q.notes)


def test_missing_rows_are_counted_not_dropped_silently():
    pos, neg, cov = _synthetic()
    pos.loc[:9, :] = np.nan
    table = image_effects(pos, neg, cov)
    assert (table["n_missing"] == 10).all() and (table["n_pos"] == 110).all()


def test_covariates_must_align():
    pos, neg, cov = _synthetic()
    with pytest.raises(ValueError):
        learn_image_profile(pos, neg, covariates=cov[0])


def test_evidence_values_in_unit_interval_and_profile_fusion():
    pos, neg, cov = _synthetic(shift=2.5)
    s = learn_image_profile(pos, neg, covariates=cov)
    ev = evidence_values(s)
    assert ev["A"] == 1.0 and ev["C"] == 0.0 and all(0 <= v <= 1 for v in ev.values())
    s.attrs["table"].index = ["HP:0000316", "HP:0000154", "HP:0000343"]
    p = Profile.from_evidence("OMIM:190685", "Down syndrome", {"all": {}}, "test")
    q = add_image_evidence(p, s)
    assert q.terms()["HP:0000316"] == pytest.approx(1.0)
    assert Profile.from_json(q.to_json()) == q


def test_precision_at_k_and_rank_terms():
    assert precision_at_k(["a", "b", "c"], {"a", "c"}) == 0.5
    assert precision_at_k(["a"], {"a", "c"}) == 0.5  # a short ranking counts as misses
    assert np.isnan(precision_at_k(["a"], set()))
    assert rank_terms({"x": 0.2, "y": 0.9, "z": 0.0}, ["x", "y", "z"]) == ["y", "x"]


def test_precision_on_a_small_cohort():
    """Truth landmarks + pixels on a small cohort: image profiles find most true terms."""
    from phenoface.cohort import TERMS, UNAFFECTED, Cohort
    from phenoface.phenotypes import Meter

    diseases = ["OMIM:190685", "OMIM:194050", UNAFFECTED]
    c = Cohort.generate(n=240, diseases=diseases, seed=2, size=64)
    m = Meter().measure(c.landmarks, c.images)
    learned = learn_image_profiles(m, c.table, min_positives=20)
    scores = []
    for d in diseases[:2]:
        truth = [t for t in TERMS if c.truth.loc[d, t] > 0]
        assert not learned[d].attrs["flag"]
        scores.append(precision_at_k(learned[d].index, truth))
    assert np.mean(scores) >= 0.7, scores


def test_band_profiles_give_age_specific_evidence():
    """A term only adults show: image evidence in the adult band, none in the child band."""
    from phenoface.profiles.images import learn_band_profiles

    rng = np.random.default_rng(4)
    n = 240
    age = np.r_[rng.uniform(3, 11, n // 2), rng.uniform(20, 50, n // 2)]
    disease = np.where(np.arange(n) % 2 == 0, "D:1", "UNAFFECTED")
    shows = (disease == "D:1") & (age >= 18)
    table = pd.DataFrame({"disease_id": disease, "age": age, "sex": rng.choice(["F", "M"], n)})
    m = pd.DataFrame({"HP:0000316": rng.normal(0, 1, n) + 2.0 * shows, "HP:0000154": rng.normal(0, 1, n)})
    bands = learn_band_profiles(m, table, "D:1", min_positives=20)
    assert set(bands) == {"child", "adult"}
    overall = learn_image_profile(m[disease == "D:1"], m[disease == "UNAFFECTED"],
                                  (table[disease == "D:1"][["age", "sex"]], table[disease == "UNAFFECTED"][["age", "sex"]]))
    p = add_image_evidence(Profile.from_evidence("D:1", "test", {"all": {}}, "t"), overall, bands)
    assert p.terms("adult").get("HP:0000316", 0) > 0.9
    assert p.terms("child").get("HP:0000316", 0) == 0
    assert p.terms("infant") == p.terms(None)  # no infants: the all-ages evidence


def _leaky(n=60, seed=0):
    """Disease D shows term A weakly (a 0.1 shift in a noisy reading, SD 0.15); term B it does not show, but
    A's rendering leaks 0.03 into B's nearly constant reading (SD 0.01): plain d ranks the leak first."""
    rng = np.random.default_rng(seed)
    rows = []
    for d in ("D", "UNAFFECTED"):
        a = rng.normal(0.1 if d == "D" else 0.0, 0.15, n)
        b = rng.normal(0.03 if d == "D" else 0.0, 0.01, n)
        rows.append(pd.DataFrame({"A": a, "B": b, "disease_id": d, "age": rng.uniform(2, 60, n),
                                  "sex": rng.choice(["F", "M"], n)}))
    table = pd.concat(rows, ignore_index=True)
    truth = pd.DataFrame({"A": [1.0], "B": [0.0]}, index=["D"])
    return table[["A", "B"]], table, truth


def test_sd_floor_stops_a_small_leak_into_a_constant_reading_outranking_a_real_term():
    m, table, truth = _leaky()
    plain = learn_image_profiles(m, table, min_positives=20)["D"]
    floored = learn_image_profiles(m, table, min_positives=20, sd_floor=1.0)["D"]
    assert plain.index[0] == "B" and floored.index[0] == "A"
    t = floored.attrs["table"]
    assert t.attrs["min_sd"] == pytest.approx(floor_sd(m, 1.0)) and t.attrs["min_sd"] > t.loc["B", "resid_sd"]
    # A's residual SD is above the floor: its effect is the plain one
    assert floored["A"] == pytest.approx(plain["A"])
    assert floored["B"] == pytest.approx(t.loc["B", "beta"] / t.attrs["min_sd"])
    best, curve = choose_sd_floor(m, table, truth, ["A", "B"], floors=(0.0, 0.5, 1.0, 2.0), min_positives=20)
    assert curve.loc[0.0] == 0.0 and curve.max() == 1.0
    assert best == curve.index[curve.to_numpy() == 1.0].min()  # the smallest floor that reaches the best
    for f, value in curve.items():  # re-ranking one fit per floor = refitting with that floor
        full = learn_image_profiles(m, table, min_positives=20, sd_floor=f)
        assert value == precision_table({"x": ranking_of(full)}, truth, ["A", "B"])["x"].mean()
    with pytest.raises(ValueError, match="sd_floor"):
        learn_image_profiles(m, table, sd_floor=-1)
    with pytest.raises(ValueError, match="min_sd"):
        image_effects(m[:5], m[5:], min_sd=float("nan"))
