"""The packaged pixel instrument of the quick profile, and how it is rebuilt.

On 2 CPU cores the recipe below renders for about 2 minutes and trains for 34 (96,000 renders, 14 epochs;
the quick profile's whole run is about 20), and the 18,000-render, 6-epoch instrument that fitted in the run
measured far worse on test faces (mean per-term Pearson about 0.48 against 0.86 with a 48,000-render recipe).
So the quick profile ships this one, as the model issue does for the generator:
``lib/phenoface/assets/instrument_quick/`` (safetensors + JSON card, 0.6 MB). It is trained on
independent-term renders only (seed 3000: never the train, validation or test cohorts' people), and
notebook 04 still checks it on validation and reports it on test like a freshly trained one. Against the
64,000-render, 12-epoch recipe it replaced, on the validation cohort and renders (one view / six views):
weakest per-term Pearson 0.77 / 0.82 -> 0.84 / 0.87, mean 0.91 / 0.93 -> 0.93 / 0.94, image-profile
precision@k 0.97 / 0.94 -> 0.99 / 0.99. Rebuild it, after any change to the renderer, with::

    python -m phenoface.ship instrument                # about 36 min on 2 cores

The card records the renderer's source digest; loading refuses a checkpoint trained on another
renderer (its phenotypes would look different), naming this command.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

from ..cohort.independent import render_independent
from ..cohort.terms import TERM_IDS
from ..config import git_commit  # noqa: F401  (re-exported: model cards import it from here)
from .instrument import PhenotypeInstrument, train_instrument

FOLDER = Path(__file__).resolve().parents[1] / "assets" / "instrument_quick"
# Every file that decides what a render looks like (the terms, the face, the raster, the pose, identities).
RENDERER_FILES = ("table.py", "terms.py", "render.py", "features.py", "raster.py", "layout.py", "independent.py")
RECIPE = {"n": 96000, "epochs": 14, "width": 16, "seed": 0, "render_seed": 3000, "batch_size": 128, "lr": 3e-3}
COMMAND = "python -m phenoface.ship instrument"


def renderer_digest() -> str:
    """sha256 over the renderer's source files (line endings normalised): changes when a render would."""
    folder = Path(__file__).resolve().parents[1] / "cohort"
    h = hashlib.sha256()
    for name in RENDERER_FILES:
        h.update(name.encode())
        h.update((folder / name).read_bytes().replace(b"\r\n", b"\n"))
    return h.hexdigest()[:16]


def load_packaged(folder: Path | None = None) -> PhenotypeInstrument:
    """The packaged instrument; a clear error when it is missing or was trained on another renderer."""
    folder = Path(folder or FOLDER)
    if not (folder / "instrument.json").is_file():
        raise FileNotFoundError(f"No packaged phenotype instrument in {folder}: build it with `{COMMAND}` "
                                "(about 36 min on 2 cores) or set INSTRUMENT_SOURCE: train")
    inst = PhenotypeInstrument.load(folder)
    built_for, now = inst.meta.get("renderer"), renderer_digest()
    if built_for != now:
        raise ValueError(f"The packaged phenotype instrument was trained on renderer {built_for}, but the renderer "
                         f"is now {now} (lib/phenoface/cohort changed): its faces look different. Rebuild it with "
                         f"`{COMMAND}` (about 36 min on 2 cores) or set INSTRUMENT_SOURCE: train.")
    return inst


def build(folder: Path = FOLDER, progress: bool = True, **recipe) -> PhenotypeInstrument:
    """Render the training set, train with the recipe, save with a card (command, recipe, renderer digest,
    commit, seconds)."""
    r = {**RECIPE, **recipe}
    t0 = time.perf_counter()
    images, table = render_independent(r["n"], seed=r["render_seed"], size=64)
    render_s = time.perf_counter() - t0
    inst = train_instrument(images, table[TERM_IDS].to_numpy(), table["age"].to_numpy(), epochs=r["epochs"],
                            width=r["width"], seed=r["seed"], batch_size=r["batch_size"], lr=r["lr"],
                            progress=progress)
    inst.meta.update(renderer=renderer_digest(), recipe=r, command=COMMAND, render_seconds=round(render_s, 1),
                     commit=git_commit(), packaged=True)
    inst.save(folder)
    return inst
