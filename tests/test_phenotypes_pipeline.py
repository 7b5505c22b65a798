"""Notebook 04's instrument steps: the regressor and backend checks, the pixel instrument's two sources, and the
choice between candidates on a validation cohort."""
import json

import numpy as np
import pytest

from phenoface.cohort import Cohort
from phenoface.cohort.terms import TERM_IDS
from phenoface.labels import UNAFFECTED
from phenoface.phenotypes import train_regressor
from phenoface.phenotypes.pipeline import BackendCheck, backend_check, pixel_instrument, regressor_test
from phenoface.profiles.pipeline import choose_instrument, instrument_candidates


@pytest.fixture(scope="module")
def cohort():
    return Cohort.generate(n=48, diseases=["OMIM:190685", UNAFFECTED], seed=5, size=64)


@pytest.fixture(scope="module")
def regressor(cohort):
    return train_regressor(cohort.images, cohort.landmarks, epochs=1, width=4, seed=0, batch_size=16)


@pytest.fixture(scope="module")
def pixel():
    return pixel_instrument("train", train_n=32, epochs=1, width=4, seed=0, size=64)


class _Exact:
    """A regressor that returns the renders' own landmarks."""

    def __init__(self, landmarks):
        self.landmarks = landmarks

    def predict(self, images, batch_size=256):
        return self.landmarks[:len(images)].copy()


def test_regressor_test_scores_exact_landmarks_as_no_error(cohort, regressor):
    exact = regressor_test(_Exact(cohort.landmarks), cohort)
    assert exact.errors.shape == (len(cohort),) and exact.nme == pytest.approx(0.0, abs=1e-9)
    assert exact.images_per_s > 0 and exact.metrics()["regressor_nme"] == exact.nme
    trained = regressor_test(regressor, cohort)
    assert trained.predicted.shape == cohort.landmarks.shape and trained.nme > exact.nme


def test_backend_check_rerenders_a_seeded_sample_and_scores_each_backend(cohort, regressor):
    first = backend_check(cohort, 4, regressor, seed=1, size=96, backends=("regressor",))
    again = backend_check(cohort, 4, regressor, seed=1, size=96, backends=("regressor",))
    assert first.images.shape == (4, 96, 96, 3) and first.landmarks.shape == (4, 68, 2)
    assert np.array_equal(first.images, again.images)  # the same faces for the same seed
    assert list(first.table.index) == ["regressor"] and first.table.loc["regressor", "n"] == 4
    assert set(first.metrics()) == {"regressor_nme_256"}
    more = backend_check(cohort, 1000, regressor, seed=1, size=64, backends=("regressor",))
    assert len(more.images) == len(cohort)  # never more faces than the cohort has


def test_backend_metrics_name_each_real_photo_backend():
    import pandas as pd

    table = pd.DataFrame({"nme": [0.1, 0.2, 0.3], "found_rate": [1.0, 0.5, 1.0]}, index=["mediapipe", "dlib", "regressor"])
    m = BackendCheck(np.zeros((1, 4, 4, 3)), np.zeros((1, 68, 2)), table, 0.0).metrics()
    assert m == {"mediapipe_nme_256": 0.1, "mediapipe_found_rate_256": 1.0, "dlib_nme_256": 0.2,
                 "dlib_found_rate_256": 0.5, "regressor_nme_256": 0.3}


def test_pixel_instrument_sources(pixel):
    with pytest.raises(ValueError, match="instrument source"):
        pixel_instrument("downloaded")
    inst, card = pixel
    # times are rounded to 0.1 s, and 32 tiny renders can train faster than that on an idle machine
    assert card["train_images"] == 32 and all(isinstance(card[k], float) and card[k] >= 0
                                              for k in ("train_seconds", "render_seconds"))
    assert inst.measure(np.zeros((2, 64, 64, 3), np.uint8)).shape == (2, len(TERM_IDS))


def test_choose_instrument_saves_the_best_candidate(tmp_path, cohort, regressor, pixel):
    regressor.save(tmp_path / "phenotypes" / "regressor.safetensors")  # the landmark route's file, if it wins
    choice = choose_instrument(pixel[0], regressor, cohort, tmp_path, check_n=16, seed=0, min_positives=5)
    assert list(choice.table.index) == list(instrument_candidates(pixel[0], regressor))
    best = choice.table.sort_values(["precision_at_k", "pearson_mean"], ascending=False).index[0]
    assert choice.name == best and choice.sd_floor == choice.table.loc[best, "sd_floor"]
    saved = json.loads((choice.folder / "instrument.json").read_text())
    assert saved["kind"] == choice.kind and saved["chosen_on"] == "validation"
    assert set(saved["evidence"]) == set(choice.table.index)
    assert choice.measure(cohort.images[:3]).shape == (3, len(TERM_IDS))
    m = choice.metrics()
    assert m["image_profile_instrument"].startswith(choice.name) and m["image_profile_sd_floor"] == choice.sd_floor
    assert {f"validation_{c}_precision_at_k" for c in choice.table.index} <= set(m)
    assert all(0.0 <= m[f"validation_{c}_precision_at_k"] <= 1.0 for c in choice.table.index)


def test_backend_examples_title_each_backend_with_its_figures(cohort, regressor):
    import matplotlib

    matplotlib.use("Agg")
    from phenoface.phenotypes.figures import backend_examples

    check = backend_check(cohort, 2, regressor, seed=0, size=64, backends=("regressor",))
    fig = backend_examples(check.images[0], check.landmarks[0], check.table, regressor, backends=("regressor",))
    assert fig.axes[0].get_title().startswith("regressor: NME ") and "/2" in fig.axes[0].get_title()
