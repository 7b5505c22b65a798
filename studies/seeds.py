"""The headline figures repeated over seeds: how much of a figure is the seed?

    .venv/bin/python -m studies.seeds [--profile quick] [--seeds 0 1 2] [--only 00 02 04 07]
                                          [--out reports/studies/seeds.json]

Runs the chosen notebooks once per seed (``SEED`` override; each seed in its own data folder under
``data/processed/seeds/<profile>-<seed>``, reports under a temporary folder), then prints every headline
metric's mean, standard deviation, min and max over seeds beside each seed's value. A seed changes the cohorts
(train / validation / test people), the instrument and recogniser initialisation and every sampled check.
Quick profile, 3 seeds: about three quick runs of the chosen notebooks (~35 min on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from phenoface.benchmarks import results_path
from phenoface.config import repo_root

HEADLINE = {
    "02_kg_profiles": ["link_mrr", "baseline_mrr", "nearest_disease_mrr"],
    "03_llm_profiles": ["grounding_accuracy", "kg_precision", "kg_precision_shuffled"],
    "04_image_profiles": ["image_profile_precision_at_k", "image_profile_precision_at_k_oracle",
                          "image_profile_precision_at_k_ceiling_oracle",
                          "kg_profile_precision_at_k", "severity_order_accuracy_same_age", "term_intensity_spearman_min",
                          "term_intensity_pearson_min", "age_mae"],
    "07_evaluate": ["recogniser_top1", "recogniser_top1_blur07", "severity_spearman", "severity_spearman_age_only",
                    "severity_spearman_partial_age", "progression_order_accuracy", "memorisation_auc",
                    "memorisation_tpr_at_fpr1", "memorisation_rate"],
}


def main() -> int:
    from phenoface.config import write_json
    from phenoface.runner import run

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="quick")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--only", nargs="+", default=["00", "02", "04", "07"])
    ap.add_argument("--out", type=Path, default=results_path("studies", "seeds"))
    args = ap.parse_args()
    per_seed: dict[int, dict] = {}
    for seed in args.seeds:
        data = repo_root() / "data" / "processed" / "seeds" / f"{args.profile}-{seed}"
        with tempfile.TemporaryDirectory() as tmp:
            log = run(args.profile, only=args.only, reports=Path(tmp), force=True, html=False,
                      overrides={"SEED": seed, "DATA_DIR": str(data)})
            failed = {k: v.get("error", "")[-500:] for k, v in log["steps"].items() if v["status"] != "ok"}
            if failed:
                print(json.dumps({"seed": seed, "failed": failed}, indent=1))
                return 1
            per_seed[seed] = {}
            for stem, names in HEADLINE.items():
                path = Path(tmp) / "metrics" / f"{stem}.json"
                if path.is_file():
                    m = json.loads(path.read_text())
                    per_seed[seed].update({f"{stem}:{n}": m[n] for n in names if isinstance(m.get(n), (int, float))})
    names = sorted({k for v in per_seed.values() for k in v})
    summary = {}
    for n in names:
        v = np.array([per_seed[s].get(n, np.nan) for s in args.seeds], float)
        summary[n] = {"mean": float(np.nanmean(v)), "sd": float(np.nanstd(v, ddof=1)) if len(v) > 1 else float("nan"),
                      "min": float(np.nanmin(v)), "max": float(np.nanmax(v)),
                      "per_seed": dict(zip(map(str, args.seeds), v.tolist()))}
        print(f"{n:60s} mean {summary[n]['mean']:.3f}  sd {summary[n]['sd']:.3f}  "
              f"range [{summary[n]['min']:.3f}, {summary[n]['max']:.3f}]", flush=True)
    write_json(args.out, {"profile": args.profile, "seeds": args.seeds, "notebooks": args.only, "metrics": summary})
    print(f"written {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
