"""The generator's training path on a tiny model (seconds): Lightning fit, resume, refusal of another
configuration, the NaN stop, the model folder round trip and its fingerprint, and DDP on two CPU processes."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from phenoface import modelio
from phenoface.model import ModelMismatch, load_model
from phenoface.conditioning import unet_kwargs
from phenoface.model.golden import golden_conditions
from phenoface.model.train import CheckpointMismatch, main, read_log

ARGS = ["--faces", "40", "--image-size", "32", "--ae-steps", "4", "--unet-steps", "4", "--batch-size", "8"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("gen")
    assert main(["--out", str(out), *ARGS]) == 0
    return out


def test_model_folder_round_trip(trained):
    m = load_model(trained / "model")
    files = sorted(p.name for p in (trained / "model").iterdir())
    assert files == ["autoencoder.json", "autoencoder.safetensors", "card.json", "conditioning.json",
                     "conditioning.safetensors", "unet.json", "unet.safetensors"]
    card = json.loads((trained / "model" / "card.json").read_text())
    assert card["unet"]["steps"] == 4 and card["autoencoder"]["steps"] == 4 and card["source"] == "trained"
    assert m.image_size == 32 and m.latent_scale > 0 and len(m.diseases.ids) > 0
    # the saved UNet predicts what a second load predicts (nothing random in loading)
    m2 = load_model(trained / "model")
    x = torch.randn(2, m.unet.config.in_channels, m.unet.config.sample_size, m.unet.config.sample_size)
    kw = unet_kwargs(m.encoder, golden_conditions(m, 2))
    assert torch.equal(m.unet(x, 10, **kw).sample, m2.unet(x, 10, **kw).sample)


def test_fingerprint_mismatch_is_refused(trained, tmp_path):
    import shutil

    folder = tmp_path / "model"
    shutil.copytree(trained / "model", folder)
    card = json.loads((folder / "card.json").read_text())
    card["fingerprint"] = "0" * 16
    (folder / "card.json").write_text(json.dumps(card))
    with pytest.raises(ModelMismatch, match="Retrain: re-run notebook 05"):
        load_model(folder)
    assert load_model(folder, check=False).image_size == 32


def test_missing_or_pickled_model_is_refused(tmp_path, monkeypatch):
    # a wrong path: the message says so and names what a model folder is, never "rerun 05" (which would not help)
    with pytest.raises(FileNotFoundError, match="the folder does not exist. Check the path") as err:
        load_model(tmp_path / "nowhere")
    assert "re-run" not in str(err.value) and "<DATA_DIR>/model" in str(err.value)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match=rf"a relative path is taken from {tmp_path}"):
        load_model("data/processed/quick/model")
    (tmp_path / "photos").mkdir()
    with pytest.raises(FileNotFoundError, match="holds no card.json, so it is no model folder"):
        load_model(tmp_path / "photos")
    # a DATA_DIR whose notebook 05 has not run yet: rerunning 05 is the fix
    (tmp_path / "data" / "cohort").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match=r"card.json missing\): re-run notebook 05"):
        load_model(tmp_path / "data" / "model")
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "card.json").write_text(json.dumps({"kind": "phenoface_diffusion", "fingerprint": "x"}))
    torch.save({"a": torch.zeros(1)}, tmp_path / "m" / "unet.pt")
    with pytest.raises((modelio.UnsafeModelFile, FileNotFoundError, ModelMismatch)):
        load_model(tmp_path / "m")


def test_resume_continues_and_another_configuration_is_refused(trained):
    before = sorted(p.name for p in (trained / "unet").iterdir())
    with pytest.raises(CheckpointMismatch, match="differs in: batch_size"):
        main(["--out", str(trained), *ARGS[:-1], "4"])
    assert sorted(p.name for p in (trained / "unet").iterdir()) == before  # nothing overwritten


def test_resume_from_last_checkpoint(tmp_path):
    from phenoface.model.autoencoder import AutoencoderModule
    from phenoface.model.components import autoencoder_config, size_config
    from phenoface.model.data import FaceDataModule
    from phenoface.model.train import fit

    images = np.random.default_rng(0).integers(0, 255, (24, 16, 16, 3), dtype=np.uint8)
    cond = {"age": np.zeros(24, np.float32)}
    cfg = autoencoder_config(size_config("tiny"), 16)
    kw = dict(progress=False, every=1, accelerator="cpu", devices=1)
    first = fit(AutoencoderModule(cfg, total_steps=8), FaceDataModule(images, cond, key="image", batch_size=4),
                tmp_path, {"seed": 0}, 4, **kw)
    assert first["steps"] == 4 and not first["resumed"] and (tmp_path / "last.ckpt").is_file()
    # the same configuration with more steps: picks up at step 4, and the log keeps both pieces
    again = fit(AutoencoderModule(cfg, total_steps=8), FaceDataModule(images, cond, key="image", batch_size=4),
                tmp_path, {"seed": 0}, 6, **kw)
    assert again["resumed"] and again["steps"] == 6
    steps = [s for s, loss in zip(read_log(tmp_path)["step"], read_log(tmp_path)["ae_loss"]) if loss == loss]
    assert steps[0] < 4 <= steps[-1]


class _Payload:
    """What a planted checkpoint carries: unpickling it runs code (here: writes a marker file)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('ran')",))


def test_a_planted_checkpoint_is_refused_and_never_run(tmp_path, monkeypatch):
    """Resume state is read weights-only, even with TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD set; the refusal names the
    file and how to start over, and never suggests weights_only=False."""
    from phenoface.model.autoencoder import AutoencoderModule
    from phenoface.model.components import autoencoder_config, size_config
    from phenoface.model.data import FaceDataModule
    from phenoface.model.pipeline import choose_weights
    from phenoface.model.train import UnsafeCheckpoint, fit

    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    marker = tmp_path / "payload_ran"
    run = tmp_path / "run"
    run.mkdir()
    torch.save({"state_dict": {}, "global_step": 4, "note": _Payload(marker)}, run / "last.ckpt")
    images = np.random.default_rng(0).integers(0, 255, (8, 16, 16, 3), dtype=np.uint8)
    data = FaceDataModule(images, {"age": np.zeros(8, np.float32)}, key="image", batch_size=4)
    module = AutoencoderModule(autoencoder_config(size_config("tiny"), 16), total_steps=8)
    with pytest.raises(UnsafeCheckpoint) as err:
        fit(module, data, run, {"seed": 0}, 6, progress=False, every=1, accelerator="cpu", devices=1)
    message = str(err.value)
    assert str(run / "last.ckpt") in message and f"delete {run}" in message and "notebook 05" in message
    assert "weights_only=False" not in message and "exec" in message  # what it would have run
    work = tmp_path / "work"
    (work / "unet").mkdir(parents=True)
    (work / "unet" / "last.ckpt").write_bytes((run / "last.ckpt").read_bytes())
    with pytest.raises(UnsafeCheckpoint, match=str(work / "unet" / "last.ckpt")):
        choose_weights(tmp_path / "model", work, tmp_path / "data")
    (run / "last.ckpt").write_bytes(b"not a checkpoint")
    with pytest.raises(UnsafeCheckpoint, match="last.ckpt: it is not training state"):
        fit(module, data, run, {"seed": 0}, 6, progress=False, every=1, accelerator="cpu", devices=1)
    assert not marker.exists()


def test_nan_loss_stops_with_a_message():
    from phenoface.conditioning import term_text_embeddings
    from phenoface.model.components import autoencoder_config, size_config, unet_config
    from phenoface.model.diffusion import DiffusionModule

    cfg = size_config("tiny")
    dm = DiffusionModule(autoencoder_config(cfg, 16), unet_config(cfg, 16), 4, term_text_embeddings())
    n, c, s = 2, dm.unet.config.in_channels, dm.unet.config.sample_size
    batch = {"latent": torch.full((n, c, s, s), float("nan")), "disease_emb": torch.zeros(n, 4),
             "profile": torch.zeros(n, 21), "terms": torch.zeros(n, 21), "age": torch.ones(n),
             "sex": torch.zeros(n, dtype=torch.long), "severity": torch.zeros(n)}
    with pytest.raises(FloatingPointError, match="stopped before writing NaN weights"):
        dm.training_step(batch, 0)


@pytest.mark.slow
def test_ddp_on_two_cpu_processes(tmp_path):
    """The same Trainer call runs data-parallel: two gloo processes, a few steps, one model folder."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "lib")}
    r = subprocess.run([sys.executable, "-m", "phenoface.model.train", "--out", str(tmp_path), "--faces", "32",
                        "--ae-steps", "2", "--unet-steps", "2", "--devices", "2", "--strategy", "ddp"],
                       capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    result = json.loads(r.stdout.strip().splitlines()[-1])
    assert result["unet"]["world_size"] == 2 and result["autoencoder"]["world_size"] == 2
    assert load_model(tmp_path / "model").image_size == 32


def test_fp16_copy_loads_and_predicts_close(trained, tmp_path):
    from phenoface.model.store import convert

    convert(trained / "model", tmp_path / "half")
    size = lambda f: sum(p.stat().st_size for p in f.glob("*.safetensors"))  # noqa: E731
    assert size(tmp_path / "half") < 0.6 * size(trained / "model")
    a, b = load_model(trained / "model"), load_model(tmp_path / "half")
    x = torch.randn(1, a.unet.config.in_channels, a.unet.config.sample_size, a.unet.config.sample_size)
    kw = unet_kwargs(a.encoder, golden_conditions(a, 1))
    pa, pb = a.unet(x, 10, **kw).sample, b.unet(x, 10, **kw).sample
    assert torch.allclose(pa, pb, atol=1e-2) and not torch.equal(pa, pb)


def test_int8_unet_copy_is_smaller_and_predicts_close(trained, tmp_path):
    from phenoface.model.store import SCALE, convert, dequantize, quantize

    convert(trained / "model", tmp_path / "half")
    convert(trained / "model", tmp_path / "int8", int8=("unet",))
    unet_bytes = lambda f: (f / "unet.safetensors").stat().st_size  # noqa: E731
    assert unet_bytes(tmp_path / "int8") < 0.7 * unet_bytes(tmp_path / "half")
    a, b = load_model(trained / "model"), load_model(tmp_path / "int8")
    x = torch.randn(2, a.unet.config.in_channels, a.unet.config.sample_size, a.unet.config.sample_size)
    kw = unet_kwargs(a.encoder, golden_conditions(a, 2))
    pa, pb = a.unet(x, 10, **kw).sample, b.unet(x, 10, **kw).sample
    assert (pa - pb).abs().max() < 0.05 * pa.abs().max() and not torch.equal(pa, pb)
    # per output channel: a channel of small weights keeps its precision beside one of large weights
    w = torch.cat([torch.full((1, 600), 1e-3), torch.full((1, 600), 10.0)]) * torch.linspace(-1, 1, 600)
    q = quantize({"w": w, "bias": torch.ones(2)})
    assert q["w"].dtype == torch.int8 and q["bias"].dtype == torch.float16 and ("w" + SCALE) in q
    err = (dequantize(q)["w"] - w).abs()
    assert (err <= q["w" + SCALE][:, None] / 2 + 1e-9).all()  # at most half a step of its own channel's scale
    assert err[0].max() < 1e-5 < err[1].max()  # the small channel is not rounded on the large one's grid
    assert dequantize({"w": w}) == {"w": w}  # a record without scales passes through


def test_sample_grid_callback_draws_from_the_ema(trained, tmp_path):
    from phenoface.conditioning import term_text_embeddings
    from phenoface.sampling.callbacks import SampleGrid
    from phenoface.model.components import autoencoder_config, size_config, unet_config
    from phenoface.model.diffusion import DiffusionModule

    m = load_model(trained / "model")
    cfg = size_config("tiny")
    dm = DiffusionModule(autoencoder_config(cfg, 32), unet_config(cfg, 32), m.diseases.kg_dim, term_text_embeddings())
    path = SampleGrid(tmp_path, m.diseases, 32, every=1, steps=2, max_rows=3).save(dm, 7)
    assert path.name == "step_0000007.png" and path.stat().st_size > 1000


def test_training_set_needs_the_run_artifacts(tmp_path):
    from phenoface.model.pipeline import install_shipped, training_set

    with pytest.raises((FileNotFoundError, KeyError)):
        training_set(tmp_path)
    with pytest.raises(FileNotFoundError, match="No shipped generator checkpoint"):
        install_shipped(tmp_path / "model", source=tmp_path / "missing")


def test_term_retention_reads_which_terms_survive():
    import pandas as pd

    from phenoface.model.quality import term_retention

    rng = np.random.default_rng(0)
    before = pd.DataFrame(rng.normal(size=(60, 3)), columns=["HP:a", "HP:b", "HP:c"])
    after = before.copy()
    after["HP:b"] = before["HP:b"] + rng.normal(0, 1.0, 60)  # half the variance is noise: about 0.7
    after["HP:c"] = rng.permutation(before["HP:c"].to_numpy())  # lost: about 0
    kept = term_retention(before, after)
    assert kept["HP:a"] == pytest.approx(1.0)
    assert 0.5 < kept["HP:b"] < 0.9 and abs(kept["HP:c"]) < 0.35
    with pytest.raises(ValueError, match="missing terms"):
        term_retention(before, after.drop(columns="HP:c"))
    with pytest.raises(ValueError, match="60 vs 59 faces"):
        term_retention(before, after.iloc[1:])


def test_a_moved_run_resumes_into_last_ckpt_and_more_steps_continue_the_schedule(tmp_path):
    """A training folder copied elsewhere resumes where it was (last.ckpt, not a new last-v1.ckpt beside a stale
    one), and raising the autoencoder's steps continues its one-cycle schedule instead of crashing."""
    import shutil

    first = tmp_path / "first"
    main(["--out", str(first), "--faces", "24", "--image-size", "32", "--ae-steps", "2", "--unet-steps", "2"])
    moved = tmp_path / "moved"
    shutil.copytree(first, moved)
    main(["--out", str(moved), "--faces", "24", "--image-size", "32", "--ae-steps", "4", "--unet-steps", "3"])
    for part, steps in (("autoencoder", 4), ("unet", 3)):
        assert not list((moved / part).glob("last-v*.ckpt")), part
        state = torch.load(moved / part / "last.ckpt", map_location="cpu", weights_only=True)
        assert state["global_step"] == steps, part
    card = json.loads((moved / "model" / "card.json").read_text())
    assert card["autoencoder"]["resumed"] and card["autoencoder"]["steps"] == 4


def test_thin_log_keeps_at_most_keep_rows_and_turns_nan_to_none():
    from phenoface.model.train import thin_log

    log = {"step": list(range(1000)), "loss": [float("nan")] + [1.0] * 999}
    thin = thin_log(log, keep=10)
    assert len(thin["step"]) == 10 and thin["step"][0] == 0 and thin["step"][-1] == 999
    assert thin["loss"][0] is None and thin["loss"][1] == 1.0
    assert thin_log({}) == {} and thin_log({"step": [1, 2]})["step"] == [1, 2]
