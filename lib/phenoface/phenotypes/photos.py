"""Real photos and non-faces through the measuring path (notebook 04): landmarks from each real-photo backend,
then the meter; an image without a face gets an empty (NaN) row instead of disappearing from the count.

    >>> table, landmarks = measure_photos(photos, Meter(), n=4)
    >>> bad_input_report(bad_inputs(render, photo, "astronaut"), Meter(), regressor)
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .backends import landmarks_for

PHOTO_BACKENDS = ("mediapipe", "dlib")
BAD_INPUT_BACKENDS = ("mediapipe", "dlib", "regressor")


def measure_photos(photos, meter, n: int, names: dict | None = None, backends=PHOTO_BACKENDS):
    """The first ``n`` photos, each backend: (measurements, one row per photo and backend with columns renamed
    by ``names``; landmarks ``{(i, backend): (68, 2) or None}``)."""
    rows, landmarks = [], {}
    for i in range(n):
        item = photos[i]
        for b in backends:
            found, pts = landmarks_for(item["image"][None], b)
            landmarks[(i, b)] = pts[0] if found[0] else None
            row = meter.measure(pts, item["image"][None]).iloc[0].rename(names or {})
            rows.append(row.rename(f"{item['source']} · {b}"))
    return pd.DataFrame(rows), landmarks


def square(image, size: int = 256) -> np.ndarray:
    """The centred square crop of an image (grey becomes RGB), resized to ``size`` px, uint8."""
    from skimage.transform import resize

    h, w = image.shape[:2]
    s = min(h, w)
    crop = image[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]
    if crop.ndim == 2:
        crop = np.repeat(crop[..., None], 3, axis=2)
    return (resize(crop[..., :3], (size, size), anti_aliasing=True, preserve_range=True)).astype(np.uint8)


def bad_inputs(face, photo, photo_name: str, seed: int = 0, size: int = 256) -> dict:
    """A render and a photo (both with a face) beside four images without one: two skimage pictures, uniform
    noise (drawn with ``seed``) and blank grey; name -> uint8 (size, size, 3)."""
    from skimage import data as skdata

    noise = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    return {"render (a face)": face, "photo: " + photo_name: photo,
            "skimage coffee": square(skdata.coffee(), size), "skimage rocket": square(skdata.rocket(), size),
            "uniform noise": noise, "blank grey": np.full((size, size, 3), 128, np.uint8)}


def bad_input_report(inputs: dict, meter, regressor=None, backends=BAD_INPUT_BACKENDS) -> pd.DataFrame:
    """Per image (rows) and backend: was a face found, and how many terms were measured."""
    batch = np.stack(list(inputs.values()))
    report = pd.DataFrame(index=list(inputs))
    for b in backends:
        found, pts = landmarks_for(batch, b, regressor=regressor)
        report[f"{b}: face found"] = found
        report[f"{b}: measured terms"] = meter.measure(pts, batch).notna().sum(axis=1).to_numpy()
    return report
