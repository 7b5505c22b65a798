"""The Stable Diffusion + LoRA path on a tiny SD folder built from config (random weights, a local tokenizer):
loading, LoRA training and resume, the saved model through load_model and generate, and its errors."""

import json
import shutil

import numpy as np
import pytest
import torch

from phenoface.model import load_model
from phenoface.model.pipeline import TrainingSet
from phenoface.model.sd import (PROMPT, SDFolderError, check_sd_folder, load_sd, prompt_states, tiny_sd_folder,
                                train_sd)
from phenoface.model.train import CheckpointMismatch, synthetic_training_set
from phenoface.sampling import generate


@pytest.fixture(scope="module")
def sd_folder(tmp_path_factory):
    return tiny_sd_folder(tmp_path_factory.mktemp("sd") / "tiny-sd", seed=0, image_size=32)


@pytest.fixture(scope="module")
def trained(sd_folder, tmp_path_factory):
    images, cond, diseases = synthetic_training_set(24, 32, 0)
    ts = TrainingSet(images, cond, diseases, None)
    base = tmp_path_factory.mktemp("sdrun")
    card = train_sd(ts, base / "model", base / "work", sd_folder, steps=3, batch_size=4, lr=1e-3, rank=2,
                    progress=False, every=1)
    return {"ts": ts, "base": base, "card": card}


def test_the_folder_is_a_diffusers_sd_folder_with_safetensors(sd_folder):
    assert check_sd_folder(sd_folder) == sd_folder
    assert not list(sd_folder.rglob("*.bin")) and list((sd_folder / "unet").glob("*.safetensors"))
    parts = load_sd(sd_folder)
    states = prompt_states(parts["text_encoder"], parts["tokenizer"], PROMPT)
    assert states.shape == (1, parts["tokenizer"].model_max_length, parts["unet"].config.cross_attention_dim)


def test_bad_folders_name_the_parameter_and_the_files(sd_folder, tmp_path):
    with pytest.raises(SDFolderError, match="SD_MODEL_PATH is empty"):
        check_sd_folder("")
    with pytest.raises(SDFolderError, match="no such folder"):
        check_sd_folder(tmp_path / "nowhere")
    broken = tmp_path / "broken"
    shutil.copytree(sd_folder, broken)
    (broken / "model_index.json").unlink()
    for f in (broken / "unet").glob("*.safetensors"):
        f.rename(f.with_suffix(".bin"))
    with pytest.raises(SDFolderError, match=r"SD_MODEL_PATH.*model_index.json.*unet/\*\.safetensors"):
        check_sd_folder(broken)


def test_lora_trains_only_lora_and_tokens_and_the_model_generates(trained, sd_folder):
    card, base = trained["card"], trained["base"]
    assert card["unet"]["steps"] == 3
    assert 0 < card["parameters"]["lora"] < card["parameters"]["unet"] / 5
    saved = json.loads((base / "model" / "card.json").read_text())
    assert saved["base"] == "stable-diffusion" and saved["sd_model_path"] == str(sd_folder.resolve())
    assert sorted(p.name for p in (base / "model").glob("*.safetensors")) == ["conditioning.safetensors", "lora.safetensors"]
    model = load_model(base / "model")
    d = model.diseases.ids[0]
    a = generate(model, disease=d, terms={"HP:0000316": 1.0}, age=8.0, n=2, seed=0, steps=3)
    b = generate(model, disease=d, terms={"HP:0000316": 1.0}, age=8.0, n=2, seed=0, steps=3)
    assert a.shape == (2, 32, 32, 3) and a.dtype == np.uint8 and np.array_equal(a, b)
    # the LoRA weights were loaded: without them the same noise gives other faces
    lora = [p for n, p in model.unet.named_parameters() if "lora_B" in n]
    assert lora and any(float(p.abs().sum()) > 0 for p in lora)
    with torch.no_grad():
        for p in lora:
            p.zero_()
    assert not np.array_equal(generate(model, disease=d, terms={"HP:0000316": 1.0}, age=8.0, n=2, seed=0, steps=3), a)
    with pytest.raises(KeyError, match="unknown disease"):
        generate(model, disease="OMIM:000000", n=1, steps=2)


def test_resume_continues_and_another_configuration_is_refused(trained, sd_folder):
    ts, base = trained["ts"], trained["base"]
    card = train_sd(ts, base / "model", base / "work", sd_folder, steps=5, batch_size=4, lr=1e-3, rank=2,
                    progress=False, every=1)
    assert card["unet"]["resumed"] and card["unet"]["steps"] == 5
    before = sorted(p.name for p in (base / "work" / "lora").iterdir())
    with pytest.raises(CheckpointMismatch, match="rank"):
        train_sd(ts, base / "other", base / "work", sd_folder, steps=5, batch_size=4, lr=1e-3, rank=4, progress=False)
    assert sorted(p.name for p in (base / "work" / "lora").iterdir()) == before and not (base / "other").exists()


def test_a_moved_base_model_is_named(trained, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(trained["base"] / "model", folder)
    card = json.loads((folder / "card.json").read_text())
    card["sd_model_path"] = str(tmp_path / "gone")
    (folder / "card.json").write_text(json.dumps(card))
    with pytest.raises(SDFolderError, match="sd_model_path"):
        load_model(folder)
