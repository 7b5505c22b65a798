"""The one command that makes the checkpoints shipped in ``lib/phenoface/assets`` for the quick profile::

    python -m phenoface.ship generator            # notebook 05 with TRAIN_MODEL: true on the quick profile, then
                                                  # into assets/generator_quick (hours on 2 CPU cores)
    python -m phenoface.ship baselines            # class and prompt (notebook 01 installs them), CPU hours
    python -m phenoface.ship baselines --method class
    python -m phenoface.ship instrument           # the packaged pixel instrument, about 36 min on 2 cores
    python -m phenoface.ship replies --profile quick   # the embedded LLM's replies to notebook 03's prompts

``generator`` runs notebooks 00-04 first when their artifacts are missing (the runner skips unchanged steps),
trains through notebook 05 (so the executed notebook in ``reports/`` shows the whole training), keeps EMA or
the last online weights by validation denoising loss, and copies ``<DATA_DIR>/model`` (the UNet's weights in
int8, other tensors fp16: :data:`phenoface.model.store.SHIPPED_INT8`) and its golden outputs. A killed run
resumes from its Lightning checkpoints in ``<DATA_DIR>/model_training`` when started again with the same
parameters.

``baselines``: for each method, train on the quick train split with the main model's step budget, batch and
learning rate (``UNET_STEPS``, ``GEN_BATCH``, ``GEN_LR``) and its zero-shot diseases left out, in the latent of
the shipped generator's autoencoder; keep EMA or online weights by validation denoising loss (as the main
model); copy them as the generator is copied to ``assets/baselines_quick/<method>``, the autoencoder to
``assets/baselines_quick/autoencoder``. A killed run resumes from its checkpoints.

``instrument``: render the independent-term training set, train with the recipe
(:data:`phenoface.phenotypes.packaged.RECIPE`, each field an option) and save it with its card; rebuild it after
any change to the renderer.

``replies``: ask the embedded SmolLM2 every prompt notebook 03 asks with that profile, with no time budget
(:func:`phenoface.llm.packaged.build`; it needs notebook 02's ``kg_profiles.json`` of the profile), and write
``assets/llm_replies/<PROFILE>.json`` with its provenance. ``python -m phenoface.llm.packaged show`` says whether
the shipped files apply on this machine.

The notebooks run through ``python -m phenoface.runner`` as a child process, with this checkout's ``lib`` first
on ``PYTHONPATH``: the runner's records, locks and index are the same as for ``run_all.sh``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from .baselines import METHODS, SHIPPED_BASELINES, baseline_conditions, ship_baseline, train_baseline
from .cohort import DISEASES, load_split
from .config import repo_root, resolve
from .llm import packaged as llm_replies
from .model.golden import write_golden
from .model.pipeline import SHIPPED, choose_weights
from .model.store import SHIPPED_INT8, convert
from .params import load_params
from .phenotypes.packaged import FOLDER, RECIPE, build

PROG = "python -m phenoface.ship"
# the runner's exit codes that stop the ship before it trains: another run holds the step, or it was interrupted
RUNNER_STOPPED = (3, 130)


def runner_command(profile, only, force: bool = False, timeout: int | None = None, sets=()) -> list[str]:
    """The ``python -m phenoface.runner`` command line that runs notebooks ``only`` of ``profile``; ``sets``:
    parameter overrides as ``NAME=VALUE`` items (the runner reads each value as YAML)."""
    cmd = [sys.executable, "-m", "phenoface.runner", "--profile", str(profile), "--only", *only]
    if force:
        cmd.append("--force")
    if timeout is not None:
        cmd += ["--timeout", str(int(timeout))]
    if sets:
        cmd += ["--set", *sets]
    return cmd


def run_notebooks(profile, only, **kw) -> int:
    """Run notebooks through the runner (a child process on this checkout's ``lib``); its exit code."""
    lib = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (lib, os.environ.get("PYTHONPATH")) if p)}
    return subprocess.run(runner_command(profile, only, **kw), env=env).returncode


def data_dir_of(params: dict) -> Path:
    return resolve(params["DATA_DIR"], repo_root() / "notebooks")


def ship_generator(a) -> int:
    if not a.reuse_inputs:
        code = run_notebooks(a.profile, ["00", "02", "03", "04"], timeout=a.timeout)
        if code in RUNNER_STOPPED:
            return code
    if run_notebooks(a.profile, ["05"], force=True, timeout=a.timeout, sets=["TRAIN_MODEL=true", *a.set]) != 0:
        print("notebook 05 failed: nothing shipped (see reports/05_train_conditioned_diffusion.html)")
        return 1
    params = load_params(a.profile)
    data_dir = data_dir_of(params)
    # EMA or the last online weights, whichever denoises validation faces better (recorded in the card)
    chosen = choose_weights(data_dir / "model", data_dir / "model_training", data_dir, seed=int(params["SEED"]))
    print(f"weights: {chosen['chosen']} (validation denoising loss {chosen['losses']})")
    convert(data_dir / "model", a.out, int8=SHIPPED_INT8)
    write_golden(a.out)  # on the weights as shipped: what an install must reproduce
    print(f"shipped: {a.out}")
    return 0


def ship_baselines(a) -> int:
    params = load_params(a.profile)
    data_dir = data_dir_of(params)
    if not (data_dir / "cohort").is_dir():
        code = run_notebooks(a.profile, ["00"])
        if code in RUNNER_STOPPED:
            return code
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


def ship_instrument(a) -> int:
    recipe = {name: getattr(a, name) for name in RECIPE}
    inst = build(a.out, **recipe)
    print(f"{inst} trained in {inst.meta['train_seconds']:.0f} s on {recipe['n']} renders; saved to {a.out}")
    return 0


def ship_replies(a) -> int:
    command = f"{PROG} replies --profile {a.profile}" + (f" --kg-profiles {a.kg_profiles}" if a.kg_profiles else "")
    path = llm_replies.build(a.profile, a.kg_profiles, a.out, command)
    prov = llm_replies.read_file(path)["provenance"]
    print(f"{path}: {prov['replies']} replies to {prov['prompts']} prompts in {prov['seconds']} s")
    return 0


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="what", required=True, metavar="{generator,baselines,instrument,replies}")

    g = sub.add_parser("generator", help="notebook 05 with TRAIN_MODEL: true, then into assets/generator_quick")
    g.add_argument("--profile", default="quick")
    g.add_argument("--timeout", type=int, default=6 * 3600, help="per-cell timeout of notebook 05, seconds")
    g.add_argument("--out", type=Path, default=SHIPPED)
    g.add_argument("--set", nargs="*", default=[], metavar="NAME=VALUE",
                   help="more parameter overrides, e.g. UNET_STEPS=4000 AE_STEPS=1500")
    g.add_argument("--reuse-inputs", action="store_true",
                   help="train on notebooks 00-04's artifacts in DATA_DIR as they are, without rerunning a step "
                        "whose code changed (they must exist)")
    g.set_defaults(ship=ship_generator)

    b = sub.add_parser("baselines", help="the class and prompt baselines into assets/baselines_quick")
    b.add_argument("--profile", default="quick")
    b.add_argument("--method", nargs="+", default=list(METHODS), choices=METHODS)
    b.add_argument("--no-ship", action="store_true", help="train (and choose weights) only")
    b.set_defaults(ship=ship_baselines)

    i = sub.add_parser("instrument", help="the packaged pixel instrument into assets/instrument_quick")
    i.add_argument("--out", type=Path, default=FOLDER)
    for name, value in RECIPE.items():
        i.add_argument(f"--{name.replace('_', '-')}", type=type(value), default=value)
    i.set_defaults(ship=ship_instrument)

    r = sub.add_parser("replies", help="the embedded LLM's replies to notebook 03's prompts into assets/llm_replies")
    r.add_argument("--profile", required=True, help="profile name or YAML file (its PROFILE names the file)")
    r.add_argument("--kg-profiles", default=None, help="notebook 02's kg_profiles.json (default: the profile's)")
    r.add_argument("--out", type=Path, default=llm_replies.FOLDER, help="folder to write <PROFILE>.json into")
    r.set_defaults(ship=ship_replies)
    return ap


def main(argv=None) -> int:
    a = parser().parse_args(argv)
    return a.ship(a)


if __name__ == "__main__":
    raise SystemExit(main())
