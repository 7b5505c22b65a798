import numpy as np
import pytest
from PIL import Image
from skimage import data

from phenoface.cohort import Cohort
from phenoface.datasets import DatasetLayoutError, FaceDataset, load_dataset


def _faces():
    a = data.astronaut()[:300, 80:380]
    return [a, a[:, ::-1].copy()]


def _write_images(folder, n_faces=2, corrupt=True, blank=True):
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for i, img in enumerate(_faces()[:n_faces]):
        Image.fromarray(img).save(folder / f"face{i}.jpg")
        names.append(f"face{i}.jpg")
    if corrupt:
        (folder / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
        (folder / "empty.jpg").write_bytes(b"")
        names += ["corrupt.jpg", "empty.jpg"]
    if blank:
        Image.fromarray(np.full((100, 100, 3), 128, np.uint8)).save(folder / "grey.png")
        names.append("grey.png")
    return names


def test_cohort_adapter():
    c = Cohort.generate(n=16, seed=0)
    ds = load_dataset("cohort", cohort=c)
    item = ds[3]
    assert len(ds) == 16 and item["image"].shape == (64, 64, 3)
    assert item["disease_id"] == c.table["disease_id"][3] and item["landmarks"].shape == (68, 2)


def test_celeba_fake_tree(tmp_path):
    root = tmp_path / "celeba"
    names = _write_images(root / "img_align_celeba")
    attrs = ["Male", "Young", "Smiling"]
    lines = [str(len(names)), " ".join(attrs)] + [f"{n} {' '.join(['1', '-1', '1'] if i else ['-1', '1', '1'])}"
                                                 for i, n in enumerate(names)]
    (root / "list_attr_celeba.txt").write_text("\n".join(lines) + "\n")
    (root / "list_eval_partition.txt").write_text("\n".join(f"{n} 0" for n in names) + "\n")
    ds = load_dataset("celeba", root=root, split="train", size=32)
    assert isinstance(ds, FaceDataset) and len(ds) == 2
    assert ds.report["found"] == 5 and ds.report["kept"] == 2
    assert sorted(p.split("/")[-1] for p in ds.report["skipped_corrupt"]) == ["corrupt.jpg", "empty.jpg"]
    assert [p.split("/")[-1] for p in ds.report["skipped_no_face"]] == ["grey.png"]
    assert set(ds.table["disease_id"]) == {"UNAFFECTED"} and list(ds.table["sex"]) == ["F", "M"]
    assert "2 unreadable skipped" in ds.summary() and "1 without a detectable face" in ds.summary()
    with pytest.raises(ValueError, match="split must be one of"):
        load_dataset("celeba", root=root, split="val")
    with pytest.raises(ValueError, match="no usable face among 3 images: 2 unreadable, 1 without a face"):
        load_dataset("celeba", root=_only_bad(tmp_path))


def _only_bad(tmp_path):
    root = tmp_path / "bad_celeba"
    names = _write_images(root / "img_align_celeba", n_faces=0)
    (root / "list_attr_celeba.txt").write_text(f"{len(names)}\nMale Young\n" + "".join(f"{n} 1 1\n" for n in names))
    (root / "list_eval_partition.txt").write_text("".join(f"{n} 0\n" for n in names))
    return root


def test_missing_roots_show_the_layout(tmp_path):
    with pytest.raises(DatasetLayoutError, match="img_align_celeba"):
        load_dataset("celeba", root=tmp_path / "nowhere")
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "img_align_celeba").mkdir()
    with pytest.raises(DatasetLayoutError, match="missing list_attr_celeba.txt, list_eval_partition.txt"):
        load_dataset("celeba", root=tmp_path / "half")
    with pytest.raises(DatasetLayoutError, match="beta-thalassemia"):
        load_dataset("disease_faces", root=tmp_path / "none")
    with pytest.raises(ValueError, match="unknown dataset"):
        load_dataset("imagenet")


def test_disease_faces_folders(tmp_path):
    root = tmp_path / "dsf"
    _write_images(root / "Down_Syndrome", corrupt=False, blank=False)
    _write_images(root / "normal", n_faces=1, corrupt=True, blank=False)
    ds = load_dataset("disease_faces", root=root)
    assert ds.table["disease_id"].value_counts().to_dict() == {"OMIM:190685": 2, "UNAFFECTED": 1}
    assert len(ds.report["skipped_corrupt"]) == 2
    _write_images(root / "acne", n_faces=1, corrupt=False, blank=False)
    with pytest.raises(ValueError, match="unknown class folder.*acne.*leprosy"):
        load_dataset("disease_faces", root=root)
    assert len(load_dataset("disease_faces", root=root, class_map={"acne": "ORPHA:548"})) == 4


def test_gmdb_csv(tmp_path):
    root = tmp_path / "gmdb"
    _write_images(root / "images", corrupt=False, blank=False)
    (root / "metadata.csv").write_text("image,disease_id,age,sex\nface0.jpg,OMIM:190685,6,f\nface1.jpg,ORPHA:567,12.5,M\n")
    ds = load_dataset("gmdb", root=root)
    assert list(ds.table["disease_id"]) == ["OMIM:190685", "ORPHA:567"]
    assert list(ds.table["age"]) == [6.0, 12.5] and list(ds.table["sex"]) == ["F", "M"]
    (root / "metadata.csv").write_text("image,disease_id,age,sex\nface0.jpg,OMIM:19068,6,F\n")
    with pytest.raises(ValueError, match="OMIM:19068.*OMIM:190685"):
        load_dataset("gmdb", root=root)
    (root / "metadata.csv").write_text("image,diagnosis\nface0.jpg,x\n")
    with pytest.raises(DatasetLayoutError, match="disease_id, age, sex"):
        load_dataset("gmdb", root=root)


def test_packaged_photos():
    ds = load_dataset("packaged", size=64)
    assert len(ds) == 2 and ds.report["kept"] == 2
    assert ds.images.shape == (2, 64, 64, 3)


def test_16_bit_greyscale_photo_keeps_its_face(tmp_path):
    from skimage.color import rgb2gray

    from phenoface.datasets.base import read_rgb

    root = tmp_path / "dsf"
    (root / "Down_Syndrome").mkdir(parents=True)
    grey16 = np.round(rgb2gray(_faces()[0]) * 65535).astype(np.uint16)
    Image.fromarray(grey16).save(root / "Down_Syndrome" / "grey16.png")
    with Image.open(root / "Down_Syndrome" / "grey16.png") as im:
        assert im.mode.startswith("I")  # a genuine 16-bit PNG, which Pillow's convert("RGB") clips to white
    rgb = read_rgb(root / "Down_Syndrome" / "grey16.png")
    assert rgb.dtype == np.uint8 and rgb.shape == grey16.shape + (3,)
    assert np.abs(rgb[..., 0].astype(int) - np.round(grey16 / 257)).max() <= 1  # scaled, not clipped
    ds = load_dataset("disease_faces", root=root)
    assert ds.report["kept"] == 1 and not ds.report["skipped_no_face"]


def test_an_image_too_large_to_decode_is_skipped_and_named(tmp_path, monkeypatch):
    """An image past Pillow's decompression-bomb limit is skipped like an unreadable file, beside good photos.
    The limit is lowered so the test need not write a 15000 x 15000 file."""
    root = tmp_path / "dsf"
    _write_images(root / "Down_Syndrome", corrupt=False, blank=False)
    Image.fromarray(np.zeros((500, 500, 3), np.uint8)).save(root / "Down_Syndrome" / "huge.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 300 * 300)  # the faces fit; over twice this is an error
    ds = load_dataset("disease_faces", root=root)
    assert ds.report["kept"] == 2
    assert [p.split("/")[-1] for p in ds.report["skipped_corrupt"]] == ["huge.png"]
    assert "huge.png: too large to decode safely" in ds.report["bad_images"][0]
    assert "1 unreadable skipped" in ds.summary() and "huge.png" in ds.summary()
