"""Notebook 01's classical baselines as steps: the average portraits and the landmark warp with its check."""
import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from phenoface.baselines.classical import term_displacements  # noqa: E402
from phenoface.baselines.figures import portrait_grid  # noqa: E402
from phenoface.baselines.pipeline import ALIGNED, Warps, average_portraits, warp_check, warp_photos  # noqa: E402
from phenoface.cohort import Cohort  # noqa: E402
from phenoface.cohort.terms import TERM_IDS  # noqa: E402
from phenoface.labels import UNAFFECTED  # noqa: E402


def test_aligned_portraits_per_disease_with_faces():
    c = Cohort.generate(n=12, diseases=["OMIM:190685", UNAFFECTED], seed=1, size=32)
    images, table = average_portraits(c, ["OMIM:190685", "OMIM:194050", UNAFFECTED])  # no faces of 194050
    assert images.shape == (2, 32, 32, 3) and list(table["disease_id"]) == ["OMIM:190685", UNAFFECTED]
    assert (table["kind"] == ALIGNED).all() and table["faces"].sum() == len(c)
    fig = portrait_grid(images, table, ["OMIM:190685", "OMIM:194050", UNAFFECTED], {"OMIM:190685": "a" * 20,
                                                                                  "OMIM:194050": "b", UNAFFECTED: "u"})
    assert [ax.get_title() for ax in fig.axes] == ["a" * 14, "b", "u"]
    assert [len(ax.images) for ax in fig.axes] == [1, 0, 1]  # nothing drawn where a kind has no portrait


class _Brightness:
    """An instrument that reads every term as the image's mean brightness (enough to see a change)."""

    def measure(self, images, batch_size=256):
        v = np.asarray(images, float).mean(axis=(1, 2, 3))
        return pd.DataFrame({t: v * (i + 1) for i, t in enumerate(TERM_IDS)})


def test_warp_photos_and_check():
    from phenoface.datasets import load_dataset

    photos = load_dataset("packaged", size=64)
    disp = term_displacements(64)
    blank = np.full((64, 64, 3), 128, np.uint8)  # no face: listed, not warped
    warps = warp_photos([blank, photos.images[0]], ["OMIM:190685"], disp)
    if not len(warps):
        pytest.skip("dlib found no face in the packaged photo at 64 px")
    assert warps.no_face == [0] and [lab[0] for lab in warps.labels] == [1, 1]
    assert [lab[2] for lab in warps.labels] == [0.5, 1.0]
    assert all(np.array_equal(b, photos.images[0]) for b in warps.before)
    assert not np.array_equal(warps.after[1], warps.before[1])
    assert warps.applied[1] == {t: 2 * w for t, w in warps.applied[0].items()}  # severity 1 is twice 0.5
    shown = warps.by_photo(4)
    assert list(shown) == ["photo 1"] and shown["photo 1"].shape == (3, 64, 64, 3)
    check = warp_check(warps, disp, _Brightness(), names={"OMIM:190685": "Noonan"}, seed=0)
    assert list(check.table["disease"]) == ["Noonan"] * 2 and set(check.geometric) <= set(TERM_IDS)
    assert all(np.abs(disp[t]).max() > 0.25 for t in check.geometric)
    m = check.metrics()
    assert m["warps"] == 2 and set(m) == {"warps", "warp_applied_vs_measured_pearson",
                                          "warp_applied_vs_measured_pearson_ci", "warp_dlib_distance"}
    mean = check.mean_change(warps.applied)
    assert list(mean.columns) == ["applied (mean)", "measured change (mean)"] and len(mean) == len(check.geometric)


def test_by_photo_groups_warps_by_their_photo():
    img = [np.full((4, 4, 3), v, np.uint8) for v in range(4)]
    w = Warps(before=[img[0], img[0], img[1]], after=[img[2], img[3], img[2]], applied=[{}, {}, {}],
              labels=[(0, "d", 0.5), (0, "d", 1.0), (1, "d", 0.5)])
    shown = w.by_photo(1)
    assert list(shown) == ["photo 0"] and [int(x[0, 0, 0]) for x in shown["photo 0"]] == [0, 2, 3]
