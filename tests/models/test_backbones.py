import pytest
import torch

from v2xdet.models.backbones import BaseBEVBackbone, NaiveCompressor, ShrinkHeader


@pytest.mark.parametrize(("strides", "ups", "stride"), [([2, 2, 2], [1, 2, 4], 2), ([1, 2], [0.5, 1], 2)])
def test_backbone_levels_meet_at_one_stride(strides, ups, stride):
    n = len(strides)
    bb = BaseBEVBackbone({"layer_nums": [1] * n, "layer_strides": strides,
                          "num_filters": [8 * (i + 1) for i in range(n)],
                          "upsample_strides": ups, "num_upsample_filter": [4] * n}, 6)
    out = bb(torch.randn(2, 6, 32, 48))
    assert bb.stride == stride and bb.out_channels == 4 * n
    assert out.shape == (2, 4 * n, 32 // stride, 48 // stride)


def test_backbone_rejects_mismatched_upsampling():
    with pytest.raises(ValueError, match="one stride"):
        BaseBEVBackbone({"layer_nums": [1, 1], "layer_strides": [2, 2], "num_filters": [8, 8],
                         "upsample_strides": [1, 1], "num_upsample_filter": [4, 4]}, 6)
    with pytest.raises(ValueError, match="one entry per level"):
        BaseBEVBackbone({"layer_nums": [1], "layer_strides": [2, 2], "num_filters": [8, 8],
                         "upsample_strides": [1, 2], "num_upsample_filter": [4, 4]}, 6)


def test_shrink_header_and_compressor():
    shrink = ShrinkHeader({"kernal_size": [3], "stride": [2], "padding": [1], "dim": [12], "input_dim": 8}, 8)
    x = shrink(torch.randn(1, 8, 20, 30))
    assert x.shape == (1, 12, 10, 15) and shrink.stride == 2 and shrink.out_channels == 12
    with pytest.raises(ValueError, match="input_dim"):
        ShrinkHeader({"kernal_size": [3], "stride": [2], "padding": [1], "dim": [12], "input_dim": 9}, 8)
    comp = NaiveCompressor(4, 12)
    assert comp(x).shape == x.shape and comp.sent_channels == 3
    assert comp.encoder(x).shape == (1, 3, 10, 15)
    assert comp.bytes_sent(10, 15) == 3 * 10 * 15 * 4
    with pytest.raises(ValueError, match="divisor"):
        NaiveCompressor(5, 12)
