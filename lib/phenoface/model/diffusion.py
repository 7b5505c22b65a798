"""The profile-conditioned latent diffusion model as a LightningModule: a frozen autoencoder, a
``UNet2DConditionModel`` and the :class:`~phenoface.conditioning.ConditionEncoder` whose tokens it
cross-attends to.

Noise or v-prediction on diffusers' ``DDPMScheduler``; condition dropout by concept (format 2: each view is one
of :data:`~phenoface.conditioning.CONCEPTS`, counted in ``concept_counts``; format 1: per group), so guidance
has the partial predictions it asks for; an exponential moving average of the trained
weights (torch's ``AveragedModel`` with its EMA averaging function, kept in the checkpoint so a resumed
run continues it); a loss that turns NaN stops training with a message instead of writing NaN weights.
Gradient clipping, mixed precision, checkpoints, resume and DDP are the Lightning Trainer's.
"""

from __future__ import annotations

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from ..conditioning import CONCEPTS, VERSION, Condition, ConditionEncoder, drop_concepts, drop_groups, unet_kwargs
from ..pixels import to_model_range
from .components import build_autoencoder, build_unet

SCHEDULER = {"num_train_timesteps": 1000, "beta_schedule": "scaled_linear", "beta_start": 0.00085,
             "beta_end": 0.012, "clip_sample": False}
PREDICTIONS = ("epsilon", "v_prediction")


def batch_condition(batch: dict) -> Condition:
    return Condition(batch["disease_emb"], batch["profile"], batch["terms"], batch["age"], batch["sex"],
                     batch["severity"], batch.get("keep"), batch.get("known"), batch.get("unaffected"))


def with_added_embedding(unet_config: dict, encoder: ConditionEncoder) -> dict:
    """The UNet configuration with the projection class embedding a format-2 encoder feeds (unchanged for 1)."""
    if encoder.added_dim is None:
        return dict(unet_config)
    return {**unet_config, "class_embed_type": "projection", "projection_class_embeddings_input_dim": encoder.added_dim}


class DiffusionModule(L.LightningModule):
    def __init__(self, vae_config: dict, unet_config: dict, kg_dim: int, term_text, latent_scale: float = 1.0,
                 prediction_type: str = "epsilon", lr: float = 1e-3, ema_decay: float = 0.999,
                 p_group: float = 0.15, p_all: float = 0.1, total_steps: int = 1000, warmup: int = 100,
                 conditioning_version: int = VERSION, amounts: str = "both"):
        super().__init__()
        if prediction_type not in PREDICTIONS:
            raise ValueError(f"prediction_type must be one of {PREDICTIONS}, got {prediction_type!r}")
        self.save_hyperparameters(ignore=["term_text"])
        from diffusers import DDPMScheduler

        self.vae = build_autoencoder(vae_config).requires_grad_(False).eval()
        self.encoder = ConditionEncoder(unet_config["cross_attention_dim"], kg_dim, term_text, version=conditioning_version,
                                        amounts=amounts)
        self.hparams.unet_config = with_added_embedding(unet_config, self.encoder)
        self.unet = build_unet(self.hparams.unet_config)
        # views of each concept seen in training (format 2), recorded in the model card
        self.register_buffer("concept_counts", torch.zeros(len(CONCEPTS), dtype=torch.long))
        self.noise_scheduler = DDPMScheduler(**SCHEDULER, prediction_type=prediction_type)
        self.ema = AveragedModel(nn.ModuleDict({"unet": self.unet, "encoder": self.encoder}),
                                 multi_avg_fn=get_ema_multi_avg_fn(ema_decay), use_buffers=True).requires_grad_(False)

    def trained(self) -> nn.ModuleDict:
        return nn.ModuleDict({"unet": self.unet, "encoder": self.encoder})

    def train(self, mode: bool = True):
        super().train(mode)
        self.vae.eval()  # frozen: no dropout / norm statistics to update
        return self

    @torch.no_grad()
    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Images in [-1, 1] (B, 3, H, W) -> scaled latents (the autoencoder's posterior mean)."""
        return self.vae.encode(images).latent_dist.mode() * self.hparams.latent_scale

    def batch_latents(self, batch: dict) -> torch.Tensor:
        return batch["latent"] if "latent" in batch else self.encode(to_model_range(batch["image"]))

    def loss(self, latents: torch.Tensor, cond: Condition, generator: torch.Generator | None = None,
             timesteps: torch.Tensor | None = None, reduce: bool = True) -> torch.Tensor:
        noise = torch.randn(latents.shape, generator=generator, device=latents.device, dtype=latents.dtype)
        if timesteps is None:
            timesteps = torch.randint(0, self.noise_scheduler.config.num_train_timesteps, (len(latents),),
                                      generator=generator, device=latents.device)
        noisy = self.noise_scheduler.add_noise(latents, noise, timesteps)
        target = noise if self.hparams.prediction_type == "epsilon" else \
            self.noise_scheduler.get_velocity(latents, noise, timesteps)
        pred = self.unet(noisy, timesteps, **unet_kwargs(self.encoder, cond)).sample
        err = F.mse_loss(pred.float(), target.float(), reduction="none").mean(dim=(1, 2, 3))
        return err.mean() if reduce else err

    def training_step(self, batch, _):
        if self.encoder.version >= 2:
            cond, pick = drop_concepts(batch_condition(batch))
            self.concept_counts += torch.bincount(pick, minlength=len(CONCEPTS)).to(self.concept_counts.device)
        else:
            cond = drop_groups(batch_condition(batch), self.hparams.p_group, self.hparams.p_all)
        latents = self.batch_latents(batch)
        loss = self.loss(latents, cond)
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"diffusion loss is {loss.item()} at step {self.global_step}: training stopped before writing NaN "
                "weights. Lower the learning rate or turn off mixed precision (PRECISION: 32-true), then resume.")
        self.log("loss", loss, prog_bar=True)
        return loss

    def concepts_seen(self) -> dict:
        """{concept: views trained} (format 2; empty for format 1)."""
        if self.encoder.version < 2:
            return {}
        return {k: int(v) for k, v in zip(CONCEPTS, self.concept_counts.tolist())}

    def validation_step(self, batch, _):
        g = torch.Generator(device=self.device).manual_seed(0)  # the same noise every time: comparable curves
        latents = self.batch_latents(batch)
        self.log("val_loss", self.loss(latents, batch_condition(batch), generator=g), prog_bar=True, sync_dist=True)

    def on_train_batch_end(self, *_):
        self.ema.update_parameters(self.trained())

    def configure_optimizers(self):
        params = [p for p in self.trained().parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=self.hparams.lr, weight_decay=1e-2)
        warm = max(1, int(self.hparams.warmup))
        total = max(self.hparams.total_steps, warm + 1)
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: min(1.0, (s + 1) / warm) * max(0.05, 1 - max(0, s - warm) / (total - warm)))
        return [opt], [{"scheduler": sched, "interval": "step"}]
