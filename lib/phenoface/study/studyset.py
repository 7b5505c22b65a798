"""Study sets: the faces a reader study shows, with their truth kept in a manifest the page never sees.

A set is a folder ``<DATA_DIR>/study/`` holding ``images/<item id>.png`` and ``manifest.json``. Each item has
an opaque id (a hash, so neither its source nor its disease can be read from it or guessed from a
neighbour's), its source (``real``, ``generated``, ``zero_shot``, ``baseline_class``, ``baseline_prompt``,
``edit``), whether it is real, its disease, severity, age and sex. ``order`` is the seeded random order every
rater sees; items are balanced by disease within each source (the same number per disease).

Nothing here draws a face: the set is assembled from what notebooks 00, 01, 06 wrote.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..config import atomic_path, write_json

MANIFEST = "manifest.json"
IMAGES = "images"
FORMAT = 1
REAL_SOURCES = ("real",)
# The sources a set may hold, in the order tables list them.
SOURCES = ("real", "generated", "zero_shot", "baseline_class", "baseline_prompt", "edit")
ITEM_ID = r"[0-9a-f]{12}"


@dataclass
class StudySet:
    """A loaded set: ``items`` (the truth, one row per item, indexed by id), the rating ``order``, the disease
    list the page offers (id -> name, ``UNAFFECTED`` included) and whether severity is asked."""

    folder: Path
    set_id: str
    items: pd.DataFrame
    order: list[str]
    diseases: dict[str, str]
    ask_severity: bool
    meta: dict[str, Any]

    def image_path(self, item_id: str) -> Path:
        """The image file of a known item (the only paths the server ever opens)."""
        if item_id not in self.items.index:
            raise KeyError(item_id)
        return self.folder / IMAGES / f"{item_id}.png"

    def images(self, ids=None) -> np.ndarray:
        from PIL import Image

        ids = list(self.items.index if ids is None else ids)
        return np.stack([np.asarray(Image.open(self.image_path(i)).convert("RGB")) for i in ids])

    def __len__(self) -> int:
        return len(self.items)


def _png_bytes(image: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.asarray(image, np.uint8)).save(buf, format="PNG", optimize=False)
    return buf.getvalue()


def _balanced(table: pd.DataFrame, per_disease: int, rng: np.random.Generator) -> np.ndarray:
    """Row positions: the same number of faces for every disease this source holds (at most ``per_disease``,
    at most what its rarest disease has), drawn at random."""
    groups = {d: np.flatnonzero((table["disease_id"] == d).to_numpy()) for d in table["disease_id"].unique()}
    if not groups:
        return np.array([], int)
    k = min(per_disease, min(len(g) for g in groups.values()))
    return np.sort(np.concatenate([rng.choice(g, k, replace=False) for g in groups.values()]))


def collect_sources(data_dir, include=SOURCES) -> dict[str, tuple[np.ndarray, pd.DataFrame]]:
    """Faces with their truth (disease_id, severity, age, sex) from what earlier steps saved; a source whose
    step did not run is left out (said in the returned dict by its absence)."""
    # cohort and sampling load torch: only when a set is built, never when the rating server starts
    from ..cohort import UNAFFECTED, load_split
    from ..sampling.generated_cohort import load_arrays

    out: dict[str, tuple[np.ndarray, pd.DataFrame]] = {}
    if "real" in include:
        test = load_split(data_dir, "test")
        out["real"] = (test.images, test.table[["disease_id", "severity", "age", "sex"]].reset_index(drop=True))

    def arrays(name):
        try:
            return load_arrays(data_dir, name)
        except FileNotFoundError:
            return None

    faces = arrays("faces")
    if faces is not None:
        images, table = faces
        mode = table["mode"].astype(str)
        for source, keep in (("generated", mode == "conditioned"), ("zero_shot", mode.str.startswith("zero-shot"))):
            if source in include and keep.any():
                rows = np.flatnonzero(keep.to_numpy())
                out[source] = (images[rows], table.iloc[rows][["disease_id", "severity", "age", "sex"]].reset_index(drop=True))
    for method in ("class", "prompt"):
        got = arrays(f"baseline_{method}")
        if got is not None and f"baseline_{method}" in include:
            images, table = got
            rows = np.flatnonzero((table["mode"] == "conditioned").to_numpy())
            out[f"baseline_{method}"] = (images[rows], table.iloc[rows][["disease_id", "severity", "age", "sex"]]
                                         .reset_index(drop=True))
    edits = arrays("edits")
    if edits is not None and "edit" in include:
        images, table = edits
        # DDIM inversion edits only: SDEdit of the same face would show the rater the same person twice
        rows = np.flatnonzero((table["method"] == "ddim").to_numpy())
        t = table.iloc[rows]
        healthy = t["direction"].str.startswith("diseased").to_numpy()
        truth = pd.DataFrame({"disease_id": np.where(healthy, UNAFFECTED, t["target"].astype(str)),
                              "severity": np.where(healthy, 0.0, t["severity"].astype(float)),
                              "age": t["age"].astype(float).to_numpy(), "sex": "",
                              "direction": t["direction"].to_numpy(), "test_row": t["test_row"].to_numpy()})
        out["edit"] = (images[rows], truth.reset_index(drop=True))
    return out


def build_study_set(sources: dict[str, tuple[np.ndarray, pd.DataFrame]], folder, per_disease: int = 2,
                    seed: int = 0, ask_severity: bool = False, diseases: dict[str, str] | None = None,
                    note: str = "") -> StudySet:
    """Write a set from ``sources`` (name -> (images, truth table with disease_id; severity, age, sex optional))
    into ``folder``: ``per_disease`` faces per disease and source, a seeded order. Images are written first and
    the manifest last (atomically), so a set is either the old one or the new one, never half of each."""
    if per_disease < 1:
        raise ValueError(f"per_disease must be at least 1, got {per_disease}")
    unknown = sorted(set(sources) - set(SOURCES))
    if unknown:
        raise ValueError(f"unknown source(s) {unknown}; a set holds {', '.join(SOURCES)}")
    from ..cohort import DISEASES  # the cohort package loads torch: not when the rating server starts

    diseases = dict(diseases or DISEASES)
    folder = Path(folder)
    rng = np.random.default_rng([seed, 909])
    rows, pngs = [], {}
    for source in SOURCES:
        if source not in sources:
            continue
        images, table = sources[source]
        table = table.reset_index(drop=True)
        strange = sorted(set(table["disease_id"].astype(str)) - set(diseases))
        if strange:
            raise ValueError(f"{source}: disease(s) {strange} are not in the study's disease list")
        for r in _balanced(table, per_disease, rng):
            png = _png_bytes(images[r])
            item_id = hashlib.sha256(f"{seed}:{source}:{r}:".encode() + hashlib.sha256(png).digest()).hexdigest()[:12]
            row = table.iloc[r]
            rows.append({"id": item_id, "source": source, "real": source in REAL_SOURCES,
                         "disease_id": str(row["disease_id"]),
                         "severity": float(row["severity"]) if "severity" in row and pd.notna(row["severity"]) else None,
                         "age": float(row["age"]) if "age" in row and pd.notna(row["age"]) else None,
                         "sex": str(row["sex"]) if "sex" in row and pd.notna(row["sex"]) else "",
                         "source_row": int(r)})
            pngs[item_id] = png
    if not rows:
        raise ValueError("no faces to build a study set from")
    ids = [r["id"] for r in rows]
    if len(set(ids)) != len(ids):
        raise ValueError("two items of the set are the same image from the same source row")
    order = [ids[i] for i in rng.permutation(len(ids))]
    set_id = hashlib.sha256(json.dumps([rows, order, ask_severity], sort_keys=True).encode()).hexdigest()[:16]
    (folder / IMAGES).mkdir(parents=True, exist_ok=True)
    for item_id, png in pngs.items():
        target = folder / IMAGES / f"{item_id}.png"
        if not target.is_file() or target.read_bytes() != png:
            with atomic_path(target) as tmp:
                tmp.write_bytes(png)
    counts = pd.DataFrame(rows).groupby("source").size().to_dict()
    write_json(folder / MANIFEST, {"format": FORMAT, "set_id": set_id, "seed": int(seed), "per_disease": int(per_disease),
                                   "ask_severity": bool(ask_severity), "diseases": diseases, "items": rows,
                                   "order": order, "counts": counts, "note": note})
    for stale in (folder / IMAGES).glob("*.png"):  # a previous set's faces are never served, and not kept either
        if stale.stem not in pngs:
            stale.unlink(missing_ok=True)
    return load_study_set(folder)


def write_study_set(data_dir, seed: int = 0, per_disease: int = 2, ask_severity: bool = False,
                    show_real_patients: bool = False, patient_photos: tuple[np.ndarray, pd.DataFrame] | None = None,
                    folder=None) -> StudySet:
    """The study set of a run: real test faces, generated (conditioned, zero-shot), the baselines' faces and
    DDIM edits, from ``data_dir``, into ``<data_dir>/study``. Real patient photos (``patient_photos``: images
    and a table with disease_id) join the real faces only when ``show_real_patients`` is true."""
    sources = collect_sources(data_dir)
    note = ""
    if patient_photos is not None:
        if show_real_patients:
            images, table = patient_photos
            real_images, real_table = sources.get("real", (images[:0], table.iloc[:0]))
            sources["real"] = (np.concatenate([real_images, images]), pd.concat([real_table, table], ignore_index=True))
            note = "real patient photos included (SHOW_REAL_PATIENTS)"
        else:
            note = "real patient photos withheld (SHOW_REAL_PATIENTS is false)"
    return build_study_set(sources, Path(folder) if folder else Path(data_dir) / "study", per_disease=per_disease,
                           seed=seed, ask_severity=ask_severity, note=note)


def load_study_set(folder) -> StudySet:
    folder = Path(folder)
    path = folder / MANIFEST if folder.is_dir() else folder
    if not path.is_file():
        raise FileNotFoundError(f"{path} is not a study set: notebook 07 writes one into <DATA_DIR>/study "
                                "(or: python -m phenoface.study build)")
    meta = json.loads(path.read_text(encoding="utf-8"))
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path}: study set format {meta.get('format')!r}, this code reads format {FORMAT}")
    items = pd.DataFrame(meta["items"]).set_index("id")
    return StudySet(folder=path.parent, set_id=meta["set_id"], items=items, order=list(meta["order"]),
                    diseases=dict(meta["diseases"]), ask_severity=bool(meta["ask_severity"]),
                    meta={k: v for k, v in meta.items() if k not in ("items", "order")})
