"""The instruments later steps use: the landmark regressor (comparison route), the disease recogniser chosen
on validation, and every split measured three ways (pixels, regressor, true landmarks)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ...cohort.validate import nme
from ...phenotypes import LandmarkRegressor, Meter, landmarks_for, measure_images, train_regressor
from ...stats import fmt_ci
from .. import choose_recogniser
from .. import figures as evfig
from .. import recogniser_report
from .base import StepResult, timed

ROUTES = ("pixels", "regressor", "oracle")


@dataclass
class LandmarkResult(StepResult):
    regressor: object
    source: str
    found: dict
    landmarks: dict
    nme: float
    no_face: int

    def metrics(self) -> dict:
        return {"regressor_nme": self.nme, "regressor_no_face": self.no_face}

    def summary(self) -> str:
        n_test = len(self.found["test"])
        return (f"regressor: {self.source}; test NME {self.nme:.4f} over {n_test - self.no_face} faces; "
                f"{self.no_face} of {n_test} test faces without landmarks (they stay in every later denominator)")


def landmark_step(ev, epochs: int, width: int) -> LandmarkResult:
    """Notebook 04's landmark regressor (trained here on the train split when it is missing) on every split;
    its normalised mean error on test faces where it found landmarks, and how many it missed."""

    reg_path = ev.data_dir / "phenotypes" / "regressor.safetensors"  # + regressor.json; no pickle
    if reg_path.is_file():
        regressor, source = LandmarkRegressor.load(reg_path), f"notebook 04 ({reg_path.name})"
    else:
        regressor = train_regressor(ev.train.images, ev.train.landmarks, epochs=epochs, width=width, seed=ev.seed)
        source = "trained here on the train split (notebook 04 artifact missing)"
    found, landmarks = {}, {}
    for name, c in ev.splits.items():
        found[name], landmarks[name] = landmarks_for(c.images, backend="regressor", regressor=regressor)
    found_test = np.asarray(found["test"], bool)
    err = nme(landmarks["test"], ev.test.landmarks)
    regressor_nme = float(np.mean(err[found_test])) if found_test.any() else float("nan")
    return LandmarkResult(regressor, source, found, landmarks, regressor_nme, int((~found_test).sum()))


@dataclass
class RecogniserResult(StepResult):
    recogniser: object
    choice: pd.DataFrame
    report: dict
    images_per_s: float
    path: object
    names: dict
    seconds: dict = field(default_factory=dict)

    @property
    def top1(self) -> float:
        return self.report["top1"]

    @property
    def train_seconds(self) -> float:
        return float(self.choice.loc[self.choice["chosen"], "train_seconds"].iloc[0])

    def metrics(self) -> dict:
        rec, h = self.report, self.recogniser.history
        return {"recogniser_top1": rec["top1"], "recogniser_top1_ci": rec["top1_ci"],
                "recogniser_top1_blur07": rec["top1_blur"], "recogniser_top1_blur07_ci": rec["top1_blur_ci"],
                "recogniser_top5": rec["top5"], "recogniser_chance_top1": rec["chance_top1"],
                "recogniser_majority_top1": rec["majority_top1"], "recogniser_width": int(h["width"]),
                "recogniser_epochs": int(h["epochs"]), "recogniser_train_seconds": round(self.train_seconds, 2),
                "recogniser_images_per_s": round(self.images_per_s, 1), **super().metrics()}

    def table(self) -> pd.DataFrame:
        """Test top-1 / top-5 beside the majority-class and chance lines."""

        rec = self.report
        return pd.DataFrame({
            "top-1 [95 % CI]": [fmt_ci(rec["top1"], rec["top1_ci"]), fmt_ci(rec["top1_blur"], rec["top1_blur_ci"]),
                                f"{rec['majority_top1']:.2f}", f"{rec['chance_top1']:.2f}"],
            "top-5": [f"{rec['top5']:.2f}", f"{rec['top5_blur']:.2f}", "", f"{rec['chance_top5']:.2f}"]},
            index=["test faces", "test faces, blur sigma 0.7", "majority class (baseline)", "chance"])

    def per_class(self) -> pd.DataFrame:
        m = self.report["confusion"]
        return pd.DataFrame({"faces": m.sum(axis=1), "top-1 recall": np.diag(m) / m.sum(axis=1).replace(0, np.nan)}
                            ).rename(index=self.names)

    def summary(self) -> str:
        h = self.recogniser.history
        return (f"{self.recogniser} chosen on validation (width {h['width']}, {h['epochs']} epochs), saved to "
                f"{self.path}; embedding {self.images_per_s:,.0f} images/s")

    def figures(self) -> dict:
        rec = self.report
        return {"recogniser_confusion": evfig.confusion_matrix(
            rec["confusion"], names=self.names, title=f"recogniser on test faces: top-1 {rec['top1']:.2f}, top-5 {rec['top5']:.2f}")}


def parse_grid(grid: str) -> list[tuple[int, int]]:
    """``"16x20,24x30"`` -> ``[(16, 20), (24, 30)]`` (width x epochs)."""
    return [tuple(int(v) for v in item.split("x")) for item in grid.split(",")]


def recogniser_step(ev, grid: str, lr: float, max_blur: float) -> RecogniserResult:
    """The recogniser chosen among ``grid`` on validation, saved beside the run's artifacts, and its test report
    (clean and blurred top-1 / top-5, chance, majority class, confusion)."""

    seconds = {}
    with timed(seconds, "recogniser_choice"):
        recogniser, choice = choose_recogniser(ev.train.images, ev.train.table["disease_id"], ev.val.images,
                                               ev.val.table["disease_id"], grid=parse_grid(grid), seed=ev.seed, lr=lr,
                                               max_blur=max_blur)
    path = recogniser.save(ev.out_dir / "recogniser.safetensors")  # + recogniser.json
    start = time.perf_counter()
    recogniser.embed(ev.test.images)
    images_per_s = len(ev.test) / (time.perf_counter() - start)
    report = recogniser_report(recogniser, ev.test.images, ev.test.table["disease_id"], ev.train.table["disease_id"],
                               blur=0.7, k=5, seed=ev.seed)
    return RecogniserResult(recogniser, choice, report, images_per_s, path, ev.names, seconds)


@dataclass
class Measurements(StepResult):
    """Every split measured by each route: ``measured[split, route]`` (faces x terms)."""

    measured: dict
    meter: object
    regressor: object
    data_dir: object
    seconds: dict = field(default_factory=dict)

    def __getitem__(self, key):
        return self.measured[key]

    def route(self, route: str, images, landmarks) -> pd.DataFrame:
        """New faces measured like the splits: pixels, the regressor's landmarks, or the given true ones."""

        if route == "pixels":
            return measure_images(images, data_dir=self.data_dir)
        pts = landmarks if route == "oracle" else landmarks_for(images, backend="regressor", regressor=self.regressor)[1]
        return self.meter.measure(pts, images=images)

    def summary(self) -> str:
        n = sum(len(self.measured[k]) for k in self.measured if k[1] == "pixels")
        return (f"measured {n} faces x {len(ROUTES)} routes in {self.seconds['measure']:.1f} s; "
                f"pixel route: {self.measured['test', 'pixels'].shape[1]} terms")


def measurement_step(ev, landmarks: LandmarkResult) -> Measurements:
    """Each split through ``measure_images`` (pixels), the regressor's landmarks and the true landmarks."""

    seconds = {}
    with timed(seconds, "measure"):
        meter = Meter()
        measured = {}
        for name, c in ev.splits.items():
            measured[name, "pixels"] = measure_images(c.images, data_dir=ev.data_dir)
            measured[name, "regressor"] = meter.measure(landmarks.landmarks[name], images=c.images)
            measured[name, "oracle"] = meter.measure(c.landmarks, images=c.images)
    return Measurements(measured, meter, landmarks.regressor, ev.data_dir, seconds)
