"""The phenotype meter: one measurement per renderable HPO term, from 68 landmarks (and pixels).

Geometry is measured in a *face frame* that removes position, scale and roll:

* origin: the midpoint of the two eye centres (mean of points 36-41 and 42-47);
* x axis: along the eye line (subject's right eye -> left eye), y axis: down the face;
* unit: the temple width ``W = |p0 - p16|`` (the jaw contour at eye level).

Why not the interocular distance? It *is* the hypertelorism signal (and proptosis, slant and
epicanthus move the eye corners), so dividing by it would leak one phenotype into every other
measurement. No renderable term moves points 0 and 16, and slant/spacing/proptosis leave the eye
line's direction unchanged, so the frame is phenotype-neutral. Each measurement was chosen so that
(on the synthetic cohort, where ``EFFECT`` documents exactly what each term moves) it responds to
its own term and as little as possible to the others; ``MEASURES`` says what each column is.

Texture / colour terms (pallor, erythema, skin nodules, smooth philtrum), protruding tongue (the
tongue over the lower lip; its mouth opening is shared with macroglossia) and microcephaly (the
cranium is not among the 68 points) are measured on the pixels, in regions placed by the landmarks.
Without images (``images=None``) these columns are NaN.

Every column is oriented so that *larger means more of that phenotype*; units are face-frame units
(fractions of W), degrees (canthal tilt) or image-intensity ratios.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..cohort.layout import MEAN_SHAPE, to_pixels
from ..cohort.terms import TERM_IDS, TERMS

# term -> (kind of measurement, description). Kind: "landmark" needs only points; "image" needs pixels.
MEASURES: dict[str, tuple[str, str]] = {
    "HP:0000316": ("landmark", "interpupillary index: distance between the eye centres / W"),
    "HP:0000582": ("landmark", "canthal tilt (deg): outer corners (36, 45) above inner corners (39, 42), mean of both eyes"),
    "HP:0000494": ("landmark", "minus the canthal tilt (deg)"),
    "HP:0000286": ("landmark", "minus the medial upper-lid share: inner corner (39 / 42) beyond the upper-lid point (38 / 43) / fissure length, along each eye's axis (a fold hides the inner corner)"),
    "HP:0012368": ("landmark", "nasal index: alar width (31-35) / nasal height (eye line to subnasale 33); a flat face has a short, wide nose"),
    "HP:0005280": ("landmark", "nasion depth: eye line to nasion (27) / W (a depressed bridge sits low)"),
    "HP:0000343": ("landmark", "philtrum length: subnasale (33) to upper-lip midpoint (51) / W"),
    "HP:0000319": ("image", "minus the philtral contrast: ridge (below 32 and 34) brightness minus groove (33-51) brightness / skin brightness"),
    "HP:0000154": ("landmark", "mouth width: 48 to 54 / W"),
    "HP:0000160": ("landmark", "minus the mouth width / W"),
    "HP:0000158": ("landmark", "mouth opening: inner-lip gap 62 to 66 / W"),
    "HP:0010808": ("image", "tongue over the lower lip: (blue - green) / (r+g+b) over the lower lip and just below it minus the same on the cheeks (a tongue is pink with blue >= green; lips and skin have green > blue)"),
    "HP:0000664": ("landmark", "medial brow extension: inner brow end (21, 22) beyond mid-brow (19, 24) / W"),
    "HP:0000252": ("image", "minus the cranial height: top of the head (first non-background row above the brows) to the brow line / W"),
    "HP:0000520": ("landmark", "palpebral fissure height: upper lid (37, 38 / 43, 44) to lower lid (41, 40 / 47, 46) / W"),
    "HP:0000272": ("landmark", "minus the upper-cheek width: contour points 1-15 and 2-14 / W"),
    "HP:0000293": ("landmark", "lower-cheek width: contour points 4-12 and 5-11 / W"),
    "HP:0000179": ("landmark", "lower-lip height: inner lower lip (66) to outer lower lip (57) / W"),
    "HP:0000980": ("image", "minus the forehead skin chroma (max-min)/max of RGB: pale skin is desaturated"),
    "HP:0200036": ("image", "skin roughness: mean |Laplacian| of (lightly smoothed) luminance on cheek and forehead skin / skin luminance"),
    "HP:0001041": ("image", "cheek and nose-tip redness minus forehead redness (r / (r+g+b))"),
}
assert set(MEASURES) == set(TERMS)
LANDMARK_TERMS = [t for t in TERM_IDS if MEASURES[t][0] == "landmark"]
IMAGE_TERMS = [t for t in TERM_IDS if MEASURES[t][0] == "image"]


def face_frame(landmarks: np.ndarray):
    """(origin (N,2), rotation (N,2,2) image->face, unit W (N,)) for landmarks (N, 68, 2) pixels."""
    lm = np.asarray(landmarks, float)
    er = lm[:, 36:42].mean(1)
    el = lm[:, 42:48].mean(1)
    origin = 0.5 * (er + el)
    d = el - er
    ang = np.arctan2(d[:, 1], d[:, 0])
    c, s = np.cos(ang), np.sin(ang)
    # rotate by -ang: image -> face frame
    rot = np.stack([np.stack([c, s], -1), np.stack([-s, c], -1)], 1)
    unit = np.linalg.norm(lm[:, 0] - lm[:, 16], axis=1)
    return origin, rot, unit


def normalise(landmarks: np.ndarray) -> np.ndarray:
    """Landmarks (N, 68, 2) in the face frame: translation, roll and scale removed."""
    lm = np.asarray(landmarks, float)
    if lm.ndim == 2:
        return normalise(lm[None])[0]
    origin, rot, unit = face_frame(lm)
    q = np.einsum("nij,nkj->nki", rot, lm - origin[:, None])
    return q / unit[:, None, None]


def to_image(points: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """Face-frame points (N, K, 2) -> image pixels for each face (inverse of :func:`normalise`)."""
    origin, rot, unit = face_frame(landmarks)
    p = np.asarray(points, float) * unit[:, None, None]
    return np.einsum("nji,nkj->nki", rot, p) + origin[:, None]


def _dist(q, a, b):
    return np.linalg.norm(q[:, a] - q[:, b], axis=-1)


def _share(q, outer, inner, lid):
    """Medial share of the fissure: (inner corner - upper-lid point) / fissure length, along the eye's own axis."""
    axis = q[:, inner] - q[:, outer]
    length = np.linalg.norm(axis, axis=1)
    axis = axis / length[:, None]
    return np.einsum("nd,nd->n", q[:, inner] - q[:, lid], axis) / length


def landmark_measures(landmarks: np.ndarray) -> pd.DataFrame:
    """The landmark columns (face-frame geometry) for (N, 68, 2) pixel landmarks."""
    q = normalise(landmarks)
    x, y = q[..., 0], q[..., 1]
    out = {}
    er, el = q[:, 36:42].mean(1), q[:, 42:48].mean(1)
    out["HP:0000316"] = np.linalg.norm(el - er, axis=1)
    tilt_r = np.degrees(np.arctan2(y[:, 39] - y[:, 36], x[:, 39] - x[:, 36]))
    tilt_l = np.degrees(np.arctan2(y[:, 42] - y[:, 45], x[:, 45] - x[:, 42]))
    tilt = 0.5 * (tilt_r + tilt_l)
    out["HP:0000582"] = tilt
    out["HP:0000494"] = -tilt
    out["HP:0000286"] = -0.5 * (_share(q, 36, 39, 38) + _share(q, 45, 42, 43))
    nasal_height = y[:, 33]
    out["HP:0012368"] = _dist(q, 31, 35) / nasal_height
    out["HP:0005280"] = y[:, 27]
    out["HP:0000343"] = y[:, 51] - y[:, 33]
    width = _dist(q, 48, 54)
    out["HP:0000154"] = width
    out["HP:0000160"] = -width
    out["HP:0000158"] = y[:, 66] - y[:, 62]
    out["HP:0000664"] = 0.5 * ((x[:, 21] - x[:, 19]) + (x[:, 24] - x[:, 22]))
    out["HP:0000520"] = 0.5 * ((y[:, [41, 40]].mean(1) - y[:, [37, 38]].mean(1))
                               + (y[:, [47, 46]].mean(1) - y[:, [43, 44]].mean(1)))
    out["HP:0000272"] = -0.5 * (_dist(q, 1, 15) + _dist(q, 2, 14))
    out["HP:0000293"] = 0.5 * (_dist(q, 4, 12) + _dist(q, 5, 11))
    out["HP:0000179"] = y[:, 57] - y[:, 66]
    return pd.DataFrame(out)


# ---------------------------------------------------------------------------------------------------
# pixel measurements
def _bilinear(img: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Sample img (H, W[, C]) float at pixel points (K, 2) (x, y; pixel centres at +0.5)."""
    h, w = img.shape[:2]
    xs = np.clip(pts[:, 0] - 0.5, 0, w - 1)
    ys = np.clip(pts[:, 1] - 0.5, 0, h - 1)
    x0, y0 = np.floor(xs).astype(int), np.floor(ys).astype(int)
    x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
    fx, fy = xs - x0, ys - y0
    if img.ndim == 3:
        fx, fy = fx[:, None], fy[:, None]
    top = img[y0, x0] * (1 - fx) + img[y0, x1] * fx
    bot = img[y1, x0] * (1 - fx) + img[y1, x1] * fx
    return top * (1 - fy) + bot * fy


def _grid(cx, cy, hx, hy, n=5):
    gx, gy = np.meshgrid(np.linspace(-hx, hx, n), np.linspace(-hy, hy, n))
    return np.stack([cx + gx.ravel(), cy + gy.ravel()], -1)


def _segment(a, b, n=7):
    t = np.linspace(0.0, 1.0, n)[:, None]
    return a[None] * (1 - t) + b[None] * t


def _luma(rgb):
    return rgb @ np.array([0.299, 0.587, 0.114])


def image_measures(images: np.ndarray, landmarks: np.ndarray) -> pd.DataFrame:
    """The pixel columns for uint8 RGB images (N, H, W, 3) with their (N, 68, 2) landmarks."""
    from scipy import ndimage

    imgs = np.asarray(images)
    lms = np.asarray(landmarks, float)
    n = len(imgs)
    q = normalise(lms)
    cols = {t: np.full(n, np.nan) for t in IMAGE_TERMS}
    for i in range(n):
        if not np.isfinite(lms[i]).all():
            continue
        img = imgs[i].astype(np.float64) / 255.0
        qi = q[i]
        brow_y = qi[[19, 24], 1].mean()

        def px(points, _i=i):
            return to_image(np.asarray(points, float)[None], lms[_i][None])[0]

        def sample(points, src=img):
            return _bilinear(src, px(points))

        # forehead skin: above the brow line, between the mid-brows
        fore = sample(_grid(0.0, brow_y - 0.09, 0.10, 0.025))
        fore_med = np.median(fore, 0)
        # cheeks: between the jaw contour (2 / 14) and the nose wings (31 / 35), at the nose-tip height
        cheek_pts = []
        for a, b in ((2, 31), (14, 35)):
            c = 0.5 * (qi[a] + qi[b])
            cheek_pts.append(_grid(c[0], 0.5 * (qi[29, 1] + qi[30, 1]), 0.05, 0.04))
        cheek = sample(np.concatenate(cheek_pts))
        nose_tip = sample(_grid(qi[30, 0], qi[30, 1] - 0.01, 0.02, 0.02, 3))
        # pallor: desaturated forehead skin
        mx, mn = fore_med.max(), fore_med.min()
        cols["HP:0000980"][i] = -(mx - mn) / max(mx, 1e-3)

        def redness(rgb):
            return rgb[..., 0] / np.maximum(rgb.sum(-1), 1e-3)

        cols["HP:0001041"][i] = (0.75 * np.median(redness(cheek)) + 0.25 * np.median(redness(nose_tip))
                                 - redness(fore_med))
        # nodules: high-frequency luminance detail on skin
        lum = _luma(img)
        lap = np.abs(ndimage.laplace(ndimage.gaussian_filter(lum, 0.5)))
        skin_pts = np.concatenate([_grid(0.0, brow_y - 0.09, 0.12, 0.03, 6), *cheek_pts])
        cols["HP:0200036"][i] = float(np.mean(_bilinear(lap, px(skin_pts)))) / max(float(_luma(fore_med)), 0.05)
        # smooth philtrum: ridges vs groove
        ridge = np.concatenate([_segment(qi[32] + [0.0, 0.02], np.array([qi[32, 0], qi[51, 1] - 0.01])),
                                _segment(qi[34] + [0.0, 0.02], np.array([qi[34, 0], qi[51, 1] - 0.01]))])
        groove = _segment(qi[33] + [0.0, 0.02], qi[51] - [0.0, 0.02])
        cols["HP:0000319"][i] = -(np.mean(_bilinear(lum, px(ridge))) - np.mean(_bilinear(lum, px(groove)))) \
            / max(float(_luma(fore_med)), 0.05)
        # protruding tongue: a tongue is pink with blue >= green, lips and skin have green > blue; look
        # for it over the lower lip, from the inner lower lip (66) to a little below the outer one (57)
        lip_h = qi[57, 1] - qi[66, 1]
        lower = sample(_grid(qi[66, 0], qi[66, 1] + 0.75 * lip_h, 0.35 * (qi[54, 0] - qi[48, 0]) / 2 + 0.01,
                             0.6 * lip_h + 0.005, 5))
        blue_green = lambda rgb: (rgb[..., 2] - rgb[..., 1]) / np.maximum(rgb.sum(-1), 1e-3)  # noqa: E731
        cols["HP:0010808"][i] = float(np.mean(blue_green(lower)) - np.median(blue_green(cheek)))
        # microcephaly: how far above the brows the head ends. Scan the midline upwards from the brow
        # line to the image top; the head ends at the first row (from the top) that differs from the
        # background, estimated from the top-row corners.
        h, w = img.shape[:2]
        brow_px = px(np.array([[0.0, brow_y]]))[0]
        up = px(np.array([[0.0, brow_y - 1.0]]))[0] - brow_px  # one W upwards, in pixels
        t_top = (brow_px[1] - 0.5) / max(-up[1], 1e-6)  # how many W until the image top
        ts = np.linspace(min(t_top, 1.5), 0.0, 96)
        scan = brow_px[None] + ts[:, None] * up[None]
        col = _bilinear(img, scan)
        bg = np.median(np.concatenate([img[0, :2], img[0, -2:]]), 0)
        off = np.abs(col - bg).max(1) > 0.12
        k = int(np.argmax(off)) if off.any() else len(off) - 1
        cols["HP:0000252"][i] = -ts[k]
    return pd.DataFrame(cols)


class Meter:
    """Measure every renderable HPO term on faces.

        >>> Meter().measure(landmarks)            # (N, 68, 2) pixels -> DataFrame, one column per term
        >>> Meter().measure(landmarks, images)    # + the colour / texture / head columns

    Columns follow ``TERMS`` order; larger always means more of the phenotype (``MEASURES`` says
    what each one is). Rows whose landmarks are missing (NaN, e.g. no face found) stay NaN, so a
    face-less image is visible in the output rather than dropped.
    """

    terms = list(TERM_IDS)
    measures = MEASURES

    def measure(self, landmarks, images=None) -> pd.DataFrame:
        lm = np.asarray(landmarks, float)
        if lm.ndim == 2:
            lm = lm[None]
        if lm.ndim != 3 or lm.shape[1:] != (68, 2):
            raise ValueError(f"landmarks must be (N, 68, 2) pixel coordinates, got {lm.shape}")
        ok = np.isfinite(lm).all(axis=(1, 2))
        safe = np.where(ok[:, None, None], lm, MEAN_PIXELS[None])
        with np.errstate(invalid="ignore", divide="ignore"):
            out = landmark_measures(safe)
            if images is not None:
                imgs = np.asarray(images)
                if imgs.ndim == 3:
                    imgs = imgs[None]
                if len(imgs) != len(lm):
                    raise ValueError(f"{len(imgs)} images for {len(lm)} landmark sets")
                img_cols = image_measures(imgs, np.where(ok[:, None, None], lm, np.nan))
            else:
                img_cols = pd.DataFrame({t: np.full(len(lm), np.nan) for t in IMAGE_TERMS})
        df = pd.concat([out, img_cols], axis=1)[TERM_IDS]
        df.loc[~ok, :] = np.nan
        return df

    def describe(self) -> pd.DataFrame:
        return pd.DataFrame([{"hpo_id": t, "term": TERMS[t], "needs": MEASURES[t][0], "measurement": MEASURES[t][1]}
                             for t in TERM_IDS])


def _mean_pixels(size: int = 64) -> np.ndarray:
    return to_pixels(MEAN_SHAPE[None], size)[0]


MEAN_PIXELS = _mean_pixels()
