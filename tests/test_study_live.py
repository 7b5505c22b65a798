"""The rating server as users run it (``python -m phenoface.study serve`` on 127.0.0.1): raters answering at
once lose and duplicate nothing; killing the server mid-write leaves a consistent database holding every
acknowledged answer; the page works by keyboard in headless Chromium and the presenter view updates."""
import re
import signal
import socket
import sqlite3
import threading
import time

import httpx
import numpy as np
import pytest

from phenoface.study import build_study_set, read_answers
from phenoface.study.browser import Browser, chromium_path, serve_in_thread
from phenoface.study.server import create_app, launch, page_version

from test_study import tiny_sources

KEY = "presenter-key"
pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tmp_path):
    """The CLI server in its own process on a free loopback port; stopped (killed) at the end."""
    study = build_study_set(tiny_sources(per_disease=4), tmp_path / "set", per_disease=4)
    port = _free_port()
    db = tmp_path / "answers.sqlite"
    proc, base = launch(study.folder, db, port, presenter_key=KEY)
    yield {"base": base, "proc": proc, "db": db, "study": study}
    if proc.poll() is None:
        proc.kill()
    proc.wait(10)


def _rater(base, name, n, acked, refused, stop=None):
    """Answer up to ``n`` items; every 5th answer is sent twice (a double submit)."""
    with httpx.Client(base_url=base, timeout=30) as c:
        for k in range(n):
            if stop is not None and stop.is_set():
                return
            try:
                nxt = c.get("/api/next", params={"rater": name}).json()
                if not nxt["item"]:
                    return
                body = {"rater": name, "item": nxt["item"], "said_real": bool(k % 2), "confidence": 2,
                        "disease": "UNAFFECTED", "client_ms": 900, "page_version": page_version()}
                r = c.post("/api/answer", json=body)
                if r.status_code == 200:
                    acked.append((name, nxt["item"]))
                if k % 5 == 0:
                    refused.append(c.post("/api/answer", json=body).status_code)
            except httpx.TransportError:
                return  # the server was killed mid-request: what was in flight was never acknowledged


def test_concurrent_raters_lose_and_duplicate_nothing(server):
    acked, refused = [], []
    threads = [threading.Thread(target=_rater, args=(server["base"], f"r{i:02d}", 12, acked, refused)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    rows = read_answers(server["db"])
    assert len(acked) == 10 * 12 and len(rows) == len(acked)
    assert not rows.duplicated(["rater", "item", "round"]).any()
    assert set(zip(rows["rater"], rows["item"])) == set(acked)
    assert refused and set(refused) == {409}
    status = httpx.get(server["base"] + "/api/presenter/status", params={"key": KEY}).json()
    assert status["answers"] == len(rows)


def test_killed_mid_write_keeps_a_consistent_database(server):
    acked, refused, stop = [], [], threading.Event()
    threads = [threading.Thread(target=_rater, args=(server["base"], f"k{i}", 40, acked, refused, stop)) for i in range(6)]
    for t in threads:
        t.start()
    while len(acked) < 15:  # writes are under way
        time.sleep(0.02)
    server["proc"].send_signal(signal.SIGKILL)
    stop.set()
    for t in threads:
        t.join(60)
    con = sqlite3.connect(server["db"])
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    con.close()
    rows = read_answers(server["db"])
    stored = set(zip(rows["rater"], rows["item"]))
    assert set(acked) <= stored  # every acknowledged answer survived
    assert len(stored) == len(rows) <= len(acked) + len(threads)  # at most the in-flight one per rater beyond them


@pytest.mark.skipif(chromium_path() is None, reason="no Chromium found (.ci/run installs Debian's chromium)")
def test_page_by_keyboard_resumes_and_presenter_updates(tmp_path):
    study = build_study_set(tiny_sources(per_disease=1), tmp_path / "set", per_disease=1)
    app = create_app(study, tmp_path / "answers.sqlite", presenter_key=KEY)
    base, srv = serve_in_thread(app)
    first = study.order[0]
    try:
        with Browser() as page, Browser() as presenter:
            presenter.goto(f"{base}/presenter?key={KEY}")
            assert presenter.wait_for("document.body.getAttribute('data-answers')") == "0"
            page.goto(f"{base}/?rater=kbd")
            assert page.wait_for("document.body.getAttribute('data-state') === 'rating' && "
                                 "document.body.getAttribute('data-item')") == first
            disease = study.items.loc[first, "disease_id"]
            letter = next(d["key"] for d in httpx.get(base + "/api/study").json()["diseases"] if d["id"] == disease)
            for key in ("5", letter, "Enter"):
                page.press(key)
            page.wait_for(f"document.body.getAttribute('data-item') === '{study.order[1]}'")
            rows = read_answers(tmp_path / "answers.sqlite")
            assert rows[["rater", "item", "said_real", "confidence", "disease"]].values.tolist() == \
                [["kbd", first, 1, 2, disease]]
            assert rows["page_version"].tolist() == [page_version()]
            # a reload resumes at the next item, not at the first
            page.goto(f"{base}/")
            assert page.wait_for("document.body.getAttribute('data-state') === 'rating' && "
                                 "document.body.getAttribute('data-item')") == study.order[1]
            assert re.search(r"1 / \d+ rated", page.eval("document.getElementById('progress').textContent"))
            # the presenter view polls: it shows the answer without a reload
            assert presenter.wait_for("document.body.getAttribute('data-answers') === '1'")
            shot = page.screenshot(tmp_path / "page.png")
            from PIL import Image

            assert np.asarray(Image.open(shot).convert("L"), float).std() > 10, "blank screenshot"
    finally:
        srv.should_exit = True
