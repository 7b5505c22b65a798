"""Recorded metrics, step status and report figures: what a notebook writes and the runner, the summary and
the index (:mod:`phenoface.publish`) read.

Contract: every notebook records its headline numbers as a flat JSON object (name -> number or
string) in ``<reports>/metrics/<notebook stem>.json`` and saves its figures under
``<reports>/figures/<stem>/``.

``<reports>`` is the recorded run's folder (``reports/``) only for notebooks the runner executes: it tells
them through ``$PHENOFACE_REPORTS``. A notebook run any other way (Jupyter, nbconvert, papermill by hand)
writes to ``reports/interactive/`` instead, which the index and the runner never read, so it can neither
overwrite a recorded run's figures nor be taken for one.
"""

from __future__ import annotations

import json
import math
import numbers
import os
import sys
from pathlib import Path
from typing import Any, Mapping

from .config import atomic_path, repo_root, write_json


INTERACTIVE = "interactive"
_told_interactive = False


def recorded_reports_dir() -> Path:
    """The folder of recorded runs (``run_all.sh``, ``python -m phenoface.runner``): ``$PHENOFACE_REPORTS``,
    else ``<checkout>/reports``."""
    return Path(os.environ.get("PHENOFACE_REPORTS") or repo_root() / "reports").resolve()


def reports_dir(path: str | os.PathLike | None = None) -> Path:
    """Where metrics, figures and status go: ``path``; else ``$PHENOFACE_REPORTS`` (set by the runner for the
    notebooks it executes); else, for a notebook run by hand, ``<checkout>/reports/interactive``."""
    global _told_interactive

    if path:
        return Path(path).resolve()
    if os.environ.get("PHENOFACE_REPORTS"):
        return Path(os.environ["PHENOFACE_REPORTS"]).resolve()
    folder = (repo_root() / "reports" / INTERACTIVE).resolve()
    if not _told_interactive:
        _told_interactive = True
        print(f"[phenoface] not run by run_all.sh: metrics and figures go to {folder}; the recorded run's reports "
              "are left as they are", file=sys.stderr)
    return folder


def _flat_value(name: str, value: Any) -> float | int | str:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        value = float(value)
        if math.isnan(value) or math.isinf(value):
            return str(value)  # JSON has no NaN; keep it visible rather than dropping the metric
        return value
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)) and all(isinstance(v, numbers.Real) for v in value):
        return [_flat_value(name, v) for v in value]  # an interval: [low, high]
    raise TypeError(f"metric {name!r} must be a number, a string or a list of numbers, got {type(value).__name__}")


def record_metrics(stem: str, metrics: Mapping[str, Any], metrics_dir: str | os.PathLike | None = None) -> Path:
    """Write ``metrics`` (flat: name -> number or string) to ``<metrics_dir>/<stem>.json`` atomically."""
    folder = Path(metrics_dir) if metrics_dir else reports_dir() / "metrics"
    flat = {str(k): _flat_value(str(k), v) for k, v in metrics.items()}
    return write_json(folder / f"{stem}.json", flat)


def read_metrics(stem: str, metrics_dir: str | os.PathLike | None = None) -> dict[str, Any]:
    folder = Path(metrics_dir) if metrics_dir else reports_dir() / "metrics"
    path = folder / f"{stem}.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


STATUSES = ("ok", "degraded", "failed", "running")


def record_status(stem: str, status: str, reasons: list[str] | None = None,
                  status_dir: str | os.PathLike | None = None) -> Path:
    """Tell the runner how a step went beyond "it finished": ``degraded`` when it finished on a fallback
    (an LLM that failed, say) so the result must not be reused as if it were complete. Written to
    ``<reports>/status/<stem>.json``; the runner reads it after the notebook ends and records the step as
    ``degraded`` in ``run.json``, which makes the next run redo it."""
    if status not in ("ok", "degraded"):
        raise ValueError(f"a notebook may report 'ok' or 'degraded', not {status!r}")
    folder = Path(status_dir) if status_dir else reports_dir() / "status"
    return write_json(folder / f"{stem}.json", {"status": status, "reasons": [str(r) for r in reasons or []]})


def read_status(stem: str, status_dir: str | os.PathLike | None = None) -> dict[str, Any]:
    folder = Path(status_dir) if status_dir else reports_dir() / "status"
    path = folder / f"{stem}.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def save_figure(fig, stem: str, name: str, figures_dir: str | os.PathLike | None = None, dpi: int = 110) -> Path:
    """Save a matplotlib figure as ``<figures_dir>/<stem>/<name>.png`` (atomically) for the index."""
    folder = Path(figures_dir) if figures_dir else reports_dir() / "figures"
    target = folder / stem / f"{name}.png"
    with atomic_path(target) as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format="png")
    return target
