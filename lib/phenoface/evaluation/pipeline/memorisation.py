"""Memorisation probed beyond the detector's design: the detector's search and threshold chosen on validation
probes, the ROC and detection per probe kind on test probes; the chosen detector then checks any batch."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ...config import write_json
from .. import MemorisationDetector, detection_by_kind
from .. import figures as evfig
from .. import make_probes, roc_summary, threshold_at_fpr
from .base import StepResult, timed


class Detectors:
    """One :class:`MemorisationDetector` per search (``"1+flip"``: shifts up to 1 px, mirrored too), each
    calibrated on the train faces once and reused for every batch."""

    def __init__(self, train_images, recogniser, train_features):
        self.train_images, self.recogniser, self.train_features = train_images, recogniser, train_features
        self._detectors = {}

    def __call__(self, candidates, search: str):
        """(report, score per candidate) for ``search``."""

        if search not in self._detectors:
            self._detectors[search] = MemorisationDetector(self.train_images, features=self.recogniser,
                                                           max_shift=int(search.split("+")[0]),
                                                           mirror=search.endswith("+flip"),
                                                           train_features=self.train_features)
        report = self._detectors[search].check(candidates)
        return report, report.table["score"].to_numpy()


@dataclass
class MemorisationResult(StepResult):
    detectors: Detectors
    search: str
    threshold: float
    choice: pd.DataFrame  # one row per search tried on validation
    roc: dict  # auc, tpr, fpr on test probes vs test faces
    by_kind: pd.DataFrame
    report: object  # the detector's report on test probes + test faces
    probes: np.ndarray
    sources: np.ndarray
    kinds: list
    fpr_goal: float
    seconds: dict = field(default_factory=dict)

    @property
    def rate(self) -> float:
        """Share of test faces (fresh people) flagged at the validation threshold."""
        return self.roc["fpr"]

    def scores(self, images):
        """(report, scores) of the chosen detector on ``images``; flagged where ``scores < threshold``."""
        return self.detectors(images, self.search)

    def flagged(self, images) -> np.ndarray:
        return self.scores(images)[1] < self.threshold

    def metrics(self) -> dict:
        return {"memorisation_auc": self.roc["auc"], "memorisation_tpr_at_fpr1": self.roc["tpr"],
                "memorisation_rate": self.rate, "memorisation_threshold": self.threshold,
                "memorisation_search": self.search,
                **{f"memorisation_detected_{kind}": float(v) for kind, v in self.by_kind["detected"].items()},
                **super().metrics()}

    def choice_table(self) -> pd.DataFrame:
        return self.choice.assign(chosen=self.choice["search"] == self.search)

    def summary(self) -> str:
        return (f"Test: AUC **{self.roc['auc']:.3f}** (probes vs test faces), TPR **{self.roc['tpr']:.2f}** at the "
                f"validation threshold, **{self.rate:.1%}** of test faces flagged (target {self.fpr_goal:.0%}). "
                "Per probe kind below: the kinds the detector misses are the copies a generator could make unseen.")

    def save(self, out_dir) -> None:
        write_json(out_dir / "memorisation.json", {"by_kind": self.by_kind.reset_index().to_dict(orient="records"),
                                                   "shift_choice": self.choice.to_dict(orient="records"),
                                                   "threshold": self.threshold, "auc": self.roc["auc"],
                                                   "tpr": self.roc["tpr"], "fpr": self.roc["fpr"]})

    def hardest(self) -> pd.DataFrame:
        """The highest-scoring (least copy-like) test probe of each kind."""
        view = self.report.table.iloc[:len(self.probes)].assign(candidate=[f"{k}" for k in self.kinds])
        view["flagged"] = view["score"] < self.threshold
        return view.sort_values("score", ascending=False).groupby("candidate").head(1)

    def figures(self) -> dict:
        import matplotlib.pyplot as plt

        roc = evfig.memorisation_roc(self.roc, self.by_kind, title="memorisation probes vs test faces (threshold "
                                     f"from validation, search {self.search})")
        hardest = self.hardest()
        fig, axes = plt.subplots(2, len(hardest), figsize=(1.7 * len(hardest), 3.8), squeeze=False)
        for i, (row_i, row) in enumerate(hardest.iterrows()):
            axes[0, i].imshow(self.probes[row_i])
            axes[1, i].imshow(self.detectors.train_images[self.sources[row_i]])
            axes[0, i].set_title(f"{row['candidate']}\nscore {row['score']:.2f}", fontsize=8,
                                 color="#b00020" if row["flagged"] else "#333333")
        for ax in axes.ravel():
            ax.set_axis_off()
        fig.suptitle(f"hardest probe of each kind (top) and its training face (bottom); red = detected "
                     f"(score < {self.threshold:.3f})", fontsize=9)
        fig.tight_layout()
        return {"memorisation_roc": roc, "memorisation_hardest_probes": fig}


def memorisation_step(ev, recogniser, per_kind: int, fpr: float, searches: str) -> MemorisationResult:
    """Probes of some train faces (seed) vs validation faces choose the search (best validation TPR; ties: the
    first listed) and the threshold (flags at most ``fpr`` of validation faces); probes of other train faces
    (seed + 1) vs test faces give the ROC and the detection per kind."""

    train, val, test = ev.train, ev.val, ev.test
    seconds = {}
    with timed(seconds, "memorisation"):
        detectors = Detectors(train.images, recogniser, recogniser.features(train.images, kind="grid"))
        val_probes, val_src, _ = make_probes(train.images, train.table, per_kind=per_kind, seed=ev.seed)
        test_probes, test_src, test_kind = make_probes(train.images, train.table, per_kind=per_kind, seed=ev.seed + 1,
                                                       exclude=val_src)
        rows = []
        for search in [item.strip() for item in searches.split(",")]:
            _, s = detectors(np.concatenate([val_probes, val.images]), search)
            thr = threshold_at_fpr(s[len(val_probes):], fpr)
            rows.append({"search": search, "threshold": thr, "validation TPR": float((s[:len(val_probes)] < thr).mean()),
                         "validation FPR": float((s[len(val_probes):] < thr).mean())})
        choice = pd.DataFrame(rows)
        best = choice.sort_values("validation TPR", ascending=False, kind="stable").iloc[0]
        search, threshold = str(best["search"]), float(best["threshold"])
        report, s = detectors(np.concatenate([test_probes, test.images]), search)
        probe_scores, heldout_scores = s[:len(test_probes)], s[len(test_probes):]
        roc = roc_summary(probe_scores, heldout_scores, threshold)
        by_kind = detection_by_kind(probe_scores, test_kind, threshold, seed=ev.seed)
    result = MemorisationResult(detectors, search, threshold, choice, roc, by_kind, report, test_probes, test_src,
                                test_kind, fpr, seconds)
    result.save(ev.out_dir)
    return result
