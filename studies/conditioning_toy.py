"""Does a term's *amount* reach the generated latent? A small, fast case to choose the conditioning design on
before spending CPU hours on faces:

    .venv/bin/python -m studies.conditioning_toy [--steps 1500] [--variants format1,tokens,embedding,both,both_p05]

The data: tiny latents ``x0 = (2a - 1) * P + 0.1 * noise`` where ``a`` is one term's amount (0 for half the
samples, else uniform in [0, 1]) and ``P`` a fixed random pattern; every other term varies independently and
does nothing. A tiny ``UNet2DConditionModel`` and the project's :class:`ConditionEncoder` train on them with the
project's loss and dropout. Then the term alone is asked for at 0, 1/4, 1/2, 3/4, 1 from the same noise
(``generate``, joint concept, guidance 3) and the latent's projection on ``P`` is read: a design that carries
the amount gives a rising ladder (Spearman 1, span up to 2); one that carries presence only gives a step at
0 and a flat line after it (format 1's LayerNorm after the scale). Variants:

- ``format1``: conditioning format 1 (amount multiplied before one LayerNorm per token; groups dropped independently);
- ``tokens``: format 2 with the amount added to the token after its normalisation only;
- ``embedding``: format 2 with the amounts only in the UNet's added (projection class) embedding;
- ``both``: format 2 as trained (tokens and added embedding; all terms stated in 0.8 of term views);
- ``both_p05``: the same with all terms stated in only half the term views (the rest a random subset).

Prints and writes ``reports/studies/conditioning_toy.json``: per variant, the mean Spearman of projection vs
amount over seeds, the mean span (projection at 1 minus at 0), the same for an unrelated term (should be
~0), and the seconds.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from phenoface.benchmarks import results_path
from phenoface.config import write_json

VARIANTS = {"format1": dict(version=1), "tokens": dict(amounts="tokens"), "embedding": dict(amounts="embedding"),
            "both": dict(amounts="both"), "both_p05": dict(amounts="both", p_all_terms=0.5)}


def run(variant: str, steps: int, seeds: int = 4, n: int = 512, batch: int = 32, lr: float = 2e-3) -> dict:
    import torch

    from phenoface.cohort.terms import TERM_IDS
    from phenoface.conditioning import Condition, drop_concepts, drop_groups
    from phenoface.model.components import autoencoder_config, size_config, unet_config
    from phenoface.model.data import DiseaseTable
    from phenoface.model.diffusion import DiffusionModule
    from phenoface.model.store import ConditionedModel
    from phenoface.sampling import generate
    from phenoface.stats import spearman

    spec = VARIANTS[variant]
    t0 = time.perf_counter()
    torch.manual_seed(0)
    cfg = size_config("tiny")
    t = len(TERM_IDS)
    text = np.random.default_rng(0).normal(size=(t, 384)).astype(np.float32)
    dm = DiffusionModule(autoencoder_config(cfg, 32), unet_config(cfg, 32), 4, text, total_steps=steps,
                         conditioning_version=spec.get("version", 2), amounts=spec.get("amounts", "both"))
    c, s = dm.unet.config.in_channels, dm.unet.config.sample_size
    rng = np.random.default_rng(0)
    pattern = torch.as_tensor(rng.normal(size=(c, s, s)).astype(np.float32))
    pattern /= pattern.std()
    amounts = (rng.random((n, t)) * (rng.random((n, t)) < 0.5)).astype(np.float32)
    lat = (2 * torch.as_tensor(amounts[:, 0]) - 1)[:, None, None, None] * pattern[None] + 0.1 * torch.randn(n, c, s, s)
    cond = Condition.from_arrays(np.zeros((n, 4)), np.zeros((n, t)), amounts, rng.uniform(2, 60, n),
                                 np.where(rng.random(n) < 0.5, "F", "M"), np.zeros(n))
    opt = torch.optim.AdamW(list(dm.unet.parameters()) + list(dm.encoder.parameters()), lr=lr)
    g = torch.Generator().manual_seed(0)
    for _ in range(steps):
        idx = torch.randint(0, n, (batch,), generator=g)
        if spec.get("version", 2) == 1:
            view = drop_groups(cond.index(idx), 0.15, 0.1, g)
        else:
            view, _ = drop_concepts(cond.index(idx), generator=g, p_all_terms=spec.get("p_all_terms", 0.8))
        loss = dm.loss(lat[idx], view, generator=g)
        opt.zero_grad()
        loss.backward()
        opt.step()
    dm.eval()
    model = ConditionedModel(dm.vae, dm.unet, dm.encoder, DiseaseTable([], np.zeros((0, 4)), np.zeros((0, t))), 1.0, 32,
                             dict(dm.noise_scheduler.config), {})
    levels = np.linspace(0, 1, 5)
    out = {}
    for name, term in (("term", TERM_IDS[0]), ("unrelated", TERM_IDS[1])):
        rho, span = [], []
        for seed in range(seeds):
            z = generate(model, terms={term: levels}, n=len(levels), seed=seed, steps=10, guidance=3.0, shared_noise=True,
                         return_latents=True, age=20.0)
            proj = (z * pattern).mean(dim=(1, 2, 3)).numpy()
            rho.append(spearman(levels, proj))
            span.append(float(proj[-1] - proj[0]))
        out[f"{name}_spearman"] = float(np.nanmean(rho))
        out[f"{name}_span"] = float(np.mean(span))
    out["seconds"] = round(time.perf_counter() - t0, 1)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--seeds", type=int, default=4)
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=results_path("studies", "conditioning_toy"))
    a = ap.parse_args(argv)
    import torch

    torch.set_num_threads(a.threads)
    results = {"steps": a.steps, "seeds": a.seeds}
    for v in a.variants.split(","):
        results[v] = run(v.strip(), a.steps, a.seeds)
        print(v, json.dumps(results[v]), flush=True)
    write_json(a.out, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
