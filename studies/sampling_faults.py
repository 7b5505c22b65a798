"""The sampling-side faults of a generator, each figure under the faulty setting and the corrected one, on the
same model and seeds
(:func:`phenoface.evaluation.faults.sampling_faults`; notebook 07 shows the same table for the run's model):

    .venv/bin/python -m studies.sampling_faults --data-dir data/processed/quick --model <model folder>

Everything is on the **validation** split (faces, conditions) with seeds apart from notebooks 06 and 07's. The
recogniser is notebook 07's when ``<data-dir>/evaluation/recogniser.safetensors`` exists, else one trained here
as notebook 05 trains its own (the first grid candidate, 16 x 20). Writes ``reports/studies/sampling_faults.json``
(one row per fault and figure) and prints the table.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from phenoface.benchmarks import results_path
from phenoface.config import repo_root, write_json


def recogniser(data_dir: Path, seed: int = 0):
    from phenoface.cohort import load_split
    from phenoface.evaluation import Recogniser, choose_recogniser

    path = data_dir / "evaluation" / "recogniser.safetensors"
    if path.is_file():
        return Recogniser.load(path), "notebook 07's"
    train, val = load_split(data_dir, "train"), load_split(data_dir, "validation")
    rec, _ = choose_recogniser(train.images, train.table["disease_id"], val.images, val.table["disease_id"],
                               grid=[(16, 20)], seed=seed)
    return rec, "trained here (16x20)"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", type=Path, default=repo_root() / "data" / "processed" / "quick")
    ap.add_argument("--model", type=Path, default=None, help="model folder (default: <data-dir>/model)")
    ap.add_argument("--per-disease", type=int, default=8)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--guidance", type=float, default=7.5)
    ap.add_argument("--seed", type=int, default=31)
    ap.add_argument("--faults", nargs="*", default=None)
    ap.add_argument("--out", type=Path, default=results_path("studies", "sampling_faults"))
    a = ap.parse_args(argv)

    import pandas as pd

    from phenoface.cohort import load_split
    from phenoface.evaluation.faults import FAULTS, sampling_faults
    from phenoface.model import load_model
    from phenoface.profiles import load_profiles

    t0 = time.perf_counter()
    model = load_model(a.model or a.data_dir / "model")
    rec, source = recogniser(a.data_dir)
    val = load_split(a.data_dir, "validation")
    profiles = {p.disease_id: p for p in load_profiles(a.data_dir / "profiles" / "kg_profiles.json")}
    table = sampling_faults(model, val, rec, a.data_dir, profiles, per_disease=a.per_disease, steps=a.steps,
                            guidance=a.guidance, seed=a.seed, faults=a.faults or FAULTS, progress=True)
    table.insert(0, "model", str(a.model or a.data_dir / "model"))
    table["conditioning_format"] = int(getattr(model.encoder, "version", 1))
    table["recogniser"] = source
    write_json(a.out, {"model": str(a.model or a.data_dir / "model"), "recogniser": source,
                       "conditioning_format": int(getattr(model.encoder, "version", 1)),
                       "faults": table.drop(columns=["model", "recogniser"]).to_dict("records")})
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(table.drop(columns=["model", "recogniser"]).round(3).to_string(index=False))
    print(f"{time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
