import numpy as np
import pytest

from phenoface.ages import AGE_BANDS, age_band


def test_scalar_and_vector_bands_agree():
    ages = [0.5, 2.0, 11.9, 12.0, 17.5, 40.0, float("nan")]
    expected = ["infant", "child", "child", "adolescent", "adolescent", "adult", "unknown"]
    assert [age_band(a) for a in ages] == expected
    assert list(age_band(np.array(ages))) == expected
    assert list(AGE_BANDS) == ["infant", "child", "adolescent", "adult"]


def test_negative_age_is_an_error():
    with pytest.raises(ValueError, match=">= 0"):
        age_band(-1.0)
