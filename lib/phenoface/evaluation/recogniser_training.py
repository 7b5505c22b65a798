"""Training the disease recogniser, and choosing its width and epochs on validation faces.

Generated faces will be judged by this recogniser, so it must survive what a generator does to an image:
training augments with Gaussian blur (sigma up to ``max_blur`` pixels, on half the faces), pixel noise,
per-channel colour and brightness / contrast jitter, small shifts and horizontal flips. Without blur in
training, top-1 fell from 0.64 to 0.37 under a blur of sigma 0.7 px (quick profile): a judge that scores
sharpness, not disease.

    >>> rec = train_recogniser(train.images, train.table["disease_id"], epochs=30, width=24, seed=0)
    >>> best, table = choose_recogniser(train, validation, grid=[(16, 20), (24, 30)], seed=0)
    >>> recogniser_report(best, test.images, test.table["disease_id"])   # top-1 + CI, blur, baselines
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from ..stats import bootstrap_ci
from .perturb import blur_images
from .recogniser import FACE_BOX, Recogniser, net_modules, to_tensor

__all__ = ["augment", "train_recogniser", "choose_recogniser", "recogniser_report", "majority_top1"]


def _gaussian_kernels(sigma, radius: int):
    """(N, 2r+1) normalised 1-D Gaussian kernels; sigma 0 gives a delta."""
    import torch

    x = torch.arange(-radius, radius + 1, dtype=torch.float32)
    s = sigma.clamp(min=1e-3)[:, None]
    k = torch.exp(-0.5 * (x[None] / s) ** 2)
    return k / k.sum(1, keepdim=True)


def augment(x, gen, max_blur: float = 1.2, blur_p: float = 0.5, noise: float = 8.0, shift: int = 3):
    """Seeded augmentation of a float batch (N, 3, H, W) in [-1, 1]: flips, one shift per batch (+-``shift``
    px), per-face Gaussian blur (sigma ~ U(0, ``max_blur``) px on a ``blur_p`` share of faces), per-channel
    colour gain (+-8 %), brightness / contrast jitter and Gaussian noise (sigma up to ``noise`` grey levels)."""
    import torch
    import torch.nn.functional as F

    n, c, h, w = x.shape
    flip = torch.rand(n, generator=gen) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    if shift > 0:
        xp = F.pad(x, (shift, shift, shift, shift), mode="replicate")
        dx, dy = torch.randint(0, 2 * shift + 1, (2,), generator=gen).tolist()
        x = xp[..., dy:dy + h, dx:dx + w]
    if max_blur > 0 and blur_p > 0:
        sigma = torch.rand(n, generator=gen) * max_blur
        sigma = torch.where(torch.rand(n, generator=gen) < blur_p, sigma, torch.zeros(n))
        r = max(1, int(np.ceil(3 * max_blur)))
        k = _gaussian_kernels(sigma, r).repeat_interleave(c, 0)  # (N*3, 2r+1)
        y = F.pad(x.reshape(1, n * c, h, w), (r, r, r, r), mode="replicate")
        y = F.conv2d(y, k[:, None, :, None], groups=n * c)
        x = F.conv2d(y, k[:, None, None, :], groups=n * c).reshape(n, c, h, w)
    gain = 1.0 + 0.08 * (torch.rand(n, c, 1, 1, generator=gen) * 2 - 1)
    contrast = 1.0 + 0.15 * (torch.rand(n, 1, 1, 1, generator=gen) * 2 - 1)
    bias = 0.1 * (torch.rand(n, 1, 1, 1, generator=gen) * 2 - 1)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = (x - mean) * contrast + mean
    x = x * gain + bias
    if noise > 0:
        amp = torch.rand(n, 1, 1, 1, generator=gen) * (noise / 127.5)
        x = x + amp * torch.randn(x.shape, generator=gen)
    return x.clamp(-1, 1)


def train_recogniser(images, labels, epochs: int = 10, seed: int = 0, batch_size: int = 64, lr: float = 3e-3,
                     embed_dim: int = 64, width: int = 24, input_size: int = 48, crop=FACE_BOX, augment_images: bool = True,
                     max_blur: float = 1.2, gallery_mode: str = "nearest", progress: bool = False) -> Recogniser:
    """Train the embedding + cosine head on (images uint8 (N,H,W,3), labels) and set the gallery to
    the training images. Seeded and deterministic on CPU. ``augment_images=False`` trains on clean faces
    (tests); ``max_blur`` bounds the blur augmentation (0 = none).

    A plain torch loop rather than a Lightning Trainer: on a 2-core CPU the whole fit is seconds to
    a minute, where the Trainer's start-up, logging folders and callbacks would be a sizeable share
    and would add nothing (no checkpoints, devices or precision to manage at this size).
    """
    import torch
    import torch.nn.functional as F

    labels = np.asarray(labels).astype(str)
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} labels")
    classes = sorted(set(labels))
    if len(classes) < 2:
        raise ValueError("the recogniser needs at least two classes")
    y = torch.from_numpy(np.array([classes.index(c) for c in labels], np.int64))
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    Net, Head = net_modules()
    net = Net(embed_dim, width, input_size, crop)
    head = Head(embed_dim, len(classes))
    x_all = to_tensor(images, input_size, crop)  # (N, 3, S, S) float: 2048 faces at 48 px = 57 MB
    params = list(net.parameters()) + list(head.parameters())
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=1e-4)
    steps_per_epoch = max(1, int(np.ceil(len(y) / batch_size)))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=max(1, epochs * steps_per_epoch),
                                                pct_start=0.2)
    history = {"loss": [], "train_acc": [], "epochs": int(epochs), "n": int(len(y)), "seed": int(seed),
               "width": int(width), "max_blur": float(max_blur) if augment_images else 0.0}
    t0 = time.perf_counter()
    net.train()
    for epoch in range(epochs):
        perm = torch.randperm(len(y), generator=gen)
        tot, correct = 0.0, 0
        for s in range(0, len(y), batch_size):
            idx = perm[s:s + batch_size]
            xb = x_all[idx]
            if augment_images:
                xb = augment(xb, gen, max_blur=max_blur)
            logits = head(net(xb))
            loss = F.cross_entropy(logits, y[idx], label_smoothing=0.05)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            tot += float(loss.detach()) * len(idx)
            correct += int((logits.argmax(1) == y[idx]).sum())
        history["loss"].append(tot / len(y))
        history["train_acc"].append(correct / len(y))
        if progress:
            print(f"epoch {epoch + 1}/{epochs}: loss {history['loss'][-1]:.3f} acc {history['train_acc'][-1]:.3f}")
    history["seconds"] = time.perf_counter() - t0
    rec = Recogniser(net.eval(), classes, history=history)
    rec.set_gallery(images, labels, mode=gallery_mode)
    return rec


def choose_recogniser(train_images, train_labels, val_images, val_labels, grid, seed: int = 0, blur: float = 0.7,
                      **kwargs) -> tuple[Recogniser, pd.DataFrame]:
    """Train one recogniser per (width, epochs) in ``grid`` on the training faces and keep the one with the
    best validation score: the mean of clean and blurred (sigma ``blur``) validation top-1, so the choice
    also rewards robustness. Returns (best recogniser, one row per candidate). Test faces play no part."""
    rows, best, best_score = [], None, -np.inf
    val_blur = blur_images(val_images, blur)
    for width, epochs in grid:
        rec = train_recogniser(train_images, train_labels, epochs=int(epochs), width=int(width), seed=seed, **kwargs)
        clean = rec.evaluate(val_images, val_labels, k=1)["top1"]
        blurred = rec.evaluate(val_blur, val_labels, k=1)["top1"]
        score = 0.5 * (clean + blurred)
        rows.append({"width": int(width), "epochs": int(epochs), "val_top1": clean, f"val_top1_blur{blur:g}": blurred,
                     "val_score": score, "train_seconds": rec.history["seconds"]})
        if score > best_score:
            best, best_score = rec, score
    table = pd.DataFrame(rows)
    table["chosen"] = table["val_score"] == best_score
    return best, table


def majority_top1(train_labels, test_labels) -> float:
    """Top-1 of always answering the most frequent training class (the majority-class baseline)."""
    train_labels = np.asarray(train_labels).astype(str)
    values, counts = np.unique(train_labels, return_counts=True)
    return float((np.asarray(test_labels).astype(str) == values[counts.argmax()]).mean())


def recogniser_report(rec: Recogniser, images, labels, train_labels=None, blur: float = 0.7, k: int = 5,
                      seed: int = 0) -> dict:
    """Test figures of a recogniser: top-1 with a 95 % bootstrap interval over faces, top-k, top-1 on faces
    blurred with sigma ``blur``, chance and majority-class lines, the confusion matrix."""

    res = rec.evaluate(images, labels, k=k)
    blurred = rec.evaluate(blur_images(images, blur), labels, k=k)
    _, ci = bootstrap_ci(res["hits1"], seed=seed)
    _, ci_blur = bootstrap_ci(blurred["hits1"], seed=seed)
    out = {"top1": res["top1"], "top1_ci": list(ci), f"top{k}": res[f"top{k}"], "top1_blur": blurred["top1"],
           "top1_blur_ci": list(ci_blur), f"top{k}_blur": blurred[f"top{k}"], "blur_sigma": float(blur),
           "chance_top1": res["chance_top1"], f"chance_top{k}": res[f"chance_top{k}"], "n": res["n"],
           "confusion": res["confusion"], "confusion_blur": blurred["confusion"], "ranked": res["ranked"]}
    out["majority_top1"] = majority_top1(train_labels if train_labels is not None else labels, labels)
    return out
