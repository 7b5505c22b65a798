"""The 68-point face layout (dlib ordering) and its age / sex / identity morphs.

Coordinates here are *template units*: x = 0 on the facial midline, y grows downwards, brows at
y ~ 0.2, chin at y ~ 1.06, outer eye corners ~0.53 apart (the OpenFace/dlib mean face, made
symmetric). ``to_pixels`` places a template-space shape in a ``size`` x ``size`` image.

Index groups (dlib): jaw 0-16, right brow 17-21, left brow 22-26, nose bridge 27-30, nose base
31-35, right eye 36-41, left eye 42-47, outer lips 48-59, inner lips 60-67 ("right" = the
subject's right = image left).
"""

from __future__ import annotations

import numpy as np

# OpenFace's dlib mean face (align_dlib TEMPLATE), 68 x (x, y) in [0, 1.06].
_OPENFACE = np.array([
    (0.0792396913815, 0.339223741112), (0.0829219487236, 0.456955367943),
    (0.0967927109165, 0.575648016728), (0.122141515615, 0.691921601066),
    (0.168687863544, 0.800341263616), (0.239789390707, 0.895732504778),
    (0.325662452515, 0.977068762493), (0.422318282013, 1.04329000149),
    (0.531777802068, 1.06080371126), (0.641296298053, 1.03981924107),
    (0.738105872266, 0.972268833998), (0.824444363295, 0.889624082279),
    (0.894792677532, 0.792494155836), (0.939395486253, 0.681546643421),
    (0.96111933829, 0.562238253072), (0.970579841181, 0.441758925744),
    (0.971193274221, 0.322118743967), (0.163846223133, 0.249151738053),
    (0.21780354657, 0.204255863861), (0.291299351124, 0.192367318323),
    (0.367460241458, 0.203582210627), (0.4392945113, 0.233135599851),
    (0.586445962425, 0.228141644834), (0.660152671635, 0.195923841854),
    (0.737466449096, 0.182360984545), (0.813236546239, 0.192828009114),
    (0.8707571886, 0.235293377042), (0.51534533827, 0.31863546193),
    (0.516221448289, 0.396200446263), (0.517118861835, 0.473797687758),
    (0.51816430343, 0.553157797772), (0.433701156035, 0.604054457668),
    (0.475501237769, 0.62076344024), (0.520712933176, 0.634268222208),
    (0.565874114041, 0.618796581487), (0.607054002672, 0.60157671656),
    (0.252418718401, 0.331052263829), (0.298663015648, 0.302646354002),
    (0.355749724218, 0.303020650651), (0.403718978315, 0.33867711083),
    (0.352507175597, 0.349987615384), (0.296791759886, 0.350478978225),
    (0.631326076346, 0.334136672344), (0.679073381078, 0.29645404267),
    (0.73597236153, 0.294721285802), (0.782865376271, 0.321305281656),
    (0.740312274764, 0.341849376713), (0.68499850091, 0.343734332172),
    (0.353167761422, 0.746189164237), (0.414587777921, 0.719053835073),
    (0.477677654595, 0.706835892494), (0.522732900812, 0.717092275768),
    (0.569832064287, 0.705414478982), (0.635195811927, 0.71565572516),
    (0.69951672331, 0.739419187253), (0.639447159575, 0.805236879972),
    (0.576410514055, 0.835436670169), (0.525398405766, 0.841706377792),
    (0.47641545769, 0.837505914975), (0.41379548902, 0.810045601727),
    (0.380084785646, 0.749979603086), (0.477955996282, 0.74513234612),
    (0.523389793327, 0.748924302636), (0.571057789237, 0.74332894691),
    (0.672409137852, 0.744177032192), (0.572539621444, 0.776609286626),
    (0.5240106503, 0.783370783245), (0.477561227414, 0.778476346951)])

# Left/right mirror of every dlib index.
MIRROR = np.array(
    list(range(16, -1, -1)) + list(range(26, 16, -1)) + [27, 28, 29, 30] + [35, 34, 33, 32, 31]
    + [45, 44, 43, 42, 47, 46] + [39, 38, 37, 36, 41, 40]
    + [54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55] + [64, 63, 62, 61, 60, 67, 66, 65])

JAW = np.arange(0, 17)
BROW_R, BROW_L = np.arange(17, 22), np.arange(22, 27)
NOSE_BRIDGE, NOSE_BASE = np.arange(27, 31), np.arange(31, 36)
EYE_R, EYE_L = np.arange(36, 42), np.arange(42, 48)
LIPS_OUTER, LIPS_INNER = np.arange(48, 60), np.arange(60, 68)
MOUTH = np.arange(48, 68)


def _mean_shape() -> np.ndarray:
    p = _OPENFACE.copy()
    p[:, 0] -= 0.5 * (p[0, 0] + p[16, 0])
    m = p[MIRROR].copy()
    m[:, 0] *= -1
    s = 0.5 * (p + m)
    s[[27, 28, 29, 30, 33, 51, 57, 62, 66], 0] = 0.0
    # open the closed mean mouth a hair so inner/outer lips never cross
    s[[60, 61, 62, 63, 64], 1] -= 0.002
    s[[65, 66, 67], 1] += 0.002
    return s


MEAN_SHAPE = _mean_shape()  # (68, 2) template units, symmetric
HEAD_TOP = -0.42  # template y of the top of the skull (hair excluded)
HAIRLINE = -0.20  # template y of the hairline on the midline
VIEW = (-0.56, 1.34)  # template y range shown in the image (head, neck, shoulders)
CHILD_PIVOT_Y = 1.0  # a child's face is scaled down about this point (near the chin)


def child_factor(age):
    """How child-like the proportions are: 1 at age 2, falling steadily (slightly eased) to 0 at 18."""
    t = np.clip((18.0 - np.asarray(age, float)) / 16.0, 0.0, 1.0)
    return t ** 1.15


def ageing_factor(age):
    """Adult ageing: 0 up to 18, rising linearly to 1 at 60 (folds, eye bags, thinner lips, lower brows)."""
    return np.clip((np.asarray(age, float) - 18.0) / 42.0, 0.0, 1.0)


def greying(age):
    """Share of grey hair: none before 30, 0.85 at 60."""
    return 0.85 * np.clip((np.asarray(age, float) - 30.0) / 30.0, 0.0, 1.0) ** 1.2


def scale_about(lm, idx, centre, sx, sy):
    """Scale points idx of lm (N,68,2) about centre (N,2) by per-face sx, sy (N,)."""
    d = lm[:, idx] - centre[:, None, :]
    lm[:, idx, 0] = centre[:, None, 0] + d[..., 0] * sx[:, None]
    lm[:, idx, 1] = centre[:, None, 1] + d[..., 1] * sy[:, None]


def identity_modes(identity) -> np.ndarray:
    """Per-identity shape coefficients (N, 10), standard normal, seeded by the identity integer."""
    ids = np.atleast_1d(np.asarray(identity, dtype=np.int64))
    out = np.empty((len(ids), 10))
    for i, k in enumerate(ids):
        out[i] = np.random.default_rng([int(k) & 0x7FFFFFFF, 68]).standard_normal(10)
    return np.clip(out, -2.5, 2.5)


def base_shape(age, sex, identity, modes=None) -> np.ndarray:
    """(N, 68, 2) template-unit shapes for the given ages, sexes ('F'/'M') and identities."""
    age = np.atleast_1d(np.asarray(age, float))
    n = len(age)
    male = (np.atleast_1d(np.asarray(sex)) == "M").astype(float)
    if male.shape[0] != n:
        male = np.broadcast_to(male, (n,)).copy()
    z = identity_modes(identity) if modes is None else modes
    if z.shape[0] != n:
        z = np.broadcast_to(z, (n, z.shape[1])).copy()
    c = child_factor(age)
    old = ageing_factor(age)
    adult = 1.0 - c
    lm = np.broadcast_to(MEAN_SHAPE, (n, 68, 2)).copy()
    ones = np.ones(n)

    # --- identity: smooth, (mostly) symmetric modes -------------------------------------------
    lm[..., 0] *= (1 + 0.045 * z[:, 0])[:, None]  # face width
    eye_line = 0.33
    lower = lm[..., 1] > eye_line
    lm[..., 1] = np.where(lower, eye_line + (lm[..., 1] - eye_line) * (1 + 0.04 * z[:, 1])[:, None], lm[..., 1])
    for eye, sgn in ((EYE_R, -1), (EYE_L, 1)):  # eye spacing + size
        lm[:, eye, 0] += sgn * 0.012 * z[:, 2][:, None]
        ctr = lm[:, eye].mean(1)
        scale_about(lm, eye, ctr, 1 + 0.05 * z[:, 3], 1 + 0.08 * z[:, 3])
    nose = np.r_[NOSE_BRIDGE, NOSE_BASE]
    lm[:, NOSE_BASE, 0] *= (1 + 0.07 * z[:, 4])[:, None]  # nose width
    lm[:, np.r_[29, 30, NOSE_BASE], 1] += 0.015 * z[:, 5][:, None]  # nose length
    mc = lm[:, MOUTH].mean(1)
    scale_about(lm, MOUTH, mc, 1 + 0.06 * z[:, 6], 1 + 0.08 * z[:, 7])  # mouth width / lip fullness
    lm[:, np.r_[BROW_R, BROW_L], 1] += 0.012 * z[:, 8][:, None]  # brow height
    lm[:, 5:12, 0] *= (1 + 0.05 * z[:, 9])[:, None]  # jaw width
    lm[:, 6:11, 1] += 0.012 * z[:, 9][:, None]

    # --- sex (adult-weighted) --------------------------------------------------------------------
    sx = (male - 0.5) * adult  # +0.5 male adult, -0.5 female adult
    lm[:, 3:14, 0] *= (1 + 0.10 * sx)[:, None]  # broader jaw
    lm[:, 6:11, 1] += 0.03 * sx[:, None]  # longer chin
    lm[:, np.r_[BROW_R, BROW_L], 1] += 0.02 * sx[:, None]  # lower brows in men
    lm[:, NOSE_BASE, 0] *= (1 + 0.08 * sx)[:, None]
    for eye in (EYE_R, EYE_L):
        ctr = lm[:, eye].mean(1)
        scale_about(lm, eye, ctr, 1 - 0.06 * sx, 1 - 0.12 * sx)
    mc = lm[:, MOUTH].mean(1)
    scale_about(lm, MOUTH, mc, ones, 1 - 0.15 * sx)

    # --- age: children have bigger eyes, a small short nose, a shorter lower face, a small jaw and
    # round cheeks; the whole face is smaller and sits lower in a larger cranium ------------------
    for eye in (EYE_R, EYE_L):
        ctr = lm[:, eye].mean(1)
        scale_about(lm, eye, ctr, 1 + 0.30 * c, 1 + 0.42 * c)
    lower = lm[..., 1] > eye_line
    lm[..., 1] = np.where(lower, eye_line + (lm[..., 1] - eye_line) * (1 - 0.24 * c)[:, None], lm[..., 1])
    # rounder: widen the cheeks, narrow and blunt the chin
    wid = np.clip((lm[:, JAW, 1] - 0.45) / 0.5, 0, 1)
    chin = np.isin(JAW, [7, 8, 9])
    lm[:, JAW, 0] *= 1 + 0.16 * c[:, None] * wid * np.where(chin, 0.3, 1.0)
    lm[:, 6:11, 1] -= 0.02 * c[:, None]
    # a young child's jaw line is close to a half ellipse (round face, small blunt chin)
    y0 = 0.5 * (lm[:, 0, 1] + lm[:, 16, 1])
    rx, ry = 0.5 * (lm[:, 16, 0] - lm[:, 0, 0]), lm[:, 8, 1] - y0
    th = np.pi * (16 - JAW) / 16.0
    round_jaw = np.stack([rx[:, None] * np.cos(th), y0[:, None] + ry[:, None] * np.sin(th) ** 0.8], -1)
    lm[:, JAW] += (0.55 * c)[:, None, None] * (round_jaw - lm[:, JAW])
    scale_about(lm, nose, lm[:, 27], 1 - 0.16 * c, 1 - 0.16 * c)
    lm[:, [27, 28], 1] += 0.025 * c[:, None]  # lower, flatter bridge in children
    mc = lm[:, MOUTH].mean(1)
    scale_about(lm, MOUTH, mc, 1 - 0.12 * c, ones)
    # the face is smaller relative to the cranium and lower in the head: shrink about the chin
    scale_about(lm, np.arange(68), np.stack([np.zeros(n), np.full(n, CHILD_PIVOT_Y)], 1), 1 - 0.10 * c, 1 - 0.18 * c)

    # --- adults age: brows drop, lips thin, nose lengthens a little, jaw line widens ----------------
    lm[:, np.r_[BROW_R, BROW_L], 1] += 0.016 * old[:, None]
    mc = lm[:, MOUTH].mean(1)
    scale_about(lm, MOUTH, mc, 1 + 0.03 * old, 1 - 0.25 * old)
    lm[:, np.r_[30, NOSE_BASE], 1] += 0.012 * old[:, None]
    lm[:, 4:13, 0] *= (1 + 0.03 * old)[:, None]
    return lm


def to_pixels(points, size, scale=1.0, dx=0.0, dy=0.0, roll=0.0):
    """Template units -> pixels. points (N, K, 2); per-face pose scale, shift (template units), roll (deg)."""
    pts = np.asarray(points, float)
    n = pts.shape[0]
    scale, dx, dy, roll = (np.broadcast_to(np.asarray(v, float), (n,)) for v in (scale, dx, dy, roll))
    y0, y1 = VIEW
    s = size / (y1 - y0) * scale
    th = np.deg2rad(roll)
    ct, st = np.cos(th), np.sin(th)
    pivot_y = 0.45
    x = pts[..., 0]
    y = pts[..., 1] - pivot_y
    xr = ct[:, None] * x - st[:, None] * y
    yr = st[:, None] * x + ct[:, None] * y
    px = size / 2 + (xr + dx[:, None]) * s[:, None]
    py = (pivot_y - y0) * size / (y1 - y0) + (yr + dy[:, None]) * s[:, None]
    return np.stack([px, py], -1)


def pixel_scale(size, scale=1.0):
    y0, y1 = VIEW
    return size / (y1 - y0) * np.asarray(scale, float)
