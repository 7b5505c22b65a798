import numpy as np
import pytest

from phenoface.stats import bootstrap_ci, bootstrap_stat_ci, fmt_ci, order_accuracy, spearman_partial


def test_bootstrap_interval_covers_the_mean_and_narrows_with_n():
    rng = np.random.default_rng(0)
    small, big = rng.normal(1.0, 1.0, 30), rng.normal(1.0, 1.0, 3000)
    m_s, (lo_s, hi_s) = bootstrap_ci(small, seed=1)
    m_b, (lo_b, hi_b) = bootstrap_ci(big, seed=1)
    assert lo_s < m_s < hi_s and lo_b < m_b < hi_b
    assert lo_b < 1.0 < hi_b
    assert (hi_b - lo_b) < (hi_s - lo_s) / 4


def test_bootstrap_over_groups_is_wider_when_groups_differ():
    # 10 groups whose means differ a lot: resampling groups must show that spread, resampling values hides it
    g = np.repeat(np.arange(10), 50)
    v = np.repeat(np.linspace(0, 1, 10), 50) + np.random.default_rng(0).normal(0, 0.01, 500)
    _, (lo_v, hi_v) = bootstrap_ci(v, seed=0)
    _, (lo_g, hi_g) = bootstrap_ci(v, groups=g, seed=0)
    assert (hi_g - lo_g) > 3 * (hi_v - lo_v)


def test_bootstrap_degenerate_inputs_give_nan_interval():
    assert np.isnan(bootstrap_ci([0.5])[1][0])
    assert np.isnan(bootstrap_ci([1, 2, 3], groups=[0, 0, 0])[1][1])
    with pytest.raises(ValueError):
        bootstrap_ci([1, 2, 3], groups=[0, 1])


def test_bootstrap_stat_ci_of_a_correlation():
    rng = np.random.default_rng(0)
    x = rng.normal(size=200)
    y = x + rng.normal(size=200)
    r, (lo, hi) = bootstrap_stat_ci(lambda i: np.corrcoef(x[i], y[i])[0, 1], len(x), n_boot=300)
    assert lo < r < hi and 0.55 < r < 0.85
    assert fmt_ci(r, (lo, hi)).count("[") == 1


def test_partial_spearman_removes_a_shared_cause():
    rng = np.random.default_rng(0)
    z = rng.normal(size=500)
    x, y = z + 0.3 * rng.normal(size=500), z + 0.3 * rng.normal(size=500)
    assert np.corrcoef(x, y)[0, 1] > 0.8
    assert abs(spearman_partial(x, y, z)) < 0.15
    w = rng.normal(size=500)
    assert spearman_partial(x + 3 * w, y + 3 * w, z) > 0.8  # a real link beyond z survives


def test_order_accuracy_counts_nan_as_wrong():
    t = np.arange(5.0)
    assert order_accuracy(t, t) == 1.0
    assert order_accuracy(-t, t) == 0.0
    assert order_accuracy(np.zeros(5), t) == 0.5
    s = t.copy()
    s[-1] = np.nan
    assert order_accuracy(s, t) == pytest.approx(6 / 10)
    assert order_accuracy(np.r_[t, t], np.r_[t, t], groups=np.repeat([0, 1], 5)) == 1.0


def test_pearson_matches_numpy_and_is_nan_when_undefined():
    from phenoface.stats import pearson

    a, b = np.array([1.0, 2.0, 4.0, 3.0]), np.array([2.0, 1.0, 5.0, 4.0])
    assert pearson(a, b) == pytest.approx(np.corrcoef(a, b)[0, 1])
    assert np.isnan(pearson(a, np.ones(4))) and np.isnan(pearson([1.0], [2.0]))
    assert np.isnan(pearson([1.0, np.nan, 3.0], [1.0, 2.0, 3.0]))
