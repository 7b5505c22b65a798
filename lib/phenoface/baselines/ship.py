"""The one command that makes the shipped quick baselines (notebook 01 installs them)::

    python -m phenoface.baselines.ship                 # class and prompt, the quick profile's budget (CPU hours)
    python -m phenoface.baselines.ship --method class

For each method: train on the quick train split with the main model's step budget, batch and learning rate
(``UNET_STEPS``, ``GEN_BATCH``, ``GEN_LR``) and its zero-shot diseases left out, in the latent of the shipped
generator's autoencoder; keep EMA or online weights by validation denoising loss (as the main model); copy
fp16 to ``lib/phenoface/assets/baselines_quick/<method>``. A killed run resumes from its checkpoints.
"""

from __future__ import annotations

import argparse

from . import METHODS, SHIPPED_BASELINES, baseline_conditions, ship_baseline, train_baseline


def main(argv=None) -> int:
    from ..cohort import DISEASES, load_split
    from ..config import load_params, repo_root, resolve
    from ..model.pipeline import choose_weights
    from ..runner import run

    ap = argparse.ArgumentParser(prog="python -m phenoface.baselines.ship", description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="quick")
    ap.add_argument("--method", nargs="+", default=list(METHODS), choices=METHODS)
    ap.add_argument("--no-ship", action="store_true", help="train (and choose weights) only")
    a = ap.parse_args(argv)
    params = load_params(a.profile)
    data_dir = resolve(params["DATA_DIR"], repo_root() / "notebooks")
    if not (data_dir / "cohort").is_dir():
        run(a.profile, only=["00"])
    train = load_split(data_dir, "train")
    zero_shot = [d.strip() for d in str(params["ZERO_SHOT_DISEASES"]).split(",") if d.strip()]
    for method in a.method:
        out, work = data_dir / "baselines" / method, data_dir / "baselines_training" / method
        card = train_baseline(method, train.images, train.table, out, work, zero_shot=zero_shot, names=DISEASES,
                              unet_steps=int(params["UNET_STEPS"]), batch_size=int(params["GEN_BATCH"]),
                              lr=float(params["GEN_LR"]), seed=int(params["SEED"]),
                              params={k: params[k] for k in ("UNET_STEPS", "GEN_BATCH", "GEN_LR", "SEED", "ZERO_SHOT_DISEASES")})
        chosen = choose_weights(out, work, data_dir, seed=int(params["SEED"]), conditions=baseline_conditions)
        print(f"{method}: {card['unet']['steps']} steps in {card['seconds']:.0f} s; weights: {chosen['chosen']} "
              f"(validation denoising loss {chosen['losses']})")
        if not a.no_ship:
            print(f"shipped: {ship_baseline(out, method, SHIPPED_BASELINES / method)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
