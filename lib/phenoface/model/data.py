"""What the generator trains on: faces (or their latents) with their conditions, as a Lightning DataModule.

:func:`condition_arrays` assembles each face's condition from the run's artifacts: its disease's KG
embedding and fused profile (looked up in a :class:`DiseaseTable`) and its own phenotype tags, which in
the main setting are measured from its pixels by ``measure_images`` (real photos have no truth); the
cohort's true tags are an ablation. The DataModule only batches arrays, so the same code serves the
cohort (quick) and photo folders (full) once they are arrays.
"""

from __future__ import annotations

from dataclasses import dataclass

import lightning as L
import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset

from ..cohort.terms import TERM_IDS
from ..conditioning import GROUPS, sex_code
from ..labels import UNAFFECTED

FIELDS = ("disease_emb", "profile", "terms", "age", "sex", "severity", "known", "unaffected")


@dataclass
class DiseaseTable:
    """Per disease: its KG embedding (K,) and fused profile over the renderable terms (T,)."""

    ids: list[str]
    embedding: np.ndarray  # (D, K)
    profile: np.ndarray  # (D, T)
    names: dict | None = None

    def __post_init__(self):
        self.embedding = np.asarray(self.embedding, np.float32)
        self.profile = np.asarray(self.profile, np.float32)
        if len(self.ids) != len(self.embedding) or len(self.ids) != len(self.profile):
            raise ValueError("DiseaseTable: ids, embedding and profile need one row per disease")
        self._row = {d: i for i, d in enumerate(self.ids)}

    @property
    def kg_dim(self) -> int:
        return self.embedding.shape[1]

    def __contains__(self, disease) -> bool:
        return disease in self._row or disease in (None, "", UNAFFECTED)

    def check(self, disease) -> None:
        if disease not in self:
            known = ", ".join(sorted(self.ids)[:40])
            raise KeyError(f"unknown disease {disease!r}: the model knows {UNAFFECTED}, None and {len(self.ids)} "
                           f"diseases: {known}{' …' if len(self.ids) > 40 else ''}")

    def lookup(self, diseases) -> tuple[np.ndarray, np.ndarray]:
        """(embedding (N, K), profile (N, T)); zeros for UNAFFECTED / None / ''."""
        emb = np.zeros((len(diseases), self.kg_dim), np.float32)
        prof = np.zeros((len(diseases), self.profile.shape[1]), np.float32)
        for i, d in enumerate(diseases):
            self.check(d)
            if d in self._row:
                emb[i], prof[i] = self.embedding[self._row[d]], self.profile[self._row[d]]
        return emb, prof

    @classmethod
    def from_artifacts(cls, embedding: pd.DataFrame, profiles: dict, diseases, term_ids=TERM_IDS) -> "DiseaseTable":
        """From notebook 02's entity embeddings (DataFrame indexed by id) and a {id: Profile} dict; a disease
        the embedding lacks gets a zero embedding (its profile still conditions it)."""
        ids = [d for d in diseases if d != UNAFFECTED]
        emb = np.stack([embedding.loc[d].to_numpy(np.float32) if d in embedding.index
                        else np.zeros(embedding.shape[1], np.float32) for d in ids]) if ids else np.zeros((0, embedding.shape[1]))
        return cls(ids, emb, profile_rows(profiles, ids, term_ids),
                   {d: getattr(profiles.get(d), "disease_name", d) for d in ids})


def profile_rows(profiles: dict, ids, term_ids=TERM_IDS) -> np.ndarray:
    """(D, T): each disease's renderable profile weights over ``term_ids``; zeros for one without a profile."""
    prof = np.zeros((len(ids), len(term_ids)), np.float32)
    for i, d in enumerate(ids):
        if d in profiles:
            w = profiles[d].renderable()
            prof[i] = [float(w.get(t, 0.0)) for t in term_ids]
    return prof


def condition_arrays(table: pd.DataFrame, diseases: DiseaseTable, tags: np.ndarray) -> dict[str, np.ndarray]:
    """Per face: disease embedding, profile, term tags (N, T, all stated), age, sex code, severity (0 for
    unaffected) and the unaffected flag (its own token, not "no disease given")."""
    tags = np.asarray(tags, np.float32)
    if len(tags) != len(table):
        raise ValueError(f"{len(tags)} tag rows for {len(table)} faces")
    emb, prof = diseases.lookup(list(table["disease_id"]))
    sev = table["severity"].to_numpy(np.float32) if "severity" in table else np.zeros(len(table), np.float32)
    return {"disease_emb": emb, "profile": prof, "terms": np.clip(tags, 0.0, 1.0).astype(np.float32),
            "age": table["age"].to_numpy(np.float32), "sex": sex_code(table["sex"]), "severity": sev,
            "known": np.ones(tags.shape, bool), "unaffected": (table["disease_id"] == UNAFFECTED).to_numpy(bool)}


def unknown_disease_arrays(table: pd.DataFrame, kg_dim: int, tags: np.ndarray) -> dict[str, np.ndarray]:
    """Conditions of faces whose disease is unknown (renders with independent terms): their measured tags, age
    and sex; the disease, profile and severity groups are always their null tokens (``keep``)."""
    tags = np.asarray(tags, np.float32)
    n, t = tags.shape
    keep = np.ones((n, len(GROUPS)), bool)
    keep[:, [GROUPS.index(g) for g in ("disease", "profile", "severity")]] = False
    return {"disease_emb": np.zeros((n, kg_dim), np.float32), "profile": np.zeros((n, t), np.float32),
            "terms": np.clip(tags, 0.0, 1.0), "age": table["age"].to_numpy(np.float32), "sex": sex_code(table["sex"]),
            "severity": np.zeros(n, np.float32), "known": np.ones((n, t), bool), "unaffected": np.zeros(n, bool),
            "keep": keep}


def concat_conditions(*parts: dict) -> dict[str, np.ndarray]:
    """Condition arrays of several face sets, one after the other (``keep`` all True where a part has none)."""
    parts = [p for p in parts if p and len(p["age"])]
    out = {k: np.concatenate([p[k] for p in parts]) for k in FIELDS}
    if any("keep" in p for p in parts):
        out["keep"] = np.concatenate([p.get("keep", np.ones((len(p["age"]), len(GROUPS)), bool)) for p in parts])
    return out


def tags_from_measurements(measured: pd.DataFrame) -> np.ndarray:
    """Instrument outputs -> tags in [0, 1] (the pixel instrument estimates intensity on the renderer's
    scale; below 0 means none)."""
    return np.clip(measured[TERM_IDS].to_numpy(np.float32), 0.0, 1.0)


class FaceConditions(Dataset):
    def __init__(self, x: np.ndarray, cond: dict, key: str):
        self.x, self.cond, self.key = torch.as_tensor(x), {k: torch.as_tensor(v) for k, v in cond.items()}, key

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return {self.key: self.x[i], **{k: v[i] for k, v in self.cond.items()}}


class FaceDataModule(L.LightningDataModule):
    """Batches of ``{"latent" | "image": ..., condition fields}``; a held-out slice for validation loss.
    ``sample_weights`` (one per face) draws training batches with replacement in proportion to them."""

    def __init__(self, x: np.ndarray, cond: dict, key: str = "latent", batch_size: int = 64, val_fraction: float = 0.05,
                 seed: int = 0, num_workers: int = 0, sample_weights: np.ndarray | None = None):
        super().__init__()
        if key not in ("latent", "image"):
            raise ValueError("key must be 'latent' or 'image'")
        n = len(x)
        idx = np.random.default_rng(seed).permutation(n)
        n_val = int(round(n * val_fraction)) if n > 10 else 0
        self.val_idx, self.train_idx = np.sort(idx[:n_val]), np.sort(idx[n_val:])
        self.x, self.cond, self.key = x, cond, key
        self.batch_size, self.seed, self.num_workers = int(batch_size), seed, num_workers
        if sample_weights is not None:
            sample_weights = np.asarray(sample_weights, np.float64)
            if sample_weights.shape != (n,) or not np.isfinite(sample_weights).all() or (sample_weights < 0).any():
                raise ValueError(f"sample_weights: need {n} finite non-negative values, got shape {sample_weights.shape}")
        self.sample_weights = sample_weights

    def _subset(self, idx):
        return FaceConditions(self.x[idx], {k: v[idx] for k, v in self.cond.items()}, self.key)

    def train_dataloader(self):
        g = torch.Generator().manual_seed(self.seed)
        batch = min(self.batch_size, len(self.train_idx))
        if self.sample_weights is not None:  # oversampling (class balance), as GestaltGAN trains
            from torch.utils.data import WeightedRandomSampler

            sampler = WeightedRandomSampler(self.sample_weights[self.train_idx], len(self.train_idx), replacement=True,
                                            generator=g)
            return DataLoader(self._subset(self.train_idx), batch_size=batch, sampler=sampler, drop_last=True,
                              num_workers=self.num_workers)
        return DataLoader(self._subset(self.train_idx), batch_size=batch, shuffle=True,
                          drop_last=True, generator=g, num_workers=self.num_workers)

    def val_dataloader(self):
        if not len(self.val_idx):
            return []
        return DataLoader(self._subset(self.val_idx), batch_size=self.batch_size, num_workers=self.num_workers)
