"""One interface over every image source: cohort renders, CelebA, Disease-specific faces, GMDB-like
folders and the photos that ship in packages.

A real-photo dataset reads each image, finds a face with a landmark backend and aligns it onto the
cohort's canonical frame. Unreadable images and images without a face are skipped, *counted and
listed* in ``.report`` (never silently dropped); a dataset where nothing survives is an error.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

try:  # a plain sequence works too; subclassing lets torch DataLoader treat it as a map-style dataset
    from torch.utils.data import Dataset as _TorchDataset
except ImportError:  # pragma: no cover
    _TorchDataset = object

from ..labels import UNAFFECTED  # noqa: F401  (re-exported)
from .landmarks import BadImageError, DetectorError, align_face, detect_landmarks

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}


class DatasetLayoutError(ValueError):
    """A dataset root is missing or not laid out as expected (the message shows the layout)."""


def layout_error(name: str, root, problem: str, layout: str) -> DatasetLayoutError:
    return DatasetLayoutError(f"{name}: {problem} (root: {root}).\nExpected layout:\n{layout.rstrip()}\n"
                              "See data/README.md for where to get the data.")


def require_root(name: str, root, layout: str) -> Path:
    if root is None or str(root) == "":
        raise layout_error(name, root, "no root folder given", layout)
    path = Path(os.path.expanduser(str(root)))
    if not path.is_dir():
        raise layout_error(name, path, "the folder does not exist", layout)
    return path


class ImageTooLarge(ValueError):
    """An image larger than Pillow's decompression-bomb limit: skipped like an unreadable file."""


def read_rgb(path: Path) -> np.ndarray:
    """Read an image as uint8 RGB; raises OSError/ValueError for unreadable or truncated files, and
    :class:`ImageTooLarge` (a ValueError) for one past Pillow's decompression-bomb limit."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            im.load()  # forces decoding so truncated files fail here, not later
            if im.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
                # Pillow's convert("RGB") clips these to 0..255, so a 16-bit greyscale photo came out white
                return _grey_to_rgb8(np.asarray(im), im.mode)
            return np.asarray(im.convert("RGB"))
    except Image.DecompressionBombError as err:
        raise ImageTooLarge(f"too large to decode safely ({err})") from None


def _grey_to_rgb8(grey: np.ndarray, mode: str) -> np.ndarray:
    """A 16-bit, 32-bit integer or float greyscale image as uint8 RGB, scaled by its type's full range
    (16-bit: 0..65535; float: 0..1 when it fits, else its own range)."""
    g = grey.astype(np.float64)
    if mode == "F":
        lo, hi = (0.0, 1.0) if g.size and g.min() >= 0 and g.max() <= 1 else (float(np.nanmin(g)), float(np.nanmax(g)))
    else:  # PNG stores 16-bit greyscale; Pillow may hand it over as mode I
        lo, hi = 0.0, 65535.0
    g = np.clip((g - lo) / max(hi - lo, 1e-12), 0, 1)
    return np.repeat(np.round(g * 255).astype(np.uint8)[..., None], 3, axis=-1)


class FaceDataset(_TorchDataset):
    """Aligned faces with metadata. Items are dicts: image (size, size, 3) uint8, disease_id, age,
    sex, landmarks (68, 2) in the aligned image or None, source."""

    name = "faces"

    def __init__(self, images: np.ndarray, landmarks, table: pd.DataFrame, report: dict | None = None):
        self.images = images
        self.landmarks = landmarks
        self.table = table.reset_index(drop=True)
        n = len(self.table)
        self.report = report or {"found": n, "kept": n, "skipped_corrupt": [], "skipped_no_face": []}

    def __len__(self) -> int:
        return len(self.table)

    def __getitem__(self, i: int) -> dict:
        row = self.table.iloc[i]
        lm = None if self.landmarks is None else self.landmarks[i]
        if lm is not None and not np.isfinite(lm).all():
            lm = None
        age = row.get("age", np.nan)
        return {"image": self.images[i], "disease_id": row["disease_id"],
                "age": float(age) if pd.notna(age) else float("nan"),
                "sex": row.get("sex") if pd.notna(row.get("sex")) else None,
                "landmarks": lm, "source": row.get("source", str(i))}

    def summary(self) -> str:
        r = self.report
        parts = [f"{self.name}: {r['found']} images found, {r['kept']} kept"]
        if r["skipped_corrupt"]:
            parts.append(f"{len(r['skipped_corrupt'])} unreadable skipped ({', '.join(map(str, r['skipped_corrupt'][:5]))}"
                         + (", ..." if len(r["skipped_corrupt"]) > 5 else "") + ")")
        if r.get("bad_images"):
            parts.append(f"first bad image: {r['bad_images'][0]}")
        if r["skipped_no_face"]:
            parts.append(f"{len(r['skipped_no_face'])} without a detectable face skipped ("
                         + ", ".join(map(str, r["skipped_no_face"][:5])) + (", ..." if len(r["skipped_no_face"]) > 5 else "") + ")")
        if "disease_id" in self.table and len(self.table):
            counts = self.table["disease_id"].value_counts().to_dict()
            parts.append("per class: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
        return "; ".join(parts)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.summary()}>"


def load_photos(name: str, records: Iterable[dict], size: int = 64, align: bool = True,
                backend: str = "mediapipe", progress: bool = True) -> FaceDataset:
    """Read, detect and align photos described by ``records`` (dicts with 'path' or 'image', plus
    metadata columns). Returns a FaceDataset whose report lists every skipped file."""
    from tqdm.auto import tqdm

    records = list(records)
    images, landmarks, rows = [], [], []
    # "bad_images": why each decoded-but-unusable image (empty, NaN, wrong dtype or shape, or one the
    # detector failed on) was skipped; those images are also counted in "skipped_corrupt"
    report = {"found": len(records), "kept": 0, "skipped_corrupt": [], "skipped_no_face": [], "bad_images": []}
    bar = tqdm(records, desc=f"loading {name}", unit="img", disable=not progress or len(records) < 8)
    for i, rec in enumerate(bar):
        source = str(rec.get("path", rec.get("source", "?")))
        try:
            img = rec["image"] if "image" in rec else read_rgb(Path(rec["path"]))
        except (OSError, ValueError, SyntaxError) as exc:  # PIL raises all three on bad files
            report["skipped_corrupt"].append(source)
            if isinstance(exc, ImageTooLarge):
                report["bad_images"].append(f"{source}: {exc}")
            continue
        try:
            lm = detect_landmarks(img, backend=backend, index=i)
        except (BadImageError, DetectorError) as exc:
            # one bad image among many should not end a long load: skip it like an unreadable file, with the reason
            report["skipped_corrupt"].append(source)
            report["bad_images"].append(f"{source}: {exc}")
            continue
        if lm is None:
            report["skipped_no_face"].append(source)
            continue
        if align:
            img, lm = align_face(img, lm, size=size)
        images.append(img)
        landmarks.append(lm)
        rows.append({k: v for k, v in rec.items() if k not in {"image", "path"}} | {"source": source})
    report["kept"] = len(rows)
    if not rows:
        raise ValueError(f"{name}: no usable face among {len(records)} images: "
                         f"{len(report['skipped_corrupt'])} unreadable, {len(report['skipped_no_face'])} without a face. "
                         f"First skipped: {(report['skipped_corrupt'] + report['skipped_no_face'])[:3]}")
    imgs = np.stack(images) if align else np.array(images, dtype=object)
    ds = FaceDataset(imgs, np.stack(landmarks), pd.DataFrame(rows), report)
    ds.name = name
    return ds


def list_images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
