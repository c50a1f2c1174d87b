"""The simulated sensor against the one real V2XSet frame (skipped, naming the path, if absent)."""
from __future__ import annotations

import numpy as np
import pytest

from v2xdet.data_utils.formats import read_pcd
from v2xdet.data_utils.synthetic.lidar import ray_directions
from v2xdet.data_utils.synthetic.presets import CARLA_32
from v2xdet.data_utils.synthetic.stats import RANGE_BINS, range_histogram


@pytest.fixture(scope="module")
def real_points(sample_dir):
    return read_pcd(next(sample_dir.glob("validate/*/4279/000069.pcd")))


def test_real_frame_was_recorded_by_the_32_channel_sensor(real_points):
    """Its elevations fall on CARLA_32's 32 levels and its azimuth step is 360/1563 degrees."""
    xyz = real_points[:, :3].astype(np.float64)
    elev = np.degrees(np.arctan2(xyz[:, 2], np.linalg.norm(xyz[:, :2], axis=1)))
    levels = np.degrees(np.arcsin(ray_directions(CARLA_32)[::CARLA_32.points_per_channel, 2]))
    nearest = np.abs(elev[:, None] - levels[None]).min(axis=1)
    assert np.percentile(nearest, 99) < 0.05           # every point on one of the 32 lasers
    laser = np.abs(elev[:, None] - levels[None]).argmin(axis=1)
    azim = np.sort(np.degrees(np.arctan2(xyz[laser == 5, 1], xyz[laser == 5, 0])))
    assert np.median(np.diff(azim)) == pytest.approx(360.0 / CARLA_32.points_per_channel, rel=2e-3)
    assert len(real_points) < CARLA_32.rays_per_sweep


def test_range_histogram_agrees_with_numpy(real_points):
    r = np.linalg.norm(real_points[:, :3].astype(np.float64), axis=1)
    expected = np.histogram(r, bins=np.array(RANGE_BINS))[0]
    np.testing.assert_array_equal(range_histogram(real_points), expected)
    assert expected.sum() == len(real_points)           # nothing beyond 120 m in the real frame
