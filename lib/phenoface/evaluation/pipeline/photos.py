"""Real photos through the suite (dlib identity, the recogniser out of its domain, a blank image that must
come out as *no face*) and notebook 06's edits of real photos (dlib distance to the input)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ...datasets import load_dataset
from ...datasets.landmarks import dlib_distance
from ...sampling.generated_cohort import load_arrays
from .. import dlib_embed, dlib_identity, embedding_cosine
from ..edits import DLIB_SAME
from .base import StepResult

PATIENT_SOURCES = {"disease_faces", "gmdb"}


@dataclass
class RealPhotosResult(StepResult):
    photos: object  # the loaded dataset (its summary and skip report)
    batch: np.ndarray  # the photos and the blank image
    table: pd.DataFrame
    face_found: np.ndarray
    show_faces: bool  # False for patient photos unless asked

    def metrics(self) -> dict:
        return {"real_photos_face_found_rate": float(self.face_found.mean()), "real_photos_images": int(len(self.batch))}

    def summary(self) -> str:
        skipped = len(self.photos.report["skipped_no_face"]) + len(self.photos.report["skipped_corrupt"])
        return (f"faces found by dlib in {self.face_found.sum()} of {len(self.batch)} images ({skipped} more skipped "
                "by the loader and listed above)")

    def figures(self) -> dict:
        import matplotlib.pyplot as plt

        if not self.show_faces:
            return {}
        fig, axes = plt.subplots(1, len(self.batch), figsize=(2.2 * len(self.batch), 2.6), squeeze=False)
        for ax, img, row in zip(axes[0], self.batch, self.table.itertuples()):
            ax.imshow(img)
            ax.set_axis_off()
            ax.set_title(f"{row[1].split(':')[-1][:18]}\n{row[5]}", fontsize=8)
        return {"real_photos": fig}


def real_photos_step(ev, recogniser, source: str = "packaged", raw_dir=None, show_real_patients: bool = False):
    """The ``source`` photos (``raw_dir / source`` unless packaged) plus one blank image: dlib face found,
    cosine to the own mirror image, the recogniser's top-1, the largest cosine to another photo."""

    kwargs = {} if source == "packaged" else {"root": raw_dir / source}
    photos = load_dataset(source, size=ev.train.size, **kwargs)
    blank = np.full((1, ev.train.size, ev.train.size, 3), 128, np.uint8)
    batch = np.concatenate([photos.images, blank])
    sources = list(photos.table["source"]) + ["blank (no face, on purpose)"]
    emb, face_found = dlib_embed(batch)
    mirror = dlib_identity(batch, batch[:, :, ::-1].copy())  # the same person, mirrored
    pred = recogniser.predict(batch, k=3)
    table = pd.DataFrame({"image": sources, "dlib face found": face_found,
                          "cosine to own mirror image": mirror["cosine"],
                          "same person (dlib < 0.6)": mirror["same_person"],
                          "recogniser top-1": [ev.names.get(d, d) if ok else "no face"
                                               for d, ok in zip(pred["top1"], face_found)],
                          "top-1 cosine": np.where(face_found, pred["score1"], np.nan)})
    pair = np.array([[embedding_cosine(emb[i:i + 1], emb[j:j + 1])[0] if i != j else np.nan
                      for j in range(len(batch))] for i in range(len(batch))])
    table["max cosine to another photo"] = [np.nan if np.isnan(row).all() else np.nanmax(row) for row in pair]
    show = source not in PATIENT_SOURCES or show_real_patients
    return RealPhotosResult(photos, batch, table, np.asarray(face_found), show)


@dataclass
class PhotoEditsResult(StepResult):
    table: pd.DataFrame | None
    figs: dict
    note: str

    def metrics(self) -> dict:
        return {f"photo_edit_{k}": v for k, v in self.figs.items()}


def photo_edits_step(ev, recogniser) -> PhotoEditsResult:
    """dlib distance between each real photo and its edit (same person under 0.6) beside the distance between
    two different photos at the same size, and the target's recogniser top-1 on the edits."""

    try:
        ph_in, table = load_arrays(ev.data_dir, "photo_edit_inputs")
        ph_out, _ = load_arrays(ev.data_dir, "photo_edits")
    except FileNotFoundError as exc:
        return PhotoEditsResult(None, {}, f"photo edits: {exc} (run notebook 06)")
    table["dlib distance to input"] = dlib_distance(ph_in, ph_out)
    table["target top-1"] = (recogniser.predict(ph_out, k=1)["top1"].to_numpy() == table["target"].to_numpy()).astype(float)
    first = ~table.duplicated("photo").to_numpy()
    distinct = ph_in[first]
    pairs = np.array([(i, j) for i in range(len(distinct)) for j in range(i + 1, len(distinct))]).reshape(-1, 2)
    between = dlib_distance(distinct[pairs[:, 0]], distinct[pairs[:, 1]]) if len(pairs) else np.array([np.nan])
    edited = table["edited"].astype(bool).to_numpy()
    dist = table.loc[edited, "dlib distance to input"].to_numpy(float)
    found = np.isfinite(dist)  # dlib found a face in both: the others are counted, not scored
    figs = {"edits": int(edited.sum()), "dlib_distance": float(dist[found].mean()) if found.any() else float("nan"),
            "dlib_same_rate": float((dist[found] < DLIB_SAME).mean()) if found.any() else float("nan"),
            "dlib_no_face": int((~found).sum()), "dlib_distance_different_people": float(np.nanmean(between)),
            "target_top1": float(table.loc[edited, "target top-1"].mean())}
    note = (f"different people, same size: dlib distance {figs['dlib_distance_different_people']:.3f} "
            f"(threshold {DLIB_SAME}); {figs['dlib_no_face']} edits where dlib found no face")
    return PhotoEditsResult(table[["photo", "target", "edited", "dlib distance to input", "target top-1"]], figs, note)
