"""Adapters for each image source, all returning a FaceDataset."""

from __future__ import annotations

import difflib
import re
from pathlib import Path

import numpy as np
import pandas as pd

from ..hpo import disease_ids
from .base import UNAFFECTED, FaceDataset, layout_error, list_images, load_photos, read_rgb, require_root

CELEBA_LAYOUT = """\
celeba/
├── img_align_celeba/000001.jpg ...
├── list_attr_celeba.txt       (line 1: count; line 2: 40 attribute names; then 'file  1 -1 ...')
└── list_eval_partition.txt    ('file 0|1|2' = train / valid / test)"""
DISEASE_FACES_LAYOUT = """\
disease_faces/
├── beta-thalassemia/*.jpg
├── hyperthyroidism/*.jpg
├── down/*.jpg
├── leprosy/*.jpg
└── normal/*.jpg"""
GMDB_LAYOUT = """\
gmdb/
├── images/...
└── metadata.csv               (columns: image, disease_id, age, sex)"""

# Disease-specific faces (Bo Jin, 2020) class folders -> disease ids used by the cohort.
DISEASE_FACES_CLASSES = {
    "betathalassemia": "ORPHA:231214", "thalassemia": "ORPHA:231214",
    "hyperthyroidism": "ORPHA:525731", "graves": "ORPHA:525731",
    "down": "OMIM:190685", "downsyndrome": "OMIM:190685",
    "leprosy": "ORPHA:548",
    "normal": UNAFFECTED, "healthy": UNAFFECTED,
}
SPLITS = {"train": 0, "valid": 1, "test": 2}


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def cohort_dataset(cohort) -> FaceDataset:
    """The synthetic cohort as a FaceDataset (landmarks are the renderer's exact points)."""
    table = cohort.table.copy()
    table["source"] = [f"cohort:{i}" for i in range(len(table))]
    ds = FaceDataset(cohort.images, cohort.landmarks, table)
    ds.name = "cohort"
    return ds


def celeba(root, split: str = "train", size: int = 64, limit: int | None = None, align: bool = True,
           backend: str = "mediapipe", progress: bool = True) -> FaceDataset:
    """CelebA aligned images as healthy negatives (disease UNAFFECTED, sex from 'Male', age unknown)."""
    root = require_root("CelebA", root, CELEBA_LAYOUT)
    img_dir, attr, part = root / "img_align_celeba", root / "list_attr_celeba.txt", root / "list_eval_partition.txt"
    missing = [p.name for p in (img_dir, attr, part) if not p.exists()]
    if missing:
        raise layout_error("CelebA", root, f"missing {', '.join(missing)}", CELEBA_LAYOUT)
    if split not in (*SPLITS, "all"):
        raise ValueError(f"split must be one of {', '.join([*SPLITS, 'all'])}, got {split!r}")
    try:
        lines = attr.read_text().splitlines()
        names = lines[1].split()
        rows = [ln.split() for ln in lines[2:] if ln.strip()]
        attrs = pd.DataFrame([r[1:] for r in rows], index=[r[0] for r in rows], columns=names).astype(int)
        parts = pd.read_csv(part, sep=r"\s+", header=None, names=["file", "partition"], index_col=0)
    except (IndexError, ValueError) as exc:
        raise layout_error("CelebA", root, f"list files are garbled ({exc})", CELEBA_LAYOUT) from None
    files = parts.index if split == "all" else parts.index[parts["partition"] == SPLITS[split]]
    files = [f for f in files if f in attrs.index]
    if limit:
        files = files[:limit]
    records = [{"path": img_dir / f, "disease_id": UNAFFECTED, "age": np.nan,
                "sex": "M" if attrs.at[f, "Male"] == 1 else "F",
                "young": int(attrs.at[f, "Young"] == 1) if "Young" in attrs else np.nan,
                "partition": int(parts.at[f, "partition"])} for f in files]
    return load_photos("CelebA", records, size=size, align=align, backend=backend, progress=progress)


def disease_faces(root, size: int = 64, class_map: dict | None = None, align: bool = True,
                  backend: str = "mediapipe", limit: int | None = None, progress: bool = True) -> FaceDataset:
    """The Disease-specific-faces layout: one folder per class."""
    root = require_root("Disease-specific faces", root, DISEASE_FACES_LAYOUT)
    mapping = {**DISEASE_FACES_CLASSES, **{_key(k): v for k, v in (class_map or {}).items()}}
    folders = sorted(p for p in root.iterdir() if p.is_dir())
    if not folders:
        raise layout_error("Disease-specific faces", root, "no class folders", DISEASE_FACES_LAYOUT)
    unknown = [f.name for f in folders if _key(f.name) not in mapping]
    if unknown:
        raise ValueError(f"Disease-specific faces: unknown class folder(s) {unknown}; known classes: "
                         f"{', '.join(sorted(mapping))} (extend with class_map={{'folder': 'ORPHA:...'}}).")
    records = []
    for folder in folders:
        for path in list_images(folder)[:limit]:
            records.append({"path": path, "disease_id": mapping[_key(folder.name)], "class_name": folder.name,
                            "age": np.nan, "sex": None})
    if not records:
        raise layout_error("Disease-specific faces", root, "class folders hold no images", DISEASE_FACES_LAYOUT)
    return load_photos("Disease-specific faces", records, size=size, align=align, backend=backend, progress=progress)


def _check_disease_ids(ids, extra=(UNAFFECTED,)) -> None:
    known = disease_ids() | set(extra)
    bad = sorted(set(ids) - known)
    if bad:
        hints = {b: difflib.get_close_matches(b, list(known), n=3, cutoff=0.6) for b in bad[:5]}
        raise ValueError(f"Unknown disease id(s) {bad[:10]}{' ...' if len(bad) > 10 else ''}: not among the "
                         f"{len(known)} ids in the HPO annotations (+ UNAFFECTED). Close matches: {hints}")


def gmdb(root, csv: str = "metadata.csv", size: int = 64, align: bool = True, backend: str = "mediapipe",
         progress: bool = True) -> FaceDataset:
    """A GMDB-like folder: images/ plus a CSV (image, disease_id, age, sex)."""
    root = require_root("GMDB-like folder", root, GMDB_LAYOUT)
    meta = root / csv
    if not meta.is_file():
        raise layout_error("GMDB-like folder", root, f"missing {csv}", GMDB_LAYOUT)
    try:
        table = pd.read_csv(meta, dtype={"disease_id": str, "sex": str})
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise layout_error("GMDB-like folder", root, f"{csv} is not a readable CSV ({exc})", GMDB_LAYOUT) from None
    missing = [c for c in ("image", "disease_id", "age", "sex") if c not in table.columns]
    if missing:
        raise layout_error("GMDB-like folder", root, f"{csv} lacks column(s) {', '.join(missing)}", GMDB_LAYOUT)
    _check_disease_ids(table["disease_id"].astype(str).str.strip())
    base = root / "images" if (root / "images").is_dir() else root
    records = [{"path": base / str(r.image), "disease_id": str(r.disease_id).strip(),
                "age": pd.to_numeric(r.age, errors="coerce"),
                "sex": str(r.sex).upper()[:1] if pd.notna(r.sex) else None} for r in table.itertuples()]
    return load_photos("GMDB-like folder", records, size=size, align=align, backend=backend, progress=progress)


def packaged(size: int = 64, align: bool = True, backend: str = "mediapipe", progress: bool = False) -> FaceDataset:
    """Public portraits that ship inside installed packages (no patients): skimage's astronaut
    (Eileen Collins) and matplotlib's Grace Hopper; insightface's sample images when installed."""
    from matplotlib import cbook
    from skimage import data

    records = [{"image": data.astronaut(), "source": "skimage:astronaut", "disease_id": UNAFFECTED,
                "age": np.nan, "sex": "F"},
               {"image": read_rgb(Path(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))),
                "source": "matplotlib:grace_hopper", "disease_id": UNAFFECTED, "age": np.nan, "sex": "F"}]
    try:
        import insightface

        folder = Path(insightface.__file__).parent / "data" / "images"
        records += [{"path": p, "source": f"insightface:{p.name}", "disease_id": UNAFFECTED, "age": np.nan, "sex": None}
                    for p in list_images(folder)] if folder.is_dir() else []
    except ImportError:
        pass
    return load_photos("packaged photos", records, size=size, align=align, backend=backend, progress=progress)
