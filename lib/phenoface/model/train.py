"""Training the generator with the Lightning Trainer: the autoencoder first, then the conditioned UNet in
its latent. Checkpoints every few steps and resume (a long CPU run can be done in pieces); bf16 autocast
where the hardware has it; the same call runs DDP on several GPUs or nodes (``devices``, ``num_nodes``).

Resume checkpoints are Lightning's own ``.ckpt`` training state (optimizer, EMA, step), written and read
only by this module inside the run's folder; the *model* it hands on is written with :mod:`phenoface.modelio`
(safetensors). They are read only with ``torch.load(weights_only=True)`` (:func:`load_training_state`):
tensors and plain values, never objects, so a planted ``last.ckpt`` cannot run code; one that needs more is
refused, naming the file and how to start over. Before resuming, ``run.json`` beside the checkpoints is
compared with the configuration asked for: a different model is refused and nothing is overwritten.

    python -m phenoface.model.train --out /tmp/g --size tiny --faces 64 --ae-steps 20 --unet-steps 20 \\
        --devices 2 --strategy ddp        # two CPU processes (gloo); what the DDP test runs
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np

from ..cohort import Cohort
from ..cohort.terms import TERM_IDS
from ..conditioning import term_text_embeddings
from ..config import write_json
from ..pixels import to_model_range
from .autoencoder import AutoencoderModule
from .components import autoencoder_config, build_autoencoder, size_config, unet_config
from .data import DiseaseTable, FaceDataModule, condition_arrays
from .diffusion import DiffusionModule
from .patch import is_patch
from .store import save_model


class CheckpointMismatch(ValueError):
    """Resuming from checkpoints of another configuration: refused, nothing overwritten."""


class UnsafeCheckpoint(ValueError):
    """A training checkpoint that a weights-only load cannot read: refused, because a full unpickle could run
    code (or the file is not a checkpoint at all)."""


def load_training_state(path) -> dict:
    """A resume checkpoint (Lightning's training state), read with ``weights_only=True``: tensors, numbers,
    strings and containers, never arbitrary objects. The explicit argument also wins over
    ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD``. Anything else is refused with :class:`UnsafeCheckpoint`, naming the
    file and how to start the training over, never with torch's hint to unpickle it."""
    import pickle
    import re

    import torch

    path = Path(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, TypeError, AttributeError) as err:
        # torch's own message goes on to suggest allowlisting or weights_only=False; only the cause is kept
        text = str(err)
        found = re.search(r"Unsupported global: GLOBAL (\S+)", text)
        cause = re.search(r"WeightsUnpickler error:\s*([^\n]+)", text)
        why = (f"it would import {found.group(1)}, which is not a tensor or a plain value" if found else
               f"not a torch checkpoint: {cause.group(1).strip()}" if cause else
               f"{type(err).__name__}: {text.splitlines()[0][:120] if text else ''}")
        raise UnsafeCheckpoint(
            f"Refused to resume from {path}: it is not training state a weights-only load can read ({why}). "
            "Checkpoints are read as tensors and plain values only, because unpickling anything more could run "
            f"arbitrary code. If this training run's checkpoints are yours, delete {path.parent} and train again "
            "from the start (notebook 05 with TRAIN_MODEL: true, or notebook 01 with TRAIN_BASELINES: true: "
            "./run_all.sh --only 05 --force); never load a checkpoint from elsewhere.") from None


def precision_for(precision: str = "auto") -> str:
    import torch

    if precision != "auto":
        return precision
    if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return "bf16-mixed"
    return "32-true"  # CPU bf16 autocast is slower than fp32 on most CPUs (see bench/)


def _resume_path(folder: Path, config: dict) -> str | None:
    """'last.ckpt' to resume from, None to start; refuses checkpoints of another configuration."""
    run = folder / "run.json"
    last = folder / "last.ckpt"
    if run.is_file():
        before = json.loads(run.read_text())
        if before != json.loads(json.dumps(config)):
            diff = sorted(k for k in set(before) | set(config) if before.get(k) != json.loads(json.dumps(config)).get(k))
            raise CheckpointMismatch(f"{folder} holds checkpoints of another configuration (differs in: {', '.join(diff)}). "
                                     "Nothing was overwritten: choose another output folder, or delete that one to start over.")
    else:
        write_json(run, config)
    return str(last) if last.is_file() else None


def make_trainer(folder: Path, max_steps: int, devices="auto", num_nodes: int = 1, strategy: str = "auto",
                 precision: str = "auto", progress: bool = True, every: int = 50, val_every: int | None = None,
                 callbacks=(), accelerator: str = "auto"):
    import lightning as L
    from lightning.pytorch.callbacks import ModelCheckpoint
    from lightning.pytorch.loggers import CSVLogger

    # no version counter: a folder copied or moved elsewhere (its checkpoint remembers the old absolute path)
    # must keep writing last.ckpt, not last-v1.ckpt beside a stale last.ckpt that the next resume would read
    ckpt = ModelCheckpoint(dirpath=folder, filename="step{step}", save_last=True, every_n_train_steps=max(1, every),
                           save_top_k=1, monitor="step", mode="max", auto_insert_metric_name=False,
                           enable_version_counter=False)
    return L.Trainer(default_root_dir=folder, max_steps=int(max_steps), max_epochs=-1, accelerator=accelerator,
                     devices=devices, num_nodes=num_nodes, strategy=strategy, precision=precision_for(precision),
                     gradient_clip_val=1.0, callbacks=[ckpt, *callbacks], logger=CSVLogger(folder, name="log"),
                     enable_progress_bar=progress, enable_model_summary=False, log_every_n_steps=max(1, min(every, 10)),
                     val_check_interval=val_every if val_every else None, check_val_every_n_epoch=None if val_every else 1,
                     num_sanity_val_steps=0, deterministic=False)


def read_log(folder: Path) -> "dict[str, list]":
    """The CSV logger's metrics of every piece of a resumed run, in order, as {column: values}
    (step-aligned; NaN where a row lacks a column). Each piece logs to its own version folder, because
    the CSV logger would otherwise replace an earlier piece's file."""
    import pandas as pd

    pieces = sorted((Path(folder) / "log").glob("version_*/metrics.csv"), key=lambda p: int(p.parent.name.split("_")[1]))
    if not pieces:
        return {}
    df = pd.concat([pd.read_csv(p) for p in pieces], ignore_index=True)
    return {c: df[c].tolist() for c in df.columns}


def fit(module, data, folder, config: dict, max_steps: int, **trainer_kw) -> dict:
    """Fit ``module`` on ``data`` for ``max_steps`` with checkpoints in ``folder``, resuming when possible."""
    import lightning as L

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    resume = _resume_path(folder, config)  # a larger max_steps continues the same run
    if resume is not None:
        load_training_state(resume)  # refuse a planted or foreign checkpoint before Lightning opens it
    L.seed_everything(int(config.get("seed", 0)), workers=True, verbose=False)
    trainer = make_trainer(folder, max_steps, **trainer_kw)
    t0 = time.perf_counter()
    trainer.fit(module, datamodule=data, ckpt_path=resume, weights_only=True)
    return {"steps": int(trainer.global_step), "seconds": round(time.perf_counter() - t0, 1), "resumed": resume is not None,
            "world_size": int(trainer.world_size), "precision": str(trainer.precision), "rank": int(trainer.global_rank)}


def hardware() -> dict:
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads(), "gpu": gpu,
            "torch": torch.__version__}


def latent_scale(latents: np.ndarray) -> float:
    """1 / std of the training latents, as SD's scaling factor makes the latent unit-variance."""
    return float(1.0 / max(float(np.std(latents)), 1e-6))


def encode_all(vae, images: np.ndarray, batch_size: int = 128) -> np.ndarray:
    import torch

    out = []
    with torch.no_grad():
        for i in range(0, len(images), batch_size):
            x = to_model_range(torch.as_tensor(images[i:i + batch_size]))
            out.append(vae.encode(x).latent_dist.mode().numpy())
    return np.concatenate(out) if out else np.zeros((0,))


def thin_log(log: dict, keep: int = 400) -> dict:
    """At most ``keep`` rows of a training log (every k-th), NaN as None: small enough for a JSON card."""
    if not log:
        return {}
    n = len(next(iter(log.values())))
    idx = np.unique(np.linspace(0, n - 1, min(n, keep)).astype(int)) if n else []
    return {k: [None if (isinstance(v[i], float) and v[i] != v[i]) else v[i] for i in idx] for k, v in log.items()}


def patch_autoencoder(vae_cfg: dict):
    """(the pixel patching of ``vae_cfg``, its training report): in pixel space there is nothing to train."""
    return build_autoencoder(vae_cfg), {"kind": "patch", "patch_size": vae_cfg["patch_size"], "steps": 0, "seconds": 0.0}


def synthetic_training_set(n: int, size: int, seed: int):
    """A tiny random cohort for the CLI smoke / DDP test (renders, disease table from random embeddings)."""
    c = Cohort.generate(n=n, seed=seed, size=size)
    ids = [d for d in c.diseases if d != "UNAFFECTED"]
    rng = np.random.default_rng(seed)
    table = DiseaseTable(ids, rng.normal(size=(len(ids), 8)), np.clip(c.truth.reindex(ids)[TERM_IDS].to_numpy(), 0, 1))
    return c.images, condition_arrays(c.table, table, c.table[TERM_IDS].to_numpy()), table


def main(argv=None) -> int:
    import torch

    ap = argparse.ArgumentParser(prog="python -m phenoface.model.train", description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--size", default="tiny")
    ap.add_argument("--faces", type=int, default=64)
    ap.add_argument("--image-size", type=int, default=32)
    ap.add_argument("--ae-steps", type=int, default=10)
    ap.add_argument("--unet-steps", type=int, default=10)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--devices", default="1")
    ap.add_argument("--num-nodes", type=int, default=1)
    ap.add_argument("--strategy", default="auto")
    ap.add_argument("--accelerator", default="cpu")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--patch", type=int, default=0, help="diffuse in pixel space patched N x N (no autoencoder to train)")
    a = ap.parse_args(argv)
    devices = int(a.devices) if a.devices.isdigit() else a.devices
    torch.manual_seed(a.seed)
    images, cond, diseases = synthetic_training_set(a.faces, a.image_size, a.seed)
    cfg = size_config(a.size)
    if a.patch:
        cfg["autoencoder"] = {"kind": "patch", "patch_size": a.patch}
    vae_cfg, unet_cfg = autoencoder_config(cfg, a.image_size), unet_config(cfg, a.image_size)
    kw = dict(devices=devices, num_nodes=a.num_nodes, strategy=a.strategy, accelerator=a.accelerator, progress=False,
              every=max(1, a.ae_steps // 2))
    base = {"size": a.size, "image_size": a.image_size, "faces": a.faces, "seed": a.seed, "batch_size": a.batch_size}
    if is_patch(vae_cfg):
        vae, r_ae = patch_autoencoder(vae_cfg)
    else:
        ae = AutoencoderModule(vae_cfg, total_steps=a.ae_steps)
        data = FaceDataModule(images, cond, key="image", batch_size=a.batch_size, seed=a.seed)
        r_ae = fit(ae, data, a.out / "autoencoder", {**base, "part": "autoencoder"}, a.ae_steps, **kw)
        vae = ae.vae
    lat = encode_all(vae.eval(), images)
    dm = DiffusionModule(vae_cfg, unet_cfg, diseases.kg_dim, term_text_embeddings(), latent_scale=latent_scale(lat),
                         total_steps=a.unet_steps, warmup=2)
    dm.vae.load_state_dict(vae.state_dict())
    data = FaceDataModule(lat * dm.hparams.latent_scale, cond, key="latent", batch_size=a.batch_size, seed=a.seed)
    r_unet = fit(dm, data, a.out / "unet", {**base, "part": "unet"}, a.unet_steps,
                 **{**kw, "every": max(1, a.unet_steps // 2)})
    if r_unet["rank"] == 0:
        save_model(a.out / "model", dm, diseases, {"source": "trained", "autoencoder": r_ae, "unet": r_unet,
                                                   "hardware": hardware()}, a.image_size)
        print(json.dumps({"autoencoder": r_ae, "unet": r_unet}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
