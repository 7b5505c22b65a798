"""Other UNet shapes for the studies: a widths/blocks spec rewrites only the UNet of a size config."""
import pytest

from phenoface.model.components import size_config
from phenoface.model.variants import unet_shape


def test_unet_shape_sets_widths_and_block_kinds_and_leaves_the_rest():
    quick = size_config("quick")
    cfg = unet_shape(quick, "32,64,128,128/D,A,a,D")
    assert cfg["unet"]["block_out_channels"] == [32, 64, 128, 128]
    assert cfg["unet"]["down"] == ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"]
    assert cfg["unet"]["norm_num_groups"] <= 32 and cfg["autoencoder"] == quick["autoencoder"]
    assert quick == size_config("quick")  # the input is not changed


@pytest.mark.parametrize("spec", ["32,64", "32,64/D,X", "32,x/D,A", "32,64/D"])
def test_unet_shape_refuses_a_bad_spec(spec):
    with pytest.raises(ValueError, match="UNet shape"):
        unet_shape(size_config("quick"), spec)
