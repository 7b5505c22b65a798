"""The rating server: a small FastAPI app over a study set and its SQLite answers.

Raters open ``/`` and rate one face at a time; the page asks ``/api/next`` (which records the item as shown)
and posts ``/api/answer``. Images are served by item id only (``/img/<id>``): an id is looked up in the set's
manifest, so no request can name a path. The truth never leaves the server until the presenter closes a
round.

Two modes: on 127.0.0.1 (default) no token is needed; anywhere else (``--host 0.0.0.0``, a classroom) every
request must carry the study token (``?token=`` or the ``X-Study-Token`` header). The presenter view and its
actions need the presenter key in either mode.
"""

from __future__ import annotations

import hashlib
import ipaddress
import secrets
from importlib import resources
from pathlib import Path

from fastapi import Body, FastAPI, HTTPException, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from .analysis import round_summary
from .store import Store, StoreError
from .studyset import ITEM_ID, StudySet, load_study_set

RATER = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$"
PAGE_VERSION_PATTERN = r"^[0-9a-f]{1,16}$"
# Keys the page offers for the disease question, in the set's disease order (1-6 rate realness, Enter submits).
DISEASE_KEYS = "abcdefghijklmnopqrstuvwxyz"
SEVERITY_KEYS = "7890-"  # none / mild / moderate / marked / severe -> 0..4


def _static(name: str) -> str:
    return resources.files(__package__).joinpath("static", name).read_text(encoding="utf-8")


def page_version() -> str:
    """A digest of the page and its script: stored with every answer, so answers given through another page
    can be told apart."""
    return hashlib.sha256((_static("page.html") + _static("presenter.html")).encode()).hexdigest()[:12]


class Answer(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    rater: str = Field(pattern=RATER)
    item: str = Field(pattern=f"^{ITEM_ID}$")
    said_real: bool
    confidence: int = Field(ge=1, le=3)
    disease: str = Field(min_length=1, max_length=40)
    severity: int | None = Field(default=None, ge=0, le=4)
    client_ms: int | None = Field(default=None, ge=0, le=86_400_000)
    page_version: str = Field(pattern=PAGE_VERSION_PATTERN)


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def create_app(study: StudySet | str | Path, db_path: str | Path, token: str | None = None,
               presenter_key: str | None = None) -> FastAPI:
    """The app for one set and one database. ``token``: required on every request when given (classroom
    mode). ``presenter_key``: required by the presenter's routes (a random one when not given)."""
    study = study if isinstance(study, StudySet) else load_study_set(study)
    store = Store(db_path, study.set_id)
    presenter_key = presenter_key or secrets.token_urlsafe(16)
    version = page_version()
    diseases = [{"id": d, "name": n, "key": DISEASE_KEYS[i] if i < len(DISEASE_KEYS) else ""}
                for i, (d, n) in enumerate(study.diseases.items())]
    app = FastAPI(title="phenoface reader study", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.store, app.state.study, app.state.presenter_key, app.state.token = store, study, presenter_key, token

    def check_token(request: Request) -> None:
        if token is None:
            return
        given = request.query_params.get("token") or request.headers.get("x-study-token") or ""
        if not secrets.compare_digest(given.encode(), token.encode()):
            raise HTTPException(401 if not given else 403, "this study needs its token: open the link the presenter gave")

    def check_key(key: str) -> None:
        if not secrets.compare_digest(key.encode(), presenter_key.encode()):
            raise HTTPException(403, "wrong or missing presenter key")

    @app.middleware("http")
    async def headers(request: Request, call_next):
        if token is not None:
            try:
                check_token(request)
            except HTTPException as exc:
                return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)
        response = await call_next(request)
        response.headers["Cache-Control"] = "no-store"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"  # the token is in the URL: never pass it on
        return response

    @app.get("/", response_class=HTMLResponse)
    def page():
        return _static("page.html").replace("{{PAGE_VERSION}}", version)

    @app.get("/presenter", response_class=HTMLResponse)
    def presenter(key: str = ""):
        check_key(key)
        return _static("presenter.html").replace("{{PAGE_VERSION}}", version)

    @app.get("/api/study")
    def about():
        rnd, is_open = store.round()
        return {"items": len(study.order), "diseases": diseases, "ask_severity": study.ask_severity,
                "severity_keys": SEVERITY_KEYS, "page_version": version, "round": rnd, "open": is_open}

    @app.get("/api/next")
    def next_item(rater: str = Query(pattern=RATER)):
        rnd, is_open = store.round()
        done = store.answered(rater, rnd)
        left = [i for i in study.order if i not in done]
        out = {"round": rnd, "open": is_open, "answered": len(done), "total": len(study.order)}
        if not left or not is_open:
            return {**out, "done": not left, "item": None}
        item = left[0]
        store.mark_shown(rater, item, rnd)
        return {**out, "done": False, "item": item, "image": f"/img/{item}", "position": len(done) + 1}

    @app.post("/api/answer")
    def answer(a: Answer = Body()):
        if a.item not in study.items.index:
            raise HTTPException(404, "no such item in this study")
        if a.disease not in study.diseases:
            raise HTTPException(422, f"unknown disease {a.disease!r}")
        if study.ask_severity and a.severity is None:
            raise HTTPException(422, "this study asks for a severity rating")
        if not study.ask_severity and a.severity is not None:
            raise HTTPException(422, "this study does not ask for a severity rating")
        try:
            count = store.add_answer(a.rater, a.item, a.said_real, a.confidence, a.disease, a.severity, a.client_ms,
                                     a.page_version)
        except StoreError as exc:
            raise HTTPException(exc.status, str(exc)) from None
        return {"stored": True, "answered": count}

    @app.get("/img/{item_id}")
    def image(item_id: str):
        # the id is checked against the manifest, never joined to a path the request chose
        if len(item_id) != 12 or item_id not in study.items.index:
            raise HTTPException(404, "no such image")
        return FileResponse(study.image_path(item_id), media_type="image/png")

    @app.get("/api/presenter/status")
    def status(key: str = ""):
        check_key(key)
        rnd, is_open = store.round()
        out = {"round": rnd, "open": is_open, "items": len(study.order), **store.counts(rnd)}
        if not is_open:  # answers are revealed only once the round is closed

            out["results"] = round_summary(store.answers(rnd), study)
        return out

    @app.post("/api/presenter/close")
    def close(key: str = ""):
        check_key(key)
        return {"closed": store.close_round()}

    @app.post("/api/presenter/open")
    def reopen(key: str = ""):
        check_key(key)
        return {"round": store.open_round()}

    @app.get("/api/presenter/export.csv")
    def export(key: str = ""):
        check_key(key)
        return Response(store.export_csv(), media_type="text/csv",
                        headers={"Content-Disposition": "attachment; filename=study_answers.csv"})

    return app


def serve(set_dir, db_path, host: str = "127.0.0.1", port: int = 8765, token: str | None = None,
          presenter_key: str | None = None) -> None:
    """Run the app with uvicorn. Off loopback a token is required (one is made when not given)."""
    import uvicorn

    if not is_loopback(host) and not token:
        token = secrets.token_urlsafe(12)
    app = create_app(set_dir, db_path, token=token, presenter_key=presenter_key)
    shown = host if host not in ("0.0.0.0", "::") else "<this machine's address>"
    q = f"?token={token}" if token else ""
    print(f"study set {app.state.study.set_id}: {len(app.state.study)} faces; answers -> {db_path}", flush=True)
    print(f"raters:    http://{shown}:{port}/{q}", flush=True)
    print(f"presenter: http://{shown}:{port}/presenter{q}{'&' if q else '?'}key={app.state.presenter_key}", flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)


def launch(set_dir, db_path, port: int, presenter_key: str | None = None, host: str = "127.0.0.1",
           timeout: float = 60.0):
    """Start ``python -m phenoface.study serve`` in a child process of this checkout and wait until it answers
    ``/api/study``: (process, base URL). The caller stops it (``terminate``). A server that exits or does not
    answer within ``timeout`` seconds is killed and reported with its output."""
    import os
    import subprocess
    import sys
    import time

    import httpx

    lib = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": lib + os.pathsep + os.environ.get("PYTHONPATH", "")}
    cmd = [sys.executable, "-m", "phenoface.study", "serve", "--set", str(set_dir), "--db", str(db_path),
           "--host", host, "--port", str(port)] + (["--presenter-key", presenter_key] if presenter_key else [])
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://{host}:{port}"
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(base + "/api/study", timeout=2).status_code == 200:
                return proc, base
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"the study server did not start: {proc.communicate(timeout=10)[0]}")
        time.sleep(0.2)
