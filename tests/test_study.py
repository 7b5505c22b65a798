"""The reader study: study sets, the SQLite store, the rating server (FastAPI's test client) and the analysis
(known agreement values, simulated raters recovered within their intervals)."""
import json
import sqlite3

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from phenoface.cohort import DISEASES, UNAFFECTED
from phenoface.study import analysis, build_study_set, load_study_set, read_answers, simulate_answers
from phenoface.study.server import create_app, page_version

KEY = "presenter-key"


def tiny_sources(per_disease=2, seed=0, diseases=None):
    """Random 16 px faces: real, generated and edited, ``per_disease`` of each disease."""
    rng = np.random.default_rng(seed)
    diseases = diseases or list(DISEASES)
    out = {}
    for source in ("real", "generated", "edit"):
        ids = [d for d in diseases for _ in range(per_disease)]
        images = rng.integers(0, 256, (len(ids), 16, 16, 3), dtype=np.uint8)
        out[source] = (images, pd.DataFrame({"disease_id": ids, "severity": rng.random(len(ids)),
                                             "age": rng.uniform(2, 50, len(ids)), "sex": "F"}))
    return out


@pytest.fixture
def study(tmp_path):
    return build_study_set(tiny_sources(), tmp_path / "set", per_disease=2, seed=3)


@pytest.fixture
def client(study, tmp_path):
    return TestClient(create_app(study, tmp_path / "answers.sqlite", presenter_key=KEY))


def answer(client, rater, item, **kw):
    body = {"rater": rater, "item": item, **kw}
    body = {"said_real": True, "confidence": 2, "disease": UNAFFECTED,
            "client_ms": 1200, "page_version": page_version(), **body}
    return client.post("/api/answer", json=body)


# ---- study sets -----------------------------------------------------------------------------------------

def test_set_is_balanced_seeded_and_hides_nothing_in_ids(study, tmp_path):
    items = study.items
    counts = items.groupby(["source", "disease_id"]).size()
    assert set(counts) == {2} and len(items) == 3 * 2 * len(DISEASES)
    assert items.loc[items["source"] == "real", "real"].all() and not items.loc[items["source"] != "real", "real"].any()
    again = build_study_set(tiny_sources(), tmp_path / "again", per_disease=2, seed=3)
    other = build_study_set(tiny_sources(), tmp_path / "other", per_disease=2, seed=4)
    assert again.order == study.order and again.set_id == study.set_id
    assert other.order != study.order
    # the page sees ids only: an id is a hash, so nothing about source or disease is in it
    assert all(len(i) == 12 and int(i, 16) >= 0 for i in study.order)
    assert {p.stem for p in (study.folder / "images").glob("*.png")} == set(items.index)


def test_set_takes_as_many_per_disease_as_the_rarest_has(tmp_path):
    src = tiny_sources(per_disease=3)
    images, table = src["generated"]
    drop = np.flatnonzero((table["disease_id"] == UNAFFECTED).to_numpy())[:2]
    keep = np.setdiff1d(np.arange(len(table)), drop)
    src["generated"] = (images[keep], table.iloc[keep].reset_index(drop=True))
    s = build_study_set(src, tmp_path / "s", per_disease=3)
    assert set(s.items[s.items["source"] == "generated"].groupby("disease_id").size()) == {1}


def test_rebuilt_set_removes_the_old_sets_images(tmp_path):
    first = build_study_set(tiny_sources(seed=1), tmp_path / "s", per_disease=1)
    second = build_study_set(tiny_sources(seed=2), tmp_path / "s", per_disease=1)
    assert not set(first.order) & set(second.order)
    assert {p.stem for p in (tmp_path / "s" / "images").glob("*.png")} == set(second.order)


def test_patient_photos_only_with_show_real_patients(tmp_path, monkeypatch):
    from phenoface.study import studyset

    monkeypatch.setattr(studyset, "collect_sources", lambda data_dir: tiny_sources(per_disease=1))
    photos = (np.full((len(DISEASES), 16, 16, 3), 7, np.uint8), pd.DataFrame({"disease_id": list(DISEASES)}))

    def has_photo(s):
        return bool((s.images() == 7).all(axis=(1, 2, 3)).any())

    hidden = studyset.write_study_set(tmp_path, patient_photos=photos, show_real_patients=False, folder=tmp_path / "a",
                                      per_disease=2)
    shown = studyset.write_study_set(tmp_path, patient_photos=photos, show_real_patients=True, folder=tmp_path / "b",
                                     per_disease=2)
    assert "withheld" in hidden.meta["note"] and not has_photo(hidden)
    assert "included" in shown.meta["note"] and has_photo(shown)
    assert set(shown.items[shown.items["source"] == "real"].groupby("disease_id").size()) == {2}


# ---- the server -----------------------------------------------------------------------------------------

def test_rate_resume_and_no_truth_on_the_wire(client, study):
    about = client.get("/api/study").json()
    assert about["items"] == len(study) and about["diseases"][-1]["id"] == UNAFFECTED
    first = client.get("/api/next", params={"rater": "ann"}).json()
    assert first["item"] == study.order[0] and first["position"] == 1
    text = json.dumps(first) + json.dumps(about)
    assert "real\"" not in text.replace("said_real", "") and "generated\"" not in text and "source" not in text
    r = answer(client, "ann", first["item"], disease=study.items.loc[first["item"], "disease_id"])
    assert r.status_code == 200 and r.json() == {"stored": True, "answered": 1}
    # a reload asks /api/next again: it resumes at the next item, and the same item again is 409
    again = client.get("/api/next", params={"rater": "ann"}).json()
    assert again["item"] == study.order[1] and again["answered"] == 1
    assert answer(client, "ann", first["item"]).status_code == 409
    assert client.get("/api/next", params={"rater": "bob"}).json()["item"] == study.order[0]


@pytest.mark.parametrize("change,status", [
    ({"item": "0123456789ab"}, 404),                # a well-formed id the set does not hold
    ({"item": "../../etc/pa"}, 422), ({"item": "ABCDEF012345"}, 422), ({"item": "x" * 13}, 422),
    ({"rater": "ann; DROP TABLE answers"}, 422), ({"rater": "<script>"}, 422), ({"rater": ""}, 422),
    ({"rater": "a" * 41}, 422), ({"confidence": 4}, 422), ({"confidence": "2"}, 422), ({"said_real": "yes"}, 422),
    ({"disease": "OMIM:000000"}, 422), ({"severity": 2}, 422), ({"client_ms": -5}, 422),
    ({"page_version": "<b>"}, 422), ({"extra": 1}, 422),
])
def test_bad_answers_are_refused_and_nothing_is_stored(client, study, tmp_path, change, status):
    item = client.get("/api/next", params={"rater": "ann"}).json()["item"]
    r = answer(client, **{"rater": "ann", "item": item, **change})
    assert r.status_code == status, r.text
    assert "detail" in r.json()
    assert read_answers(tmp_path / "answers.sqlite").empty


def test_answers_to_items_not_shown_and_bodies_that_are_not_json(client, study, tmp_path):
    client.get("/api/next", params={"rater": "ann"})
    r = answer(client, "ann", study.order[5])  # in the set, never shown to ann
    assert r.status_code == 409 and "not shown" in r.json()["detail"]
    assert answer(client, "bob", study.order[0]).status_code == 409  # shown to ann, not to bob
    for body in (b"not json", b"{\"rater\": ", b"[]", b"null"):
        r = client.post("/api/answer", content=body, headers={"Content-Type": "application/json"})
        assert r.status_code == 422, body
    assert client.get("/api/next", params={"rater": "a/b"}).status_code == 422
    assert read_answers(tmp_path / "answers.sqlite").empty


@pytest.mark.parametrize("path", ["/img/../manifest.json", "/img/..%2Fmanifest.json", "/img/%2e%2e%2fmanifest.json",
                                  "/img/..%2F..%2Fanswers.sqlite", "/img/manifest.json", "/img/", "/images/x.png",
                                  "/img/%2Fetc%2Fpasswd", "/img//etc/passwd", "/static/page.html", "/manifest.json",
                                  "/answers.sqlite", "/img/0123456789ab", "/img/0123456789ab.png"])
def test_no_path_outside_the_sets_images_is_served(client, path):
    r = client.get(path)
    assert r.status_code in (404, 405, 422), (path, r.status_code)
    assert b"set_id" not in r.content and b"SQLite" not in r.content


def test_images_are_served_by_id(client, study):
    r = client.get(f"/img/{study.order[0]}")
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert r.content == (study.folder / "images" / f"{study.order[0]}.png").read_bytes()


def test_classroom_token(study, tmp_path):
    c = TestClient(create_app(study, tmp_path / "a.sqlite", token="tok-123", presenter_key=KEY))
    for path in ("/", "/api/study", f"/img/{study.order[0]}", "/api/next?rater=ann", f"/presenter?key={KEY}"):
        assert c.get(path).status_code == 401, path
        assert c.get(path + ("&" if "?" in path else "?") + "token=wrong").status_code == 403, path
    assert c.get("/api/study?token=tok-123").status_code == 200
    assert c.get("/api/study", headers={"X-Study-Token": "tok-123"}).status_code == 200
    assert c.post("/api/answer", content=b"{}").status_code == 401


def test_presenter_counts_then_reveals_after_close_and_exports(client, study, tmp_path):
    assert client.get("/api/presenter/status").status_code == 403
    assert client.get("/presenter?key=nope").status_code == 403
    for rater in ("ann", "bob"):
        item = client.get("/api/next", params={"rater": rater}).json()["item"]
        assert answer(client, rater, item, said_real=False).status_code == 200
    s = client.get("/api/presenter/status", params={"key": KEY}).json()
    assert s["answers"] == 2 and s["raters"] == {"ann": 1, "bob": 1} and s["open"] and "results" not in s
    assert client.post("/api/presenter/close", params={"key": "x"}).status_code == 403
    assert client.post("/api/presenter/close", params={"key": KEY}).json() == {"closed": 1}
    s = client.get("/api/presenter/status", params={"key": KEY}).json()
    assert not s["open"] and s["results"] and sum(r["answers"] for r in s["results"]) == 2
    # a closed round takes no answers, and the page is told to wait
    item = client.get("/api/next", params={"rater": "cy"}).json()
    assert item["item"] is None and not item["open"]
    assert answer(client, "ann", study.order[1]).status_code == 409
    assert client.post("/api/presenter/open", params={"key": KEY}).json() == {"round": 2}
    assert client.get("/api/next", params={"rater": "ann"}).json()["item"] == study.order[0]  # a new round starts over
    csv = client.get("/api/presenter/export.csv", params={"key": KEY})
    assert csv.status_code == 200 and csv.text.startswith("id,rater,item,round,")
    exported = tmp_path / "export.csv"
    exported.write_text(csv.text)
    pd.testing.assert_frame_equal(read_answers(exported)[["rater", "item", "said_real"]].astype(str),
                                  read_answers(tmp_path / "answers.sqlite")[["rater", "item", "said_real"]].astype(str))


def test_severity_when_asked(tmp_path):
    s = build_study_set(tiny_sources(per_disease=1), tmp_path / "s", per_disease=1, ask_severity=True)
    c = TestClient(create_app(s, tmp_path / "a.sqlite", presenter_key=KEY))
    item = c.get("/api/next", params={"rater": "ann"}).json()["item"]
    assert answer(c, "ann", item).status_code == 422
    assert answer(c, "ann", item, severity=5).status_code == 422
    assert answer(c, "ann", item, severity=3).status_code == 200
    assert read_answers(tmp_path / "a.sqlite")["severity"].tolist() == [3]


def test_a_database_belongs_to_one_set(study, tmp_path):
    create_app(study, tmp_path / "a.sqlite")
    other = build_study_set(tiny_sources(seed=9), tmp_path / "other", per_disease=1)
    with pytest.raises(ValueError, match="holds answers to study set"):
        create_app(other, tmp_path / "a.sqlite")


def test_database_is_wal_and_a_row_records_everything(client, study, tmp_path):
    item = client.get("/api/next", params={"rater": "ann"}).json()["item"]
    answer(client, "ann", item, confidence=3, disease=study.items.loc[item, "disease_id"])
    con = sqlite3.connect(tmp_path / "answers.sqlite")
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    row = read_answers(tmp_path / "answers.sqlite").iloc[0]
    assert (row["rater"], row["item"], row["confidence"], row["client_ms"], row["page_version"]) == \
        ("ann", item, 3, 1200, page_version())
    assert row["server_ms"] >= 0 and row["round"] == 1


# ---- analysis ---------------------------------------------------------------------------------------------

def test_fleiss_kappa_known_value():
    # the worked example of Fleiss (1971) as tabulated on Wikipedia: 10 items, 14 raters, 5 categories
    table = [[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
             [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]]
    assert analysis.fleiss_kappa(table) == pytest.approx(0.210, abs=5e-4)
    with pytest.raises(ValueError):
        analysis.fleiss_kappa([[1, 1], [2, 1]])


def test_krippendorff_alpha_known_value():
    # Krippendorff (2011), "Computing Krippendorff's alpha-reliability", nominal example with missing values
    n = np.nan
    coders = [[1, 2, 3, 3, 2, 1, 4, 1, 2, n, n, n], [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, n, 3],
              [n, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, n], [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, n]]
    assert analysis.krippendorff_alpha_nominal(np.array(coders).T) == pytest.approx(0.743, abs=5e-4)
    assert analysis.krippendorff_alpha_nominal([[1, 1], [2, 2], [3, 3]]) == pytest.approx(1.0)


def test_simulated_accuracies_are_recovered_within_their_intervals(tmp_path):
    """Raters of known accuracy: each figure's 95 % interval holds the truth in most of 12 independent studies
    (and the point estimates are close); agreement is 0 for raters who answer at random."""
    s = build_study_set(tiny_sources(per_disease=3), tmp_path / "s", per_disease=3)
    truth = {"real_vs_generated_accuracy": 0.72, "disease_accuracy_real": 0.65, "disease_accuracy_generated": 0.35,
             "disease_accuracy_ratio": 0.35 / 0.65}
    covered = {k: 0 for k in truth}
    for seed in range(12):
        a = simulate_answers(s, raters=8, detect=truth["real_vs_generated_accuracy"], disease_real=0.65,
                             disease_generated=0.35, seed=seed)
        m = analysis.analyse(a, s, n_boot=400, seed=seed)["metrics"]
        assert m["raters"] == 8 and m["answers"] == 8 * len(s)
        for k, v in truth.items():
            lo, hi = m[f"{k}_ci"]
            covered[k] += lo <= v <= hi
            assert abs(m[k] - v) < 0.15, (k, m[k], v)
    assert all(c >= 10 for c in covered.values()), covered
    chance = simulate_answers(s, raters=8, detect=0.5, disease_real=1 / len(DISEASES), disease_generated=1 / len(DISEASES))
    m = analysis.analyse(chance, s, n_boot=200)["metrics"]
    assert abs(m["fleiss_kappa"]) < 0.05 and abs(m["krippendorff_alpha_real_vs_generated"]) < 0.05
    lo, hi = m["real_vs_generated_accuracy_ci"]
    assert lo <= 0.5 <= hi


def test_learning_is_found_when_raters_learn(tmp_path):
    s = build_study_set(tiny_sources(per_disease=3), tmp_path / "s", per_disease=3)
    a = simulate_answers(s, raters=6, detect=0.7, disease_real=0.6, disease_generated=0.6, seed=1)
    f = analysis.merge(a, s)
    # overwrite the disease answers: wrong in each rater's first half, right in the second
    late = f["position"] >= f.groupby("rater")["position"].transform("max") / 2
    wrong = np.where(f["disease_id"] == UNAFFECTED, list(DISEASES)[0], UNAFFECTED)
    a = a.set_index(["rater", "item"])
    a.loc[list(zip(f["rater"], f["item"])), "disease"] = np.where(late, f["disease_id"], wrong)
    m = analysis.analyse(a.reset_index(), s, n_boot=200)["metrics"]
    assert m["learning_slope_disease"] > 0.8 and m["learning_slope_disease_ci"][0] > 0.5
    lo, hi = m["learning_slope_real_vs_generated_ci"]
    assert lo < 0 < hi


def test_answers_to_unknown_items_are_counted_not_scored(study):
    a = simulate_answers(study, raters=2, detect=0.8, disease_real=0.5, disease_generated=0.5)
    a.loc[0, "item"] = "ffffffffffff"
    m = analysis.analyse(a, study, n_boot=50)["metrics"]
    assert m["answers_to_unknown_items"] == 1 and m["answers"] == len(a) - 1
