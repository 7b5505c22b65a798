"""Recorded metrics, report figures and the ``reports/index.html`` page.

Contract: every notebook records its headline numbers as a flat JSON object (name -> number or
string) in ``<reports>/metrics/<notebook stem>.json``; the index page shows them beside a link to the
rendered notebook and the figures the notebook saved under ``<reports>/figures/<stem>/``.

``<reports>`` is the recorded run's folder (``reports/``) only for notebooks the runner executes: it tells
them through ``$PHENOFACE_REPORTS``. A notebook run any other way (Jupyter, nbconvert, papermill by hand)
writes to ``reports/interactive/`` instead, which the index and the runner never read, so it can neither
overwrite a recorded run's figures nor be taken for one.
"""

from __future__ import annotations

import html
import json
import math
import numbers
import os
import sys
from datetime import datetime, timezone
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


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _notebook_title(path: Path) -> str:
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
        for cell in nb.get("cells", []):
            if cell.get("cell_type") == "markdown":
                for line in "".join(cell.get("source", "")).splitlines():
                    if line.startswith("#"):
                        return line.lstrip("#").strip()
    except (OSError, ValueError):
        pass
    return path.stem


_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2rem auto;max-width:1100px;color:#222;padding:0 1rem}
h1{margin-bottom:.2rem} .sub{color:#666;margin-top:0}
section{border:1px solid #ddd;border-radius:8px;padding:1rem 1.2rem;margin:1.2rem 0}
section h2{margin:.1rem 0 .6rem;font-size:1.2rem}
table{border-collapse:collapse;font-size:.9rem;margin:.4rem 0} td,th{border-bottom:1px solid #eee;padding:.2rem .8rem;text-align:left}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.status{font-size:.8rem;padding:.1rem .5rem;border-radius:4px;margin-left:.5rem}
.ok{background:#e3f6e8;color:#17642b}.degraded{background:#fff4d6;color:#7a5400}.running{background:#eef;color:#335}.skipped{background:#eef;color:#335}.failed{background:#fde8e8;color:#8a1c1c}
.figs{display:flex;flex-wrap:wrap;gap:.8rem}.figs figure{margin:0;max-width:48%}.figs img{max-width:100%;max-height:520px;border:1px solid #eee}
figcaption{font-size:.8rem;color:#555}
"""

# Marks each figure as rendered once the browser has decoded it, so a headless check can read the
# DOM and know the figures displayed (not just that <img> tags exist).
_CHECK_SCRIPT = """
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.querySelectorAll('img'));
  var ok = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; });
  ok.forEach(function (i) { i.setAttribute('data-rendered', '1'); });
  document.body.setAttribute('data-figures', ok.length + '/' + imgs.length);
});
"""


def _run_header(root: Path, run_log: dict, stems) -> list[str]:
    """What was run (profile, seed, when, versions) and the headline figures with a pass / miss mark."""
    import platform

    from .summary import headline_table

    seed = None
    for stem in stems:  # papermill records the parameters each executed notebook ran with
        try:
            seed = json.loads((root / f"{stem}.ipynb").read_text(encoding="utf-8"))["metadata"]["papermill"]["parameters"]["SEED"]
            break
        except (OSError, ValueError, KeyError):
            continue
    from importlib.metadata import PackageNotFoundError, version

    from .config import git_commit

    versions = {"python": platform.python_version()}
    for dist in ("torch", "diffusers", "lightning"):
        try:  # the installed metadata: importing these only to read a version costs seconds on every rerun
            versions[dist] = version(dist)
        except PackageNotFoundError:
            pass

    ran = [s for s, v in run_log.get("steps", {}).items() if v.get("status")]
    out = ["<section id='summary'><h2>What was run</h2><p>",
           f"Profile <b>{html.escape(str(run_log.get('profile', '?')))}</b> · seed <b>{html.escape(str(seed if seed is not None else '?'))}</b>"
           f" · {len(ran)} notebooks · commit {html.escape(git_commit())} · "
           + " · ".join(f"{k} {html.escape(str(v))}" for k, v in versions.items()) + "</p>"]
    table = headline_table(root / "metrics")
    table = table[table["status"] != "not run"]
    if len(table):
        out.append("<table><tr><th>headline figure</th><th>value [95 % interval]</th><th>goal</th><th>trivial baseline</th>"
                   "<th></th></tr>")
        marks = {"pass": "<span class='status ok'>pass</span>", "miss": "<span class='status failed'>miss</span>"}
        for r in table.itertuples():
            out.append(f"<tr><td><a href='#{html.escape(r.notebook)}'>{html.escape(r.figure)}</a></td><td class='num'>"
                       f"{html.escape(r.value)}</td><td>{html.escape(r.goal)}</td><td>{html.escape(r.baseline)}</td>"
                       f"<td>{marks.get(r.status, '')}</td></tr>")
        out.append("</table>")
    out.append("</section>")
    return out


def build_index(reports: str | os.PathLike | None = None, notebooks: str | os.PathLike | None = None,
                profile: str | None = None) -> Path:
    """(Re)write ``reports/index.html`` from the rendered notebooks, metrics, figures and run log."""
    root = Path(reports).resolve() if reports else recorded_reports_dir()
    nb_dir = Path(notebooks) if notebooks else repo_root() / "notebooks"
    run_log = {}
    if (root / "run.json").is_file():
        run_log = json.loads((root / "run.json").read_text(encoding="utf-8"))
    steps = run_log.get("steps", {})
    stems = sorted({p.stem for p in nb_dir.glob("[0-9][0-9]_*.ipynb")}
                   | {p.stem for p in (root / "metrics").glob("*.json")})
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        "<title>phenoface reports</title>", f"<style>{_STYLE}</style>",
        f"<script>{_CHECK_SCRIPT}</script></head><body>",
        "<h1>phenoface reports</h1>",
        f"<p class='sub'>Profile <b>{html.escape(str(profile or run_log.get('profile', '?')))}</b> · "
        f"index written {datetime.now(timezone.utc):%Y-%m-%d %H:%M UTC}</p>",
    ]
    parts += _run_header(root, run_log, stems)
    for stem in stems:
        step = steps.get(stem, {})
        status = step.get("status", "")
        title = _notebook_title(nb_dir / f"{stem}.ipynb")
        link = f"{stem}.html"
        parts.append(f"<section id='{html.escape(stem)}'><h2>")
        if (root / link).is_file():
            parts.append(f"<a href='{html.escape(link)}'>{html.escape(stem)}</a> — {html.escape(title)}")
        else:
            parts.append(f"{html.escape(stem)} — {html.escape(title)}")
        slides = root / f"{stem}.slides.html"
        if slides.is_file():
            parts.append(f" · <a class='slides' href='{html.escape(slides.name)}'>slides</a>")
        if status:
            seconds = step.get("seconds")
            extra = f" · {seconds:.0f} s" if isinstance(seconds, (int, float)) else ""
            parts.append(f"<span class='status {html.escape(status)}'>{html.escape(status)}{extra}</span>")
        parts.append("</h2>")
        if step.get("error"):
            parts.append(f"<pre>{html.escape(step['error'][-2000:])}</pre>")
        metrics = read_metrics(stem, root / "metrics")
        if metrics:
            parts.append("<table><tr><th>metric</th><th>value</th></tr>")
            for k, v in metrics.items():
                cls = " class='num'" if isinstance(v, (int, float)) else ""
                parts.append(f"<tr><td>{html.escape(k)}</td><td{cls}>{html.escape(_fmt(v))}</td></tr>")
            parts.append("</table>")
        figs = sorted((root / "figures" / stem).glob("*.png"))
        if figs:
            parts.append("<div class='figs'>")
            for fig in figs:
                rel = fig.relative_to(root).as_posix()
                parts.append(f"<figure><img src='{html.escape(rel)}' alt='{html.escape(fig.stem)}' loading='eager'>"
                             f"<figcaption>{html.escape(fig.stem.replace('_', ' '))}</figcaption></figure>")
            parts.append("</div>")
        parts.append("</section>")
    parts.append("</body></html>")
    target = root / "index.html"
    with atomic_path(target) as tmp:
        tmp.write_text("\n".join(parts), encoding="utf-8")
    return target
