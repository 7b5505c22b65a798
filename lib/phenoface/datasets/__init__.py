"""Dataset adapters: one FaceDataset interface over cohort, CelebA, Disease-specific faces, GMDB-like
folders and packaged photos. ``load_dataset(name, **kw)`` picks one by name."""

from .adapters import (DISEASE_FACES_CLASSES, celeba, cohort_dataset, disease_faces, gmdb, packaged)
from .base import UNAFFECTED, DatasetLayoutError, FaceDataset, load_photos

LOADERS = {"cohort": cohort_dataset, "celeba": celeba, "disease_faces": disease_faces, "gmdb": gmdb,
           "packaged": packaged}


def load_dataset(name: str, **kwargs) -> FaceDataset:
    """``load_dataset("celeba", root=..., split="test")``; ``load_dataset("cohort", cohort=c)``."""
    try:
        loader = LOADERS[name]
    except KeyError:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(LOADERS)}") from None
    return loader(**kwargs)


__all__ = ["DatasetLayoutError", "FaceDataset", "UNAFFECTED", "DISEASE_FACES_CLASSES", "LOADERS", "load_dataset",
           "load_photos", "celeba", "cohort_dataset", "disease_faces", "gmdb", "packaged"]
