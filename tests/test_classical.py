"""Average portraits and the landmark thin-plate-spline warp."""

import numpy as np
import pytest

from phenoface.baselines.classical import aligned_mean, hpo_profile, term_displacements, warp_face
from phenoface.cohort import render_face
from phenoface.phenotypes.packaged import load_packaged


def test_aligned_mean_averages_the_aligned_faces():
    from phenoface.datasets.landmarks import align_face

    (a, la), (b, lb) = render_face(3, 10.0, "F", None, 64), render_face(4, 30.0, "M", None, 64)
    out = aligned_mean(np.stack([a, b]), np.stack([la, lb]))
    want = (align_face(a, la, 64)[0].astype(float) + align_face(b, lb, 64)[0].astype(float)) / 2
    assert out.shape == (64, 64, 3) and out.dtype == np.uint8
    assert np.abs(out - want).max() <= 0.5 + 1e-9
    with pytest.raises(ValueError, match="no faces"):
        aligned_mean(np.zeros((0, 64, 64, 3), np.uint8), np.zeros((0, 68, 2)))


def test_warp_moves_landmarks_and_the_instrument_sees_the_term():
    disp = term_displacements(64, identities=2)
    assert np.abs(disp["HP:0000316"]).max() > 0.5  # hypertelorism moves the eyes
    img, lm = render_face(5, 8.0, "F", None, 64)
    same, dst0 = warp_face(img, lm, {"HP:0000316": 1.0}, 0.0, disp)
    assert np.abs(same.astype(int) - img.astype(int)).mean() < 1.0 and np.allclose(dst0, lm)
    warped, dst = warp_face(img, lm, {"HP:0000316": 1.0}, 1.0, disp)
    assert np.allclose(dst - lm, disp["HP:0000316"])
    m = load_packaged().measure(np.stack([img, warped]))
    assert m["HP:0000316"].iloc[1] - m["HP:0000316"].iloc[0] > 0.3  # measured from pixels, not read back
    dup = lm.copy()
    dup[1] = dup[0]  # a detector returning two points at one place must not break the spline
    warp_face(img, dup, {"HP:0000316": 1.0}, 1.0, disp)
    with pytest.raises(ValueError, match="severity"):
        warp_face(img, lm, {"HP:0000316": 1.0}, 2.0, disp)
    with pytest.raises(KeyError, match="without a landmark displacement"):
        warp_face(img, lm, {"HP:9999999": 1.0}, 1.0, disp)


def test_hpo_profile_reads_annotations():
    prof = hpo_profile("OMIM:190685")
    assert prof and all(0 < w <= 1 for w in prof.values())
    with pytest.raises(ValueError, match="unknown disease"):
        hpo_profile("OMIM:000000")
