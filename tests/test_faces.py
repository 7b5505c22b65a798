import numpy as np
import pytest
from skimage import data

from phenoface import faces


@pytest.fixture(scope="module")
def astronaut():
    return data.astronaut()


@pytest.mark.parametrize("backend", faces.BACKENDS)
def test_backends_find_the_face(astronaut, backend):
    lm = faces.detect_landmarks(astronaut, backend=backend)
    assert lm.shape == (68, 2)
    # the outer eye corners lie left/right of the nose tip, the chin below it
    assert lm[36, 0] < lm[30, 0] < lm[45, 0] and lm[8, 1] > lm[30, 1]
    assert faces.detect_landmarks(np.full((120, 120, 3), 128, np.uint8), backend=backend) is None


def test_backends_agree(astronaut):
    mp_lm = faces.detect_landmarks(astronaut, "mediapipe")
    dl_lm = faces.detect_landmarks(astronaut, "dlib")
    inner = slice(17, 68)  # jaw contours are defined differently by the two models
    err = np.linalg.norm(mp_lm[inner] - dl_lm[inner], axis=1).mean() / faces.interocular(dl_lm)
    assert err < 0.06  # measured 0.030 on this photo, 0.043 on grace_hopper


def test_unknown_backend_and_bad_image():
    with pytest.raises(ValueError, match="unknown landmark backend"):
        faces.detect_landmarks(np.zeros((8, 8, 3), np.uint8), backend="nope")
    with pytest.raises(ValueError, match="RGB image"):
        faces.detect_landmarks(np.zeros((8, 8, 5), np.uint8))


def test_alignment_puts_eyes_on_the_template(astronaut):
    lm = faces.detect_landmarks(astronaut, "dlib")
    img, out = faces.align_face(astronaut, lm, size=64)
    assert img.shape == (64, 64, 3) and img.dtype == np.uint8
    template = faces.canonical_landmarks(64)
    for idx in (36, 45, 30):
        assert np.linalg.norm(out[idx] - template[idx]) < 2.5  # pixels at 64 px
    with pytest.raises(ValueError, match=r"\(68, 2\)"):
        faces.align_face(astronaut, lm[:10])


def test_descriptor_is_identity_sensitive(astronaut):
    a = faces.face_descriptor(astronaut)
    b = faces.face_descriptor(astronaut[:, ::-1].copy())  # the same person mirrored
    assert a.shape == (128,)
    assert np.linalg.norm(a - b) < 0.6  # dlib's same-person threshold
    assert faces.face_descriptor(np.full((100, 100, 3), 90, np.uint8)) is None
