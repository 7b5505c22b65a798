"""Figures for generated faces (lib/phenoface/evaluation/generated.py) on arrays whose answer is known."""

import numpy as np
import pandas as pd
import pytest

from phenoface.evaluation.generated import (age_mae, membership_auc, rendered_series, series_control, series_severity,
                                            zero_shot_precision)


def _series_table(levels=(0, 0.5, 1.0)):
    rows = []
    for kind, target in (("severity", "D1"), ("term", "HP:1"), ("term", "HP:2")):
        for seed in (0, 1):
            rows += [{"label": target, "kind": kind, "target": target, "level": v, "seed": seed,
                      "series": f"{target}|{seed}"} for v in levels]
    return pd.DataFrame(rows)


def test_series_control_reads_order_and_term_spearman():
    t = _series_table()
    # HP:1 follows its level, HP:2 goes the wrong way; the severity score follows the level
    measured = pd.DataFrame({"HP:1": t["level"] * 2.0, "HP:2": -t["level"]})
    score = np.where(t["kind"] == "severity", t["level"], np.nan)
    out = series_control(t, score, measured)
    assert out["severity_order_accuracy"] == 1.0
    assert out["term_spearman"]["HP:1"] == pytest.approx(1.0) and out["term_spearman"]["HP:2"] == pytest.approx(-1.0)
    # a score that ignores severity orders no better than ties (half credit)
    flat = series_control(t, np.where(t["kind"] == "severity", 0.3, np.nan), measured)
    assert flat["severity_order_accuracy"] == pytest.approx(0.5)
    # a NaN score counts as wrong, it is not dropped
    assert series_control(t, np.full(len(t), np.nan), measured)["severity_order_accuracy"] == 0.0


def test_zero_shot_precision_ranks_paired_differences():
    rng = np.random.default_rng(0)
    cols = [f"HP:{i}" for i in range(10)]
    control = pd.DataFrame(rng.normal(size=(40, 10)), columns=cols)
    drawn = control.copy()
    drawn[["HP:1", "HP:2"]] += 1.0  # the composition raised two terms
    r = zero_shot_precision(drawn + rng.normal(0, 0.1, drawn.shape), control, ["HP:1", "HP:2"])
    assert r["precision"] == 1.0 and r["k"] == 2 and r["chance"] == pytest.approx(0.2)
    wrong = zero_shot_precision(drawn, control, ["HP:5", "HP:6"])
    assert wrong["precision"] == 0.0


def test_membership_auc_bounds_and_direction():
    assert membership_auc([0.1, 0.2], [0.8, 0.9]) == 1.0  # training faces denoised better: a leak
    assert membership_auc([0.8, 0.9], [0.1, 0.2]) == 0.0
    rng = np.random.default_rng(0)
    same = membership_auc(rng.random(500), rng.random(500))
    assert 0.4 < same < 0.6


def test_age_mae_sits_beside_its_shuffled_yardstick():
    """Perfect estimates: MAE 0, while the same ages in a shuffled order are far off; the order is seeded."""
    asked = np.linspace(1.0, 60.0, 50)
    mae, shuffled = age_mae(asked, asked, seed=3)
    assert mae == 0.0 and shuffled > 10.0
    assert age_mae(asked, asked, seed=3) == (mae, shuffled) and age_mae(asked, asked, seed=4)[1] != shuffled
    assert age_mae(asked + 2.0, asked, seed=3)[0] == pytest.approx(2.0)


def test_rendered_series_mirror_the_series_one_person_each():
    from phenoface.cohort import DISEASES, TERM_IDS, UNAFFECTED

    disease = next(d for d in DISEASES if d != UNAFFECTED)
    levels = (0.0, 0.5, 1.0)
    rows = [{"label": lab, "kind": kind, "target": target, "level": v, "seed": 0, "series": f"{lab}|0"}
            for lab, kind, target in (("d", "severity", disease), ("t", "term", TERM_IDS[0])) for v in levels]
    table = pd.DataFrame(rows)
    images, out = rendered_series(table, seed=1, size=32)
    assert images.shape == (6, 32, 32, 3) and images.dtype == np.uint8
    pd.testing.assert_frame_equal(out, table)
    for s in (0, 3):  # each series is one person: the face moves away from its level-0 self as the level rises
        moved = [np.abs(images[s + k].astype(float) - images[s].astype(float)).mean() for k in range(3)]
        assert moved[0] == 0.0 and 0 < moved[1] < moved[2]
    assert np.array_equal(rendered_series(table, seed=1, size=32)[0], images)  # seeded
    with pytest.raises(ValueError, match="unknown series kind"):
        rendered_series(table.assign(kind="age"), size=32)


def test_series_severity_scores_severity_rows_only():
    class Scorer:
        def score(self, measured, diseases, ages, sexes):
            self.args = (list(diseases), list(ages), list(sexes))
            return measured["HP:1"].to_numpy() * 10

    t = _series_table()
    measured = pd.DataFrame({"HP:1": t["level"]})
    scorer = Scorer()
    out = series_severity(scorer, t, measured, age=5.0, sex="M")
    sev = (t["kind"] == "severity").to_numpy()
    assert np.isnan(out[~sev]).all() and np.allclose(out[sev], t.loc[sev, "level"] * 10)
    assert scorer.args == (["D1"] * 6, [5.0] * 6, ["M"] * 6)


def test_fault_metrics_name_each_side_of_each_fault():
    import pandas as pd

    from phenoface.evaluation.faults import SETTINGS, fault_metrics

    rows = [{"fault": "spacing", "setting": s, "metric": "recogniser top-1", "value": v, "lo": 0, "hi": 1, "n": 8}
            for s, v in zip(SETTINGS["spacing"], (0.2, 0.4))]
    rows += [{"fault": "unaffected", "setting": SETTINGS["unaffected"][1], "metric": "read as unaffected", "value": 0.9,
              "lo": 0.8, "hi": 1.0, "n": 40}]
    out = fault_metrics(pd.DataFrame(rows))
    assert out == {"fault_spacing_top1_before": 0.2, "fault_spacing_top1_after": 0.4,
                   "fault_unaffected_read_unaffected_after": 0.9}


def test_sampling_faults_refuses_an_unknown_fault():
    from phenoface.evaluation.faults import sampling_faults

    with pytest.raises(ValueError, match="unknown fault"):
        sampling_faults(None, None, None, None, {}, faults=("spacing", "colour"))


def test_term_steps_one_figure_per_term(tmp_path):
    from phenoface.cohort.terms import TERM_IDS
    from phenoface.evaluation.generated import term_steps
    from phenoface.cohort.independent import render_independent
    from phenoface.model import load_model
    from phenoface.model.train import main
    from phenoface.phenotypes import save_choice, train_instrument

    images, table = render_independent(32, seed=2, size=32)
    save_choice(tmp_path, "pixel", train_instrument(images, table[TERM_IDS].to_numpy(), table["age"].to_numpy(),
                                                    epochs=1, width=4, seed=0, batch_size=16, progress=False))
    main(["--out", str(tmp_path / "gen"), "--faces", "40", "--image-size", "32", "--ae-steps", "3", "--unet-steps", "3"])
    steps = term_steps(load_model(tmp_path / "gen" / "model"), data_dir=tmp_path, seed=0)
    assert set(steps.index) == set(TERM_IDS)
    assert ((steps.fillna(0) >= -1) & (steps.fillna(0) <= 1)).all()
