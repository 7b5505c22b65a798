"""A generated cohort for notebook 07: faces per disease with the conditions they were asked for, drawn
like the test cohort (its ages, sexes and severities per disease), saved atomically beside the run."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd

from ..cohort import SEVERITY_FACTOR, severity_course
from ..cohort.diseases import COURSE
from ..config import atomic_path
from ..labels import UNAFFECTED
from . import generate, zero_shot_request

FOLDER = "generated"


def generate_cohort(model, reference: pd.DataFrame, per_disease: int, zero_shot=(), seed: int = 0, steps: int = 25,
                    guidance: float = 3.0, scheduler: str = "dpm++", batch: int = 32, progress: bool = True,
                    context_weight: float = 1.0, spacing: str = "trailing"):
    """(uint8 images, table) with ``per_disease`` faces for every disease of ``reference`` (a cohort table):
    age, sex and severity resampled from that disease's reference rows; zero-shot diseases drawn from their
    profile terms by composition (by name for the prompt baseline; the class baseline skips them: it has
    no token for a class it never saw). ``context_weight``: the weight of age and sex in the guidance (the
    profile model; a baseline has no such tokens). ``table`` also records the mode and the seconds spent."""
    rng = np.random.default_rng([seed, 606])
    diseases = sorted(reference["disease_id"].unique())
    images, rows = [], []
    it = diseases
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(diseases, desc="generating")
    for k, d in enumerate(it):
        ref = reference[reference["disease_id"] == d]
        pick = ref.iloc[rng.integers(0, len(ref), per_disease)]
        for start in range(0, per_disease, batch):
            part = pick.iloc[start:start + batch]
            kw = dict(age=part["age"].to_numpy(float), sex=part["sex"].to_numpy(), n=len(part), steps=steps,
                      guidance=guidance, scheduler=scheduler, seed=seed * 100_003 + k * 1009 + start, spacing=spacing)
            sev = part["severity"].to_numpy(float) if d != UNAFFECTED else np.zeros(len(part))
            t0 = time.perf_counter()
            method = getattr(model, "method", "profile")
            if method == "profile":
                kw["context_weight"] = context_weight
            if d in zero_shot and method == "class":
                break  # a class never seen has no trained token: nothing to draw (the table says so by its absence)
            if d in zero_shot and method != "profile":
                imgs = generate(model, disease=d, **kw)  # the prompt baseline's zero-shot: the disease's name alone
                mode = "zero-shot (name)"
            elif d in zero_shot:  # one joint concept: the profile's terms as this patient would express them
                req = zero_shot_request(model, d, np.clip(sev, 0, 1), n=len(part), seed=kw["seed"])
                imgs = generate(model, terms=req, severity=np.clip(sev, 0, 1), **kw)
                mode = "zero-shot"
            else:
                imgs = generate(model, disease=d, severity=np.clip(sev, 0, 1), **kw)
                mode = "conditioned"
            sec = (time.perf_counter() - t0) / len(part)
            images.append(imgs)
            rows += [{"disease_id": d, "age": a, "sex": s, "severity": v, "mode": mode, "seconds": sec}
                     for a, s, v in zip(part["age"], part["sex"], sev)]
    return np.concatenate(images), pd.DataFrame(rows)


def save_generated(data_dir, images: np.ndarray, table: pd.DataFrame) -> Path:
    return save_arrays(data_dir, "faces", images, table).parent


def load_generated(data_dir) -> tuple[np.ndarray, pd.DataFrame]:
    return load_arrays(data_dir, "faces")


def trained_severity_range(disease: str, age: float) -> tuple[float, float]:
    """The severities the cohort draws for ``disease`` at ``age`` (its course times the per-patient factor): what a
    severity series should span, since the model never saw the rest. (0, 1) for a disease without a course."""

    if disease not in COURSE:
        return 0.0, 1.0
    c = float(severity_course(disease, age))
    return round(SEVERITY_FACTOR[0] * c, 4), round(SEVERITY_FACTOR[1] * c, 4)


def series_values(kind: str, target: str, levels, age: float) -> np.ndarray:
    """What a series asks for at each level: a severity series spans the trained range at ``age`` (level 0 its
    low end, 1 its high end); a term series the intensity itself."""
    levels = np.asarray(levels, float)
    if kind == "severity":
        lo, hi = trained_severity_range(target, age)
        return lo + levels * (hi - lo)
    return levels


def series(model, requests: dict, levels, seeds, age: float = 8.0, sex: str = "F", steps: int = 25,
           guidance: float = 3.0, scheduler: str = "dpm++"):
    """Controlled series: for each request (label -> (kind, id)), each seed, the same noise at every level.
    ``kind`` "severity": ``disease`` across its trained severity range at ``age`` (:func:`series_values`);
    "term": that term alone at intensity = level (0 = stated absent). Returns (images, table with label, kind,
    target, level, value (what was asked), seed, series)."""
    levels = np.asarray(levels, float)
    images = []
    kw = dict(age=age, sex=sex, n=len(levels), steps=steps, guidance=guidance, scheduler=scheduler, shared_noise=True)
    for label, (kind, target) in requests.items():
        for s in seeds:
            if kind == "severity":
                imgs = generate(model, disease=target, severity=series_values(kind, target, levels, age), seed=s, **kw)
            elif kind == "term":
                imgs = generate(model, terms={target: levels}, seed=s, **kw)
            else:
                raise ValueError(f"unknown series kind {kind!r} (severity | term)")
            images.append(imgs)
    return np.concatenate(images), series_table(requests, levels, seeds, age)


def series_table(requests: dict, levels, seeds, age: float = 8.0) -> pd.DataFrame:
    """The table :func:`series` returns for these requests, in its row order (request, seed, level): also what
    ``evaluation.generated.rendered_series`` renders from."""
    levels = np.asarray(levels, float)
    return pd.DataFrame([{"label": label, "kind": kind, "target": target, "level": float(v), "value": float(x),
                          "seed": s, "series": f"{label}|{s}"}
                         for label, (kind, target) in requests.items() for s in seeds
                         for v, x in zip(levels, series_values(kind, target, levels, age))])


def zero_shot_pairs(model, disease: str, n: int, seed: int = 0, age: float = 8.0, steps: int = 25,
                    guidance: float = 3.0, scheduler: str = "dpm++"):
    """``n`` faces of a zero-shot disease drawn from its profile terms, and ``n`` unaffected faces from the same
    seeds, ages and sexes: their measured difference is what the composition added."""
    rng = np.random.default_rng([seed, 707])
    ages = np.clip(rng.normal(age, 3.0, n), 1.0, 60.0)
    sexes = np.where(rng.random(n) < 0.5, "F", "M")
    kw = dict(age=ages, sex=sexes, n=n, seed=seed, steps=steps, guidance=guidance, scheduler=scheduler)
    drawn = generate(model, terms=zero_shot_request(model, disease, 1.0, n=n, seed=seed), **kw)
    control = generate(model, disease=UNAFFECTED, **kw)
    table = pd.DataFrame({"disease_id": disease, "age": ages, "sex": sexes})
    return drawn, control, table


def save_arrays(data_dir, name: str, images: np.ndarray, table: pd.DataFrame) -> Path:
    """``<DATA_DIR>/generated/<name>.npz`` + ``.csv``, each written atomically."""
    folder = Path(data_dir) / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_path(folder / f"{name}.npz") as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, images=images)
    with atomic_path(folder / f"{name}.csv") as tmp:
        table.to_csv(tmp, index=False)
    return folder / f"{name}.npz"


def load_arrays(data_dir, name: str) -> tuple[np.ndarray, pd.DataFrame]:
    folder = Path(data_dir) / FOLDER
    if not (folder / f"{name}.npz").is_file():
        raise FileNotFoundError(f"no {name} in {folder}: run notebook 06_generate first")
    with np.load(folder / f"{name}.npz", allow_pickle=False) as z:
        images = z["images"]
    return images, pd.read_csv(folder / f"{name}.csv")
