"""The packaged quick-profile instrument: it belongs to this renderer, loads without unpickling, and measures
fresh renders of new people (a check that fails if the checkpoint or the renderer drifts)."""
import json
import shutil

import numpy as np
import pytest

from phenoface.cohort.independent import render_independent
from phenoface.cohort.terms import TERM_IDS
from phenoface.phenotypes.packaged import COMMAND, FOLDER, RECIPE, load_packaged, renderer_digest


def test_packaged_instrument_belongs_to_this_renderer():
    card = json.loads((FOLDER / "instrument.json").read_text())
    assert card["renderer"] == renderer_digest(), f"the renderer changed: rebuild with `{COMMAND}`"
    assert card["recipe"] == RECIPE and card["train_images"] == RECIPE["n"]
    assert not [p for p in FOLDER.iterdir() if p.suffix in (".pt", ".pkl", ".ckpt")]


def test_packaged_instrument_measures_new_people():
    images, table = render_independent(512, seed=4242, size=64)  # people none of its training renders show
    measured = load_packaged().measure(images)
    r = np.array([np.corrcoef(measured[t], table[t])[0, 1] for t in TERM_IDS])
    # Floors a little under what it measured when it was built (see its card); a shuffled truth gives ~0.
    assert np.nanmean(r) > 0.7 and np.sum(r > 0.5) >= len(TERM_IDS) - 3, dict(zip(TERM_IDS, r.round(2)))
    shuffled = np.array([np.corrcoef(measured[t], np.random.default_rng(0).permutation(table[t]))[0, 1]
                         for t in TERM_IDS])
    assert np.abs(shuffled).mean() < 0.1


def test_checkpoint_of_another_renderer_is_refused(tmp_path):
    copy = tmp_path / "inst"
    shutil.copytree(FOLDER, copy)
    card = json.loads((copy / "instrument.json").read_text())
    card["renderer"] = "0000000000000000"
    (copy / "instrument.json").write_text(json.dumps(card))
    with pytest.raises(ValueError, match="trained on renderer 0000000000000000.*python -m phenoface.ship instrument"):
        load_packaged(copy)
    with pytest.raises(FileNotFoundError, match="INSTRUMENT_SOURCE: train"):
        load_packaged(tmp_path / "missing")


def test_shipped_generator_installs_loads_and_generates(tmp_path):
    """The quick profile's shipped generator matches this code (fingerprint) and draws faces."""
    import json

    import numpy as np

    from phenoface.model import load_model
    from phenoface.model.pipeline import SHIPPED, install_shipped
    from phenoface.sampling import generate

    card = install_shipped(tmp_path / "model")
    assert card["source"] == "shipped" and card["unet"]["steps"] > 0
    assert sum(p.stat().st_size for p in SHIPPED.iterdir()) < 20e6
    m = load_model(tmp_path / "model")
    imgs = generate(m, disease=m.diseases.ids[0], age=8.0, n=2, steps=3, seed=0)
    assert imgs.shape == (2, 64, 64, 3) and imgs.std() > 5  # not a constant image
    recorded = json.loads((SHIPPED / "card.json").read_text())
    assert recorded["figures"]["weights"] in ("ema", "online")
    assert np.array_equal(imgs, generate(m, disease=m.diseases.ids[0], age=8.0, n=2, steps=3, seed=0))


@pytest.mark.parametrize("method", ["class", "prompt"])
def test_shipped_baselines_install_and_share_the_generators_autoencoder(method, tmp_path):
    """Notebook 01's shipped baselines match this code, carry no second autoencoder, and draw faces."""
    import json

    from phenoface.baselines import SHIPPED_BASELINES, install_baseline
    from phenoface.model import load_model
    from phenoface.model.pipeline import SHIPPED
    from phenoface.sampling import generate

    folder = SHIPPED_BASELINES / method
    assert not (folder / "autoencoder.safetensors").exists()
    assert sum(p.stat().st_size for p in folder.iterdir()) < 15e6
    card = install_baseline(method, tmp_path / method)
    assert card["method"] == method and card["unet"]["steps"] == json.loads((SHIPPED / "card.json").read_text())["unet"]["steps"]
    m = load_model(tmp_path / method)
    assert m.method == method
    imgs = generate(m, disease=m.diseases.ids[0], n=2, steps=3, seed=0)
    assert imgs.shape == (2, 64, 64, 3) and imgs.std() > 5


def test_golden_outputs_keep_a_refactor_and_catch_a_change_of_meaning(tmp_path, monkeypatch):
    """The shipped generator's stored golden outputs are what this code computes (a refactor that changes
    nothing keeps the checkpoint); other weights, or code that reads the tokens differently, are caught."""
    import torch

    from phenoface.conditioning import ConditionEncoder
    from phenoface.model import load_model
    from phenoface.model.golden import GoldenMismatch, check_golden
    from phenoface.model.pipeline import install_shipped

    install_shipped(tmp_path / "model")
    assert check_golden(tmp_path / "model") <= 2e-3
    m = load_model(tmp_path / "model")
    with torch.no_grad():
        m.unet.conv_out.bias += 0.01
    with pytest.raises(GoldenMismatch, match="differ"):
        check_golden(tmp_path / "model", model=m)
    # the same weights read another way (tokens at half their normalised scale; their order would not show:
    # cross-attention does not see it): refused
    forward = ConditionEncoder.forward
    monkeypatch.setattr(ConditionEncoder, "forward", lambda self, cond: 0.5 * forward(self, cond))
    with pytest.raises(GoldenMismatch):
        check_golden(tmp_path / "model")
    (tmp_path / "model" / "golden.json").unlink()
    with pytest.raises(GoldenMismatch, match="no golden.json"):
        check_golden(tmp_path / "model")
