"""One way to talk to any OpenAI-compatible endpoint (OpenAI, vLLM, Ollama, llama.cpp server, or the
embedded SmolLM2), through the ``openai`` client, with the reply cache in front.

Where the endpoint comes from, first match wins:
  ``base_url`` argument (notebook parameter ``LLM_BASE_URL``; ``"embedded"`` = the packaged SmolLM2)
  -> environment ``OPENAI_BASE_URL`` -> the embedded server.
The model: ``model`` argument (``LLM_MODEL``) -> ``OPENAI_MODEL`` -> the embedded model.
The API key is read only from ``OPENAI_API_KEY`` (never a parameter, never printed or cached); local
servers that need none get a placeholder.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from .cache import ReplyCache, cache_key
from .server import EmbeddedServer, ServerError, gguf_model_id

EMBEDDED = "embedded"
ENV_HELP = ("Set OPENAI_BASE_URL (and OPENAI_API_KEY if the server needs one) and OPENAI_MODEL, or the notebook "
            "parameters LLM_BASE_URL / LLM_MODEL; LLM_BASE_URL=embedded starts the packaged SmolLM2 locally.")


class LLMUnavailable(RuntimeError):
    """The LLM endpoint could not be reached, timed out, refused the key or does not know the model."""


@dataclass
class Reply:
    text: str
    model_id: str
    cached: bool
    seconds: float
    finish_reason: str = ""
    completion_tokens: int | None = None
    prompt_tokens: int | None = None


@dataclass
class LLM:
    """A chat endpoint with deterministic settings (temperature 0, fixed seed) and a disk cache.

    The embedded server starts lazily, on the first reply the cache does not hold, so a fully
    cached rerun never starts it. Use as a context manager (the server stops on exit)."""

    base_url: str
    model: str
    model_id: str
    cache: ReplyCache | None = None
    seed: int = 0
    temperature: float = 0.0
    timeout: float = 120.0
    server: EmbeddedServer | None = None
    kind: str = "remote"
    calls: int = 0
    cache_hits: int = 0
    _client: Any = field(default=None, repr=False)

    @property
    def endpoint(self) -> str:
        """Where replies come from, for reports (host only; never a key)."""
        if self.kind == EMBEDDED:
            return "embedded transformers serve (localhost)"
        u = urlparse(self.base_url)
        return f"{u.scheme}://{u.hostname}{':' + str(u.port) if u.port else ''}{u.path}"

    def params(self, max_tokens: int) -> dict:
        return {"temperature": self.temperature, "seed": self.seed, "max_tokens": int(max_tokens)}

    def _ensure_client(self):
        if self._client is not None:
            return self._client
        if self.server is not None:
            try:
                self.server.start()
            except ServerError as err:
                raise LLMUnavailable(f"The embedded LLM server would not start: {err}\n{ENV_HELP}") from None
            self.base_url = self.server.base_url
            self.model = self.server.model
        import openai

        key = os.environ.get("OPENAI_API_KEY") or "not-needed"  # local servers ignore it
        self._client = openai.OpenAI(base_url=self.base_url, api_key=key, timeout=self.timeout, max_retries=1)
        return self._client

    def chat(self, messages: list[dict], max_tokens: int = 128) -> Reply:
        params = self.params(max_tokens)
        key = cache_key(self.model_id, messages, params)
        if self.cache is not None:
            hit = self.cache.get(key)
            if hit is not None:
                self.cache_hits += 1
                return Reply(hit["reply"], hit.get("model_id", self.model_id), True, 0.0, hit.get("finish_reason", ""),
                             hit.get("completion_tokens"), hit.get("prompt_tokens"))
        client = self._ensure_client()
        import openai

        t0 = time.perf_counter()
        try:
            resp = client.chat.completions.create(model=self.model, messages=messages, **params)
        except (openai.APIConnectionError, openai.APITimeoutError) as err:
            what = "timed out" if isinstance(err, openai.APITimeoutError) else "could not be reached"
            raise LLMUnavailable(f"The LLM endpoint {self.endpoint} (model {self.model_id}) {what} "
                                 f"({type(err).__name__}, timeout {self.timeout:g} s). {ENV_HELP}") from None
        except (openai.AuthenticationError, openai.PermissionDeniedError) as err:
            raise LLMUnavailable(f"The LLM endpoint {self.endpoint} refused the key in OPENAI_API_KEY "
                                 f"({type(err).__name__}). {ENV_HELP}") from None
        except openai.NotFoundError as err:
            raise LLMUnavailable(f"The LLM endpoint {self.endpoint} does not serve model {self.model!r} "
                                 f"({type(err).__name__}). {ENV_HELP}") from None
        seconds = time.perf_counter() - t0
        self.calls += 1
        choice = resp.choices[0]
        text = choice.message.content or ""
        usage = getattr(resp, "usage", None)
        reply = Reply(text, self.model_id, False, seconds, choice.finish_reason or "",
                      getattr(usage, "completion_tokens", None), getattr(usage, "prompt_tokens", None))
        if self.cache is not None:
            self.cache.put(key, self.model_id, messages, params, text, served_by=self.endpoint,
                           finish_reason=reply.finish_reason, completion_tokens=reply.completion_tokens,
                           prompt_tokens=reply.prompt_tokens, seconds=round(seconds, 3))
        return reply

    def close(self) -> None:
        if self._client is not None:
            try:
                self._client.close()
            except Exception:
                pass
            self._client = None
        if self.server is not None:
            self.server.stop()

    def __enter__(self) -> "LLM":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_llm(base_url: str = "", model: str = "", cache_dir: str | os.PathLike | None = None, seed: int = 0,
             timeout: float = 120.0, startup_timeout: float = 240.0) -> LLM:
    """The LLM to use: ``base_url`` / ``model`` (parameters) or OPENAI_BASE_URL / OPENAI_MODEL, else the
    embedded SmolLM2. Nothing is contacted yet."""
    cache = ReplyCache(cache_dir) if cache_dir else None
    url = (base_url or "").strip() or os.environ.get("OPENAI_BASE_URL", "").strip() or EMBEDDED
    if url == EMBEDDED:
        name = (model or "").strip()
        if name and name not in {EMBEDDED, "SmolLM2-135M-Instruct", "smollm2"}:
            raise ValueError(f"LLM_MODEL {name!r} needs an endpoint: the embedded server serves only "
                             f"SmolLM2-135M-Instruct. {ENV_HELP}")
        server = EmbeddedServer(startup_timeout=startup_timeout)
        return LLM("", "", gguf_model_id(), cache, seed, 0.0, timeout, server, EMBEDDED)
    name = (model or "").strip() or os.environ.get("OPENAI_MODEL", "").strip()
    if not name:
        raise ValueError(f"An LLM endpoint ({url}) needs a model name. {ENV_HELP}")
    if not urlparse(url).scheme:
        raise ValueError(f"LLM base URL {url!r} is not a URL (e.g. http://localhost:8000/v1). {ENV_HELP}")
    return LLM(url, name, name, cache, seed, 0.0, timeout, None, "remote")
