import numpy as np
import pytest

from phenoface.cohort import assert_disjoint, load_split, make_splits, save_splits
from phenoface.cohort.independent import independent_table
from phenoface.cohort.terms import TERM_IDS


def test_splits_are_new_people_and_round_trip(tmp_path):
    splits = make_splits({"train": 24, "validation": 12, "test": 12}, seed=3, size=32)
    assert [c.seed for c in splits.values()] == [3, 1003, 2003]
    save_splits(splits, tmp_path)
    test = load_split(tmp_path, "test")
    assert len(test) == 12 and np.array_equal(test.images, splits["test"].images)
    with pytest.raises(FileNotFoundError, match="notebook 00"):
        load_split(tmp_path / "nowhere", "validation")
    with pytest.raises(ValueError, match="unknown split"):
        load_split(tmp_path, "holdout")


def test_shared_identity_is_refused():
    splits = make_splits({"train": 8, "test": 8}, seed=0, size=32)
    splits["test"].table.loc[0, "identity"] = splits["train"].table.loc[5, "identity"]
    with pytest.raises(ValueError, match="share 1 identities"):
        assert_disjoint(splits)


def test_independent_terms_are_independent_and_exclusive_pairs_apart():
    t = independent_table(4000, seed=1)
    m = t[TERM_IDS].to_numpy()
    assert 0.25 < (m > 0).mean() < 0.4
    assert not ((t["HP:0000582"] > 0) & (t["HP:0000494"] > 0)).any()
    assert not ((t["HP:0000154"] > 0) & (t["HP:0000160"] > 0)).any()
    c = np.corrcoef(m.T)
    off = np.abs(c[~np.eye(len(c), dtype=bool)])
    # only the two exclusive pairs are (negatively) linked; everything else is independent
    assert np.sort(off)[-5] < 0.08
