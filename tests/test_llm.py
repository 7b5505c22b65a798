"""phenoface.llm: prompts, schema parsing, retries and failures against a fake OpenAI-compatible
endpoint (a tiny local HTTP server whose canned replies are test fixtures, never model output),
grounding, the cache, clear errors, and one short integration test against the real embedded server."""
import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from phenoface.llm import (LLMUnavailable, ReplyCache, agreement, cache_key, feature_messages, ground,
                           negative_messages, open_llm, parse_features, parse_negatives, related, retry_messages)
from phenoface.llm.elicit import (elicit_features, elicitation_outcome, ground_table, llm_evidence, mine_negatives,
                                  nearest_diseases)


# -- a fake OpenAI-compatible endpoint ---------------------------------------------------------------------
class FakeEndpoint:
    """Serves /v1/chat/completions with the queued replies, in order, then ``default`` (if given); records
    requests. A queued string is the content of a well-formed chat completion; a dict is a raw answer:
    ``status``, ``body`` ("{auth}" in it becomes the request's Authorization header, as a careless server
    might echo it), ``ctype`` and extra ``headers``."""

    def __init__(self, replies, delay=0.0, default=None):
        self.replies, self.requests, self.delay, self.default = list(replies), [], delay, default
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                auth = self.headers.get("Authorization", "")
                outer.requests.append({"body": body, "auth": auth})
                if outer.delay:
                    import time

                    time.sleep(outer.delay)
                spec = outer.replies.pop(0) if outer.replies else outer.default if outer.default is not None else "{}"
                if isinstance(spec, str):
                    spec = {"body": completion(spec, body["model"])}
                data = spec["body"].replace("{auth}", auth).encode()
                try:
                    self.send_response(spec.get("status", 200))
                    self.send_header("Content-Type", spec.get("ctype", "application/json"))
                    for k, v in spec.get("headers", {}).items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout test)
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def completion(text, model="fake-model", choices=None):
    """A chat-completions body (fixture) with ``text`` as the assistant's content."""
    if choices is None:
        choices = [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}]
    return json.dumps({"id": "x", "object": "chat.completion", "created": 0, "model": model, "choices": choices,
                       "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}})


@pytest.fixture
def fake():
    made = []

    def make(replies, delay=0.0, default=None):
        f = FakeEndpoint(replies, delay, default)
        made.append(f)
        return f

    yield make
    for f in made:
        f.close()


GOOD = json.dumps({"features": [{"feature": "wide-set eyes", "age_band": "child", "typical": "very common"},
                                {"feature": "a flat nasal bridge", "typical": "common"}]})


# -- prompts ---------------------------------------------------------------------------------------------
def test_feature_prompt_names_disease_band_and_schema():
    msgs = feature_messages("Down syndrome", "child", 4)
    assert msgs[0]["role"] == "system" and msgs[1]["role"] == "user"
    user = msgs[1]["content"]
    assert "Down syndrome" in user and "a child (2-12 years)" in user and "at most 4" in user
    assert '"features"' in user and '"typical"' in user
    assert "18 years or older" in feature_messages("X", "adult")[1]["content"]
    with pytest.raises(ValueError, match="unknown age band"):
        feature_messages("X", "toddler")


def test_negative_and_retry_prompts():
    user = negative_messages("Down syndrome", ["Trisomy 18", "Zellweger"])[1]["content"]
    assert "Trisomy 18, Zellweger" in user and "NOT" in user and '"absent"' in user
    first = feature_messages("X", "child")
    msgs = retry_messages(first, "oops", "no JSON")
    assert [m["role"] for m in msgs] == ["system", "user"] and "no JSON" in msgs[-1]["content"]
    assert msgs[-1]["content"].startswith(first[-1]["content"]) and "oops" not in msgs[-1]["content"]


# -- schema parsing --------------------------------------------------------------------------------------
def test_parse_features_strict_fenced_salvaged_and_malformed():
    p = parse_features(GOOD, "child")
    assert p.status == "ok" and [i["phrase"] for i in p.items] == ["wide-set eyes", "a flat nasal bridge"]
    assert p.items[0]["typical"] == "very common" and p.items[1]["band_given"] == ""
    assert parse_features("```json\n" + GOOD + "\n```", "child").status == "ok"
    truncated = '{"features": [{"feature": "upslanted eyes", "typical": "common"}, {"feature": "sm'
    p = parse_features(truncated, "infant")
    assert p.status == "salvaged" and [i["phrase"] for i in p.items] == ["upslanted eyes"]
    assert p.items[0]["age_band"] == "infant"
    unclosed = '{"features": [{"feature": "large head", "typical": "large head|large head|large'
    assert [i["phrase"] for i in parse_features(unclosed, "child").items] == ["large head"]
    assert parse_features("Children with this syndrome have a round face.", "child").status == "malformed"
    assert parse_features('{"features": [{"feature": "<short phrase>"}]}', "child").status == "malformed"
    parts = parse_features('{"features": [{"feature": "large face with a wide forehead, wide eyes, and a wide mouth."}]}', "adult")
    assert [i["phrase"] for i in parts.items] == ["large face", "a wide forehead", "wide eyes", "a wide mouth"]
    dup = json.dumps({"features": [{"feature": "Round face"}, {"feature": "round face."}, {"feature": 3}]})
    assert [i["phrase"] for i in parse_features(dup, "child").items] == ["Round face"]


def test_parse_negatives():
    p = parse_negatives(json.dumps({"distinguishing": ["upslanted eyes"], "absent": ["cleft lip", "cleft lip"]}))
    assert p.status == "ok" and p.items == [{"kind": "distinguishing", "phrase": "upslanted eyes"},
                                            {"kind": "absent", "phrase": "cleft lip"}]
    p = parse_negatives('{"distinguishing": ["a flat face", "short ne')
    assert p.status == "salvaged" and p.items == [{"kind": "distinguishing", "phrase": "a flat face"}]
    assert parse_negatives("none").status == "malformed"


# -- client, retries, failures, cache ----------------------------------------------------------------------
def test_retry_then_success_and_cache(fake, tmp_path):
    ep = fake(["not json at all", GOOD])
    llm = open_llm(ep.url, "fake-model", cache_dir=tmp_path / "cache", seed=3)
    replies, claims = elicit_features(llm, {"OMIM:190685": "Down syndrome"}, ["child"], retries=2)
    assert list(replies["status"]) == ["malformed", "ok"] and list(replies["attempt"]) == [0, 1]
    assert len(claims) == 2 and set(claims["band"]) == {"child"}
    body = ep.requests[0]["body"]
    assert body["temperature"] == 0 and body["seed"] == 3 and body["model"] == "fake-model"
    assert "could not be used" in ep.requests[1]["body"]["messages"][-1]["content"]
    # a rerun is served from the cache: no request, same claims, model recorded in the cache
    again = open_llm(ep.url, "fake-model", cache_dir=tmp_path / "cache", seed=3)
    replies2, claims2 = elicit_features(again, {"OMIM:190685": "Down syndrome"}, ["child"], retries=2)
    assert len(ep.requests) == 2 and replies2["cached"].all() and claims2.equals(claims)
    entries = [json.loads(p.read_text()) for p in (tmp_path / "cache").glob("*/*.json")]
    assert {e["model_id"] for e in entries} == {"fake-model"} and len(entries) == 2


def test_bounded_retries_record_failure(fake, tmp_path):
    ep = fake(["nope", "still nope", "never asked"])
    llm = open_llm(ep.url, "fake-model", cache_dir=tmp_path)
    replies, claims = elicit_features(llm, {"OMIM:190685": "Down syndrome"}, ["adult"], retries=1)
    assert list(replies["status"]) == ["malformed", "failed"] and claims.empty and len(ep.requests) == 2


def test_negatives_against_fake(fake, tmp_path):
    ep = fake([json.dumps({"distinguishing": ["upslanted palpebral fissures"], "absent": ["cleft palate"]})])
    llm = open_llm(ep.url, "fake-model", cache_dir=tmp_path)
    replies, items = mine_negatives(llm, {"OMIM:190685": "Down syndrome"},
                                    {"OMIM:190685": [("OMIM:1", "Other syndrome", 0.3)]})
    assert list(items["kind"]) == ["distinguishing", "absent"]
    assert "Other syndrome" in ep.requests[0]["body"]["messages"][-1]["content"]


def test_key_comes_from_env_only_and_is_never_cached(fake, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-secret-123456")
    ep = fake([GOOD])
    llm = open_llm(ep.url, "fake-model", cache_dir=tmp_path)
    llm.chat(feature_messages("X", "child"))
    assert ep.requests[0]["auth"] == "Bearer sk-test-secret-123456"
    assert "sk-test-secret" not in "".join(p.read_text() for p in tmp_path.glob("*/*.json"))
    assert "sk-test" not in repr(llm) and "sk-test" not in llm.endpoint


def test_unreachable_and_timeout_name_the_variables(fake, tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    llm = open_llm(f"http://127.0.0.1:{port}/v1", "m", timeout=3, max_retries=1)
    with pytest.raises(LLMUnavailable, match="could not be reached.*OPENAI_BASE_URL.*OPENAI_API_KEY"):
        llm.chat(feature_messages("X", "child"))
    slow = fake([GOOD], delay=3.0)
    llm = open_llm(slow.url, "m", timeout=0.5, max_retries=0)
    with pytest.raises(LLMUnavailable, match="timed out.*LLM_BASE_URL"):
        llm.chat(feature_messages("X", "child"))


# -- a broken endpoint: every failure is an LLMUnavailable or a counted bad reply ----------------------------
KEY = "sk-test-secret-0123456789abcdef"
FAST = {"retry-after-ms": "20"}  # the server asks the openai client to back off 20 ms (keeps tests quick)

# name: (raw answer, LLMUnavailable.reason, HTTP requests the server sees with max_retries=1, words in message)
BROKEN = {
    "http_500": ({"status": 500, "body": "upstream crashed (auth {auth})", "ctype": "text/plain"}, "HTTP 500", 2,
                 ["HTTP 500 Internal Server Error", "after 1 retry", "upstream crashed"]),
    "http_503_json": ({"status": 503, "body": json.dumps({"error": {"message": "overloaded"}}), "headers": FAST},
                      "HTTP 503", 2, ["HTTP 503 Service Unavailable", "after 1 retry", "overloaded"]),
    "http_429": ({"status": 429, "body": json.dumps({"error": {"message": "rate limit for {auth}"}}),
                  "headers": FAST}, "HTTP 429", 2, ["HTTP 429 Too Many Requests", "rate limited", "after 1 retry"]),
    "http_400": ({"status": 400, "body": "bad request"}, "HTTP 400", 1, ["HTTP 400 Bad Request"]),
    "plain_text": ({"body": "Hello, I am a web page, not an API. {auth}", "ctype": "text/plain"}, "not JSON", 1,
                   ["not JSON", "text/plain", "Hello, I am a web page"]),
    "html_page": ({"body": "<html><body>Welcome to nginx!</body></html>", "ctype": "text/html"}, "not JSON", 1,
                  ["not JSON", "text/html", "nginx"]),
    "torn_json": ({"body": '{"choices": [{"message": '}, "not JSON", 1, ["not JSON", "application/json"]),
    "wrong_object": ({"body": '{"foo": 1}'}, "not chat-completions JSON", 1,
                     ["not a chat completion", "['foo']", 'no "choices" list']),
    "bare_string": ({"body": '"a bare string {auth}"'}, "not chat-completions JSON", 1,
                    ["not a chat completion", "a JSON str"]),
    "bare_list": ({"body": "[1, 2]"}, "not chat-completions JSON", 1, ["not a chat completion", "a JSON list"]),
    "choices_not_a_list": ({"body": '{"choices": "hi"}'}, "not chat-completions JSON", 1, ["not a chat completion"]),
    "choice_without_message": ({"body": '{"choices": [{"index": 0, "text": "hi"}]}'}, "not chat-completions JSON", 1,
                               ["choices[0] has no message"]),
    "error_object_200": ({"body": json.dumps({"error": {"message": "model is loading {auth}"}})},
                         "error in the reply", 1, ["with an error", "model is loading"]),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_endpoint_is_llm_unavailable(case, fake, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    spec, reason, attempts, words = BROKEN[case]
    ep = fake([], default=spec)
    llm = open_llm(ep.url, "fake-model", cache_dir=tmp_path, max_retries=1)
    with pytest.raises(LLMUnavailable) as info:
        llm.chat(feature_messages("X", "child"))
    err = info.value
    msg = str(err)
    assert type(err) is LLMUnavailable and err.reason == reason and err.asked
    assert ep.url in msg and "model fake-model" in msg, msg  # names the endpoint and the model
    for w in words:
        assert w in msg, (w, msg)
    assert KEY not in msg and "sk-test" not in msg, msg
    assert ep.requests[0]["auth"] == f"Bearer {KEY}"  # the key was sent (and the server echoed it)
    assert len(ep.requests) == attempts == llm.http_attempts  # the openai client's own retries
    assert llm.counts()["failures"] == {reason: 1} and llm.requests == 1 and llm.error == msg
    assert not list(tmp_path.glob("*/*.json"))  # nothing cached
    # the endpoint is not asked again in this run
    with pytest.raises(LLMUnavailable, match="Not asked: The LLM endpoint") as again:
        llm.chat(feature_messages("Y", "adult"))
    assert not again.value.asked and len(ep.requests) == attempts and KEY not in str(again.value)


def test_429_is_retried_with_backoff_then_answered(fake, tmp_path):
    import time

    ep = fake([{"status": 429, "body": "slow down"}, {"status": 429, "body": "slow down", "headers": FAST}, GOOD])
    llm = open_llm(ep.url, "fake-model", cache_dir=tmp_path, max_retries=2)
    t0 = time.perf_counter()
    reply = llm.chat(feature_messages("X", "child"))
    waited = time.perf_counter() - t0
    assert reply.text == GOOD and not reply.problem and len(ep.requests) == 3 and llm.http_attempts == 3
    assert 0.3 < waited < 3  # the first retry waited the client's own backoff (0.5 s less jitter), the second 20 ms
    assert llm.counts()["failed_requests"] == 0 and not llm.error


def test_http_errors_without_retries(fake):
    ep = fake([], default={"status": 502, "body": "bad gateway"})
    llm = open_llm(ep.url, "fake-model", max_retries=0)
    with pytest.raises(LLMUnavailable, match=r"HTTP 502 Bad Gateway \(a server error\) \(no retries: max_retries=0\)"):
        llm.chat(feature_messages("X", "child"))
    assert len(ep.requests) == 1


@pytest.mark.parametrize("body, problem", [
    (completion("", choices=[]), "the reply had no choices"),
    (completion(""), "the reply was empty (finish_reason stop)"),
    (completion(None), "the reply was empty (finish_reason stop)"),
    (completion("  \n "), "the reply was empty (finish_reason stop)"),
])
def test_unusable_chat_completion_is_a_counted_bad_reply(body, problem, fake, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    ep = fake([], default={"body": body})
    llm = open_llm(ep.url, "fake-model", cache_dir=tmp_path, max_retries=1)
    reply = llm.chat(feature_messages("X", "child"))
    assert reply.problem == problem and reply.text == "" and not reply.cached
    assert not list(tmp_path.glob("*/*.json"))  # a bad reply is not cached: a rerun asks again
    replies, claims = elicit_features(llm, {"OMIM:190685": "Down syndrome"}, ["child"], retries=1)
    assert list(replies["status"]) == ["malformed", "failed"] and list(replies["problem"]) == [problem] * 2
    assert replies["bad_reply"].all() and claims.empty and len(ep.requests) == 3
    out = elicitation_outcome(llm, replies)
    assert out["status"] == "degraded" and out["counts"]["llm_bad_replies"] == 3
    assert out["counts"]["llm_prompts_failed"] == 1 and out["counts"]["llm_failed_requests"] == 0
    assert any("bad replies from the endpoint" in r for r in out["reasons"]), out["reasons"]
    assert any(f"1 of 1 prompt ended without a usable reply after retries ({problem}: 1)" == r
               for r in out["reasons"]), out["reasons"]
    assert KEY not in " ".join(out["reasons"])


def test_malformed_features_are_counted_not_degraded(fake, tmp_path):
    """The model's own unparsable answer is cached and deterministic: counted and shown, but a rerun would read
    the same answer, so the step is not marked degraded (which would rerun it, and all after it, every time)."""
    ep = fake([], default="Children with this syndrome have a round face.")
    llm = open_llm(ep.url, "fake-model", cache_dir=tmp_path)
    replies, claims = elicit_features(llm, {"OMIM:190685": "Down syndrome"}, ["child"], retries=1)
    out = elicitation_outcome(llm, replies)
    assert claims.empty and out["status"] == "ok" and out["counts"]["llm_unusable_replies"] == 2
    assert out["counts"]["llm_prompts_failed"] == 1 and out["reasons"] == []
    assert out["table"].loc["unusable reply content: no JSON object with a features list", "count"] == 2
    assert out["table"].loc["prompts without a usable reply after retries", "count"] == 1


def test_elicitation_stops_on_a_broken_endpoint_and_keeps_what_it_has(fake, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    diseases = {"OMIM:190685": "Down syndrome", "OMIM:1": "Other syndrome"}
    # disease 1 / child answered by the same endpoint in an earlier run: in the cache
    ep = fake([GOOD, GOOD], default={"status": 500, "body": "boom", "headers": FAST})
    elicit_features(open_llm(ep.url, "fake-model", cache_dir=tmp_path), {"OMIM:1": "Other syndrome"}, ["child"])
    llm = open_llm(ep.url, "fake-model", cache_dir=tmp_path, max_retries=1)
    replies, claims = elicit_features(llm, diseases, ["child", "adult"], retries=1)
    assert list(replies["status"]) == ["ok", "unavailable", "ok", "skipped"]
    assert list(replies["cached"].fillna(False)) == [False, False, True, False]
    assert list(replies["problem"].fillna(""))[1:] == ["HTTP 500", "", "not asked: the LLM endpoint had failed"]
    assert len(claims) == 4 and set(claims["disease_id"]) == set(diseases)  # what came before (and the cache) kept
    assert len(ep.requests) == 1 + 1 + 2  # the earlier run; one answer, then one request with one retry; nothing after
    neg_replies, items = mine_negatives(llm, diseases, {})
    assert list(neg_replies["status"]) == ["skipped", "skipped"] and items.empty and len(ep.requests) == 4
    import pandas as pd

    out = elicitation_outcome(llm, pd.concat([replies, neg_replies], ignore_index=True))
    c = out["counts"]
    assert out["status"] == "degraded" and c["llm_requests"] == 2 and c["llm_http_attempts"] == 3
    assert c["llm_failed_requests"] == 1 and c["llm_prompts_not_asked"] == 3 and c["llm_prompts"] == 6
    assert c["llm_unavailable_reason"] == "HTTP 500"
    assert out["table"].loc["failed requests: HTTP 500", "count"] == 1
    reason = out["reasons"][0]
    assert reason.startswith("LLM unavailable after 2 requests (3 prompts not asked): The LLM endpoint "
                             f"{ep.url} (model fake-model) kept answering HTTP 500") and KEY not in reason
    # the notebook hands the reasons to the runner's contract
    from phenoface.report import read_status, record_status

    record_status("03_llm_profiles", out["status"], reasons=out["reasons"], status_dir=tmp_path / "status")
    assert read_status("03_llm_profiles", tmp_path / "status") == {"status": "degraded", "reasons": out["reasons"]}


@pytest.mark.parametrize("answer", [
    None,  # nothing listens there
    {"status": 501, "body": "<html><body>Not Implemented</body></html>", "ctype": "text/html"},
    {"status": 500, "body": "upstream crashed", "ctype": "text/plain", "headers": FAST},
    {"status": 401, "body": json.dumps({"error": {"message": "bad key"}})},
])
def test_every_request_failing_leaves_a_complete_reply_table(answer, fake, tmp_path):
    """Notebook 03 reads the reply table's timing columns after a run in which every request failed: they exist
    (empty), nothing was answered fresh, and the step is degraded, not failed."""
    import math

    import pandas as pd

    from phenoface.llm.elicit import REPLY_COLUMNS, reply_speed

    url = "http://127.0.0.1:9/v1" if answer is None else fake([], default=answer).url
    llm = open_llm(url, "m", cache_dir=tmp_path, max_retries=0, timeout=5)
    diseases = {"OMIM:190685": "Down syndrome", "OMIM:1": "Other syndrome"}
    replies, claims = elicit_features(llm, diseases, ["child", "adult"], retries=1)
    neg_replies, items = mine_negatives(llm, diseases, {})
    all_replies = pd.concat([replies, neg_replies], ignore_index=True)
    assert list(all_replies.columns) == REPLY_COLUMNS and claims.empty and items.empty
    assert all_replies["reply"].isna().all() and not all_replies["cached"].any()
    speed = reply_speed(all_replies)
    assert speed["fresh"] == 0 and speed["seconds"] == 0 and math.isnan(speed["tokens_per_s"])
    out = elicitation_outcome(llm, all_replies)
    assert out["status"] == "degraded" and out["counts"]["llm_prompts_not_asked"] == 5
    assert math.isnan(reply_speed(pd.DataFrame())["tokens_per_s"])  # LLM_NEGATIVES off, nothing asked


def test_reply_speed_counts_only_fresh_replies(fake, tmp_path):
    from phenoface.llm.elicit import reply_speed

    ep = fake([], default=GOOD)
    elicit_features(open_llm(ep.url, "fake-model", cache_dir=tmp_path), {"OMIM:1": "Other"}, ["child"])
    llm = open_llm(ep.url, "fake-model", cache_dir=tmp_path)
    replies, _ = elicit_features(llm, {"OMIM:1": "Other", "OMIM:190685": "Down syndrome"}, ["child"])
    assert list(replies["cached"]) == [True, False]
    speed = reply_speed(replies)
    assert speed["fresh"] == 1 and speed["completion_tokens"] == 5 and speed["tokens_per_s"] > 0


def test_elicitation_outcome_ok_when_every_prompt_is_answered(fake, tmp_path):
    ep = fake([], default=GOOD)
    llm = open_llm(ep.url, "fake-model", cache_dir=tmp_path)
    replies, _ = elicit_features(llm, {"OMIM:190685": "Down syndrome"}, ["child", "adult"])
    out = elicitation_outcome(llm, replies)
    assert out["status"] == "ok" and out["reasons"] == [] and out["counts"]["llm_requests"] == 2
    assert out["table"].loc["prompts without a usable reply after retries", "count"] == 0
    # prompts skipped for the time budget are counted but are no LLM failure
    replies, _ = elicit_features(llm, {"OMIM:1": "Other"}, ["child"], deadline=0.0)
    out = elicitation_outcome(llm, replies)
    assert out["status"] == "ok" and out["counts"]["llm_prompts_over_budget"] == 1


def test_unavailable_embedded_server_ends_elicitation(tmp_path, monkeypatch):
    from phenoface.llm.server import ServerError

    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    llm = open_llm("embedded", cache_dir=tmp_path)

    def refuse():
        raise ServerError("port in use")

    monkeypatch.setattr(llm.server, "start", refuse)  # never starts the real SmolLM2
    replies, claims = elicit_features(llm, {"OMIM:190685": "Down syndrome"}, ["child", "adult"])
    assert list(replies["status"]) == ["unavailable", "skipped"] and claims.empty
    out = elicitation_outcome(llm, replies)
    assert out["status"] == "degraded" and "would not start: port in use" in out["reasons"][0]


def test_open_llm_choices(monkeypatch):
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("OPENAI_MODEL", raising=False)
    assert open_llm().kind == "embedded" and open_llm("embedded").model_id.startswith("SmolLM2-135M-Instruct")
    with pytest.raises(ValueError, match="needs a model name"):
        open_llm("http://localhost:1/v1")
    with pytest.raises(ValueError, match="embedded server serves only"):
        open_llm("embedded", "gpt-4o")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://localhost:11434/v1")
    monkeypatch.setenv("OPENAI_MODEL", "llama3")
    llm = open_llm()
    assert (llm.kind, llm.model, llm.base_url) == ("remote", "llama3", "http://localhost:11434/v1")


def test_cache_key_depends_on_model_prompt_and_params(tmp_path):
    m = feature_messages("X", "child")
    p = {"temperature": 0.0, "seed": 0, "max_tokens": 32}
    k = cache_key("a", m, p)
    assert k == cache_key("a", m, dict(p)) and k != cache_key("b", m, p)
    assert k != cache_key("a", m, {**p, "seed": 1}) and k != cache_key("a", feature_messages("X", "adult"), p)
    c = ReplyCache(tmp_path)
    (tmp_path / k[:2]).mkdir()
    (tmp_path / k[:2] / f"{k}.json").write_text("{torn")
    assert c.get(k) is None  # corrupt entries are ignored


def test_an_echoed_key_is_never_cached_saved_or_read_back(fake, tmp_path, monkeypatch):
    """A server that echoes the Authorization header in its reply: the key is scrubbed before the reply is cached
    or handed on, and a later run without the key (which cannot know what to look for) reads no key either."""
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    echo = json.dumps({"features": [{"feature": "wide-set eyes (sent {auth})", "typical": "common"}]})
    ep = fake([], default=echo)
    llm = open_llm(ep.url, "fake-model", cache_dir=tmp_path / "cache")
    replies, claims = elicit_features(llm, {"OMIM:190685": "Down syndrome"}, ["child"])
    assert ep.requests[0]["auth"] == f"Bearer {KEY}"  # the server did get (and echo) the key
    assert replies["reply"].notna().all() and len(claims) == 1
    for text in [*replies["reply"], *claims["phrase"], replies.to_csv(), claims.to_csv()]:
        assert KEY not in text and "sk-test" not in text, text
    stored = [f.read_text() for f in (tmp_path / "cache").rglob("*.json")]
    assert stored and not any(KEY in t or "sk-test" in t for t in stored)

    monkeypatch.delenv("OPENAI_API_KEY")
    again, _ = elicit_features(open_llm(ep.url, "fake-model", cache_dir=tmp_path / "cache"),
                               {"OMIM:190685": "Down syndrome"}, ["child"])
    assert again["cached"].all() and not any(KEY in t for t in again["reply"]) and len(ep.requests) == 1
    # an entry stored unscrubbed (by an older version) is scrubbed when read, key or no key in the environment
    entry = next((tmp_path / "cache").rglob("*.json"))
    entry.write_text(entry.read_text().replace("<hidden>", KEY))
    third, _ = elicit_features(open_llm(ep.url, "fake-model", cache_dir=tmp_path / "cache"),
                               {"OMIM:190685": "Down syndrome"}, ["child"])
    assert third["cached"].all() and not any("sk-test" in t for t in third["reply"])


def test_reply_cache_is_per_endpoint(fake, tmp_path):
    """Two servers with a model of the same name: one's cached replies are never served for the other."""
    first = fake([], default=GOOD)
    other_reply = json.dumps({"features": [{"feature": "a long face", "typical": "common"}]})
    second = fake([], default=other_reply)
    asked = ({"OMIM:190685": "Down syndrome"}, ["child"])
    elicit_features(open_llm(first.url, "m", cache_dir=tmp_path), *asked)
    replies, claims = elicit_features(open_llm(second.url, "m", cache_dir=tmp_path), *asked)
    assert not replies["cached"].any() and list(claims["phrase"]) == ["a long face"] and len(second.requests) == 1
    replies, _ = elicit_features(open_llm(first.url, "m", cache_dir=tmp_path), *asked)
    assert replies["cached"].all() and len(first.requests) == 1
    m, p = feature_messages("X", "child"), {"temperature": 0.0, "seed": 0, "max_tokens": 32}
    assert cache_key("m", m, p, first.url) != cache_key("m", m, p, second.url)
    assert cache_key("m", m, p, "") == cache_key("m", m, p)  # the embedded server's entries keep their names


# -- grounding -------------------------------------------------------------------------------------------
def test_ground_contract():
    out = ground(["wide-set eyes", "a flat nasal bridge", "loves music"])
    assert [o[0] for o in out] == ["wide-set eyes", "a flat nasal bridge", "loves music"]
    assert out[0][1] == "HP:0000316" and out[1][1] == "HP:0005280" and out[2][1] is None
    assert all(isinstance(o[2], float) for o in out) and out[0][2] > 0.9
    assert ground([]) == []
    assert ground(["wide-set eyes"], threshold=1.01)[0][1] is None


def test_agreement_and_evidence():
    assert related("HP:0000316", "HP:0000316") and not related("HP:0000316", "HP:0005280")
    a = agreement({"D": {"HP:0000316", "HP:0000160"}}, {"D": {"HP:0000316", "HP:0005280"}})
    assert a["precision"] == 0.5 and a["recall"] == 0.5 and a["per_disease"]["D"]["unmatched"] == ["HP:0000160"]
    import pandas as pd

    claims = pd.DataFrame({"disease_id": ["D", "D", "D"], "band": ["child", "child", "adult"],
                           "phrase": ["wide-set eyes", "loves music", "a flat nasal bridge"],
                           "typical": ["very common", "", "occasional"]})
    g = ground_table(claims, {"D": {"HP:0000316"}})
    assert list(g["in_kg"]) == [True, False, False] and pd.isna(g["hpo_id"].iloc[1])
    ev = llm_evidence(g, ["child", "adult"])
    assert ev["D"]["child"] == {"HP:0000316": 0.895} and ev["D"]["adult"] == {"HP:0005280": 0.17}
    assert ev["D"]["all"] == {"HP:0000316": 0.895, "HP:0005280": 0.17}


def test_nearest_diseases_share_facial_terms():
    near = nearest_diseases("OMIM:190685", k=3)
    assert len(near) == 3 and all(0 < j <= 1 for _, _, j in near)
    assert "OMIM:190685" not in [d for d, _, _ in near]


# -- grounding measured: labelled phrases, threshold on validation, shuffled KG baseline -----------------------
def test_phrase_file_is_a_labelled_split_set():
    from phenoface import hpo
    from phenoface.llm.agreement import load_phrases

    df = load_phrases()
    assert len(df) >= 60 and not df["phrase"].duplicated().any()
    onto, facial = hpo.ontology(), hpo.facial_terms()
    ids = set(df.loc[df["hpo_id"] != "", "hpo_id"])
    assert ids and all(t in onto["names"] and t not in onto["obsolete"] and t in facial for t in ids)
    assert (df["hpo_id"] == "").sum() >= 6  # phrases the threshold should reject
    val, test = df[df["split"] == "validation"], df[df["split"] == "test"]
    assert not set(val["phrase"]) & set(test["phrase"])
    assert not (set(val["hpo_id"]) & set(test["hpo_id"])) - {""}  # whole terms sit in one split
    assert 0.35 < len(val) / len(df) < 0.65
    for part in (val, test):
        assert {"lay", "clinical"} <= set(part.loc[part["hpo_id"] != "", "wording"]) and (part["hpo_id"] == "").any()


def test_choose_threshold_picks_the_known_best_and_ties_high():
    from phenoface.llm.agreement import choose_threshold, correct, grounded_at

    top = ["A", "B", "C", "D"]
    sims = [0.90, 0.80, 0.60, 0.70]
    truth = ["A", "B", "", ""]  # keep A and B, reject C and D: any threshold in (0.70, 0.80] is perfect
    th, curve = choose_threshold(top, sims, truth)
    assert th == pytest.approx(0.80) and curve["accuracy"].max() == 1.0
    assert list(correct(grounded_at(top, sims, 0.75), truth)) == [1, 1, 1, 1]
    assert list(correct(grounded_at(top, sims, 0.85), truth)) == [1, 0, 1, 1]
    # a wrong top term is never right, whatever the threshold; ties go to the stricter threshold
    th, _ = choose_threshold(["X", "B"], [0.95, 0.60], ["A", "B"], grid=[0.5, 0.6, 0.7, 0.9, 0.99])
    assert th == pytest.approx(0.6)
    with pytest.raises(ValueError):
        choose_threshold([], [], [])


def test_family_accuracy_allows_a_direct_parent_or_child():
    from phenoface.llm.agreement import correct

    # HP:0002705 (narrow, high-arched roof of mouth) is a direct child of HP:0000218 (high palate)
    pred, truth = ["HP:0002705", "HP:0000316", "", "HP:0000316"], ["HP:0000218", "HP:0000316", "", ""]
    assert list(correct(pred, truth)) == [0, 1, 1, 0]
    assert list(correct(pred, truth, family=True)) == [1, 1, 1, 0]


def test_threshold_parameter_is_validated():
    from phenoface.llm.agreement import resolve_threshold

    assert resolve_threshold("auto") == "auto" and resolve_threshold(" AUTO ") == "auto"
    assert resolve_threshold(0.8) == 0.8 and resolve_threshold("0.8") == 0.8 and resolve_threshold(1) == 1.0
    for bad in ("high", 1.5, -0.1, True, None, [0.8]):
        with pytest.raises(ValueError, match="LLM_THRESHOLD"):
            resolve_threshold(bad)
    with pytest.raises(ValueError, match="LLM_THRESHOLD"):
        ground(["wide-set eyes"], threshold="strict")


def test_evaluate_grounding_on_validation_then_test():
    import pandas as pd

    from phenoface.llm.agreement import evaluate_grounding

    tiny = pd.DataFrame({"phrase": ["hypertelorism", "seizures", "macroglossia", "loves music"],
                         "hpo_id": ["HP:0000316", "", "HP:0000158", ""], "wording": ["clinical", "clinical", "clinical", "lay"],
                         "split": ["validation", "validation", "test", "test"]})
    ev = evaluate_grounding("auto", phrases=tiny)
    m = ev["metrics"]
    assert ev["source"] == "validation" and 0.65 <= ev["threshold"] <= 1.0  # rejects "seizures" (~0.65)
    assert m["grounding_phrases_test"] == 2 and m["grounding_accuracy"] == 1.0
    assert m["grounding_accuracy_reject_all"] == 0.5 and m["grounding_accuracy_clinical"] == 1.0
    forced = evaluate_grounding(0.3, phrases=tiny)
    assert forced["source"] == "forced" and forced["metrics"]["grounding_accuracy"] == 0.5  # "loves music" grounds
    assert forced["metrics"]["grounding_accuracy_lay"] == 0.0
    from phenoface.llm.agreement import threshold_stability

    stab = threshold_stability(ev["table"], n=5)
    assert len(stab) == 5 and stab["threshold"].between(0.5, 1.0).all()


def test_shuffled_baseline_never_pairs_a_disease_with_itself():
    from phenoface.llm.agreement import claim_hits, derangement, kg_precision_summary

    for n in range(2, 12):
        ids = [f"D{i}" for i in range(n)]
        for seed in range(20):
            m = derangement(ids, seed)
            assert set(m) == set(ids) and sorted(m.values()) == sorted(ids) and all(k != v for k, v in m.items())
    assert derangement(ids, 3) == derangement(ids, 3)
    with pytest.raises(ValueError):
        derangement(["D0"])
    annotated = {"A": {"HP:0000316"}, "B": {"HP:0005280"}, "C": {"HP:0000158"}}
    claimed = {"A": {"HP:0000316", "HP:0000160"}, "B": {"HP:0005280"}}
    hits = claim_hits(claimed, annotated, n_shuffles=10)
    assert list(hits["hit"]) == [0.0, 1.0, 1.0] and (hits["hit_shuffled"] == 0.0).all()
    s = kg_precision_summary(hits)
    assert s["kg_precision"] == pytest.approx(2 / 3) and s["kg_precision_shuffled"] == 0.0
    assert s["kg_precision_diseases"] == 2 and len(s["kg_precision_ci"]) == 2
    # a term every disease carries is matched under any pairing: the baseline then equals the precision
    same = claim_hits({"A": {"HP:0000316"}, "B": {"HP:0000316"}}, {"A": {"HP:0000316"}, "B": {"HP:0000316"}})
    assert (same["hit_shuffled"] == 1.0).all()


# -- the real embedded server (one short request) ----------------------------------------------------------
@pytest.mark.slow
def test_embedded_server_integration(tmp_path):
    llm = open_llm("embedded", cache_dir=tmp_path / "cache", startup_timeout=240)
    with llm:
        reply = llm.chat(feature_messages("Down syndrome", "child", 2), max_tokens=8)
        assert llm.server.healthy() and llm.server.startup_seconds > 0
        proc = llm.server.proc
    assert reply.text and not reply.cached and reply.model_id.startswith("SmolLM2-135M-Instruct")
    assert proc.poll() is not None  # stopped on exit
    assert list((tmp_path / "cache").glob("*/*.json"))


def test_llm_evidence_joins_a_profile():
    import pandas as pd

    from phenoface.profiles import BANDS, DEFAULT_WEIGHTS, Evidence, Profile

    kg = Profile.from_evidence("OMIM:190685", "Down syndrome",
                               {"all": {"kg_frequency": {"HP:0000316": Evidence("kg_frequency", 0.9)}}}, "1")
    claims = pd.DataFrame({"disease_id": ["OMIM:190685"] * 2, "band": ["child", "child"],
                           "phrase": ["wide-set eyes", "a flat nasal bridge"], "typical": ["common", "very common"]})
    ev = llm_evidence(ground_table(claims, {"OMIM:190685": {"HP:0000316"}}), ["child"])["OMIM:190685"]
    p = kg.with_evidence("llm", {b: ev.get(b, {}) for b in BANDS}, weights={"llm": DEFAULT_WEIGHTS["llm"]})
    assert "llm" not in p.evidence("adult") and set(p.evidence("child")["llm"]) == {"HP:0000316", "HP:0005280"}
    assert p.terms("child")["HP:0005280"] == pytest.approx(0.895 * DEFAULT_WEIGHTS["llm"])
    assert Profile.from_json(p.to_json()) == p


# -- the shipped reply cache of the embedded model -------------------------------------------------------------
IDENTITY = {"model_id": "SmolLM2-test@0123456789ab", "model_file": "m.gguf", "model_sha256": "ab" * 32,
            "server": "transformers serve --device cpu --default-seed 0", "transformers": "5.0", "torch": "2.0"}


def _embedded_like(url, tmp_path=None, seed=0):
    """An LLM that counts as the embedded one (cache keys without endpoint, shipped replies allowed) but talks to
    a fake endpoint instead of starting SmolLM2."""
    from phenoface.llm.client import LLM

    cache = ReplyCache(tmp_path / "run-cache") if tmp_path is not None else None
    return LLM(url, "fake-model", IDENTITY["model_id"], cache, seed, 0.0, 30.0, None, "embedded", 0)


def _ship(folder, replies: dict[str, str], **provenance):
    """A shipped reply file holding ``replies`` (user prompt -> reply text) for the feature prompts."""
    from phenoface.llm.shipped import FORMAT

    params = {"temperature": 0.0, "seed": 0, "max_tokens": 96}  # elicit_features' default max_tokens
    prov = {**IDENTITY, "settings": {"temperature": 0.0, "seed": 0, "max_tokens": 96}, **provenance}
    entries = {}
    for band, text in replies.items():
        msgs = feature_messages("Down syndrome", band, 5)
        entries[cache_key(prov["model_id"], msgs, params)] = {"messages": msgs, "params": params, "reply": text,
                                                              "finish_reason": "stop"}
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "quick.json"
    path.write_text(json.dumps({"format": FORMAT, "provenance": prov, "replies": entries}))
    return path


@pytest.fixture
def same_model(monkeypatch):
    from phenoface.llm import shipped

    monkeypatch.setattr(shipped, "identity", lambda gguf=None: dict(IDENTITY))


def test_shipped_replies_answer_what_they_hold_the_rest_is_asked_live(fake, tmp_path, same_model):
    from phenoface.llm.shipped import shipped_replies

    _ship(tmp_path / "shipped", {"child": GOOD})
    live = json.dumps({"features": [{"feature": "a long face", "typical": "common"}]})
    ep = fake([], default=live)
    llm = _embedded_like(ep.url)
    llm.packaged = shipped_replies(llm, tmp_path / "shipped")
    assert llm.packaged.used == ["quick.json"] and len(llm.packaged) == 1
    replies, claims = elicit_features(llm, {"OMIM:190685": "Down syndrome"}, ["child", "adult"])
    assert list(replies["source"]) == ["packaged", "live"] and list(replies["cached"]) == [True, False]
    assert len(ep.requests) == 1 and "adult" in ep.requests[0]["body"]["messages"][-1]["content"]
    assert set(claims[claims["band"] == "child"]["phrase"]) == {"wide-set eyes", "a flat nasal bridge"}
    counts = elicitation_outcome(llm, replies)["counts"]
    assert (counts["llm_answered_live"], counts["llm_answered_cache"], counts["llm_answered_packaged"]) == (1, 1, 1)
    assert counts["llm_requests"] == 1


def test_this_runs_cache_is_read_before_the_shipped_replies(fake, tmp_path, same_model):
    from phenoface.llm.shipped import shipped_replies

    ep = fake([], default=GOOD)
    elicit_features(_embedded_like(ep.url, tmp_path), {"OMIM:190685": "Down syndrome"}, ["adult"])
    _ship(tmp_path / "shipped", {"child": GOOD})
    llm = _embedded_like(ep.url, tmp_path)
    llm.packaged = shipped_replies(llm, tmp_path / "shipped")
    replies, _ = elicit_features(llm, {"OMIM:190685": "Down syndrome"}, ["child", "adult"])
    assert list(replies["source"]) == ["packaged", "cache"] and len(ep.requests) == 1
    counts = elicitation_outcome(llm, replies)["counts"]
    assert (counts["llm_answered_live"], counts["llm_answered_cache"], counts["llm_answered_packaged"]) == (0, 2, 1)


@pytest.mark.parametrize("change, why", [({"model_sha256": "cd" * 32}, "model_sha256"),
                                         ({"model_id": "SmolLM2-test@ffffffffffff"}, "model_id"),
                                         ({"torch": "2.1"}, "torch '2.1' here '2.0'"), ({"transformers": "5.1"}, "5.1"),
                                         ({"server": "llama.cpp"}, "server"),
                                         ({"settings": {"temperature": 0.0, "seed": 7}}, "seed 7 here 0"),
                                         ({"settings": {"temperature": 0.7, "seed": 0}}, "temperature 0.7")])
def test_another_model_server_or_setting_is_asked_live(change, why, fake, tmp_path, same_model):
    from phenoface.llm.shipped import shipped_replies

    _ship(tmp_path / "shipped", {"child": GOOD}, **change)
    ep = fake([], default=GOOD)
    llm = _embedded_like(ep.url)
    llm.packaged = shipped_replies(llm, tmp_path / "shipped")
    assert not llm.packaged.used and why in llm.packaged.unused["quick.json"]
    replies, _ = elicit_features(llm, {"OMIM:190685": "Down syndrome"}, ["child"])
    assert list(replies["source"]) == ["live"] and len(ep.requests) == 1
    assert "no shipped replies apply" in llm.packaged.describe()


def test_shipped_replies_are_never_used_for_another_endpoint(fake, tmp_path, same_model):
    from phenoface.llm.shipped import shipped_replies

    _ship(tmp_path / "shipped", {"child": GOOD})
    ep = fake([], default=GOOD)
    remote = open_llm(ep.url, IDENTITY["model_id"])
    remote.packaged = shipped_replies(remote, tmp_path / "shipped")
    assert not remote.packaged.used and "not this endpoint" in remote.packaged.unused["quick.json"]
    elicit_features(remote, {"OMIM:190685": "Down syndrome"}, ["child"])
    assert len(ep.requests) == 1
    with pytest.raises(ValueError, match="LLM_CACHE"):
        open_llm("embedded", packaged="yes")
    assert open_llm(ep.url, "m", packaged="packaged").packaged is None  # a remote endpoint never loads them


def test_a_corrupt_shipped_file_is_ignored_with_a_warning(fake, tmp_path, same_model):
    from phenoface.llm.shipped import ShippedCacheError, read_file, shipped_replies

    path = _ship(tmp_path / "shipped", {"child": GOOD})
    good = path.read_text()
    ep = fake([], default=GOOD)
    for broken in (good[: len(good) // 2], json.dumps({"format": 99}),
                   good.replace("wide-set eyes", "narrow eyes").replace(
                       "List the typical", "Name the typical")):  # an entry no longer under its prompt's key
        path.write_text(broken)
        with pytest.raises(ShippedCacheError):
            read_file(path)
        llm = _embedded_like(ep.url)
        with pytest.warns(UserWarning, match="ignored and its prompts are asked live"):
            llm.packaged = shipped_replies(llm, tmp_path / "shipped")
        assert len(llm.packaged) == 0 and llm.packaged.unused == {"quick.json": "unreadable"}


def test_build_writes_real_replies_atomically_with_provenance(fake, tmp_path, same_model, monkeypatch):
    """The build asks every prompt of a profile through the same asking as notebook 03 and ships what the
    endpoint said; a build whose endpoint fails writes nothing and leaves the shipped file as it was."""
    from phenoface.llm import packaged
    from phenoface.llm.shipped import shipped_replies

    kg = tmp_path / "kg_profiles.json"
    kg.write_text(json.dumps([{"disease_id": "OMIM:190685", "disease_name": "Down syndrome"},
                              {"disease_id": "OMIM:194050", "disease_name": "Williams-Beuren syndrome"}]))
    negatives = json.dumps({"distinguishing": ["upslanted palpebral fissures"], "absent": ["cleft palate"]})
    ep = fake([GOOD, negatives])
    monkeypatch.setattr(packaged, "open_llm",
                        lambda *a, cache_dir=None, seed=0, **k: _embedded_like(ep.url, None, seed).__class__(
                            ep.url, "fake-model", IDENTITY["model_id"], ReplyCache(cache_dir), seed, 0.0, 30.0, None,
                            "embedded", 0))
    path = packaged.build("smoke", kg, tmp_path / "shipped", command="python -m phenoface.ship replies --profile smoke")
    data = packaged.read_file(path)
    prov = data["provenance"]
    assert path.name == "smoke.json" and prov["model_sha256"] == IDENTITY["model_sha256"]
    assert prov["settings"]["max_tokens"] == 32 and prov["settings"]["diseases"] == ["OMIM:190685"]
    assert prov["command"] == "python -m phenoface.ship replies --profile smoke" and prov["made"].endswith("Z")
    assert sorted(e["reply"] for e in data["replies"].values()) == sorted([GOOD, negatives])
    assert prov["replies"] == 2 and prov["prompts"] == 2 and len(ep.requests) == 2
    # a rerun of the same prompts is answered from the file alone
    llm = _embedded_like(ep.url)
    llm.packaged = shipped_replies(llm, tmp_path / "shipped")
    replies, _ = elicit_features(llm, {"OMIM:190685": "Down syndrome"}, ["child"], 3, 32, 0)
    assert list(replies["source"]) == ["packaged"] and len(ep.requests) == 2

    before = path.read_bytes()
    ep.default = {"status": 500, "body": "down"}
    with pytest.raises(RuntimeError, match="nothing written"):
        packaged.build("smoke", kg, tmp_path / "shipped")
    assert path.read_bytes() == before and [p.name for p in (tmp_path / "shipped").iterdir()] == ["smoke.json"]


def test_the_shipped_files_are_real_replies_of_the_packaged_model():
    """What ships: one file per offline profile, readable, made by the packaged model file."""
    from phenoface.llm.shipped import FOLDER, read_file
    from phenoface.llm.server import smollm2_gguf

    files = {p.stem: read_file(p)["provenance"] for p in FOLDER.glob("*.json")}
    assert {"quick", "smoke"} <= set(files)
    gguf = smollm2_gguf().name
    for prov in files.values():
        assert prov["model_file"] == gguf and prov["replies"] > 0 and prov["command"].startswith("python -m")


# -- notebook 03's pieces: asking, tables, figures, metrics --------------------------------------------------------
def test_asked_diseases_and_bands():
    from phenoface.llm.elicit import asked_diseases, parse_bands

    profiles = [{"disease_id": "A", "disease_name": "a"}, {"disease_id": "B", "disease_name": "b"}]
    assert asked_diseases(profiles, 0) == {"A": "a", "B": "b"} and asked_diseases(profiles, 1) == {"A": "a"}
    assert parse_bands(" child, adult ,") == ["child", "adult"]
    for bad in ("child,elderly", "", "all"):
        with pytest.raises(ValueError, match="LLM_BANDS has unknown bands"):
            parse_bands(bad)


def test_ask_runs_features_then_negatives_and_stops_at_the_budget(fake, tmp_path):
    from phenoface.llm.elicit import ask

    negatives = json.dumps({"distinguishing": ["upslanted palpebral fissures"], "absent": ["cleft palate"]})
    ep = fake([GOOD, GOOD, negatives])
    llm = open_llm(ep.url, "fake-model", cache_dir=tmp_path)
    near = {"OMIM:190685": {"HP:0000316"}, "OMIM:1": {"HP:0000316", "HP:0005280"}}
    asked = ask(llm, {"OMIM:190685": "Down syndrome"}, ["child", "adult"], 4, 64, 0, True, 1, near)
    assert list(asked.all_replies["kind"]) == ["features", "features", "negatives"] and len(ep.requests) == 3
    assert asked.neighbours["OMIM:190685"][0][0] == "OMIM:1" and list(asked.neg_items["kind"]) == ["distinguishing",
                                                                                                     "absent"]
    assert "at most 2 of each" in ep.requests[2]["body"]["messages"][-1]["content"]  # half the features
    assert asked.seconds > 0 and asked.server_start != asked.server_start  # no embedded server: NaN
    slow = fake([], delay=0.3, default=GOOD)
    cut = ask(open_llm(slow.url, "m"), {"A": "a", "B": "b"}, ["child", "adult"], 4, 64, 0, False, annotations={},
              budget_s=0.2)
    assert len(slow.requests) == 1 and list(cut.replies["status"]).count("skipped") == 3 and cut.neg_replies.empty


def test_asking_summary_says_live_and_cached_and_degraded(fake, tmp_path, same_model):
    from phenoface.llm import tables
    from phenoface.llm.elicit import ask
    from phenoface.llm.shipped import shipped_replies

    _ship(tmp_path / "shipped", {"child": GOOD})
    ep = fake([], default=GOOD)
    llm = _embedded_like(ep.url)
    llm.packaged = shipped_replies(llm, tmp_path / "shipped")
    asked = ask(llm, {"OMIM:190685": "Down syndrome"}, ["child", "adult"], 5, 96, 0, False)
    outcome = elicitation_outcome(llm, asked.all_replies)
    text = tables.asking_summary(asked, outcome)
    assert "Answered live: 1; from a cache: 1** (1 shipped with the package" in text and "Degraded" not in text
    assert tables.endpoint_table(llm, 96)["shipped replies"] == "1 shipped replies (quick.json)"
    assert tables.reply_counts(asked.all_replies)["replies"].sum() == 2
    shown = tables.example_exchanges(asked.all_replies)
    assert len(shown) == 2 and "(shipped cache)" in shown[0] and "(cache)" not in shown[1]
    broken = fake([], default={"status": 500, "body": "down"})
    bad = open_llm(broken.url, "m", max_retries=0)
    asked = ask(bad, {"OMIM:190685": "Down syndrome"}, ["child"], 5, 96, 0, False)
    text = tables.asking_summary(asked, elicitation_outcome(bad, asked.replies))
    assert "LLM unavailable: the asking stopped" in text and "**Degraded**" in text
    none = tables.example_exchanges(asked.all_replies.iloc[0:0])
    assert none == ["No replies to show (no LLM evidence in this run)."]


def _grounded():
    import pandas as pd

    return pd.DataFrame({"disease_id": ["D", "D", "D", "E"], "disease_name": ["d", "d", "d", "e"],
                         "band": ["child", "adult", "child", "child"], "phrase": ["p1", "p2", "p3", "p4"],
                         "hpo_id": ["HP:0000316", "HP:0000316", None, "HP:0005280"],
                         "hpo_name": ["Hypertelorism", "Hypertelorism", "", "Depressed nasal bridge"],
                         "similarity": [0.9, 0.9, 0.3, 0.8], "in_kg": [True, True, False, False],
                         "model_id": ["m"] * 4})


def test_kg_agreement_tables_and_verdict():
    from phenoface.llm import tables

    annotated = {"D": {"HP:0000316"}, "E": {"HP:0000316"}, "F": {"HP:0005280"}}
    kga = tables.kg_agreement(_grounded(), {"D": "d", "E": "e"}, annotated, seed=0)
    assert kga["grounding_rate"] == 0.75 and kga["claimed"] == {"D": {"HP:0000316"}, "E": {"HP:0005280"}}
    assert kga["agree"]["precision"] == 0.5 and kga["agree"]["recall"] == 0.5
    assert list(kga["hits"]["hit"]) == [1.0, 0.0] and kga["kgp"]["kg_precision"] == 0.5
    row = kga["per_model"].iloc[0]
    assert (row["model"], row["claims"], row["grounded"], row["KG precision"]) == ("m", 4, 3, 0.5)
    table = tables.kg_precision_table(kga["kgp"])
    assert table.index[0] == "the disease's own HPO annotations" and table.iloc[0, 0].startswith("0.50 [")
    assert "2 distinct grounded (disease, term) claims over 2 disease(s)" in tables.kg_precision_note(kga, 3)
    assert "notebook 02's 3" in tables.kg_precision_note(kga, 3)
    said = tables.verdict("m", 4, kga, 0.5)
    assert "75% of 4 claimed phrases" in said and "50% agree" in said and "Agreement is poor" not in said
    empty = tables.kg_agreement(_grounded().iloc[0:0], {"D": "d"}, annotated)
    assert empty["grounding_rate"] != empty["grounding_rate"] and "n/a (nothing grounded)" in tables.verdict(
        "m", 0, empty, 0.5) and "Agreement is poor" in tables.verdict("m", 0, empty, 0.5)


def test_claims_per_band_and_their_outcomes():
    from phenoface.llm import tables
    from phenoface.llm.figures import claims_by_band_figure

    g = _grounded()
    table = tables.claims_by_band(g, g["hpo_id"].notna(), ["child", "adult"])
    assert list(table.columns) == ["child", "adult", "KG"] and table.loc[("d", "Hypertelorism"), "KG"] == "annotated"
    assert table.loc[("d", "Hypertelorism"), "adult"] == "✓"
    assert table.loc[("e", "Depressed nasal bridge"), "adult"] == ""
    assert tables.claims_by_band(g, g["hpo_id"].isna() & False, ["child"]) is None
    counts = tables.band_outcomes(g, ["child", "adult", "infant"])
    assert counts.loc["child"].tolist() == [1, 1, 1] and counts.loc["adult"].tolist() == [1, 0, 0]
    assert counts.loc["infant"].sum() == 0 and list(counts.columns) == tables.OUTCOMES
    assert tables.band_outcomes(g.iloc[0:0], ["child"]).loc["child"].tolist() == [0, 0, 0]
    fig = claims_by_band_figure(counts, "title")
    assert fig.axes[0].get_title() == "title" and len(fig.axes[0].patches) == 9


def test_negatives_become_concepts_only_when_grounded_absent_and_not_in_the_kg():
    import pandas as pd

    from phenoface.llm import tables

    neg = pd.DataFrame({"disease_id": ["D"] * 4, "disease_name": ["d"] * 4,
                        "kind": ["absent", "absent", "absent", "distinguishing"], "phrase": ["a", "b", "c", "e"],
                        "hpo_id": ["HP:1", "HP:2", None, "HP:3"], "hpo_name": ["one", "two", "", "three"],
                        "similarity": [0.9, 0.9, 0.2, 0.9], "in_kg": [False, True, False, False]})
    used = tables.negative_use(neg)
    assert list(used["use"]) == ["negative concept", "contradicts KG: dropped", "ungrounded", ""]
    assert "use" not in neg  # the input is left as it was
    out = tables.hard_negatives(used, {"D": "d", "E": "e"}, {"D": [("X", "x", 0.5)]}, "m")
    assert out[0]["negative_terms"] == ["HP:1"] and [a["phrase"] for a in out[0]["absent"]] == ["a", "b", "c"]
    assert out[0]["neighbours"] == [{"disease_id": "X", "disease_name": "x", "jaccard": 0.5}]
    assert out[1]["absent"] == [] and out[1]["negative_terms"] == [] and out[1]["model_id"] == "m"
    replies = pd.DataFrame({"status": ["failed", "ok"]})
    assert tables.negatives_note(out, replies, True).startswith("**1 hard negative term(s)** saved for 2 disease(s); 1")
    none = tables.hard_negatives(tables.negative_use(neg.iloc[0:0]), {"D": "d"}, {}, "m")
    assert "no negatives are invented" in tables.negatives_note(none, replies.iloc[0:0], True)


def test_grounding_tables_and_figure():
    from phenoface.llm import tables
    from phenoface.llm.agreement import evaluate_grounding
    from phenoface.llm.figures import grounding_threshold_figure

    gev = evaluate_grounding("auto")
    table = tables.grounding_versus_baselines(gev)
    assert table.index[0] == f"MiniLM, threshold {gev['threshold']:.2f}" and len(table) == 3
    assert table.iloc[1]["accuracy"] == f"{gev['metrics']['grounding_accuracy_reject_all']:.2f}"
    assert tables.grounding_note(gev).startswith(f"{gev['metrics']['grounding_phrases_test']} test phrases")
    wrong = tables.wrong_test_phrases(gev)
    assert len(wrong) == round((1 - gev["metrics"]["grounding_accuracy"]) * gev["metrics"]["grounding_phrases_test"])
    fig = grounding_threshold_figure(gev)
    assert "validation phrases" in fig.axes[0].get_title() and len(fig.axes[0].lines) == 2


def test_step_metrics_keys_and_counts(fake, tmp_path):
    from phenoface.llm import tables
    from phenoface.llm.elicit import ask

    ep = fake([], default=GOOD)
    llm = open_llm(ep.url, "fake-model", cache_dir=tmp_path)
    asked = ask(llm, {"D": "d"}, ["child"], 5, 96, 0, False)
    outcome = elicitation_outcome(llm, asked.all_replies)
    grounded = _grounded()
    kga = tables.kg_agreement(grounded, {"D": "d"}, {"D": {"HP:0000316"}, "E": set()})
    gev = {"metrics": {"grounding_accuracy": 0.8}}
    m = tables.step_metrics(llm, asked, outcome, grounded, kga, [{"negative_terms": ["HP:1"]}], {"D": "d"}, ["child"],
                            gev, 1.5)
    assert (m["llm_replies"], m["llm_answered_live"], m["llm_answered_cache"], m["llm_cached_replies"]) == (1, 1, 0, 0)
    assert (m["claims"], m["hard_negatives"], m["diseases_asked"], m["seconds"]) == (4, 1, 1, 1.5)
    assert m["grounding_accuracy"] == 0.8 and m["kg_precision"] == kga["kgp"]["kg_precision"]
    assert m["llm_available"] == 1 and m["llm_model"] == "fake-model" and m["llm_tokens_per_s"] > 0


def test_show_lists_the_shipped_files(capsys):
    from phenoface.llm import packaged

    assert packaged.main(["show"]) == 0
    out = capsys.readouterr().out
    assert "smoke.json: " in out and "replies, SmolLM2-135M-Instruct" in out
    assert "applies here" in out or "not used here" in out
