import numpy as np
import pytest
import torch

from phenoface.cohort.terms import TERM_IDS
from phenoface.conditioning import GROUPS, Condition, ConditionEncoder, drop_groups, sex_code

T = len(TERM_IDS)
STEPS_TOY = 1500  # the toy's training steps: at 600 and 1000 the ladder is still flat (span 0.04, 0.24)


def _encoder(dim=8, kg=4):
    torch.manual_seed(0)
    text = np.random.default_rng(0).normal(size=(T, 384)).astype(np.float32)
    return ConditionEncoder(dim, kg, text)


def _cond(n=3, kg=4):
    rng = np.random.default_rng(1)
    emb = rng.normal(size=(n, kg))
    emb[0] = 0  # first row: no disease
    prof = rng.random((n, T))
    prof[0] = 0
    return Condition.from_arrays(emb, prof, rng.random((n, T)), [3.0, 30.0, 60.0][:n], ["F", "M", "x"][:n], [0, 0.5, 1][:n])


def test_tokens_have_the_documented_layout():
    enc = _encoder()
    out = enc(_cond())
    assert out.shape == (3, enc.n_tokens, 8) == (3, 5 + T, 8)
    assert enc.token_layout()[0] == "disease" and enc.token_layout()[-1] == "severity"
    assert len(enc.token_layout()) == enc.n_tokens


def test_no_disease_uses_the_null_token_and_sex_codes():
    c = _cond()
    assert not c.keep[0, GROUPS.index("disease")] and c.keep[1, GROUPS.index("disease")]
    assert list(sex_code(["F", "m", "?", None])) == [0, 1, 2, 2]


def test_a_dropped_group_changes_only_its_tokens():
    enc = _encoder()
    c = _cond()
    a = enc(c)
    b = enc(c.only([g for g in GROUPS if g != "age"]))
    age_tok = enc.n_tokens - 3
    assert not torch.allclose(a[:, age_tok], b[:, age_tok])
    keep = [i for i in range(enc.n_tokens) if i != age_tok]
    assert torch.allclose(a[:, keep], b[:, keep])
    # every row without age reads the same (null) age token
    assert torch.allclose(b[0, age_tok], b[2, age_tok])


def test_term_weight_scales_its_token_and_ages_are_smooth():
    enc = _encoder()
    c = _cond(2)
    c.terms[:] = 0
    base = enc(c)
    c.terms[:, 0] = 1.0
    moved = enc(c)
    assert not torch.allclose(base[:, 2], moved[:, 2]) and torch.allclose(base[:, 3:], moved[:, 3:])
    ages = torch.linspace(0, 80, 81)
    toks = enc.age((ages / 80).float())
    steps = (toks[1:] - toks[:-1]).norm(dim=1)
    assert steps.max() < 10 * steps.median()  # no jumps between neighbouring ages


def test_condition_dropout_rates():
    c = Condition.cat([_cond()] * 400)
    g = torch.Generator().manual_seed(0)
    d = drop_groups(c, 0.2, 0.0, g)
    rate = 1 - d.keep[:, GROUPS.index("age")].float().mean().item()
    assert 0.15 < rate < 0.25
    assert not drop_groups(c, 0.0, 1.0, g).keep.any()
    assert torch.equal(drop_groups(c, 0.0, 0.0, g).keep, c.keep)


def test_amount_survives_the_normalisation():
    """Format 2: the token at amount 0.25 is not the token at 1 (format 1's LayerNorm after the scale made them
    nearly equal), and the added embedding carries the amount in proportion."""
    enc, old = _encoder(dim=32), ConditionEncoder(32, 4, _encoder().term_text, version=1)
    c = _cond(2)
    tok = {}
    for w in (0.25, 1.0):
        c.terms[:, 0] = w
        tok[w] = (enc(c)[:, 2], old(c)[:, 2], enc.added_features(c)[:, 0])
    cos = torch.nn.functional.cosine_similarity(tok[0.25][0], tok[1.0][0], dim=1)
    assert (cos < 0.95).all()
    assert torch.allclose(tok[1.0][2], 4 * tok[0.25][2])
    assert old.added_features(c) is None


def test_unknown_is_not_absent_and_unaffected_is_not_no_disease():
    enc = _encoder()
    c = _cond(2)
    c.terms[:, 0] = 0.0
    absent = enc(c)[:, 2]
    c.known[:, 0] = False
    unknown = enc(c)[:, 2]
    assert not torch.allclose(absent, unknown)
    assert torch.allclose(unknown[0], unknown[1])  # one null per term, whatever the amount
    zeros = np.zeros((2, 4))
    given = Condition.from_arrays(zeros, np.zeros((2, T)), np.zeros((2, T)), [8.0, 8.0], ["F", "F"], [0.0, 0.0],
                                  unaffected=[True, False])
    assert bool(given.keep[0, GROUPS.index("disease")]) and not bool(given.keep[1, GROUPS.index("disease")])
    toks = enc(given)
    assert not torch.allclose(toks[0, :2], toks[1, :2])
    assert enc.added_features(given)[0, -2] == 1 and enc.added_features(given)[1, -1] == 0


def test_concept_dropout_trains_every_condition_guidance_builds():
    from phenoface.conditioning import CONCEPTS, drop_concepts

    c = Condition.cat([_cond()] * 2000)
    d, pick = drop_concepts(c, generator=torch.Generator().manual_seed(0))
    counts = torch.bincount(pick, minlength=len(CONCEPTS)).float() / len(pick)
    for (name, (groups, share)), got in zip(CONCEPTS.items(), counts):
        assert abs(float(got) - share) < 0.03, name
        rows = pick == list(CONCEPTS).index(name)
        want = torch.tensor([g in groups for g in GROUPS]) & c.keep[rows]
        assert torch.equal(d.keep[rows], want)
    # views that keep terms state all of them, or a subset down to one term alone
    kept_terms = d.keep[:, GROUPS.index("terms")]
    stated = d.known[kept_terms].sum(1)
    assert abs(float((stated == T).float().mean()) - 0.8) < 0.05 and (stated == 1).any()


@pytest.mark.slow
def test_generation_is_monotone_in_the_amount_on_a_tiny_trained_model():
    """The conditioning toy (``studies.conditioning_toy``): a tiny UNet learns latents set by one term's
    amount; asked for that term at 0, 1/4, 1/2, 3/4, 1 from the same noise it must draw a rising ladder, and
    an unrelated term must move the latent far less."""
    from studies.conditioning_toy import run

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the same figures on any machine: reductions are ordered per thread count
    try:
        r = run("both", steps=STEPS_TOY, seeds=2)
    finally:
        torch.set_num_threads(threads)
    assert r["term_spearman"] == pytest.approx(1.0)
    assert r["term_span"] > 0.5
    assert abs(r["unrelated_span"]) < 0.25 * r["term_span"]
