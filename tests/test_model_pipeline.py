"""Notebook 05's helpers: tag agreement and the model card's summary."""
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from phenoface.cohort.terms import TERM_IDS, TERMS
from phenoface.model.pipeline import card_summary, tag_agreement


def test_tag_agreement_per_term():
    rng = np.random.default_rng(0)
    truth = rng.uniform(0, 1, (50, len(TERM_IDS)))
    truth[:, 1] = 0.0  # a term no face shows
    tags = truth.copy()
    tags[:, 2] = rng.uniform(0, 1, 50)  # tags unrelated to the truth
    ts = SimpleNamespace(table=pd.DataFrame(truth, columns=TERM_IDS), cond={"terms": tags})
    agree = tag_agreement(ts)
    assert list(agree.index) == [TERMS[t] for t in TERM_IDS] and agree.name == "Pearson(true, tag)"
    assert agree.iloc[0] == pytest.approx(1.0) and np.isnan(agree.iloc[1]) and abs(agree.iloc[2]) < 0.5


def test_card_summary_names_the_base_model():
    card = {"commit": "abc", "tags": "measured", "zero_shot": ["A", "B"], "faces": 10, "autoencoder": {"steps": 3},
            "unet": {"steps": 4}, "seconds": 1.5}
    s = card_summary(card, "shipped")
    assert s.name == "model card" and s["source"] == "shipped" and s["zero-shot diseases"] == "A, B"
    assert s["base model"].startswith("none") and s["UNet steps"] == 4
    assert card_summary({**card, "sd_model_path": "/sd"}, "trained")["base model"] == "/sd"

