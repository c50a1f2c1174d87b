"""The box format: corners, conversions, rigid transforms and point membership."""
from __future__ import annotations

import numpy as np
import pytest

from v2xdet.geometry.boxes import (
    boxes_from_hwl,
    boxes_to_bev_corners,
    boxes_to_corners,
    boxes_to_hwl,
    check_boxes,
    corners_to_boxes,
    count_points_in_boxes,
    limit_period,
    points_in_boxes,
    transform_boxes,
)
from v2xdet.geometry.iou import signed_areas
from v2xdet.geometry.transforms import x_to_world


def random_boxes(rng: np.random.Generator, n: int) -> np.ndarray:
    return np.hstack([rng.uniform(-60, 60, (n, 2)), rng.uniform(-3, 1, (n, 1)),
                      rng.uniform(0.5, 12, (n, 3)), rng.uniform(-np.pi, np.pi, (n, 1))])


def assert_same_boxes(a: np.ndarray, b: np.ndarray, atol: float = 1e-9):
    np.testing.assert_allclose(a[:, :6], b[:, :6], atol=atol)
    np.testing.assert_allclose(limit_period(a[:, 6] - b[:, 6]), 0.0, atol=atol)


def test_corner_order_in_the_box_frame():
    box = np.array([[10.0, 20.0, 1.0, 4.0, 2.0, 1.5, 0.0]])
    local = boxes_to_corners(box)[0] - box[0, :3]
    signs = np.sign(local)
    expected = [[1, 1, -1], [1, -1, -1], [-1, -1, -1], [-1, 1, -1],
                [1, 1, 1], [1, -1, 1], [-1, -1, 1], [-1, 1, 1]]
    np.testing.assert_array_equal(signs, expected)
    np.testing.assert_allclose(np.abs(local), np.tile([2.0, 1.0, 0.75], (8, 1)))


def test_yaw_turns_the_length_axis_counter_clockwise():
    box = np.array([[0, 0, 0, 4.0, 2.0, 1.0, np.pi / 2]])
    c = boxes_to_corners(box)[0]
    # corner 0 is front-left (+l/2, +w/2): after +90 deg the front points to +y, left to -x
    np.testing.assert_allclose(c[0], [-1.0, 2.0, -0.5], atol=1e-12)


def test_boxes_corners_round_trip():
    rng = np.random.default_rng(0)
    boxes = random_boxes(rng, 500)
    corners = boxes_to_corners(boxes)
    assert corners.shape == (500, 8, 3)
    assert_same_boxes(corners_to_boxes(corners), boxes)
    # wrapped yaws come back wrapped into (-pi, pi]
    shifted = boxes.copy()
    shifted[:, 6] += 4 * np.pi
    back = corners_to_boxes(boxes_to_corners(shifted))
    assert (np.abs(back[:, 6]) <= np.pi).all()
    assert_same_boxes(back, boxes)


def test_bev_corners_are_the_bottom_face_counter_clockwise():
    rng = np.random.default_rng(1)
    boxes = random_boxes(rng, 100)
    bev = boxes_to_bev_corners(boxes)
    assert bev.shape == (100, 4, 2)
    np.testing.assert_allclose(signed_areas(bev), boxes[:, 3] * boxes[:, 4])
    # the bottom corners 2, 1, 0, 3 exactly (the footprint is computed on its own path)
    np.testing.assert_array_equal(bev, boxes_to_corners(boxes)[:, [2, 1, 0, 3], :2])


def test_hwl_conversions():
    box = np.array([[1.0, 2.0, 3.0, 4.5, 1.8, 1.6, 0.3]])
    hwl = boxes_to_hwl(box)
    np.testing.assert_array_equal(hwl, [[1.0, 2.0, 3.0, 1.6, 1.8, 4.5, 0.3]])
    np.testing.assert_array_equal(boxes_from_hwl(hwl), box)
    rng = np.random.default_rng(2)
    boxes = random_boxes(rng, 20)
    np.testing.assert_array_equal(boxes_from_hwl(boxes_to_hwl(boxes)), boxes)


def test_transform_boxes_pure_yaw_moves_centre_and_adds_yaw():
    rng = np.random.default_rng(3)
    boxes = random_boxes(rng, 200)
    pose = [12.0, -7.0, 0.5, 0.0, 37.0, 0.0]
    m = x_to_world(pose)
    moved = transform_boxes(boxes, m)
    expected = boxes.copy()
    expected[:, :3] = boxes[:, :3] @ m[:3, :3].T + m[:3, 3]
    expected[:, 6] = boxes[:, 6] + np.radians(37.0)
    assert_same_boxes(moved, expected)
    # and back with the inverse
    assert_same_boxes(transform_boxes(moved, np.linalg.inv(m)), boxes)


def test_transform_boxes_with_tilt_keeps_the_centre():
    rng = np.random.default_rng(4)
    boxes = random_boxes(rng, 50)
    m = x_to_world([3.0, 4.0, 1.0, 2.0, -120.0, 3.0])
    moved = transform_boxes(boxes, m)
    np.testing.assert_allclose(moved[:, :3], boxes[:, :3] @ m[:3, :3].T + m[:3, 3], atol=1e-9)
    np.testing.assert_allclose(moved[:, 3:6], boxes[:, 3:6], atol=1e-9)  # rigid: sizes kept


def test_points_in_boxes_hand_check():
    boxes = np.array([[0, 0, 0, 4.0, 2.0, 2.0, 0.0], [10, 0, 0, 4.0, 2.0, 2.0, np.pi / 2]])
    points = np.array([
        [0, 0, 0, 1],       # centre of box 0
        [1.9, 0.9, 0.9, 1],  # inside box 0 near a corner
        [2.0, 1.0, 1.0, 1],  # on box 0's corner (closed faces)
        [0, 1.5, 0, 1],     # beside box 0
        [0, 0, 1.5, 1],     # above box 0
        [10, 1.9, 0, 1],    # inside box 1 along its length, which now runs along y
        [11.5, 0, 0, 1],    # outside box 1: beyond its half width along x
    ])
    mask = points_in_boxes(points, boxes)
    expected = np.array([[1, 0], [1, 0], [1, 0], [0, 0], [0, 0], [0, 1], [0, 0]], dtype=bool)
    np.testing.assert_array_equal(mask, expected)


def test_points_in_boxes_matches_box_frame_test():
    rng = np.random.default_rng(5)
    boxes = random_boxes(rng, 30)
    points = np.hstack([rng.uniform(-65, 65, (3000, 2)), rng.uniform(-5, 4, (3000, 1))])
    mask = points_in_boxes(points, boxes)
    for n, box in enumerate(boxes):
        inv = np.linalg.inv(x_to_world([*box[:3], 0.0, np.degrees(box[6]), 0.0]))
        local = points @ inv[:3, :3].T + inv[:3, 3]
        expected = (np.abs(local) <= box[3:6] / 2).all(axis=1)
        np.testing.assert_array_equal(mask[:, n], expected)
    assert mask.any()


def test_limit_period():
    np.testing.assert_allclose(limit_period(np.array([0.0, np.pi, -np.pi, 3 * np.pi / 2, 7.0])),
                               [0.0, -np.pi, -np.pi, -np.pi / 2, 7.0 - 2 * np.pi])
    np.testing.assert_allclose(limit_period(np.array([2.5]), offset=0.0, period=np.pi), [2.5])


def test_bad_boxes_are_named():
    assert check_boxes([]).shape == (0, 7)
    with pytest.raises(ValueError, match=r"gt must have shape \(N, 7\).*\(3, 6\)"):
        check_boxes(np.zeros((3, 6)), "gt")
    with pytest.raises(ValueError, match=r"corners must have shape \(N, 8, 3\)"):
        corners_to_boxes(np.zeros((2, 4, 3)))
    with pytest.raises(ValueError, match=r"matrix must be a 4x4"):
        transform_boxes(np.zeros((1, 7)), np.eye(3))
    with pytest.raises(ValueError, match=r"points must have shape \(P, >=3\)"):
        points_in_boxes(np.zeros((4, 2)), np.zeros((1, 7)))


def test_limit_period_keeps_torch_tensors_and_matches_numpy():
    import torch

    angles = np.array([-7.0, -np.pi, -0.1, 0.0, 3.5, np.pi, 9.0])
    wrapped_np = limit_period(angles)
    wrapped_t = limit_period(torch.tensor(angles))
    assert isinstance(wrapped_t, torch.Tensor)
    np.testing.assert_allclose(wrapped_t.numpy(), wrapped_np, atol=1e-12)
    assert np.all((wrapped_np >= -np.pi) & (wrapped_np < np.pi))
    np.testing.assert_allclose(np.cos(wrapped_np), np.cos(angles), atol=1e-12)


def test_count_points_in_boxes_equals_the_mask_column_sums():
    rng = np.random.default_rng(9)
    boxes = random_boxes(rng, 40)
    points = np.hstack([rng.uniform(-65, 65, (20000, 2)), rng.uniform(-5, 4, (20000, 1))]).astype(np.float32)
    counts = count_points_in_boxes(points, boxes)
    np.testing.assert_array_equal(counts, points_in_boxes(points, boxes).sum(axis=0))
    assert counts.sum() > 0
    hand = np.array([[0, 0, 0, 4.0, 2.0, 2.0, 0.0], [10, 0, 0, 4.0, 2.0, 2.0, np.pi / 2]])
    pts = np.array([[0, 0, 0], [2.0, 1.0, 1.0], [10, 1.9, 0], [11.5, 0, 0]])
    np.testing.assert_array_equal(count_points_in_boxes(pts, hand), [2, 1])
    assert count_points_in_boxes(np.zeros((0, 3)), hand).tolist() == [0, 0]
    assert count_points_in_boxes(pts, np.zeros((0, 7))).shape == (0,)
