"""The pixel phenotype instrument and measure_images (pixels in, phenotypes out)."""
import numpy as np
import pandas as pd
import pytest
import torch

from phenoface.cohort.independent import render_independent
from phenoface.cohort.terms import TERM_IDS
from phenoface.phenotypes import PhenotypeInstrument, estimate_age, measure_images, save_choice, train_instrument
from phenoface.phenotypes.instrument import gaussian_blur
from phenoface.phenotypes.validation import blurred, term_intensity_pearson, term_intensity_spearman


@pytest.fixture(scope="module")
def renders():
    return render_independent(96, seed=4, size=64)


@pytest.fixture(scope="module")
def tiny(renders):
    images, table = renders
    return train_instrument(images, table[TERM_IDS].to_numpy(), table["age"].to_numpy(), epochs=1, width=4,
                            seed=0, batch_size=32, progress=False)


def test_same_seed_same_weights(renders, tiny):
    images, table = renders
    again = train_instrument(images, table[TERM_IDS].to_numpy(), table["age"].to_numpy(), epochs=1, width=4,
                             seed=0, batch_size=32, progress=False)
    for (k, a), b in zip(tiny.net.state_dict().items(), again.net.state_dict().values()):
        assert torch.equal(a, b), k


def test_save_load_without_pickle_and_measure_images(tmp_path, monkeypatch, renders, tiny):
    images, _ = renders
    save_choice(tmp_path, "pixel", tiny, {"why": "test"})
    folder = tmp_path / "phenotypes" / "instrument"
    assert (folder / "pixel" / "model.safetensors").is_file()
    assert not list(folder.rglob("*.pt")) and not list(folder.rglob("*.pkl"))
    m = measure_images(images[:5], data_dir=tmp_path)
    assert list(m.columns) == TERM_IDS and len(m) == 5
    pd.testing.assert_frame_equal(m, tiny.measure(images[:5])[TERM_IDS])
    monkeypatch.setenv("PHENOFACE_DATA_DIR", str(tmp_path))
    # one (H, W, 3) image; batch size changes the float summation order, hence the tolerance
    assert np.allclose(measure_images(images[0]).to_numpy(), m.iloc[:1].to_numpy(), atol=1e-5)
    ages = estimate_age(images[:3])
    assert ages.shape == (3,) and np.all(np.isfinite(ages))
    big = np.repeat(np.repeat(images[:2], 2, axis=1), 2, axis=2)  # 128 px in, resized to 64
    assert measure_images(big).shape == (2, len(TERM_IDS))


def test_views_average_the_mirror_and_shifts_and_survive_save(tmp_path, renders, tiny):
    images, _ = renders
    six = tiny.with_views(6)
    assert tiny.views == 1 and six.views == 6 and six.net is tiny.net
    x = torch.from_numpy(images[:4]).permute(0, 3, 1, 2).float().div(255).sub(0.5).div(0.25)
    with torch.no_grad():
        plain, mirror = tiny.net(x)[:, :-1].numpy(), tiny.net(x.flip(-1))[:, :-1].numpy()
    np.testing.assert_allclose(tiny.with_views(2).measure(images[:4]).to_numpy(), (plain + mirror) / 2, atol=1e-5)
    assert not np.allclose(six.measure(images[:4]).to_numpy(), plain, atol=1e-4)  # the views do change a reading
    save_choice(tmp_path, "pixel", six, {"why": "test"})
    np.testing.assert_allclose(measure_images(images[:4], data_dir=tmp_path).to_numpy(),
                               six.measure(images[:4]).to_numpy(), atol=1e-6)
    for bad in (0, 7, 2.5):
        with pytest.raises(ValueError, match="views"):
            tiny.with_views(bad)


def test_measure_images_bad_input(tmp_path, renders):
    images, _ = renders
    with pytest.raises(FileNotFoundError, match="notebook 04"):
        measure_images(images[:2], data_dir=tmp_path)
    with pytest.raises(ValueError, match="uint8"):
        measure_images(images[:2].astype(np.float32) / 255, data_dir=tmp_path)
    with pytest.raises(ValueError, match="shape"):
        measure_images(images[:2, :, :, 0], data_dir=tmp_path)
    assert measure_images(np.empty((0, 64, 64, 3), np.uint8), data_dir=tmp_path).empty
    with pytest.raises(ValueError, match="kind"):
        save_choice(tmp_path, "magic", None)


def test_blur_helper():
    x = torch.rand(3, 3, 16, 16)
    same = gaussian_blur(x, torch.tensor([0.0, 0.0, 0.0]))
    assert torch.allclose(same, x, atol=1e-6)
    soft = gaussian_blur(x, torch.tensor([0.0, 1.0, 2.0]))
    sd = [float(soft[i].std()) for i in range(3)]
    assert sd[0] > sd[1] > sd[2]


@pytest.mark.slow
def test_instrument_learns_terms_from_pixels():
    """A small instrument trained briefly must read strong terms and age far better than chance, and the
    controlled checks must tell a working instrument from a blind one."""
    images, table = render_independent(2048, seed=11, size=64)
    inst = train_instrument(images, table[TERM_IDS].to_numpy(), table["age"].to_numpy(), epochs=5, width=8,
                            seed=0, batch_size=64, progress=False)
    r = term_intensity_pearson(inst.measure, n=256, seed=12)
    assert r.loc["HP:0000980", "pearson"] > 0.5   # pallor (a texture term)
    assert r.loc["HP:0000252", "pearson"] > 0.35  # microcephaly (head size)
    blind = term_intensity_pearson(lambda x: pd.DataFrame(np.random.default_rng(0).random((len(x), len(TERM_IDS))),
                                                          columns=TERM_IDS), n=256, seed=12)
    assert blind["pearson"].abs().max() < 0.25
    sp = term_intensity_spearman(inst.measure, identities=2, seed=13, terms=["HP:0000980", "HP:0000252"])
    assert (sp["spearman"] > 0.8).all()
    blur = term_intensity_pearson(blurred(inst.measure, 0.7), n=256, seed=12)
    assert blur.loc["HP:0000980", "pearson"] > 0.4
    _, test = render_independent(256, seed=12)
    mae = np.abs(inst.age(render_independent(256, seed=12)[0]) - test["age"]).mean()
    assert mae < np.abs(test["age"] - table["age"].mean()).mean()  # better than guessing the mean age
