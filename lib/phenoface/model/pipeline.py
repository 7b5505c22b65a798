"""Notebook 05's steps as functions: assemble the training set from the run's artifacts, train the
generator (autoencoder, then UNet), or install the shipped quick checkpoint.

    >>> ts = training_set(data_dir, tags="measured", zero_shot=["OMIM:190685"])
    >>> card = train_generator(ts, data_dir / "model", work=data_dir / "model_training", size="quick", ...)
    >>> card = install_shipped(data_dir / "model")        # the quick profile's default

The shipped checkpoint (``lib/phenoface/assets/generator_quick``) is made by this same code with
``TRAIN_MODEL: true``; :func:`install_shipped` refuses it when its fingerprint does not match the code.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .. import modelio
from ..cohort import load_split
from ..cohort.independent import render_independent
from ..cohort.terms import TERM_IDS, TERMS
from ..conditioning import CONCEPTS, Condition, term_text_embeddings
from ..config import atomic_path, git_commit, write_json
from ..kg.embed import KGEmbedding
from ..labels import UNAFFECTED
from ..phenotypes import measure_images
from ..profiles import load_profiles
from .autoencoder import AutoencoderModule
from .components import autoencoder_config, n_params, size_config, unet_config
from .data import (DiseaseTable, FaceDataModule, concat_conditions, condition_arrays, profile_rows,
                   tags_from_measurements, unknown_disease_arrays)
from .diffusion import DiffusionModule
from .golden import check_golden
from .loading import load_model
from .patch import is_patch
from .quality import denoising_losses
from .store import KIND, REBUILD, check_fingerprint, fingerprint, save_model
from .train import encode_all, fit, hardware, latent_scale, load_training_state, patch_autoencoder, read_log, thin_log

SHIPPED = Path(__file__).resolve().parents[1] / "assets" / "generator_quick"
TAGS = ("measured", "true")


@dataclass
class TrainingSet:
    images: np.ndarray
    cond: dict
    diseases: DiseaseTable
    table: object
    held_out: list = field(default_factory=list)
    tags: str = "measured"
    # faces whose terms vary independently of any disease (renders; disease unknown): the UNet trains on them
    # too, so a term token cannot lean on the disease that usually comes with it
    extra_images: np.ndarray | None = None
    extra_cond: dict | None = None

    @property
    def n_extra(self) -> int:
        return 0 if self.extra_images is None else len(self.extra_images)

    def unet_data(self) -> tuple[np.ndarray, dict]:
        """(images, condition arrays) the UNet trains on: the cohort's faces, then the independent renders."""
        if not self.n_extra:
            return self.images, self.cond
        return np.concatenate([self.images, self.extra_images]), concat_conditions(self.cond, self.extra_cond)

    def __len__(self):
        return len(self.images)


def disease_table(data_dir, diseases, zero_shot=()) -> DiseaseTable:
    """The cohort diseases' KG embeddings (notebook 02) and fused profiles (notebook 04, else 03, else 02).
    A zero-shot disease takes its **KG** profile: notebook 04's image evidence came from its faces, which a
    zero-shot disease must not have been shown."""
    data_dir = Path(data_dir)
    emb = KGEmbedding.load(data_dir / "kg" / "embedding").entity_embeddings()
    folder = data_dir / "profiles"
    found = [folder / n for n in ("image_profiles.json", "llm_profiles.json", "kg_profiles.json") if (folder / n).is_file()]
    if not found or not (folder / "kg_profiles.json").is_file():
        raise FileNotFoundError(f"no profiles in {folder}: run notebooks 02-04 first")
    profiles = {p.disease_id: p for p in load_profiles(found[0])}
    kg = {p.disease_id: p for p in load_profiles(folder / "kg_profiles.json")}
    profiles = {**profiles, **{d: kg[d] for d in zero_shot if d in kg}}
    return DiseaseTable.from_artifacts(emb, profiles, diseases)


PROFILE_FILES = {"kg": "kg_profiles.json", "llm": "llm_profiles.json", "image": "image_profiles.json"}


def swap_profiles(model, data_dir, source: str = "kg"):
    """``model`` with every disease's profile replaced by notebook 02's KG profile (``source="kg"``; or 03's
    LLM, 04's image-fused one) at **inference**: the KG embedding and the weights stay as trained. An
    evidence ablation of the trained model, not a model trained on KG profiles; its card says so."""
    if source not in PROFILE_FILES:
        raise ValueError(f"profile source {source!r}: choose one of {', '.join(PROFILE_FILES)}")
    path = Path(data_dir) / "profiles" / PROFILE_FILES[source]
    if not path.is_file():
        raise FileNotFoundError(f"no {source} profiles at {path}: run notebooks 02-04 first")
    profiles = {p.disease_id: p for p in load_profiles(path)}
    missing = [d for d in model.diseases.ids if d not in profiles]
    if missing:
        raise KeyError(f"{path.name} has no profile for {', '.join(missing)}")
    table = DiseaseTable(list(model.diseases.ids), model.diseases.embedding, profile_rows(profiles, model.diseases.ids),
                         model.diseases.names)
    return replace(model, diseases=table, card={**model.card, "profiles": f"{source} (swapped in at inference)"})


def training_set(data_dir, tags: str = "measured", zero_shot=(), split: str = "train", independent_n: int = 0,
                 seed: int = 0) -> TrainingSet:
    """The train split's faces with their conditions; ``zero_shot`` diseases' faces are left out (their
    KG embedding and profile stay in the table: they are drawn from those alone). ``independent_n`` renders of
    new people whose terms vary independently (``cohort.independent``) join the UNet's data with the disease
    unknown and their tags measured from pixels (or their truth with ``tags="true"``)."""
    if tags not in TAGS:
        raise ValueError(f"tags must be one of {TAGS}, got {tags!r}")
    cohort = load_split(data_dir, split)
    known = set(cohort.table["disease_id"])
    unknown = [d for d in zero_shot if d not in known or d == UNAFFECTED]
    if unknown:
        raise KeyError(f"ZERO_SHOT_DISEASES {unknown} are not cohort diseases; known: {', '.join(sorted(known - {UNAFFECTED}))}")
    diseases = disease_table(data_dir, sorted(known), zero_shot)
    keep = ~cohort.table["disease_id"].isin(list(zero_shot)).to_numpy()
    table = cohort.table[keep].reset_index(drop=True)
    images = cohort.images[keep]
    ts = TrainingSet(images, condition_arrays(table, diseases, _tags(images, table, tags, data_dir)), diseases, table,
                     list(zero_shot), tags)
    if independent_n > 0:
        extra, extra_table = render_independent(int(independent_n), seed=seed + 4242, size=images.shape[1])
        ts.extra_images = extra
        ts.extra_cond = unknown_disease_arrays(extra_table, diseases.kg_dim, _tags(extra, extra_table, tags, data_dir))
    return ts


def _tags(images, table, tags: str, data_dir) -> np.ndarray:
    if tags == "measured":
        return tags_from_measurements(measure_images(images, data_dir=data_dir))
    return table[TERM_IDS].to_numpy(np.float32)


def train_generator(ts: TrainingSet, out, work, size: str = "quick", image_size: int = 64, ae_steps: int = 3000,
                    unet_steps: int = 10000, batch_size: int = 64, lr: float = 1e-3, ae_lr: float = 2e-3,
                    prediction_type: str = "epsilon", seed: int = 0, devices="auto", num_nodes: int = 1,
                    strategy: str = "auto", precision: str = "auto", progress: bool = True, every: int = 250,
                    callbacks=(), params: dict | None = None, dtype=None,
                    autoencoder_from=None) -> dict:
    """Train the autoencoder, then the UNet in its latent (both resumable from ``work``); write the model
    folder ``out`` with its card. Returns the card. ``autoencoder_from`` (a model folder) reuses that model's
    autoencoder instead of training one (its configuration too); a size that patches pixels (:mod:`.patch`)
    has no autoencoder to train or reuse."""
    work = Path(work)
    cfg = size_config(size)
    vae_cfg, unet_cfg = autoencoder_config(cfg, image_size), unet_config(cfg, image_size)
    base = {"size": cfg, "image_size": image_size, "faces": len(ts), "seed": seed, "batch_size": batch_size,
            "tags": ts.tags, "held_out": list(ts.held_out)}
    kw = dict(devices=devices, num_nodes=num_nodes, strategy=strategy, precision=precision, progress=progress, every=every)
    torch.manual_seed(seed)
    t0 = time.perf_counter()
    if is_patch(vae_cfg):  # pixel space: nothing to train or reuse
        (vae, r_ae), ae_log = patch_autoencoder(vae_cfg), {}
    elif autoencoder_from:
        source = load_model(autoencoder_from, check=False)
        vae_cfg, vae = source.configs["autoencoder"], source.vae
        r_ae = {**source.card.get("autoencoder", {}), "reused_from": str(autoencoder_from)}
        ae_log = source.card.get("log", {}).get("autoencoder", {})
    else:
        ae = AutoencoderModule(vae_cfg, lr=ae_lr, total_steps=ae_steps)
        r_ae = fit(ae, FaceDataModule(ts.images, ts.cond, key="image", batch_size=batch_size, seed=seed),
                   work / "autoencoder", {**base, "part": "autoencoder", "ae_lr": ae_lr}, ae_steps, **kw)
        vae, ae_log = ae.vae, None
    images, cond = ts.unet_data()
    r_unet, dm = fit_unet(vae.eval(), vae_cfg, unet_cfg, images, cond, ts.diseases, work / "unet",
                          {**base, "part": "unet", "lr": lr, "prediction_type": prediction_type}, unet_steps,
                          batch_size=batch_size, lr=lr, prediction_type=prediction_type, seed=seed, trainer_kw=kw,
                          callbacks=list(callbacks))
    card = {"source": "trained", "fingerprint": fingerprint(dm.encoder.version), "commit": git_commit(),
            "params": params or {}, "seed": seed, "tags": ts.tags, "zero_shot": list(ts.held_out), "faces": len(ts),
            "independent_renders": ts.n_extra, "conditioning_format": dm.encoder.version,
            "concepts": {"shares": {k: share for k, (_, share) in CONCEPTS.items()}, "views_trained": dm.concepts_seen()}
            if dm.encoder.version >= 2 else {},
            "parameters": {"autoencoder": n_params(dm.vae), "unet": n_params(dm.unet), "conditioning": n_params(dm.encoder)},
            "autoencoder": r_ae, "unet": r_unet, "seconds": round(time.perf_counter() - t0, 1), "hardware": hardware(),
            "log": {"autoencoder": ae_log if ae_log is not None else thin_log(read_log(work / "autoencoder")),
                    "unet": thin_log(read_log(work / "unet"))},
            "figures": {}}
    if r_unet["rank"] == 0:
        save_model(out, dm, ts.diseases, card, image_size, dtype=dtype)
        grids = sorted((work / "samples").glob("step_*.png"))
        if grids:  # the last grid travels with the model (and with a shipped checkpoint)
            with atomic_path(Path(out) / "training_samples.png") as tmp:
                shutil.copyfile(grids[-1], tmp)
    return card


def fit_unet(vae, vae_cfg: dict, unet_cfg: dict, images: np.ndarray, cond: dict, diseases: DiseaseTable, folder,
             config: dict, unet_steps: int, batch_size: int = 64, lr: float = 1e-3, prediction_type: str = "epsilon",
             seed: int = 0, trainer_kw: dict | None = None, callbacks=(), scale: float | None = None,
             sample_weights=None):
    """Train a conditioned UNet in the latent of the (trained, frozen) autoencoder ``vae``, resumable from
    ``folder``; ``scale`` is the latent scale (None: 1 / std of these faces' latents). Returns (fit report, module).
    The profile-conditioned model and the baselines (notebook 01) go through this one function, so they
    differ only in their conditions."""
    lat = encode_all(vae, images)
    scale = latent_scale(lat) if scale is None else float(scale)
    dm = DiffusionModule(vae_cfg, unet_cfg, diseases.kg_dim, term_text_embeddings(), latent_scale=scale,
                         prediction_type=prediction_type, lr=lr, total_steps=unet_steps, warmup=min(200, unet_steps // 10))
    dm.vae.load_state_dict(vae.state_dict())
    data = FaceDataModule(lat * scale, cond, key="latent", batch_size=batch_size, seed=seed, sample_weights=sample_weights)
    report = fit(dm, data, folder, config, unet_steps, **{**(trainer_kw or {}), "callbacks": list(callbacks)})
    return report, dm


def add_figures(folder, figures: dict) -> dict:
    """Record measured figures (e.g. the autoencoder's top-1 ratio) in the model card."""
    path = Path(folder) / "card.json"
    card = json.loads(path.read_text())
    card["figures"] = {**card.get("figures", {}), **figures}
    write_json(path, card)
    return card


def install_shipped(out, source: Path = SHIPPED) -> dict:
    """Copy the shipped quick checkpoint into ``out`` after checking its fingerprint against this code."""
    source = Path(source)
    card_path = source / "card.json"
    if not card_path.is_file():
        raise FileNotFoundError(f"No shipped generator checkpoint in {source}: {REBUILD}, then copy <DATA_DIR>/model "
                                f"to {source} to ship it.")
    card = json.loads(card_path.read_text())
    check_fingerprint(card, source)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for f in sorted(source.iterdir()):
        if f.is_file():
            with atomic_path(out / f.name) as tmp:
                shutil.copyfile(f, tmp)
    # the copy loads, and this code gives the outputs stored with the weights (a behavioural check)
    check_golden(out, load_model(out))
    return {**card, "source": "shipped"}


def choose_weights(model_dir, work, data_dir, n: int = 256, seed: int = 0, conditions=None) -> dict:
    """EMA or the last online weights, whichever denoises **validation** faces better (the same noise and
    timesteps for both), written into ``model_dir`` and recorded in its card. ``conditions(table, diseases)``
    gives the validation faces' condition arrays (default: the main model's, with measured tags; the
    baselines pass theirs, with a ``keep`` mask).

    Why: torch's EMA averaging has no warm-up, so after a short run (a few thousand steps at decay 0.999) the
    average still holds a share of the random initialisation (0.999^2500 = 8 %). The choice is made on
    validation faces, never on test."""
    model_dir, work = Path(model_dir), Path(work)
    ckpt = work / "unet" / "last.ckpt"
    state = load_training_state(ckpt)["state_dict"]  # weights only; anything else is refused, naming the file
    online = {p: {k[len(p) + 1:]: v for k, v in state.items() if k.startswith(p + ".")} for p in ("unet", "encoder")}
    val = load_split(data_dir, "validation")
    ema_model = load_model(model_dir)
    keep = np.isin(val.table["disease_id"], ema_model.diseases.ids + [UNAFFECTED])
    idx = np.flatnonzero(keep)[:n]
    if conditions is None:
        tags = tags_from_measurements(measure_images(val.images[idx], data_dir=data_dir))
        arrays = condition_arrays(val.table.iloc[idx], ema_model.diseases, tags)
    else:
        arrays = dict(conditions(val.table.iloc[idx], ema_model.diseases))
    keep_mask = arrays.pop("keep", None)
    cond = Condition.from_arrays(**arrays)
    if keep_mask is not None:
        cond.keep &= torch.as_tensor(keep_mask, dtype=torch.bool)
    losses = {"ema": float(denoising_losses(ema_model, val.images[idx], cond, seed=seed).mean())}
    online_model = load_model(model_dir)
    online_model.unet.load_state_dict(online["unet"])
    online_model.encoder.load_state_dict(online["encoder"])
    losses["online"] = float(denoising_losses(online_model, val.images[idx], cond, seed=seed).mean())
    chosen = min(losses, key=losses.get)
    if chosen == "online":
        _, unet_c = modelio.load_model(model_dir / "unet.safetensors", kind=f"{KIND}/unet")
        modelio.save_model(model_dir / "unet.safetensors", online["unet"], unet_c, kind=f"{KIND}/unet")
        cond_t, cond_c = modelio.load_model(model_dir / "conditioning.safetensors", kind=f"{KIND}/conditioning")
        cond_t = {**cond_t, **{f"encoder.{k}": v for k, v in online["encoder"].items()}}
        modelio.save_model(model_dir / "conditioning.safetensors", cond_t, cond_c, kind=f"{KIND}/conditioning")
    card = add_figures(model_dir, {"weights": chosen, "validation_denoising_loss": losses, "validation_faces": int(len(idx))})
    return {"chosen": chosen, "losses": losses, "card": card}


def tag_agreement(ts: TrainingSet) -> pd.Series:
    """Per term (named): Pearson over the training faces between the cohort's true intensity and the tag the
    generator is conditioned on (NaN where the truth or the tag does not vary): it can only learn what its tags
    say."""
    truth = ts.table[TERM_IDS].to_numpy(float)
    with np.errstate(invalid="ignore", divide="ignore"):  # a constant tag gives NaN, said in the docstring
        return pd.Series({TERMS[t]: np.corrcoef(truth[:, i], ts.cond["terms"][:, i])[0, 1] if truth[:, i].std() > 0
                          else np.nan for i, t in enumerate(TERM_IDS)}, name="Pearson(true, tag)")


def card_summary(card: dict, source: str) -> pd.Series:
    """The model card's provenance and sizes, one line each (``source``: trained or shipped)."""
    return pd.Series({"source": source, "made by commit": card.get("commit"), "fingerprint": card.get("fingerprint"),
                      "condition tags": card.get("tags"), "zero-shot diseases": ", ".join(card.get("zero_shot", [])),
                      "base model": card.get("sd_model_path", "none: the small model, trained from scratch"),
                      "training faces": card.get("faces"), "autoencoder steps": card["autoencoder"]["steps"],
                      "UNet steps": card["unet"]["steps"], "wall time (s)": card.get("seconds"),
                      "hardware": card.get("hardware"), "parameters": card.get("parameters")}, name="model card")
