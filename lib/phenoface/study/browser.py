"""Headless Chromium driven over its DevTools protocol: load a page, press keys, read the DOM, take a
screenshot. Used by the study page's tests and by notebook 09 for the screenshot in its report.

Only the Debian ``chromium`` package (or Chrome) is needed, no WebDriver: Chromium is started with
``--remote-debugging-port=0`` on loopback, writes the port it chose into its profile folder, and one page
target is driven through ``websocket-client``.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

from .server import create_app

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
         "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0"]


def chromium_path() -> str | None:
    return next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)


class Browser:
    """One headless Chromium with one page. Use as a context manager; every wait is bounded."""

    def __init__(self, width: int = 1100, height: int = 800, timeout: float = 60.0):
        exe = chromium_path()
        if exe is None:
            raise FileNotFoundError("no Chromium found (Debian: apt-get install chromium)")
        self.timeout = timeout
        # Chromium may still be writing its profile as it exits: a leftover file must not fail the caller
        self._profile = tempfile.TemporaryDirectory(prefix="phenoface-chromium-", ignore_cleanup_errors=True)
        self.proc = subprocess.Popen([exe, *FLAGS, f"--window-size={width},{height}",
                                      f"--user-data-dir={self._profile.name}", "about:blank"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port_file = Path(self._profile.name) / "DevToolsActivePort"
        deadline = time.monotonic() + timeout
        while not (port_file.is_file() and port_file.read_text().strip()):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.close()
                raise RuntimeError("Chromium did not open its DevTools port")
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        targets = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=timeout).read())
        page = next(t for t in targets if t.get("type") == "page")
        import websocket

        self.ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=timeout, suppress_origin=True)
        self._id = 0

    def send(self, method: str, **params) -> dict:
        self._id += 1
        self.ws.send(json.dumps({"id": self._id, "method": method, "params": params}))
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self._id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
        raise TimeoutError(method)

    def goto(self, url: str) -> None:
        self.send("Page.enable")
        self.send("Page.navigate", url=url)

    def eval(self, expression: str):
        res = self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        return res.get("result", {}).get("value")

    def wait_for(self, expression: str, timeout: float | None = None):
        """Poll a JavaScript expression until it is truthy; its value, or TimeoutError."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while time.monotonic() < deadline:
            value = self.eval(expression)
            if value:
                return value
            time.sleep(0.1)
        raise TimeoutError(f"waited for {expression}")

    def press(self, key: str) -> None:
        """A key press as the page's keydown listener sees it (``Enter`` or one character)."""
        text = "\r" if key == "Enter" else key
        code = 13 if key == "Enter" else ord(key.upper())
        for kind in ("keyDown", "keyUp"):
            self.send("Input.dispatchKeyEvent", type=kind, key=key, text=text if kind == "keyDown" else "",
                      windowsVirtualKeyCode=code, nativeVirtualKeyCode=code)

    def screenshot(self, path) -> Path:
        data = self.send("Page.captureScreenshot", format="png")["data"]
        path = Path(path)
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        ws = getattr(self, "ws", None)
        if ws is not None:
            try:
                ws.close()
            except Exception:  # noqa: BLE001  closing a socket to a browser that already went
                pass
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._profile.cleanup()

    def __enter__(self) -> "Browser":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def serve_in_thread(app, host: str = "127.0.0.1"):
    """Start ``app`` with uvicorn on a free loopback port in a daemon thread; returns (base URL, server).
    ``server.should_exit = True`` stops it."""
    import threading

    import uvicorn

    config = uvicorn.Config(app, host=host, port=0, log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not (server.started and server.servers):
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the study server did not start")
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    return f"http://{host}:{port}", server


def page_screenshot(study, target, rater: str = "preview") -> Path:
    """The rating page as a rater sees it (first face, a realness and a disease key pressed), served from a
    throw-away database on loopback."""

    with tempfile.TemporaryDirectory(prefix="phenoface-study-", ignore_cleanup_errors=True) as tmp:
        base, server = serve_in_thread(create_app(study, Path(tmp) / "preview.sqlite"))
        try:
            with Browser(width=1100, height=720) as page:
                page.goto(f"{base}/?rater={rater}")
                page.wait_for("document.body.getAttribute('data-state') === 'rating'")
                page.press("4")
                page.press("a")
                return page.screenshot(target)
        finally:
            server.should_exit = True
