"""Generation from a tiny trained model: determinism, guidance arithmetic, schedulers, bad input."""

import numpy as np
import pytest
import torch

from phenoface.conditioning import unet_kwargs
from phenoface.model import load_model
from phenoface.model.train import main
from phenoface.sampling import SCHEDULERS, concepts, generate, profile_terms


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    out = tmp_path_factory.mktemp("gen")
    main(["--out", str(out), "--faces", "40", "--image-size", "32", "--ae-steps", "3", "--unet-steps", "3"])
    return load_model(out / "model")


def test_generate_is_deterministic_per_seed(model):
    d = model.diseases.ids[0]
    a = generate(model, disease=d, terms={"HP:0000316": 1.0}, age=8.0, sex="F", severity=1.0, n=3, seed=0, steps=4)
    b = generate(model, disease=d, terms={"HP:0000316": 1.0}, age=8.0, sex="F", severity=1.0, n=3, seed=0, steps=4)
    c = generate(model, disease=d, terms={"HP:0000316": 1.0}, age=8.0, sex="F", severity=1.0, n=3, seed=1, steps=4)
    assert a.shape == (3, 32, 32, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_every_scheduler_and_negation_run(model):
    for s in SCHEDULERS:
        assert generate(model, disease="UNAFFECTED", n=2, steps=3, scheduler=s).shape == (2, 32, 32, 3)
    pos = generate(model, terms={"HP:0000316": 1.0}, n=2, steps=3, seed=0, return_latents=True)
    neg = generate(model, terms={"HP:0000316": -1.0}, n=2, steps=3, seed=0, return_latents=True)
    assert not torch.allclose(pos, neg)


def test_concepts_follow_composable_diffusion(model):
    """compose="sum": one concept per term and one for the disease, each at its weight (Composable Diffusion);
    a term concept states that term alone, the others unknown."""
    d = model.diseases.ids[0]
    null, ctx, parts = concepts(model, 2, d, {"HP:0000316": 0.5, "HP:0000286": -2.0}, 8.0, "M", 0.7, "UNAFFECTED",
                                compose="sum")
    assert not null.keep.any()
    assert ctx.keep[:, [3, 4]].all() and not ctx.keep[:, [0, 1, 2, 5]].any()  # age and sex only
    assert [w for _, w in parts] == [1.0, 1.0, -1.0, -1.0]  # disease, +term, -term, -UNAFFECTED
    term_cond = parts[2][0]
    assert float(term_cond.terms.max()) == 1.0  # |-2| capped at intensity 1, sign kept as the weight
    assert term_cond.known[0].sum() == 1  # that term stated, the others unknown
    assert float(parts[0][0].severity[0]) == pytest.approx(0.7) and float(parts[3][0].severity[0]) == 0.0


def test_joint_request_is_one_concept_and_unaffected_is_its_own_token(model):
    """compose="joint" (the default): the disease and every named term in one condition, a negative weight
    stated absent, the unnamed terms unknown; UNAFFECTED keeps its disease token (flagged), None drops it."""
    from phenoface.conditioning import GROUPS

    d = model.diseases.ids[0]
    null, ctx, parts = concepts(model, 2, d, {"HP:0000316": 0.5, "HP:0000286": -2.0}, 8.0, "M", 0.7, "UNAFFECTED")
    assert [w for _, w in parts] == [1.0, -1.0]
    joint = parts[0][0]
    i, j = 0, 0
    from phenoface.cohort.terms import TERM_IDS

    i, j = TERM_IDS.index("HP:0000316"), TERM_IDS.index("HP:0000286")
    assert joint.keep[:, [GROUPS.index(g) for g in ("disease", "profile", "terms", "severity")]].all()
    assert joint.known[:, [i, j]].all() and int(joint.known[0].sum()) == 2
    assert float(joint.terms[0, i]) == 0.5 and float(joint.terms[0, j]) == 0.0
    unaffected = parts[1][0]
    assert unaffected.unaffected.all() and unaffected.keep[:, GROUPS.index("disease")].all()
    _, _, none = concepts(model, 2, None, {"HP:0000316": 1.0}, 8.0, "M", 0.7, None)
    assert not none[0][0].keep[:, GROUPS.index("disease")].any() and not none[0][0].unaffected.any()
    a = model.encoder(unaffected)
    b = model.encoder(unaffected.only(("age", "sex", "severity")))
    assert not torch.allclose(a[:, 0], b[:, 0])  # unaffected is not "no disease given"


def test_zero_shot_request_draws_expressed_amounts(model):
    from phenoface.sampling import EXPRESSION, zero_shot_request

    d = model.diseases.ids[0]
    req = zero_shot_request(model, d, severity=0.6, n=400, seed=1)
    prof = profile_terms(model, d, min_weight=0.0)
    for t, amounts in req.items():
        assert set(np.round(np.unique(amounts), 6)) <= {0.0, round(0.6 * EXPRESSION, 6)}
        assert abs((amounts > 0).mean() - prof.get(t, 0.0)) < 0.1  # present as often as the profile says
    assert np.array_equal(req[t], zero_shot_request(model, d, severity=0.6, n=400, seed=1)[t])


def test_integer_arguments_are_checked_not_truncated(model):
    d = model.diseases.ids[0]
    for kw, name in ((dict(seed="x"), "seed"), (dict(n=2.5), "n"), (dict(seed=1.7), "seed"), (dict(seed=-1), "seed")):
        with pytest.raises(ValueError, match=name):
            generate(model, disease=d, steps=2, **kw)


def test_dpm_solver_starts_at_the_last_timestep(model):
    from phenoface.sampling import make_scheduler

    trailing, leading = make_scheduler(model.scheduler), make_scheduler(model.scheduler, spacing="leading")
    trailing.set_timesteps(10)
    leading.set_timesteps(10)
    assert int(trailing.timesteps[0]) == 999 and int(leading.timesteps[0]) == 900


def test_guidance_one_with_one_concept_is_that_conditional_prediction(model):
    """g = 1 and a single disease concept: eps = eps(context + disease), the plain conditional model."""
    d = model.diseases.ids[0]
    a = generate(model, disease=d, n=2, steps=3, seed=0, guidance=1.0, return_latents=True)
    null, ctx, parts = concepts(model, 2, d, None, 30.0, "F", 1.0, None)
    from phenoface.sampling import make_scheduler

    sched = make_scheduler(model.scheduler)
    sched.set_timesteps(3)
    g = torch.Generator().manual_seed(0)
    c, s = model.unet.config.in_channels, model.unet.config.sample_size
    lat = torch.randn((2, c, s, s), generator=g) * sched.init_noise_sigma
    kw = unet_kwargs(model.encoder, parts[0][0])
    with torch.no_grad():
        for t in sched.timesteps:
            e = model.unet(sched.scale_model_input(lat, t), t, **kw).sample
            lat = sched.step(e, t, lat, generator=g).prev_sample
    assert torch.allclose(a, lat, atol=1e-4)


def test_guide_skips_the_context_only_when_it_cancels(model):
    """eps(c0) has coefficient 1 - sum(w): with one concept it is not computed, and the guided prediction equals
    the three-evaluation formula of the module docstring; with weights summing elsewhere it is kept."""
    from phenoface.sampling import Guide

    d = model.diseases.ids[0]
    one = Guide(model, *concepts(model, 2, d, None, 8.0, "F", 0.7, None))
    two = Guide(model, *concepts(model, 2, d, {"HP:0000316": 1.0}, 8.0, "F", 0.7, None, compose="sum"))
    assert not one.has_ctx and one.k == 2 and two.has_ctx and two.k == 4
    null, ctx, parts = concepts(model, 2, d, None, 8.0, "F", 0.7, None)
    x = torch.randn((2, model.unet.config.in_channels, model.unet.config.sample_size, model.unet.config.sample_size),
                    generator=torch.Generator().manual_seed(3))
    t = torch.tensor(500)
    with torch.no_grad():
        e0, ec, ed = (model.unet(x, t, **unet_kwargs(model.encoder, c)).sample for c in (null, ctx, parts[0][0]))
        want = e0 + 2.5 * ((ec - e0) + (ed - ec))
        assert torch.allclose(one(x, t, 2.5), want, atol=1e-5)


def test_context_weight_scales_the_age_and_sex_concept(model):
    """w_0 != sum(w) brings eps(c0) back, and the guided prediction is the docstring's formula with w_0; a
    disease-only baseline (no context tokens) refuses any other weight than 1."""
    from dataclasses import replace

    from phenoface.sampling import Guide

    d = model.diseases.ids[0]
    null, ctx, parts = concepts(model, 2, d, None, 8.0, "F", 0.7, None)
    strong = Guide(model, null, ctx, parts, context_weight=3.0)
    assert strong.has_ctx and strong.k == 3
    x = torch.randn((2, model.unet.config.in_channels, model.unet.config.sample_size, model.unet.config.sample_size),
                    generator=torch.Generator().manual_seed(4))
    t = torch.tensor(300)
    with torch.no_grad():
        e0, ec, ed = (model.unet(x, t, **unet_kwargs(model.encoder, c)).sample for c in (null, ctx, parts[0][0]))
        assert torch.allclose(strong(x, t, 2.0), e0 + 2.0 * (3.0 * (ec - e0) + (ed - ec)), atol=1e-5)
    a = generate(model, disease=d, n=2, steps=3, seed=0, return_latents=True)
    b = generate(model, disease=d, n=2, steps=3, seed=0, return_latents=True, context_weight=2.0)
    assert not torch.allclose(a, b)
    with pytest.raises(ValueError, match="valid 0.0 to 10.0"):
        generate(model, disease=d, n=1, context_weight=-1.0)
    baseline = replace(model, card={**model.card, "method": "class"})
    with pytest.raises(ValueError, match="no age or sex tokens"):
        generate(baseline, disease=d, n=1, steps=2, context_weight=2.0)


def test_bad_requests_are_refused_with_the_valid_range(model):
    with pytest.raises(KeyError, match="the model knows UNAFFECTED"):
        generate(model, disease="OMIM:000000", n=1)
    with pytest.raises(KeyError, match="renderable terms: HP:0000316 \\(Hypertelorism\\)"):
        generate(model, terms={"HP:9999999": 1.0}, n=1)
    for kw, msg in (({"guidance": 31}, "valid 0.0 to 30.0"), ({"steps": 0}, "valid 1 to 1000"),
                    ({"severity": 1.5}, "valid 0.0 to 1.0"), ({"age": -1}, "valid 0.0 to 100.0")):
        with pytest.raises(ValueError, match=msg):
            generate(model, n=1, **kw)
    with pytest.raises(ValueError, match="unknown scheduler"):
        generate(model, n=1, steps=2, scheduler="euler")


def test_profile_terms_rank_the_disease_profile(model):
    d = model.diseases.ids[0]
    w = profile_terms(model, d)
    assert list(w.values()) == sorted(w.values(), reverse=True) and all(v >= 0.05 for v in w.values())
    assert len(profile_terms(model, d, top_k=2)) <= 2


def test_shared_noise_series_differ_only_by_condition(model):
    from phenoface.sampling.generated_cohort import series, zero_shot_pairs

    same = generate(model, disease=model.diseases.ids[0], severity=np.array([0.5, 0.5]), n=2, seed=3, steps=3,
                    shared_noise=True)
    assert np.array_equal(same[0], same[1])  # same noise, same condition: the same face
    imgs, table = series(model, {"a": ("severity", model.diseases.ids[0]), "t": ("term", "HP:0000316")},
                         [0.0, 1.0], seeds=[0, 1], steps=2)
    assert imgs.shape[0] == len(table) == 8 and set(table["series"]) == {"a|0", "a|1", "t|0", "t|1"}
    with pytest.raises(ValueError, match="unknown series kind"):
        series(model, {"x": ("age", 3)}, [0.0], seeds=[0], steps=2)
    drawn, control, zt = zero_shot_pairs(model, model.diseases.ids[0], 3, steps=2)
    assert drawn.shape == control.shape == (3, 32, 32, 3) and list(zt["disease_id"].unique()) == [model.diseases.ids[0]]


def test_per_face_conditions_and_term_signs(model):
    imgs = generate(model, terms={"HP:0000316": np.array([0.2, 1.0])}, age=np.array([3.0, 40.0]), sex=["F", "M"],
                    n=2, steps=2)
    assert imgs.shape == (2, 32, 32, 3)
    with pytest.raises(ValueError, match="both signs"):
        generate(model, terms={"HP:0000316": np.array([0.5, -0.5])}, n=2, steps=2)
    with pytest.raises(ValueError, match="2 values for n = 3"):
        generate(model, age=[3.0, 4.0], n=3, steps=2)


def test_generated_cohort_round_trip(model, tmp_path):
    import pandas as pd

    from phenoface.sampling.generated_cohort import generate_cohort, load_generated, save_generated

    d = model.diseases.ids[0]
    ref = pd.DataFrame({"disease_id": [d, d, "UNAFFECTED"], "age": [5.0, 9.0, 30.0], "sex": ["F", "M", "F"],
                        "severity": [0.4, 0.9, 0.0]})
    imgs, table = generate_cohort(model, ref, 3, zero_shot=[d], steps=2, progress=False)
    assert len(imgs) == len(table) == 6
    assert set(table.loc[table["disease_id"] == d, "mode"]) == {"zero-shot"}
    assert (table.loc[table["disease_id"] == "UNAFFECTED", "severity"] == 0).all()
    save_generated(tmp_path, imgs, table)
    back, t2 = load_generated(tmp_path)
    assert np.array_equal(back, imgs) and list(t2["mode"]) == list(table["mode"])
    with pytest.raises(FileNotFoundError, match="notebook 06"):
        load_generated(tmp_path / "nothing")


def test_swap_profiles_replaces_profiles_only_and_says_so(model, tmp_path):
    from phenoface.model.pipeline import swap_profiles
    from phenoface.profiles import save_profiles
    from phenoface.profiles.profile import Evidence, Profile

    ids = model.diseases.ids
    kg = [Profile.from_evidence(d, d, {"all": {"kg_frequency": {"HP:0000316": Evidence("kg_frequency", 0.9)}}}, "t")
          for d in ids]
    save_profiles(kg[1:], tmp_path / "profiles" / "kg_profiles.json")
    with pytest.raises(KeyError, match=ids[0]):  # a disease without a KG profile is named
        swap_profiles(model, tmp_path)
    save_profiles(kg, tmp_path / "profiles" / "kg_profiles.json")
    swapped = swap_profiles(model, tmp_path, "kg")
    from phenoface.cohort.terms import TERM_IDS

    j = TERM_IDS.index("HP:0000316")
    assert np.allclose(swapped.diseases.profile[:, j], 0.9)
    assert np.allclose(np.delete(swapped.diseases.profile, j, axis=1), 0.0)  # every other term: none in the KG profile
    assert np.array_equal(swapped.diseases.embedding, model.diseases.embedding) and swapped.unet is model.unet
    assert "inference" in swapped.card["profiles"] and "profiles" not in model.card
    assert not np.array_equal(generate(swapped, disease=ids[0], n=1, steps=3, seed=0, return_latents=True),
                              generate(model, disease=ids[0], n=1, steps=3, seed=0, return_latents=True))
    with pytest.raises(ValueError, match="kg"):
        swap_profiles(model, tmp_path, "gestalt")
