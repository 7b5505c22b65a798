"""Drawing faces from a trained model: diffusers schedulers, classifier-free and compositional guidance.

    >>> from phenoface.model import load_model
    >>> from phenoface.sampling import generate
    >>> model = load_model("data/processed/quick/model")
    >>> imgs = generate(model, disease="OMIM:190685", terms={"HP:0000316": 1.0}, age=8.0, sex="F",
    ...                 severity=1.0, n=8, seed=0)   # uint8 (8, 64, 64, 3)

Guidance follows Composable Diffusion (Liu et al. 2022): with the *context* ``c0`` (age and sex), guided noise
predictions of concepts ``c_i``, weighted and summed::

    eps = eps(null) + g * [ w_0 * (eps(c0) - eps(null)) + sum_i w_i * (eps(c_i) - eps(c0)) ]

By default (``compose="joint"``) everything asked for is **one** concept: the disease (with its profile and
severity) and every requested term at its amount, in one condition, so the effective guidance is ``g`` however
many terms a request names. A term the request does not name is *unknown* to a format-2 model (its own null
token), not absent; ``-w`` asks for the term to be absent. ``compose="sum"`` is Composable Diffusion's AND: one
concept per term and one for the disease, each at its weight (a request of k concepts is then guided k times as
hard). The context is a concept too: ``context_weight`` (``w_0``, default 1) strengthens (> 1) or weakens (< 1)
the pull towards the requested age and sex.

``negative`` subtracts a disease: ``negative="UNAFFECTED"`` draws away from unaffected faces (weight -1, shared
among several negatives, so the positive and the negatives are one difference). *Unaffected* is the trained
unaffected token, never "no disease given". When the weights sum to ``w_0`` (no negative, ``w_0 = 1``: most
requests) ``eps(c0)`` cancels and :class:`Guide` does not compute it: two UNet evaluations per step.
A disease never seen in images (zero-shot) is drawn from its KG profile as one concept: the profile's terms at
the amounts a patient of that severity expresses (:func:`zero_shot_request`).
DPM-Solver++ runs on ``"trailing"`` timestep spacing: its first step is at the last training timestep, where
pure noise is (``"leading"`` would start at t = 900 of 1000 from noise that belongs to t = 999).
"""

from __future__ import annotations

import numpy as np
import torch

from ..cohort.terms import TERM_IDS, TERMS
from ..conditioning import Condition, unet_kwargs
from ..labels import UNAFFECTED
from ..pixels import to_uint8

SCHEDULERS = ("dpm++", "ddim", "ddpm")
LIMITS = {"guidance": (0.0, 30.0), "steps": (1, 1000), "severity": (0.0, 1.0), "age": (0.0, 100.0), "n": (1, 4096),
          "context_weight": (0.0, 10.0)}


def _check(name, value):
    lo, hi = LIMITS[name]
    values = np.atleast_1d(np.asarray(value, dtype=object))
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or not lo <= v <= hi:
            raise ValueError(f"{name} = {v!r} is out of range: valid {lo} to {hi}")


def _check_integer(name, value):
    """A whole number (an int, or a float that is one), never silently truncated."""
    ok = not isinstance(value, bool) and isinstance(value, (int, np.integer, float, np.floating)) and \
        np.isfinite(value) and float(value) == int(value)
    if not ok:
        raise ValueError(f"{name} = {value!r} must be a whole number")
    if name == "seed" and not 0 <= int(value) < 2 ** 63:
        raise ValueError(f"seed = {value!r} is out of range: valid 0 to 2**63 - 1")


def _per_face(value, n, name):
    """A scalar for every face, or one value per face."""
    arr = np.asarray(value, dtype=object)
    if arr.ndim == 0:
        return np.full(n, value, dtype=object)
    if len(arr) != n:
        raise ValueError(f"{name}: {len(arr)} values for n = {n} faces (give one value, or one per face)")
    return arr


def make_scheduler(config: dict, name: str = "dpm++", spacing: str = "trailing"):
    """A diffusers scheduler built from the training scheduler's config: DPM-Solver++ (multistep, the
    default: 10-25 steps; ``spacing`` "trailing" starts at the last training timestep, "leading" is diffusers'
    older default), DDIM or DDPM (the training chain, 1000 steps)."""
    from diffusers import DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler

    if spacing not in ("trailing", "leading", "linspace"):
        raise ValueError(f"timestep spacing {spacing!r}: choose trailing, leading or linspace")
    if name == "dpm++":
        return DPMSolverMultistepScheduler.from_config(config, algorithm_type="dpmsolver++", solver_order=2,
                                                       timestep_spacing=spacing)
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


def _joint_terms(terms: dict | None, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(amounts (n, T), stated (n, T)) of a whole request: each named term at min(w, 1), at 0 (absent) for a
    negative weight; the terms it does not name are unknown."""
    amounts = np.zeros((n, len(TERM_IDS)), np.float32)
    stated = np.zeros((n, len(TERM_IDS)), bool)
    for t, w in (terms or {}).items():
        w = np.broadcast_to(np.asarray(w, float), (n,))
        j = TERM_IDS.index(t)
        amounts[:, j] = np.clip(w, 0.0, 1.0)
        stated[:, j] = True
    return amounts, stated


def profile_terms(model, disease: str, top_k: int | None = None, min_weight: float = 0.05) -> dict[str, float]:
    """The disease's profile weights over the renderable terms (strongest first): how often a patient shows each."""
    model.diseases.check(disease)
    _, prof = model.diseases.lookup([disease])
    w = {t: float(v) for t, v in zip(TERM_IDS, prof[0]) if v >= min_weight}
    ranked = dict(sorted(w.items(), key=lambda kv: -kv[1]))
    return dict(list(ranked.items())[:top_k]) if top_k else ranked


def zero_shot_terms(model, disease: str) -> dict[str, float]:
    """Every renderable term of the disease's (KG) profile with weight >= 0.05, at its profile weight (a
    frequency: how many patients show it). :func:`zero_shot_request` turns it into what a patient shows."""
    return profile_terms(model, disease)


# A patient's expressed term amount is their severity times a jitter the cohort draws in U(0.8, 1): its mean.
EXPRESSION = 0.9


def zero_shot_request(model, disease: str, severity=1.0, n: int = 1, seed: int = 0) -> dict[str, np.ndarray]:
    """What ``n`` patients of a disease never seen in images show, drawn from its profile: each term present with
    its profile frequency (per face, seeded), at the amount ``severity * EXPRESSION`` (an expressed amount, not
    the frequency); every other renderable term stated absent. One amount per face for every term: pass it as
    ``terms=`` (one joint concept)."""
    freq = profile_terms(model, disease, min_weight=0.0)
    rng = np.random.default_rng([int(seed), 808])
    sev = np.broadcast_to(np.clip(np.asarray(severity, float), 0.0, 1.0), (n,))
    out = {}
    for t in TERM_IDS:
        present = rng.random(n) < freq.get(t, 0.0)
        out[t] = np.where(present, sev * EXPRESSION, 0.0)
    return out


def _condition(model, n, disease, term_vec, age, sex, severity, groups, stated=None) -> Condition:
    emb, prof = model.diseases.lookup([disease] * n)
    cond = Condition.from_arrays(emb, prof, np.broadcast_to(term_vec, (n, len(TERM_IDS))),
                                 _per_face(age, n, "age").astype(float), list(_per_face(sex, n, "sex")),
                                 _per_face(severity, n, "severity").astype(float),
                                 known=None if stated is None else np.broadcast_to(stated, (n, len(TERM_IDS))),
                                 unaffected=disease == UNAFFECTED)
    return cond.only(groups)


COMPOSE = ("joint", "sum")


def concepts(model, n, disease, terms, age, sex, severity, negative, compose: str = "joint") -> tuple[Condition, Condition | None, list]:
    """(null, context, [(condition, weight), ...]) for :func:`generate` (see the module docstring). A baseline of
    notebook 01 (a model whose ``method`` is not 'profile') knows its disease token only: plain classifier-free
    guidance, no context (None), no terms; its age, sex and severity are not asked for."""
    if compose not in COMPOSE:
        raise ValueError(f"compose = {compose!r}: choose one of {', '.join(COMPOSE)}")
    zero = np.zeros(len(TERM_IDS), np.float32)
    v2 = getattr(model.encoder, "version", 1) >= 2
    none_stated = np.zeros(len(TERM_IDS), bool) if v2 else None  # format 1 has no "unknown": 0 = absent
    null = _condition(model, n, None, zero, age, sex, 0.0, ())
    negs = [negative] if isinstance(negative, str) else list(negative or [])
    if getattr(model, "method", "profile") != "profile":
        if terms:
            raise ValueError(f"the {model.method} baseline has no term tokens: it draws a disease (or {UNAFFECTED}) only")
        only = ("disease",)
        parts = [] if disease in (None, "") else [(_condition(model, n, disease, zero, age, sex, 0.0, only), 1.0)]
        return null, None, parts + [(_condition(model, n, d, zero, age, sex, 0.0, only), -1.0 / len(negs)) for d in negs]
    ctx_groups = ("age", "sex")
    disease_groups = (*ctx_groups, "disease", "profile", "severity")
    context = _condition(model, n, None, zero, age, sex, 0.0, ctx_groups, none_stated)
    sev = 0.0 * np.asarray(severity, float) if disease == UNAFFECTED else severity
    out = []
    if compose == "joint" and (terms or disease not in (None, "")):
        amounts, stated = _joint_terms(terms, n)
        groups = (disease_groups if disease not in (None, "") else ctx_groups) + (("terms",) if terms else ())
        if not v2:
            stated = None  # format 1: every term is stated (0 = absent)
        out.append((_condition(model, n, disease, amounts, age, sex, sev, groups, stated), 1.0))
    elif compose == "sum":
        if disease not in (None, ""):
            out.append((_condition(model, n, disease, zero, age, sex, sev, disease_groups, none_stated), 1.0))
        for t, w in (terms or {}).items():
            vec, sign = _term_concept(t, w, n)
            one = None
            if v2:
                one = np.zeros(len(TERM_IDS), bool)
                one[TERM_IDS.index(t)] = True
            out.append((_condition(model, n, None, vec, age, sex, 0.0, (*ctx_groups, "terms"), one), sign))
    for d in negs:
        out.append((_condition(model, n, d, zero, age, sex, 0.0 * np.asarray(severity, float) if d == UNAFFECTED else severity,
                               disease_groups, none_stated), -1.0 / len(negs)))
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
        self.kwargs = unet_kwargs(model.encoder, conds.to(self.device))

    def __call__(self, x: torch.Tensor, t, guidance: float) -> torch.Tensor:
        n, c, s = self.n, x.shape[1], x.shape[2]
        pred = self.model.unet(x.repeat(self.k, 1, 1, 1), t, **self.kwargs).sample.view(self.k, n, c, s, s)
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
             return_latents: bool = False, context_weight: float = 1.0, compose: str = "joint",
             spacing: str = "trailing"):
    """uint8 (n, H, W, 3) faces; see the module docstring for the guidance (``context_weight`` is ``w_0``,
    the weight of age and sex). Deterministic for a seed.
    ``age``, ``sex``, ``severity`` and each term's weight are one value for all faces or one per face;
    ``shared_noise`` starts every face from the same noise (a controlled series: only the condition differs);
    ``compose`` and ``spacing``: see the module docstring."""
    for name, value in (("n", n), ("seed", seed), ("steps", steps)):
        _check_integer(name, value)
    for name, value in (("guidance", guidance), ("steps", steps), ("severity", severity), ("age", age), ("n", n),
                        ("context_weight", context_weight)):
        _check(name, value)
    model.diseases.check(disease)
    _check_terms(terms)  # unknown ids -> KeyError listing the known ones
    null, context, parts = concepts(model, int(n), disease, terms, age, sex, severity, negative, compose=compose)
    guide = Guide(model, null, context, parts, context_weight=context_weight)
    sched = make_scheduler(model.scheduler, scheduler, spacing=spacing)
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
    out = [to_uint8(model.vae.decode(latents[i:i + batch_size] / model.latent_scale).sample)
           for i in range(0, len(latents), batch_size)]
    return torch.cat(out).cpu().numpy()
