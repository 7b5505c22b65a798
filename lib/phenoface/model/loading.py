"""Reading a model folder of either kind: this project's own small model (:mod:`.store`) or Stable Diffusion
with LoRA (:mod:`.sd`), as the folder's card says.

    >>> from phenoface.model import load_model
    >>> model = load_model("data/processed/quick/model")   # the folder notebook 05 writes
"""

from __future__ import annotations

from pathlib import Path

import torch

from .store import ConditionedModel, load_small_model, read_model_card


def load_model(path, check: bool = True, dtype=torch.float32) -> ConditionedModel:
    """The model in ``path`` (a folder notebook 05 wrote), in eval mode; ``check`` refuses a fingerprint mismatch."""
    folder = Path(path)
    card = read_model_card(folder, check)
    if card.get("base") == "stable-diffusion":
        from .sd import load_sd_model  # diffusers, transformers and peft load only for a Stable Diffusion folder

        return load_sd_model(folder, card, dtype)
    return load_small_model(folder, card, dtype)
