"""Sampler cost against quality on a trained model, side by side: which scheduler, how many steps, what guidance?

    .venv/bin/python bench/bench_samplers.py [--data-dir data/processed/quick] [--split validation]
                                             [--per-disease 8] [--configs dpm++:10,dpm++:12,dpm++:15,dpm++:25,ddim:25]
    .venv/bin/python bench/bench_samplers.py --configs dpm++:10:1.5,dpm++:10:3,dpm++:10:5 --out ...  # guidance scales
    .venv/bin/python bench/bench_samplers.py --configs dpm++:10:7.5:1,dpm++:10:7.5:2 --out ...  # age and sex weight

A choosing tool, so it works on the **validation** split by default (``--split test`` only to report). For
each ``scheduler:steps[:guidance[:context_weight]]`` the same conditions and seeds (``generate_cohort``; the model card's
zero-shot diseases drawn by composition as in notebook 06) give seconds per face, the top-1 of notebook 07's
saved recogniser on the conditioned faces, and the Fréchet distance to that split's real faces in the recogniser's
features, and the age MAE from pixels beside its shuffled-ages yardstick. Needs notebooks 00, 05 and 07 of that data directory. With few faces per disease FD is biased
upwards, so compare configurations within one run only. DDPM at 1,000 steps costs about 25 s per face on
2 CPU cores; add ``ddpm:1000`` only with time to spare.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))


def saved_recogniser(data_dir: Path):
    """Notebook 07's saved recogniser for ``data_dir`` and its feature extractor (for FD)."""
    from phenoface.evaluation import Recogniser

    rec_path = data_dir / "evaluation" / "recogniser.safetensors"
    if not rec_path.is_file():
        raise SystemExit(f"{rec_path} is missing: run notebook 07 for {data_dir} first")
    rec = Recogniser.load(rec_path)
    return rec, rec.feature_extractor()


def judge(model, real, rec, extractor, per_disease: int, zero_shot=(), steps: int = 10, guidance: float = 7.5,
          scheduler: str = "dpm++", context_weight: float = 1.0, data_dir=None) -> dict:
    """Draw ``real``'s conditions (``generate_cohort``, seed 0) and measure them: seconds per face, the
    recogniser's top-1 on the conditioned faces and the FD to ``real``'s faces in its features; with
    ``data_dir`` (the age estimator's) also the age MAE from pixels and, as its no-control yardstick, the MAE
    against the requested ages shuffled across faces."""
    from phenoface.evaluation import frechet_distance
    from phenoface.sampling.cohort import generate_cohort

    t0 = time.perf_counter()
    images, table = generate_cohort(model, real.table, per_disease, zero_shot=zero_shot, seed=0, steps=int(steps),
                                    guidance=guidance, scheduler=scheduler, progress=False, context_weight=context_weight)
    seconds = (time.perf_counter() - t0) / len(images)
    cond = (table["mode"] == "conditioned").to_numpy()
    out = {"conditioned_faces": int(cond.sum()), "s_per_face": seconds,
           "top1": float(rec.evaluate(images[cond], table.loc[cond, "disease_id"], k=1)["top1"]),
           "fd": float(frechet_distance(real.images, images, extractor))}
    if data_dir is not None:
        from phenoface.evaluation.generated import age_mae
        from phenoface.phenotypes import estimate_age

        out["age_mae"], out["age_mae_shuffled"] = age_mae(estimate_age(images, data_dir=data_dir), table["age"])
    return out


def term_control(model, data_dir, steps: int = 10, guidance: float = 7.5, seeds=(101, 102), vae=None) -> dict:
    """Term control as notebooks 06 and 07 measure it, on seeds apart from theirs: each renderable term alone at
    intensity 0 -> 1 (five levels, the same noise), the instrument's reading against the level (Spearman per
    term, mean over seeds). ``vae`` given (an autoencoder): the same series *rendered* and passed through it
    instead of generated, the ceiling any generator in its latent can hardly exceed."""
    import numpy as np

    from phenoface.cohort import TERM_IDS
    from phenoface.evaluation.generated import rendered_series, series_control
    from phenoface.phenotypes import measure_images
    from phenoface.sampling.cohort import series, series_table

    requests = {t: ("term", t) for t in TERM_IDS}
    levels = np.linspace(0, 1, 5)
    if vae is None:
        images, table = series(model, requests, levels, seeds=list(seeds), age=8.0, steps=int(steps), guidance=guidance)
    else:
        from types import SimpleNamespace

        from phenoface.model.quality import reconstruct

        table = series_table(requests, levels, seeds)
        images = reconstruct(SimpleNamespace(vae=vae), rendered_series(table, seed=seeds[0])[0])
    sp = series_control(table, np.full(len(table), np.nan), measure_images(images, data_dir=data_dir))["term_spearman"]
    return {"terms_at_goal": int((sp >= 0.8).sum()), "term_spearman_median": float(sp.median()),
            "term_spearman_min": float(sp.min()), "term_spearman": sp.round(3).to_dict()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", type=Path, default=ROOT / "data" / "processed" / "quick")
    ap.add_argument("--split", choices=("validation", "test"), default="validation")
    ap.add_argument("--per-disease", type=int, default=8)
    ap.add_argument("--configs", default="dpm++:10,dpm++:12,dpm++:15,dpm++:25,ddim:25",
                    help="scheduler:steps[:guidance[:context_weight]], comma-separated (guidance defaults to "
                         "--guidance, the weight of age and sex to 1)")
    ap.add_argument("--guidance", type=float, default=7.5, help="the quick profile's GUIDANCE")
    ap.add_argument("--out", type=Path, default=ROOT / "reports" / "bench" / "samplers.json")
    a = ap.parse_args(argv)

    from bench_generator import report

    from phenoface.cohort import load_split
    from phenoface.model import load_model

    rec, extractor = saved_recogniser(a.data_dir)
    model = load_model(a.data_dir / "model")
    zero_shot = tuple(json.loads((a.data_dir / "model" / "card.json").read_text()).get("zero_shot", ()))
    real = load_split(a.data_dir, a.split)  # the faces whose conditions are drawn and FD is measured against
    out = {"split": a.split, "per_disease": a.per_disease, "guidance": a.guidance, f"recogniser_top1_real_{a.split}": float(
        rec.evaluate(real.images, real.table["disease_id"], k=1)["top1"])}
    for item in a.configs.split(","):
        name, steps, *g = item.strip().split(":")
        guidance = float(g[0]) if g else a.guidance
        w0 = float(g[1]) if len(g) > 1 else 1.0
        key = f"{name}_{steps}" + (f"_g{guidance:g}" if g else "") + (f"_c{w0:g}" if len(g) > 1 else "")
        figures = judge(model, real, rec, extractor, a.per_disease, zero_shot, int(steps), guidance, name, w0, a.data_dir)
        out.update({f"{key}_{k}": v for k, v in figures.items()})
        print(f"{key}: {figures['s_per_face']:.3f} s/face, top-1 {figures['top1']:.3f}, FD {figures['fd']:.2f}, "
              f"age MAE {figures['age_mae']:.2f} (shuffled {figures['age_mae_shuffled']:.2f})", flush=True)
    report(out, a.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
