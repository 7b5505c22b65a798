"""The evaluation suite: recogniser, realism (FD/KID), identity, memorisation, severity, progression."""

import numpy as np
import pandas as pd
import pytest

from phenoface.cohort import Cohort, UNAFFECTED
from phenoface.evaluation import (Gallery, InceptionWeightsError, Recogniser, SeverityScorer, age_order_accuracy,
                                  augment, blur_images, choose_recogniser, crop_resize, detection_by_kind,
                                  embedding_cosine, flip_images, frechet_distance, frechet_from_features,
                                  identity_pairs, identity_parameter_distance, inception_extractor, kernel_distance,
                                  majority_top1, make_probes, MemorisationDetector, memorisation_check, order_accuracy, phash,
                                  plant_copies, progression_series, progression_table, recogniser_report,
                                  roc_summary, severity_spearman, severity_table, shift_images, threshold_at_fpr,
                                  topk_accuracy, train_recogniser)
from phenoface.evaluation.figures import (confusion_matrix, memorisation_pairs, memorisation_roc, nn_histogram,
                                          severity_baselines)
from phenoface.evaluation.privacy import euclidean_nn, nearest_neighbours

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
                            lr=1e-2, input_size=32, augment_images=False)


def test_recogniser_beats_chance_and_round_trips(cohorts, recogniser, tmp_path):
    _, test = cohorts
    res = recogniser.evaluate(test.images, test.table["disease_id"], k=2)
    # 3 classes: chance 1/3; 0.61 at seed 0 since the per-patient severity factor is U(0.35, 1) (0.73-0.80
    # over seeds 0-2 with U(0.75, 1))
    assert res["top1"] >= 1.5 * res["chance_top1"], res["top1"]
    assert res["top2"] >= res["top1"]
    assert res["confusion"].to_numpy().sum() == len(test)
    emb = recogniser.embed(test.images[:5])
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    path = recogniser.save(tmp_path / "recogniser.safetensors")
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


def test_one_detector_judges_several_batches_as_the_one_shot_check_does(cohorts, recogniser):
    """The detector calibrates on the training images once; each batch it checks gets the report a fresh
    memorisation_check gives (identical tables and limits), in either order, and bad settings are refused."""
    train, test = cohorts
    planted, _, _ = plant_copies(train.images, n=8, seed=1)
    detector = MemorisationDetector(train.images, features=recogniser, max_shift=2, mirror=True)
    for batch in (test.images[:30], planted, test.images[:0]):
        got = detector.check(batch)
        want = memorisation_check(batch, train.images, features=recogniser, max_shift=2, mirror=True)
        pd.testing.assert_frame_equal(got.table, want.table)
        assert got.threshold == want.threshold and got.meta == want.meta
    assert detector.check(planted).table["flagged"].all()
    with pytest.raises(ValueError, match="two training images"):
        MemorisationDetector(train.images[:1])
    with pytest.raises(ValueError, match="percentile"):
        MemorisationDetector(train.images, percentile=0)


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
    assert order_accuracy([0.3, 0.1, 0.2], [1, 2, 3], min_gap=1.5) == 0.0  # only the (1, 3) pair counts


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
    conf = res["confusion"]
    fig = confusion_matrix(conf, names={UNAFFECTED: "healthy"}, title="test faces")
    ax = fig.axes[0]
    # the heatmap shows each row as shares of that row's faces, rows and columns labelled with the given names
    shown = np.ma.filled(ax.collections[0].get_array().astype(float), np.nan).reshape(conf.shape)
    shares = conf.div(conf.sum(axis=1).replace(0, np.nan), axis=0).to_numpy(float)
    np.testing.assert_allclose(shown, shares, equal_nan=True)
    assert np.allclose(np.nansum(shown, axis=1)[conf.sum(axis=1).to_numpy() > 0], 1.0)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["healthy" if c == UNAFFECTED else c for c in conf.index]
    assert ax.get_title() == "test faces" and ax.get_xlabel() == "predicted (top-1)"
    plt.close(fig)


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


def test_augment_blurs_adds_noise_and_is_seeded():
    import torch

    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.uniform(-1, 1, (8, 3, 24, 24)).astype(np.float32))
    a = augment(x, torch.Generator().manual_seed(1), max_blur=1.2, blur_p=1.0, noise=0.0, shift=0)
    b = augment(x, torch.Generator().manual_seed(1), max_blur=1.2, blur_p=1.0, noise=0.0, shift=0)
    assert a.shape == x.shape and float(a.abs().max()) <= 1.0
    torch.testing.assert_close(a, b)
    # blur on every face lowers the pixel-to-pixel differences of white noise (colour jitter alone cannot
    # remove more than ~25 % of them)
    def rough(t):
        return float((t[..., 1:] - t[..., :-1]).abs().mean())
    sharp = augment(x, torch.Generator().manual_seed(1), max_blur=0.0, noise=0.0, shift=0)
    assert rough(a) < 0.8 * rough(sharp)


def test_perturbations():
    img = np.zeros((1, 16, 16, 3), np.uint8)
    img[0, 4, 5] = 255
    moved = shift_images(img, 3, -2)
    assert moved[0, 2, 8, 0] == 255 and moved.sum() == 255 * 3
    assert (flip_images(img)[0, 4, 10] == 255).all()
    blurred = blur_images(img, 1.0)
    assert blurred[0, 4, 5, 0] < 255 and blurred[0, 4, 6, 0] > 0
    assert crop_resize(np.full((2, 20, 20, 3), 7, np.uint8), 0.9).shape == (2, 20, 20, 3)


def test_recogniser_report_and_baselines(cohorts, recogniser):
    train, test = cohorts
    rep = recogniser_report(recogniser, test.images, test.table["disease_id"], train.table["disease_id"], k=2)
    lo, hi = rep["top1_ci"]
    assert lo <= rep["top1"] <= hi and hi - lo < 0.3
    assert rep["top1"] > rep["majority_top1"] + 0.15 and rep["top1"] > rep["chance_top1"] + 0.15
    assert rep["chance_top2"] == pytest.approx(2 / 3)
    assert rep["confusion_blur"].to_numpy().sum() == len(test)
    assert majority_top1(["a", "a", "b"], ["a", "b", "b", "b"]) == 0.25


def test_choose_recogniser_picks_the_best_validation_row(cohorts):
    train, test = cohorts
    best, table = choose_recogniser(train.images[:120], train.table["disease_id"][:120], test.images[:45],
                                    test.table["disease_id"][:45], grid=[(8, 1), (8, 6)], seed=0, batch_size=32,
                                    input_size=32)
    assert len(table) == 2 and table["chosen"].sum() == 1
    chosen = table[table["chosen"]].iloc[0]
    assert chosen["val_score"] == table["val_score"].max()
    assert best.history["epochs"] == chosen["epochs"]


def test_severity_table_reports_the_age_baseline_and_partial():
    rng = np.random.default_rng(0)
    n = 300
    groups = rng.choice(["D1", "D2"], n)
    age = rng.uniform(2, 60, n)
    sev = 0.5 * age / 60 + 0.5 * rng.random(n)
    reads_age = severity_table(age + rng.normal(0, 0.1, n), sev, age, groups)
    reads_face = severity_table(sev + rng.normal(0, 0.05, n), sev, age, groups)
    # a score that is age: the same figure as the baseline, nothing beyond age
    assert reads_age.loc["mean", "spearman"] == pytest.approx(reads_age.loc["mean", "spearman_age_only"], abs=0.02)
    assert abs(reads_age.loc["mean", "spearman_partial_age"]) < 0.15
    assert reads_face.loc["mean", "spearman_partial_age"] > 0.8
    assert 0.3 < reads_face.loc["mean", "spearman_age_only"] < 0.8
    # a missing score stays in (median-filled), so it lowers the figure instead of vanishing
    holes = sev.copy()
    holes[: n // 3] = np.nan
    t = severity_table(holes, sev, age, groups)
    assert t.loc["pooled", "n_missing"] == n // 3 and t.loc["pooled", "n"] == n
    assert t.loc["mean", "spearman"] < 0.9
    plt = pytest.importorskip("matplotlib.pyplot")
    plt.close(severity_baselines(reads_face))


def test_age_order_control():
    table = pd.DataFrame({"series": [0, 0, 0, 1, 1, 1], "age": [2, 10, 30] * 2})
    assert age_order_accuracy({"D": table["age"].to_numpy(float)}, table)["mean"] == 1.0
    flat = age_order_accuracy({"D": np.zeros(6)}, table)
    assert flat["mean"] == 0.5
    assert age_order_accuracy({"D": np.array([3.0, 2, 1, np.nan, 1, 2])}, table)["D"] == pytest.approx(1 / 6)


def test_identity_pairs_stay_within_a_disease():
    table = pd.DataFrame({"series": [0, 0, 1, 1, 2, 2, 3, 3], "age": [2, 40] * 4,
                          "disease_id": ["A", "A", "B", "B", "A", "A", "C", "C"]})
    pairs = identity_pairs(table)
    same = pairs[pairs["kind"] == "same person"]
    diff = pairs[pairs["kind"] != "same person"]
    assert len(same) == 4 and (table.loc[same["a"], "series"].to_numpy() == table.loc[same["b"], "series"].to_numpy()).all()
    assert len(diff) == 1  # only disease A has two people
    assert (table.loc[diff["a"], "disease_id"].to_numpy() == table.loc[diff["b"], "disease_id"].to_numpy()).all()
    assert (table.loc[diff["a"], "series"].to_numpy() != table.loc[diff["b"], "series"].to_numpy()).all()


def test_sklearn_neighbours_match_brute_force():
    rng = np.random.default_rng(0)
    ref, q = rng.normal(size=(40, 5)), rng.normal(size=(12, 5))
    idx, d = euclidean_nn(q, ref)
    brute = np.linalg.norm(q[:, None] - ref[None], axis=2)
    assert (idx == brute.argmin(1)).all() and np.allclose(d, brute.min(1))
    idx_self, _ = euclidean_nn(ref, ref, exclude_self=True)
    own = np.linalg.norm(ref[:, None] - ref[None], axis=2) + np.diag(np.full(40, np.inf))
    assert (idx_self == own.argmin(1)).all()
    ci, cd = nearest_neighbours(q, ref)
    cos = 1 - (q / np.linalg.norm(q, axis=1, keepdims=True)) @ (ref / np.linalg.norm(ref, axis=1, keepdims=True)).T
    assert (ci == cos.argmin(1)).all() and np.allclose(cd, cos.min(1), atol=1e-9)


def test_probes_roc_and_threshold(cohorts, recogniser):
    train, test = cohorts
    probes, src, kind = make_probes(train.images, train.table, per_kind=4, seed=0)
    assert len(probes) == 28 and len(set(src)) == 28
    again = make_probes(train.images, train.table, per_kind=4, seed=0)[0]
    np.testing.assert_array_equal(probes, again)
    assert (probes[kind == "exact"] == train.images[src[kind == "exact"]]).all()
    np.testing.assert_array_equal(probes[kind == "flip"], train.images[src[kind == "flip"]][:, :, ::-1])
    aged = probes[kind == "other_age"]
    assert (np.abs(aged.astype(int) - train.images[src[kind == "other_age"]]).mean(axis=(1, 2, 3)) > 1).all()
    rep = memorisation_check(np.concatenate([probes, test.images]), train.images, features=recogniser, max_shift=1)
    score = rep.table["score"].to_numpy()
    p, h = score[:len(probes)], score[len(probes):]
    assert (p[kind == "exact"] < 1e-6).all()  # a copy: distance 0 up to round-off
    thr = threshold_at_fpr(h, 0.05)
    assert (h < thr).mean() <= 0.05
    summary = roc_summary(p, h, thr)
    assert 0.6 < summary["auc"] <= 1.0 and summary["tpr"] >= (kind == "exact").mean()
    assert roc_summary(h[:45], h[45:], thr)["auc"] < 0.75  # fresh faces against fresh faces: no signal
    # the mirror search makes a flipped copy as close as the copy itself
    mirrored = memorisation_check(probes[kind == "flip"], train.images, features=recogniser, mirror=True)
    assert (mirrored.table["score"] < 1e-6).all() and (p[kind == "flip"] > 1e-3).all()
    by = detection_by_kind(p, kind, thr)
    assert by.loc["exact", "detected"] == 1.0 and by["probes"].sum() == len(p)
    plt = pytest.importorskip("matplotlib.pyplot")
    plt.close(memorisation_roc(summary, by))
    assert threshold_at_fpr(np.arange(100.0), 0.01) == 1.0  # flags only the 0: one of 100
