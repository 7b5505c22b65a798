"""One way to talk to any OpenAI-compatible endpoint (OpenAI, vLLM, Ollama, llama.cpp server, or the
embedded SmolLM2), through the ``openai`` client, with the reply cache in front.

Where a reply comes from, first match wins: this run's reply cache (``cache_dir``), the shipped reply cache
of the embedded model (:mod:`phenoface.llm.shipped`, only for the exact model, server and settings that
made it), the endpoint itself ("live").

Where the endpoint comes from, first match wins:
  ``base_url`` argument (notebook parameter ``LLM_BASE_URL``; ``"embedded"`` = the packaged SmolLM2)
  -> environment ``OPENAI_BASE_URL`` -> the embedded server.
The model: ``model`` argument (``LLM_MODEL``) -> ``OPENAI_MODEL`` -> the embedded model.
The API key is read only from ``OPENAI_API_KEY`` (never a parameter, never printed or cached); local
servers that need none get a placeholder.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from .cache import ReplyCache, cache_key
from .server import EMBEDDED, EMBEDDED_MODEL, EmbeddedServer, ServerError, gguf_model_id
from .shipped import shipped_replies
ENV_HELP = ("Set OPENAI_BASE_URL (and OPENAI_API_KEY if the server needs one) and OPENAI_MODEL, or the notebook "
            "parameters LLM_BASE_URL / LLM_MODEL; LLM_BASE_URL=embedded starts the packaged SmolLM2 locally.")


class LLMUnavailable(RuntimeError):
    """The LLM endpoint is broken for this run: it could not be reached, timed out, refused the key, does not
    know the model, kept answering HTTP errors (after the openai client's own retries with backoff), or
    answered something that is not a chat completion (not JSON, JSON of another shape).

    ``reason`` is a short label for counting ("HTTP 500", "not JSON", ...); ``asked`` is False when the
    request was not sent at all because the endpoint had already failed in this run."""

    def __init__(self, message: str, reason: str = "unavailable", asked: bool = True):
        super().__init__(message)
        self.reason = reason
        self.asked = asked


@dataclass
class Reply:
    text: str
    model_id: str
    cached: bool
    seconds: float
    finish_reason: str = ""
    completion_tokens: int | None = None
    prompt_tokens: int | None = None
    problem: str = ""  # a bad reply: a chat completion whose content cannot be used (no choices, empty content)
    source: str = "live"  # live | cache (this run's reply cache) | packaged (the shipped reply cache)


_STATUS_NAMES = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 408: "Request Timeout",
                 409: "Conflict", 413: "Payload Too Large", 422: "Unprocessable Entity", 429: "Too Many Requests",
                 500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}


_BEARER = re.compile(r"(Bearer\s+)[^\s'\",;]+", re.I)
# OpenAI-style secret keys, caught even when the key that was sent is no longer in the environment (a cache
# entry written by an older version, read by a run without OPENAI_API_KEY).
_SECRET_KEY = re.compile(r"\bsk-[A-Za-z0-9_-]{16,}")


def scrub(text: str) -> str:
    """``text`` with the value of OPENAI_API_KEY (if set), any bearer token and anything shaped like an
    OpenAI secret key blanked out, for anything shown, raised, cached or saved (a server may echo the
    request's headers in its error page or in its reply)."""
    key = os.environ.get("OPENAI_API_KEY", "")
    text = str(text)
    if len(key) >= 4:
        text = text.replace(key, "<OPENAI_API_KEY>")
    return _SECRET_KEY.sub("<hidden>", _BEARER.sub(r"\1<hidden>", text))


def excerpt(text: str, n: int = 160) -> str:
    """One line of at most ``n`` characters of a server's body, key removed."""
    one = " ".join(scrub(text).split())
    return one if len(one) <= n else one[: n - 1] + "…"


def _http_errors() -> tuple[type[Exception], ...]:
    """The HTTP library's own errors (a body cut off mid-read, say), whichever httpx the openai client uses."""
    out = []
    for name in ("httpx2", "httpx"):
        try:
            out.append(__import__(name).HTTPError)
        except (ImportError, AttributeError):
            pass
    return tuple(out)


def _content_text(content) -> str | None:
    """``message.content`` as text: a string, None, or a list of text parts; None when it is none of these."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(isinstance(p, dict) for p in content):
        return "".join(str(p.get("text") or "") for p in content)
    return None


@dataclass
class LLM:
    """A chat endpoint with deterministic settings (temperature 0, fixed seed) and a disk cache.

    The embedded server starts lazily, on the first reply the cache does not hold, so a fully
    cached rerun never starts it. Use as a context manager (the server stops on exit).

    Failures: every error of a request is an :class:`LLMUnavailable` (the endpoint is broken) or a bad
    reply (``Reply.problem`` set: a chat completion with no choices or empty content). Once the endpoint
    has failed, later requests are not sent (cached replies are still read) and raise LLMUnavailable with
    ``asked=False``. The counts (``requests``, ``http_attempts``, ``failures``, ``bad_replies``, ``error``)
    are in :meth:`counts`. HTTP 429 / 5xx / 408 / 409 are retried by the openai client ``max_retries``
    times with exponential backoff (0.5 s, 1 s, 2 s, ... or the server's Retry-After) before they count."""

    base_url: str
    model: str
    model_id: str
    cache: ReplyCache | None = None
    seed: int = 0
    temperature: float = 0.0
    timeout: float = 120.0
    server: EmbeddedServer | None = None
    kind: str = "remote"
    max_retries: int = 2
    packaged: Any = None  # the shipped replies (``shipped.ShippedReplies``), read after ``cache``; None: not read
    calls: int = 0  # chat completions received (good or bad replies)
    cache_hits: int = 0
    packaged_hits: int = 0
    requests: int = 0  # requests sent to the endpoint (each may be several HTTP attempts)
    http_attempts: int = 0  # HTTP requests, the openai client's retries included
    failures: Counter = field(default_factory=Counter)  # reason -> requests that ended in LLMUnavailable
    bad_replies: Counter = field(default_factory=Counter)  # problem -> chat completions with unusable content
    error: str = ""  # the first LLMUnavailable message of this run ("" while the endpoint works)
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

    def counts(self) -> dict:
        """What happened so far: requests sent, HTTP attempts (retries included), replies, cache hits (this run's
        cache; the shipped replies), failed requests by reason, bad replies by problem, and the error that made
        the endpoint unavailable."""
        return {"requests": self.requests, "http_attempts": self.http_attempts, "replies": self.calls,
                "cache_hits": self.cache_hits, "packaged_hits": self.packaged_hits,
                "failed_requests": sum(self.failures.values()),
                "failures": dict(self.failures), "bad_replies": sum(self.bad_replies.values()),
                "bad_reply_problems": dict(self.bad_replies), "unavailable": self.error}

    def _unavailable(self, reason: str, what: str, help_text: str = ENV_HELP) -> LLMUnavailable:
        """Record a failed request and make the exception (the message names endpoint and model)."""
        msg = scrub(f"The LLM endpoint {self.endpoint} (model {self.model_id}) {what}. {help_text}".strip())
        self.failures[reason] += 1
        if not self.error:
            self.error = msg
        return LLMUnavailable(msg, reason)

    def _count_attempt(self, request) -> None:
        self.http_attempts += 1

    def _ensure_client(self):
        if self._client is not None:
            return self._client
        if self.server is not None:
            try:
                self.server.start()
            except (ServerError, OSError, ImportError, RuntimeError, ValueError) as err:
                raise self._unavailable("embedded server did not start",
                                        f"would not start: {scrub(str(err))}") from None
            self.base_url = self.server.base_url
            self.model = self.server.model
        import openai

        key = os.environ.get("OPENAI_API_KEY") or "not-needed"  # local servers ignore it
        http = openai.DefaultHttpxClient(event_hooks={"request": [self._count_attempt]})
        self._client = openai.OpenAI(base_url=self.base_url, api_key=key, timeout=self.timeout,
                                     max_retries=max(0, int(self.max_retries)), http_client=http)
        return self._client

    def _retried(self, attempts: int) -> str:
        retries = max(0, attempts - 1)
        return (f"after {retries} retr{'y' if retries == 1 else 'ies'} with backoff (max_retries={self.max_retries})"
                if retries else f"(no retries: max_retries={self.max_retries})")

    def _status_error(self, err, attempts: int) -> LLMUnavailable:
        code = int(getattr(err, "status_code", 0) or 0)
        name = _STATUS_NAMES.get(code, "")
        body = excerpt(getattr(getattr(err, "response", None), "text", "") or "")
        said = f"; it said: {body!r}" if body else ""
        kept = "kept answering" if attempts > 1 else "answered"
        if code in (401, 403):
            return self._unavailable(f"HTTP {code}", f"refused the key in OPENAI_API_KEY (HTTP {code} {name}){said}")
        if code == 404:
            return self._unavailable("HTTP 404", f"does not serve model {self.model!r} (HTTP 404 Not Found){said}")
        if code == 429:
            return self._unavailable("HTTP 429", f"{kept} HTTP 429 Too Many Requests (rate limited) "
                                     f"{self._retried(attempts)}{said}",
                                     "Wait and rerun (replies already received are cached), or ask the provider "
                                     "for a higher rate limit.")
        if code >= 500:
            return self._unavailable(f"HTTP {code}", f"{kept} HTTP {code} {name} (a server error) "
                                     f"{self._retried(attempts)}{said}",
                                     "Check the server's log or point LLM_BASE_URL / OPENAI_BASE_URL at another "
                                     "server; replies already received are cached.")
        return self._unavailable(f"HTTP {code}", f"answered HTTP {code} {name}{said}")

    def _completion(self, response, seconds: float) -> Reply:
        """A chat-completions body -> Reply; LLMUnavailable when the body is not one."""
        status = response.status_code
        ctype = response.headers.get("content-type", "") or "no Content-Type"
        text = response.text
        try:
            data = json.loads(text)
        except ValueError:
            raise self._unavailable("not JSON", f"answered HTTP {status} with a body that is not JSON "
                                    f"({ctype}): {excerpt(text)!r}; an OpenAI-compatible server answers "
                                    "chat-completions JSON") from None
        if isinstance(data, dict) and "error" in data and "choices" not in data:
            err = data["error"]
            said = err.get("message", err) if isinstance(err, dict) else err
            raise self._unavailable("error in the reply", f"answered HTTP {status} with an error: "
                                    f"{excerpt(str(said))!r}")
        if not isinstance(data, dict) or not isinstance(data.get("choices"), list):
            shape = (f"an object with keys {sorted(map(str, data))[:8]}" if isinstance(data, dict) else
                     f"a JSON {type(data).__name__}")
            raise self._unavailable("not chat-completions JSON", f"answered JSON that is not a chat completion: "
                                    f"{shape}, no \"choices\" list ({excerpt(text, 80)!r})")
        self.calls += 1
        usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
        tokens = {k: usage.get(k) if isinstance(usage.get(k), int) else None
                  for k in ("completion_tokens", "prompt_tokens")}
        if not data["choices"]:
            self.bad_replies["no choices"] += 1
            return Reply("", self.model_id, False, seconds, "", problem="the reply had no choices", **tokens)
        choice = data["choices"][0]
        message = choice.get("message") if isinstance(choice, dict) else None
        content = _content_text(message.get("content")) if isinstance(message, dict) else None
        if content is None:
            raise self._unavailable("not chat-completions JSON", f"answered JSON that is not a chat completion: "
                                    f"choices[0] has no message with text content ({excerpt(text, 80)!r})")
        finish = choice.get("finish_reason") if isinstance(choice.get("finish_reason"), str) else ""
        if not content.strip():
            self.bad_replies["empty content"] += 1
            return Reply("", self.model_id, False, seconds, finish,
                         problem=f"the reply was empty (finish_reason {finish or 'none'})", **tokens)
        # before it is cached or handed on: a server that echoes the request's headers would put the key everywhere
        return Reply(scrub(content), self.model_id, False, seconds, finish, **tokens)

    def chat(self, messages: list[dict], max_tokens: int = 128) -> Reply:
        """One reply: from the cache, or from the endpoint. Raises LLMUnavailable (the endpoint is broken);
        a reply whose content cannot be used comes back with ``problem`` set (and is not cached)."""
        params = self.params(max_tokens)
        key = cache_key(self.model_id, messages, params, "" if self.kind == EMBEDDED else self.endpoint)
        if self.cache is not None:
            hit = self.cache.get(key)
            if hit is not None:
                self.cache_hits += 1
                # an entry an older version stored unscrubbed is scrubbed on the way out too
                return Reply(scrub(hit["reply"]), hit.get("model_id", self.model_id), True, 0.0,
                             hit.get("finish_reason", ""), hit.get("completion_tokens"), hit.get("prompt_tokens"),
                             source="cache")
        if self.packaged is not None:
            hit = self.packaged.get(key)
            if hit is not None:
                self.packaged_hits += 1
                return Reply(scrub(hit["reply"]), self.model_id, True, 0.0, hit.get("finish_reason", ""),
                             hit.get("completion_tokens"), hit.get("prompt_tokens"), source="packaged")
        if self.error:  # the endpoint already failed in this run: do not ask again
            raise LLMUnavailable(f"Not asked: {self.error.splitlines()[0]}", "not asked", asked=False)
        client = self._ensure_client()
        import openai

        self.requests += 1
        attempts0 = self.http_attempts
        t0 = time.perf_counter()
        try:
            raw = client.chat.completions.with_raw_response.create(model=self.model, messages=messages, **params)
            response = raw.http_response  # read in full by with_raw_response
        except openai.APITimeoutError as err:
            raise self._unavailable("timed out", f"timed out ({type(err).__name__}, timeout {self.timeout:g} s, "
                                    f"{self.http_attempts - attempts0} attempt(s))") from None
        except openai.APIConnectionError as err:
            raise self._unavailable("unreachable", f"could not be reached ({type(err).__name__}, timeout "
                                    f"{self.timeout:g} s, {self.http_attempts - attempts0} attempt(s))") from None
        except openai.APIStatusError as err:
            raise self._status_error(err, self.http_attempts - attempts0) from None
        except (openai.APIError, ValueError, *_http_errors()) as err:  # anything else the client could not read
            raise self._unavailable(type(err).__name__, f"gave an answer the openai client could not read "
                                    f"({type(err).__name__}: {excerpt(str(err))})") from None
        seconds = time.perf_counter() - t0
        reply = self._completion(response, seconds)
        if self.cache is not None and not reply.problem:
            self.cache.put(key, self.model_id, messages, params, reply.text, served_by=self.endpoint,
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
             timeout: float = 120.0, startup_timeout: float = 240.0, max_retries: int = 2,
             packaged: str = "none") -> LLM:
    """The LLM to use: ``base_url`` / ``model`` (parameters) or OPENAI_BASE_URL / OPENAI_MODEL, else the
    embedded SmolLM2. Nothing is contacted yet. ``max_retries``: how often the openai client retries a
    request answered with HTTP 429 / 5xx (or a dropped connection), with exponential backoff from 0.5 s.
    ``packaged="packaged"`` (notebook parameter ``LLM_CACHE``) lets the embedded model's shipped replies answer
    the prompts they hold, when model file, server and settings are those that made them; "none" reads none."""
    if packaged not in ("packaged", "none"):
        raise ValueError(f"LLM_CACHE={packaged!r}: use \"packaged\" (the shipped replies of the embedded model) "
                         "or \"none\" (every prompt the run's own cache lacks is asked live)")
    cache = ReplyCache(cache_dir) if cache_dir else None
    url = (base_url or "").strip() or os.environ.get("OPENAI_BASE_URL", "").strip() or EMBEDDED
    if url == EMBEDDED:
        name = (model or "").strip()
        if name and name not in {EMBEDDED, "SmolLM2-135M-Instruct", "smollm2"}:
            raise ValueError(f"LLM_MODEL {name!r} needs an endpoint: the embedded server serves only "
                             f"SmolLM2-135M-Instruct. {ENV_HELP}")
        server = EmbeddedServer(startup_timeout=startup_timeout)
        try:
            model_id = gguf_model_id()
        except ServerError:  # the packaged model is missing: server.start() fails, as an LLMUnavailable
            model_id = EMBEDDED_MODEL
        llm = LLM("", "", model_id, cache, seed, 0.0, timeout, server, EMBEDDED, max_retries)
        if packaged == "packaged":
            llm.packaged = shipped_replies(llm)
        return llm
    name = (model or "").strip() or os.environ.get("OPENAI_MODEL", "").strip()
    if not name:
        raise ValueError(f"An LLM endpoint ({url}) needs a model name. {ENV_HELP}")
    if not urlparse(url).scheme:
        raise ValueError(f"LLM base URL {url!r} is not a URL (e.g. http://localhost:8000/v1). {ENV_HELP}")
    return LLM(url, name, name, cache, seed, 0.0, timeout, None, "remote", max_retries)
