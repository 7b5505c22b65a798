"""A GestaltMatcher-style disease recogniser: a small CNN embedding trained on cohort renders, a
gallery of labelled embeddings and cosine nearest neighbours.

The network maps an aligned face (uint8, any size, resized to ``input_size``) to an L2-normalised
embedding; training uses a cosine-softmax classification head (NormFace: class weights and
embeddings both normalised, logits = scale * cosine), so cosine similarity in embedding space is
what the head learned to separate. At test time the head is not used: a :class:`Gallery` of
labelled embeddings (the training split) ranks classes by their nearest gallery member (or by
class centroid), exactly as GestaltMatcher ranks syndromes.

The same backbone is the feature extractor for Fréchet distance / KID
(:mod:`phenoface.evaluation.realism`) and the memorisation check
(:mod:`phenoface.evaluation.privacy`): :meth:`Recogniser.feature_extractor`. Training (with the blur,
noise and colour augmentation) and the choice of width and epochs on validation faces live in
:mod:`phenoface.evaluation.recogniser_training`.

For real photos, dlib's 128-d face descriptor is the embedding backend: :func:`dlib_embed`
returns descriptors plus a per-image found flag, and a :class:`Gallery` works on either.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..datasets.landmarks import face_descriptor
from ..modelio import ModelFileError, load_model, save_model

__all__ = ["FACE_BOX", "EmbeddingNet", "Recogniser", "Gallery", "dlib_embed", "to_tensor", "topk_accuracy",
           "topk_hits", "net_modules"]


KIND = "recogniser"
REBUILD = "re-run notebook 07_evaluate (run_all.sh --only 07 --force) to rebuild it as recogniser.safetensors + .json"


def _plain(value):
    """JSON for the training history: numpy scalars and arrays as numbers and lists."""
    return value.tolist() if hasattr(value, "tolist") else float(value)


# The face box of the cohort's canonical frame (fractions of the image: top, bottom, left, right).
# Renders, generated images and real photos aligned with phenoface.datasets.landmarks.align_face share this frame,
# so the crop drops hair and background and keeps the face at any resolution.
FACE_BOX = (0.21, 0.93, 0.14, 0.86)


def to_tensor(images, size: int | None = None, crop=None):
    """uint8 (N, H, W, 3) numpy (or N,3,H,W tensor) -> float tensor (N, 3, size, size) in [-1, 1],
    optionally cropped to ``crop`` = (top, bottom, left, right) fractions first."""
    import torch
    import torch.nn.functional as F

    x = images if isinstance(images, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(images))
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4:
        raise ValueError(f"expected images (N, H, W, 3), got shape {tuple(x.shape)}")
    if x.shape[-1] in (3, 4) and x.shape[1] not in (3, 4):
        x = x[..., :3].permute(0, 3, 1, 2)
    if x.shape[1] != 3:
        raise ValueError(f"expected 3 colour channels, got shape {tuple(x.shape)}")
    x = x.float() / 127.5 - 1.0 if x.dtype == torch.uint8 else x.float() * 2.0 - 1.0
    if crop is not None:
        h, w = x.shape[-2:]
        t, b, l, r = crop
        x = x[..., int(round(t * h)):int(round(b * h)), int(round(l * w)):int(round(r * w))]
    if size is not None and tuple(x.shape[-2:]) != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return x


def net_modules():
    """(EmbeddingNet, CosineHead) torch Module classes, built lazily so importing this module stays light."""
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    class EmbeddingNet(nn.Module):
        """Conv stem + 4 stride-2 stages (64 -> 4 px) + global average pool + linear embedding."""

        def __init__(self, embed_dim: int = 64, width: int = 32, input_size: int = 48, crop=FACE_BOX):
            super().__init__()
            self.embed_dim, self.width, self.input_size = int(embed_dim), int(width), int(input_size)
            self.crop = None if crop is None else tuple(float(c) for c in crop)
            w = self.width
            chans = [3, w, w * 2, w * 4, w * 4]

            def block(cin, cout):
                return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(cout),
                                     nn.ReLU(inplace=True), nn.Conv2d(cout, cout, 3, padding=1, bias=False),
                                     nn.BatchNorm2d(cout), nn.ReLU(inplace=True))

            self.stages = nn.ModuleList([block(chans[i], chans[i + 1]) for i in range(4)])
            self.proj = nn.Linear(chans[-1], self.embed_dim)
            self.pool_dim = chans[-1]

        def trunk(self, x):
            for stage in self.stages:
                x = stage(x)
            return x  # (N, 4w, input/16, input/16)

        def forward(self, x):
            h = self.trunk(x).mean(dim=(2, 3))
            return F.normalize(self.proj(h), dim=1)

    class CosineHead(nn.Module):
        def __init__(self, embed_dim: int, n_classes: int, scale: float = 16.0):
            super().__init__()
            self.weight = nn.Parameter(torch.randn(n_classes, embed_dim) * 0.1)
            self.scale = scale

        def forward(self, z):
            return self.scale * z @ F.normalize(self.weight, dim=1).t()

    return EmbeddingNet, CosineHead


def EmbeddingNet(embed_dim: int = 64, width: int = 32, input_size: int = 48, crop=FACE_BOX):  # noqa: N802
    """The embedding network (a torch Module; built lazily so importing this module stays light)."""
    return net_modules()[0](embed_dim, width, input_size, crop)


def _cosine_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    return a @ b.T


@dataclass
class Gallery:
    """Labelled embeddings; ranks classes for a query by cosine similarity.

    ``mode="nearest"`` (GestaltMatcher): a class scores its most similar gallery member;
    ``mode="centroid"``: a class scores the cosine to its normalised mean embedding.
    """

    embeddings: np.ndarray
    labels: np.ndarray
    mode: str = "nearest"
    classes: list = field(default_factory=list)

    def __post_init__(self):
        self.embeddings = np.asarray(self.embeddings, np.float32)
        self.labels = np.asarray(self.labels).astype(str)
        if len(self.embeddings) != len(self.labels):
            raise ValueError("gallery embeddings and labels differ in length")
        if self.mode not in ("nearest", "centroid"):
            raise ValueError(f"mode must be 'nearest' or 'centroid', got {self.mode!r}")
        self.classes = [str(c) for c in (self.classes or sorted(set(self.labels)))]

    def class_scores(self, queries: np.ndarray) -> pd.DataFrame:
        """(N, classes) cosine score of each class for each query; rows of NaN queries stay NaN."""
        q = np.asarray(queries, np.float64)
        ok = np.isfinite(q).all(axis=1)
        out = np.full((len(q), len(self.classes)), np.nan)
        if ok.any():
            if self.mode == "centroid":
                cent = np.stack([self.embeddings[self.labels == c].mean(0) for c in self.classes])
                out[ok] = _cosine_matrix(q[ok], cent)
            else:
                sims = _cosine_matrix(q[ok], self.embeddings)
                for j, c in enumerate(self.classes):
                    out[ok, j] = sims[:, self.labels == c].max(axis=1)
        return pd.DataFrame(out, columns=self.classes)

    def rank(self, queries: np.ndarray, k: int = 5) -> pd.DataFrame:
        """Top-k classes per query: columns top1..topk (class ids) and score1..scorek (cosines).
        A query without an embedding (NaN row: no face found) gets empty predictions."""
        scores = self.class_scores(queries)
        k = min(k, len(self.classes))
        vals = scores.to_numpy()
        rows = []
        for v in vals:
            if not np.isfinite(v).all():
                rows.append({**{f"top{i + 1}": None for i in range(k)}, **{f"score{i + 1}": np.nan for i in range(k)}})
                continue
            order = np.argsort(-v, kind="stable")[:k]
            rows.append({**{f"top{i + 1}": self.classes[j] for i, j in enumerate(order)},
                         **{f"score{i + 1}": float(v[j]) for i, j in enumerate(order)}})
        return pd.DataFrame(rows)


def topk_hits(ranked: pd.DataFrame, truth, k: int) -> np.ndarray:
    """Per query, 1.0 when the true class is among the top k, else 0.0. A query without a prediction
    (no face) is a miss, so it stays in every denominator (and in a bootstrap over faces)."""
    truth = np.asarray(truth).astype(str)
    cols = [f"top{i + 1}" for i in range(k) if f"top{i + 1}" in ranked]
    hit = np.zeros(len(truth), bool)
    for c in cols:
        hit |= ranked[c].astype(object).to_numpy() == truth
    return hit.astype(float)


def topk_accuracy(ranked: pd.DataFrame, truth, k: int) -> float:
    """Share of queries whose true class is among the top k (face-less queries count as misses)."""
    hits = topk_hits(ranked, truth, k)
    return float(hits.mean()) if len(hits) else float("nan")


class Recogniser:
    """The trained embedding network, its class list and its gallery.

        >>> rec = train_recogniser(images, labels, epochs=8, seed=0)
        >>> rec.embed(images)                  # (N, D) unit vectors
        >>> rec.predict(images, k=5)           # top1..top5 + cosine scores
        >>> rec.evaluate(images, labels)       # {"top1": .., "top5": .., "confusion": DataFrame}
        >>> rec.save("recogniser.safetensors"); Recogniser.load("recogniser.safetensors")   # + .json, no pickle
    """

    def __init__(self, net, classes, gallery: Gallery | None = None, history: dict | None = None):
        self.net = net.eval()
        self.classes = [str(c) for c in classes]
        self.gallery = gallery
        self.history = history or {}

    @property
    def crop(self):
        return getattr(self.net, "crop", None)

    @property
    def input_size(self) -> int:
        return int(self.net.input_size)

    @property
    def embed_dim(self) -> int:
        return int(self.net.embed_dim)

    def _batched(self, images, fn, batch_size: int = 256) -> np.ndarray:
        import torch

        n = len(images)
        outs = []
        with torch.inference_mode():
            for s in range(0, n, batch_size):
                outs.append(fn(to_tensor(images[s:s + batch_size], self.input_size, self.crop)).float().numpy())
        return np.concatenate(outs) if outs else np.zeros((0, self.embed_dim), np.float32)

    def embed(self, images, batch_size: int = 256) -> np.ndarray:
        """L2-normalised embeddings (N, D) of uint8 images (N, H, W, 3)."""
        return self._batched(images, self.net, batch_size)

    def features(self, images, kind: str = "pool", batch_size: int = 256) -> np.ndarray:
        """Backbone features: ``pool`` (global-average-pooled last stage, 4*width-d), ``embed`` (the
        unit embedding) or ``grid`` (last stage average-pooled to 2x2 and flattened: keeps layout)."""
        return self._batched(images, self._feature_fn(kind), batch_size)

    def _feature_fn(self, kind: str):
        import torch.nn.functional as F

        net = self.net
        if kind == "embed":
            return net
        if kind == "pool":
            return lambda x: net.trunk(x).mean(dim=(2, 3))
        if kind == "grid":
            return lambda x: F.adaptive_avg_pool2d(net.trunk(x), 2).flatten(1)
        raise ValueError(f"kind must be 'pool', 'embed' or 'grid', got {kind!r}")

    def feature_extractor(self, kind: str = "pool"):
        """A torch Module mapping uint8 (N, 3, H, W) tensors to features, with ``num_features``:
        what torchmetrics' FrechetInceptionDistance / KernelInceptionDistance take as ``feature=``."""
        import torch

        fn = self._feature_fn(kind)
        size, crop = self.input_size, self.crop
        dims = {"pool": self.net.pool_dim, "embed": self.embed_dim, "grid": self.net.pool_dim * 4}[kind]

        class _Extractor(torch.nn.Module):
            def __init__(self, net):
                super().__init__()
                self.net = net  # registered so .to(device) moves it
                self.num_features = int(dims)

            def forward(self, x):
                with torch.no_grad():
                    return fn(to_tensor(x, size, crop)).float()

        return _Extractor(self.net).eval()

    def set_gallery(self, images, labels, mode: str = "nearest") -> Gallery:
        self.gallery = Gallery(self.embed(images), np.asarray(labels).astype(str), mode=mode, classes=list(self.classes))
        return self.gallery

    def predict(self, images, k: int = 5) -> pd.DataFrame:
        if self.gallery is None:
            raise RuntimeError("the recogniser has no gallery: call set_gallery(images, labels) first")
        return self.gallery.rank(self.embed(images), k=k)

    def evaluate(self, images, labels, k: int = 5) -> dict:
        """top-1 / top-k accuracy and the confusion matrix (rows: truth, columns: top-1 prediction)."""
        ranked = self.predict(images, k=k)
        labels = np.asarray(labels).astype(str)
        conf = pd.crosstab(pd.Categorical(labels, categories=self.classes),
                           pd.Categorical(ranked["top1"].astype(str), categories=self.classes), dropna=False)
        conf.index.name, conf.columns.name = "truth", "predicted"
        return {"top1": topk_accuracy(ranked, labels, 1), f"top{k}": topk_accuracy(ranked, labels, k),
                "confusion": conf, "ranked": ranked, "n": int(len(labels)), "hits1": topk_hits(ranked, labels, 1),
                "chance_top1": 1.0 / max(len(self.classes), 1), f"chance_top{k}": min(k, len(self.classes)) / max(len(self.classes), 1)}

    # -- persistence ----------------------------------------------------------------------------
    def save(self, path) -> Path:
        """Weights and gallery embeddings to ``path`` (``.safetensors``); architecture, classes, gallery labels
        and training history to the ``.json`` beside it; each atomic (:mod:`phenoface.modelio`). Returns the
        weights path."""
        import json

        tensors = {f"net.{k}": v for k, v in self.net.state_dict().items()}
        card = {"classes": [str(c) for c in self.classes],
                "history": json.loads(json.dumps(self.history, default=_plain)),
                "arch": {"embed_dim": self.net.embed_dim, "width": self.net.width, "input_size": self.net.input_size,
                         "crop": None if self.crop is None else list(self.crop)},
                "gallery": None}
        if self.gallery is not None:
            tensors["gallery.embeddings"] = self.gallery.embeddings
            card["gallery"] = {"labels": [str(x) for x in self.gallery.labels], "mode": self.gallery.mode}
        return save_model(path, tensors, card, kind=KIND)

    @classmethod
    def load(cls, path) -> "Recogniser":
        """Read what :meth:`save` wrote, without unpickling; a pickled ``recogniser.pt`` is refused."""

        tensors, card = load_model(path, kind=KIND, rebuild=REBUILD)
        try:
            net = EmbeddingNet(**card["arch"])
            net.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("net.")})
            g = card.get("gallery")
            gallery = None if g is None else Gallery(tensors["gallery.embeddings"].numpy(), np.asarray(g["labels"]),
                                                     mode=g["mode"], classes=list(card["classes"]))
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise ModelFileError(f"{path} does not hold a recogniser this code can read ({exc}); {REBUILD}") from None
        return cls(net, card["classes"], gallery, card.get("history"))

    def __repr__(self):
        g = 0 if self.gallery is None else len(self.gallery.labels)
        return f"Recogniser(classes={len(self.classes)}, embed_dim={self.embed_dim}, gallery={g})"


def dlib_embed(images) -> tuple[np.ndarray, np.ndarray]:
    """dlib 128-d descriptors of real photos: (N, 128) with NaN rows where no face was found, and
    the per-image found flags (every image stays in the output, never silently dropped)."""

    out = np.full((len(images), 128), np.nan, np.float32)
    found = np.zeros(len(images), bool)
    for i, img in enumerate(images):
        d = face_descriptor(img)
        if d is not None:
            out[i], found[i] = d, True
    return out, found
