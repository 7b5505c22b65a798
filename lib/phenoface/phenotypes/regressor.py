"""A small CNN landmark regressor for cohort renders and generated images (64 px, CPU; heat-map + soft-argmax).

    >>> reg = train_regressor(images, landmarks, epochs=15, seed=0)   # uint8 (N,64,64,3), (N,68,2) px
    >>> reg.save("data/processed/quick/phenotypes/regressor.safetensors")   # + regressor.json, no pickle
    >>> reg = LandmarkRegressor.load(path)         # an old pickled regressor.pt is refused
    >>> pts = reg.predict(images)                 # (N, 68, 2) pixels of the given images, batched
    >>> pts, face = reg.predict(images, return_score=True)   # + probability that a face is there

Any square resolution goes in: images are resized to the network's 64 px and the points scaled
back. Coordinates are learned as fractions of the image size. Besides the 136 coordinates the
network has one *face-score* output, trained against non-faces (patch-shuffled renders and smooth
random colour fields), so that ``detect_landmarks(..., backend="regressor")`` can answer "no face"
instead of placing points on anything.

Training is a plain, seeded torch loop with deterministic algorithms (see ``train_regressor`` for
why not Lightning), so the same data and seed give the same weights on the same machine.
Augmentation: horizontal flips (indices mirrored) and brightness/contrast jitter.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..cohort.layout import MIRROR
from ..modelio import ModelFileError, load_model, save_model

INPUT_SIZE = 64
N_POINTS = 68
# What notebook 04 writes under <DATA_DIR>/phenotypes/ (the card regressor.json goes beside it).
FILE_NAME = "regressor.safetensors"
KIND = "landmark_regressor"
REBUILD = ("re-run notebook 04_image_profiles (run_all.sh --only 04 --force) to rebuild it as "
           "regressor.safetensors + regressor.json")


def _cbr(cin, cout, stride=1, dil=1):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, dil, dilation=dil, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True))


class LandmarkNet(nn.Module):
    """Two architectures with the same output (N, 137): 68 (x, y) as fractions of the image size
    minus 0.5, then one face logit.

    ``heatmap`` (default, ~70 k parameters at width 12): a small encoder-decoder predicts one 16 x 16
    heat-map per point and takes its soft-argmax (integral regression): translation-equivariant and
    sub-cell accurate. ``direct`` (~0.3 M parameters at width 16): four conv stages (64 -> 4 px) and a
    fully connected head regress the coordinates directly (cheaper, less precise: held-out NME 0.036
    vs 0.026 on the quick cohort)."""

    def __init__(self, width: int = 12, arch: str = "heatmap"):
        super().__init__()
        if arch not in ("heatmap", "direct"):
            raise ValueError(f"arch must be 'heatmap' or 'direct', got {arch!r}")
        self.arch, w = arch, width
        if arch == "direct":
            self.features = nn.Sequential(
                _cbr(3, w // 2, 2),                    # 32
                _cbr(w // 2, w), nn.MaxPool2d(2),       # 16
                _cbr(w, 2 * w), nn.MaxPool2d(2),        # 8
                _cbr(2 * w, 4 * w), nn.MaxPool2d(2),    # 4
            )
            self.head = nn.Sequential(nn.Flatten(), nn.Linear(4 * w * 16, 256), nn.ReLU(inplace=True),
                                      nn.Linear(256, 2 * N_POINTS + 1))
            return
        self.stem = nn.Sequential(_cbr(3, w, 2), _cbr(w, w))                                       # 32
        self.down1 = nn.Sequential(_cbr(w, 2 * w, 2), _cbr(2 * w, 2 * w, dil=2), _cbr(2 * w, 2 * w, dil=4))  # 16
        self.down2 = nn.Sequential(_cbr(2 * w, 4 * w, 2), _cbr(4 * w, 4 * w, dil=2))               # 8
        self.up = _cbr(6 * w, 3 * w)                                                               # 16
        self.heat = nn.Conv2d(3 * w, N_POINTS, 1)
        self.face = nn.Linear(4 * w, 1)
        g = (torch.arange(16, dtype=torch.float32) + 0.5) / 16 - 0.5  # cell centres, as fractions - 0.5
        self.register_buffer("gx", g.view(1, 1, 1, 16), persistent=False)
        self.register_buffer("gy", g.view(1, 1, 16, 1), persistent=False)

    def forward(self, x):
        if self.arch == "direct":
            return self.head(self.features(x))
        a = self.stem(x)
        b = self.down1(a)
        c = self.down2(b)
        u = self.up(torch.cat([b, F.interpolate(c, scale_factor=2, mode="bilinear", align_corners=False)], 1))
        h = self.heat(u)
        n = h.shape[0]
        prob = torch.softmax(h.reshape(n, N_POINTS, -1), -1).reshape_as(h)
        xy = torch.stack([(prob * self.gx).sum((2, 3)), (prob * self.gy).sum((2, 3))], -1)
        return torch.cat([xy.reshape(n, -1), self.face(c.mean((2, 3)))], 1)


def _to_input(images) -> torch.Tensor:
    """uint8 (N, H, W, 3) -> float (N, 3, 64, 64) in [-0.5, 0.5]."""
    x = torch.as_tensor(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div_(255.0)
    if x.shape[-1] != INPUT_SIZE or x.shape[-2] != INPUT_SIZE:
        x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", antialias=True, align_corners=False)
    return x.sub_(0.5)


def _negatives(images: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Non-faces at the images' size: half patch-shuffled renders, half smooth colour fields + noise."""
    size = images.shape[1]
    out = np.empty((n, size, size, 3), np.uint8)
    p = max(size // 8, 1)
    for i in range(n):
        if i % 2 == 0:
            src = images[rng.integers(len(images))]
            tiles = src[: p * 8, : p * 8].reshape(8, p, 8, p, 3).transpose(0, 2, 1, 3, 4).reshape(64, p, p, 3)
            tiles = tiles[rng.permutation(64)].reshape(8, 8, p, p, 3).transpose(0, 2, 1, 3, 4).reshape(8 * p, 8 * p, 3)
            img = np.array(src)
            img[: 8 * p, : 8 * p] = tiles
        else:
            c = rng.uniform(0, 255, (2, 2, 3))
            yy, xx = np.mgrid[0:size, 0:size] / max(size - 1, 1)
            img = (c[0, 0] * ((1 - yy) * (1 - xx))[..., None] + c[0, 1] * ((1 - yy) * xx)[..., None]
                   + c[1, 0] * (yy * (1 - xx))[..., None] + c[1, 1] * (yy * xx)[..., None])
            img = np.clip(img + rng.normal(0, rng.uniform(0, 25), img.shape), 0, 255)
        out[i] = img.astype(np.uint8)
    return out


class LandmarkRegressor:
    """A trained :class:`LandmarkNet` plus what is needed to use it (sizes, training record)."""

    def __init__(self, net: LandmarkNet, meta: dict | None = None):
        self.net = net.eval()
        self.meta = dict(meta or {})
        self.net_width = int(self.meta.get("width", 12 if getattr(net, "arch", "heatmap") == "heatmap" else 16))

    @torch.no_grad()
    def predict(self, images, batch_size: int = 256, return_score: bool = False, flip: bool = False):
        """uint8 RGB (N, H, W, 3) (or one (H, W, 3) image) -> (N, 68, 2) pixel (x, y) in those images.

        ``flip=True`` also runs the mirrored images and averages (twice the cost, less noise)."""
        imgs = np.asarray(images)
        single = imgs.ndim == 3
        if single:
            imgs = imgs[None]
        if imgs.ndim != 4 or imgs.shape[-1] != 3:
            raise ValueError(f"expected uint8 RGB images (N, H, W, 3), got {imgs.shape}")
        h, w = imgs.shape[1:3]
        pts = np.empty((len(imgs), N_POINTS, 2), np.float32)
        score = np.empty(len(imgs), np.float32)
        self.net.eval()
        for s in range(0, len(imgs), batch_size):
            x = _to_input(imgs[s:s + batch_size])
            out = self.net(x)
            xy = out[:, :-1].reshape(-1, N_POINTS, 2)
            if flip:
                out_f = self.net(torch.flip(x, dims=[3]))
                xy_f = out_f[:, :-1].reshape(-1, N_POINTS, 2)[:, torch.as_tensor(MIRROR)]
                xy_f[..., 0] = -xy_f[..., 0]
                xy = 0.5 * (xy + xy_f)
                out = torch.cat([out[:, :-1], 0.5 * (out[:, -1:] + out_f[:, -1:])], 1)
            xy = (xy + 0.5).numpy()
            pts[s:s + len(xy)] = xy * np.array([w, h], np.float32)
            score[s:s + len(xy)] = torch.sigmoid(out[:, -1]).numpy()
        if single:
            pts, score = pts[0], score[0]
        return (pts, score) if return_score else pts

    __call__ = predict

    def save(self, path) -> Path:
        """Weights to ``path`` (``.safetensors``) and architecture + training record to the ``.json`` beside
        it, each atomically (:mod:`phenoface.modelio`); returns the weights path."""

        return save_model(path, self.net.state_dict(), {"width": self.net_width, "arch": self.net.arch,
                                                        "meta": self.meta}, kind=KIND)

    @classmethod
    def load(cls, path) -> "LandmarkRegressor":
        """Read what :meth:`save` wrote, without unpickling; a pickled ``regressor.pt`` is refused."""

        state, card = load_model(path, kind=KIND, rebuild=REBUILD)
        try:
            net = LandmarkNet(width=int(card["width"]), arch=str(card["arch"]))
            net.load_state_dict(state)
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise ModelFileError(f"{path} does not hold a landmark regressor this code can read ({exc}); "
                                 f"{REBUILD}") from None
        return cls(net, card.get("meta", {}))

    def __repr__(self):
        m = self.meta
        return (f"LandmarkRegressor({sum(p.numel() for p in self.net.parameters()):,} params, trained on "
                f"{m.get('n_train', '?')} images, {m.get('epochs', '?')} epochs, {m.get('seconds', float('nan')):.1f} s)")


def _loss(net, x, y, is_face, face_weight):
    out = net(x)
    coords = out[:, :-1].reshape(-1, N_POINTS, 2)
    m = is_face > 0.5
    loss_xy = F.smooth_l1_loss(coords[m], y[m], beta=0.01) if m.any() else out.sum() * 0
    return loss_xy + face_weight * F.binary_cross_entropy_with_logits(out[:, -1], is_face)


def train_regressor(images, landmarks, epochs: int = 12, seed: int = 0, batch_size: int = 64, lr: float = 3e-3,
                    width: int = 12, negatives: float = 0.15, threads: int | None = 1,
                    face_weight: float = 0.05, arch: str = "heatmap") -> LandmarkRegressor:
    """Train on renders (uint8 (N, S, S, 3)) and their pixel landmarks (N, 68, 2). Seeded, deterministic.

    A plain torch loop rather than Lightning's Trainer: on the 2-core CPU this runs on, importing
    Lightning costs ~8 s and each ``fit`` ~3.5 s of setup, more than the whole smoke-profile training;
    this model needs none of what the Trainer adds (no checkpoints, devices, EMA or resume)."""
    images = np.asarray(images)
    landmarks = np.asarray(landmarks, np.float32)
    if images.ndim != 4 or landmarks.shape != (len(images), N_POINTS, 2):
        raise ValueError(f"need images (N, S, S, 3) and landmarks (N, 68, 2); got {images.shape}, {landmarks.shape}")
    start = time.perf_counter()
    old_threads = torch.get_num_threads()
    if threads:
        # this net's small convolutions are overhead-bound: one thread was 3x faster than two on the
        # 2-core machine while other work ran beside it
        torch.set_num_threads(int(threads))
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    size = images.shape[1]
    n_neg = int(round(negatives * len(images)))
    neg = _negatives(images, n_neg, rng) if n_neg else images[:0]
    x = torch.cat([_to_input(images), _to_input(neg)]) if n_neg else _to_input(images)
    y = torch.from_numpy(landmarks / np.array([images.shape[2], size], np.float32) - 0.5)
    y = torch.cat([y, torch.zeros((n_neg, N_POINTS, 2))])
    is_face = torch.cat([torch.ones(len(images)), torch.zeros(n_neg)])
    n = len(x)
    batch_size = min(batch_size, n)
    steps = max(n // batch_size, 1)
    net = LandmarkNet(width, arch).to(memory_format=torch.channels_last)
    x = x.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs * steps, pct_start=0.2)
    mirror = torch.as_tensor(MIRROR)
    deterministic = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    losses = []
    try:
        net.train()
        for epoch in range(epochs):
            order = torch.as_tensor(rng.permutation(n))
            total = 0.0
            for s in range(steps):
                idx = order[s * batch_size:(s + 1) * batch_size]
                xb, yb = x[idx].clone(), y[idx].clone()
                flip = torch.as_tensor(rng.random(len(idx)) < 0.5)
                # horizontal flip: mirror the image, swap left/right dlib indices, negate x
                xb[flip] = torch.flip(xb[flip], dims=[3])
                yf = yb[flip][:, mirror]
                yf[..., 0] = -yf[..., 0]
                yb[flip] = yf
                gain = torch.as_tensor(rng.uniform(0.8, 1.2, len(idx)), dtype=torch.float32).view(-1, 1, 1, 1)
                bias = torch.as_tensor(rng.uniform(-0.08, 0.08, len(idx)), dtype=torch.float32).view(-1, 1, 1, 1)
                xb = (xb * gain + bias).clamp_(-0.5, 0.5)
                loss = _loss(net, xb, yb, is_face[idx], face_weight)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                total += loss.item()
            losses.append(total / steps)
    finally:
        torch.use_deterministic_algorithms(deterministic)
        torch.set_num_threads(old_threads)
    seconds = time.perf_counter() - start
    meta = {"n_train": int(len(images)), "n_negatives": int(n_neg), "epochs": int(epochs), "seed": int(seed),
            "width": int(width), "arch": arch, "train_size": int(size), "seconds": float(seconds), "losses": losses,
            "params": int(sum(p.numel() for p in net.parameters())), "batch_size": int(batch_size), "lr": float(lr)}
    return LandmarkRegressor(net.eval(), meta)
