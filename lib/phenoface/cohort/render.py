"""The face renderer: a batch of faces drawn layer by layer from their 68 landmarks and render parameters.

``render`` builds one :class:`Face` context for the batch (landmarks in pixels, scale, age factors,
colours, cranium) and runs ``LAYERS`` in order, each one facial part or kind of mark: background,
long hair behind, shoulders and neck, ears, face skin (shading, erythema, nodules), hair, forehead
lines, then (from :mod:`.features`) eyes, brows, nose, philtrum, folds, mouth. Every layer draws the whole batch at once with the
coverage primitives of :mod:`.raster`, so rendering stays batched (torch, float32).

Age shows through the layout (:func:`.layout.base_shape`: a child's round face, large eyes, small
nose and short lower face, low in a large cranium; thinner lips and lower brows with age) and here:
children's large irises, faint brows and nose contours, round cheeks, lighter hair, narrow
shoulders; adults' folds, eye bags, forehead lines and grey hair grow with age.
"""

from __future__ import annotations

import numpy as np
import torch

from . import layout as L
from .features import brows, eyes, folds, mouth, nose, philtrum
from .raster import Canvas, Region, bt, rgb

# ==================================================================================================
# Per-batch face context and the layers. ``render`` draws LAYERS in order; each layer is one facial
# part (or one kind of mark) and reads what it needs from the shared ``Face`` context.
# ==================================================================================================
GREY_HAIR = np.array([0.74, 0.73, 0.72], np.float32)


class Face:
    """Everything the layers share for one batch: landmarks in pixels, scale, age factors, colours and
    the head ellipse. Built once per ``render`` call from the parameter dict of ``cohort.build_params``."""

    def __init__(self, p: dict, size: int):
        self.p, self.size = p, size
        self.lm_t = p["lm"]  # template units, terms applied
        self.n = n = self.lm_t.shape[0]
        self.pose = dict(scale=p["pose_scale"], dx=p["pose_dx"], dy=p["pose_dy"], roll=p["pose_roll"])
        self.sc = L.pixel_scale(size, p["pose_scale"])  # px per template unit, (N,)
        self.S = bt(self.sc)
        self.lm = self.px(self.lm_t)
        self.tex = p["tex"]
        age = np.asarray(p["age"], float)
        self.child = L.child_factor(age)  # 1 at 2 years, 0 from 18
        self.aged = L.ageing_factor(age)  # 0 until 18, 1 at 60
        self.grey = L.greying(age)  # share of grey hair
        self.male = np.asarray(p["sex"]) == "M"
        self._colours()
        self._head()

    def px(self, pts):
        return L.to_pixels(pts, self.size, **self.pose)

    def _colours(self):
        p, tex = self.p, self.tex
        skin = np.asarray(p["skin_rgb"], np.float32)
        self.pal = pal = tex["pallor"][:, None]
        grey = skin.mean(1, keepdims=True)
        mix = 0.45 * skin + 0.55 * grey * np.array([1.03, 1.02, 0.95], np.float32)
        pale = np.clip(mix + 0.3 * (0.97 - mix), 0, 1)
        self.skin = skin = skin + pal * 0.8 * (pale - skin)
        self.skin_c = rgb(skin)
        hair = np.asarray(p["hair_rgb"], np.float32)
        # children's hair is a little lighter and finer; grey hair spreads from the thirties on
        hair = hair + (0.22 * self.child)[:, None] * (np.clip(hair * 1.5 + 0.05, 0, 1) - hair)
        self.hair = hair + self.grey[:, None] * (GREY_HAIR - hair)

    def _head(self):
        """Cranium ellipse: wider and taller relative to the face in children (face low in the head)."""
        lm_t, n, sc, c = self.lm_t, self.n, self.sc, self.child
        self.hs = hs = self.p["head_scale"]
        self.jaw_w = jaw_w = 0.5 * (lm_t[:, 16, 0] - lm_t[:, 0, 0])
        h_cy = 0.5 * (lm_t[:, 0, 1] + lm_t[:, 16, 1]) + 0.03
        h_rx = jaw_w * 1.05 * (1 + 0.2 * c) * (0.8 + 0.2 * hs)
        h_ry = (h_cy - (L.HEAD_TOP - 0.02 * c)) * hs
        self.head_c = head_c = self.px(np.stack([np.zeros(n), h_cy], 1)[:, None])[:, 0]
        self.h_rx, self.h_ry = h_rx, h_ry
        self.HX, self.HY = bt(head_c[:, 0]), bt(head_c[:, 1])
        self.HRX, self.HRY = bt(h_rx * sc), bt(h_ry * sc)
        self.head_px = np.stack([head_c[:, 0], head_c[:, 1], h_rx * sc, h_ry * sc], 1)
        self.style = np.asarray(self.p["hair_style"])
        self.longh = (self.style == 1).astype(np.float32)
        self.vol = bt(np.asarray(self.p["hair_volume"], float) * (1 - 0.5 * c) * sc)

    def head_box(self, grow_x=1.0, grow_top=1.0, bottom=0.0):
        """Corner points (N, 2, 2) of the cranium's box, for Canvas.region."""
        wh = np.stack([self.h_rx, self.h_ry], 1)[:, None] * self.sc[:, None, None]
        lo = self.head_c[:, None] - wh * np.array([grow_x, grow_top])
        hi = self.head_c[:, None] + wh * np.array([grow_x, bottom])
        return np.concatenate([lo, hi], 1)


# ---- layers: background and body ----------------------------------------------------------------
def background(cv: Canvas, f: Face):
    full = cv.full()
    top, bot = rgb(f.p["bg_top"]), rgb(f.p["bg_bottom"])
    cv.img[:] = top + (bot - top) * (full.Y / f.size).unsqueeze(-1)
    vign = 1 - 0.25 * ((full.X / f.size - 0.5) ** 2 + (full.Y / f.size - 0.5) ** 2)
    full.scale(vign.expand(f.n, -1, -1))


def hair_back(cv: Canvas, f: Face):
    """Long hair falling behind the head and shoulders."""
    if not f.longh.any():
        return
    full = cv.full()
    HX, HY, HRX, HRY = f.HX, f.HY, f.HRX, f.HRY
    length = bt(1.45 - 0.35 * f.child)  # children's long hair ends higher
    cov = full.ellipse(HX, HY + 0.35 * HRY, HRX * 1.35 + f.vol, HRY * length + f.vol)
    cov = cov * (0.5 + (HY + length * HRY - full.Y)).clamp(0, 1) * bt(f.longh)
    full.blend(cov, rgb(f.hair * 0.8))


def shoulders(cv: Canvas, f: Face):
    """Shirt and neck; children have narrower shoulders and a thinner neck relative to the head."""
    full, lm, sc, c = cv.full(), f.lm, f.sc, f.child
    chin = lm[:, 8]
    sh_y = chin[:, 1] + (0.38 - 0.06 * c) * sc
    cov = full.ellipse(bt(chin[:, 0]), bt(sh_y + 0.45 * sc), bt((0.95 - 0.25 * c) * sc), bt(0.55 * sc))
    full.blend(cov, rgb(f.p["shirt_rgb"]) * (1.05 - 0.25 * (full.Y / f.size).unsqueeze(-1)))
    neck_w = bt(f.jaw_w * sc * (0.52 + 0.1 * f.male * (1 - c) - 0.08 * c))
    neck_top = bt(lm[:, 4, 1])
    neck = full.ellipse(bt(chin[:, 0]), bt(sh_y + 0.02 * sc), neck_w * 1.25, bt(0.12 * sc))
    box = (0.5 + (neck_w - (full.X - bt(chin[:, 0])).abs())).clamp(0, 1) * (0.5 + (full.Y - neck_top)).clamp(0, 1)
    box = box * (0.5 + (bt(sh_y + 0.05 * sc) - full.Y)).clamp(0, 1)
    full.blend(torch.maximum(box, neck), f.skin_c * 0.78)


def ears(cv: Canvas, f: Face):
    lm, sc = f.lm, f.sc
    for i, sgn in ((1, -1), (15, 1)):
        ex = lm[:, i, 0] + sgn * 0.035 * sc
        ey = lm[:, i, 1] - 0.03 * sc
        r = cv.region(np.stack([ex, ey], 1)[:, None], 0.16 * sc.max() + 2)
        cov = r.ellipse(bt(ex), bt(ey), bt(0.06 * sc), bt(0.12 * sc)) * bt(1 - f.longh)
        r.blend(cov, f.skin_c * 0.86)
        inner = r.gauss(bt(ex - sgn * 0.01 * sc), bt(ey), bt(0.025 * sc), bt(0.07 * sc)) * cov
        r.scale(1 - 0.25 * inner)


# ---- face skin: coverage, shading, colour marks -------------------------------------------------
def _skin_coverage(r: Region, f: Face):
    lm, sc = f.lm, f.sc
    jaw_poly = np.concatenate([lm[:, :17], lm[:, [16]] + np.array([0, -0.12]) * sc[:, None, None],
                               lm[:, [0]] + np.array([0, -0.12]) * sc[:, None, None]], 1)
    c_jaw = r.star(jaw_poly, lm[:, [0, 16, 8]].mean(1))
    c_head = r.ellipse(f.HX, f.HY, f.HRX, f.HRY) * (0.5 + (f.HY + 0.1 * f.HRY - r.Y)).clamp(0, 1)
    return torch.maximum(c_jaw, c_head)


def _skin_shading(r: Region, f: Face):
    """Multiplicative shading (N,h,w): rim darkening, light from the upper left, cheekbones
    (malar flattening removes them), round cheeks (full cheeks; children), ageing jaw line."""
    lm, sc, tex = f.lm, f.sc, f.tex
    fcx = bt(lm[:, 27:36, 0].mean(1))
    fcy = bt(0.5 * (lm[:, 29, 1] + lm[:, 8, 1]) * 0.5 + 0.5 * lm[:, 29, 1])
    u = (r.X - fcx) / bt(f.jaw_w * sc)
    v = (r.Y - fcy) / bt(0.75 * sc)
    amp = 1 - 0.55 * bt(tex["flat"])
    shade = 1 - amp * 0.32 * (u * u + 0.35 * v * v - 0.25).clamp(min=0) - 0.05 * u - 0.04 * v
    cheeks = bt(tex["cheeks"] + 0.6 * f.child)
    malar = bt(tex["malar"])
    for sgn in (-1, 1):
        cxk = fcx + sgn * bt(0.24 * f.jaw_w * sc / 0.45)
        g = r.gauss(cxk, bt(lm[:, 29, 1]), bt(0.09 * sc), bt(0.06 * sc))
        shade = shade + (0.07 * (1 - malar)) * g * amp
        shade = shade - 0.08 * malar * r.gauss(cxk, bt(lm[:, 29, 1] - 0.05 * sc), bt(0.07 * sc), bt(0.035 * sc))
        g2 = r.gauss(cxk - sgn * bt(0.01 * sc), bt(lm[:, 30, 1] + 0.06 * sc), bt(0.1 * sc), bt(0.09 * sc))
        shade = shade + 0.08 * cheeks * g2
    shade = shade - bt(0.1 * f.aged) * r.gauss(fcx, bt(lm[:, 8, 1]), bt(0.3 * sc), bt(0.05 * sc))
    return shade, fcx


def _erythema(r: Region, f: Face, fcx, shade, face_col):
    """Butterfly flush over the cheeks and the nose."""
    lm, sc = f.lm, f.sc
    ery = f.tex["erythema"]
    if not np.any(ery > 0):
        return face_col
    red = torch.zeros_like(shade)
    for sgn in (-1, 1):
        red = red + r.gauss(fcx + sgn * bt(0.2 * f.jaw_w * sc / 0.45), bt(lm[:, 30, 1] - 0.01 * sc), bt(0.11 * sc), bt(0.08 * sc))
    red = red + 0.7 * r.gauss(fcx, bt(lm[:, 30, 1] - 0.04 * sc), bt(0.04 * sc), bt(0.1 * sc))
    red = (red * bt(ery) * 0.75).clamp(max=0.75).unsqueeze(-1)
    return face_col + red * (rgb([0.86, 0.22, 0.22]) * shade.unsqueeze(-1) - face_col)


def _nodules(r: Region, f: Face, face_col):
    """Raised bumps at identity-fixed positions, drawn as relief: a brownish shadow below-right and a
    highlight above-left, both fixed shifts in colour, so a nodule of one amount shows the same on every
    skin tone (a tint relative to the skin colour vanished on dark skin and tied the term's scale to tone)."""
    nod = f.tex["nodule"]
    if not np.any(nod > 0):
        return face_col
    pos = f.p["nodule_pos"]  # (N, K, 2) template units
    npx = f.px(pos)
    shadow = torch.zeros(face_col.shape[:-1])
    hl = torch.zeros_like(shadow)
    rad = (0.012 + 0.02 * nod) * f.sc
    for k in range(pos.shape[1]):
        rr = bt(rad * (0.7 + 0.6 * ((k * 0.37) % 1)))
        shadow = shadow + r.gauss(bt(npx[:, k, 0] + 0.25 * rad), bt(npx[:, k, 1] + 0.25 * rad), rr, rr)
        hl = hl + r.gauss(bt(npx[:, k, 0] - 0.3 * rad), bt(npx[:, k, 1] - 0.3 * rad), rr * 0.55, rr * 0.55)
    # linear in the amount (a visible floor for any nodule): the radius grows with it as well
    w = bt(np.where(nod > 0, 0.35 + 0.65 * nod, 0.0))
    shadow, hl = (shadow * w).clamp(max=1), (hl * w).clamp(max=1)
    # absolute, not relative, shifts: the same relief on every skin tone (clipped at black and white)
    face_col = face_col - shadow.unsqueeze(-1) * rgb([0.16, 0.22, 0.24])  # brownish: less red taken
    return (face_col + (0.22 * hl).unsqueeze(-1)).clamp(0, 1)


def face_skin(cv: Canvas, f: Face):
    """Cranium and lower face in skin colour, shaded, with erythema and nodules."""
    lm = f.lm
    r = cv.region(np.concatenate([lm[:, :17], f.head_box(1.0, 1.0, 0.0)], 1), 3)
    cov = _skin_coverage(r, f)
    shade, fcx = _skin_shading(r, f)
    face_col = f.skin_c * shade.unsqueeze(-1)
    face_col = _erythema(r, f, fcx, shade, face_col)
    face_col = _nodules(r, f, face_col)
    r.blend(cov, face_col)


def hair_front(cv: Canvas, f: Face):
    """Hair cap over the cranium, cut out by the forehead; buzz cut = a thin cap."""
    n, sc, lm, style = f.n, f.sc, f.lm, f.style
    HX, HY, HRX, HRY, vol = f.HX, f.HY, f.HRX, f.HRY, f.vol
    fringe = np.asarray(f.p["fringe"], float)
    r = cv.region(f.head_box(1.5, 1.5, 0.3), 3)
    cap = r.ellipse(HX, HY - 0.02 * HRY, HRX * 1.06 + vol, HRY * 1.04 + vol)
    hairline = L.HAIRLINE + 0.13 * fringe + 0.1 * (1 - f.hs) - 0.02 * f.child
    fh_top = f.px(np.stack([np.zeros(n), hairline], 1)[:, None])[:, 0, 1]
    f_cy = lm[:, 30, 1]
    fore = r.ellipse(HX, bt(f_cy), HRX * (0.9 - 0.08 * bt(fringe)), bt(f_cy - fh_top))
    side_clip = (0.5 + (HY + bt(np.where(style == 1, 0.25, 0.05)) * HRY - r.Y) / bt(0.03 * sc)).clamp(0, 1)
    buzz = bt((style == 3).astype(np.float32))
    hcov = cap * (1 - fore) * side_clip * (0.97 - 0.17 * buzz)
    hshade = 1 + 0.25 * ((HY - HRY * 0.6 - r.Y) / HRY).clamp(-1, 1) - 0.15 * ((r.X - HX) / HRX)
    strands = 1 + 0.035 * torch.sin((r.X - HX) / (f.S * 0.012) + 3 * torch.sin(r.Y / (f.S * 0.05)))
    r.blend(hcov, rgb(f.hair) * (hshade * strands).unsqueeze(-1))
    # forehead shadow under the hairline
    r.scale(1 - 0.12 * r.gauss(HX, bt(fh_top + 0.03 * sc), HRX * 0.7, bt(0.035 * sc)) * (1 - buzz))
    f.fh_top = fh_top


def forehead_lines(cv: Canvas, f: Face):
    """Horizontal forehead creases from the late twenties on, deeper with age."""
    w = np.clip((np.asarray(f.p["age"], float) - 26.0) / 34.0, 0, 1)
    if not np.any(w > 0):
        return
    lm, sc = f.lm, f.sc
    brow_y = lm[:, 17:27, 1].min(1)
    r = cv.region(np.concatenate([lm[:, 17:27], lm[:, 17:27] - (0.16 * sc)[:, None, None] * [0, 1]], 1), 2)
    xs = np.linspace(-1, 1, 7)
    for k, dy in enumerate((0.07, 0.12)):
        half = 0.6 * (lm[:, 24, 0] - lm[:, 19, 0]) * (1 - 0.15 * k)
        cx = 0.5 * (lm[:, 19, 0] + lm[:, 24, 0])
        y = brow_y - dy * sc
        curve = np.stack([cx[:, None] + half[:, None] * xs, y[:, None] + 0.012 * sc[:, None] * xs ** 2], -1)
        r.scale(1 - bt(0.22 * w) * r.stroke(curve, np.maximum(0.008 * sc, 0.6), soft=1.6))


LAYERS = (background, hair_back, shoulders, ears, face_skin, hair_front, forehead_lines, eyes, brows, nose,
          philtrum, folds, mouth)


def render(p: dict, size: int = 64, layers=LAYERS) -> tuple[np.ndarray, np.ndarray]:
    """Render a batch. ``p`` holds per-face arrays (see ``cohort.build_params``). Returns
    (uint8 images (N, size, size, 3), landmarks in pixels (N, 68, 2)); sets ``p["_head_px"]``
    (cranium ellipse cx, cy, rx, ry in pixels)."""
    f = Face(p, size)
    cv = Canvas(f.n, size, aa=max(1.0, size / 200.0))
    for layer in layers:
        layer(cv, f)
    p["_head_px"] = f.head_px
    img = (cv.img.clamp_(0, 1) * 255.0 + 0.5).to(torch.uint8).numpy()
    return img, f.lm.astype(np.float32)
