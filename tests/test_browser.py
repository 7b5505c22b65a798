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
