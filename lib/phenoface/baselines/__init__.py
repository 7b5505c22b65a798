"""Literature baselines, trained like the profile-conditioned model (same UNet size, data split, step
budget and autoencoder) so that a comparison compares methods, not budgets:

- ``class``: **GestaltGAN-style class-conditional**: one learned token per disease and one for unaffected
  faces, nothing else; class-balanced sampling (GestaltGAN oversamples rare syndromes);
- ``prompt``: **prompt-only**: the disease name as text ("a face of a person with Noonan syndrome"), its
  MiniLM embedding as the only token: no KG, LLM or image evidence, no age, no terms (what a prompt or
  per-disease DreamBooth user gets).

Both reuse the project's :class:`~phenoface.conditioning.ConditionEncoder` with every group but ``disease``
switched off (its null token, in training and sampling), and a disease "embedding" that is a one-hot class
(``class``) or the name's text embedding (``prompt``). So the UNet, the tokens' width, the noise schedule and
the training loop are the same code as the main model's; only what conditions it differs.

    >>> card = train_baseline("class", train_split, out, work, unet_steps=2500)    # notebook 01, TRAIN_BASELINES
    >>> install_baseline("prompt", data_dir / "baselines" / "prompt")              # the shipped quick checkpoint
    >>> generate(load_model(data_dir / "baselines" / "class"), disease="OMIM:190685", n=8)   # plain CFG
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from ..cohort.terms import TERM_IDS
from ..conditioning import GROUPS
from ..config import atomic_path, git_commit
from ..labels import UNAFFECTED
from ..llm.terms import embed
from ..model.components import n_params
from ..model.data import DiseaseTable, condition_arrays
from ..model.golden import FILE, check_golden, write_golden
from ..model.loading import load_model
from ..model.pipeline import SHIPPED, fit_unet
from ..model.store import SHIPPED_INT8, check_fingerprint, convert, fingerprint, save_model
from ..model.train import hardware

METHODS = ("class", "prompt")
SHIPPED_BASELINES = SHIPPED.parent / "baselines_quick"
PROMPT = "a face of a person with {name}"
UNAFFECTED_PROMPT = "a face of an unaffected person"
# What a baseline's model folder holds of its own; the autoencoder it was trained in is shipped once for both
# (``<shipped baselines>/autoencoder``), as it may no longer be the generator's
OWN_FILES = ("unet.safetensors", "unet.json", "conditioning.safetensors", "conditioning.json", "card.json", "golden.json")
AUTOENCODER_FILES = ("autoencoder.safetensors", "autoencoder.json")


def _check_method(method: str) -> None:
    if method not in METHODS:
        raise ValueError(f"unknown baseline {method!r}; choose one of {', '.join(METHODS)}")


def baseline_table(method: str, disease_ids, names: dict | None = None) -> DiseaseTable:
    """The disease table a baseline is conditioned through: a row for every disease **and** for unaffected
    faces (a class of its own, as in GestaltGAN); no profile (zeros)."""
    _check_method(method)
    names = names or {}
    ids = [d for d in disease_ids if d != UNAFFECTED] + [UNAFFECTED]
    if method == "class":
        emb = np.eye(len(ids), dtype=np.float32)
    else:
        emb = embed([UNAFFECTED_PROMPT if d == UNAFFECTED else PROMPT.format(name=names.get(d, d)) for d in ids])
    return DiseaseTable(ids, emb, np.zeros((len(ids), len(TERM_IDS)), np.float32),
                        {d: names.get(d, d) for d in ids})


def baseline_conditions(table, diseases: DiseaseTable) -> dict[str, np.ndarray]:
    """Per face: its class token only (every other group is its null token, ``keep`` False)."""
    n = len(table)
    cond = condition_arrays(table, diseases, np.zeros((n, len(TERM_IDS)), np.float32))
    keep = np.zeros((n, len(GROUPS)), bool)
    keep[:, GROUPS.index("disease")] = True
    return {**cond, "keep": keep}


def class_balance(labels) -> np.ndarray:
    """Sampling weight 1 / (faces of that class): every class is drawn equally often."""
    labels = np.asarray(labels, dtype=object)
    _, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    return 1.0 / counts[inverse]


def train_baseline(method: str, images: np.ndarray, table, out, work, autoencoder=SHIPPED, zero_shot=(),
                   names: dict | None = None, unet_steps: int = 2500, batch_size: int = 32, lr: float = 1e-3,
                   seed: int = 0, trainer_kw: dict | None = None, params: dict | None = None) -> dict:
    """Train baseline ``method`` on ``images`` / ``table`` (the train split) in the latent of the generator's
    autoencoder (``autoencoder``: a model folder), with its UNet configuration; ``zero_shot`` diseases are
    left out as for the main model. Writes the model folder ``out`` (autoencoder included) and returns its card."""
    _check_method(method)
    source = load_model(autoencoder)
    keep = ~np.isin(np.asarray(table["disease_id"], dtype=object), list(zero_shot))
    images, table = images[keep], table[keep].reset_index(drop=True)
    diseases = baseline_table(method, sorted(set(table["disease_id"]) | set(zero_shot)), names)
    cond = baseline_conditions(table, diseases)
    vae_config, unet_config = source.configs["autoencoder"], source.configs["unet"]
    # cross-attention width and everything else as the main model; only the conditioning input differs
    config = {"method": method, "faces": int(len(table)), "seed": seed, "batch_size": batch_size, "lr": lr,
              "held_out": list(zero_shot), "autoencoder": source.card.get("fingerprint"), "part": "unet",
              "unet": unet_config}
    t0 = time.perf_counter()
    kw = {"progress": True, "every": 250, **(trainer_kw or {})}
    report, dm = fit_unet(source.vae, vae_config, unet_config, images, cond, diseases, Path(work) / "unet",
                          config, unet_steps, batch_size=batch_size, lr=lr, seed=seed, trainer_kw=kw,
                          scale=source.latent_scale, sample_weights=class_balance(table["disease_id"]))
    card = {"source": "trained", "method": method, "fingerprint": fingerprint(), "commit": git_commit(),
            "params": params or {}, "seed": seed, "faces": int(len(table)), "zero_shot": list(zero_shot),
            "autoencoder_from": str(source.card.get("source", "")) or "generator",
            "parameters": {"unet": n_params(dm.unet), "conditioning": n_params(dm.encoder)},
            "unet": report, "seconds": round(time.perf_counter() - t0, 1), "hardware": hardware(), "figures": {}}
    if report["rank"] == 0:
        save_model(out, dm, diseases, card, source.image_size)
    return card


def ship_baseline(model_dir, method: str, target: Path | None = None) -> Path:
    """Copy a trained baseline's own files (fp16, the UNet's weights int8) to the package
    (``assets/baselines_quick/<method>``) and the autoencoder it was trained in beside them (``../autoencoder``,
    shared by the methods)."""
    _check_method(method)
    target = convert(model_dir, Path(target or SHIPPED_BASELINES / method), parts=("unet", "conditioning"),
                     extras=("card.json",), int8=SHIPPED_INT8)
    shared = target.parent / "autoencoder"
    shared.mkdir(parents=True, exist_ok=True)
    for name in AUTOENCODER_FILES:
        with atomic_path(shared / name) as tmp:
            shutil.copyfile(Path(model_dir) / name, tmp)
    with tempfile.TemporaryDirectory() as tmp:  # the golden outputs of the weights as an install reads them
        for f in [target / n for n in OWN_FILES] + [shared / n for n in AUTOENCODER_FILES]:
            if f.is_file():
                shutil.copyfile(f, Path(tmp) / f.name)
        write_golden(tmp)
        with atomic_path(target / FILE) as out:
            shutil.copyfile(Path(tmp) / FILE, out)
    return target


def install_baseline(method: str, out, source: Path | None = None, autoencoder: Path | None = None) -> dict:
    """The shipped quick baseline ``method`` into ``out``, with the autoencoder it was trained in beside it
    (``autoencoder``: a folder holding it; default the shipped baselines' ``autoencoder`` folder); refused
    (naming the command that remakes it) when its fingerprint does not match this code."""
    _check_method(method)
    source = Path(source or SHIPPED_BASELINES / method)
    autoencoder = Path(autoencoder or source.parent / "autoencoder")
    card_path = source / "card.json"
    if not card_path.is_file():
        raise FileNotFoundError(f"No shipped {method} baseline in {source}: run notebook 01_baselines with "
                                "TRAIN_BASELINES: true, then python -m phenoface.ship baselines")
    card = json.loads(card_path.read_text())
    check_fingerprint(card, source)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files = [source / f for f in OWN_FILES] + [autoencoder / f for f in AUTOENCODER_FILES]
    for f in files:
        if f.is_file():
            with atomic_path(out / f.name) as tmp:
                shutil.copyfile(f, tmp)
    check_golden(out, load_model(out))
    return {**card, "source": "shipped"}


def is_baseline(model) -> bool:
    return getattr(model, "card", {}).get("method") in METHODS
