import numpy as np
import pytest

from v2xdet.data_utils.preprocess import crop_range, range_mask, remove_ego_points


def test_range_mask_is_half_open():
    pts = np.array([[0, 0, 0, 1], [-1, 0, 0, 1], [1, 0, 0, 1], [0.999, 1.999, 0.5, 1], [0, 0, 1, 1]],
                   dtype=np.float32)
    mask = range_mask(pts, [-1, -2, -1, 1, 2, 1])
    assert mask.tolist() == [True, True, False, True, False]
    np.testing.assert_array_equal(crop_range(pts, [-1, -2, -1, 1, 2, 1]), pts[mask])


def test_remove_ego_points_matches_opencood_rectangle():
    pts = np.array([[-1.9, 0, 0, 0], [2.9, 1.0, 0, 0], [3.0, 0, 0, 0], [-2.0, 0, 0, 0], [0, 1.2, 0, 0]])
    kept = remove_ego_points(pts)
    np.testing.assert_array_equal(kept, pts[[2, 3, 4]])


def test_bad_inputs_name_the_problem():
    with pytest.raises(ValueError, match="lidar_range"):
        crop_range(np.zeros((3, 4)), [0, 0, 0, -1, 1, 1])
    with pytest.raises(ValueError, match="points"):
        crop_range(np.zeros((3,)), [0, 0, 0, 1, 1, 1])
