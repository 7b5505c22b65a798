"""Notebook 07's steps (phenoface.evaluation.pipeline) on tiny saved splits: each result's metrics and figures."""

import json

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from phenoface.cohort import UNAFFECTED, make_splits, save_splits
from phenoface.evaluation.pipeline import (ROUTES, EditsResult, FaultsResult, MembershipResult, Measurements,
                                           MethodsResult, PortraitsResult, StepResult, TermControlResult,
                                           ZeroShotResult, edit_figures, edit_key, edits_step, identity_step,
                                           load_evaluation, memorisation_step, merge_metrics, parse_grid,
                                           photo_edits_step, portraits_step, progression_step, realism_step,
                                           recogniser_step, severity_step, timed, zero_shot_step)
from phenoface.phenotypes import Meter

DISEASES = [UNAFFECTED, "OMIM:190685", "OMIM:122470"]


@pytest.fixture(scope="module")
def ev(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("eval")
    save_splits(make_splits({"train": 120, "validation": 60, "test": 60}, seed=5, size=64, diseases=DISEASES), data_dir)
    return load_evaluation(data_dir, seed=0)


@pytest.fixture(scope="module")
def rec(ev):
    return recogniser_step(ev, grid="4x1,8x2", lr=0.01, max_blur=0.0)


@pytest.fixture(scope="module")
def measured(ev):
    """Every route read from the true landmarks (no instrument artifacts here); new faces the same way."""
    meter = Meter()
    m = {(name, route): meter.measure(c.landmarks, images=c.images) for name, c in ev.splits.items() for route in ROUTES}
    result = Measurements(m, meter, None, ev.data_dir, {"measure": 0.0})
    result.route = lambda route, images, landmarks: meter.measure(landmarks, images=images)
    return result


@pytest.fixture(scope="module")
def severity(ev, measured):
    return severity_step(ev, measured, methods="fitted,profile")


@pytest.fixture(scope="module")
def progression(ev, measured, severity):
    return progression_step(ev, measured, severity, identities=1, unaffected=2)


class _Fixed(StepResult):
    def __init__(self, metrics, seconds):
        self._m, self.seconds = metrics, seconds

    def metrics(self):
        return {**self._m, **super().metrics()}


def test_merge_metrics_puts_timings_last_and_rounds_them():
    a = _Fixed({"x": 1}, {"fit": 1.234})
    merged = merge_metrics(a, {"y": 2.5}, _Fixed({"z": "s"}, {}))
    assert merged == {"x": 1, "y": 2.5, "z": "s", "seconds_fit": 1.2}
    assert list(merged)[-1] == "seconds_fit"
    seconds = {}
    with timed(seconds, "part"):
        pass
    assert list(seconds) == ["part"] and 0 <= seconds["part"] < 1


def test_load_evaluation_splits_and_metrics(ev):
    assert ev.metrics() == {"faces_train": 120, "faces_validation": 60, "faces_test": 60, "heldout_faces": 60}
    assert ev.out_dir.is_dir() and list(ev.table().index) == ["train", "validation", "test"]
    assert ev.table().loc["test", "faces"] == 60
    with pytest.raises(FileNotFoundError):
        load_evaluation(ev.data_dir / "nowhere")


def test_parse_grid():
    assert parse_grid("16x20, 24x30") == [(16, 20), (24, 30)]


def test_recogniser_step_keeps_the_best_validation_candidate(ev, rec):
    chosen = rec.choice.loc[rec.choice["chosen"]].iloc[0]
    assert chosen["val_score"] == rec.choice["val_score"].max()
    m = rec.metrics()
    assert (m["recogniser_width"], m["recogniser_epochs"]) == (chosen["width"], chosen["epochs"])
    assert m["recogniser_top1"] == rec.report["top1"] and m["recogniser_chance_top1"] == pytest.approx(1 / 3)
    assert rec.path.is_file() and set(m) >= {"recogniser_top1_ci", "seconds_recogniser_choice"}
    assert rec.per_class()["faces"].sum() == len(ev.test)
    assert list(rec.table().index)[0] == "test faces"
    figs = rec.figures()
    assert list(figs) == ["recogniser_confusion"]
    plt.close("all")


def test_severity_step_chooses_on_validation_and_saves_tables(ev, severity):
    for route in ROUTES:
        best = max(severity.methods, key=lambda m: severity.val_rho[route, m])
        assert severity.chosen[route] == best
    m = severity.metrics()
    assert m["severity_method"] == severity.chosen["pixels"]
    chosen = severity.tables["test", "pixels", severity.chosen["pixels"]]
    assert m["severity_spearman"] == pytest.approx(chosen.loc["mean", "spearman"])
    assert m["severity_spearman"] > 0.3  # true landmarks: the score reads severity
    assert m["severity_spearman_ci"][0] <= m["severity_spearman"] <= m["severity_spearman_ci"][1]
    assert m["severity_profiles"].startswith("cohort truth")  # no profile artifacts in this data dir
    saved = json.loads((ev.out_dir / "severity_spearman.json").read_text())
    assert set(saved) == {f"{s}/{r}/{k}" for s in ("validation", "test") for r in ROUTES for k in severity.methods}
    assert list(severity.figures()) == ["severity_baselines", "severity_scatter"]
    plt.close("all")


def test_progression_step_and_identity(ev, progression, rec):
    m = progression.metrics()
    assert m["progression_order_accuracy_age_only"] == 1.0  # severity rises with age within a person
    assert 0 <= m["progression_order_accuracy"] <= 1 and 0 <= m["progression_order_accuracy_unaffected"] <= 1
    assert (ev.out_dir / "progression.json").is_file()
    assert list(progression.table_summary().index) == list(ROUTES)
    ident = identity_step(progression, rec.recogniser)
    assert ident.table.loc["same person", "identity-parameter distance"] == 0
    assert -1 <= ident.metrics()["identity_cosine_same"] <= 1
    assert list(progression.figures()) == ["progression_strips"]
    plt.close("all")


def test_realism_step_scale(ev, rec):
    r = realism_step(ev, rec.recogniser, inception_weights="")
    t = r.table
    assert abs(t.loc["test vs itself", "fd"]) < 1e-3
    assert t.loc["test vs test + noise (sigma 40)", "fd"] > t.loc["test vs test + noise (sigma 12)", "fd"]
    assert np.isnan(r.metrics()["inception_fid"]) and "skipped" in r.inception_note
    assert r.metrics()["fd_real_vs_heldout"] == t.loc["train vs test", "fd"]


def test_memorisation_step_flags_copies(ev, rec):
    mem = memorisation_step(ev, rec.recogniser, per_kind=2, fpr=0.05, searches="1,1+flip")
    assert list(mem.choice["search"]) == ["1", "1+flip"] and mem.search in ("1", "1+flip")
    assert mem.flagged(ev.train.images[:4]).all()  # exact copies
    m = mem.metrics()
    assert m["memorisation_threshold"] == mem.threshold and m["memorisation_rate"] == mem.roc["fpr"]
    assert 0.5 <= m["memorisation_auc"] <= 1
    assert (ev.out_dir / "memorisation.json").is_file()
    assert len(mem.hardest()) == mem.by_kind.shape[0]
    assert list(mem.figures()) == ["memorisation_roc", "memorisation_hardest_probes"]
    plt.close("all")


def test_steps_without_notebook_06_artifacts_say_so(ev, rec, severity, monkeypatch):
    from phenoface.evaluation.pipeline import editing

    monkeypatch.setattr(editing, "CALIBRATION_N", 8)  # render pairs of the identity calibration: 48 in the notebook
    generated = type("G", (), {"model": None})()
    zs = zero_shot_step(ev, generated)
    assert np.isnan(zs.metrics()["zero_shot_precision"]) and "zero_shot" in zs.note
    photo = photo_edits_step(ev, rec.recogniser)
    assert photo.metrics() == {} and "notebook 06" in photo.note
    portraits = portraits_step(ev, generated, rec.recogniser)
    assert portraits.metrics() == {} and "notebook 01" in portraits.note
    edits = edits_step(ev, generated, rec.recogniser, severity)
    m = edits.metrics()
    assert np.isnan(m["edit_progression_order_accuracy"]) and np.isnan(m["round_trip_identity_whole"])
    assert m["identity_calibration_auc_untouched"] > 0.5  # untouched regions tell people apart
    assert edits.table() is None


def test_edit_figures_and_keys():
    g = pd.DataFrame({"identity (whole face)": [0.5, 0.7], "identity (untouched regions)": [0.8, 1.0],
                      "target top-1": [1.0, 0.0], "target score move": [0.2, 0.4], "severity score move": [0.1, 0.3],
                      "phenotype change vs profile (Pearson)": [0.5, 0.5]})
    f = edit_figures(g, seed=0)
    assert f["identity_whole"] == pytest.approx(0.6) and f["target_top1"] == 0.5
    assert f["identity_untouched_ci"][0] <= 0.9 <= f["identity_untouched_ci"][1]
    assert edit_key("healthy -> diseased", "ddim") == "ddim_h2d" and edit_key("diseased -> healthy", "sdedit") == "sdedit_d2h"
    r = EditsResult(pd.DataFrame({"whole face": [0.6, 0.4, 0.9], "untouched regions": [0.9, 0.5, 0.95]},
                                 index=["same person", "different people", "AUROC same vs different"]),
                    figs={"ddim_h2d": {"target_top1": 0.5}})
    assert r.metrics()["edit_ddim_h2d_target_top1"] == 0.5 and r.metrics()["identity_calibration_auc_whole"] == 0.9


def test_term_control_metrics_and_figures():
    terms = ["a", "b", "c"]
    ctrl = lambda v, sev: {"term_spearman": pd.Series(v, index=terms), "severity_order_accuracy": sev}  # noqa: E731
    ceiling = {"renders": ctrl([0.9, 0.95, 0.85], 1.0), "renders through the autoencoder": ctrl([0.9, 0.5, 0.7], 0.9),
               "generated": ctrl([0.85, 0.3, 0.6], 0.8)}
    t = pd.DataFrame({k: v["term_spearman"] for k, v in ceiling.items()}).sort_values("renders through the autoencoder")
    r = TermControlResult(ceiling, t, 1.0, (0.5, 1.0), {"ceiling": 2.0})
    m = r.metrics()
    assert m["generated_terms_at_goal"] == 1 and m["generated_term_spearman_min"] == 0.3
    assert m["ceiling_terms_below_goal_autoencoder"] == 2 and r.lost == ["b", "c"]
    assert m["ceiling_term_spearman_median_autoencoder"] == 0.7 and m["seconds_ceiling"] == 2.0
    assert r.table().loc["terms at Spearman ≥ 0.8 (goal: all)", "generated"] == "1 of 3"
    assert list(r.figures()) == ["generated_term_control", "term_control_ceilings"]
    plt.close("all")


def test_small_results_metrics():
    faults = pd.DataFrame({"fault": ["unaffected"] * 2, "metric": ["read as unaffected"] * 2,
                           "setting": ["null token", "trained token"], "value": [0.2, 0.6], "lo": [0.1, 0.4],
                           "hi": [0.3, 0.8]})
    fr = FaultsResult(faults, {"sampling_faults": 3.0})
    assert fr.display_table()["interval"].tolist() == ["[0.10, 0.30]", "[0.40, 0.80]"]
    assert fr.metrics() == {"fault_unaffected_read_unaffected_before": 0.2,
                            "fault_unaffected_read_unaffected_after": 0.6, "seconds_sampling_faults": 3.0}
    zs = ZeroShotResult({"a": {"precision": 0.5, "chance": 0.2}, "b": {"precision": 1.0, "chance": 0.4}}, "")
    assert zs.metrics() == {"zero_shot_precision": 0.75, "zero_shot_precision_chance": pytest.approx(0.3)}
    assert MembershipResult(0.55, 0.02, 10, 10).metrics() == {"membership_auc": 0.55, "membership_tpr_at_fpr1": 0.02}
    summary = pd.DataFrame({"top-1": [0.5, 0.25], "top-5 hit": [1.0, 0.5], "phenotypes vs profile": [0.3, 0.1]},
                           index=["aligned average", "latent average"])
    assert PortraitsResult(None, summary).metrics() == {
        "portrait_top1_aligned": 0.5, "portrait_top1_latent": 0.25, "portrait_top5_aligned": 1.0,
        "portrait_top5_latent": 0.5, "portrait_phenotype_pearson_aligned": 0.3, "portrait_phenotype_pearson_latent": 0.1}


def test_methods_table_and_ablation():
    fig = {"faces": 4, "top1": 0.5, "top1_ci": [0.2, 0.8], "top5": 1.0}
    r = MethodsResult({"profile": fig, "kg": {**fig, "top1": 0.4, "top1_ci": [0.1, 0.7]}}, real_top1=0.8, missing=[])
    assert r.metrics()["method_kg_top1"] == 0.4 and r.metrics()["method_profile_top1_ci"] == [0.2, 0.8]
    assert r.table()["top-1 / real top-1"].tolist() == pytest.approx([0.625, 0.5])
    assert "the intervals overlap" in r.ablation()
    apart = MethodsResult({"profile": {**fig, "top1_ci": [0.45, 0.55]}, "kg": {**fig, "top1": 0.1, "top1_ci": [0.0, 0.2]}},
                          real_top1=0.8, missing=[])
    assert apart.ablation().endswith("the intervals do not overlap: the fused profile helps")
    assert MethodsResult({"profile": fig}, 0.8, []).ablation() == ""
    assert MethodsResult({"profile": fig}, 0.8, ["kg: missing"]).notes() == ["kg: missing"]
    assert r.notes() == [r.ablation()]
