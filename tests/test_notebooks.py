"""Every numbered notebook executed with params/smoke.yaml (through the same runner as run_all.sh)."""
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(p.stem for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))

# Headline metrics each notebook must record (the contracts named in the issues).
REQUIRED = {
    "00_data": {"cohort_images", "cohort_diseases", "renderable_terms", "cohort_faces_per_s",
                "mediapipe_found_rate", "mediapipe_nme", "real_photos_with_face"},
    "02_kg_profiles": {"kg_triples", "kg_entities", "face_triples", "link_mrr", "link_hits10", "baseline_mrr",
                       "baseline_hits10", "build_seconds"},
    "03_llm_profiles": {"llm_model", "llm_replies", "llm_failures", "grounding_rate", "kg_precision", "kg_recall",
                        "seconds"},
    "04_image_profiles": {"image_profile_precision_at_k", "kg_profile_precision_at_k"},
    "07_evaluate": {"regressor_nme", "recogniser_top1", "recogniser_top5", "severity_spearman",
                    "progression_order_accuracy", "memorisation_rate", "fd_real_vs_heldout"},
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
