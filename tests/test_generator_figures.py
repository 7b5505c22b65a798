"""Quick figures of a generator for the studies: the saved recogniser, drawing a split's conditions and
measuring them, and term control along same-noise series (here through a pass-through autoencoder)."""
from types import SimpleNamespace

import numpy as np
import pytest

from phenoface.cohort import Cohort
from phenoface.cohort.terms import TERM_IDS
from phenoface.evaluation import train_recogniser
from phenoface.evaluation.generator_figures import draw_and_measure, saved_recogniser, term_control
from phenoface.model import load_model
from phenoface.model.train import main as train_main
from phenoface.phenotypes.measure import save_choice
from phenoface.phenotypes.packaged import load_packaged


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """A data folder holding the packaged phenotype instrument, as notebook 04 leaves it."""
    folder = tmp_path_factory.mktemp("data")
    save_choice(folder, "pixel", load_packaged())
    return folder


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    out = tmp_path_factory.mktemp("gen")
    train_main(["--out", str(out), "--faces", "40", "--image-size", "32", "--ae-steps", "3", "--unet-steps", "3"])
    return load_model(out / "model")


def test_saved_recogniser_is_notebook_07s_or_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="run notebook 07"):
        saved_recogniser(tmp_path)
    c = Cohort.generate(n=48, seed=0, size=32)
    rec = train_recogniser(c.images, c.table["disease_id"], epochs=1, seed=0, width=8, batch_size=16, input_size=32,
                           augment_images=False)
    rec.save(tmp_path / "evaluation" / "recogniser.safetensors")
    again, extractor = saved_recogniser(tmp_path)
    np.testing.assert_allclose(again.embed(c.images[:4]), rec.embed(c.images[:4]), atol=1e-5)
    assert callable(extractor)


def test_draw_and_measure_draws_every_disease_of_the_split(model, data_dir):
    real = Cohort.generate(n=60, seed=1, size=32)
    rec = train_recogniser(real.images, real.table["disease_id"], epochs=1, seed=0, width=8, batch_size=16,
                           input_size=32, augment_images=False)
    figures = draw_and_measure(model, real, rec, rec.feature_extractor(), per_disease=1, steps=2, data_dir=data_dir)
    assert figures["conditioned_faces"] == real.table["disease_id"].nunique()  # one per disease, none zero-shot
    assert 0.0 <= figures["top1"] <= 1.0 and np.isfinite(figures["fd"]) and figures["s_per_face"] > 0
    assert figures["age_mae"] >= 0 and figures["age_mae_shuffled"] >= 0
    again = draw_and_measure(model, real, rec, rec.feature_extractor(), per_disease=1, steps=2)
    assert "age_mae" not in again and again["top1"] == figures["top1"]  # seed 0: the same faces


class PassThrough:
    """An autoencoder that gives back what it was given: the series reach the instrument untouched."""

    def encode(self, x):
        return SimpleNamespace(latent_dist=SimpleNamespace(mode=lambda: x))

    def decode(self, z):
        return SimpleNamespace(sample=z)


def test_term_control_through_a_lossless_autoencoder_keeps_every_term(data_dir):
    tc = term_control(None, data_dir, vae=PassThrough(), seeds=(101,))
    assert set(tc["term_spearman"]) == set(TERM_IDS)
    # rendered series measured by the packaged instrument: the ceiling, every term steps through
    assert tc["terms_at_goal"] == len(TERM_IDS) and tc["term_spearman_min"] >= 0.8
    assert tc["term_spearman_median"] >= tc["term_spearman_min"]
