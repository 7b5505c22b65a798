"""The evaluation suite: recogniser, realism (FD/KID), identity, memorisation, severity, progression."""

import numpy as np
import pandas as pd
import pytest

from phenoface.cohort import Cohort, UNAFFECTED
from phenoface.evaluation import (Gallery, InceptionWeightsError, Recogniser, SeverityScorer, embedding_cosine,
                                  frechet_distance, frechet_from_features, identity_parameter_distance,
                                  inception_extractor, kernel_distance, memorisation_check, order_accuracy,
                                  phash, plant_copies, progression_series, progression_table, severity_spearman,
                                  topk_accuracy, train_recogniser)
from phenoface.evaluation.figures import confusion_matrix, memorisation_pairs, nn_histogram

DISEASES = [UNAFFECTED, "OMIM:190685", "OMIM:122470"]  # Down and CdLS: high congenital severity floors


@pytest.fixture(scope="module")
def cohorts():
    train = Cohort.generate(n=300, diseases=DISEASES, seed=1, size=64)
    test = Cohort.generate(n=90, diseases=DISEASES, seed=2, size=64)
    return train, test


@pytest.fixture(scope="module")
def recogniser(cohorts):
    train, _ = cohorts
    # 32 px input and no augmentation keep this a few seconds on a laptop CPU
    return train_recogniser(train.images, train.table["disease_id"], epochs=20, seed=0, width=16, batch_size=32,
                            lr=1e-2, input_size=32, augment=False)


def test_recogniser_beats_chance_and_round_trips(cohorts, recogniser, tmp_path):
    _, test = cohorts
    res = recogniser.evaluate(test.images, test.table["disease_id"], k=2)
    assert res["top1"] >= 2 * res["chance_top1"], res["top1"]  # 3 classes: chance 1/3 (0.73-0.80 over seeds 0-2)
    assert res["top2"] >= res["top1"]
    assert res["confusion"].to_numpy().sum() == len(test)
    emb = recogniser.embed(test.images[:5])
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    path = recogniser.save(tmp_path / "recogniser.pt")
    again = Recogniser.load(path)
    np.testing.assert_allclose(again.embed(test.images[:5]), emb, atol=1e-5)
    assert list(again.predict(test.images[:5])["top1"]) == list(recogniser.predict(test.images[:5])["top1"])


def test_recogniser_is_seeded(cohorts):
    train, _ = cohorts
    sub = train.images[:48], train.table["disease_id"][:48]
    a = train_recogniser(*sub, epochs=1, seed=3, width=8, batch_size=16)
    b = train_recogniser(*sub, epochs=1, seed=3, width=8, batch_size=16)
    np.testing.assert_allclose(a.embed(sub[0][:4]), b.embed(sub[0][:4]), atol=1e-6)


def test_gallery_ranks_and_counts_missing_faces_as_misses():
    g = Gallery(np.array([[1, 0], [0, 1], [0.9, 0.1]]), np.array(["a", "b", "a"]))
    q = np.array([[1, 0.05], [0.1, 1], [np.nan, np.nan]])
    ranked = g.rank(q, k=2)
    assert list(ranked["top1"][:2]) == ["a", "b"] and pd.isna(ranked["top1"][2])
    assert topk_accuracy(ranked, ["a", "b", "a"], 1) == pytest.approx(2 / 3)  # the face-less query is a miss
    cent = Gallery(g.embeddings, g.labels, mode="centroid").rank(q[:2], k=1)
    assert list(cent["top1"]) == ["a", "b"]


def test_fd_of_set_with_itself_is_zero_and_grows_with_noise(cohorts, recogniser):
    train, _ = cohorts
    ext = recogniser.feature_extractor()
    imgs = train.images[:96]
    assert frechet_distance(imgs, imgs, ext) < 1e-3
    rng = np.random.default_rng(0)
    fds = []
    for sigma in (8, 40):
        noisy = np.clip(imgs + rng.normal(0, sigma, imgs.shape), 0, 255).astype(np.uint8)
        fds.append(frechet_distance(imgs, noisy, ext))
    assert 0 < fds[0] < fds[1]
    # torchmetrics agrees with the numpy/scipy formula on the same features
    f = recogniser.features(imgs)
    g = recogniser.features(np.clip(imgs + rng.normal(0, 40, imgs.shape), 0, 255).astype(np.uint8))
    assert frechet_distance(imgs, imgs[::-1].copy(), ext) < 1e-3
    assert frechet_from_features(f, g) > 0
    kid_same, _ = kernel_distance(imgs, imgs, ext, subsets=5, subset_size=40)
    kid_noise, _ = kernel_distance(imgs, np.clip(imgs + 40, 0, 255).astype(np.uint8), ext, subsets=5, subset_size=40)
    assert kid_noise > kid_same


def test_inception_fid_needs_its_weights_path(tmp_path):
    with pytest.raises(InceptionWeightsError, match="No Inception weights path given"):
        inception_extractor("")
    with pytest.raises(InceptionWeightsError, match="not found at .*missing.pth"):
        inception_extractor(tmp_path / "missing.pth")


def test_identity_distance_and_cosine():
    same = identity_parameter_distance([5, 5], ["F", "F"], [5, 6], ["F", "F"])
    assert same[0] == 0 and same[1] > 0.3
    cos = embedding_cosine(np.array([[1.0, 0], [1, 1], [np.nan, 1]]), np.array([[1.0, 0], [-1, -1], [1, 1]]))
    assert cos[0] == pytest.approx(1) and cos[1] == pytest.approx(-1) and np.isnan(cos[2])


def test_memorisation_flags_planted_copies_not_fresh_faces(cohorts, recogniser):
    train, test = cohorts
    planted, src, kind = plant_copies(train.images, n=12, seed=0)
    rep = memorisation_check(planted, train.images, features=recogniser)
    assert rep.table["flagged"].all(), rep.table
    assert rep.table.loc[kind == "exact", "exact_copy"].all()
    assert rep.table.loc[kind == "perturbed", "thumb_copy"].all()
    assert (rep.table.loc[kind == "exact", "exact_train"].to_numpy() == src[kind == "exact"]).all()
    assert (rep.table["match_train"].to_numpy() == src).mean() >= 0.9  # the pair shown is the source
    fresh = memorisation_check(test.images, train.images, features=recogniser)
    assert fresh.rate <= 0.1, fresh
    assert len(fresh.table) == len(test)  # every candidate reported
    import matplotlib.pyplot as plt
    plt.close(memorisation_pairs(rep, planted, train.images, k=4))
    plt.close(nn_histogram(fresh))


def test_phash_is_stable_under_brightness():
    rng = np.random.default_rng(0)
    img = (rng.random((2, 32, 32, 3)) * 255).astype(np.uint8)
    bright = np.clip(img.astype(int) + 10, 0, 255).astype(np.uint8)
    assert (phash(img) == phash(bright)).mean() > 0.9


def test_order_accuracy():
    assert order_accuracy([0.1, 0.2, 0.3, 0.9], [1, 2, 3, 4]) == 1.0
    assert order_accuracy([0.9, 0.2, 0.1], [1, 2, 3]) == 0.0
    assert order_accuracy([0.5, 0.5], [1, 2]) == 0.5
    # within groups only: cross-group pairs do not count
    assert order_accuracy([0.1, 0.2, 5.0, 6.0], [1, 2, 1, 2], groups=[0, 0, 1, 1]) == 1.0
    assert order_accuracy([0.1, np.nan], [1, 2]) == 0.0  # a missing score is a wrong order


def _oracle_measure(table, rng, noise=0.05):
    from phenoface.cohort import TERMS
    # "measurements" = true term amounts + noise + an age trend the reference must remove
    return pd.DataFrame(table[list(TERMS)].to_numpy() + rng.normal(0, noise, (len(table), len(TERMS)))
                        + 0.02 * table["age"].to_numpy()[:, None], columns=list(TERMS))


def test_severity_score_tracks_truth_and_is_calibrated(cohorts):
    train, test = cohorts
    rng = np.random.default_rng(0)
    # precise measurements: the profile projection with the "expressed terms" aggregate (a linear fit,
    # the default, cannot normalise by how many terms a patient shows: pooled 0.25 here)
    scorer = SeverityScorer(train.truth, method="profile", aggregate="expressed").fit(_oracle_measure(train.table, rng), train.table)
    s = scorer.score(_oracle_measure(test.table, rng), test.table["disease_id"], test.table["age"], test.table["sex"])
    aff = (test.table["disease_id"] != UNAFFECTED).to_numpy()
    assert np.isnan(s[~aff]).all()  # no profile, no severity
    assert np.nanmin(s) >= 0 and np.nanmax(s) <= 1
    table = severity_spearman(s[aff], test.table["severity"][aff], test.table["disease_id"][aff])
    assert table.loc["pooled", "spearman"] > 0.3, table
    # scored under the wrong disease the unaffected faces look mild
    un = scorer.score(_oracle_measure(test.table[~aff], rng), "OMIM:190685", test.table["age"][~aff],
                      test.table["sex"][~aff])
    assert np.nanmedian(un) < np.nanmedian(s[aff])


def test_progression_series_is_one_person_getting_worse():
    imgs, lms, table = progression_series(["OMIM:190685"], n_identities=2, ages=(2, 6, 20), seed=0, size=32)
    assert imgs.shape == (6, 32, 32, 3) and lms.shape == (6, 68, 2)
    assert table.groupby("series")["identity"].nunique().eq(1).all()
    assert (table.groupby("series")["severity"].apply(lambda s: s.is_monotonic_increasing)).all()
    perfect = progression_table(table["severity"].to_numpy(), table, min_gap=0.0)
    assert perfect.loc["all", "order_accuracy"] == 1.0
    _, _, by_sev = progression_series(["ORPHA:548"], n_identities=1, by="severity", severities=(0.2, 0.9), seed=0,
                                      size=32)
    assert list(by_sev["severity"]) == [0.2, 0.9] and by_sev["age"].nunique() == 1


def test_confusion_figure(cohorts, recogniser):
    import matplotlib.pyplot as plt
    _, test = cohorts
    res = recogniser.evaluate(test.images[:20], test.table["disease_id"][:20])
    plt.close(confusion_matrix(res["confusion"]))


def test_dlib_backend_reports_faceless_images_per_image():
    from skimage import data

    from phenoface.evaluation import dlib_identity

    face = data.astronaut()
    blank = np.full_like(face, 128)
    pairs = dlib_identity(np.stack([face, face]), np.stack([face[:, ::-1].copy(), blank]))
    assert list(pairs["face_a"]) == [True, True] and list(pairs["face_b"]) == [True, False]
    assert pairs.loc[0, "same_person"] and pairs.loc[0, "cosine"] > 0.9  # a mirror image is the same person
    assert pairs.loc[1, "same_person"] is None and np.isnan(pairs.loc[1, "cosine"])  # reported, not dropped


def _diluted(n, rng):
    """Two diseases, four terms each: the first always present, the other three in 20% of patients
    (amount = severity), every measurement with noise 0.3 and an age trend. The profile weights the
    rare terms most (0.8 vs 0.2), so a fixed profile-weighted mean is mostly noise."""
    dis = rng.choice([UNAFFECTED, "D1", "D2"], n)
    age, sex = rng.uniform(1, 60, n), rng.choice(["F", "M"], n)
    sev = np.where(dis == UNAFFECTED, 0.0, rng.uniform(0.1, 1.0, n))
    present = np.c_[np.ones(n), rng.random((n, 3)) < 0.2]
    own = np.c_[np.repeat((dis == "D1")[:, None], 4, 1), np.repeat((dis == "D2")[:, None], 4, 1)]
    m = np.tile(present, 2) * own * sev[:, None] + rng.normal(0, 0.3, (n, 8)) + 0.02 * age[:, None]
    table = pd.DataFrame({"disease_id": dis, "age": age, "sex": sex, "severity": sev})
    return pd.DataFrame(m, columns=[f"T{i}" for i in range(8)]), table


def test_fitted_weights_beat_the_profile_mean_on_diluted_terms():
    rng = np.random.default_rng(0)
    weights = {d: {f"T{i}": (0.2 if i % 4 == 0 else 0.8) for i in r} for d, r in (("D1", range(4)), ("D2", range(4, 8)))}
    calib, test = _diluted(400, rng), _diluted(400, rng)
    aff = (test[1]["disease_id"] != UNAFFECTED).to_numpy()
    rho = {}
    for method in ("profile", "fitted"):
        scorer = SeverityScorer(weights, method=method).fit(*calib)
        s = scorer.score(test[0], test[1]["disease_id"], test[1]["age"], test[1]["sex"])
        assert np.nanmin(s) >= 0 and np.nanmax(s) <= 1 and np.isnan(s[~aff]).all()
        rho[method] = severity_spearman(s[aff], test[1]["severity"][aff], test[1]["disease_id"][aff]).loc["mean", "spearman"]
    # seed 0: profile 0.29, fitted 0.67 (the fit finds the always-present term)
    assert rho["fitted"] > 0.55 and rho["fitted"] > rho["profile"] + 0.2, rho
    w = dict(zip(*scorer.fitted["D1"][:2]))
    assert all(v >= 0 for v in w.values()) and w["T0"] == max(w.values())
    # the reference (z-scores) can come from other faces; with the same faces nothing changes
    again = SeverityScorer(weights).fit(*calib, reference=calib)
    np.testing.assert_allclose(again.raw(test[0], "D1", test[1]["age"], test[1]["sex"]),
                               scorer.raw(test[0], "D1", test[1]["age"], test[1]["sex"]))
    with pytest.raises(ValueError, match="method"):
        SeverityScorer(weights, method="nope")
