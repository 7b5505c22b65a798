"""The model folder notebook 05 writes (``<DATA_DIR>/model``): writing it, its card and fingerprint, and
reading this project's own model back (:func:`phenoface.model.load_model` picks the kind).

Three safetensors files with JSON cards (through :mod:`phenoface.modelio`: nothing is unpickled) and a
``card.json`` that says how the model was made (code commit, fingerprint, parameters, seed, steps,
hardware, wall time, the training log and the figures it reached)::

    autoencoder.safetensors/.json   the AutoencoderKL (config in the card)
    unet.safetensors/.json          the UNet2DConditionModel (EMA weights)
    conditioning.safetensors/.json  the ConditionEncoder and the disease table (KG embeddings, profiles)
    card.json

The **fingerprint** names what the weights' meaning depends on: the cohort renderer (its digest), the
conditioning format the encoder was trained with, and :data:`MODEL_FORMAT` (pixel range, noise schedule,
latent scaling: bumped when the code reads weights differently). A refactor that changes none of these keeps
the checkpoint; :mod:`phenoface.model.golden` checks that the code still gives the outputs stored with it.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .. import modelio
from ..conditioning import VERSION, ConditionEncoder
from ..config import atomic_path, write_json
from ..phenotypes.packaged import renderer_digest
from .components import build_autoencoder, build_unet
from .data import DiseaseTable

KIND = "phenoface_diffusion"
REBUILD = ("re-run notebook 05_train_conditioned_diffusion (./run_all.sh --only 05 --force; "
           "with TRAIN_MODEL: true it trains, otherwise it installs the shipped checkpoint)")
MODEL_FORMAT = 1


def fingerprint(conditioning_format: int | None = None) -> str:
    """sha256 over the renderer digest, the conditioning format (default: the one this code trains) and
    :data:`MODEL_FORMAT`."""
    fmt = VERSION if conditioning_format is None else int(conditioning_format)
    h = hashlib.sha256(f"{renderer_digest()}|conditioning:{fmt}|model:{MODEL_FORMAT}".encode())
    return h.hexdigest()[:16]


def conditioning_format(folder) -> int:
    """The conditioning format a model folder was written with (1 where its card does not say)."""
    path = Path(folder) / "conditioning.json"
    if path.is_file():
        return int(json.loads(path.read_text()).get("format", 1))
    return 1


class ModelMismatch(ValueError):
    """A model folder made by other code (renderer or model): refused, never used silently."""


@dataclass
class ConditionedModel:
    """What generation needs: autoencoder, UNet, condition encoder, the disease table and the card."""

    vae: torch.nn.Module
    unet: torch.nn.Module
    encoder: torch.nn.Module
    diseases: DiseaseTable
    latent_scale: float
    image_size: int
    scheduler: dict
    card: dict = field(default_factory=dict)
    # the build configurations of 'autoencoder' and 'unet', so a model can be retrained in the same shape
    configs: dict = field(default_factory=dict)

    @property
    def method(self) -> str:
        """'profile' (the main model) or a baseline of notebook 01 ('class', 'prompt': disease token only)."""
        return self.card.get("method", "profile")

    @property
    def prediction_type(self) -> str:
        return self.scheduler.get("prediction_type", "epsilon")

    def __repr__(self):
        n = sum(p.numel() for m in (self.vae, self.unet, self.encoder) for p in m.parameters())
        return (f"ConditionedModel({self.image_size} px, {n / 1e6:.1f} M parameters, {len(self.diseases.ids)} diseases, "
                f"{self.card.get('source', 'unknown source')})")


def _state(module, dtype) -> dict:
    return {k: (v.to(dtype) if dtype is not None and v.is_floating_point() else v) for k, v in module.state_dict().items()}


def save_model(folder, module, diseases: DiseaseTable, card: dict, image_size: int, dtype=None) -> Path:
    """Write a trained :class:`~phenoface.model.diffusion.DiffusionModule` (its EMA weights) to ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    hp = module.hparams
    ema = module.ema.module
    modelio.save_model(folder / "autoencoder.safetensors", _state(module.vae, dtype), {"config": dict(hp.vae_config)},
                       kind=KIND + "/autoencoder")
    modelio.save_model(folder / "unet.safetensors", _state(ema["unet"], dtype), {"config": dict(hp.unet_config)},
                       kind=KIND + "/unet")
    save_conditioning(folder, ema["encoder"], diseases, dtype)
    write_card(folder, card, module.noise_scheduler, image_size, hp.latent_scale)
    return folder


def save_conditioning(folder, encoder, diseases: DiseaseTable, dtype=None) -> None:
    """The :class:`~phenoface.conditioning.ConditionEncoder` and the disease table (KG embeddings, profiles)."""
    cond = {f"encoder.{k}": v for k, v in _state(encoder, dtype).items()}
    cond |= {"diseases.embedding": torch.as_tensor(diseases.embedding), "diseases.profile": torch.as_tensor(diseases.profile)}
    modelio.save_model(Path(folder) / "conditioning.safetensors", cond,
                       {"kg_dim": int(diseases.kg_dim), "disease_ids": list(diseases.ids), "disease_names": diseases.names or {},
                        "format": int(getattr(encoder, "version", 1)), "amounts": getattr(encoder, "amounts", "tokens")},
                       kind=KIND + "/conditioning")


def write_card(folder, card: dict, noise_scheduler, image_size: int, latent_scale: float) -> None:
    scheduler = {k: v for k, v in dict(noise_scheduler.config).items() if not k.startswith("_")}
    write_json(Path(folder) / "card.json", {**card, "kind": KIND, "fingerprint": card.get("fingerprint") or fingerprint(),
                                            "image_size": int(image_size), "latent_scale": float(latent_scale),
                                            "scheduler": scheduler})


def check_fingerprint(card: dict, folder) -> None:
    now = fingerprint(conditioning_format(folder))
    if card.get("fingerprint") != now:
        raise ModelMismatch(f"{folder} was made by other code (fingerprint {card.get('fingerprint')}; this code is {now}): "
                            f"the renderer or the model changed, so its weights no longer fit. Retrain: {REBUILD}.")


def read_model_card(path, check: bool = True) -> dict:
    """The card of the model folder ``path`` (a folder notebook 05 wrote); ``check`` refuses a fingerprint
    mismatch. Which kind of model it is (``card["base"]``) decides how :func:`phenoface.model.load_model`
    builds it."""
    folder = Path(path)
    card_path = folder / "card.json"
    if not card_path.is_file():
        raise _no_model(folder)
    card = modelio.read_card(card_path)
    if card.get("kind") != KIND:
        raise modelio.ModelFileError(f"{card_path} is not a phenoface diffusion model card; {REBUILD}")
    if check:
        check_fingerprint(card, folder)
    return card


def load_small_model(folder, card: dict, dtype=torch.float32) -> ConditionedModel:
    """The model folder of this project's own autoencoder and UNet (built from the configs in their cards)."""
    folder = Path(folder)
    parts = {}
    for name in ("autoencoder", "unet"):
        parts[name] = modelio.load_model(folder / f"{name}.safetensors", kind=f"{KIND}/{name}", rebuild=REBUILD)
    (vae_t, vae_c), (unet_t, unet_c) = parts["autoencoder"], parts["unet"]
    vae = build_autoencoder(vae_c["config"])
    vae.load_state_dict(_cast(vae_t, dtype))
    unet = build_unet(unet_c["config"])
    unet.load_state_dict(_cast(unet_t, dtype))
    encoder, diseases = load_conditioning(folder, unet_c["config"]["cross_attention_dim"], dtype)
    for m in (vae, unet, encoder):
        m.eval().requires_grad_(False)
    return ConditionedModel(vae, unet, encoder, diseases, float(card["latent_scale"]), int(card["image_size"]),
                            dict(card["scheduler"]), card, {"autoencoder": vae_c["config"], "unet": unet_c["config"]})


def _no_model(folder: Path) -> FileNotFoundError:
    """Why there is no model at ``folder``: notebook 05 has not written it yet (the folder is in a DATA_DIR, which
    notebook 00 gave a cohort), or the path itself is wrong, which no rerun of notebook 05 would mend."""
    where = folder.resolve()
    if any((parent / "cohort").is_dir() for parent in (where.parent, where.parent.parent)):
        return FileNotFoundError(f"No generator in {folder} (card.json missing): {REBUILD}")
    what = "does not exist" if not folder.exists() else "holds no card.json, so it is no model folder"
    relative = "" if folder.is_absolute() else f" (that is {where}: a relative path is taken from {Path.cwd()})"
    return FileNotFoundError(f"No generator at {folder}: the folder {what}{relative}. Check the path: a model folder "
                             "is the one notebook 05 writes, <DATA_DIR>/model (the quick profile's is "
                             "data/processed/quick/model in the checkout, ../data/processed/quick/model from notebooks/).")


def _cast(tensors: dict, dtype) -> dict:
    tensors = dequantize(tensors)
    return {k: torch.as_tensor(v).to(dtype) if torch.as_tensor(v).is_floating_point() else torch.as_tensor(v)
            for k, v in tensors.items()}


# the parts a shipped checkpoint stores in int8 (the rest fp16): keeps the three shipped models under 30 MB
SHIPPED_INT8 = ("unet",)
SCALE = "::scale"  # the per-output-channel scale of an int8 weight is stored as "<name>::scale"


def quantize(tensors: dict, min_size: int = 1024) -> dict:
    """Weight-only int8 with one symmetric scale per output channel (dim 0) for the floating tensors of at least
    two dimensions and ``min_size`` values (convolution and linear weights); the rest are kept as fp16. Halves
    an fp16 checkpoint; :func:`dequantize` reads it back, and the golden check runs on what it reads."""
    out = {}
    for k, v in tensors.items():
        v = torch.as_tensor(v)
        if v.is_floating_point() and v.ndim >= 2 and v.numel() >= min_size:
            w = v.float().reshape(v.shape[0], -1)
            scale = (w.abs().amax(dim=1) / 127.0).clamp_min(1e-12)
            out[k] = torch.round(w / scale[:, None]).clamp(-127, 127).to(torch.int8).reshape(v.shape)
            out[k + SCALE] = scale.to(torch.float32)
        else:
            out[k] = v.to(torch.float16) if v.is_floating_point() else v
    return out


def dequantize(tensors: dict) -> dict:
    """The float tensors of a :func:`quantize` record (any other record passes through unchanged)."""
    if not any(k.endswith(SCALE) for k in tensors):
        return tensors
    out = {}
    for k, v in tensors.items():
        if k.endswith(SCALE):
            continue
        scale = tensors.get(k + SCALE)
        v = torch.as_tensor(v)
        out[k] = v.float() * torch.as_tensor(scale).float().reshape(-1, *([1] * (v.ndim - 1))) if scale is not None else v
    return out


def load_conditioning(folder, width: int, dtype=torch.float32):
    """(ConditionEncoder of token width ``width``, DiseaseTable) from ``conditioning.safetensors``."""
    cond_t, cond_c = modelio.load_model(Path(folder) / "conditioning.safetensors", kind=f"{KIND}/conditioning",
                                        rebuild=REBUILD)
    enc_state = _cast({k[len("encoder."):]: v for k, v in cond_t.items() if k.startswith("encoder.")}, dtype)
    encoder = ConditionEncoder(width, cond_c["kg_dim"], enc_state["term_text"], version=int(cond_c.get("format", 1)),
                               amounts=cond_c.get("amounts", "both"))
    encoder.load_state_dict(enc_state)
    diseases = DiseaseTable(cond_c["disease_ids"], torch.as_tensor(cond_t["diseases.embedding"]).float().numpy(),
                            torch.as_tensor(cond_t["diseases.profile"]).float().numpy(), cond_c.get("disease_names"))
    return encoder, diseases


def convert(source, target, dtype=torch.float16, parts=("autoencoder", "unet", "conditioning"),
            extras=("card.json", "training_samples.png", "golden.json"), int8=()) -> Path:
    """Copy a model folder's ``parts`` (and ``extras`` files) with floating-point tensors stored as ``dtype`` (the
    shipped checkpoints are fp16: half the size; :func:`~phenoface.model.load_model` casts back to float32), and
    the parts named in ``int8`` with their weights in int8 (:func:`quantize`: half again). Cards and the
    fingerprint are kept."""
    source, target = Path(source), Path(target)
    target.mkdir(parents=True, exist_ok=True)
    for name in parts:
        tensors, config = modelio.load_model(source / f"{name}.safetensors", kind=f"{KIND}/{name}", rebuild=REBUILD)
        tensors = dequantize(tensors)
        stored = quantize(tensors) if name in int8 else {k: v.to(dtype) if v.is_floating_point() else v
                                                          for k, v in tensors.items()}
        modelio.save_model(target / f"{name}.safetensors", stored, config, kind=f"{KIND}/{name}")
    for extra in extras:
        if (source / extra).is_file():
            with atomic_path(target / extra) as tmp:
                shutil.copyfile(source / extra, tmp)
    return target
