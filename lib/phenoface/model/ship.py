"""The one command that makes the shipped quick generator checkpoint::

    python -m phenoface.model.ship            # notebook 05 with TRAIN_MODEL: true on the quick profile, then fp16
                                              # into lib/phenoface/assets/generator_quick (hours on 2 CPU cores)

It runs notebooks 00-04 first when their artifacts are missing (the runner skips unchanged steps), trains
through notebook 05 (so the executed notebook in ``reports/`` shows the whole training), and copies
``<DATA_DIR>/model`` with fp16 tensors. Pieces: a killed run resumes from its Lightning checkpoints in
``<DATA_DIR>/model_training`` when started again with the same parameters.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .pipeline import SHIPPED


def main(argv=None) -> int:
    from ..config import load_params, repo_root, resolve
    from ..runner import run
    from .golden import write_golden
    from .pipeline import choose_weights
    from .store import convert

    ap = argparse.ArgumentParser(prog="python -m phenoface.model.ship", description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="quick")
    ap.add_argument("--timeout", type=int, default=6 * 3600, help="per-cell timeout of notebook 05, seconds")
    ap.add_argument("--out", type=Path, default=SHIPPED)
    ap.add_argument("--set", nargs="*", default=[], metavar="NAME=VALUE",
                    help="more parameter overrides, e.g. UNET_STEPS=4000 AE_STEPS=1500")
    ap.add_argument("--reuse-inputs", action="store_true",
                    help="train on notebooks 00-04's artifacts in DATA_DIR as they are, without rerunning a step "
                         "whose code changed (they must exist)")
    a = ap.parse_args(argv)
    import yaml

    overrides = {"TRAIN_MODEL": True, **{k: yaml.safe_load(v) for k, v in (item.split("=", 1) for item in a.set)}}
    if not a.reuse_inputs:
        run(a.profile, only=["00", "02", "03", "04"], timeout=a.timeout)
    log = run(a.profile, only=["05"], force=True, timeout=a.timeout, overrides=overrides)
    if log.get("failed"):
        print("notebook 05 failed: nothing shipped (see reports/05_train_conditioned_diffusion.html)")
        return 1
    params = load_params(a.profile)
    data_dir = resolve(params["DATA_DIR"], repo_root() / "notebooks")
    # EMA or the last online weights, whichever denoises validation faces better (recorded in the card)
    chosen = choose_weights(data_dir / "model", data_dir / "model_training", data_dir, seed=int(params["SEED"]))
    print(f"weights: {chosen['chosen']} (validation denoising loss {chosen['losses']})")
    convert(data_dir / "model", a.out)
    write_golden(a.out)  # on the fp16 weights as shipped: what an install must reproduce
    print(f"shipped: {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
