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
from phenoface.llm.elicit import elicit_features, ground_table, llm_evidence, mine_negatives, nearest_diseases


# -- a fake OpenAI-compatible endpoint ---------------------------------------------------------------------
class FakeEndpoint:
    """Serves /v1/chat/completions with the queued fixture strings, in order; records requests."""

    def __init__(self, replies, delay=0.0):
        self.replies, self.requests, self.delay = list(replies), [], delay
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append({"body": body, "auth": self.headers.get("Authorization", "")})
                if outer.delay:
                    import time

                    time.sleep(outer.delay)
                text = outer.replies.pop(0) if outer.replies else "{}"
                data = json.dumps({"id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
                                   "choices": [{"index": 0, "finish_reason": "stop",
                                                "message": {"role": "assistant", "content": text}}],
                                   "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def fake():
    made = []

    def make(replies, delay=0.0):
        f = FakeEndpoint(replies, delay)
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
    llm = open_llm(f"http://127.0.0.1:{port}/v1", "m", timeout=3)
    with pytest.raises(LLMUnavailable, match="could not be reached.*OPENAI_BASE_URL.*OPENAI_API_KEY"):
        llm.chat(feature_messages("X", "child"))
    slow = fake([GOOD], delay=3.0)
    llm = open_llm(slow.url, "m", timeout=0.5)
    with pytest.raises(LLMUnavailable, match="timed out.*LLM_BASE_URL"):
        llm.chat(feature_messages("X", "child"))


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
    from phenoface.llm.measure import load_phrases

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
    from phenoface.llm.measure import choose_threshold, correct, grounded_at

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
    from phenoface.llm.measure import correct

    # HP:0002705 (narrow, high-arched roof of mouth) is a direct child of HP:0000218 (high palate)
    pred, truth = ["HP:0002705", "HP:0000316", "", "HP:0000316"], ["HP:0000218", "HP:0000316", "", ""]
    assert list(correct(pred, truth)) == [0, 1, 1, 0]
    assert list(correct(pred, truth, family=True)) == [1, 1, 1, 0]


def test_threshold_parameter_is_validated():
    from phenoface.llm.measure import resolve_threshold

    assert resolve_threshold("auto") == "auto" and resolve_threshold(" AUTO ") == "auto"
    assert resolve_threshold(0.8) == 0.8 and resolve_threshold("0.8") == 0.8 and resolve_threshold(1) == 1.0
    for bad in ("high", 1.5, -0.1, True, None, [0.8]):
        with pytest.raises(ValueError, match="LLM_THRESHOLD"):
            resolve_threshold(bad)
    with pytest.raises(ValueError, match="LLM_THRESHOLD"):
        ground(["wide-set eyes"], threshold="strict")


def test_evaluate_grounding_on_validation_then_test():
    import pandas as pd

    from phenoface.llm.measure import evaluate_grounding

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
    from phenoface.llm.measure import threshold_stability

    stab = threshold_stability(ev["table"], n=5)
    assert len(stab) == 5 and stab["threshold"].between(0.5, 1.0).all()


def test_shuffled_baseline_never_pairs_a_disease_with_itself():
    from phenoface.llm.measure import claim_hits, derangement, kg_precision_summary

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
