"""Editing (DDIM inversion, SDEdit), progression and the round trip on a tiny model; bad input."""

import numpy as np
import pytest

from phenoface.editing import _schedulers, edit, encode, invert, progression, round_trip
from phenoface.labels import UNAFFECTED
from phenoface.model import load_model
from phenoface.model.train import main
from phenoface.sampling import Guide, concepts, denoise, generate


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    out = tmp_path_factory.mktemp("gen")
    main(["--out", str(out), "--faces", "40", "--image-size", "32", "--ae-steps", "3", "--unet-steps", "3"])
    return load_model(out / "model")


@pytest.fixture(scope="module")
def faces(model):
    return generate(model, disease=UNAFFECTED, n=3, seed=1, steps=4)


def test_inverse_and_forward_timesteps_mirror_each_other(model):
    fwd, inv = _schedulers(model, 20)
    np.testing.assert_array_equal(inv.timesteps.numpy(), fwd.timesteps.numpy()[::-1])


def test_ddim_inversion_reconstructs_and_sdedit_does_not(model, faces):
    z0 = encode(model, faces)
    guide = Guide(model, *concepts(model, len(faces), UNAFFECTED, None, 8.0, "F", 0.0, None))
    fwd, _ = _schedulers(model, 50)
    zt = invert(model, z0, guide, 50, 40)
    back = denoise(guide, zt.clone(), fwd, fwd.timesteps[10:], 1.0)
    err_inv = float((back - z0).abs().mean() / z0.abs().mean())
    noise = np.random.default_rng(0).standard_normal(z0.shape).astype(np.float32)
    import torch

    noisy = fwd.add_noise(z0, torch.as_tensor(noise), fwd.timesteps[10:11].repeat(len(z0)))
    err_sde = float((denoise(guide, noisy, fwd, fwd.timesteps[10:], 1.0) - z0).abs().mean() / z0.abs().mean())
    assert err_inv < 0.2 and err_inv < 0.5 * err_sde


def test_edit_outputs_and_reports_inversion(model, faces):
    d = model.diseases.ids[0]
    out = edit(model, faces, target=d, source=UNAFFECTED, age=8.0, steps=6, strength=0.5)
    assert out.images.shape == faces.shape and out.images.dtype == np.uint8
    assert list(out.table["target"]) == [d] * 3 and out.table["inversion_error"].notna().all()
    assert out.reconstructions.shape == faces.shape
    again = edit(model, faces, target=d, source=UNAFFECTED, age=8.0, steps=6, strength=0.5)
    assert np.array_equal(out.images, again.images)  # deterministic
    sd = edit(model, faces, target=d, method="sdedit", steps=6, strength=0.5, seed=3)
    assert sd.table["inversion_error"].isna().all() and sd.reconstructions is None
    strict = edit(model, faces, target=d, steps=6, strength=0.5, max_error=0.0)
    assert not strict.table["inversion_ok"].astype(bool).any()  # a failed inversion is reported, not hidden


def test_progression_and_round_trip(model, faces):
    d = model.diseases.ids[0]
    p = progression(model, faces[0], d, levels=[0.0, 0.5, 1.0], steps=5, strength=0.5)
    assert p.images.shape[0] == 3 and list(p.table["severity"]) == [0.0, 0.5, 1.0]
    there, back = round_trip(model, faces[:2], d, steps=5, strength=0.5)
    assert back.table["target"].eq(UNAFFECTED).all() and there.table["target"].eq(d).all()


def test_bad_input_is_named(model, faces):
    with pytest.raises(KeyError, match="unknown disease 'OMIM:0'.*knows"):
        edit(model, faces, target="OMIM:0")
    with pytest.raises(ValueError, match=r"expected uint8 \(N, 32, 32, 3\)"):
        edit(model, np.zeros((2, 64, 64, 3), np.uint8), target=UNAFFECTED)
    with pytest.raises(ValueError, match="NaN"):
        edit(model, np.full((1, 32, 32, 3), np.nan), target=UNAFFECTED)
    with pytest.raises(ValueError, match="strength"):
        edit(model, faces, target=UNAFFECTED, strength=1.5)
    with pytest.raises(ValueError, match="unknown edit method"):
        edit(model, faces, target=UNAFFECTED, method="warp")


def test_identity_measures_tell_the_same_person_from_another():
    from phenoface.evaluation.edits import identity_calibration, region_cosine, separation_auc, untouched_mask

    mask = untouched_mask(64, identities=2)
    assert 0.1 < mask.mean() < 0.9  # the background and hair are untouched, the inner face is not
    cal = identity_calibration(["OMIM:190685", "OMIM:163950"], n=8)
    assert separation_auc(cal, "untouched regions") > 0.9
    a = np.random.default_rng(0).integers(0, 255, (2, 64, 64, 3))
    np.testing.assert_allclose(region_cosine(a, a, mask), 1.0)
    with pytest.raises(ValueError, match="line up"):
        region_cosine(a, a[:1])


def test_an_image_without_a_face_is_named_and_the_others_still_edited(model, faces):
    from phenoface.cohort import render_face

    face = render_face(7, 20.0, "F", None, 32)[0]
    blank = np.full((32, 32, 3), 128, np.uint8)
    out = edit(model, np.stack([face, blank]), target=model.diseases.ids[0], steps=4, strength=0.5, require_face=True)
    assert list(out.table["edited"]) == [True, False]
    assert out.table.loc[1, "note"] == "no face detected: not edited"
    assert np.array_equal(out.images[1], blank) and not np.array_equal(out.images[0], face)


def test_dlib_distance_on_photos_is_zero_for_the_same_face_and_nan_without_one():
    from phenoface.datasets import load_dataset
    from phenoface.datasets.landmarks import dlib_distance

    photos = load_dataset("packaged", size=64).images[:2]
    same = dlib_distance(photos, photos)
    other = dlib_distance(photos, photos[::-1])
    assert np.allclose(same, 0.0, atol=1e-4) and (other > 0.3).all()  # two different people
    assert np.isnan(dlib_distance(photos[:1], np.zeros_like(photos[:1])))[0]
    with pytest.raises(ValueError, match="pairs"):
        dlib_distance(photos, photos[:1])


def test_exact_inversion_maps_back_closer_and_is_used_where_plain_drifts(model, faces):
    z0 = encode(model, faces)
    guide = Guide(model, *concepts(model, len(faces), UNAFFECTED, None, 8.0, "F", 0.0, None))
    fwd, _ = _schedulers(model, 8)
    run = fwd.timesteps[2:]

    def error(iterations):
        back = denoise(guide, invert(model, z0, guide, 8, 6, iterations), fwd, run, 1.0)
        return float((back - z0).abs().mean())

    assert error(5) < error(0)
    kw = dict(target=model.diseases.ids[0], steps=8, strength=0.75, age=8.0)
    plain = edit(model, faces, refine=0, max_error=0.0, **kw)  # max_error 0: every inversion counts as drifting
    exact = edit(model, faces, refine=5, max_error=0.0, **kw)
    assert not plain.table["inversion_refined"].any() and exact.table["inversion_refined"].any()
    assert (exact.table["inversion_error"] <= plain.table["inversion_error"] + 1e-12).all()
    # only the images above the threshold are inverted again; the others keep their plain inversion
    errors = plain.table["inversion_error"].to_numpy()
    cut = float(np.sort(errors)[-2] + np.sort(errors)[-1]) / 2  # between the two largest: one image drifts
    some = edit(model, faces, refine=5, max_error=cut, **kw)
    drifting = errors > cut
    assert drifting.sum() == 1 and not some.table["inversion_refined"][~drifting].any()
    np.testing.assert_allclose(some.table["inversion_error"][~drifting], errors[~drifting])
    assert (some.table["inversion_error"][drifting] <= errors[drifting] + 1e-12).all()
    with pytest.raises(ValueError, match="refine"):
        edit(model, faces, refine=-1, **kw)
