"""Every numbered notebook executed with params/smoke.yaml (through the same runner as run_all.sh)."""
import json
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(p.stem for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))

# Headline metrics each notebook must record (the contracts later notebooks and the summary rely on).
REQUIRED = {
    "00_data": {"cohort_images", "validation_images", "test_images", "cohort_diseases", "renderable_terms",
                "cohort_faces_per_s", "mediapipe_found_rate", "mediapipe_nme", "real_photos_with_face"},
    "02_kg_profiles": {"kg_triples", "kg_entities", "face_triples", "link_mrr", "link_hits10", "baseline_mrr",
                       "baseline_hits10", "nearest_disease_mrr", "link_mrr_ci", "split", "build_seconds"},
    "03_llm_profiles": {"llm_model", "llm_replies", "llm_failures", "grounding_rate", "grounding_accuracy",
                        "grounding_phrases_test", "kg_precision", "kg_precision_shuffled", "kg_recall", "seconds",
                        "llm_answered_live", "llm_answered_cache"},
    "04_image_profiles": {"image_profile_precision_at_k", "image_profile_precision_at_k_oracle",
                          "image_profile_instrument", "severity_order_accuracy_same_age", "term_intensity_spearman_min",
                          "term_intensity_pearson_min", "age_mae", "kg_profile_precision_at_k",
                          "frequency_profile_precision_at_k", "chance_precision_at_k", "image_profile_sd_floor"},
    "05_train_conditioned_diffusion": {"train_steps", "train_seconds", "final_loss", "images_per_second",
                                       "checkpoint_source", "autoencoder_top1_ratio", "autoencoder_age_mae_ratio",
                                       "autoencoder_terms_kept", "autoencoder_allows_goals", "conditioning_format"},
    "01_baselines": {"class_train_steps", "prompt_train_steps", "class_seconds_per_image", "prompt_seconds_per_image",
                     "portraits", "warps", "warp_applied_vs_measured_pearson", "warp_dlib_distance"},
    "06_generate": {"images_generated", "seconds_per_image", "edits", "edit_seconds_per_face", "inversion_ok_rate",
                     "kg_ablation_images"},
    "07_evaluate": {"regressor_nme", "recogniser_top1", "recogniser_top1_ci", "recogniser_top1_blur07", "recogniser_top5",
                    "severity_spearman", "severity_spearman_age_only", "severity_spearman_partial_age",
                    "progression_order_accuracy", "progression_order_accuracy_unaffected", "memorisation_auc",
                    "memorisation_tpr_at_fpr1", "memorisation_rate", "fd_real_vs_heldout", "method_class_top1",
                    "method_prompt_top1", "method_profile_top1", "method_kg_top1", "portrait_top5_aligned", "photo_edit_dlib_distance", "edit_age_progression_spearman",
                    "portrait_phenotype_pearson_aligned", "edit_ddim_h2d_severity_score_move", "identity_calibration_auc_untouched",
                    "edit_ddim_h2d_identity_untouched", "edit_ddim_h2d_target_top1", "edit_progression_order_accuracy",
                    "membership_tpr_at_fpr1", "fault_spacing_top1_before", "fault_spacing_top1_after",
                    "fault_unaffected_read_unaffected_before", "fault_unaffected_read_unaffected_after",
                    "fault_severity_order_after", "fault_zero_shot_precision_after"},
    "08_summary": {"headlines_pass", "headlines_miss", "methods_compared"},
    "09_reader_study": {"raters", "answers", "simulated", "real_vs_generated_accuracy", "real_vs_generated_accuracy_ci",
                        "disease_accuracy_real", "disease_accuracy_generated", "disease_accuracy_ratio", "fleiss_kappa",
                        "krippendorff_alpha", "recogniser_disease_accuracy_same_items", "simulated_recovered"},
}

pytestmark = [pytest.mark.notebook, pytest.mark.slow]


def test_notebooks_exist_and_are_stripped():
    assert NOTEBOOKS, "no notebooks found"
    for stem in NOTEBOOKS:
        nb = json.loads((ROOT / "notebooks" / f"{stem}.ipynb").read_text())
        code = [c for c in nb["cells"] if c["cell_type"] == "code"]
        assert "parameters" in code[0]["metadata"].get("tags", []), f"{stem}: first code cell must be tagged parameters"
        assert not any(c.get("outputs") or c.get("execution_count") for c in code), f"{stem} is committed with outputs"


@pytest.mark.parametrize("stem", NOTEBOOKS)
def test_notebook_smoke(stem, smoke_run):
    step = smoke_run["log"]["steps"][stem]
    assert step["status"] == "ok", step.get("error")
    metrics = json.loads((smoke_run["reports"] / "metrics" / f"{stem}.json").read_text())
    missing = REQUIRED.get(stem, set()) - set(metrics)
    assert not missing, f"{stem} did not record {sorted(missing)}"
    assert (smoke_run["reports"] / f"{stem}.html").stat().st_size > 10_000


# Loose bounds on the smoke run's headline numbers: a notebook that records a broken metric (NaN, out of
# range, chance-level) fails here, not in a reader's report. Smoke sizes are tiny, so bounds are wide.
BOUNDS = {
    "00_data": {"mediapipe_found_rate": (0.9, 1.0), "renderable_terms": (15, 100), "validation_images": (96, 96),
                "test_images": (96, 96)},
    # the shipped baselines; at least one aligned portrait per cohort disease, at most two; 2 photos x 2 profiles x
    # 2 severities; the instrument reads a warp's direction, and a warped photo stays the same person (dlib < 0.6)
    "01_baselines": {"portraits": (11, 22), "warps": (4, 8), "warp_applied_vs_measured_pearson": (0.0, 1.0),
                     "warp_dlib_distance": (0.0, 0.6), "class_train_steps": (1, 100_000)},
    # chance MRR is about 0.017 with ~400 candidate terms
    "02_kg_profiles": {"link_mrr": (0.05, 0.6), "baseline_mrr": (0.05, 0.6), "nearest_disease_mrr": (0.05, 0.6)},
    # grounding nothing scores 0.16 on the test phrases
    "03_llm_profiles": {"grounding_accuracy": (0.5, 1.0), "grounding_phrases_test": (25, 200)},
    # smoke trains the pixel instrument for seconds, so its own figures are not bounded here (tests/test_instrument.py
    # checks that it learns); the oracle route (meter on the renderer's landmarks) must still work
    "04_image_profiles": {"image_profile_precision_at_k_oracle": (0.5, 1.0), "age_mae_mean_age_baseline": (5.0, 25.0)},
    # the identity measure must tell the same person from another on renders (truth known), even at smoke size
    # smoke trains the generator for a few steps: its format is what this code trains, the checks are well formed
    "05_train_conditioned_diffusion": {"conditioning_format": (2, 2), "autoencoder_terms_kept": (0, 21),
                                       "autoencoder_top1_ratio": (0.0, 2.0),
                                       # UNET_STEPS; the train split less the two zero-shot diseases' faces
                                       "train_steps": (4, 4), "training_faces": (80, 128),
                                       # a working autoencoder after AE_STEPS: its reconstructions are faces
                                       "autoencoder_psnr": (8.0, 60.0), "autoencoder_age_mae_ratio": (0.0, 3.0),
                                       "autoencoder_allows_goals": (0, 1)},
    # GEN_PER_DISEASE 2 x (10 diseases + unaffected), for the fused and the KG-only profiles; EDIT_N 2 x 2 directions
    # x 2 methods; most DDIM inversions of a test face reconstruct it
    "06_generate": {"images_generated": (22, 22), "kg_ablation_images": (22, 22), "edits": (8, 8),
                    "inversion_ok_rate": (0.5, 1.0)},
    "07_evaluate": {"membership_tpr_at_fpr1": (0.0, 1.0), "fault_spacing_top1_after": (0.0, 1.0),
                    "identity_calibration_auc_untouched": (0.8, 1.0), "memorisation_auc": (0.6, 1.0), "memorisation_tpr_at_fpr1": (0.3, 1.0), "memorisation_rate": (0.0, 0.1),
                    "progression_order_accuracy_unaffected": (0.2, 0.8), "fd_real_vs_heldout": (0.0, 100.0)},
    # every headline's notebook ran; tiny smoke models still pass some headline; the four generator methods at least
    "08_summary": {"headlines_not_run": (0, 0), "headlines_pass": (1, 20), "methods_compared": (4, 30)},
    # smoke: 4 simulated raters (real vs generated 0.7, disease 0.6 real / 0.4 generated) on notebook 07's study set
    "09_reader_study": {"simulated": (1, 1), "raters": (4, 4), "real_vs_generated_accuracy": (0.55, 0.85),
                        "disease_accuracy_real": (0.35, 0.85), "disease_accuracy_generated": (0.15, 0.65),
                        "simulated_recovered": (3, 4), "fleiss_kappa": (0.0, 0.5)},
}
# Relations that must hold even at smoke size: a figure above its trivial baseline.
ABOVE = [
    ("04_image_profiles", "image_profile_precision_at_k_oracle", "chance_precision_at_k"),
    ("04_image_profiles", "kg_profile_precision_at_k", "chance_precision_at_k"),
]


@pytest.mark.parametrize("stem", sorted(BOUNDS))
def test_smoke_metrics_are_in_range(stem, smoke_run):
    if stem not in NOTEBOOKS:
        pytest.skip(f"{stem} does not exist yet")
    metrics = json.loads((smoke_run["reports"] / "metrics" / f"{stem}.json").read_text())
    for name, (lo, hi) in BOUNDS[stem].items():
        assert isinstance(metrics[name], (int, float)), f"{stem}.{name} = {metrics[name]!r}"
        assert lo <= metrics[name] <= hi, f"{stem}.{name} = {metrics[name]} outside [{lo}, {hi}]"


@pytest.mark.parametrize("stem,name,baseline", ABOVE)
def test_smoke_figures_beat_their_baseline(stem, name, baseline, smoke_run):
    metrics = json.loads((smoke_run["reports"] / "metrics" / f"{stem}.json").read_text())
    assert metrics[name] > metrics[baseline], f"{stem}: {name} {metrics[name]} <= {baseline} {metrics[baseline]}"


def test_kg_split_and_interval(smoke_run):
    metrics = json.loads((smoke_run["reports"] / "metrics" / "02_kg_profiles.json").read_text())
    assert metrics["split"] == "alias_aware"
    lo, hi = metrics["link_mrr_ci"]
    assert lo <= metrics["link_mrr"] <= hi


def test_same_seed_gives_same_metrics(smoke_run, tmp_path):
    """Rerun notebook 04 (regressor training, image profiles) with the same seed: the same numbers."""
    from phenoface.runner import run

    stem = "04_image_profiles"
    log = run("smoke", only=[stem], reports=tmp_path, overrides={"DATA_DIR": str(smoke_run["data"])}, force=True,
              html=False)
    assert log["steps"][stem]["status"] == "ok", log["steps"][stem].get("error")
    first = json.loads((smoke_run["reports"] / "metrics" / f"{stem}.json").read_text())
    second = json.loads((tmp_path / "metrics" / f"{stem}.json").read_text())
    timing = ("seconds", "per_s")
    for name, value in first.items():
        if any(t in name for t in timing):
            continue
        if isinstance(value, float):
            assert second[name] == pytest.approx(value, rel=1e-6, abs=1e-9), name
        else:
            assert second[name] == value, name


def test_notebooks_05_and_06_run_the_sd_path(smoke_run, tmp_path):
    """Notebook 05 with SD_MODEL_PATH (a tiny SD folder at the smoke images' size) fine-tunes LoRA; 06 draws,
    edits and saves faces with that model through the same load_model / generate calls as the small model's."""
    from phenoface.model.sd import tiny_sd_folder
    from phenoface.report import read_metrics
    from phenoface.runner import run

    data, reports = tmp_path / "data", tmp_path / "reports"
    shutil.copytree(smoke_run["data"], data)
    sd = tiny_sd_folder(tmp_path / "tiny-sd-64", seed=0, image_size=64)
    log = run("smoke", only=["05", "06"], reports=reports, force=True, html=False,
              overrides={"DATA_DIR": str(data), "SD_MODEL_PATH": str(sd), "TRAIN_MODEL": True})
    for stem in ("05_train_conditioned_diffusion", "06_generate"):
        assert log["steps"][stem]["status"] == "ok", log["steps"][stem].get("error")
    card = json.loads((data / "model" / "card.json").read_text())
    assert card["base"] == "stable-diffusion" and card["params"]["SD_MODEL_PATH"] == str(sd)
    assert read_metrics("05_train_conditioned_diffusion", reports / "metrics")["checkpoint_source"] == "trained"
    assert read_metrics("06_generate", reports / "metrics")["images_generated"] > 0


def test_reports_show_their_own_parameters_and_no_environment_warnings(smoke_run):
    """Each rendered report's injected-parameters cell holds only what the notebook declares, and the warnings
    every kernel prints about its surroundings (tqdm without ipywidgets, torch on a read-only array, MediaPipe's
    and Lightning's start-up lines) never reach the HTML."""
    import re

    import nbformat

    from phenoface.params import PARAMS

    noise = ("IProgress not found", "The given NumPy array is not writable", "XNNPACK delegate", "pin_memory",
             "litlogger", "absl::InitializeLog")
    stderr = re.compile(r'data-mime-type="application/vnd.jupyter.stderr"[^>]*>(.*?)</div>', re.S)
    for stem in NOTEBOOKS:
        executed = nbformat.read(smoke_run["reports"] / f"{stem}.ipynb", as_version=4)
        injected = next(c for c in executed.cells if "injected-parameters" in c.metadata.get("tags", []))
        declared = {p.name for p in PARAMS if stem[:2] in p.notebooks}
        assert set(re.findall(r"^([A-Z][A-Z_0-9]*) = ", injected.source, re.M)) <= declared, stem
        html = (smoke_run["reports"] / f"{stem}.html").read_text(encoding="utf-8")
        shown = " ".join(stderr.findall(html))
        assert not [n for n in noise if n in shown], (stem, shown[:500])


def test_a_failing_llm_endpoint_degrades_03_and_the_run_goes_on(smoke_run, tmp_path):
    """Every request to the LLM fails (nothing listens on the port): 03 finishes on the KG evidence alone and is
    recorded as degraded, and 04 runs after it."""
    from phenoface.report import read_metrics
    from phenoface.runner import run

    data, reports = tmp_path / "data", tmp_path / "reports"
    shutil.copytree(smoke_run["data"], data)
    log = run("smoke", only=["03", "04"], reports=reports, force=True, html=False,
              overrides={"DATA_DIR": str(data), "LLM_BASE_URL": "http://127.0.0.1:9/v1", "LLM_MODEL": "m"})
    step = log["steps"]["03_llm_profiles"]
    assert step["status"] == "degraded", step.get("error")
    assert any("could not be reached" in r for r in step["reasons"])
    assert log["steps"]["04_image_profiles"]["status"] == "ok" and not log["failed"]
    metrics = read_metrics("03_llm_profiles", reports / "metrics")
    assert metrics["llm_available"] == 0 and metrics["llm_replies"] == 0 and metrics["claims"] == 0
    profiles = json.loads((data / "profiles" / "llm_profiles.json").read_text())
    assert profiles  # the KG profiles carried on, with a note that the LLM evidence is absent
