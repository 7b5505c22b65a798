"""What a recorded run publishes: each executed notebook as HTML, notebook 08 as reveal.js slides, and the
``reports/index.html`` page, with the values of secret-looking environment variables scrubbed from all of them.

The index shows each notebook's recorded metrics (:mod:`phenoface.report`) beside a link to its rendered
page and the figures it saved under ``<reports>/figures/<stem>/``, after a header with the headline figures
(:mod:`phenoface.summary`).

Slides: nbconvert's slides template loads reveal.js, RequireJS and jQuery from CDNs by default. Here they come
from ``web/node_modules`` (``web/package.json``, installed by ``./run_all.sh``'s set-up with npm) and are copied
beside the slides into ``reports/_reveal/``, so the reports folder can be zipped and presented anywhere.
MathJax and Mermaid (also CDN-loaded by the template) are replaced by tiny local stand-ins: the summary has
neither formulas nor diagrams.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .config import atomic_path, git_commit, repo_root
from .report import read_metrics, recorded_reports_dir
from .summary import headline_table

_SECRET_ENV = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD)", re.I)


def scrub_secrets(text: str) -> str:
    """Replace the values of secret-looking environment variables wherever they appear."""
    for name, value in os.environ.items():
        if _SECRET_ENV.search(name) and value and len(value) >= 8:
            text = text.replace(value, f"<{name} redacted>")
    return text


# Lines libraries print on stderr about their surroundings (C++ and logging set-up, no accelerator, an optional
# add-on, a training run stopping where it was told to): the executed notebook keeps them, the HTML report not.
ENVIRONMENT_LINES = re.compile("|".join([
    r"INFO: Created TensorFlow Lite XNNPACK delegate for CPU\.$",
    r"WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR$",
    r"W0000 [\d:.]+\s+\d+ (inference_feedback_manager|landmark_projection_calculator)\.cc:\d+\] ",  # MediaPipe
    r"(GPU|TPU|HPU) available: \w+, (used|using)",
    r"💡 Tip: For seamless cloud logging and experiment tracking, try installing \[litlogger\]",
    r"`Trainer\.fit` stopped: `max_steps=\d+` reached\.$",
    r"WARNING:pykeen\.utils:Using automatic batch size on device\.type='cpu'",
    r"WARNING:torch_max_mem\.api:Encountered tensors on device_types=\{'cpu'\}",
    r"INFO:pykeen\.evaluation\.evaluator:Evaluation took [\d.]+s seconds$",
    # diffusers, building the inverse DDIM scheduler from the sampler's config (keys only the sampler uses)
    r"The config attributes \{.*\} were passed to DDIMInverseScheduler, but are not expected and will be ignored\.",
]))

def without_environment_lines(nb):
    """``nb`` with the :data:`ENVIRONMENT_LINES` taken out of its stderr outputs (an output left empty goes)."""
    for cell in nb.cells:
        kept = []
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream" and out.get("name") == "stderr":
                out["text"] = "".join(line for line in out["text"].splitlines(keepends=True)
                                      if not ENVIRONMENT_LINES.match(line.rstrip("\n")))
                if not out["text"].strip():
                    continue
            kept.append(out)
        if cell.cell_type == "code":
            cell.outputs = kept
    return nb


def render_html(executed: Path, target: Path) -> None:
    """The executed notebook as one HTML page (nbconvert, imported here: seconds to load)."""
    import nbformat
    from nbconvert import HTMLExporter

    nb = without_environment_lines(nbformat.read(executed, as_version=4))
    body, _ = HTMLExporter().from_notebook_node(nb)
    with atomic_path(target) as tmp:
        tmp.write_text(scrub_secrets(body), encoding="utf-8")


# ---- slides ---------------------------------------------------------------------------------------------

ASSETS = {  # what the template needs -> where npm puts it
    "reveal.js/dist": "reveal.js/dist",
    "reveal.js/plugin/notes": "reveal.js/plugin/notes",
    "require.js": "requirejs/require.js",
    "jquery.min.js": "jquery/dist/jquery.min.js",
}
FOLDER = "_reveal"
_MATHJAX_STUB = "window.MathJax = {Hub: {getAllJax: function () { return []; }, Rerender: function () {}, Config: function () {}, Queue: function () {}}};\n"
_MERMAID_STUB = "export default {initialize: function () {}};\n"


class SlidesUnavailable(RuntimeError):
    """reveal.js is not installed locally (the set-up installs it with npm)."""


def web_modules() -> Path:
    return repo_root() / "web" / "node_modules"


def install_assets(reports: Path, modules: Path | None = None) -> Path:
    """Copy the local reveal.js, RequireJS and jQuery into ``reports/_reveal`` (and the two stand-ins)."""
    modules = Path(modules or web_modules())
    missing = [src for src in ASSETS.values() if not (modules / src).exists()]
    if missing:
        raise SlidesUnavailable(f"reveal.js is not installed in {modules} (missing {', '.join(missing)}): run "
                                "./run_all.sh --setup, which installs web/package.json with npm (Debian: apt install npm)")
    target = Path(reports) / FOLDER
    for dst, src in ASSETS.items():
        s, d = modules / src, target / dst
        d.parent.mkdir(parents=True, exist_ok=True)
        if s.is_dir():
            shutil.copytree(s, d, dirs_exist_ok=True)
        else:
            shutil.copyfile(s, d)
    (target / "mathjax-stub.js").write_text(_MATHJAX_STUB)
    (target / "mermaid-stub.mjs").write_text(_MERMAID_STUB)
    return target


def render_slides(executed: Path, target: Path, modules: Path | None = None) -> Path:
    """Render the executed notebook ``executed`` as ``target`` (reveal.js slides using ``_reveal/`` beside it)."""
    import nbformat
    from nbconvert import SlidesExporter

    target = Path(target)
    install_assets(target.parent, modules)
    exporter = SlidesExporter(reveal_url_prefix=f"{FOLDER}/reveal.js", reveal_scroll=True)
    exporter.require_js_url = f"{FOLDER}/require.js"
    exporter.jquery_url = f"{FOLDER}/jquery.min.js"
    exporter.mathjax_url = f"{FOLDER}/mathjax-stub.js"
    exporter.mermaid_js_url = f"{FOLDER}/mermaid-stub.mjs"
    body, _ = exporter.from_notebook_node(nbformat.read(executed, as_version=4))
    if "unpkg.com" in body or "cdnjs" in body or "cdn.jsdelivr" in body:
        raise SlidesUnavailable("the slides still reference a CDN; nbconvert's template changed")
    with atomic_path(target) as tmp:
        tmp.write_text(scrub_secrets(body), encoding="utf-8")
    return target


def wants_slides(executed: Path) -> bool:
    """Whether the executed notebook declares ``SLIDES`` in its parameters cell and ran with it true (papermill
    records every parameter of the profile file for every notebook, so the declaration is what counts)."""
    nb = json.loads(Path(executed).read_text(encoding="utf-8"))
    declared = any("parameters" in c.get("metadata", {}).get("tags", []) and "SLIDES" in "".join(c.get("source", ""))
                   for c in nb.get("cells", []))
    return declared and bool(nb.get("metadata", {}).get("papermill", {}).get("parameters", {}).get("SLIDES", False))


# ---- the index ------------------------------------------------------------------------------------------

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

    seed = None
    for stem in stems:  # papermill records the parameters each executed notebook ran with
        try:
            seed = json.loads((root / f"{stem}.ipynb").read_text(encoding="utf-8"))["metadata"]["papermill"]["parameters"]["SEED"]
            break
        except (OSError, ValueError, KeyError):
            continue
    from importlib.metadata import PackageNotFoundError, version

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
