"""Real photos and non-faces through notebook 04's measuring path: every image keeps its row."""
import numpy as np
import pytest

from phenoface.cohort import Cohort
from phenoface.cohort.terms import TERM_IDS
from phenoface.labels import UNAFFECTED
from phenoface.phenotypes import Meter, train_regressor
from phenoface.phenotypes.photos import bad_input_report, bad_inputs, measure_photos, square


def test_square_crops_the_centre_and_makes_grey_rgb():
    grey = np.zeros((40, 100), np.uint8)
    grey[:, 30:70] = 200  # the centred 40 x 40 square is all bright
    out = square(grey, size=16)
    assert out.shape == (16, 16, 3) and out.dtype == np.uint8
    assert out.min() == 200


def test_bad_inputs_are_seeded_and_named():
    face, photo = np.zeros((32, 32, 3), np.uint8), np.ones((32, 32, 3), np.uint8)
    a, b = bad_inputs(face, photo, "me", seed=1, size=32), bad_inputs(face, photo, "me", seed=1, size=32)
    assert list(a) == ["render (a face)", "photo: me", "skimage coffee", "skimage rocket", "uniform noise", "blank grey"]
    assert np.array_equal(a["uniform noise"], b["uniform noise"])
    assert not np.array_equal(a["uniform noise"], bad_inputs(face, photo, "me", seed=2, size=32)["uniform noise"])
    assert all(v.shape == (32, 32, 3) for v in a.values())


def test_bad_input_report_keeps_a_row_for_every_image():
    c = Cohort.generate(n=24, diseases=["OMIM:190685", UNAFFECTED], seed=3, size=64)
    regressor = train_regressor(c.images, c.landmarks, epochs=1, width=4, seed=0, batch_size=8)
    inputs = bad_inputs(c.images[0], c.images[1], "render", seed=0, size=64)
    report = bad_input_report(inputs, Meter(), regressor, backends=("regressor",))
    assert list(report.index) == list(inputs)
    assert list(report.columns) == ["regressor: face found", "regressor: measured terms"]
    assert (report.loc[~report["regressor: face found"], "regressor: measured terms"] == 0).all()
    assert report["regressor: measured terms"].max() <= len(TERM_IDS)


def test_measure_photos_one_row_per_photo_and_backend():
    from phenoface.datasets import load_dataset

    photos = load_dataset("packaged", size=128)
    names = {t: f"term {i}" for i, t in enumerate(TERM_IDS)}
    table, landmarks = measure_photos(photos, Meter(), 1, names=names, backends=("dlib",))
    assert list(table.index) == [f"{photos[0]['source']} · dlib"]
    assert set(names.values()) <= set(table.columns)
    lm = landmarks[(0, "dlib")]
    assert lm is None or lm.shape == (68, 2)
    if lm is not None:
        assert table.notna().any(axis=1).all()
    else:
        pytest.skip("dlib found no face in the packaged photo at 128 px")
