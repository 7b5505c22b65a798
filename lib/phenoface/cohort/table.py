"""The cohort itself: render tables, identities, the rendered faces and :class:`Cohort` (faces, landmarks,
table, true and KG frequencies), generated, saved and loaded atomically. :mod:`phenoface.cohort` re-exports it."""

from __future__ import annotations

import copy
import functools
import json
from pathlib import Path

import numpy as np
import pandas as pd

from ..ages import AGE_BANDS as _AGES
from ..config import atomic_path
from . import layout as _layout
from .diseases import (COURSE, DISEASES, DIVERGENCE_SEED, UNAFFECTED, disease_names, diverge,
                       kg_frequencies, severity_course)
from .render import render as _render
from .terms import EFFECT, KIND, TERM_IDS, TERMS, apply_terms, head_scale


TEXTURE_KEYS = {
    "pallor": "HP:0000980", "erythema": "HP:0001041", "nodule": "HP:0200036",
    "smooth_philtrum": "HP:0000319", "epicanthus": "HP:0000286", "synophrys": "HP:0000664",
    "macroglossia": "HP:0000158", "protrude": "HP:0010808", "flat": "HP:0012368",
    "bridge": "HP:0005280", "malar": "HP:0000272", "cheeks": "HP:0000293", "proptosis": "HP:0000520",
}
EXCLUSIVE = [("HP:0000582", "HP:0000494"), ("HP:0000154", "HP:0000160")]
# The bands faces are sampled from: phenoface.ages.AGE_BANDS without infants, adults capped at 60.
AGE_BANDS = {b: (lo, min(hi, 60.0)) for b, (lo, hi) in _AGES.items() if b != "infant"}
# A patient's severity is the disease course at their age times this per-patient factor. Wide on purpose:
# with U(0.75, 1) age alone predicted severity (within-disease Spearman ~0.69), so a severity scorer could
# look good by reading age. Reports put the age-only baseline beside every severity figure.
SEVERITY_FACTOR = (0.35, 1.0)

_SKIN = np.array([[0.98, 0.86, 0.76], [0.93, 0.76, 0.63], [0.80, 0.60, 0.45], [0.62, 0.43, 0.30],
                  [0.42, 0.28, 0.19]], np.float32)
_HAIR = np.array([[0.10, 0.08, 0.07], [0.25, 0.16, 0.10], [0.45, 0.30, 0.18], [0.78, 0.62, 0.38],
                  [0.58, 0.27, 0.12]], np.float32)
_IRIS = np.array([[0.30, 0.18, 0.10], [0.18, 0.11, 0.07], [0.30, 0.48, 0.68], [0.35, 0.48, 0.30],
                  [0.48, 0.38, 0.20]], np.float32)
_ATTR = ["skin_tone", "skin_r", "skin_g", "skin_b", "hair_r", "hair_g", "hair_b", "hair_style",
         "hair_volume", "fringe", "iris_r", "iris_g", "iris_b", "bg_top_r", "bg_top_g", "bg_top_b",
         "bg_bottom_r", "bg_bottom_g", "bg_bottom_b", "shirt_r", "shirt_g", "shirt_b"]
_POSE = ["pose_scale", "pose_dx", "pose_dy", "pose_roll"]
_HEAD = ["head_cx", "head_cy", "head_rx", "head_ry"]


def add_pose_jitter(table: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Per-face pose columns (scale, shift, roll) drawn from ``rng``, added to ``table`` in place."""
    n = len(table)
    table["pose_scale"] = rng.uniform(0.95, 1.05, n)
    table["pose_dx"] = rng.uniform(-0.03, 0.03, n)
    table["pose_dy"] = rng.uniform(-0.03, 0.03, n)
    table["pose_roll"] = rng.uniform(-3.0, 3.0, n)
    return table


def identity_attributes(identity, sex) -> pd.DataFrame:
    """Appearance drawn from the identity integer (and sex for the hair style): skin, hair, eyes,
    background and clothes colours. Deterministic."""
    ids = np.atleast_1d(np.asarray(identity, np.int64))
    sex = np.broadcast_to(np.asarray(sex), ids.shape)
    rows = []
    for k, s in zip(ids, sex):
        r = np.random.default_rng([int(k) & 0x7FFFFFFF, 1])
        tone = float(r.random())
        f = tone * (len(_SKIN) - 1)
        i0 = min(int(f), len(_SKIN) - 2)
        skin = _SKIN[i0] + (f - i0) * (_SKIN[i0 + 1] - _SKIN[i0]) + r.normal(0, 0.015, 3)
        hp = np.array([0.35, 0.3, 0.15, 0.12, 0.08]) if tone < 0.4 else np.array([0.6, 0.32, 0.08, 0.0, 0.0])
        hair = _HAIR[r.choice(5, p=hp / hp.sum())] * r.uniform(0.85, 1.15) + r.normal(0, 0.02, 3)
        ip = np.array([0.3, 0.2, 0.25, 0.12, 0.13]) if tone < 0.35 else np.array([0.5, 0.45, 0.0, 0.0, 0.05])
        iris = _IRIS[r.choice(5, p=ip / ip.sum())] * r.uniform(0.85, 1.15)
        u = r.random()
        style = (1 if u < 0.65 else 0) if s == "F" else (0 if u < 0.7 else (3 if u < 0.9 else 1))
        hue = r.random()
        base = np.array([0.55 + 0.3 * np.cos(2 * np.pi * (hue + d)) for d in (0, 1 / 3, 2 / 3)]) * 0.5 + 0.38
        bg_top = np.clip(base + 0.08, 0, 1)
        bg_bot = np.clip(base - 0.1, 0, 1)
        shirt = np.clip(r.uniform(0.1, 0.85, 3), 0, 1)
        rows.append([tone, *np.clip(skin, 0, 1), *np.clip(hair, 0, 1), style, r.uniform(0.01, 0.07),
                     r.uniform(0, 1) if style != 3 else 0.0, *np.clip(iris, 0, 1), *bg_top, *bg_bot, *shirt])
    df = pd.DataFrame(rows, columns=_ATTR)
    df["hair_style"] = df["hair_style"].astype(int)
    return df


def _nodule_positions(identity, k=7) -> np.ndarray:
    ids = np.atleast_1d(np.asarray(identity, np.int64))
    out = np.empty((len(ids), k, 2))
    for i, idn in enumerate(ids):
        r = np.random.default_rng([int(idn) & 0x7FFFFFFF, 2])
        x = r.uniform(-0.32, 0.32, k)
        y = r.uniform(0.0, 0.95, k)
        # keep them off the eyes and mouth
        y = np.where((np.abs(y - 0.33) < 0.06) & (np.abs(x) > 0.08), y + 0.12, y)
        y = np.where((np.abs(y - 0.76) < 0.07) & (np.abs(x) < 0.2), y - 0.15, y)
        x = np.where(y > 0.8, x * 0.5, x)
        out[i] = np.stack([x, y], 1)
    return out


def build_params(table: pd.DataFrame) -> dict:
    """Per-face render parameters from a cohort table (all rows)."""
    n = len(table)
    ident = table["identity"].to_numpy(np.int64)
    age = table["age"].to_numpy(float)
    sex = table["sex"].to_numpy()
    amounts = {t: table[t].to_numpy(float) if t in table else np.zeros(n) for t in TERM_IDS}
    lm = apply_terms(_layout.base_shape(age, sex, ident), amounts)
    a = table
    p = {
        "lm": lm, "age": age, "sex": sex,
        "head_scale": head_scale(amounts, n),
        "pose_scale": a["pose_scale"].to_numpy(float), "pose_dx": a["pose_dx"].to_numpy(float),
        "pose_dy": a["pose_dy"].to_numpy(float), "pose_roll": a["pose_roll"].to_numpy(float),
        "skin_rgb": a[["skin_r", "skin_g", "skin_b"]].to_numpy(np.float32),
        "hair_rgb": a[["hair_r", "hair_g", "hair_b"]].to_numpy(np.float32),
        "iris_rgb": a[["iris_r", "iris_g", "iris_b"]].to_numpy(np.float32),
        "bg_top": a[["bg_top_r", "bg_top_g", "bg_top_b"]].to_numpy(np.float32),
        "bg_bottom": a[["bg_bottom_r", "bg_bottom_g", "bg_bottom_b"]].to_numpy(np.float32),
        "shirt_rgb": a[["shirt_r", "shirt_g", "shirt_b"]].to_numpy(np.float32),
        "hair_style": a["hair_style"].to_numpy(int), "hair_volume": a["hair_volume"].to_numpy(float),
        "fringe": a["fringe"].to_numpy(float),
        "nodule_pos": _nodule_positions(ident),
        "tex": {k: np.clip(amounts[v], 0, 1) for k, v in TEXTURE_KEYS.items()},
    }
    return p


def render_table(table: pd.DataFrame, size: int = 64, chunk: int | None = None):
    """Render (or re-render) every row of a cohort table. Returns images, landmarks, head ellipses."""
    n = len(table)
    chunk = chunk or max(8, int(2 ** 21 // (size * size)))
    images = np.empty((n, size, size, 3), np.uint8)
    lms = np.empty((n, 68, 2), np.float32)
    heads = np.empty((n, 4), np.float32)
    for s in range(0, n, chunk):
        part = table.iloc[s:s + chunk]
        p = build_params(part)
        img, lm = _render(p, size)
        images[s:s + len(part)], lms[s:s + len(part)], heads[s:s + len(part)] = img, lm, p["_head_px"]
    return images, lms, heads


def face_table(identity, age, sex, terms=None) -> pd.DataFrame:
    """One neutral-pose table row for ``render_table``: the face ``render_face`` draws, for callers
    that render many such faces in one batch (series of one person, per-term checks)."""
    row = {"disease_id": "", "age": float(age), "sex": sex, "identity": int(identity), "severity": 0.0}
    for t in TERM_IDS:
        row[t] = 0.0
    for t, v in (terms or {}).items():
        if t not in TERMS:
            raise ValueError(f"{t} is not a renderable term; known: {', '.join(TERM_IDS)}")
        row[t] = float(np.clip(v, 0, 1))
    row.update(dict(zip(_POSE, (1.0, 0.0, 0.0, 0.0))))
    t = pd.DataFrame([row])
    return pd.concat([t, identity_attributes([identity], [sex])], axis=1)


def render_face(identity: int = 0, age: float = 30.0, sex: str = "F", terms: dict | None = None, size: int = 64):
    """One face (neutral pose). Returns (uint8 image (size, size, 3), landmarks (68, 2) pixels (x, y))."""
    if sex not in ("F", "M"):
        raise ValueError("sex must be 'F' or 'M'")
    img, lm, _ = render_table(face_table(identity, age, sex, terms), size)
    return img[0], lm[0]


@functools.lru_cache(maxsize=8)
def _true_frequencies(divergence_seed: int):
    return diverge(kg_frequencies(), divergence_seed)


def true_frequencies(divergence_seed: int = DIVERGENCE_SEED):
    """(truth DataFrame diseases x terms, divergence record) for all registered diseases (copies)."""
    truth, record = _true_frequencies(int(divergence_seed))
    return truth.copy(), copy.deepcopy(record)


def _atomic_write(target: Path, write) -> None:
    with atomic_path(target) as tmp:
        write(tmp)


class Cohort:
    """A rendered synthetic cohort: ``images`` (N,S,S,3) uint8, ``landmarks`` (N,68,2) pixels,
    ``table`` (one row per face), ``truth`` (diseases x terms true probabilities), ``kg`` (the
    annotated frequencies), ``divergence`` (list of dicts)."""

    def __init__(self, images, landmarks, table, truth, kg, divergence, meta):
        self.images = images
        self.landmarks = landmarks
        self.table = table.reset_index(drop=True)
        self.truth = truth
        self.kg = kg
        self.divergence = divergence
        self.meta = meta

    # ---------------------------------------------------------------------------------------------
    @classmethod
    def generate(cls, n: int = 512, diseases=None, seed: int = 0, size: int = 64,
                 divergence_seed: int = DIVERGENCE_SEED) -> "Cohort":
        """Sample and render ``n`` faces balanced over ``diseases`` (None = all, incl. UNAFFECTED)."""
        if diseases is None:
            diseases = list(DISEASES)
        diseases = [str(d) for d in diseases]
        unknown = [d for d in diseases if d not in DISEASES]
        if unknown:
            raise ValueError(f"Unknown disease id(s) {unknown}; known ids: "
                             + ", ".join(f"{k} ({v})" for k, v in DISEASES.items()))
        if not diseases:
            raise ValueError("diseases must not be empty")
        truth_all, record_all = true_frequencies(divergence_seed)
        kg = kg_frequencies().loc[diseases]
        truth = truth_all.loc[diseases]
        divergence = [r for r in record_all if r["disease_id"] in diseases]
        rng = np.random.default_rng(seed)
        dis = np.resize(np.array(diseases, dtype=object), n)
        rng.shuffle(dis)
        band = rng.integers(0, 3, n)
        lo = np.array([v[0] for v in AGE_BANDS.values()])[band]
        hi = np.array([v[1] for v in AGE_BANDS.values()])[band]
        age = np.round(lo + rng.random(n) * (hi - lo), 2)
        sex = np.resize(np.array(["F", "M"], dtype=object), n)
        rng.shuffle(sex)
        identity = rng.integers(0, 2 ** 31 - 1, n)
        factor = rng.uniform(SEVERITY_FACTOR[0], SEVERITY_FACTOR[1], n)
        sev = np.zeros(n)
        for d in diseases:
            m = dis == d
            sev[m] = severity_course(d, age[m]) * factor[m]
        probs = truth.loc[list(dis)].to_numpy(float)  # (n, T)
        present = rng.random(probs.shape) < probs
        jitter = rng.uniform(0.8, 1.0, probs.shape)
        amount = present * sev[:, None] * jitter
        col = {t: i for i, t in enumerate(TERM_IDS)}
        for a, b in EXCLUSIVE:
            both = (amount[:, col[a]] > 0) & (amount[:, col[b]] > 0)
            keep_a = probs[:, col[a]] >= probs[:, col[b]]
            amount[both & keep_a, col[b]] = 0
            amount[both & ~keep_a, col[a]] = 0
        amount[dis == UNAFFECTED] = 0.0
        table = pd.DataFrame({
            "disease_id": dis.astype(str), "disease_name": [DISEASES[d] for d in dis], "age": age,
            "age_band": np.array(list(AGE_BANDS))[band], "sex": sex.astype(str), "identity": identity,
            "severity": np.round(sev, 4)})
        for t in TERM_IDS:
            table[t] = np.round(amount[:, col[t]], 4)
        add_pose_jitter(table, rng)
        table = pd.concat([table, identity_attributes(identity, sex)], axis=1)
        images, landmarks, heads = render_table(table, size)
        for i, c in enumerate(_HEAD):
            table[c] = heads[:, i]
        meta = {"seed": int(seed), "size": int(size), "n": int(n), "diseases": diseases,
                "divergence_seed": int(divergence_seed), "divergence": divergence,
                "severity_course": {d: list(COURSE[d]) for d in diseases},
                "severity_formula": f"floor + (1-floor)*sigmoid((age-midpoint)/rate), times U{SEVERITY_FACTOR} per patient",
                "terms": dict(TERMS), "landmark_convention": "dlib 68, pixel (x, y), pixel centre = index + 0.5"}
        return cls(images, landmarks, table, truth, kg, divergence, meta)

    # ---------------------------------------------------------------------------------------------
    @property
    def seed(self):
        return self.meta.get("seed")

    @property
    def size(self):
        return int(self.images.shape[1])

    @property
    def diseases(self):
        return list(self.meta.get("diseases", []))

    def __len__(self):
        return len(self.table)

    def subset(self, mask) -> "Cohort":
        idx = np.arange(len(self))[np.asarray(mask)] if not isinstance(mask, slice) else np.arange(len(self))[mask]
        return Cohort(self.images[idx], self.landmarks[idx], self.table.iloc[idx], self.truth, self.kg,
                      self.divergence, dict(self.meta, n=int(len(idx))))

    def __getitem__(self, key):
        if isinstance(key, (int, np.integer)):
            return self.images[key], self.landmarks[key], self.table.iloc[int(key)]
        return self.subset(key)

    def rerender(self, size: int | None = None):
        """Re-render every face from the table (e.g. at another resolution)."""
        images, landmarks, _ = render_table(self.table, size or self.size)
        return images, landmarks

    def __repr__(self):
        return f"Cohort(n={len(self)}, size={self.size}, diseases={len(self.diseases)}, seed={self.seed})"

    # ---------------------------------------------------------------------------------------------
    def save(self, path) -> Path:
        """Write ``path/`` = cohort.npz (images, landmarks) + table.csv + meta.json (incl. truth, kg,
        divergence); every file written to a temp file in the same folder then os.replace'd."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)

        def w_npz(tmp):
            with open(tmp, "wb") as fh:
                np.savez_compressed(fh, images=self.images, landmarks=self.landmarks)

        def w_csv(tmp):
            self.table.to_csv(tmp, index=False)

        meta = dict(self.meta, truth=self.truth.to_dict(orient="index"), kg=self.kg.to_dict(orient="index"),
                    divergence=self.divergence, n=len(self))

        def w_json(tmp):
            with open(tmp, "w") as fh:
                json.dump(meta, fh, indent=1)

        _atomic_write(path / "cohort.npz", w_npz)
        _atomic_write(path / "table.csv", w_csv)
        _atomic_write(path / "meta.json", w_json)  # last: its presence marks a complete save
        return path

    @classmethod
    def load(cls, path) -> "Cohort":
        path = Path(path)
        if not (path / "meta.json").is_file():  # written last by save(): absent = no complete cohort here
            raise FileNotFoundError(f"{path} holds no saved cohort: run notebook 00_data with the same DATA_DIR "
                                    "first (run_all.sh --only 00)")
        with open(path / "meta.json") as fh:
            meta = json.load(fh)
        with np.load(path / "cohort.npz") as z:
            images, landmarks = z["images"], z["landmarks"]
        table = pd.read_csv(path / "table.csv", dtype={"disease_id": str, "sex": str})
        truth = pd.DataFrame.from_dict(meta.pop("truth"), orient="index")[TERM_IDS]
        kg = pd.DataFrame.from_dict(meta.pop("kg"), orient="index")[TERM_IDS]
        return cls(images, landmarks, table, truth, kg, meta["divergence"], meta)
