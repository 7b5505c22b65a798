"""Batched face rasteriser: every primitive is evaluated for the whole batch at once (torch, float32).

Shapes are coverage fields with one-pixel anti-aliasing (clamp(0.5 - signed_distance)): ellipses,
bands between two piecewise-linear curves y = f(x) (eyes, lips, brows), star-shaped polygons via a
polar radius table (lower face), segments (creases) and Gaussian blobs (shading, blush). Each
primitive is evaluated only inside the batch-wide bounding box of the feature it draws.
Pixel convention: pixel (i, j) covers [j, j+1) x [i, i+1); its centre is (j + 0.5, i + 0.5), i.e.
landmark x = normalised x * size as in MediaPipe.
"""

from __future__ import annotations

import numpy as np
import torch

from . import layout as L

F32 = torch.float32


def _t(a):
    x = torch.from_numpy(np.array(a, np.float32))
    return x.view(-1, 1, 1) if x.ndim == 1 else x


def _col(c):
    return torch.as_tensor(np.array(c, np.float32)).view(-1, 1, 1, 3)


def _chaikin(p, iters=2):
    """Smooth open polylines (N, K, 2) keeping their end points."""
    for _ in range(iters):
        a, b = p[:, :-1], p[:, 1:]
        q = 0.75 * a + 0.25 * b
        r = 0.25 * a + 0.75 * b
        mid = np.stack([q, r], 2).reshape(p.shape[0], -1, 2)
        p = np.concatenate([p[:, :1], mid[:, 1:-1], p[:, -1:]], 1)
    return p


class Canvas:
    def __init__(self, n, size, aa=1.0):
        self.n, self.size, self.aa = n, size, aa
        self.img = torch.zeros((n, size, size, 3), dtype=F32)

    def region(self, pts, margin):
        """Batch-wide bounding box of points (N, K, 2) (pixels) grown by margin (pixels)."""
        pts = np.asarray(pts).reshape(-1, 2)
        x0 = int(np.clip(np.floor(pts[:, 0].min() - margin), 0, self.size))
        x1 = int(np.clip(np.ceil(pts[:, 0].max() + margin), 0, self.size))
        y0 = int(np.clip(np.floor(pts[:, 1].min() - margin), 0, self.size))
        y1 = int(np.clip(np.ceil(pts[:, 1].max() + margin), 0, self.size))
        return Region(self, y0, y1, x0, x1)

    def full(self):
        return Region(self, 0, self.size, 0, self.size)


class Region:
    def __init__(self, canvas, y0, y1, x0, x1):
        self.c, self.y0, self.y1, self.x0, self.x1 = canvas, y0, y1, x0, x1
        self.X = (torch.arange(x0, x1, dtype=F32) + 0.5).view(1, 1, -1)
        self.Y = (torch.arange(y0, y1, dtype=F32) + 0.5).view(1, -1, 1)
        self.empty = x1 <= x0 or y1 <= y0

    @property
    def view(self):
        return self.c.img[:, self.y0:self.y1, self.x0:self.x1]

    def blend(self, cov, colour):
        """Alpha-blend colour ((N,1,1,3) or (N,h,w,3)) with coverage (N,h,w)."""
        if self.empty:
            return
        v = self.view
        v += cov.unsqueeze(-1) * (colour - v)

    def scale(self, factor):
        """Multiply the pixels by a (N,h,w) factor (shading)."""
        if self.empty:
            return
        v = self.view
        v *= factor.unsqueeze(-1)

    # ---- primitives --------------------------------------------------------------------------
    def ellipse(self, cx, cy, rx, ry, soft=1.0):
        aa = self.c.aa * soft
        rx = rx.clamp(min=1e-3)
        ry = ry.clamp(min=1e-3)
        dx = (self.X - cx) / rx
        dy = (self.Y - cy) / ry
        q = torch.sqrt(dx * dx + dy * dy + 1e-12)
        g = torch.sqrt((dx / rx) ** 2 + (dy / ry) ** 2 + 1e-12) / q
        return (0.5 - (q - 1) / (g * aa)).clamp_(0, 1)

    def gauss(self, cx, cy, rx, ry):
        # separable: exp(-dx^2) (N,1,w) times exp(-dy^2) (N,h,1)
        dx = (self.X - cx) / rx
        dy = (self.Y - cy) / ry
        return torch.exp(-dx * dx) * torch.exp(-dy * dy)

    def segment(self, ax, ay, bx, by, width, soft=1.0):
        """Coverage of a thick segment a-b (width in px)."""
        ex, ey = bx - ax, by - ay
        ll = (ex * ex + ey * ey).clamp(min=1e-6)
        px, py = self.X - ax, self.Y - ay
        t = ((px * ex + py * ey) / ll).clamp(0, 1)
        dx, dy = px - t * ex, py - t * ey
        d = torch.sqrt(dx * dx + dy * dy + 1e-12)
        return (0.5 - (d - width / 2) / (self.c.aa * soft)).clamp_(0, 1)

    def _curve(self, k):
        """Evaluate piecewise-linear y = f(x) curves k (N, K, 2) at the region's columns."""
        kx = torch.as_tensor(np.ascontiguousarray(k[..., 0], np.float32))
        ky = torch.as_tensor(np.ascontiguousarray(k[..., 1], np.float32))
        kx, order = torch.sort(kx, 1)
        ky = torch.gather(ky, 1, order)
        n, kk = kx.shape
        X = self.X.view(1, -1).expand(n, -1).contiguous()
        idx = torch.searchsorted(kx, X).clamp_(1, kk - 1)
        x0, x1 = torch.gather(kx, 1, idx - 1), torch.gather(kx, 1, idx)
        y0, y1 = torch.gather(ky, 1, idx - 1), torch.gather(ky, 1, idx)
        dxs = (x1 - x0).clamp(min=1e-4)
        t = ((X - x0) / dxs).clamp(0, 1)
        f = y0 + t * (y1 - y0)
        slope = (y1 - y0) / dxs
        norm = torch.sqrt(1 + slope * slope).clamp(max=8.0)
        return f.unsqueeze(1), norm.unsqueeze(1), kx[:, :1, None], kx[:, -1:, None]

    def band(self, top, bottom, soft=1.0):
        """Coverage of the area below curve ``top`` and above curve ``bottom`` (N, K, 2 pixels)."""
        aa = self.c.aa * soft
        ft, nt, a0, a1 = self._curve(top)
        fb, nb, b0, b1 = self._curve(bottom)
        cov = (0.5 + (self.Y - ft) / (nt * aa)).clamp(0, 1) * (0.5 + (fb - self.Y) / (nb * aa)).clamp(0, 1)
        lo, hi = torch.maximum(a0, b0), torch.minimum(a1, b1)
        return cov * (0.5 + (self.X - lo) / aa).clamp(0, 1) * (0.5 + (hi - self.X) / aa).clamp(0, 1)

    def stroke(self, curve, width, soft=1.0):
        """A thick curve y = f(x) of per-face width (N,) px (constant along the curve)."""
        w = np.asarray(width, np.float32).reshape(-1, 1, 1)
        top = curve - np.concatenate([np.zeros_like(w), w / 2], -1)
        bot = curve + np.concatenate([np.zeros_like(w), w / 2], -1)
        return self.band(top, bot, soft)

    def star(self, poly, centre, bins=96, soft=1.0):
        """Coverage of a closed polygon (N, P, 2) that is star-shaped around centre (N, 2)."""
        n = poly.shape[0]
        th = np.linspace(-np.pi, np.pi, bins, endpoint=False)
        d = np.stack([np.cos(th), np.sin(th)], -1)  # (B, 2)
        a = poly - centre[:, None]
        b = np.roll(a, -1, axis=1)
        e = b - a  # (N, P, 2)
        # solve t*d = a + s*e   ->   cross products
        den = d[None, :, None, 0] * e[:, None, :, 1] - d[None, :, None, 1] * e[:, None, :, 0]
        den = np.where(np.abs(den) < 1e-9, 1e-9, den)
        t = (a[:, None, :, 0] * e[:, None, :, 1] - a[:, None, :, 1] * e[:, None, :, 0]) / den
        s = (a[:, None, :, 0] * d[None, :, None, 1] - a[:, None, :, 1] * d[None, :, None, 0]) / den
        ok = (s >= -1e-6) & (s <= 1 + 1e-6) & (t > 0)
        radius = np.where(ok, t, 0.0).max(-1)  # (N, B)
        radius = np.concatenate([radius, radius[:, :1]], 1)
        R = torch.as_tensor(radius, dtype=F32)
        cx = _t(centre[:, 0])
        cy = _t(centre[:, 1])
        dx, dy = self.X - cx, self.Y - cy
        r = torch.sqrt(dx * dx + dy * dy + 1e-12)
        f = (torch.atan2(dy, dx) + np.pi) * (bins / (2 * np.pi))
        i0 = f.floor().clamp_(0, bins - 1)
        fr = f - i0
        i0 = i0.long().view(n, -1)
        r0 = torch.gather(R, 1, i0).view_as(fr)
        r1 = torch.gather(R, 1, i0 + 1).view_as(fr)
        rad = r0 + fr * (r1 - r0)
        return (0.5 - (r - rad) / (self.c.aa * soft)).clamp_(0, 1)


def _mix(a, b, t):
    t = np.asarray(t, np.float32)[..., None] if np.ndim(t) == 1 else t
    return a + (b - a) * t


def render(p: dict, size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Render a batch. ``p`` holds per-face arrays (see ``cohort.build_params``). Returns
    (uint8 images (N, size, size, 3), landmarks in pixels (N, 68, 2))."""
    lm_t = p["lm"]  # template units, terms applied
    n = lm_t.shape[0]
    pose = dict(scale=p["pose_scale"], dx=p["pose_dx"], dy=p["pose_dy"], roll=p["pose_roll"])

    def px(pts):
        return L.to_pixels(pts, size, **pose)

    sc = L.pixel_scale(size, p["pose_scale"])  # px per template unit, (N,)
    S = _t(sc)
    lm = px(lm_t)
    cv = Canvas(n, size, aa=max(1.0, size / 200.0))
    tex = p["tex"]
    age = np.asarray(p["age"], float)
    child = L.child_factor(age)
    old = L.senior_factor(age)
    male = np.asarray(p["sex"]) == "M"

    skin = np.asarray(p["skin_rgb"], np.float32)
    pal = tex["pallor"][:, None]
    grey = skin.mean(1, keepdims=True)
    mix = 0.45 * skin + 0.55 * grey * np.array([1.03, 1.02, 0.95], np.float32)
    pale = np.clip(mix + 0.3 * (0.97 - mix), 0, 1)
    skin = skin + pal * 0.8 * (pale - skin)
    hair = np.asarray(p["hair_rgb"], np.float32)
    hair = hair + (old * 0.8 * (hair.max(1) < 0.7))[:, None] * (np.array([0.72, 0.72, 0.72], np.float32) - hair)
    skin_c = _col(skin)

    # ---------------- background ----------------------------------------------------------------
    full = cv.full()
    top, bot = _col(p["bg_top"]), _col(p["bg_bottom"])
    tt = (full.Y / size).unsqueeze(-1)
    cv.img[:] = top + (bot - top) * tt
    vign = 1 - 0.25 * ((full.X / size - 0.5) ** 2 + (full.Y / size - 0.5) ** 2)
    full.scale(vign.expand(n, -1, -1))

    # head geometry (template units)
    hs = p["head_scale"]
    jaw_w = 0.5 * (lm_t[:, 16, 0] - lm_t[:, 0, 0])
    h_cy = 0.5 * (lm_t[:, 0, 1] + lm_t[:, 16, 1]) + 0.03
    h_rx = jaw_w * 1.05 * (1 + 0.06 * child) * (0.8 + 0.2 * hs)
    h_top = (L.HEAD_TOP - 0.07 * child)
    h_ry = (h_cy - h_top) * hs
    head_c = px(np.stack([np.zeros(n), h_cy], 1)[:, None])[:, 0]
    HX, HY = _t(head_c[:, 0]), _t(head_c[:, 1])
    HRX, HRY = _t(h_rx * sc), _t(h_ry * sc)
    p["_head_px"] = np.stack([head_c[:, 0], head_c[:, 1], h_rx * sc, h_ry * sc], 1)
    style = np.asarray(p["hair_style"])
    vol = _t(np.asarray(p["hair_volume"], float) * sc)

    # ---------------- long hair behind ----------------------------------------------------------
    longh = (style == 1).astype(np.float32)
    if longh.any():
        cov = full.ellipse(HX, HY + 0.35 * HRY, HRX * 1.35 + vol, HRY * 1.45 + vol)
        cov = cov * (0.5 + (HY + 1.45 * HRY - full.Y)).clamp(0, 1) * _t(longh)
        full.blend(cov, _col(hair * 0.8))

    # ---------------- shoulders and neck ----------------------------------------------------------
    chin = lm[:, 8]
    sh_y = chin[:, 1] + 0.38 * sc
    cov = full.ellipse(_t(chin[:, 0]), _t(sh_y + 0.45 * sc), _t(0.95 * sc), _t(0.55 * sc))
    shirt = _col(p["shirt_rgb"])
    full.blend(cov, shirt * (1.05 - 0.25 * (full.Y / size).unsqueeze(-1)))
    neck_w = _t(jaw_w * sc * (0.52 + 0.1 * male))
    neck_top = _t(lm[:, 4, 1])
    neck = full.ellipse(_t(chin[:, 0]), _t(sh_y + 0.02 * sc), neck_w * 1.25, _t(0.12 * sc))
    box = (0.5 + (neck_w - (full.X - _t(chin[:, 0])).abs())).clamp(0, 1) * (0.5 + (full.Y - neck_top)).clamp(0, 1)
    box = box * (0.5 + (_t(sh_y + 0.05 * sc) - full.Y)).clamp(0, 1)
    cov = torch.maximum(box, neck)
    full.blend(cov, skin_c * 0.78)

    # ---------------- ears --------------------------------------------------------------------------
    for i, sgn in ((1, -1), (15, 1)):
        ex = lm[:, i, 0] + sgn * 0.035 * sc
        ey = lm[:, i, 1] - 0.03 * sc
        r = cv.region(np.stack([ex, ey], 1)[:, None], 0.16 * sc.max() + 2)
        cov = r.ellipse(_t(ex), _t(ey), _t(0.06 * sc), _t(0.12 * sc)) * _t(1 - longh)
        r.blend(cov, skin_c * 0.86)
        inner = r.gauss(_t(ex - sgn * 0.01 * sc), _t(ey), _t(0.025 * sc), _t(0.07 * sc)) * cov
        r.scale(1 - 0.25 * inner)

    # ---------------- face skin (cranium + lower face) ---------------------------------------------
    face_r = cv.region(np.concatenate([lm[:, :17], head_c[:, None] - np.stack([h_rx, h_ry], 1)[:, None] * sc[:, None, None],
                                       head_c[:, None] + np.stack([h_rx, 0 * h_ry], 1)[:, None] * sc[:, None, None]], 1), 3)
    jaw_poly = np.concatenate([lm[:, :17], lm[:, [16]] + np.array([0, -0.12]) * sc[:, None, None],
                               lm[:, [0]] + np.array([0, -0.12]) * sc[:, None, None]], 1)
    centre = lm[:, [0, 16, 8]].mean(1)
    c_jaw = face_r.star(jaw_poly, centre)
    c_head = face_r.ellipse(HX, HY, HRX, HRY) * (0.5 + (HY + 0.1 * HRY - face_r.Y)).clamp(0, 1)
    skin_cov = torch.maximum(c_jaw, c_head)
    # shading: darker towards the rim, light from the upper left, cheek highlights
    fcx, fcy = _t(lm[:, 27:36, 0].mean(1)), _t(0.5 * (lm[:, 29, 1] + lm[:, 8, 1]) * 0.5 + 0.5 * lm[:, 29, 1])
    u = (face_r.X - fcx) / _t(jaw_w * sc)
    v = (face_r.Y - fcy) / _t(0.75 * sc)
    flat = _t(tex["flat"])
    amp = 1 - 0.55 * flat
    shade = 1 - amp * 0.32 * (u * u + 0.35 * v * v - 0.25).clamp(min=0) - 0.05 * u - 0.04 * v
    full_cheek = _t(tex["cheeks"])
    malar = _t(tex["malar"])
    for sgn in (-1, 1):
        cxk = fcx + sgn * _t(0.24 * jaw_w * sc / 0.45)
        g = face_r.gauss(cxk, _t(lm[:, 29, 1]), _t(0.09 * sc), _t(0.06 * sc))
        shade = shade + (0.07 * (1 - malar)) * g * amp
        shade = shade - 0.08 * malar * face_r.gauss(cxk, _t(lm[:, 29, 1] - 0.05 * sc), _t(0.07 * sc), _t(0.035 * sc))
        g2 = face_r.gauss(cxk - sgn * _t(0.01 * sc), _t(lm[:, 30, 1] + 0.06 * sc), _t(0.1 * sc), _t(0.09 * sc))
        shade = shade + 0.08 * full_cheek * g2
    # under-chin / jaw-line darkening for older faces
    shade = shade - _t(0.06 * old) * face_r.gauss(fcx, _t(lm[:, 8, 1]), _t(0.3 * sc), _t(0.05 * sc))
    face_col = skin_c * shade.unsqueeze(-1)
    # erythema: butterfly flush
    ery = _t(tex["erythema"])
    red = torch.zeros_like(shade)
    for sgn in (-1, 1):
        red = red + face_r.gauss(fcx + sgn * _t(0.2 * jaw_w * sc / 0.45), _t(lm[:, 30, 1] - 0.01 * sc), _t(0.11 * sc), _t(0.08 * sc))
    red = red + 0.7 * face_r.gauss(fcx, _t(lm[:, 30, 1] - 0.04 * sc), _t(0.04 * sc), _t(0.1 * sc))
    red = (red * ery * 0.75).clamp(max=0.75).unsqueeze(-1)
    face_col = face_col + red * (_col([0.86, 0.22, 0.22]) * shade.unsqueeze(-1) - face_col)
    # skin nodules: raised brownish bumps
    nod = tex["nodule"]
    if np.any(nod > 0):
        pos = p["nodule_pos"]  # (N, K, 2) template units
        npx = px(pos)
        bump = torch.zeros_like(shade)
        hl = torch.zeros_like(shade)
        rad = (0.012 + 0.02 * nod) * sc
        for k in range(pos.shape[1]):
            rr = _t(rad * (0.7 + 0.6 * ((k * 0.37) % 1)))
            bump = bump + face_r.gauss(_t(npx[:, k, 0]), _t(npx[:, k, 1]), rr, rr)
            hl = hl + face_r.gauss(_t(npx[:, k, 0] - 0.3 * rad), _t(npx[:, k, 1] - 0.3 * rad), rr * 0.45, rr * 0.45)
        bump = (bump * _t(np.minimum(1, 2 * nod))).clamp(max=1)
        hl = (hl * _t(np.minimum(1, 2 * nod))).clamp(max=1)
        face_col = face_col + (bump * 0.8).unsqueeze(-1) * (_col([0.55, 0.33, 0.25]) * skin_c * 1.6 - face_col)
        face_col = face_col + (hl * 0.35).unsqueeze(-1) * (1.0 - face_col)
    face_r.blend(skin_cov, face_col)
    face_mask = skin_cov

    # ---------------- hair (front) ----------------------------------------------------------------
    fringe = np.asarray(p["fringe"], float)
    hair_r = cv.region(np.concatenate([head_c[:, None] - np.stack([h_rx, h_ry], 1)[:, None] * sc[:, None, None] * 1.5,
                                       head_c[:, None] + np.stack([h_rx, 0.2 * h_ry], 1)[:, None] * sc[:, None, None] * 1.5], 1), 3)
    cap = hair_r.ellipse(HX, HY - 0.02 * HRY, HRX * 1.06 + vol, HRY * 1.04 + vol)
    hairline = (L.HAIRLINE + 0.13 * fringe + 0.1 * (1 - hs) - 0.04 * child)
    fh_top = px(np.stack([np.zeros(n), hairline], 1)[:, None])[:, 0, 1]
    f_cy = lm[:, 30, 1]
    fore = hair_r.ellipse(HX, _t(f_cy), HRX * (0.9 - 0.08 * _t(fringe)), _t(f_cy - fh_top))
    side_clip = (0.5 + (HY + _t(np.where(style == 1, 0.25, 0.05)) * HRY - hair_r.Y) / _t(0.03 * sc)).clamp(0, 1)
    hcov = cap * (1 - fore) * side_clip * _t((style != 3).astype(np.float32) * 0.97 + 0.03)
    # buzz cut: a thin dark cap only
    buzz = (style == 3)
    if buzz.any():
        hcov = torch.where(_t(buzz.astype(np.float32)) > 0, cap * (1 - fore) * side_clip * 0.8, hcov)
    hshade = 1 + 0.25 * ((HY - HRY * 0.6 - hair_r.Y) / HRY).clamp(-1, 1) - 0.15 * ((hair_r.X - HX) / HRX)
    strands = 1 + 0.035 * torch.sin((hair_r.X - HX) / (S * 0.012) + 3 * torch.sin((hair_r.Y) / (S * 0.05)))
    hair_r.blend(hcov, _col(hair) * (hshade * strands).unsqueeze(-1))
    # forehead shadow under the hairline
    hair_r.scale(1 - 0.12 * hair_r.gauss(HX, _t(fh_top + 0.03 * sc), HRX * 0.7, _t(0.035 * sc)) * _t((style != 3).astype(np.float32)))

    # ---------------- eyes --------------------------------------------------------------------------
    ew = np.linalg.norm(lm[:, 39] - lm[:, 36], axis=1)
    prop = tex["proptosis"]
    epi = tex["epicanthus"]
    iris_col = _col(p["iris_rgb"])
    for eye, sgn, brow in ((L.EYE_R, -1, L.BROW_R), (L.EYE_L, 1, L.BROW_L)):
        P = lm[:, eye]
        o, i_ = (0, 3) if sgn < 0 else (3, 0)  # outer / inner corner index within the 6
        ctr = P.mean(1)
        r = cv.region(np.concatenate([P, lm[:, brow]], 1), 0.06 * sc.max() + 2)
        # socket shadow
        g = r.gauss(_t(ctr[:, 0]), _t(ctr[:, 1] - 0.012 * sc), _t(ew * 0.85), _t(ew * 0.5))
        r.scale(1 - (0.22 - 0.1 * _t(prop)) * g)
        # lid crease
        crease = _chaikin(P[:, [0, 1, 2, 3]] - np.array([0, 1]) * (0.022 * sc)[:, None, None])
        r.scale(1 - 0.18 * r.stroke(crease, 0.012 * sc, soft=1.5))
        upper = _chaikin(P[:, [0, 1, 2, 3]])
        lower = _chaikin(P[:, [0, 5, 4, 3]])
        eyecov = r.band(upper, lower)
        ecx, ecy = _t(ctr[:, 0]), _t(ctr[:, 1])
        sclera = 1 - 0.25 * ((r.X - ecx) / _t(ew * 0.5)) ** 2
        r.blend(eyecov, _col([0.94, 0.92, 0.9]) * sclera.clamp(0.6, 1).unsqueeze(-1))
        ir = ew * (0.23 + 0.03 * child) * (1 - 0.12 * prop)
        iy = ctr[:, 1] - 0.004 * sc
        ic = r.ellipse(ecx, _t(iy), _t(ir), _t(ir)) * eyecov
        dist = torch.sqrt((r.X - ecx) ** 2 + (r.Y - _t(iy)) ** 2) / _t(ir)
        icol = iris_col * (0.45 + 0.6 * (1 - dist.clamp(0, 1) ** 3)).unsqueeze(-1)
        r.blend(ic, icol)
        pc = r.ellipse(ecx, _t(iy), _t(ir * 0.42), _t(ir * 0.42)) * eyecov
        r.blend(pc, _col(np.zeros((n, 3)) + 0.03))
        hlc = r.ellipse(ecx - _t(ir * 0.3), _t(iy - ir * 0.3), _t(ir * 0.18), _t(ir * 0.18), soft=1.2) * eyecov
        r.blend(hlc * 0.9, _col(np.ones((n, 3))))
        # lashes / upper lid line, faint lower lid
        r.blend(r.stroke(upper, np.maximum(0.013 * sc, 1.0)) * 0.9, _col(np.tile([0.08, 0.06, 0.05], (n, 1))))
        r.blend(r.stroke(lower, np.maximum(0.006 * sc, 0.8)) * 0.35, skin_c * 0.55)
        # epicanthal fold over the inner canthus
        if np.any(epi > 0):
            cx_ = P[:, i_, 0] + sgn * (-0.004) * sc  # toward the midline is -sgn... keep near corner
            cy_ = P[:, i_, 1] - 0.006 * sc
            rx_ = (0.004 + 0.022 * epi) * sc
            ry_ = (0.004 + 0.02 * epi) * sc
            fold = r.ellipse(_t(cx_ - sgn * 0.012 * epi * sc), _t(cy_), _t(rx_), _t(ry_)) * _t(np.minimum(1, 3 * epi))
            r.blend(fold, skin_c * 0.93)
            ring = (r.ellipse(_t(cx_ - sgn * 0.012 * epi * sc), _t(cy_), _t(rx_ + 0.006 * sc), _t(ry_ + 0.004 * sc)) - fold).clamp(0, 1)
            ring = ring * (sgn * (r.X - _t(cx_ - sgn * 0.012 * epi * sc)) > 0).float()
            r.scale(1 - 0.45 * ring * _t(np.minimum(1, 3 * epi)))

    # ---------------- brows -------------------------------------------------------------------------
    brow_col = _col(hair * 0.7)
    thick = (0.022 + 0.008 * male - 0.006 * child) * sc
    syn = tex["synophrys"]
    br = cv.region(lm[:, 17:27], 0.05 * sc.max() + 2)
    for brow in (L.BROW_R, L.BROW_L):
        B = _chaikin(lm[:, brow])
        # thicker at the inner end: draw the curve twice (tapered tail)
        cov = br.stroke(B, thick, soft=1.2)
        if brow[0] == 17:
            inner = B[:, B.shape[1] // 2:]
        else:
            inner = B[:, : B.shape[1] // 2 + 1]
        cov = torch.maximum(cov, br.stroke(inner, thick * 1.45, soft=1.2))
        br.blend(cov * 0.85, brow_col)
    if np.any(syn > 0):
        bridge = np.stack([lm[:, 21], 0.5 * (lm[:, 21] + lm[:, 22]) + np.array([0, 0.004]) * sc[:, None], lm[:, 22]], 1)
        cov = br.stroke(bridge, thick * (0.5 + 0.7 * syn), soft=1.5) * _t(np.minimum(1.0, 1.3 * syn) * 0.85)
        br.blend(cov, brow_col)

    # ---------------- nose -------------------------------------------------------------------------
    nr = cv.region(lm[:, 27:36], 0.08 * sc.max() + 2)
    nw = 0.5 * (lm[:, 35, 0] - lm[:, 31, 0])
    dep = tex["bridge"]
    amp = 1 - 0.5 * tex["flat"]
    # bridge highlight and side shadows
    top_y = lm[:, 27, 1]
    mid = 0.5 * (lm[:, 27] + lm[:, 30])
    hl = nr.gauss(_t(mid[:, 0]), _t(mid[:, 1]), _t(0.018 * sc), _t(0.5 * (lm[:, 30, 1] - top_y) + 1))
    nr.scale(1 + _t(0.1 * (1 - dep) * amp) * hl)
    for sgn in (-1, 1):
        g = nr.segment(_t(lm[:, 27, 0] + sgn * 0.03 * sc), _t(lm[:, 28, 1]), _t(lm[:, 30, 0] + sgn * nw * 0.75),
                       _t(lm[:, 30, 1] + 0.01 * sc), _t(0.02 * sc), soft=3.0)
        nr.scale(1 - _t(0.14 * amp) * g)
    nr.scale(1 - _t(0.25 * dep) * nr.gauss(_t(lm[:, 27, 0]), _t(lm[:, 27, 1]), _t(0.05 * sc), _t(0.03 * sc)))
    # tip + alae
    nr.scale(1 + _t(0.1 * amp) * nr.gauss(_t(lm[:, 30, 0]), _t(lm[:, 30, 1] + 0.005 * sc), _t(0.03 * sc), _t(0.025 * sc)))
    for k, sgn in ((31, -1), (35, 1)):
        g = nr.gauss(_t(lm[:, k, 0] + sgn * 0.005 * sc), _t(lm[:, k, 1] - 0.018 * sc), _t(0.022 * sc), _t(0.03 * sc))
        nr.scale(1 - _t(0.22 * amp) * g)
        ncx = 0.5 * (lm[:, k, 0] + lm[:, 33 - sgn, 0])
        ncy = 0.5 * (lm[:, k, 1] + lm[:, 33 - sgn, 1]) - 0.004 * sc
        cov = nr.ellipse(_t(ncx), _t(ncy), _t(np.maximum(0.017 * sc, 0.7)), _t(np.maximum(0.009 * sc, 0.6)), soft=1.3)
        nr.blend(cov * 0.85, skin_c * 0.3)
    # shadow under the nose
    nr.scale(1 - 0.15 * nr.gauss(_t(lm[:, 33, 0]), _t(lm[:, 33, 1] + 0.015 * sc), _t(0.05 * sc), _t(0.012 * sc)))

    # ---------------- philtrum, nasolabial folds -----------------------------------------------------
    mr = cv.region(np.concatenate([lm[:, 31:36], lm[:, 48:68], lm[:, 5:12]], 1), 0.04 * sc.max() + 2)
    smooth = tex["smooth_philtrum"]
    pa = _t(0.36 * (1 - smooth))
    for a, b in ((32, 50), (34, 52)):
        g = mr.segment(_t(lm[:, a, 0]), _t(lm[:, 33, 1] + 0.01 * sc), _t(lm[:, b, 0]), _t(lm[:, b, 1] - 0.005 * sc),
                       _t(0.008 * sc), soft=1.5)
        mr.scale(1 + 0.5 * pa * g)
    g = mr.gauss(_t(lm[:, 33, 0]), _t(0.5 * (lm[:, 33, 1] + lm[:, 51, 1])), _t(0.012 * sc), _t(0.5 * (lm[:, 51, 1] - lm[:, 33, 1]) + 0.5))
    mr.scale(1 - pa * g)
    fold_a = _t(0.12 + 0.25 * old)
    for k, m in ((31, 48), (35, 54)):
        sgn = -1 if k == 31 else 1
        g = mr.segment(_t(lm[:, k, 0] + sgn * 0.04 * sc), _t(lm[:, k, 1] - 0.01 * sc), _t(lm[:, m, 0] + sgn * 0.03 * sc),
                       _t(lm[:, m, 1] + 0.02 * sc), _t(0.01 * sc), soft=2.5)
        mr.scale(1 - fold_a * g)

    # ---------------- mouth ------------------------------------------------------------------------
    lip = skin + (np.array([0.78, 0.36, 0.38], np.float32) - skin) * (0.5 - 0.25 * pal)
    lip_c = _col(lip)
    up_out = _chaikin(lm[:, [48, 49, 50, 51, 52, 53, 54]], 1)
    up_in = _chaikin(lm[:, [48, 60, 61, 62, 63, 64, 54]], 1)
    lo_in = _chaikin(lm[:, [48, 60, 67, 66, 65, 64, 54]], 1)
    lo_out = _chaikin(lm[:, [48, 59, 58, 57, 56, 55, 54]], 1)
    mcx = _t(lm[:, [48, 54], 0].mean(1))
    mw = lm[:, 54, 0] - lm[:, 48, 0]
    ucov = mr.band(up_out, up_in)
    mr.blend(ucov, lip_c * 0.85)
    lcov = mr.band(lo_in, lo_out)
    lsh = 1 + 0.18 * mr.gauss(mcx, _t(lm[:, 57, 1] - 0.35 * (lm[:, 57, 1] - lm[:, 66, 1])), _t(mw * 0.25), _t(0.012 * sc))
    mr.blend(lcov, lip_c * lsh.unsqueeze(-1))
    inner = mr.band(up_in, lo_in)
    mr.blend(inner, _col(np.tile([0.28, 0.07, 0.08], (n, 1))))
    tongue_c = _col(np.tile([0.86, 0.42, 0.45], (n, 1)))
    mac, pro = tex["macroglossia"], tex["protrude"]
    if np.any(mac > 0) or np.any(pro > 0):
        gap_c = 0.5 * (lm[:, 62] + lm[:, 66])
        gap_h = np.maximum(lm[:, 66, 1] - lm[:, 62, 1], 0.5)
        t_ry = gap_h * 0.5 + 0.02 * pro * sc
        t_cy = gap_c[:, 1] + 0.12 * gap_h + 0.03 * pro * sc
        t_rx = mw * (0.25 + 0.17 * np.maximum(mac, pro))
        tc = mr.ellipse(_t(gap_c[:, 0]), _t(t_cy), _t(t_rx), _t(t_ry))
        inside = tc * inner
        outside = tc * (0.5 + (mr.Y - _t(lm[:, 66, 1])) / 1.0).clamp(0, 1) * _t((pro > 0).astype(np.float32))
        cov = torch.maximum(inside * _t(np.minimum(1, 3 * np.maximum(mac, pro))), outside)
        tshade = 1 - 0.25 * ((mr.Y - _t(t_cy)) / _t(t_ry)).clamp(-1, 1) ** 2
        mr.blend(cov, tongue_c * tshade.unsqueeze(-1))
        mr.scale(1 - 0.3 * mr.segment(_t(gap_c[:, 0]), _t(t_cy - t_ry * 0.5), _t(gap_c[:, 0]), _t(t_cy + t_ry * 0.6),
                                      _t(0.004 * sc), soft=1.5) * cov)
    mline = _chaikin(0.5 * (lm[:, [48, 60, 61, 62, 63, 64, 54]] + lm[:, [48, 60, 67, 66, 65, 64, 54]]), 1)
    mr.blend(mr.stroke(mline, np.maximum(0.007 * sc, 0.9)) * 0.8, _col(np.tile([0.2, 0.06, 0.06], (n, 1))))
    # shadow under the lower lip
    mr.scale(1 - 0.12 * mr.gauss(mcx, _t(lm[:, 57, 1] + 0.025 * sc), _t(mw * 0.3), _t(0.015 * sc)))

    img = (cv.img.clamp_(0, 1) * 255.0 + 0.5).to(torch.uint8).numpy()
    return img, lm.astype(np.float32)
