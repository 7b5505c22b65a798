"""Batched rasteriser primitives for the face renderer: every primitive is evaluated for the whole batch at once (torch, float32).

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

F32 = torch.float32


def bt(a):
    """Per-face (N,) values -> a broadcastable (N,1,1) float32 tensor (matrices stay as they are)."""
    x = torch.from_numpy(np.array(a, np.float32))
    return x.view(-1, 1, 1) if x.ndim == 1 else x


def rgb(c):
    """Per-face colours (N,3) (or one colour) -> a (N,1,1,3) tensor."""
    return torch.as_tensor(np.array(c, np.float32)).view(-1, 1, 1, 3)


def chaikin(p, iters=2):
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
        cx = bt(centre[:, 0])
        cy = bt(centre[:, 1])
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
