import numpy as np
import pytest

from v2xdet.data_utils.preprocess import AnchorGenerator

V2XVIT = {"preprocess": {"args": {"voxel_size": [0.4, 0.4, 4]}},
          "postprocess": {"anchor_args": {"cav_lidar_range": [-140.8, -38.4, -3, 140.8, 38.4, 1], "l": 3.9,
                                          "w": 1.6, "h": 1.56, "r": [0, 90], "feature_stride": 4, "num": 2}}}


def test_v2xvit_anchor_layout():
    anchors = AnchorGenerator.from_config(V2XVIT).anchors()
    assert anchors.shape == (48, 176, 2, 7) and anchors.dtype == np.float32
    np.testing.assert_allclose(anchors[0, 0, 0], [-140.0, -37.6, -1.0, 3.9, 1.6, 1.56, 0.0], rtol=1e-6)
    np.testing.assert_allclose(anchors[0, 0, 1, 6], np.pi / 2, rtol=1e-6)
    np.testing.assert_allclose(anchors[-1, -1, 0, :2], [140.0, 37.6], rtol=1e-6)
    np.testing.assert_allclose(np.diff(anchors[0, :, 0, 0]), 1.6, rtol=1e-4)  # columns walk x
    np.testing.assert_allclose(np.diff(anchors[:, 0, 0, 1]), 1.6, rtol=1e-4)  # rows walk y
    np.testing.assert_array_equal(anchors[..., 0, :6], anchors[..., 1, :6])


def test_anchor_config_errors():
    bad = {**V2XVIT, "postprocess": {"anchor_args": {**V2XVIT["postprocess"]["anchor_args"], "num": 3}}}
    with pytest.raises(ValueError, match="num is 3"):
        AnchorGenerator.from_config(bad)
    with pytest.raises(ValueError, match="not divisible by feature_stride 3"):
        AnchorGenerator([-10, -10, -3, 10, 10, 1], [0.4, 0.4], 3, (3.9, 1.6, 1.56), [0])
