"""Poses and rigid transforms against independently built rotation matrices."""
from __future__ import annotations

import numpy as np
import pytest

from v2xdet.geometry.transforms import transform_points, x1_to_x2, x_to_world, yaw_of


def rot_x(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def rot_y(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def rot_z(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def carla_matrix(pose) -> np.ndarray:
    """CARLA's (left-handed) pose: yaw about z, then pitch and roll with flipped signs."""
    x, y, z, roll, yaw, pitch = pose
    m = np.eye(4)
    m[:3, :3] = rot_z(np.radians(yaw)) @ rot_y(-np.radians(pitch)) @ rot_x(-np.radians(roll))
    m[:3, 3] = x, y, z
    return m


def random_poses(rng: np.random.Generator, n: int) -> np.ndarray:
    return np.hstack([rng.uniform(-200, 200, (n, 3)), rng.uniform(-180, 180, (n, 3))])


def test_yaw_90_maps_x_to_y():
    m = x_to_world([0, 0, 0, 0, 90, 0])
    np.testing.assert_allclose(m[:3, :3] @ [1, 0, 0], [0, 1, 0], atol=1e-15)
    np.testing.assert_allclose(m[:3, :3] @ [0, 1, 0], [-1, 0, 0], atol=1e-15)
    np.testing.assert_allclose(yaw_of(m), np.pi / 2)


def test_pitch_and_roll_cases():
    # pitch 90: +x (forward) goes to +z (nose up) in CARLA's convention
    np.testing.assert_allclose(x_to_world([0, 0, 0, 0, 0, 90])[:3, :3] @ [1, 0, 0], [0, 0, 1], atol=1e-15)
    # roll 90: +y (right) goes to -z, +z goes to +y
    roll = x_to_world([0, 0, 0, 90, 0, 0])[:3, :3]
    np.testing.assert_allclose(roll @ [0, 1, 0], [0, 0, -1], atol=1e-15)
    np.testing.assert_allclose(roll @ [0, 0, 1], [0, 1, 0], atol=1e-15)


def test_matches_independent_composition_and_is_a_rotation():
    rng = np.random.default_rng(0)
    poses = random_poses(rng, 50)
    stacked = x_to_world(poses)
    assert stacked.shape == (50, 4, 4)
    for pose, m in zip(poses, stacked, strict=True):
        np.testing.assert_allclose(m, carla_matrix(pose), atol=1e-12)
        np.testing.assert_allclose(m[:3, :3] @ m[:3, :3].T, np.eye(3), atol=1e-12)
        assert np.isclose(np.linalg.det(m[:3, :3]), 1.0)
    np.testing.assert_allclose(stacked[:, 3], np.tile([0, 0, 0, 1.0], (50, 1)))
    np.testing.assert_allclose(stacked[:, :3, 3], poses[:, :3])


def test_x1_to_x2_round_trip_and_meaning():
    rng = np.random.default_rng(1)
    a, b, c = random_poses(rng, 3)
    np.testing.assert_allclose(x1_to_x2(b, a) @ x1_to_x2(a, b), np.eye(4), atol=1e-10)
    np.testing.assert_allclose(x1_to_x2(b, c) @ x1_to_x2(a, b), x1_to_x2(a, c), atol=1e-10)
    np.testing.assert_allclose(x1_to_x2(a, a), np.eye(4), atol=1e-12)
    # a point of frame a, seen from b, is the same world point
    p_a = np.array([3.0, -2.0, 1.0, 1.0])
    np.testing.assert_allclose(x_to_world(b) @ (x1_to_x2(a, b) @ p_a), x_to_world(a) @ p_a, atol=1e-9)
    stack = x1_to_x2(random_poses(rng, 4), random_poses(rng, 4))
    assert stack.shape == (4, 4, 4)


def test_transform_points_keeps_extra_columns_and_dtype():
    rng = np.random.default_rng(2)
    pts = np.hstack([rng.uniform(-50, 50, (100, 3)), rng.uniform(0, 1, (100, 1))]).astype(np.float32)
    m = carla_matrix([5, -3, 1.5, 2, 33, -4])
    out = transform_points(pts, m)
    assert out.dtype == np.float32 and out.shape == pts.shape
    expected = pts[:, :3].astype(np.float64) @ m[:3, :3].T + m[:3, 3]
    np.testing.assert_allclose(out[:, :3], expected, atol=1e-4)
    np.testing.assert_array_equal(out[:, 3], pts[:, 3])
    back = transform_points(out, np.linalg.inv(m))
    np.testing.assert_allclose(back[:, :3], pts[:, :3], atol=1e-4)
    assert transform_points(np.array([[1, 2, 3]]), np.eye(4)).dtype == np.float64


def test_bad_input_is_named():
    with pytest.raises(ValueError, match=r"pose must be \[x, y, z, roll, yaw, pitch\]"):
        x_to_world([1, 2, 3])
    with pytest.raises(ValueError, match=r"matrix must be a 4x4"):
        transform_points(np.zeros((3, 3)), np.eye(3))
    with pytest.raises(ValueError, match=r"points must have shape \(N, >=3\)"):
        transform_points(np.zeros((3, 2)), np.eye(4))
