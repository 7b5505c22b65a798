"""Sampler cost against quality on a trained model, side by side: which scheduler, how many steps, what guidance?

    .venv/bin/python -m studies.samplers [--data-dir data/processed/quick] [--split validation]
                                         [--per-disease 8] [--configs dpm++:10,dpm++:12,dpm++:15,dpm++:25,ddim:25]
    .venv/bin/python -m studies.samplers --configs dpm++:10:1.5,dpm++:10:3,dpm++:10:5,dpm++:10:7.5 \
                                         --out reports/studies/samplers_guidance.json      # guidance scales
    .venv/bin/python -m studies.samplers --configs dpm++:10:7.5:0.5,dpm++:10:7.5:1,dpm++:10:7.5:2 \
                                         --out reports/studies/samplers_context.json       # age and sex weight
    .venv/bin/python -m studies.samplers --configs dpm++:10 --model A/model B/model \
                                         --out reports/studies/samplers_models.json        # models side by side

A choosing tool, so it works on the **validation** split by default (``--split test`` only to report). For
each ``scheduler:steps[:guidance[:context_weight]]`` the same conditions and seeds (``generate_cohort``; the model card's
zero-shot diseases drawn by composition as in notebook 06) give seconds per face, the top-1 of notebook 07's
saved recogniser on the conditioned faces, and the Fréchet distance to that split's real faces in the recogniser's
features, and the age MAE from pixels beside its shuffled-ages yardstick. Needs notebooks 00, 05 and 07 of that data directory. With few faces per disease FD is biased
upwards, so compare configurations within one run only. DDPM at 1,000 steps costs about 25 s per face on
2 CPU cores; add ``ddpm:1000`` only with time to spare. A run with other settings than the default writes
``--out reports/studies/samplers_<what>.json``: the results page lists it under this study.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from phenoface.benchmarks import results_path, write_results
from phenoface.config import repo_root


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", type=Path, default=repo_root() / "data" / "processed" / "quick")
    ap.add_argument("--split", choices=("validation", "test"), default="validation")
    ap.add_argument("--per-disease", type=int, default=8)
    ap.add_argument("--configs", default="dpm++:10,dpm++:12,dpm++:15,dpm++:25,ddim:25",
                    help="scheduler:steps[:guidance[:context_weight]], comma-separated (guidance defaults to "
                         "--guidance, the weight of age and sex to 1)")
    ap.add_argument("--guidance", type=float, default=7.5, help="the quick profile's GUIDANCE")
    ap.add_argument("--model", type=Path, nargs="+", default=None,
                    help="model folders to compare under the same configurations and seeds (default: <data-dir>/model); "
                         "with several, each key starts with <parent>/<folder>:")
    ap.add_argument("--out", type=Path, default=results_path("studies", "samplers"))
    a = ap.parse_args(argv)

    from phenoface.cohort import load_split
    from phenoface.evaluation.generator_figures import draw_and_measure, saved_recogniser
    from phenoface.model import load_model

    rec, extractor = saved_recogniser(a.data_dir)
    folders = a.model or [a.data_dir / "model"]
    real = load_split(a.data_dir, a.split)  # the faces whose conditions are drawn and FD is measured against
    out = {"split": a.split, "per_disease": a.per_disease, "guidance": a.guidance, f"recogniser_top1_real_{a.split}": float(
        rec.evaluate(real.images, real.table["disease_id"], k=1)["top1"])}
    for folder in folders:
        model = load_model(folder, check=folder == a.data_dir / "model")
        zero_shot = tuple(model.card.get("zero_shot", ()))
        prefix = f"{folder.parent.name}/{folder.name}:" if len(folders) > 1 else ""
        for item in a.configs.split(","):
            name, steps, *g = item.strip().split(":")
            guidance = float(g[0]) if g else a.guidance
            w0 = float(g[1]) if len(g) > 1 else 1.0
            key = prefix + f"{name}_{steps}" + (f"_g{guidance:g}" if g else "") + (f"_c{w0:g}" if len(g) > 1 else "")
            figures = draw_and_measure(model, real, rec, extractor, a.per_disease, zero_shot, int(steps), guidance, name,
                                       w0, a.data_dir)
            out.update({f"{key}_{k}": v for k, v in figures.items()})
            print(f"{key}: {figures['s_per_face']:.3f} s/face, top-1 {figures['top1']:.3f}, FD {figures['fd']:.2f}, "
                  f"age MAE {figures['age_mae']:.2f} (shuffled {figures['age_mae_shuffled']:.2f})", flush=True)
    write_results(out, a.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
