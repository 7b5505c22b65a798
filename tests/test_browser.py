"""Open reports/index.html (from the smoke run) in headless Chromium: the page and its figures render."""
import re
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--virtual-time-budget=8000"]

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(CHROMIUM is None, reason="no Chromium found (.ci/run installs Debian's chromium)")]


def _chromium(tmp_path, *args):
    profile = tmp_path / "chromium-profile"
    out = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args],
                         capture_output=True, text=True, timeout=120)
    return out


def test_index_and_figures_render(smoke_run, tmp_path):
    index = smoke_run["reports"] / "index.html"
    dom = _chromium(tmp_path, "--dump-dom", index.as_uri()).stdout
    m = re.search(r'data-figures="(\d+)/(\d+)"', dom)
    assert m, "the page's load script did not run"
    rendered, total = map(int, m.groups())
    assert total >= 2 and rendered == total, f"{rendered}/{total} figures rendered"

    shot = tmp_path / "index.png"
    _chromium(tmp_path, f"--screenshot={shot}", "--window-size=1200,1800", index.as_uri())
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert pixels.std() > 10, "the screenshot is blank"


def test_rendered_notebook_shows_its_figures(smoke_run, tmp_path):
    page = smoke_run["reports"] / "00_data.html"
    dom = _chromium(tmp_path, "--dump-dom", page.as_uri()).stdout
    assert dom.count("data:image/png;base64") >= 3, "the rendered notebook lost its figures"


def _present_heading(dom: str) -> str:
    """The heading of the slide reveal.js shows (the innermost section marked present)."""
    for part in dom.split("<section")[1:]:
        head, _, body = part.partition(">")
        if re.search(r'class="[^"]*\bpresent\b', head) and "stack" not in head:
            m = re.search(r"<h[12][^>]*>([^<]+)", body)
            return m.group(1).strip() if m else ""
    return ""


def test_slides_open_offline_and_advance(smoke_run, tmp_path):
    slides = smoke_run["reports"] / "08_summary.slides.html"
    if not slides.is_file():
        if shutil.which("npm") is None:
            pytest.skip("no npm: the set-up could not install reveal.js, so the slides were not rendered")
        pytest.fail("08_summary.slides.html is missing although npm is installed")
    text = slides.read_text()
    assert "unpkg.com" not in text and "cdnjs" not in text  # nothing is fetched from a CDN
    index = (smoke_run["reports"] / "index.html").read_text()
    assert "08_summary.slides.html" in index and "What was run" in index
    first = _chromium(tmp_path, "--dump-dom", slides.as_uri() + "#/0").stdout
    third = _chromium(tmp_path, "--dump-dom", slides.as_uri() + "#/2").stdout
    assert re.search(r'class="reveal[^"]*\bready\b', first), "reveal.js did not start (assets not served locally?)"
    h1, h3 = _present_heading(first), _present_heading(third)
    assert h1 and h3 and h1 != h3, f"the slides did not advance: {h1!r} -> {h3!r}"
