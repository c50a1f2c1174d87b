"""The ray-cast LiDAR against scenes whose answers are known in closed form."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from v2xdet.data_utils.synthetic import meshes
from v2xdet.data_utils.synthetic.lidar import LidarScene, LidarSpec, ray_directions, scan
from v2xdet.geometry.transforms import transform_points, x_to_world

SMALL = LidarSpec(channels=16, points_per_second=81_920, noise_stddev=0.0, dropoff_general_rate=0.0,
                  dropoff_zero_intensity=0.0)   # 256 azimuths x 16 lasers, no noise, no drop-off


def _ground(half: float = 500.0) -> meshes.Mesh:
    v = np.array([[-half, -half, 0], [half, -half, 0], [half, half, 0], [-half, half, 0]], float)
    return meshes.Mesh(v, np.array([[0, 1, 2], [0, 2, 3]]), np.zeros(2, np.int64))


def _scene(static: meshes.Mesh) -> LidarScene:
    return LidarScene(static, np.zeros(int(static.owner.max()) + 1, np.int64), np.zeros(3))


def _no_vehicles() -> meshes.Mesh:
    return meshes.empty_mesh()


def test_ray_pattern_is_carlas():
    spec = LidarSpec()          # V2XSet's protocol: 64 lasers, 1.3 M points/s at 20 Hz
    d = ray_directions(spec)
    assert spec.points_per_channel == 1016 and d.shape == (64 * 1016, 3)
    np.testing.assert_allclose(np.linalg.norm(d, axis=1), 1.0, atol=1e-12)
    elev = np.degrees(np.arcsin(d[:, 2])).reshape(64, 1016)
    np.testing.assert_allclose(elev[:, 0], np.linspace(2.0, -25.0, 64), atol=1e-9)
    azim = np.degrees(np.arctan2(d[:, 1], d[:, 0])).reshape(64, 1016)[0]
    assert azim[0] == pytest.approx(-180.0) or azim[0] == pytest.approx(180.0)
    np.testing.assert_allclose(np.diff(azim[1:]), 360.0 / 1016, atol=1e-9)
    # the 32-channel sensor the real V2XSet frame was recorded with: 1.0 M points/s -> 1563 steps
    assert LidarSpec(channels=32, points_per_second=1_000_000).points_per_channel == 1563


def test_ground_points_match_plane_intersection_and_carla_intensity():
    h = 1.9
    sweep = scan(SMALL, _scene(_ground()), _no_vehicles(), np.array([[3.0, -2.0, h, 0.0, 37.0, 0.0]]),
                 np.array([-1]), np.array([-1]), np.random.default_rng(0))[0]
    d = ray_directions(SMALL)
    dist = np.where(d[:, 2] < 0, h / np.maximum(-d[:, 2], 1e-12), np.inf)
    expected = d[dist <= SMALL.range] * dist[dist <= SMALL.range, None]
    assert sweep.points.dtype == np.float32 and sweep.points.shape == (len(expected), 4)
    np.testing.assert_allclose(sweep.points[:, :3], expected, atol=2e-3)
    r = np.linalg.norm(sweep.points[:, :3].astype(np.float64), axis=1)
    np.testing.assert_allclose(sweep.points[:, 3], np.exp(-0.004 * r), rtol=1e-4)
    assert (sweep.vehicle == -1).all()


def test_points_are_in_the_sensor_frame_of_x_to_world():
    """A wall at world y = 10 seen by a sensor yawed +90 deg: its points go back onto the wall."""
    wall = meshes.boxes(np.array([[0.0, 10.5]]), np.array([[40.0, 1.0]]), np.array([0.0]), 0.0, 8.0)
    pose = np.array([1.0, 0.0, 1.5, 0.0, 90.0, 0.0])
    sweep = scan(SMALL, _scene(meshes.merge([_ground(), wall], renumber=True)), _no_vehicles(),
                 pose[None], np.array([-1]), np.array([-1]), np.random.default_rng(0))[0]
    world = transform_points(sweep.points, x_to_world(pose))
    on_wall = world[:, 2] > 0.05
    assert on_wall.sum() > 50
    np.testing.assert_allclose(world[on_wall, 1], 10.0, atol=2e-3)
    # in the sensor frame the wall is straight ahead (+x)
    assert (sweep.points[on_wall, 0] > 8.0).all()


def test_range_limit_and_own_body():
    spec = dataclasses.replace(SMALL, range=20.0)
    car = meshes.vehicle_mesh("car", 4.6, 1.9, 1.5, 0.33)
    rng = np.random.default_rng(0)
    pose = np.array([[0.0, 0.0, 1.9, 0.0, 0.0, 0.0]])   # sensor 0.4 m above the roof of vehicle 0
    with_body = scan(spec, _scene(_ground()), car, pose, np.array([-1]), np.array([-1]), rng)[0]
    without = scan(spec, _scene(_ground()), car, pose, np.array([0]), np.array([-1]), rng)[0]
    for sw in (with_body, without):
        assert np.linalg.norm(sw.points[:, :3], axis=1).max() <= 20.0
    assert (with_body.vehicle == 0).sum() > 20     # the hood and trunk are hit ...
    assert (without.vehicle == 0).sum() == 0       # ... but give no point for their own sensor
    body = (np.abs(without.points[:, 0]) <= 2.3) & (np.abs(without.points[:, 1]) <= 0.95)
    assert not (body & (without.points[:, 2] > -1.9 + 1e-3)).any()


def test_noise_and_general_drop_off_statistics():
    spec = dataclasses.replace(SMALL, channels=32, points_per_second=32 * 1024 * 20, noise_stddev=0.02,
                               dropoff_general_rate=0.3)
    h = 1.9
    sweep = scan(spec, _scene(_ground()), _no_vehicles(), np.array([[0.0, 0.0, h, 0.0, 0.0, 0.0]]),
                 np.array([-1]), np.array([-1]), np.random.default_rng(1))[0]
    d = ray_directions(spec)
    reachable = (d[:, 2] < 0) & (h / np.maximum(-d[:, 2], 1e-12) <= spec.range - 0.5)
    assert len(sweep.points) / reachable.sum() == pytest.approx(0.7, abs=0.02)
    r = np.linalg.norm(sweep.points[:, :3].astype(np.float64), axis=1)
    true_r = h / (-sweep.points[:, 2] / r)          # the ray direction is unchanged by range noise
    assert np.std(r - true_r) == pytest.approx(0.02, rel=0.1)
    assert abs(np.mean(r - true_r)) < 0.003


def test_intensity_drop_off_follows_carla():
    """limit 1 and zero-intensity 1: a point survives with probability equal to its intensity."""
    spec = dataclasses.replace(SMALL, channels=32, points_per_second=32 * 1024 * 20,
                               atmosphere_attenuation_rate=0.05, dropoff_intensity_limit=1.0,
                               dropoff_zero_intensity=1.0)
    h = 1.9
    d = ray_directions(spec)
    dist = np.where(d[:, 2] < 0, h / np.maximum(-d[:, 2], 1e-12), np.inf)
    dist = dist[dist <= spec.range]
    sweep = scan(spec, _scene(_ground()), _no_vehicles(), np.array([[0.0, 0.0, h, 0.0, 0.0, 0.0]]),
                 np.array([-1]), np.array([-1]), np.random.default_rng(2))[0]
    assert len(sweep.points) == pytest.approx(np.exp(-0.05 * dist).sum(), rel=0.03)
    # the default limit 0.7 keeps every point nearer than ln(1/0.7)/0.004 = 89 m
    sure = dataclasses.replace(SMALL, dropoff_zero_intensity=0.15)
    near = scan(sure, _scene(_ground()), _no_vehicles(), np.array([[0.0, 0.0, h, 0.0, 0.0, 0.0]]),
                np.array([-1]), np.array([-1]), np.random.default_rng(3))[0]
    d = ray_directions(sure)
    dist = np.where(d[:, 2] < 0, h / np.maximum(-d[:, 2], 1e-12), np.inf)
    assert len(near.points) >= (dist < 89.0).sum()


@pytest.mark.parametrize("field,value", [("channels", 0), ("upper_fov", -30.0), ("range", 0.0),
                                         ("dropoff_general_rate", 1.5), ("points_per_second", 10)])
def test_bad_sensor_is_refused(field, value):
    with pytest.raises(ValueError, match=f"lidar.*{field.split('_')[0]}"):
        dataclasses.replace(LidarSpec(), **{field: value}).validate()
