"""Vehicle labels to boxes: against hand-computed cases and an independent per-vehicle computation."""
from __future__ import annotations

import numpy as np
import pytest

from v2xdet.data_utils.formats import vehicle_boxes, vehicle_boxes_world
from v2xdet.geometry.boxes import limit_period, transform_boxes
from v2xdet.geometry.transforms import x1_to_x2, x_to_world


def make_vehicles(rng, n, tilt=0.0):
    return {int(vid): {"location": rng.uniform(-50, 50, 3).tolist(),
                       "center": rng.uniform(-0.2, 0.9, 3).tolist(),
                       "extent": rng.uniform(0.4, 3.0, 3).tolist(),
                       "angle": [rng.uniform(-tilt, tilt), rng.uniform(-180, 180), rng.uniform(-tilt, tilt)],
                       "speed": 1.0}
            for vid in rng.choice(10000, n, replace=False)}


def test_axis_aligned_vehicle_at_identity_pose():
    veh = {9: {"location": [10, 5, 0], "center": [0.5, 0, 0.75], "extent": [2, 1, 0.75], "angle": [0, 0, 0],
               "speed": 0}}
    ids, boxes = vehicle_boxes(veh, [0, 0, 0, 0, 0, 0])
    assert ids.dtype == np.int64 and ids.tolist() == [9]
    np.testing.assert_allclose(boxes, [[10.5, 5, 0.75, 4, 2, 1.5, 0]], atol=1e-12)


def test_center_offset_is_added_not_rotated():
    veh = {1: {"location": [0, 0, 0], "center": [1, 0, 0], "extent": [2, 1, 1], "angle": [0, 90, 0],
               "speed": 0}}
    _, boxes = vehicle_boxes_world(veh)
    np.testing.assert_allclose(boxes[0, :3], [1, 0, 0], atol=1e-12)  # rotated it would be (0, 1, 0)
    assert boxes[0, 6] == pytest.approx(np.pi / 2)


def test_against_planar_closed_form():
    """No roll / pitch: centre = inv(T_lidar) @ (location + center), yaw = vehicle yaw - lidar yaw."""
    rng = np.random.default_rng(5)
    vehicles = make_vehicles(rng, 30)
    lidar = [12.0, -40.0, 1.9, 0.0, 33.0, 0.0]
    ids, boxes = vehicle_boxes(vehicles, lidar)
    assert ids.tolist() == sorted(vehicles)
    world_to_lidar = np.linalg.inv(x_to_world(lidar))
    for row, vid in enumerate(ids.tolist()):
        v = vehicles[vid]
        centre = world_to_lidar @ np.r_[np.add(v["location"], v["center"]), 1.0]
        np.testing.assert_allclose(boxes[row, :3], centre[:3], atol=1e-9)
        np.testing.assert_allclose(boxes[row, 3:6], 2 * np.asarray(v["extent"]), atol=1e-9)
        dyaw = limit_period(boxes[row, 6] - np.radians(v["angle"][1] - 33.0))
        assert abs(dyaw) < 1e-9


def test_tilted_vehicles_keep_centre_and_size():
    rng = np.random.default_rng(6)
    vehicles = make_vehicles(rng, 20, tilt=8.0)
    lidar = [3.0, 4.0, 2.0, 1.5, -120.0, -2.0]
    ids, boxes = vehicle_boxes(vehicles, lidar)
    for row, vid in enumerate(ids.tolist()):
        v = vehicles[vid]
        centre = x1_to_x2([*np.add(v["location"], v["center"]), *v["angle"]], lidar)[:3, 3]
        np.testing.assert_allclose(boxes[row, :3], centre, atol=1e-9)
        np.testing.assert_allclose(boxes[row, 3:6], 2 * np.asarray(v["extent"]), atol=1e-9)


def test_frames_agree_through_transform():
    """Boxes in LiDAR A moved by x1_to_x2(A, B) equal the boxes computed in LiDAR B."""
    rng = np.random.default_rng(7)
    vehicles = make_vehicles(rng, 15)
    pose_a, pose_b = [0.0, 0.0, 1.9, 0.0, 10.0, 0.0], [30.0, -8.0, 1.8, 0.0, -75.0, 0.0]
    _, in_a = vehicle_boxes(vehicles, pose_a)
    _, in_b = vehicle_boxes(vehicles, pose_b)
    moved = transform_boxes(in_a, x1_to_x2(pose_a, pose_b))
    np.testing.assert_allclose(moved[:, :6], in_b[:, :6], atol=1e-9)
    np.testing.assert_allclose(limit_period(moved[:, 6] - in_b[:, 6]), 0, atol=1e-9)
    np.testing.assert_allclose(vehicle_boxes_world(vehicles)[1], vehicle_boxes(vehicles, np.zeros(6))[1],
                               atol=1e-9)


def test_raw_string_ids_are_accepted():
    rng = np.random.default_rng(8)
    vehicles = make_vehicles(rng, 5)
    ids, boxes = vehicle_boxes({str(k): v for k, v in vehicles.items()}, np.zeros(6))
    ref_ids, ref_boxes = vehicle_boxes(vehicles, np.zeros(6))
    assert ids.tolist() == ref_ids.tolist()
    np.testing.assert_array_equal(boxes, ref_boxes)


def test_no_vehicles():
    ids, boxes = vehicle_boxes({}, np.zeros(6))
    assert ids.shape == (0,) and ids.dtype == np.int64 and boxes.shape == (0, 7)
