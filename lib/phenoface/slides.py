"""Notebook 08 as reveal.js slides that work without internet (a lecture hall, CI).

nbconvert's slides template loads reveal.js, RequireJS and jQuery from CDNs by default. Here they come from
``web/node_modules`` (``web/package.json``, installed by ``./run_all.sh``'s set-up with npm) and are copied
beside the slides into ``reports/_reveal/``, so the reports folder can be zipped and presented anywhere.
MathJax and Mermaid (also CDN-loaded by the template) are replaced by tiny local stand-ins: the summary has
neither formulas nor diagrams.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from .config import atomic_path, repo_root

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

    from .runner import scrub_secrets

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
    import json

    nb = json.loads(Path(executed).read_text(encoding="utf-8"))
    declared = any("parameters" in c.get("metadata", {}).get("tags", []) and "SLIDES" in "".join(c.get("source", ""))
                   for c in nb.get("cells", []))
    return declared and bool(nb.get("metadata", {}).get("papermill", {}).get("parameters", {}).get("SLIDES", False))
