"""phenoface.modelio: every model file is safetensors + JSON, written atomically, read without unpickling;
a file that would need unpickling is refused. Round trips for the regressor, the pixel instrument, the KG
embedding and the recogniser (untrained nets: the format is what is tested, not the training)."""
import json

import numpy as np
import pandas as pd
import pytest
import torch

from phenoface.modelio import ModelFileError, UnsafeModelFile, load_model, save_model


class Trap:
    """Pickles as a call to ``open(marker, "w")``: unpickling it creates the marker file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def trap_file(path, marker):
    torch.save({"state_dict": {"w": torch.zeros(2)}, "meta": Trap(marker)}, path)
    return path


@pytest.fixture
def images():
    return np.random.default_rng(0).integers(0, 256, (3, 64, 64, 3), dtype=np.uint8)


def test_save_load_round_trip_and_card(tmp_path):
    tensors = {"a": torch.arange(6.0).reshape(2, 3), "b": np.arange(4, dtype=np.int64)}
    w = save_model(tmp_path / "m.safetensors", tensors, {"width": 3, "names": ["x"]}, kind="demo")
    assert w == tmp_path / "m.safetensors" and sorted(p.name for p in tmp_path.iterdir()) == ["m.json", "m.safetensors"]
    card = json.loads((tmp_path / "m.json").read_text())
    assert card["width"] == 3 and card["model_file"]["kind"] == "demo" and card["model_file"]["weights"] == w.name
    back, config = load_model(tmp_path / "m.json", kind="demo")
    assert config == {"width": 3, "names": ["x"]}
    assert torch.equal(back["a"], tensors["a"]) and back["b"].tolist() == [0, 1, 2, 3]
    with pytest.raises(ModelFileError, match="describes a 'demo', not a 'other'"):
        load_model(w, kind="other")
    tied = torch.ones(3)
    save_model(tmp_path / "tied.safetensors", {"x": tied, "y": tied}, {}, kind="demo")  # shared memory is fine
    with pytest.raises(ValueError, match="never pickled"):
        save_model(tmp_path / "m.pt", tensors, {}, kind="demo")


def test_interrupted_or_corrupt_files_are_errors(tmp_path):
    save_model(tmp_path / "m.safetensors", {"a": torch.zeros(2)}, {}, kind="demo")
    old_card = (tmp_path / "m.json").read_text()
    save_model(tmp_path / "m.safetensors", {"a": torch.ones(2)}, {}, kind="demo")
    (tmp_path / "m.json").write_text(old_card)  # as if the second save was killed before its card
    with pytest.raises(ModelFileError, match="come from different saves"):
        load_model(tmp_path / "m.safetensors", rebuild="re-run notebook 04")
    (tmp_path / "m.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}")
    with pytest.raises(ModelFileError, match="not a readable safetensors file"):
        load_model(tmp_path / "m.safetensors")
    (tmp_path / "m.json").write_text("{")
    with pytest.raises(ModelFileError, match="not a JSON model card"):
        load_model(tmp_path / "m.safetensors")
    with pytest.raises(FileNotFoundError, match="no model file .*absent.safetensors; re-run notebook 04"):
        load_model(tmp_path / "absent.safetensors", rebuild="re-run notebook 04")


def test_pickle_files_are_refused_and_never_run(tmp_path):
    from phenoface.evaluation.recogniser import Recogniser
    from phenoface.kg import KGEmbedding
    from phenoface.phenotypes import LandmarkRegressor, PhenotypeInstrument

    marker = tmp_path / "code_ran"
    # the trap works: torch.load(weights_only=False), as the old loaders did, runs it
    torch.load(trap_file(tmp_path / "demo.pt", marker), weights_only=False)
    assert marker.is_file()
    marker.unlink()

    reg = trap_file(tmp_path / "regressor.pt", marker)
    with pytest.raises(UnsafeModelFile, match=r"Refused to load .*regressor\.pt: it is a pickle-based file "
                                              r"\(torch\.save / pickle\), and loading it could run arbitrary code.*"
                                              r"re-run notebook 04_image_profiles"):
        LandmarkRegressor.load(reg)
    # an old regressor.pt where regressor.safetensors should be: refused, not "missing"
    with pytest.raises(UnsafeModelFile, match=r"regressor\.pt: it is a pickle-based file"):
        LandmarkRegressor.load(tmp_path / "regressor.safetensors")
    # a pickle renamed to .safetensors is recognised by its content
    disguised = trap_file(tmp_path / "disguised.safetensors", marker)
    with pytest.raises(UnsafeModelFile, match="disguised.safetensors: it is a pickle-based file"):
        LandmarkRegressor.load(disguised)
    folder = tmp_path / "embedding"
    folder.mkdir()
    trap_file(folder / "trained_model.pkl", marker)
    for load, path, notebook in ((KGEmbedding.load, folder, "02_kg_profiles"),
                                 (KGEmbedding.load, folder / "trained_model.pkl", "02_kg_profiles"),
                                 (Recogniser.load, trap_file(tmp_path / "recogniser.pt", marker), "07_evaluate"),
                                 (PhenotypeInstrument.load, trap_file(tmp_path / "model.ckpt", marker),
                                  "04_image_profiles")):
        with pytest.raises(UnsafeModelFile, match=f"could run arbitrary code.*notebook {notebook}"):
            load(path)
    assert not marker.exists()


def test_regressor_round_trip(tmp_path, images):
    from phenoface.phenotypes import LandmarkNet, LandmarkRegressor

    torch.manual_seed(0)
    reg = LandmarkRegressor(LandmarkNet(width=4), {"width": 4, "epochs": 1, "losses": [0.5]})
    path = reg.save(tmp_path / "phenotypes" / "regressor.safetensors")
    assert sorted(p.name for p in path.parent.iterdir()) == ["regressor.json", "regressor.safetensors"]
    back = LandmarkRegressor.load(path)
    assert back.meta == reg.meta and back.net.arch == "heatmap"
    np.testing.assert_allclose(back.predict(images), reg.predict(images), atol=1e-6)
    direct = LandmarkRegressor(LandmarkNet(width=4, arch="direct"), {"width": 4})
    back = LandmarkRegressor.load(direct.save(tmp_path / "direct.safetensors"))
    np.testing.assert_allclose(back.predict(images), direct.predict(images), atol=1e-6)


def test_instrument_round_trip(tmp_path, images):
    from phenoface.cohort.terms import TERM_IDS
    from phenoface.phenotypes import PhenotypeInstrument
    from phenoface.phenotypes.instrument import PhenotypeNet

    torch.manual_seed(0)
    inst = PhenotypeInstrument(PhenotypeNet(width=4), {"terms": list(TERM_IDS), "epochs": 1})
    folder = inst.save(tmp_path / "pixel")
    assert sorted(p.name for p in folder.iterdir()) == ["instrument.json", "model.safetensors"]
    back = PhenotypeInstrument.load(folder)
    pd.testing.assert_frame_equal(back.measure(images), inst.measure(images))
    # a card written before modelio (no model_file record) still loads
    card = json.loads((folder / "instrument.json").read_text())
    card.pop("model_file")
    (folder / "instrument.json").write_text(json.dumps(card))
    pd.testing.assert_frame_equal(PhenotypeInstrument.load(folder).measure(images), inst.measure(images))


@pytest.mark.parametrize("name", ["TransE", "RotatE", "ComplEx"])
def test_kg_embedding_round_trip(tmp_path, name):
    from pykeen.models import model_resolver
    from pykeen.triples import CoreTriplesFactory

    from phenoface.kg import DIS_PHEN, KGEmbedding

    entities = ["OMIM:1", "OMIM:2", "HP:1", "HP:2", "HP:3"]
    factory = CoreTriplesFactory.create(torch.zeros((0, 3), dtype=torch.long), num_entities=5, num_relations=2)
    model = model_resolver.make(name, embedding_dim=4, triples_factory=factory, random_seed=1)
    emb = KGEmbedding(model, {e: i for i, e in enumerate(entities)}, {DIS_PHEN: 0, "phenotype_phenotype": 1},
                      {"model": name, "dim": 4, "epochs": 0}, [1.0, 0.5])
    folder = emb.save(tmp_path / "embedding")
    assert sorted(p.name for p in folder.iterdir()) == ["model.json", "model.safetensors"]
    state = torch.random.get_rng_state()
    back = KGEmbedding.load(folder)
    assert torch.equal(torch.random.get_rng_state(), state)  # rebuilding the model leaves the RNG alone
    assert type(back.model) is type(model) and back.entity_to_id == emb.entity_to_id
    assert back.relation_to_id == emb.relation_to_id and back.config == emb.config and back.losses == emb.losses
    cands = ["HP:1", "HP:2", "HP:3", "HP:unknown"]
    np.testing.assert_allclose(back.score_tails("OMIM:1", cands), emb.score_tails("OMIM:1", cands))
    pd.testing.assert_frame_equal(back.entity_embeddings(), emb.entity_embeddings())
    pd.testing.assert_series_equal(back.complete("OMIM:2", cands[:3], known={"HP:1"}),
                                   emb.complete("OMIM:2", cands[:3], known={"HP:1"}))


def test_recogniser_round_trip(tmp_path, images):
    from phenoface.evaluation.recogniser import EmbeddingNet, Recogniser

    torch.manual_seed(0)
    rec = Recogniser(EmbeddingNet(embed_dim=8, width=4, input_size=32), ["A", "B"],
                     history={"loss": [np.float32(1.5)], "epochs": 1})
    rec.set_gallery(images, ["A", "B", "A"], mode="centroid")
    path = rec.save(tmp_path / "recogniser.safetensors")
    back = Recogniser.load(path)
    np.testing.assert_allclose(back.embed(images), rec.embed(images), atol=1e-6)
    assert back.history == {"loss": [1.5], "epochs": 1} and back.classes == ["A", "B"]
    assert back.gallery.mode == "centroid" and list(back.gallery.labels) == ["A", "B", "A"]
    pd.testing.assert_frame_equal(back.predict(images, k=2), rec.predict(images, k=2))
    bare = Recogniser(EmbeddingNet(embed_dim=8, width=4, input_size=32, crop=None), ["A"])
    assert Recogniser.load(bare.save(tmp_path / "bare.safetensors")).gallery is None
    with pytest.raises(ModelFileError, match="describes a 'recogniser', not a 'landmark_regressor'"):
        from phenoface.phenotypes import LandmarkRegressor

        LandmarkRegressor.load(path)
