"""The test-cohort checks of notebook 04 (term checks, same-age severity order, age), on measures whose answer is
known: one that sees nothing, and one that reads each series in its rendering order."""
import numpy as np
import pandas as pd
import pytest

from phenoface.cohort import Cohort
from phenoface.cohort.terms import TERM_IDS
from phenoface.labels import UNAFFECTED
from phenoface.phenotypes.scoring import age_check, severity_check, term_checks
from phenoface.phenotypes.validation import LEVELS


def _blind(images):
    return pd.DataFrame(np.zeros((len(images), len(TERM_IDS))), columns=TERM_IDS)


def test_a_measure_that_sees_nothing_fails_every_term_goal():
    checks = term_checks(_blind, identities=1, n=8, seed=3, size=32)
    assert checks.renders == len(TERM_IDS) * len(LEVELS) + 2 * 8
    assert list(checks.table().columns) == ["spearman", "spearman blurred", "pearson", "pearson blurred"]
    assert set(checks.weak()) == set(TERM_IDS)
    assert all(v == 0.0 for v in checks.metrics().values())
    names = {t: t.lower() for t in TERM_IDS}
    assert "Below goal: " + names[TERM_IDS[0]] in checks.summary(names)


@pytest.fixture(scope="module")
def truth():
    return Cohort.generate(n=8, diseases=["OMIM:190685", UNAFFECTED], seed=1, size=32).truth


def test_severity_order_is_read_from_the_weighted_measurement(truth):
    levels = 6  # severity_series' default: 0, 0.2, ..., 1

    def rising(images):  # each series is rendered low -> high: a reading that rises with its position in it
        return pd.DataFrame(np.repeat((np.arange(len(images)) % levels)[:, None], len(TERM_IDS), axis=1),
                            columns=TERM_IDS, dtype=float)

    weights = {"OMIM:190685": {TERM_IDS[0]: 1.0}}
    good = severity_check(rising, truth, weights, identities=2, seed=0, size=32)
    assert good.accuracy == 1.0 and good.accuracy_blur == 1.0 and good.ci == (1.0, 1.0)
    assert len(good.per_series) == 2 and set(good.table["disease_id"]) == {"OMIM:190685"}  # unaffected has no series
    blind = severity_check(_blind, truth, weights, identities=2, seed=0, size=32)
    assert blind.accuracy == 0.5  # ties count one half: chance
    assert blind.metrics()["severity_order_accuracy_same_age"] == 0.5
    assert "chance 0.5" in blind.summary()


def test_age_check_against_the_mean_age_guess(tmp_path):
    from phenoface.cohort.independent import render_independent
    from phenoface.phenotypes import save_choice, train_instrument

    images, table = render_independent(32, seed=2, size=32)
    inst = train_instrument(images, table[TERM_IDS].to_numpy(), table["age"].to_numpy(), epochs=1, width=4, seed=0,
                            batch_size=16, progress=False)
    save_choice(tmp_path, "pixel", inst)
    ages = table["age"].to_numpy(float)
    check = age_check(images, table["age"], pd.Series([10.0, 30.0]), data_dir=tmp_path, seed=0)
    assert check.mean_age_mae == pytest.approx(np.abs(ages - 20.0).mean())
    assert check.mae == pytest.approx(np.abs(check.predicted - ages).mean())
    assert check.ci[0] <= check.mae <= check.ci[1] and check.mae_blur >= 0
    assert set(check.metrics()) == {"age_mae", "age_mae_ci", "age_mae_blur07", "age_mae_mean_age_baseline"}
