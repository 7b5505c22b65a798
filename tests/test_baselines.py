"""Baselines of notebook 01: class-conditional and prompt-only models trained through the main model's code."""

import numpy as np
import pytest
import torch

from phenoface.baselines import (METHODS, baseline_conditions, baseline_table, class_balance, install_baseline,
                                 ship_baseline, train_baseline)
from phenoface.cohort import Cohort
from phenoface.conditioning import GROUPS
from phenoface.labels import UNAFFECTED
from phenoface.model import load_model
from phenoface.model.train import main
from phenoface.sampling import generate


@pytest.fixture(scope="module")
def generator(tmp_path_factory):
    out = tmp_path_factory.mktemp("gen")
    main(["--out", str(out), "--faces", "40", "--image-size", "32", "--ae-steps", "2", "--unet-steps", "2"])
    return out / "model"


@pytest.fixture(scope="module")
def cohort():
    return Cohort.generate(n=48, seed=3, size=32)


def test_class_table_has_one_token_per_class_and_unaffected(cohort):
    ids = sorted(set(cohort.table["disease_id"]))
    t = baseline_table("class", ids)
    assert t.ids[-1] == UNAFFECTED and len(t.ids) == len(set(ids) | {UNAFFECTED})
    np.testing.assert_array_equal(t.embedding, np.eye(len(t.ids)))
    assert not t.profile.any()
    cond = baseline_conditions(cohort.table, t)
    assert cond["keep"][:, GROUPS.index("disease")].all() and cond["keep"].sum() == len(cohort.table)
    with pytest.raises(ValueError, match="unknown baseline 'gan'"):
        baseline_table("gan", ids)


def test_prompt_table_embeds_names_and_differs_by_disease():
    t = baseline_table("prompt", ["OMIM:190685", "OMIM:163950"], {"OMIM:190685": "Down syndrome",
                                                                    "OMIM:163950": "Noonan syndrome"})
    assert t.embedding.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(t.embedding, axis=1), 1.0, atol=1e-4)
    assert float(t.embedding[0] @ t.embedding[1]) < 0.999


def test_class_balance_draws_every_class_equally():
    w = class_balance(["a", "a", "a", "b"])
    np.testing.assert_allclose(w, [1 / 3, 1 / 3, 1 / 3, 1.0])
    assert w[:3].sum() == pytest.approx(w[3:].sum())


@pytest.mark.parametrize("method", METHODS)
def test_train_ship_install_and_generate(method, generator, cohort, tmp_path):
    zs = [d for d in cohort.table["disease_id"].unique() if d != UNAFFECTED][:1]
    card = train_baseline(method, cohort.images, cohort.table, tmp_path / "m", tmp_path / "w", autoencoder=generator,
                          zero_shot=zs, unet_steps=2, batch_size=8, trainer_kw={"progress": False, "accelerator": "cpu"})
    assert card["method"] == method and card["unet"]["steps"] == 2 and card["zero_shot"] == zs
    model = load_model(tmp_path / "m")
    assert model.method == method and UNAFFECTED in model.diseases.ids
    gen = load_model(generator)
    for k, v in model.vae.state_dict().items():  # the generator's autoencoder, shared
        torch.testing.assert_close(v, gen.vae.state_dict()[k])
    assert model.latent_scale == pytest.approx(gen.latent_scale)
    d = model.diseases.ids[0]
    a = generate(model, disease=d, n=2, seed=0, steps=3)
    b = generate(model, disease=d, n=2, seed=0, steps=3)
    assert a.shape == (2, 32, 32, 3) and a.dtype == np.uint8 and np.array_equal(a, b)
    with pytest.raises(ValueError, match="no term tokens"):
        generate(model, disease=d, terms={"HP:0000316": 1.0}, n=1, steps=2)
    with pytest.raises(KeyError, match="unknown disease"):
        generate(model, disease="OMIM:000000", n=1, steps=2)
    shipped = ship_baseline(tmp_path / "m", method, tmp_path / "ship" / method)
    assert not (shipped / "autoencoder.safetensors").exists()  # once for both methods, beside them
    assert (shipped.parent / "autoencoder" / "autoencoder.safetensors").is_file()
    install_baseline(method, tmp_path / "inst", source=shipped)  # the autoencoder it was trained in, not the generator's
    for k, v in load_model(tmp_path / "inst").vae.state_dict().items():
        torch.testing.assert_close(v.float(), gen.vae.state_dict()[k].float())
    c = generate(load_model(tmp_path / "inst"), disease=d, n=2, seed=0, steps=3)
    assert np.abs(c.astype(int) - a.astype(int)).mean() < 3  # fp16 storage: nearly the same faces


def test_install_refuses_a_missing_checkpoint(tmp_path):
    with pytest.raises(FileNotFoundError, match="TRAIN_BASELINES"):
        install_baseline("class", tmp_path / "x", source=tmp_path / "nothing")
