"""Notebook 06's edits as steps, on a tiny model: both directions with both methods, and progressions."""
import numpy as np
import pandas as pd
import pytest

from phenoface.cohort import Cohort
from phenoface.editing.pipeline import DIRECTIONS, edit_both_ways, edit_faces, progressions
from phenoface.labels import UNAFFECTED
from phenoface.model import load_model
from phenoface.model.train import main


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    out = tmp_path_factory.mktemp("gen")
    main(["--out", str(out), "--faces", "40", "--image-size", "32", "--ae-steps", "3", "--unet-steps", "3"])
    return load_model(out / "model")


def test_edit_faces_draws_seeded_faces_of_each_kind():
    table = pd.DataFrame({"disease_id": ["A", UNAFFECTED, "B", UNAFFECTED, "C"]})
    healthy, sick = edit_faces(table, ["A", "B"], 6, seed=3)
    again = edit_faces(table, ["A", "B"], 6, seed=3)
    assert np.array_equal(healthy, again[0]) and np.array_equal(sick, again[1])
    assert set(healthy) <= {1, 3} and set(sick) <= {0, 2} and len(healthy) == len(sick) == 6


def test_edits_both_ways_and_progressions(model):
    d = model.diseases.ids[0]
    c = Cohort.generate(n=6, diseases=[d, UNAFFECTED], seed=0, size=32)
    healthy, sick = edit_faces(c.table, [d], 1, seed=0)
    edits = edit_both_ways(model, c, healthy, sick, [d], strength=0.5, steps=4, guidance=2.0, seed=0)
    t = edits.table
    assert len(t) == 4 and list(t["direction"]) == [DIRECTIONS[0]] * 2 + [DIRECTIONS[1]] * 2
    assert list(t["method"]) == ["ddim", "sdedit"] * 2 and list(t["target"]) == [d, d, UNAFFECTED, UNAFFECTED]
    assert np.array_equal(edits.inputs[0], c.images[healthy[0]]) and edits.images.shape == edits.inputs.shape
    assert list(t["test_row"]) == [healthy[0]] * 2 + [sick[0]] * 2 and edits.seconds > 0
    assert len(edits.inversions_ok()) == 2
    shown = edits.shown(DIRECTIONS[0])
    assert list(shown) == ["input", "DDIM inversion", "SDEdit"] and all(len(v) == 1 for v in shown.values())
    assert edits.targets_shown(DIRECTIONS[1]) == [UNAFFECTED]
    images, table = progressions(model, c, healthy, [d, d], [0.0, 1.0], strength=0.5, steps=4, guidance=2.0)
    assert len(images) == 2 and images[0].shape == (2, 32, 32, 3)
    assert list(table["series"]) == [0, 0, 1, 1] and list(table["level"]) == [0.0, 1.0] * 2
