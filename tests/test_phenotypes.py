"""The phenotype meter and the landmark regressor (fast: small renders, a tiny training run)."""
import numpy as np
import pandas as pd
import pytest

from phenoface.cohort import TERMS, render_face
from phenoface.phenotypes import (IMAGE_TERMS, LANDMARK_TERMS, LandmarkRegressor, Meter, detect_landmarks,
                                  landmarks_for, normalise, train_regressor)


def _series(term, levels=(0.0, 0.25, 0.5, 0.75, 1.0), identity=3, age=25.0, sex="F", size=64):
    out = [render_face(identity, age, sex, {term: a}, size) for a in levels]
    return np.stack([o[0] for o in out]), np.stack([o[1] for o in out])


def _landmarks(term, levels=(0.0, 0.25, 0.5, 0.75, 1.0), identity=3, age=25.0, sex="F", size=64):
    """The renderer's landmarks without drawing pixels (fast)."""
    from phenoface.cohort import face_table, build_params
    from phenoface.cohort.layout import to_pixels

    table = pd.concat([face_table(identity, age, sex, {term: a}) for a in levels], ignore_index=True)
    return to_pixels(build_params(table)["lm"], size)


def test_columns_follow_terms_and_images_optional():
    img, lm = render_face(0, 30.0, "M", {}, 64)
    m = Meter().measure(lm[None])
    assert list(m.columns) == list(TERMS)
    assert m[IMAGE_TERMS].isna().all().all() and m[LANDMARK_TERMS].notna().all().all()
    m2 = Meter().measure(lm[None], img[None])
    assert m2.notna().all().all()
    assert np.allclose(m2[LANDMARK_TERMS].to_numpy(), m[LANDMARK_TERMS].to_numpy())


@pytest.mark.parametrize("term", ["HP:0000316", "HP:0000582", "HP:0000494", "HP:0000154", "HP:0000160",
                                  "HP:0000343", "HP:0000520", "HP:0000179", "HP:0000664", "HP:0005280",
                                  "HP:0000272", "HP:0000293", "HP:0000286", "HP:0012368", "HP:0000158"])
def test_landmark_measure_grows_with_severity(term):
    lms = _landmarks(term)
    values = Meter().measure(lms)[term].to_numpy()
    assert np.all(np.diff(values) > 0), (TERMS[term], values)


@pytest.mark.parametrize("term", ["HP:0000980", "HP:0001041", "HP:0000252", "HP:0200036", "HP:0010808"])
def test_image_measure_grows_with_severity(term):
    imgs, lms = _series(term, levels=(0.0, 0.5, 1.0), size=96)
    values = Meter().measure(lms, imgs)[term].to_numpy()
    assert values[2] > values[0] and values[1] >= values[0] - 1e-9, (TERMS[term], values)


def test_hypertelorism_is_specific():
    """Hypertelorism moves its own column by many identity-SDs and leaves mouth/nose columns alone."""
    lms = _landmarks("HP:0000316", levels=(0.0, 1.0))
    m = Meter().measure(lms)
    d = (m.iloc[1] - m.iloc[0])
    assert d["HP:0000316"] > 0.1  # eye-centre distance grows by > 10 % of the temple width
    for other in ("HP:0000154", "HP:0000343", "HP:0012368", "HP:0000179", "HP:0000664"):
        assert abs(d[other]) < 1e-6, other


def test_invariant_to_scale_translation_and_roll():
    _, lm = render_face(7, 12.0, "F", {"HP:0000582": 0.6, "HP:0000154": 0.4}, 64)
    th = np.deg2rad(11.0)
    rot = np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
    moved = (lm @ rot.T) * 3.7 + np.array([41.0, -13.0])
    a, b = Meter().measure(np.stack([lm, moved]))[LANDMARK_TERMS].to_numpy()
    assert np.allclose(a, b, atol=1e-6)
    q = normalise(np.stack([lm, moved]))
    assert np.allclose(q[0], q[1], atol=1e-6)


def test_missing_landmarks_stay_nan_rows():
    _, lm = render_face(1, 40.0, "M", {}, 64)
    lms = np.stack([lm, np.full_like(lm, np.nan)])
    m = Meter().measure(lms)
    assert len(m) == 2 and m.iloc[1].isna().all() and m.iloc[0][LANDMARK_TERMS].notna().all()
    with pytest.raises(ValueError):
        Meter().measure(np.zeros((2, 5, 2)))


def test_regressor_train_predict_save_load_deterministic(tmp_path):
    from phenoface.cohort import Cohort

    c = Cohort.generate(n=24, seed=1, size=64)
    r1 = train_regressor(c.images, c.landmarks, epochs=1, seed=3, batch_size=8)
    r2 = train_regressor(c.images, c.landmarks, epochs=1, seed=3, batch_size=8)
    p1 = r1.predict(c.images[:5])
    assert p1.shape == (5, 68, 2) and np.isfinite(p1).all()
    assert np.allclose(p1, r2.predict(c.images[:5]), atol=1e-5)
    path = r1.save(tmp_path / "phenotypes" / "regressor.safetensors")
    r3 = LandmarkRegressor.load(path)
    assert np.allclose(p1, r3.predict(c.images[:5]), atol=1e-6)
    pf, score = r3.predict(c.images[:5], flip=True, return_score=True)
    assert pf.shape == (5, 68, 2) and score.shape == (5,) and np.all((score >= 0) & (score <= 1))
    # other resolutions: points come back in that image's pixels
    big = np.repeat(np.repeat(c.images[:2], 2, axis=1), 2, axis=2)
    assert np.allclose(r3.predict(big), 2 * r3.predict(c.images[:2]), atol=0.6)
    one = detect_landmarks(c.images[0], backend="regressor", regressor=r3)
    assert one is None or one.shape == (68, 2)
    found, pts = landmarks_for(c.images[:4], "regressor", regressor=r3)
    assert found.shape == (4,) and pts.shape == (4, 68, 2)
    assert np.isnan(pts[~found]).all()


def test_truth_backend_and_unknown_backend():
    _, lm = render_face(0, 30.0, "F", {}, 64)
    found, pts = landmarks_for(np.zeros((2, 64, 64, 3), np.uint8), "truth", truth=np.stack([lm, lm * np.nan]))
    assert found.tolist() == [True, False]
    with pytest.raises(ValueError):
        detect_landmarks(np.zeros((64, 64, 3), np.uint8), backend="nope")
