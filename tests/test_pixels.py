import numpy as np
import torch

from phenoface.pixels import to_model_range, to_uint8


def test_pixels_round_trip_and_range():
    images = torch.as_tensor(np.random.default_rng(0).integers(0, 256, (2, 8, 8, 3), dtype=np.uint8))
    x = to_model_range(images)
    assert x.shape == (2, 3, 8, 8) and x.dtype == torch.float32
    assert float(x.min()) >= -1.0 and float(x.max()) <= 1.0
    assert torch.equal(to_uint8(x), images)
    assert torch.equal(to_uint8(torch.full((1, 3, 2, 2), 5.0)), torch.full((1, 2, 2, 3), 255, dtype=torch.uint8))
