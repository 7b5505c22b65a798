"""The sampling-side faults of a generator, each measured before and after its fix on the same model and seeds:

    .venv/bin/python bench/bench_sampling_faults.py --data-dir data/processed/quick --model <model folder>

- **unaffected**: faces asked to be unaffected, drawn with "unaffected" as the null token ("no disease given",
  the old meaning at sampling) vs the meaning the model was trained with (format 1: the disease token of zero
  vectors; format 2: its own unaffected token). Measured: the recogniser's share of them read as unaffected, and
  the instrument's summed term amounts (an unaffected face shows none).
- **zero-shot guidance**: a disease never seen in images drawn as one concept per profile term at its profile
  weight (Composable Diffusion's sum: guidance multiplied by the number of terms) vs one joint concept with the
  terms at expressed amounts. Measured: zero-shot precision@k against the disease's KG profile (paired with
  unaffected faces of the same noise), and the recogniser's top-1 for the disease.
- **severity range**: severity series 0 -> 1 at age 8 vs across the range the cohort draws at that age.
  Measured: order accuracy along the same-noise series of a severity score fitted on validation faces.
- **DPM-Solver++ spacing**: "leading" (first step t = 900) vs "trailing" (t = 999) on validation conditions.
  Measured: recogniser top-1 and the Fréchet distance to the validation faces in its features.

Everything is on the **validation** split (faces, conditions) with seeds apart from notebooks 06 and 07's. The
recogniser is notebook 07's when ``<data-dir>/evaluation/recogniser.safetensors`` exists, else one trained here
the way notebook 05 trains its (the first grid candidate, chosen on validation). Writes
``reports/bench/sampling_faults.json``. Every number has a bootstrap interval over faces (or series).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))


def _ci(values, stat=np.mean, n: int = 1000, seed: int = 0) -> list[float]:
    values = np.asarray(values, float)
    values = values[np.isfinite(values)]
    if not len(values):
        return [float("nan")] * 3
    rng = np.random.default_rng(seed)
    boots = [stat(values[rng.integers(0, len(values), len(values))]) for _ in range(n)]
    return [float(stat(values)), float(np.quantile(boots, 0.025)), float(np.quantile(boots, 0.975))]


def recogniser(data_dir: Path, seed: int = 0):
    from phenoface.cohort import load_split
    from phenoface.evaluation import Recogniser, choose_recogniser

    path = data_dir / "evaluation" / "recogniser.safetensors"
    if path.is_file():
        return Recogniser.load(path), "notebook 07's"
    train, val = load_split(data_dir, "train"), load_split(data_dir, "validation")
    rec, _ = choose_recogniser(train.images, train.table["disease_id"], val.images, val.table["disease_id"],
                               grid=[(16, 20)], seed=seed)
    return rec, "trained here (16x20, as notebook 05's)"


def unaffected_faces(model, n: int, meaning: str, seed: int, steps: int, guidance: float) -> np.ndarray:
    """``n`` faces asked to be unaffected (ages 3-40, both sexes), ``meaning`` "null" (the old sampling
    meaning: no disease given) or "trained"."""
    import torch

    from phenoface.labels import UNAFFECTED
    from phenoface.sampling import Guide, concepts, decode, denoise, generate, make_scheduler

    rng = np.random.default_rng([seed, 11])
    age, sex = rng.uniform(3, 40, n), np.where(rng.random(n) < 0.5, "F", "M")
    if meaning == "trained":
        return generate(model, disease=UNAFFECTED, age=age, sex=sex, severity=0.0, n=n, seed=seed, steps=steps,
                        guidance=guidance)
    null, ctx, parts = concepts(model, n, UNAFFECTED, None, age, sex, 0.0, None)
    cond = parts[0][0]
    cond.keep[:, :2] = False  # disease and profile: the null token, as sampling used to read "unaffected"
    cond.unaffected[:] = False
    guide = Guide(model, null, ctx, [(cond, 1.0)])
    sched = make_scheduler(model.scheduler)
    sched.set_timesteps(steps)
    g = torch.Generator().manual_seed(seed)
    c, s = model.unet.config.in_channels, model.unet.config.sample_size
    lat = torch.randn((n, c, s, s), generator=g) * sched.init_noise_sigma
    return decode(model, denoise(guide, lat, sched, sched.timesteps, guidance, generator=g))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", type=Path, default=ROOT / "data" / "processed" / "quick")
    ap.add_argument("--model", type=Path, default=None, help="model folder (default: <data-dir>/model)")
    ap.add_argument("--per-disease", type=int, default=8)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--guidance", type=float, default=7.5)
    ap.add_argument("--seed", type=int, default=31)
    ap.add_argument("--only", nargs="*", default=["unaffected", "zero_shot", "severity", "spacing"])
    ap.add_argument("--out", type=Path, default=ROOT / "reports" / "bench" / "sampling_faults.json")
    a = ap.parse_args(argv)

    import pandas as pd

    from phenoface.cohort import DISEASES, TERM_IDS, load_split
    from phenoface.evaluation import frechet_distance
    from phenoface.evaluation.generated import order_accuracy, series_severity, zero_shot_precision
    from phenoface.evaluation.severity import SeverityScorer, profile_weights
    from phenoface.labels import UNAFFECTED
    from phenoface.model import load_model
    from phenoface.phenotypes import measure_images
    from phenoface.profiles import load_profiles
    from phenoface.sampling import generate, zero_shot_request, zero_shot_terms
    from phenoface.sampling.cohort import generate_cohort, series

    t_start = time.perf_counter()
    model = load_model(a.model or a.data_dir / "model")
    rec, rec_source = recogniser(a.data_dir)
    val = load_split(a.data_dir, "validation")
    zero_shot = list(model.card.get("zero_shot", []))
    kw = dict(steps=a.steps, guidance=a.guidance)
    out = {"model": str(a.model or a.data_dir / "model"), "conditioning_format": int(getattr(model.encoder, "version", 1)),
           "split": "validation", "recogniser": rec_source, "steps": a.steps, "guidance": a.guidance}
    real_top1 = rec.evaluate(val.images, val.table["disease_id"], k=1)
    out["real_top1"] = float(real_top1["top1"])

    if "unaffected" in a.only:
        n = 10 * a.per_disease
        for meaning in ("null", "trained"):
            imgs = unaffected_faces(model, n, meaning, a.seed, a.steps, a.guidance)
            pred = rec.predict(imgs, k=1)["top1"].astype(str).to_numpy()
            m = measure_images(imgs, data_dir=a.data_dir)[TERM_IDS].clip(lower=0).sum(axis=1).to_numpy()
            out[f"unaffected_{meaning}_read_unaffected"] = _ci(pred == UNAFFECTED)
            out[f"unaffected_{meaning}_term_sum"] = _ci(m)
        print("unaffected:", {k: np.round(v, 3).tolist() for k, v in out.items() if k.startswith("unaffected_")}, flush=True)

    if "zero_shot" in a.only and zero_shot and model.method == "profile":
        prof = {p.disease_id: p for p in load_profiles(a.data_dir / "profiles" / "kg_profiles.json")}
        n = 2 * a.per_disease
        rng = np.random.default_rng([a.seed, 12])
        age, sex = np.clip(rng.normal(8.0, 3.0, n), 1, 60), np.where(rng.random(n) < 0.5, "F", "M")
        base = dict(age=age, sex=sex, n=n, seed=a.seed, **kw)
        control = measure_images(generate(model, disease=UNAFFECTED, **base), data_dir=a.data_dir)
        for how in ("sum", "joint"):
            prec, hits = [], []
            for d in zero_shot:
                terms = zero_shot_terms(model, d) if how == "sum" else zero_shot_request(model, d, 1.0, n=n, seed=a.seed)
                imgs = generate(model, terms=terms, compose=how, **base)
                truth = [t for t, w in prof[d].renderable().items() if w >= 0.05] if d in prof else list(zero_shot_terms(model, d))
                prec.append(zero_shot_precision(measure_images(imgs, data_dir=a.data_dir), control, truth)["precision"])
                hits += list(np.asarray(rec.evaluate(imgs, [d] * n, k=1)["hits1"], float))
            out[f"zero_shot_{how}_precision"] = float(np.mean(prec))
            out[f"zero_shot_{how}_top1"] = _ci(hits)
        print("zero-shot:", {k: v for k, v in out.items() if k.startswith("zero_shot_")}, flush=True)

    if "severity" in a.only:
        vm = measure_images(val.images, data_dir=a.data_dir)
        profiles = {p.disease_id: p for p in load_profiles(a.data_dir / "profiles" / "kg_profiles.json")}
        scorer = SeverityScorer(profile_weights(profiles)).fit(vm, val.table)
        targets = [d for d in model.diseases.ids if d not in zero_shot and d in profiles]
        requests = {DISEASES.get(d, d): ("severity", d) for d in targets}
        levels = np.linspace(0, 1, 5)
        for how in ("full", "trained"):
            if how == "trained":
                imgs, table = series(model, requests, levels, seeds=[a.seed, a.seed + 1], age=8.0, **kw)
            else:  # the old series: severity 0 -> 1 whatever the disease shows at age 8
                imgs = np.concatenate([generate(model, disease=d, severity=levels, age=8.0, sex="F", n=len(levels), seed=s,
                                                shared_noise=True, **kw) for _, (_, d) in requests.items()
                                       for s in (a.seed, a.seed + 1)])
                table = pd.DataFrame([{"label": lab, "kind": "severity", "target": d, "level": float(v), "value": float(v),
                                       "seed": s, "series": f"{lab}|{s}"} for lab, (_, d) in requests.items()
                                      for s in (a.seed, a.seed + 1) for v in levels])
            score = series_severity(scorer, table, measure_images(imgs, data_dir=a.data_dir))
            per = [order_accuracy(score[g.index], g["level"]) for _, g in table.groupby("series")]
            out[f"severity_{how}_range_order"] = _ci(per)
        print("severity:", {k: v for k, v in out.items() if k.startswith("severity_")}, flush=True)

    if "spacing" in a.only:
        for spacing in ("leading", "trailing"):
            imgs, table = generate_cohort(model, val.table, a.per_disease, zero_shot=zero_shot, seed=a.seed, progress=False,
                                          spacing=spacing, **kw)
            cond = (table["mode"] == "conditioned").to_numpy()
            r = rec.evaluate(imgs[cond], table.loc[cond, "disease_id"], k=1)
            out[f"spacing_{spacing}_top1"] = float(r["top1"])
            out[f"spacing_{spacing}_fd"] = float(frechet_distance(val.images, imgs, rec.feature_extractor()))
        print("spacing:", {k: v for k, v in out.items() if k.startswith("spacing_")}, flush=True)

    out["seconds"] = round(time.perf_counter() - t_start, 1)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(out, indent=2))
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
