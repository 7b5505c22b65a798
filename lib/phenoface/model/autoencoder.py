"""Training the autoencoder (the generator's latent space) as a LightningModule.

Loss: MSE + L1 + an image-gradient term (edges: at 64 px a phenotype is a few pixels and a plain MSE
blurs them away first) + a tiny KL, as latent-diffusion autoencoders use to keep the latent tame. No
adversarial or perceptual term: no LPIPS weights exist offline.
"""

from __future__ import annotations

import lightning as L
import torch
import torch.nn.functional as F

from ..pixels import to_model_range
from .components import build_autoencoder


def gradient_loss(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    dx = lambda x: x[..., :, 1:] - x[..., :, :-1]  # noqa: E731
    dy = lambda x: x[..., 1:, :] - x[..., :-1, :]  # noqa: E731
    return F.l1_loss(dx(a), dx(b)) + F.l1_loss(dy(a), dy(b))


class AutoencoderModule(L.LightningModule):
    def __init__(self, config: dict, lr: float = 2e-3, kl_weight: float = 1e-6, grad_weight: float = 0.5,
                 total_steps: int = 1000):
        super().__init__()
        self.save_hyperparameters()
        self.vae = build_autoencoder(config)

    def forward(self, x):
        post = self.vae.encode(x).latent_dist
        return self.vae.decode(post.mode()).sample, post

    def _losses(self, batch):
        x = to_model_range(batch["image"])
        post = self.vae.encode(x).latent_dist
        rec = self.vae.decode(post.sample()).sample
        mse, l1, grad = F.mse_loss(rec, x), F.l1_loss(rec, x), gradient_loss(rec, x)
        kl = post.kl().mean() / x[0].numel()
        loss = mse + l1 + self.hparams.grad_weight * grad + self.hparams.kl_weight * kl
        psnr = 10 * torch.log10(4.0 / mse.detach().clamp(min=1e-10))  # peak-to-peak 2 in [-1, 1]
        return loss, {"mse": mse.detach(), "psnr": psnr, "kl": kl.detach()}

    def training_step(self, batch, _):
        loss, logs = self._losses(batch)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"autoencoder loss is {loss.item()} at step {self.global_step}: lower the "
                                     "learning rate or turn off mixed precision, then resume from the last checkpoint")
        self.log("ae_loss", loss, prog_bar=True)
        self.log_dict({f"ae_{k}": v for k, v in logs.items()}, prog_bar=False)
        return loss

    def validation_step(self, batch, _):
        loss, logs = self._losses(batch)
        self.log("ae_val_loss", loss, sync_dist=True)
        self.log("ae_val_psnr", logs["psnr"], prog_bar=True, sync_dist=True)

    def _schedule(self, opt):
        return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=self.hparams.lr, total_steps=max(self.hparams.total_steps, 2),
                                                   pct_start=0.1)

    def configure_optimizers(self):
        opt = torch.optim.AdamW(self.vae.parameters(), lr=self.hparams.lr, weight_decay=0.0)
        return [opt], [{"scheduler": self._schedule(opt), "interval": "step"}]

    def on_load_checkpoint(self, checkpoint):
        """Resuming with more (or fewer) steps than the run was started with: the one-cycle schedule is stretched
        to the new total, continuing from the step reached (a restored schedule would stop at its old total)."""
        states = checkpoint.get("lr_schedulers") or []
        total = max(self.hparams.total_steps, 2)
        done = int(checkpoint.get("global_step", 0))
        if states and states[0].get("total_steps") not in (None, total):
            if done >= total:
                raise ValueError(f"resuming at step {done} with AE_STEPS = {self.hparams.total_steps}: the run is already "
                                 "past that; raise AE_STEPS, or delete the training folder to start over")
            fresh = self._schedule(torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=self.hparams.lr)).state_dict()
            states[0].update(total_steps=fresh["total_steps"], _schedule_phases=fresh["_schedule_phases"])
