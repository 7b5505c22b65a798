"""Headline table and comparison table read recorded metrics."""

import numpy as np
import pytest

from phenoface.report import record_metrics
from phenoface.summary import HEADLINES, comparison_table, headline_table


def test_headlines_mark_pass_miss_and_not_run(tmp_path):
    m = tmp_path / "metrics"
    record_metrics("04_image_profiles", {"image_profile_precision_at_k": 0.96, "image_profile_precision_at_k_ci": [0.9, 0.99],
                                         "frequency_profile_precision_at_k": 0.3, "age_mae": 4.0}, m)
    record_metrics("07_evaluate", {"generated_age_mae": 2.0, "generated_age_mae_real": 1.0, "autoencoder_age_mae_test": 1.2}, m)
    t = headline_table(m).set_index("figure")
    assert t.loc["image-profile precision@k (pixels)", "status"] == "pass"
    assert t.loc["image-profile precision@k (pixels)", "value"] == "0.96 [0.9, 0.99]"
    assert "0.3 (frequency only)" == t.loc["image-profile precision@k (pixels)", "baseline"]
    assert t.loc["age MAE, years (pixels)", "status"] == "miss"
    assert t.loc["generated age MAE, years", "status"] == "miss"  # 2.0 > 1.5 x 1.0
    assert t.loc["generated age MAE, years", "ceiling"] == "1.2" and t.loc["generated top-1 / real top-1", "ceiling"] == ""
    assert t.loc["term intensity Pearson, weakest term", "status"] == "not run"
    assert len(t) == len(HEADLINES)


def test_comparison_table_says_why_a_cell_is_missing(tmp_path):
    m = tmp_path / "metrics"
    record_metrics("07_evaluate", {"method_class_top1": 0.2, "method_class_top1_ci": [0.1, 0.3], "method_profile_top1": 0.4,
                                   "method_kg_top1": 0.3, "portrait_top5_aligned": 0.75}, m)
    t = comparison_table(m)
    assert t.loc["class-conditional (GestaltGAN-style)", "top-1"] == "0.2 [0.1, 0.3]"
    assert t.loc["class-conditional (GestaltGAN-style)", "zero-shot top-1"].startswith("n/a")
    assert t.loc["prompt-only (disease name)", "top-1"].startswith("not measured")
    assert t.loc["landmark warp (TPS)", "FD to test faces"].startswith("n/a: a warp")
    assert t.loc["KG profile only (swapped in at inference)", "top-1"] == "0.3"
    assert t.loc["average portrait (aligned mean)", "top-5"] == "0.75"
    assert t.loc["DDIM edit of real photos (healthy → diseased)", "identity kept (edits)"].startswith("not measured")
    record_metrics("07_evaluate", {"photo_edit_dlib_distance": float("nan"), "photo_edit_dlib_no_face": 4}, m)
    assert comparison_table(m).loc["DDIM edit of real photos (healthy → diseased)", "identity kept (edits)"] == \
        "dlib found no face in the 4 edits"
    assert t.loc["average portrait (mean of generated latents)", "top-5"].startswith("not measured")
    assert (t != "").all().all()
