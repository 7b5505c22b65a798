"""What every step of notebook 07 shares: the run's splits (:class:`Evaluation`) and the result a step returns
(:class:`StepResult`: its recorded metrics, its figures, the seconds it took)."""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ...cohort import assert_disjoint, load_split
from ...cohort.diseases import DISEASES
from ...report import save_figure

SPLITS = ("train", "validation", "test")


def short_names() -> dict:
    """Disease names short enough for figure axes."""
    return {d: n.replace(" syndrome", "").replace("Pediatric-onset ", "") for d, n in DISEASES.items()}


class StepResult:
    """A step's outcome. ``metrics()`` is its share of the notebook's recorded metrics (``seconds_<part>`` for
    each timed part), ``figures()`` its figures by file name (drawn when asked)."""

    seconds: dict

    def metrics(self) -> dict:
        return {f"seconds_{k}": round(v, 1) for k, v in getattr(self, "seconds", {}).items()}

    def figures(self) -> dict:
        return {}

    def show(self, stem: str) -> None:
        """Draw, save (``reports/figures/<stem>/<name>.png``) and show the figures."""
        import matplotlib.pyplot as plt

        for name, fig in self.figures().items():
            save_figure(fig, stem, name)
            plt.show()


@contextmanager
def timed(seconds: dict, part: str):
    """Adds the wall time of the block to ``seconds[part]``."""
    start = time.perf_counter()
    try:
        yield
    finally:
        seconds[part] = time.perf_counter() - start


def merge_metrics(*results) -> dict:
    """One flat metrics dict from the steps' ``metrics()`` (a plain dict is taken as it is), timings last."""
    merged = {}
    for r in results:
        merged.update(r if isinstance(r, dict) else r.metrics())
    timings = [k for k in merged if k.startswith("seconds_")]
    return {**{k: v for k, v in merged.items() if k not in timings}, **{k: merged[k] for k in timings}}


@dataclass
class Evaluation(StepResult):
    """The run's three splits (disjoint people) and where this notebook writes its artifacts."""

    data_dir: Path
    splits: dict
    seed: int = 0
    names: dict = field(default_factory=short_names)
    seconds: dict = field(default_factory=dict)

    @property
    def out_dir(self) -> Path:
        return self.data_dir / "evaluation"

    @property
    def train(self):
        return self.splits["train"]

    @property
    def val(self):
        return self.splits["validation"]

    @property
    def test(self):
        return self.splits["test"]

    def table(self) -> pd.DataFrame:
        return pd.DataFrame({name: {"faces": len(c), "people": c.table["identity"].nunique(), "seed": c.seed,
                                    "diseases": c.table["disease_id"].nunique()} for name, c in self.splits.items()}).T

    def metrics(self) -> dict:
        return {**{f"faces_{name}": len(c) for name, c in self.splits.items()}, "heldout_faces": int(len(self.test))}


def load_evaluation(data_dir, seed: int = 0) -> Evaluation:
    """The train, validation and test splits of notebook 00, checked for people in two splits."""

    data_dir = Path(data_dir)
    (data_dir / "evaluation").mkdir(parents=True, exist_ok=True)
    splits = {name: load_split(data_dir, name) for name in SPLITS}
    assert_disjoint(splits)
    return Evaluation(data_dir, splits, seed=seed)
