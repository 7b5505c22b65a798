"""Face-likeness of the synthetic cohort, measured with MediaPipe's face mesh.

``face_likeness`` renders a sample, runs FaceMesh (static images, one face) and reports the share
of faces found and the normalised mean error (NME) between MediaPipe's landmarks mapped to the
68-point layout and the renderer's own landmarks, divided by the outer-eye-corner distance (36-45).
"""

from __future__ import annotations

import numpy as np
from .table import Cohort

# MediaPipe FaceMesh (468/478) index for each dlib-68 point. Jaw, brows, nose, eyes and lips follow
# the published correspondences (PeizhiYan/Mediapipe_2_Dlib_Landmarks, single-index variant; the
# eye corners are the lid-margin corners 33/133/362/263). Jaw points are only approximate: dlib's jaw
# follows the visible contour, MediaPipe's silhouette points sit slightly differently.
MEDIAPIPE_TO_DLIB68 = (
    # jaw 0-16
    127, 234, 93, 132, 58, 136, 150, 176, 152, 400, 379, 365, 288, 361, 323, 454, 356,
    # right brow 17-21, left brow 22-26
    70, 63, 105, 66, 107, 336, 296, 334, 293, 300,
    # nose bridge 27-30, nose base 31-35
    168, 197, 5, 4, 98, 97, 2, 326, 327,
    # right eye 36-41, left eye 42-47
    33, 160, 158, 133, 153, 144, 362, 385, 387, 263, 373, 380,
    # outer lips 48-59
    61, 40, 37, 0, 267, 270, 291, 321, 314, 17, 84, 91,
    # inner lips 60-67
    78, 82, 13, 312, 308, 317, 14, 87,
)
assert len(MEDIAPIPE_TO_DLIB68) == 68


def mediapipe_landmarks(images, min_confidence: float = 0.5):
    """Run FaceMesh on uint8 RGB images (N, H, W, 3). Returns (found (N,) bool, points (N, 68, 2)
    pixel coordinates mapped to dlib order, NaN where not found)."""
    import mediapipe as mp

    images = np.asarray(images)
    n, h, w = images.shape[:3]
    found = np.zeros(n, bool)
    pts = np.full((n, 68, 2), np.nan, np.float32)
    idx = np.asarray(MEDIAPIPE_TO_DLIB68)
    with mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1, refine_landmarks=False,
                                         min_detection_confidence=min_confidence) as mesh:
        for i in range(n):
            res = mesh.process(np.ascontiguousarray(images[i]))
            if not res.multi_face_landmarks:
                continue
            lm = res.multi_face_landmarks[0].landmark
            xy = np.array([(lm[j].x * w, lm[j].y * h) for j in idx], np.float32)
            found[i] = True
            pts[i] = xy
    return found, pts


def nme(pred, truth) -> np.ndarray:
    """Per-face mean point distance / outer interocular distance (36-45); NaN rows stay NaN."""
    pred, truth = np.asarray(pred, float), np.asarray(truth, float)
    iod = np.linalg.norm(truth[:, 36] - truth[:, 45], axis=1)
    return np.linalg.norm(pred - truth, axis=2).mean(1) / iod


def face_likeness(n: int = 64, seed: int = 0, size: int = 256, diseases=None) -> dict:
    """Render n cohort faces at ``size`` px and measure MediaPipe's detection rate and NME."""

    c = Cohort.generate(n=n, diseases=diseases, seed=seed, size=size)
    found, pts = mediapipe_landmarks(c.images)
    errs = nme(pts[found], c.landmarks[found]) if found.any() else np.array([np.nan])
    inner = np.r_[17:68]
    errs_inner = (np.linalg.norm(pts[found][:, inner] - c.landmarks[found][:, inner], axis=2).mean(1)
                  / np.linalg.norm(c.landmarks[found][:, 36] - c.landmarks[found][:, 45], axis=1)) if found.any() else np.array([np.nan])
    by_disease = {}
    for d in c.table["disease_id"].unique():
        m = (c.table["disease_id"] == d).to_numpy()
        by_disease[d] = float(found[m].mean())
    return {"n": int(n), "size": int(size), "seed": int(seed), "found_rate": float(found.mean()),
            "nme": float(np.nanmean(errs)), "nme_median": float(np.nanmedian(errs)),
            "nme_no_jaw": float(np.nanmean(errs_inner)), "found_by_disease": by_disease}
