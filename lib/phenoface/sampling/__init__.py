"""Drawing faces from a trained model: diffusers schedulers, classifier-free and compositional guidance.

    >>> from phenoface.model import load_model
    >>> from phenoface.sampling import generate
    >>> model = load_model("data/processed/quick/model")
    >>> imgs = generate(model, disease="OMIM:190685", terms={"HP:0000316": 1.0}, age=8.0, sex="F",
    ...                 severity=1.0, n=8, seed=0)   # uint8 (8, 64, 64, 3)

Guidance follows Composable Diffusion (Liu et al. 2022): with the *context* ``c0`` (age and sex), one
guided noise prediction per concept ``c_i`` (the disease with its profile and severity; each requested
term), weighted and summed::

    eps = eps(null) + g * [ w_0 * (eps(c0) - eps(null)) + sum_i w_i * (eps(c0 + c_i) - eps(c0)) ]

The context is a concept too: ``context_weight`` (``w_0``, default 1) strengthens (> 1) or weakens (< 1) the
pull towards the requested age and sex, separately from the disease and its terms.

A negative weight subtracts a concept: ``terms={"HP:0000316": -1.0}`` draws *away* from hypertelorism,
``negative="UNAFFECTED"`` away from unaffected faces. The bracket is ``(w_0 - sum_i w_i) * eps(c0) - w_0 * eps(null) +
sum_i w_i * eps(c0 + c_i)``, so when the weights sum to ``w_0`` (one disease, or one term, at the default ``w_0 = 1``:
most requests) ``eps(c0)`` cancels and :class:`Guide` does not compute it: two UNet evaluations per step instead of three. A term's intensity is ``min(|w|, 1)`` and its
sign the direction (a weight may be one value per face, of one sign). A disease never seen in images (zero-shot) is drawn from its KG profile by passing
the profile's terms (:func:`profile_terms`).
"""

from __future__ import annotations

import numpy as np
import torch

from ..cohort.terms import TERM_IDS, TERMS
from ..conditioning import Condition
from ..labels import UNAFFECTED

SCHEDULERS = ("dpm++", "ddim", "ddpm")
LIMITS = {"guidance": (0.0, 30.0), "steps": (1, 1000), "severity": (0.0, 1.0), "age": (0.0, 100.0), "n": (1, 4096),
          "context_weight": (0.0, 10.0)}


def _check(name, value):
    lo, hi = LIMITS[name]
    values = np.atleast_1d(np.asarray(value, dtype=object))
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or not lo <= v <= hi:
            raise ValueError(f"{name} = {v!r} is out of range: valid {lo} to {hi}")


def _per_face(value, n, name):
    """A scalar for every face, or one value per face."""
    arr = np.asarray(value, dtype=object)
    if arr.ndim == 0:
        return np.full(n, value, dtype=object)
    if len(arr) != n:
        raise ValueError(f"{name}: {len(arr)} values for n = {n} faces (give one value, or one per face)")
    return arr


def make_scheduler(config: dict, name: str = "dpm++"):
    """A diffusers scheduler built from the training scheduler's config: DPM-Solver++ (multistep, the
    default: 20-25 steps), DDIM or DDPM (the training chain, 1000 steps)."""
    from diffusers import DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler

    if name == "dpm++":
        return DPMSolverMultistepScheduler.from_config(config, algorithm_type="dpmsolver++", solver_order=2)
    if name == "ddim":
        return DDIMScheduler.from_config(config)
    if name == "ddpm":
        return DDPMScheduler.from_config(config)
    raise ValueError(f"unknown scheduler {name!r}; choose one of {', '.join(SCHEDULERS)}")


def _check_terms(terms: dict | None) -> None:
    for t, w in (terms or {}).items():
        if t not in TERMS:
            raise KeyError(f"unknown term {t!r}; renderable terms: " + ", ".join(f"{k} ({n})" for k, n in TERMS.items()))
        w = np.asarray(w, float)
        if not np.isfinite(w).all():
            raise ValueError(f"term {t}: weight {w!r} is not a finite number")
        if (w > 0).any() and (w < 0).any():
            raise ValueError(f"term {t}: weights of both signs in one request (a concept is added or subtracted)")


def _term_concept(t: str, w, n: int) -> tuple[np.ndarray, float]:
    """(per-face term vectors (n, T), guidance sign) of one term request: intensity min(|w|, 1)."""
    w = np.broadcast_to(np.asarray(w, float), (n,))
    vec = np.zeros((n, len(TERM_IDS)), np.float32)
    vec[:, TERM_IDS.index(t)] = np.minimum(np.abs(w), 1.0)
    return vec, (-1.0 if (w < 0).any() else 1.0)


def profile_terms(model, disease: str, top_k: int | None = None, min_weight: float = 0.05) -> dict[str, float]:
    """The disease's profile weights over the renderable terms (strongest first), e.g. for zero-shot drawing."""
    model.diseases.check(disease)
    _, prof = model.diseases.lookup([disease])
    w = {t: float(v) for t, v in zip(TERM_IDS, prof[0]) if v >= min_weight}
    ranked = dict(sorted(w.items(), key=lambda kv: -kv[1]))
    return dict(list(ranked.items())[:top_k]) if top_k else ranked


def zero_shot_terms(model, disease: str) -> dict[str, float]:
    """What a disease never seen in images is drawn from: every renderable term of its (KG) profile with
    weight >= 0.05, each at its profile weight as intensity (composed, one concept per term)."""
    return profile_terms(model, disease)


def _condition(model, n, disease, term_vec, age, sex, severity, groups) -> Condition:
    emb, prof = model.diseases.lookup([disease] * n)
    cond = Condition.from_arrays(emb, prof, np.broadcast_to(term_vec, (n, len(TERM_IDS))), _per_face(age, n, "age").astype(float),
                                 list(_per_face(sex, n, "sex")), _per_face(severity, n, "severity").astype(float))
    return cond.only(groups)


def concepts(model, n, disease, terms, age, sex, severity, negative) -> tuple[Condition, Condition | None, list]:
    """(null, context, [(condition, weight), ...]) for :func:`generate`. A baseline of notebook 01 (a model
    whose ``method`` is not 'profile') knows its disease token only: plain classifier-free guidance, no
    context (None), no terms; its age, sex and severity are not asked for."""
    zero = np.zeros(len(TERM_IDS), np.float32)
    null = _condition(model, n, None, zero, age, sex, 0.0, ())
    if getattr(model, "method", "profile") != "profile":
        if terms:
            raise ValueError(f"the {model.method} baseline has no term tokens: it draws a disease (or {UNAFFECTED}) only")
        only = ("disease",)
        parts = [] if disease in (None, "") else [(_condition(model, n, disease, zero, age, sex, 0.0, only), 1.0)]
        negs = [negative] if isinstance(negative, str) else list(negative or [])
        return null, None, parts + [(_condition(model, n, d, zero, age, sex, 0.0, only), -1.0) for d in negs]
    ctx_groups = ("age", "sex")
    context = _condition(model, n, None, zero, age, sex, 0.0, ctx_groups)
    out = []
    if disease not in (None, ""):
        sev = severity if disease != UNAFFECTED else 0.0 * np.asarray(severity, float)
        out.append((_condition(model, n, disease, zero, age, sex, sev, (*ctx_groups, "disease", "profile", "severity")), 1.0))
    for t, w in (terms or {}).items():
        vec, sign = _term_concept(t, w, n)
        out.append((_condition(model, n, None, vec, age, sex, 0.0, (*ctx_groups, "terms")), sign))
    for d in ([negative] if isinstance(negative, str) else list(negative or [])):
        out.append((_condition(model, n, d, zero, age, sex, 0.0 * np.asarray(severity, float) if d == UNAFFECTED else severity,
                               (*ctx_groups, "disease", "profile", "severity")), -1.0))
    return null, context, out


class Guide:
    """The guided noise prediction of :func:`generate` for a fixed set of conditions (null, context,
    weighted concepts; see the module docstring), encoded once. :mod:`phenoface.editing` uses it too."""

    def __init__(self, model, null: Condition, context: Condition | None, parts: list, context_weight: float = 1.0):
        self.weights = [float(w) for _, w in parts]
        self.context_weight = float(context_weight)
        if context is None and self.context_weight != 1.0:
            raise ValueError(f"context_weight = {context_weight!r}: this model has no age or sex tokens to weigh "
                             "(a disease-only baseline); leave it at 1")
        # eps(c0)'s coefficient is w_0 - sum(w) (module docstring): zero means it cancels, so skip it
        has_ctx = context is not None and abs(self.context_weight - sum(self.weights)) > 1e-9
        self.model, self.n, self.has_ctx = model, len(null), has_ctx
        conds = Condition.cat([null, *([context] if self.has_ctx else []), *[c for c, _ in parts]])
        self.first = 2 if self.has_ctx else 1
        self.k = self.first + len(parts)
        self.device = next(model.unet.parameters()).device
        self.states = model.encoder(conds.to(self.device))

    def __call__(self, x: torch.Tensor, t, guidance: float) -> torch.Tensor:
        n, c, s = self.n, x.shape[1], x.shape[2]
        pred = self.model.unet(x.repeat(self.k, 1, 1, 1), t, encoder_hidden_states=self.states).sample.view(self.k, n, c, s, s)
        e_null = pred[0]
        e_ctx = pred[1] if self.has_ctx else e_null
        e = self.context_weight * (e_ctx - e_null)
        for i, w in enumerate(self.weights):
            e = e + w * (pred[self.first + i] - e_ctx)
        return e_null + guidance * e


def denoise(guide: Guide, latents: torch.Tensor, sched, timesteps, guidance: float, generator=None,
            progress: bool = False) -> torch.Tensor:
    """Run ``sched`` over ``timesteps`` from ``latents`` with the guided prediction ``guide``."""
    it = timesteps
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, desc="sampling", leave=False)
    for t in it:
        eps = guide(sched.scale_model_input(latents, t), t, guidance)
        kw = {} if generator is None else {"generator": generator}  # DDIMInverseScheduler.step takes none
        latents = sched.step(eps, t, latents, **kw).prev_sample
    return latents


@torch.no_grad()
def generate(model, disease: str | None = None, terms: dict | None = None, age=30.0, sex="F",
             severity=1.0, n: int = 8, seed: int = 0, steps: int = 25, guidance: float = 3.0,
             scheduler: str = "dpm++", negative=None, shared_noise: bool = False, progress: bool = False,
             return_latents: bool = False, context_weight: float = 1.0):
    """uint8 (n, H, W, 3) faces; see the module docstring for the guidance (``context_weight`` is ``w_0``,
    the weight of age and sex). Deterministic for a seed.
    ``age``, ``sex``, ``severity`` and each term's weight are one value for all faces or one per face;
    ``shared_noise`` starts every face from the same noise (a controlled series: only the condition differs)."""
    for name, value in (("guidance", guidance), ("steps", steps), ("severity", severity), ("age", age), ("n", n),
                        ("context_weight", context_weight)):
        _check(name, value)
    model.diseases.check(disease)
    _check_terms(terms)  # unknown ids -> KeyError listing the known ones
    null, context, parts = concepts(model, int(n), disease, terms, age, sex, severity, negative)
    guide = Guide(model, null, context, parts, context_weight=context_weight)
    sched = make_scheduler(model.scheduler, scheduler)
    sched.set_timesteps(int(steps))
    g = torch.Generator(device="cpu").manual_seed(int(seed))
    c, s = model.unet.config.in_channels, model.unet.config.sample_size
    shape = (1 if shared_noise else int(n), c, s, s)
    latents = (torch.randn(shape, generator=g) * sched.init_noise_sigma).expand(int(n), c, s, s).contiguous()
    latents = denoise(guide, latents.to(guide.device), sched, sched.timesteps, guidance, generator=g, progress=progress)
    if return_latents:
        return latents
    return decode(model, latents)


@torch.no_grad()
def decode(model, latents: torch.Tensor, batch_size: int = 64) -> np.ndarray:
    from ..model.autoencoder import to_uint8

    out = [to_uint8(model.vae.decode(latents[i:i + batch_size] / model.latent_scale).sample)
           for i in range(0, len(latents), batch_size)]
    return torch.cat(out).cpu().numpy()
