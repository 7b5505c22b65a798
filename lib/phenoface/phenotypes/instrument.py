"""The pixel phenotype instrument: a small CNN that reads every renderable term's intensity, and age, from
pixels alone.

Why pixels and not landmarks + meter: at 64 px several phenotypes are sub-pixel landmark changes (an 18°
canthal tilt moves an eye corner about one pixel), so the landmark regressor's geometry agrees with the truth
at Pearson r 0.03-0.5 for those terms, while the pixels still carry them (shading, widths, textures). The
instrument is trained on renders with *independent* random term intensities
(:mod:`phenoface.cohort.independent`), so it measures terms, not diseases, and cannot learn co-occurrence
shortcuts. Training augments with blur, noise, colour and small affine jitter so that what a generator does to
an image (softness, grain, colour cast) does not read as a phenotype change. Notebook 04 compares it with the
landmark route on the validation split and saves the one it chooses.

    >>> inst = train_instrument(images, intensities, ages, epochs=8, seed=0)   # uint8 (N,64,64,3), (N,T), (N,)
    >>> inst.save(folder); inst = PhenotypeInstrument.load(folder)             # safetensors + JSON, no pickle
    >>> inst.measure(images)    # DataFrame, one column per term (0 = absent, 1 = full severity)
    >>> inst.age(images)        # years
    >>> inst.with_views(6).measure(images)   # averaged over the mirror image and 1 px shifts (test-time augmentation)

Training is a plain seeded torch loop with deterministic algorithms (the same data and seed give the same
weights on the same machine), like the landmark regressor's; Lightning adds nothing for a 0.2 M-parameter net
trained in one process for a few minutes.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.nn import functional as F

from ..cohort.terms import TERM_IDS
from ..modelio import ModelFileError, check_not_pickle, load_model, save_model

INPUT_SIZE = 64
AGE_CENTRE, AGE_SCALE = 30.0, 15.0
VERSION = 3  # 3: full-resolution first stage (2 had a strided stem)
MODEL_KIND = "phenotype_instrument"
REBUILD = "re-run notebook 04_image_profiles (run_all.sh --only 04 --force) to rebuild it"


def _cbr(cin, cout, stride=1):
    return [nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class PhenotypeNet(nn.Module):
    """Four 3 x 3 conv stages of w, 2w, 4w, 8w channels, each followed by 2 x 2 max-pooling (64 -> 4 px), and a
    linear head over the whole 4 x 4 map, which keeps position (where on the face a change is matters: a bridge
    vs a philtrum). The first stage works at full resolution: several terms are one-pixel cues at 64 px (an
    18 degree canthal tilt moves an eye corner about one pixel; a nodule is a few pixels). Version 2 had a
    strided stem instead; measured side by side (4,000 renders, 4 epochs, no augmentation, 1,024 new renders)
    the mean per-term Pearson was 0.22 with it and 0.29 with this, at 31 vs 38 s. Outputs: one intensity per
    term, then age (standardised)."""

    def __init__(self, width: int = 16, n_terms: int = len(TERM_IDS)):
        super().__init__()
        w = int(width)
        if w < 2:
            raise ValueError(f"width must be >= 2, got {width}")
        self.width, self.n_terms = w, n_terms
        self.stages = nn.Sequential(*_cbr(3, w), nn.MaxPool2d(2),                # 32 px
                                    *_cbr(w, 2 * w), nn.MaxPool2d(2),            # 16 px
                                    *_cbr(2 * w, 4 * w), nn.MaxPool2d(2),        # 8 px
                                    *_cbr(4 * w, 8 * w), nn.MaxPool2d(2))        # 4 px
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(0.1), nn.Linear(8 * w * 16, n_terms + 1))

    def forward(self, x):
        return self.head(self.stages(x))


def to_input(images) -> torch.Tensor:
    """uint8 (N, H, W, 3) -> normalised float (N, 3, 64, 64); other sizes are resized (antialiased)."""
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div_(255.0)
    if x.shape[-1] != INPUT_SIZE or x.shape[-2] != INPUT_SIZE:
        x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", antialias=True, align_corners=False)
    return (x - 0.5) / 0.25


def gaussian_blur(x: torch.Tensor, sigma) -> torch.Tensor:
    """Blur each image of (N, C, H, W) with its own sigma (pixels; 0 = unchanged), separable, 7 taps."""
    n, c, h, w = x.shape
    sigma = torch.as_tensor(sigma, dtype=x.dtype).reshape(-1).expand(n)
    r = torch.arange(-3, 4, dtype=x.dtype)
    k = torch.exp(-0.5 * (r[None] / sigma.clamp_min(1e-3)[:, None]) ** 2)
    k = k / k.sum(1, keepdim=True)
    k = torch.where(sigma[:, None] > 0.05, k, (r[None] == 0).to(x.dtype))
    k = k.repeat_interleave(c, 0)  # (N*C, 7)
    y = F.pad(x.reshape(1, n * c, h, w), (3, 3, 3, 3), mode="replicate")
    y = F.conv2d(y, k[:, None, None, :], groups=n * c)
    y = F.conv2d(y, k[:, None, :, None], groups=n * c)
    return y.reshape(n, c, h, w)


def _shift(x: torch.Tensor, dx: int, dy: int) -> torch.Tensor:
    """Whole-pixel shift by up to 2 px with edge replication (training augmentation and test-time views)."""
    h, w = x.shape[-2:]
    return F.pad(x, (2, 2, 2, 2), mode="replicate")[:, :, 2 + dy:2 + dy + h, 2 + dx:2 + dx + w]


def augment(x: torch.Tensor, gen: torch.Generator, blur_max: float = 1.2) -> torch.Tensor:
    """What a generator or a camera does to a face, none of which is a phenotype: a whole-pixel shift (one per
    batch, up to 2 px; whole pixels because resampling at sub-pixel offsets would soften every training image,
    and sharp sub-pixel cues are what several terms are), a mirror image (every renderable term is symmetric),
    blur on some images, colour cast, contrast and grain."""
    n, _, h, w = x.shape

    def u(lo, hi, *shape):
        return lo + (hi - lo) * torch.rand(*(shape or (n,)), generator=gen)

    dx, dy = (int(v) for v in torch.randint(-2, 3, (2,), generator=gen))
    if dx or dy:
        x = _shift(x, dx, dy)
    flip = (torch.rand(n, generator=gen) < 0.5).view(n, 1, 1, 1)
    x = torch.where(flip, x.flip(-1), x)
    sigma = torch.where(torch.rand(n, generator=gen) < 0.4, u(0.0, blur_max), torch.zeros(n))
    x = gaussian_blur(x, sigma)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = (x - mean) * u(0.85, 1.15).view(n, 1, 1, 1) + mean
    x = x * u(0.92, 1.08, n, 3).view(n, 3, 1, 1) + u(-0.2, 0.2).view(n, 1, 1, 1)
    return x + torch.randn(x.shape, generator=gen) * u(0.0, 0.1).view(n, 1, 1, 1)


# Test-time views: what training taught the net to ignore (a mirror image, 1 px shifts). Averaging them reads
# a few-pixel cue (a skin nodule) several times over; on the validation cohort six views raised the weakest
# term's Pearson from 0.77 to 0.82. Notebook 04 chooses the number on validation.
VIEWS = (lambda x: x, lambda x: x.flip(-1), lambda x: _shift(x, 1, 0), lambda x: _shift(x, -1, 0),
         lambda x: _shift(x, 0, 1), lambda x: _shift(x, 0, -1))


class PhenotypeInstrument:
    """A trained :class:`PhenotypeNet` with its metadata (terms, training card, validation figures).
    ``meta["views"]`` (default 1): how many of :data:`VIEWS` each measurement averages."""

    kind = "pixel"

    def __init__(self, net: PhenotypeNet, meta: dict | None = None):
        self.net = net.eval()
        self.meta = dict(meta or {})
        self.terms = list(self.meta.get("terms", TERM_IDS))
        views = self.meta.get("views", 1)
        if not isinstance(views, int) or not 1 <= views <= len(VIEWS):
            raise ValueError(f"views must be an integer from 1 to {len(VIEWS)}, got {views!r}")
        self.views = views

    def with_views(self, views: int) -> "PhenotypeInstrument":
        """The same network, measuring with ``views`` test-time views (1 = the image as it is)."""
        return type(self)(self.net, dict(self.meta, views=views))

    @torch.no_grad()
    def _outputs(self, images, batch_size: int = 256) -> np.ndarray:
        images = np.asarray(images)
        out = np.empty((len(images), self.net.n_terms + 1), np.float32)
        for s in range(0, len(images), batch_size):
            x = to_input(images[s:s + batch_size])
            out[s:s + batch_size] = torch.stack([self.net(v(x)) for v in VIEWS[:self.views]]).mean(0).numpy()
        return out

    def measure(self, images, batch_size: int = 256) -> pd.DataFrame:
        """One row per image, one column per term: the estimated intensity (0 = absent, 1 = full)."""
        out = self._outputs(images, batch_size)
        return pd.DataFrame(out[:, :-1], columns=self.terms)

    def measure_with_age(self, images, batch_size: int = 256) -> tuple[pd.DataFrame, np.ndarray]:
        out = self._outputs(images, batch_size)
        return pd.DataFrame(out[:, :-1], columns=self.terms), out[:, -1] * AGE_SCALE + AGE_CENTRE

    def age(self, images, batch_size: int = 256) -> np.ndarray:
        return self._outputs(images, batch_size)[:, -1] * AGE_SCALE + AGE_CENTRE

    def save(self, folder) -> Path:
        """``folder/model.safetensors`` (weights) + ``folder/instrument.json`` (architecture, terms, card), each
        written atomically (:mod:`phenoface.modelio`)."""

        folder = Path(folder)
        save_model(folder / "model.safetensors", self.net.state_dict(),
                   dict(self.meta, kind=self.kind, width=self.net.width, terms=self.terms, version=VERSION),
                   kind=MODEL_KIND, card=folder / "instrument.json")
        return folder

    @classmethod
    def load(cls, folder) -> "PhenotypeInstrument":
        """Read what :meth:`save` wrote, without unpickling (a pickle-based file is refused)."""

        folder = Path(folder)
        check_not_pickle(folder, REBUILD)
        card, weights = folder / "instrument.json", folder / "model.safetensors"
        if not card.is_file() or not weights.is_file():
            raise FileNotFoundError(f"{folder} holds no saved phenotype instrument (instrument.json + "
                                    "model.safetensors): run notebook 04_image_profiles with the same DATA_DIR "
                                    "(run_all.sh --only 04)")
        state, meta = load_model(weights, kind=MODEL_KIND, rebuild=REBUILD, card=card)
        if meta.get("version") != VERSION:
            raise ValueError(f"{folder}: instrument version {meta.get('version')} but this code reads version "
                             f"{VERSION}; rerun notebook 04 (run_all.sh --only 04 --force)")
        try:
            net = PhenotypeNet(width=meta["width"], n_terms=len(meta["terms"]))
            net.load_state_dict(state)
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise ModelFileError(f"{folder} does not hold an instrument this code can read ({exc}); "
                                 f"{REBUILD}") from None
        return cls(net, meta)

    def __repr__(self):
        n = sum(p.numel() for p in self.net.parameters())
        return f"PhenotypeInstrument(width={self.net.width}, terms={len(self.terms)}, params={n:,}, views={self.views})"


def train_instrument(images, intensities, ages, epochs: int = 8, width: int = 16, seed: int = 0,
                     batch_size: int = 128, lr: float = 3e-3, blur_max: float = 1.2, threads: int | None = None,
                     progress: bool = True) -> PhenotypeInstrument:
    """Train on uint8 renders (N, 64, 64, 3), their term intensities (N, T) in [0, 1] and ages (N,) in years.

    Loss: mean squared error on the intensities plus a smooth-L1 on standardised age. One-cycle AdamW.
    Seeded and deterministic (same data + seed -> same weights on the same machine)."""
    images = np.asarray(images)
    y = np.asarray(intensities, np.float32)
    a = (np.asarray(ages, np.float32) - AGE_CENTRE) / AGE_SCALE
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
        raise ValueError(f"images must be uint8 (N, H, W, 3), got {images.dtype} {images.shape}")
    if len(y) != len(images) or len(a) != len(images):
        raise ValueError(f"{len(images)} images but {len(y)} intensity rows and {len(a)} ages")
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    old_threads = torch.get_num_threads()
    if threads:
        torch.set_num_threads(int(threads))
    deterministic = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        torch.manual_seed(seed)
        gen = torch.Generator().manual_seed(seed)
        net = PhenotypeNet(width=width, n_terms=y.shape[1])
        steps_per_epoch = max(1, len(images) // batch_size)
        opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs * steps_per_epoch,
                                                    pct_start=0.2)
        history, start = [], time.perf_counter()
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=epochs * steps_per_epoch, desc="phenotype instrument", leave=False)
        for epoch in range(epochs):
            net.train()
            order = torch.randperm(len(images), generator=gen).numpy()
            total = 0.0
            for b in range(steps_per_epoch):
                idx = np.sort(order[b * batch_size:(b + 1) * batch_size])
                x = augment(to_input(images[idx]), gen, blur_max=blur_max)
                out = net(x)
                loss = F.mse_loss(out[:, :-1], torch.from_numpy(y[idx])) + \
                    0.5 * F.smooth_l1_loss(out[:, -1], torch.from_numpy(a[idx]))
                if not torch.isfinite(loss):
                    raise FloatingPointError(f"instrument loss became {loss.item()} at epoch {epoch}; lower lr ({lr})")
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                total += float(loss.detach())
                if bar is not None:
                    bar.update(1)
            history.append(total / steps_per_epoch)
        if bar is not None:
            bar.close()
        meta = {"epochs": epochs, "seed": seed, "batch_size": batch_size, "lr": lr, "blur_max": blur_max,
                "train_images": int(len(images)), "train_seconds": round(time.perf_counter() - start, 1),
                "loss": [round(v, 5) for v in history], "terms": list(TERM_IDS)[:y.shape[1]]
                if y.shape[1] == len(TERM_IDS) else [f"term_{i}" for i in range(y.shape[1])]}
        return PhenotypeInstrument(net.eval(), meta)
    finally:
        torch.use_deterministic_algorithms(deterministic)
        torch.set_num_threads(old_threads)
