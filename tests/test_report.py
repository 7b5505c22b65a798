import json

import pytest

from phenoface import report


def test_record_metrics_is_flat_and_typed(tmp_path):
    path = report.record_metrics("00_data", {"n": 3, "rate": 0.5, "model": "x", "bad": float("nan"), "flag": True},
                                 metrics_dir=tmp_path)
    data = json.loads(path.read_text())
    assert data == {"n": 3, "rate": 0.5, "model": "x", "bad": "nan", "flag": 1}
    with pytest.raises(TypeError, match="'nested'"):
        report.record_metrics("00_data", {"nested": {"a": 1}}, metrics_dir=tmp_path)
    assert report.read_metrics("00_data", tmp_path)["n"] == 3
