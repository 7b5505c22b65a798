"""The profile-conditioned latent diffusion model (Stable Diffusion's shape, diffusers components).

    >>> from phenoface.model import load_model
    >>> model = load_model("data/processed/quick/model")   # the folder notebook 05 writes

:mod:`.components` builds the autoencoder and UNet from config, :mod:`.autoencoder` and :mod:`.diffusion`
are the LightningModules, :mod:`.data` the DataModule and the conditions, :mod:`.train` the Trainer set-up
and the CLI, :mod:`.store` the model folder, :mod:`.loading` reads a folder of either kind (the small model
or :mod:`.sd`'s Stable Diffusion + LoRA). Sampling is :mod:`phenoface.sampling`.
"""

from .loading import load_model
from .store import ConditionedModel, ModelMismatch, fingerprint, save_model

__all__ = ["ConditionedModel", "ModelMismatch", "fingerprint", "load_model", "save_model"]
