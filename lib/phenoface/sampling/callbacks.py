"""A Lightning callback for the generator's training: sample grids from the EMA weights every few steps, so a long
(background, CPU) run can be looked at while it trains. The caller passes it to ``train_generator(callbacks=...)``."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import numpy as np

from ..config import atomic_path
from ..labels import UNAFFECTED
from ..model.store import ConditionedModel
from . import generate


class SampleGrid(L.Callback):
    """Every ``every`` steps (rank 0 only): one face per disease (+ unaffected) from fixed seeds, saved as
    ``<folder>/step_<N>.png`` (the same noise every time, so successive grids show what training changed)."""

    def __init__(self, folder, diseases, image_size: int, every: int = 1000, steps: int = 20, max_rows: int = 12):
        self.folder, self.diseases, self.image_size = Path(folder), diseases, int(image_size)
        self.every, self.steps, self.max_rows = int(every), int(steps), int(max_rows)

    def on_train_batch_end(self, trainer, module, *_):
        step = trainer.global_step
        if self.every <= 0 or step == 0 or step % self.every or trainer.global_rank != 0:
            return
        self.save(module, step)

    def save(self, module, step: int) -> Path:
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt

        ema = module.ema.module
        model = ConditionedModel(module.vae, ema["unet"], ema["encoder"], self.diseases, float(module.hparams.latent_scale),
                                 self.image_size, dict(module.noise_scheduler.config))
        rows = [*self.diseases.ids[: self.max_rows - 1], UNAFFECTED]
        imgs = np.concatenate([generate(model, disease=d, age=np.array([4.0, 12.0, 30.0]), n=3, seed=0, steps=self.steps)
                               for d in rows])
        fig, axes = plt.subplots(len(rows), 3, figsize=(3.3, 1.1 * len(rows)), squeeze=False)
        for ax, im in zip(axes.ravel(), imgs):
            ax.imshow(im)
            ax.axis("off")
        fig.suptitle(f"step {step}", fontsize=8)
        self.folder.mkdir(parents=True, exist_ok=True)
        target = self.folder / f"step_{step:07d}.png"
        with atomic_path(target) as tmp:
            fig.savefig(tmp, dpi=80, format="png")
        plt.close(fig)
        return target
