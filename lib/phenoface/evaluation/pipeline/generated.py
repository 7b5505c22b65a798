"""Notebook 06's generated faces measured like the test faces: recogniser top-1 against the real faces',
age error, FD / KID, memorisation; the test faces through the generator's autoencoder are the ceiling."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ...model import load_model
from ...model.quality import reconstruct
from ...phenotypes import estimate_age
from ...sampling.generated_cohort import load_generated
from ...stats import bootstrap_ci, fmt_ci
from .. import figures as evfig
from .. import frechet_distance, kernel_distance
from ..generated import age_mae
from .base import StepResult, timed


@dataclass
class GeneratedResult(StepResult):
    model: object  # the generator (notebook 05)
    images: np.ndarray
    table: pd.DataFrame
    rec: dict  # recogniser.evaluate on conditioned faces
    top1_ci: tuple
    zero_shot_top1: float
    test_reconstructed: np.ndarray  # the test faces through the autoencoder
    autoencoder: dict  # recogniser.evaluate on them
    age: dict  # "generated" / "real" / "autoencoder" -> (MAE, MAE against shuffled ages)
    fd: float
    kid: float
    report: object  # the memorisation detector's report on the generated faces
    flagged: np.ndarray
    real: object = field(repr=False)  # the recogniser step (the real test faces' figures)
    train_images: np.ndarray = field(repr=False, default=None)
    names: dict = field(default_factory=dict)
    seconds: dict = field(default_factory=dict)

    def metrics(self) -> dict:
        real_top1 = self.real.top1
        return {"generated_top1": float(self.rec["top1"]), "generated_top1_ci": list(self.top1_ci),
                "generated_top5": float(self.rec["top5"]),
                "generated_top1_ratio": float(self.rec["top1"] / real_top1) if real_top1 > 0 else float("nan"),
                "generated_zero_shot_top1": float(self.zero_shot_top1), "generated_age_mae": self.age["generated"][0],
                "generated_age_mae_real": self.age["real"][0], "generated_age_mae_shuffled": self.age["generated"][1],
                "generated_fd": float(self.fd), "generated_kid": float(self.kid),
                "generated_memorisation_rate": float(self.flagged.mean()),
                "autoencoder_top1_ratio_test": float(self.autoencoder["top1"] / real_top1) if real_top1 > 0 else float("nan"),
                "autoencoder_age_mae_test": self.age["autoencoder"][0], **super().metrics()}

    def method_figures(self) -> dict:
        """This work's row of the method table (:func:`methods_step`)."""
        return {"faces": int(len(self.images)), "top1": float(self.rec["top1"]), "top1_ci": list(self.top1_ci),
                "top5": float(self.rec["top5"]), "zero_shot_top1": float(self.zero_shot_top1),
                "age_mae": float(self.age["generated"][0]), "fd": float(self.fd), "kid": float(self.kid),
                "memorisation_rate": float(self.flagged.mean()), "seconds_per_image": float(self.table["seconds"].mean())}

    def table_summary(self, realism, memorisation) -> pd.DataFrame:
        real = self.real.report
        return pd.DataFrame({
            "generated": [self.rec["top1"], self.rec["top5"], *self.age["generated"], self.fd, self.kid,
                          float(self.flagged.mean())],
            "real test faces (yardstick)": [real["top1"], real["top5"], *self.age["real"], realism.fd_reference,
                                            realism.kid_reference, memorisation.rate],
            "test faces through the autoencoder (ceiling)": [self.autoencoder["top1"], self.autoencoder["top5"],
                                                             *self.age["autoencoder"], np.nan, np.nan, np.nan],
            "goal": ["≥ 0.9 × real", "", "≤ 1.5 × real", "", "", "", "≤ 1 %"]},
            index=["recogniser top-1 (conditioned diseases)", "recogniser top-5", "age MAE (years)",
                   "age MAE against the requested ages shuffled (no age control)",
                   "FD to test faces (real: train vs test)", "KID to test faces", "memorisation rate"])

    def summary(self) -> str:
        real_top1 = self.real.top1
        flagged = "; no generated face is flagged at the validation threshold" if not self.flagged.any() else ""
        return (f"{len(self.images)} generated faces; conditioned top-1 {fmt_ci(self.rec['top1'], self.top1_ci)} = "
                f"**{self.rec['top1'] / real_top1:.2f} ×** the real test faces' top-1 (chance {self.rec['chance_top1']:.2f}); "
                f"zero-shot diseases' top-1 {self.zero_shot_top1:.2f}; the autoencoder alone keeps "
                f"{self.autoencoder['top1'] / real_top1:.2f} × of it (test faces through it){flagged}.")

    def figures(self) -> dict:
        figs = {"generated_confusion": evfig.confusion_matrix(self.rec["confusion"], names=self.names,
                                                              title="recogniser on generated faces (conditioned diseases)")}
        if self.flagged.any():
            figs["generated_memorisation"] = evfig.memorisation_pairs(
                self.report, self.images, self.train_images, k=min(8, int(self.flagged.sum())),
                title="generated faces flagged as copies, beside their nearest training face")
        return figs


def generated_step(ev, recogniser, realism, memorisation) -> GeneratedResult:
    """Notebook 06's faces: recogniser (conditioned rows with an interval; zero-shot rows apart), age MAE beside
    the same against shuffled ages, FD / KID to test faces, memorisation at the validation threshold; the same
    recogniser and age figures on the test faces through the generator's autoencoder."""

    test, seed, rec = ev.test, ev.seed, recogniser.recogniser
    seconds = {}
    with timed(seconds, "generated"):
        model = load_model(ev.data_dir / "model")
        images, table = load_generated(ev.data_dir)
        conditioned = (table["mode"] == "conditioned").to_numpy()
        g_rec = rec.evaluate(images[conditioned], table.loc[conditioned, "disease_id"], k=5)
        top1_ci = bootstrap_ci(g_rec["hits1"].astype(float), seed=seed)[1]
        test_rec = reconstruct(model, test.images)
        ae_eval = rec.evaluate(test_rec, test.table["disease_id"], k=5)
        zs = ~conditioned
        zs_top1 = rec.evaluate(images[zs], table.loc[zs, "disease_id"], k=1)["top1"] if zs.any() else float("nan")
        # beside each: the same estimates against the ages shuffled across faces (no age control at all)
        age = {"real": age_mae(estimate_age(test.images, data_dir=ev.data_dir), test.table["age"], seed=seed),
               "generated": age_mae(estimate_age(images, data_dir=ev.data_dir), table["age"], seed=seed),
               "autoencoder": age_mae(estimate_age(test_rec, data_dir=ev.data_dir), test.table["age"], seed=seed)}
        fd = frechet_distance(test.images, images, realism.extractor)
        kid = kernel_distance(test.images, images, realism.extractor, seed=seed)[0]
        report, scores = memorisation.scores(images)
        flagged = scores < memorisation.threshold
    return GeneratedResult(model, images, table, g_rec, top1_ci, zs_top1, test_rec, ae_eval, age, fd, kid, report,
                           flagged, recogniser, ev.train.images, ev.names, seconds)
