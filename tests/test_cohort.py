"""Unit tests for the synthetic face cohort (phenoface.cohort)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from phenoface.cohort import (DISEASES, EFFECT, KIND, TERMS, UNAFFECTED, Cohort, disease_names,
                              render_face, render_table, severity_course)
from phenoface.cohort import face_table
from phenoface.cohort.validate import MEDIAPIPE_TO_DLIB68


@pytest.fixture(scope="module")
def small():
    return Cohort.generate(n=66, seed=3, size=64)


def _lm(terms, identity=3, age=25.0, sex="F", size=128):
    return render_face(identity=identity, age=age, sex=sex, terms=terms, size=size)


# ---------------------------------------------------------------------------------------------------
def test_vocabulary_matches_hpo():
    from phenoface.hpo import term_names

    names = term_names()
    assert len(TERMS) >= 15
    for hpo_id, name in TERMS.items():
        assert names[hpo_id] == name
        assert KIND[hpo_id] in {"landmark", "texture", "mixed", "head"}
        assert EFFECT[hpo_id]


def test_disease_registry():
    assert UNAFFECTED in DISEASES and disease_names() == DISEASES
    for d in ["OMIM:190685", "OMIM:194050", "OMIM:163950", "OMIM:122470", "OMIM:105830", "ORPHA:567",
              "OMIM:147920", "ORPHA:231214", "ORPHA:548"]:
        assert d in DISEASES
    from phenoface.cohort import kg_frequencies

    kg = kg_frequencies()
    assert kg.loc["OMIM:190685", "HP:0000582"] > 0.8  # Down: upslanted fissures very frequent
    assert kg.loc["ORPHA:231214", "HP:0000980"] > 0.8  # beta-thalassaemia: pallor
    assert kg.loc["ORPHA:525731", "HP:0000520"] > 0.3  # Graves: proptosis
    assert kg.loc["ORPHA:548", "HP:0200036"] > 0.3  # leprosy: skin nodules
    assert (kg.loc[UNAFFECTED] == 0).all()


def test_shapes_dtypes_and_table(small):
    c = small
    assert c.images.dtype == np.uint8 and c.images.shape == (66, 64, 64, 3)
    assert c.landmarks.shape == (66, 68, 2) and np.issubdtype(c.landmarks.dtype, np.floating)
    for col in ["disease_id", "age", "sex", "identity", "severity", *TERMS, "skin_tone", "hair_style",
                "pose_scale", "head_rx"]:
        assert col in c.table.columns
    assert len(c.table) == 66
    assert set(c.table["disease_id"]) == set(DISEASES)  # balanced over all diseases
    assert c.table["disease_id"].value_counts().max() - c.table["disease_id"].value_counts().min() <= 1
    assert abs((c.table["sex"] == "F").sum() - 33) == 0
    assert c.table["age"].between(2, 60).all()
    assert ((c.table[list(TERMS)] >= 0) & (c.table[list(TERMS)] <= 1)).all().all()
    assert (c.landmarks > 0).all() and (c.landmarks < 64).all()
    assert list(c.truth.columns) == list(TERMS) and list(c.truth.index) == list(DISEASES)


def test_unaffected_has_no_terms(small):
    t = small.table
    un = t[t["disease_id"] == UNAFFECTED]
    assert len(un) > 0
    assert (un[list(TERMS)] == 0).all().all() and (un["severity"] == 0).all()
    assert un["identity"].nunique() == len(un)  # still normal identity variation
    aff = t[t["disease_id"] != UNAFFECTED]
    assert (aff[list(TERMS)].to_numpy().sum(1) > 0).mean() > 0.8


def test_determinism():
    a = Cohort.generate(n=24, seed=11, diseases=["OMIM:190685", UNAFFECTED])
    b = Cohort.generate(n=24, seed=11, diseases=["OMIM:190685", UNAFFECTED])
    c = Cohort.generate(n=24, seed=12, diseases=["OMIM:190685", UNAFFECTED])
    assert np.array_equal(a.images, b.images) and np.array_equal(a.landmarks, b.landmarks)
    pd.testing.assert_frame_equal(a.table, b.table)
    assert not np.array_equal(a.images, c.images)


def test_rerender_from_table_is_exact(small):
    img, lm = small.rerender()
    assert np.array_equal(img, small.images) and np.allclose(lm, small.landmarks)


def test_unknown_disease():
    with pytest.raises(ValueError, match="OMIM:190685"):
        Cohort.generate(n=4, diseases=["OMIM:999999"])


def test_render_face_sizes_and_scaling():
    im64, lm64 = render_face(identity=7, age=6.0, sex="F", terms={"HP:0000316": 0.8}, size=64)
    im256, lm256 = render_face(identity=7, age=6.0, sex="F", terms={"HP:0000316": 0.8}, size=256)
    assert im64.shape == (64, 64, 3) and im256.shape == (256, 256, 3) and im256.dtype == np.uint8
    assert np.allclose(lm256, lm64 * 4, atol=1e-3)
    with pytest.raises(ValueError):
        render_face(terms={"HP:0000001": 1.0})


def test_child_vs_adult_proportions():
    _, kid = _lm({}, age=3.0)
    _, adult = _lm({}, age=30.0)

    def eye_rel(lm):
        return (lm[39, 0] - lm[36, 0]) / (lm[16, 0] - lm[0, 0])

    def lower_face(lm):
        return (lm[8, 1] - lm[27, 1]) / (lm[16, 0] - lm[0, 0])

    assert eye_rel(kid) > 1.15 * eye_rel(adult)
    assert lower_face(kid) < 0.9 * lower_face(adult)


def test_identity_variation():
    _, a = _lm({}, identity=1)
    _, b = _lm({}, identity=2)
    _, a2 = _lm({}, identity=1)
    assert np.allclose(a, a2) and not np.allclose(a, b)


# term -> (measure on the 68 landmarks, expected sign of change from severity 0 to 1)
MEASURES = {
    "HP:0000316": (lambda p: p[42, 0] - p[39, 0], +1),
    "HP:0000582": (lambda p: (p[39, 1] - p[36, 1]) + (p[42, 1] - p[45, 1]), +1),
    "HP:0000494": (lambda p: (p[39, 1] - p[36, 1]) + (p[42, 1] - p[45, 1]), -1),
    "HP:0000286": (lambda p: p[42, 0] - p[39, 0], +1),
    "HP:0012368": (lambda p: p[33, 1] - p[27, 1], -1),
    "HP:0005280": (lambda p: p[27, 1], +1),
    "HP:0000343": (lambda p: p[51, 1] - p[33, 1], +1),
    "HP:0000154": (lambda p: p[54, 0] - p[48, 0], +1),
    "HP:0000160": (lambda p: p[54, 0] - p[48, 0], -1),
    "HP:0000158": (lambda p: p[66, 1] - p[62, 1], +1),
    "HP:0010808": (lambda p: p[66, 1] - p[62, 1], +1),
    "HP:0000664": (lambda p: p[22, 0] - p[21, 0], -1),
    "HP:0000520": (lambda p: (p[41, 1] - p[37, 1]) + (p[46, 1] - p[44, 1]), +1),
    "HP:0000272": (lambda p: p[15, 0] - p[1, 0], -1),
    "HP:0000293": (lambda p: p[12, 0] - p[4, 0], +1),
    "HP:0000179": (lambda p: p[57, 1] - p[66, 1], +1),
}


@pytest.mark.parametrize("term", list(TERMS))
def test_each_term_changes_image_and_landmarks(term):
    im0, lm0 = _lm({term: 0.0})
    im1, lm1 = _lm({term: 1.0})
    imh, lmh = _lm({term: 0.5})
    diff = np.abs(im1.astype(int) - im0.astype(int))
    assert diff.max() > 40 and (diff.sum(-1) > 30).sum() >= 15, f"{term} barely visible"
    if term in MEASURES:
        f, sign = MEASURES[term]
        d1, dh = f(lm1) - f(lm0), f(lmh) - f(lm0)
        assert sign * d1 > 0.8, f"{TERMS[term]}: landmark measure moved {d1:.2f} px"
        assert 0 < sign * dh < sign * d1  # severity-scaled
    elif KIND[term] == "texture":
        assert np.allclose(lm0, lm1)


# three identities at 64 px, the cohort's size: a child, a teenager and an adult
VISIBILITY_FACES = ((101, 5.0, "F"), (202, 14.0, "M"), (303, 32.0, "F"))


@pytest.fixture(scope="module")
def neutral64():
    return [render_face(i, a, s, terms=None, size=64)[0].astype(int) for i, a, s in VISIBILITY_FACES]


@pytest.mark.parametrize("term", list(TERMS))
def test_every_term_visible_at_64px(term, neutral64):
    """At severity 1 every term changes at least 12 pixels by more than 10 grey levels (any channel)
    versus severity 0, median over a child, a teenager and an adult."""
    counts = []
    for (i, a, s), im0 in zip(VISIBILITY_FACES, neutral64):
        im1 = render_face(i, a, s, terms={term: 1.0}, size=64)[0].astype(int)
        counts.append(int((np.abs(im1 - im0).max(-1) > 10).sum()))
    assert np.median(counts) >= 12, f"{TERMS[term]} changes only {counts} pixels at 64 px"


def _grey32(images):
    n = len(images)
    return images.astype(np.float32).mean(-1).reshape(n, 32, 2, 32, 2).mean((2, 4)).reshape(n, -1) / 255.0


def test_age_is_visible_in_pixels():
    # the same person at 3 and 35 differs far more than at 35 and 37 ...
    d_child, d_adult = [], []
    for k in range(6):
        sex = "FM"[k % 2]
        a3, a35, a37 = (render_face(500 + k, a, sex, size=64)[0].astype(float) for a in (3.0, 35.0, 37.0))
        d_child.append(np.abs(a3 - a35).mean())
        d_adult.append(np.abs(a35 - a37).mean())
    print(f"mean |pixel diff|: age 3 vs 35 {np.mean(d_child):.2f}, 35 vs 37 {np.mean(d_adult):.2f}")
    assert np.mean(d_child) > 4 * np.mean(d_adult) and np.mean(d_child) > 5
    # ... and ageing keeps going through adulthood: 20 -> 60 is a visible change too
    a20, a60 = (render_face(7, a, "M", size=64)[0].astype(float) for a in (20.0, 60.0))
    assert np.abs(a20 - a60).mean() > 2 * np.mean(d_adult)


def test_ridge_on_grey_pixels_reads_age():
    """A tiny ridge regression on 32x32 grey pixels of cohort renders predicts age far better than
    the training mean (the age-only baseline)."""
    from sklearn.linear_model import Ridge

    tr = Cohort.generate(n=360, seed=21, size=64)
    te = Cohort.generate(n=120, seed=22, size=64)
    ytr, yte = tr.table["age"].to_numpy(), te.table["age"].to_numpy()
    model = Ridge(alpha=1.0).fit(_grey32(tr.images), ytr)
    mae = float(np.abs(model.predict(_grey32(te.images)) - yte).mean())
    base = float(np.abs(ytr.mean() - yte).mean())
    print(f"ridge age MAE {mae:.2f} years vs age-only (training mean) baseline {base:.2f}")
    assert mae < 0.6 * base


def test_child_face_sits_low_in_a_large_cranium():
    rows = pd.concat([face_table(9, a, "F") for a in (3.0, 30.0)], ignore_index=True)
    _, lm, head = render_table(rows, 128)
    top = head[:, 1] - head[:, 3]  # cranium top (hair excluded)
    eye_y = lm[:, 36:48, 1].mean(1)
    rel = (eye_y - top) / (lm[:, 8, 1] - top)  # eye line as a share of head height, from the top
    assert rel[0] > rel[1] + 0.05
    width = lm[:, 16, 0] - lm[:, 0, 0]
    assert head[0, 2] * 2 / width[0] > head[1, 2] * 2 / width[1]  # cranium wide relative to the face
    nose_len = (lm[:, 33, 1] - lm[:, 27, 1]) / (lm[:, 8, 1] - lm[:, 27, 1])
    assert nose_len[0] < nose_len[1]
    assert (lm > 0).all() and (lm < 128).all()


def test_microcephaly_shrinks_cranium():
    t0 = face_table(5, 20.0, "M", {})
    t1 = face_table(5, 20.0, "M", {"HP:0000252": 1.0})
    _, lm0, h0 = render_table(t0, 64)
    _, lm1, h1 = render_table(t1, 64)
    assert np.allclose(lm0, lm1)
    assert h1[0, 3] < 0.85 * h0[0, 3] and h1[0, 2] < h0[0, 2]


def test_severity_course_grows_with_age():
    for d in DISEASES:
        if d == UNAFFECTED:
            assert severity_course(d, 30.0) == 0
            continue
        s = severity_course(d, np.array([2.0, 10.0, 30.0, 60.0]))
        assert np.all(np.diff(s) >= 0) and 0 <= s.min() and s.max() <= 1


def test_divergence_recorded_and_seeded(small):
    div = small.divergence
    assert div and {"disease_id", "hpo_id", "change"} <= set(div[0])
    for r in div:
        assert r["change"] in {"dropped", "added"}
        kg, tr = small.kg.loc[r["disease_id"], r["hpo_id"]], small.truth.loc[r["disease_id"], r["hpo_id"]]
        if r["change"] == "dropped":
            assert kg > 0 and tr == 0
        else:
            assert kg == 0 and 0.2 < tr < 0.5
    changed = (small.kg != small.truth).to_numpy().sum()
    assert changed == len(div)
    for d in set(small.truth.index) - {UNAFFECTED}:
        kinds = [r["change"] for r in div if r["disease_id"] == d]
        assert kinds.count("dropped") <= 1 and kinds.count("added") == 1
    again = Cohort.generate(n=11, seed=99, size=32)
    assert again.divergence == div  # fixed divergence seed, independent of the cohort seed
    other = Cohort.generate(n=11, seed=99, size=32, divergence_seed=1)
    assert other.divergence != div
    assert small.meta["divergence_seed"] and small.meta["divergence"] == div
    # a dropped term is never expressed
    for r in div:
        if r["change"] == "dropped":
            rows = small.table["disease_id"] == r["disease_id"]
            assert (small.table.loc[rows, r["hpo_id"]] == 0).all()


def test_save_load_roundtrip(small, tmp_path):
    path = small.save(tmp_path / "c1")
    assert sorted(p.name for p in path.iterdir()) == ["cohort.npz", "meta.json", "table.csv"]
    c = Cohort.load(path)
    assert np.array_equal(c.images, small.images) and np.allclose(c.landmarks, small.landmarks)
    pd.testing.assert_frame_equal(c.table, small.table, check_dtype=False, atol=1e-9)
    pd.testing.assert_frame_equal(c.truth, small.truth, check_dtype=False)
    assert c.divergence == small.divergence and c.meta["seed"] == 3 and c.meta["size"] == 64
    assert c.meta["diseases"] == list(DISEASES)


def test_save_is_atomic(small, tmp_path, monkeypatch):
    import phenoface.cohort.table as mod

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(mod.np, "savez_compressed", boom)
    with pytest.raises(OSError):
        small.save(tmp_path / "c2")
    assert list((tmp_path / "c2").iterdir()) == []  # no partial or temp file left
    monkeypatch.undo()
    # a failure while writing the table leaves the npz but no meta.json: load refuses
    monkeypatch.setattr(pd.DataFrame, "to_csv", boom)
    with pytest.raises(OSError):
        small.save(tmp_path / "c3")
    names = sorted(p.name for p in (tmp_path / "c3").iterdir())
    assert names == ["cohort.npz"]
    with pytest.raises(FileNotFoundError, match="run notebook 00_data"):
        Cohort.load(tmp_path / "c3")


def test_subset(small):
    m = (small.table["disease_id"] == "OMIM:190685").to_numpy()
    s = small.subset(m)
    assert len(s) == m.sum() and s.images.shape[0] == m.sum()
    assert (s.table["disease_id"] == "OMIM:190685").all()
    assert len(small[:5]) == 5
    img, lm, row = small[0]
    assert img.shape == (64, 64, 3) and lm.shape == (68, 2) and row["identity"] == small.table["identity"][0]


def test_mediapipe_mapping_constant():
    assert len(MEDIAPIPE_TO_DLIB68) == 68 and len(set(MEDIAPIPE_TO_DLIB68)) == 68
    assert all(0 <= i < 468 for i in MEDIAPIPE_TO_DLIB68)


def test_figures():
    import matplotlib

    matplotlib.use("Agg")
    from phenoface.cohort.figures import age_strip, disease_grid, term_grid

    f1 = term_grid(size=32, severities=(0, 1), terms=["HP:0000316", "HP:0000980"])
    f2 = disease_grid(ages=(3, 30), size=32, diseases=["OMIM:190685", UNAFFECTED])
    assert len(f1.axes) == 4 and len(f2.axes) == 4
    f3 = age_strip(ages=(3, 40), identities=((1, "F"),), size=32)
    assert len(f3.axes) == 2


@pytest.mark.slow
def test_face_likeness_mediapipe():
    pytest.importorskip("mediapipe")
    from phenoface.cohort.validate import face_likeness

    r = face_likeness(n=12, seed=1, size=256)
    assert r["found_rate"] >= 0.75 and r["nme"] < 0.15


