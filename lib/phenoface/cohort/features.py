"""Layers of the inner face for :mod:`.render`: eyes, brows, nose, philtrum, folds and mouth. Each
takes the canvas and the batch's ``render.Face`` context and draws every face of the batch at once."""

from __future__ import annotations

import numpy as np
import torch

from . import layout as L
from .raster import Canvas, Region, bt, chaikin, rgb

LASH = (0.08, 0.06, 0.05)


# ---- eyes and brows -------------------------------------------------------------------------------
def _eye(cv: Canvas, f, eye, sgn, brow, ew):
    lm, sc, n, tex, c = f.lm, f.sc, f.n, f.tex, f.child
    prop, epi = tex["proptosis"], tex["epicanthus"]
    P = lm[:, eye]
    i_ = 3 if sgn < 0 else 0  # inner corner index within the 6
    ctr = P.mean(1)
    r = cv.region(np.concatenate([P, lm[:, brow]], 1), 0.06 * sc.max() + 2)
    ecx, ecy = bt(ctr[:, 0]), bt(ctr[:, 1])
    # socket shadow (deeper with age), lid crease (faint in young children), under-eye bag (ageing)
    g = r.gauss(ecx, bt(ctr[:, 1] - 0.012 * sc), bt(ew * 0.85), bt(ew * 0.5))
    r.scale(1 - (0.22 - 0.1 * bt(prop) - 0.06 * bt(c) + 0.06 * bt(f.aged)) * g)
    crease = chaikin(P[:, [0, 1, 2, 3]] - np.array([0, 1]) * (0.022 * sc)[:, None, None])
    r.scale(1 - bt(0.18 * (1 - 0.5 * c)) * r.stroke(crease, 0.012 * sc, soft=1.5))
    bag = chaikin(P[:, [0, 5, 4, 3]] + np.array([0, 1]) * ((0.02 + 0.012 * f.aged) * sc)[:, None, None])
    r.scale(1 - bt(0.3 * f.aged ** 1.3) * r.stroke(bag, np.maximum(0.012 * sc, 0.8), soft=2.0))
    upper = chaikin(P[:, [0, 1, 2, 3]])
    lower = chaikin(P[:, [0, 5, 4, 3]])
    eyecov = r.band(upper, lower)
    sclera = 1 - 0.25 * ((r.X - ecx) / bt(ew * 0.5)) ** 2
    r.blend(eyecov, rgb([0.94, 0.92, 0.9]) * sclera.clamp(0.6, 1).unsqueeze(-1))
    # iris: relatively larger in children (the eye has nearly its adult size at 2 years)
    ir = ew * (0.23 + 0.06 * c) * (1 - 0.12 * prop)
    iy = ctr[:, 1] - 0.004 * sc
    ic = r.ellipse(ecx, bt(iy), bt(ir), bt(ir)) * eyecov
    dist = torch.sqrt((r.X - ecx) ** 2 + (r.Y - bt(iy)) ** 2) / bt(ir)
    r.blend(ic, rgb(f.p["iris_rgb"]) * (0.45 + 0.6 * (1 - dist.clamp(0, 1) ** 3)).unsqueeze(-1))
    r.blend(r.ellipse(ecx, bt(iy), bt(ir * 0.42), bt(ir * 0.42)) * eyecov, rgb(np.zeros((n, 3)) + 0.03))
    hlc = r.ellipse(ecx - bt(ir * 0.3), bt(iy - ir * 0.3), bt(ir * (0.18 + 0.06 * c)), bt(ir * (0.18 + 0.06 * c)), soft=1.2)
    r.blend(hlc * eyecov * 0.9, rgb(np.ones((n, 3))))
    # lashes / upper lid line, faint lower lid
    r.blend(r.stroke(upper, np.maximum(0.013 * sc, 1.0)) * 0.9, rgb(np.tile(LASH, (n, 1))))
    r.blend(r.stroke(lower, np.maximum(0.006 * sc, 0.8)) * 0.35, f.skin_c * 0.55)
    if np.any(epi > 0):  # epicanthal fold over the inner canthus
        cx_ = P[:, i_, 0] + sgn * (-0.004) * sc - sgn * 0.016 * epi * sc
        cy_ = P[:, i_, 1] - 0.006 * sc
        rx_ = (0.004 + 0.03 * epi) * sc
        ry_ = (0.004 + 0.024 * epi) * sc
        w = bt(np.minimum(1, 3 * epi))
        fold = r.ellipse(bt(cx_), bt(cy_), bt(rx_), bt(ry_)) * w
        r.blend(fold, (f.skin_c + 0.08).clamp(max=1))  # a fold catches light: lighter than the skin around
        ring = (r.ellipse(bt(cx_), bt(cy_), bt(rx_ + 0.006 * sc), bt(ry_ + 0.004 * sc)) - fold).clamp(0, 1)
        ring = ring * (sgn * (r.X - bt(cx_)) > 0).float()
        # a fixed dark crease, not a relative one: a relative shade all but vanished on dark skin
        r.blend(ring * w * 0.85, rgb(np.tile([0.12, 0.06, 0.05], (n, 1))))


def eyes(cv: Canvas, f):
    ew = np.linalg.norm(f.lm[:, 39] - f.lm[:, 36], axis=1)
    for eye, sgn, brow in ((L.EYE_R, -1, L.BROW_R), (L.EYE_L, 1, L.BROW_L)):
        _eye(cv, f, eye, sgn, brow, ew)


def brows(cv: Canvas, f):
    """Brows (thin and light in children), tapered tails; synophrys bridges them."""
    lm, sc, c = f.lm, f.sc, f.child
    brow_col = rgb(f.hair * 0.7)
    thick = (0.022 + 0.008 * f.male - 0.008 * c) * sc
    alpha = bt(0.85 * (1 - 0.3 * c))
    syn = f.tex["synophrys"]
    br = cv.region(lm[:, 17:27], 0.05 * sc.max() + 2)
    for brow in (L.BROW_R, L.BROW_L):
        B = chaikin(lm[:, brow])
        inner = B[:, B.shape[1] // 2:] if brow[0] == 17 else B[:, : B.shape[1] // 2 + 1]
        cov = torch.maximum(br.stroke(B, thick, soft=1.2), br.stroke(inner, thick * 1.45, soft=1.2))
        br.blend(cov * alpha, brow_col)
    if np.any(syn > 0):
        bridge = np.stack([lm[:, 21], 0.5 * (lm[:, 21] + lm[:, 22]) + np.array([0, 0.004]) * sc[:, None], lm[:, 22]], 1)
        cov = br.stroke(bridge, thick * (0.5 + 0.7 * syn), soft=1.5) * bt(np.minimum(1.0, 1.3 * syn) * 0.85)
        br.blend(cov, brow_col)


# ---- nose, philtrum, folds ------------------------------------------------------------------------
def nose(cv: Canvas, f):
    """Bridge highlight and side shadows (a depressed bridge loses the highlight and gets a saddle
    shadow at the nasion), tip highlight, alae and nostrils, shadow under the nose."""
    lm, sc, tex = f.lm, f.sc, f.tex
    nr = cv.region(np.concatenate([lm[:, 27:36], lm[:, [39, 42]]], 1), 0.08 * sc.max() + 2)
    nw = 0.5 * (lm[:, 35, 0] - lm[:, 31, 0])
    dep = tex["bridge"]
    amp = 1 - 0.5 * tex["flat"]
    soft = 1 - 0.7 * f.child  # a child's nose is small and soft: weaker contours
    top_y = lm[:, 27, 1]
    mid = 0.5 * (lm[:, 27] + lm[:, 30])
    hl = nr.gauss(bt(mid[:, 0]), bt(mid[:, 1]), bt(0.022 * sc), bt(0.5 * (lm[:, 30, 1] - top_y) + 1))
    nr.scale(1 + bt(0.16 * (1 - dep) * amp * soft) * hl)
    for sgn in (-1, 1):
        g = nr.segment(bt(lm[:, 27, 0] + sgn * 0.03 * sc), bt(lm[:, 28, 1]), bt(lm[:, 30, 0] + sgn * nw * 0.75),
                       bt(lm[:, 30, 1] + 0.01 * sc), bt(0.02 * sc), soft=3.0)
        nr.scale(1 - bt(0.14 * amp * soft) * g)
    # saddle: a broad shadow across the nasion and between the inner canthi
    saddle = nr.gauss(bt(lm[:, 27, 0]), bt(lm[:, 27, 1] + 0.01 * sc), bt(0.075 * sc), bt(0.04 * sc))
    nr.scale(1 - bt(0.42 * dep) * saddle)
    nr.scale(1 + bt(0.1 * amp) * nr.gauss(bt(lm[:, 30, 0]), bt(lm[:, 30, 1] + 0.005 * sc), bt(0.03 * sc), bt(0.025 * sc)))
    for k, sgn in ((31, -1), (35, 1)):
        g = nr.gauss(bt(lm[:, k, 0] + sgn * 0.005 * sc), bt(lm[:, k, 1] - 0.018 * sc), bt(0.022 * sc), bt(0.03 * sc))
        nr.scale(1 - bt(0.22 * amp * soft) * g)
        ncx = 0.5 * (lm[:, k, 0] + lm[:, 33 - sgn, 0])
        ncy = 0.5 * (lm[:, k, 1] + lm[:, 33 - sgn, 1]) - 0.004 * sc
        cov = nr.ellipse(bt(ncx), bt(ncy), bt(np.maximum(0.017 * sc, 0.7)), bt(np.maximum(0.009 * sc, 0.6)), soft=1.3)
        nr.blend(cov * bt(0.85 * (1 - 0.35 * f.child)), f.skin_c * 0.3)  # a child's nostrils show less
    nr.scale(1 - 0.08 * nr.gauss(bt(lm[:, 33, 0]), bt(lm[:, 33, 1] + 0.015 * sc), bt(0.05 * sc), bt(0.012 * sc)))


def _mouth_region(cv: Canvas, f):
    lm = f.lm
    return cv.region(np.concatenate([lm[:, 31:36], lm[:, 48:68], lm[:, 5:12]], 1), 0.04 * f.sc.max() + 2)


def philtrum(cv: Canvas, f):
    """Philtral columns (light ridges with a shadow on their outer side), the groove between them and
    the light 'white roll' over the Cupid's bow; a smooth philtrum has none of them."""
    lm, sc = f.lm, f.sc
    mr = _mouth_region(cv, f)
    pa = 1 - f.tex["smooth_philtrum"]
    soft = bt(np.maximum(1.5, 0.025 * sc))  # soft edges at any size (1.5 px at 64 px)
    top = lm[:, 33, 1] + 0.008 * sc
    for a, b, sgn in ((32, 50, -1), (34, 52, 1)):
        ax, bx = lm[:, a, 0] + sgn * 0.004 * sc, lm[:, b, 0]
        ridge = mr.segment(bt(ax), bt(top), bt(bx), bt(lm[:, b, 1] - 0.006 * sc), bt(0.016 * sc), soft=soft)
        mr.scale(1 + bt(0.3 * pa) * ridge)
        edge = mr.segment(bt(ax + sgn * 0.016 * sc), bt(top), bt(bx + sgn * 0.02 * sc), bt(lm[:, b, 1] - 0.004 * sc),
                          bt(0.01 * sc), soft=soft * 1.3)
        mr.scale(1 - bt(0.16 * pa) * edge)
    groove = mr.gauss(bt(lm[:, 33, 0]), bt(0.5 * (lm[:, 33, 1] + lm[:, 51, 1])), bt(0.02 * sc),
                      bt(0.5 * (lm[:, 51, 1] - lm[:, 33, 1]) + 0.5))
    mr.scale(1 - bt(0.5 * pa) * groove)
    # the columella's shadow deepens into the groove
    mr.scale(1 - bt(0.2 * pa) * mr.gauss(bt(lm[:, 33, 0]), bt(lm[:, 33, 1] + 0.02 * sc), bt(0.035 * sc), bt(0.015 * sc)))
    roll = chaikin(lm[:, [48, 49, 50, 51, 52, 53, 54]] - np.array([0, 1]) * (0.01 * sc)[:, None, None], 1)
    mr.scale(1 + bt(0.2 * pa) * mr.stroke(roll, np.maximum(0.012 * sc, 0.9), soft=soft))


def folds(cv: Canvas, f):
    """Nasolabial folds (faint in children, deeper with age) and, later, marionette lines."""
    lm, sc = f.lm, f.sc
    mr = _mouth_region(cv, f)
    fold_a = bt(0.05 + 0.07 * (1 - f.child) + 0.28 * f.aged)
    for k, m, sgn in ((31, 48, -1), (35, 54, 1)):
        g = mr.segment(bt(lm[:, k, 0] + sgn * 0.04 * sc), bt(lm[:, k, 1] - 0.01 * sc), bt(lm[:, m, 0] + sgn * 0.03 * sc),
                       bt(lm[:, m, 1] + 0.02 * sc), bt((0.01 + 0.006 * f.aged) * sc), soft=bt(np.maximum(2.5, 0.03 * sc)))
        mr.scale(1 - fold_a * g)
    mar = np.clip((f.aged - 0.4) / 0.6, 0, 1)
    if np.any(mar > 0):
        for m, j, sgn in ((48, 6, -1), (54, 10, 1)):
            g = mr.segment(bt(lm[:, m, 0] + sgn * 0.01 * sc), bt(lm[:, m, 1] + 0.015 * sc),
                           bt(0.6 * lm[:, m, 0] + 0.4 * lm[:, j, 0]), bt(0.5 * (lm[:, m, 1] + lm[:, j, 1]) + 0.01 * sc),
                           bt(0.01 * sc), soft=2.0)
            mr.scale(1 - bt(0.2 * mar) * g)


# ---- mouth ------------------------------------------------------------------------------------------
def _lip_curves(lm):
    up_out = chaikin(lm[:, [48, 49, 50, 51, 52, 53, 54]], 1)
    up_in = chaikin(lm[:, [48, 60, 61, 62, 63, 64, 54]], 1)
    lo_in = chaikin(lm[:, [48, 60, 67, 66, 65, 64, 54]], 1)
    lo_out = chaikin(lm[:, [48, 59, 58, 57, 56, 55, 54]], 1)
    return up_out, up_in, lo_in, lo_out


def _tongue(mr: Region, f, inner, mw):
    """A large (macroglossia) or protruding tongue in the mouth opening (and over the lower lip)."""
    lm, sc, n = f.lm, f.sc, f.n
    mac, pro = f.tex["macroglossia"], f.tex["protrude"]
    if not (np.any(mac > 0) or np.any(pro > 0)):
        return
    gap_c = 0.5 * (lm[:, 62] + lm[:, 66])
    gap_h = np.maximum(lm[:, 66, 1] - lm[:, 62, 1], 0.5)
    t_ry = gap_h * 0.5 + 0.02 * pro * sc
    t_cy = gap_c[:, 1] + 0.12 * gap_h + 0.03 * pro * sc
    t_rx = mw * (0.25 + 0.17 * np.maximum(mac, pro))
    tc = mr.ellipse(bt(gap_c[:, 0]), bt(t_cy), bt(t_rx), bt(t_ry))
    inside = tc * inner
    outside = tc * (0.5 + (mr.Y - bt(lm[:, 66, 1])) / 1.0).clamp(0, 1) * bt((pro > 0).astype(np.float32))
    cov = torch.maximum(inside * bt(np.minimum(1, 3 * np.maximum(mac, pro))), outside)
    tshade = 1 - 0.25 * ((mr.Y - bt(t_cy)) / bt(t_ry)).clamp(-1, 1) ** 2
    mr.blend(cov, rgb(np.tile([0.86, 0.42, 0.45], (n, 1))) * tshade.unsqueeze(-1))
    mr.scale(1 - 0.3 * mr.segment(bt(gap_c[:, 0]), bt(t_cy - t_ry * 0.5), bt(gap_c[:, 0]), bt(t_cy + t_ry * 0.6),
                                  bt(0.004 * sc), soft=1.5) * cov)


def mouth(cv: Canvas, f):
    """Lips (paler with pallor), the mouth opening, the tongue, the lip line and the shadow below."""
    lm, sc, n = f.lm, f.sc, f.n
    mr = _mouth_region(cv, f)
    lip = f.skin + (np.array([0.78, 0.36, 0.38], np.float32) - f.skin) * (0.5 - 0.25 * f.pal)
    lip_c = rgb(lip)
    up_out, up_in, lo_in, lo_out = _lip_curves(lm)
    mcx = bt(lm[:, [48, 54], 0].mean(1))
    mw = lm[:, 54, 0] - lm[:, 48, 0]
    mr.blend(mr.band(up_out, up_in), lip_c * 0.85)
    lsh = 1 + 0.18 * mr.gauss(mcx, bt(lm[:, 57, 1] - 0.35 * (lm[:, 57, 1] - lm[:, 66, 1])), bt(mw * 0.25), bt(0.012 * sc))
    mr.blend(mr.band(lo_in, lo_out), lip_c * lsh.unsqueeze(-1))
    inner = mr.band(up_in, lo_in)
    mr.blend(inner, rgb(np.tile([0.28, 0.07, 0.08], (n, 1))))
    _tongue(mr, f, inner, mw)
    mline = chaikin(0.5 * (lm[:, [48, 60, 61, 62, 63, 64, 54]] + lm[:, [48, 60, 67, 66, 65, 64, 54]]), 1)
    mr.blend(mr.stroke(mline, np.maximum(0.007 * sc, 0.9)) * 0.8, rgb(np.tile([0.2, 0.06, 0.06], (n, 1))))
    mr.scale(1 - 0.12 * mr.gauss(mcx, bt(lm[:, 57, 1] + 0.025 * sc), bt(mw * 0.3), bt(0.015 * sc)))
