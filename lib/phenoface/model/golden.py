"""A behavioural check of a model folder: fixed inputs, the outputs they gave when the model was made.

A file hash of the model code refuses a checkpoint after a refactor that changes nothing, and lets through
a change of meaning hidden in a file it does not hash. This check asks the model itself: the noise
prediction for fixed noisy latents, timesteps and conditions, and the decoding of a fixed latent, stored
beside the weights as ``golden.json`` when the model is written and compared within a tolerance when it is
installed or tested. Code that reads the weights differently (another token layout, another pixel range,
another architecture) moves these numbers; a pure refactor does not.

    >>> write_golden(folder)          # after training (the ship command does it)
    >>> check_golden(folder)          # raises GoldenMismatch, naming the largest difference
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from ..conditioning import Condition, unet_kwargs
from ..config import write_json
from .loading import load_model
from .store import REBUILD

FILE = "golden.json"
TOLERANCE = 2e-3  # fp16-stored weights are cast to float32: CPUs agree far closer than this
N = 4
VALUES = 24  # leading values kept per output (besides the summary statistics)


class GoldenMismatch(ValueError):
    """The model's outputs on the golden inputs differ from those stored with it."""


def golden_conditions(model, n: int = N):
    """Fixed conditions: the first diseases of the model's table, seeded term amounts, ages, sexes, severities;
    a disease-only baseline keeps its disease token alone."""
    rng = np.random.default_rng(1234)
    ids = [model.diseases.ids[i % len(model.diseases.ids)] for i in range(n)]
    emb, prof = model.diseases.lookup(ids)
    terms = (rng.random((n, model.diseases.profile.shape[1])) < 0.4) * rng.random((n, model.diseases.profile.shape[1]))
    cond = Condition.from_arrays(emb, prof, terms, [4.0, 12.0, 30.0, 60.0][:n], ["F", "M"] * (n // 2) + ["F"] * (n % 2),
                                 np.linspace(0.2, 1.0, n))
    return cond if model.method == "profile" else cond.only(("disease",))


@torch.no_grad()
def golden_outputs(model, n: int = N) -> dict:
    """{"eps": ..., "decoded": ...}: summary statistics and leading values of each output."""
    g = torch.Generator().manual_seed(99)
    c, s = model.unet.config.in_channels, model.unet.config.sample_size
    x = torch.randn((n, c, s, s), generator=g)
    t = torch.tensor([999, 700, 400, 100][:n])
    eps = model.unet(x, t, **unet_kwargs(model.encoder, golden_conditions(model, n))).sample
    out = {"eps": _summary(eps)}
    if hasattr(model.vae, "decode") and model.card.get("base") != "stable-diffusion":
        out["decoded"] = _summary(model.vae.decode(x[:2] / model.latent_scale).sample)
    return out


def _summary(a: torch.Tensor) -> dict:
    a = a.detach().float().cpu()
    return {"mean": float(a.mean()), "std": float(a.std()), "values": [round(float(v), 6) for v in a.flatten()[:VALUES]]}


def write_golden(folder) -> dict:
    """Compute the golden outputs of the model in ``folder`` and store them beside it."""
    outputs = golden_outputs(load_model(folder, check=False))
    write_json(Path(folder) / FILE, outputs)
    return outputs


def compare(stored: dict, now: dict, tolerance: float = TOLERANCE) -> float:
    """The largest absolute difference between two golden records (inf when their parts differ)."""
    if set(stored) != set(now):
        return float("inf")
    worst = 0.0
    for part in stored:
        a, b = stored[part], now[part]
        if len(a["values"]) != len(b["values"]):
            return float("inf")
        diffs = [abs(a["mean"] - b["mean"]), abs(a["std"] - b["std"]),
                 *np.abs(np.asarray(a["values"]) - np.asarray(b["values"])).tolist()]
        worst = max(worst, max(diffs))
    return worst


def check_golden(folder, model=None, tolerance: float = TOLERANCE) -> float:
    """Raise :class:`GoldenMismatch` when the model's golden outputs moved by more than ``tolerance``;
    returns the largest difference. A folder without ``golden.json`` is refused too: nothing vouches for it."""
    path = Path(folder) / FILE
    if not path.is_file():
        raise GoldenMismatch(f"{folder} has no {FILE}: nothing checks that this code reads its weights as they were "
                             f"trained. Retrain: {REBUILD}.")
    stored = json.loads(path.read_text())
    model = model if model is not None else load_model(folder, check=False)
    worst = compare(stored, golden_outputs(model))
    if not worst <= tolerance:
        raise GoldenMismatch(f"{folder}: this code's outputs on the model's golden inputs differ from those stored with it "
                             f"(largest difference {worst:.3g} > {tolerance:g}): the code reads these weights differently "
                             f"from how they were trained. Retrain: {REBUILD}.")
    return worst
