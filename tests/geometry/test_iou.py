"""Rotated BEV IoU against shapely, hand-worked overlaps and its invariants."""
from __future__ import annotations

import numpy as np
import pytest
import shapely

from v2xdet.geometry.boxes import boxes_to_bev_corners, boxes_to_corners
from v2xdet.geometry.iou import bev_iou_matrix, corners_to_bev_polygons, polygon_iou_matrix, signed_areas


def random_boxes(rng: np.random.Generator, n: int, extent: float = 6.0) -> np.ndarray:
    """Boxes crowded into a small area so that many pairs overlap partly."""
    xy = rng.uniform(-extent, extent, (n, 2))
    z = rng.uniform(-2, 0, (n, 1))
    lwh = rng.uniform(0.5, 5.0, (n, 3))
    yaw = rng.uniform(-np.pi, np.pi, (n, 1))
    return np.hstack([xy, z, lwh, yaw])


def shapely_iou_matrix(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    pa = shapely.polygons(boxes_to_bev_corners(boxes_a))
    pb = shapely.polygons(boxes_to_bev_corners(boxes_b))
    inter = shapely.area(shapely.intersection(pa[:, None], pb[None, :]))
    union = shapely.area(pa)[:, None] + shapely.area(pb)[None, :] - inter
    return inter / union


def test_matches_shapely_on_random_boxes():
    rng = np.random.default_rng(0)
    a, b = random_boxes(rng, 300), random_boxes(rng, 200)
    ours = bev_iou_matrix(a, b)
    ref = shapely_iou_matrix(a, b)
    assert ours.shape == (300, 200) and ours.dtype == np.float64
    assert (ref > 0).mean() > 0.1  # the test really exercises partial overlaps
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-9)


def test_symmetric_and_identity():
    rng = np.random.default_rng(1)
    a = random_boxes(rng, 50)
    m = bev_iou_matrix(a, a)
    np.testing.assert_allclose(m, m.T, atol=1e-12)
    np.testing.assert_allclose(np.diag(m), 1.0, atol=1e-12)
    assert ((m >= 0) & (m <= 1)).all()


def test_hand_computed_overlaps():
    square = [0, 0, 0, 1, 1, 1, 0]
    half_shift = [0.5, 0, 0, 1, 1, 1, 0]
    quarter = [0.5, 0.5, 0, 1, 1, 1, 0]
    far = [10, 10, 0, 1, 1, 1, 0.3]
    touching = [1.0, 0, 0, 1, 1, 1, 0]
    m = bev_iou_matrix([square], [half_shift, quarter, far, touching])
    np.testing.assert_allclose(m[0], [1 / 3, 0.25 / 1.75, 0.0, 0.0], atol=1e-12)
    # a unit square and the same square turned by 45 degrees: octagon of area 2(sqrt2 - 1)
    diamond = [0, 0, 0, 1, 1, 1, np.pi / 4]
    inter = 2 * (np.sqrt(2) - 1)
    np.testing.assert_allclose(bev_iou_matrix([square], [diamond])[0, 0], inter / (2 - inter), atol=1e-12)
    # a small box wholly inside a big one: IoU is the area ratio
    inside = bev_iou_matrix([[0, 0, 0, 4, 2, 1, 0.7]], [[0, 0, 5, 1, 1, 1, 0.1]])
    np.testing.assert_allclose(inside, [[1 / 8]])


def test_rotating_a_square_by_90_degrees_changes_nothing():
    rng = np.random.default_rng(2)
    a = random_boxes(rng, 40)
    a[:, 4] = a[:, 3]
    turned = a.copy()
    turned[:, 6] += np.pi / 2
    np.testing.assert_allclose(bev_iou_matrix(a, a), bev_iou_matrix(turned, a), atol=1e-9)
    np.testing.assert_allclose(np.diag(bev_iou_matrix(turned, a)), 1.0, atol=1e-9)


def test_degenerate_boxes_have_zero_iou():
    boxes = np.array([[0, 0, 0, 0, 1, 1, 0], [0, 0, 0, 1, 0, 1, 0],
                      [0, 0, 0, 0, 0, 1, 0], [0, 0, 0, 1, 1, 1, 0]])
    m = bev_iou_matrix(boxes, boxes)
    expected = np.zeros((4, 4))
    expected[3, 3] = 1.0
    np.testing.assert_array_equal(m, expected)


def test_empty_inputs():
    assert bev_iou_matrix(np.zeros((0, 7)), np.zeros((3, 7))).shape == (0, 3)
    assert bev_iou_matrix(np.zeros((2, 7)), np.zeros((0, 7))).shape == (2, 0)
    assert polygon_iou_matrix(np.zeros((0, 4, 2)), np.zeros((0, 4, 2))).shape == (0, 0)


def test_polygon_orientation_does_not_matter_and_mixed_vertex_counts():
    rng = np.random.default_rng(3)
    a, b = random_boxes(rng, 30), random_boxes(rng, 20)
    pa, pb = boxes_to_bev_corners(a), boxes_to_bev_corners(b)
    ref = bev_iou_matrix(a, b)
    np.testing.assert_allclose(polygon_iou_matrix(pa[:, ::-1], pb), ref, atol=1e-12)
    # a hexagon against boxes, checked with shapely
    hexagon = np.stack([np.cos(np.arange(6) * np.pi / 3), np.sin(np.arange(6) * np.pi / 3)], axis=1) * 3
    ours = polygon_iou_matrix(hexagon[None], pb)
    ph, pbs = shapely.polygons(hexagon), shapely.polygons(pb)
    inter = shapely.area(shapely.intersection(ph, pbs))
    np.testing.assert_allclose(ours[0], inter / (shapely.area(ph) + shapely.area(pbs) - inter), atol=1e-9)


def test_bad_polygons_are_refused_with_their_row():
    square = np.array([[0, 0], [1, 0], [1, 1], [0, 1]], dtype=float)
    dart = np.array([[0, 0], [2, 1], [0, 2], [1, 1]], dtype=float)
    with pytest.raises(ValueError, match=r"polys_b\[1\] is not a convex polygon"):
        polygon_iou_matrix(square[None], np.stack([square, dart]))
    with pytest.raises(ValueError, match=r"polys_a must have shape \(N, K, 2\)"):
        polygon_iou_matrix(square, square[None])
    with pytest.raises(ValueError, match=r"non-finite"):
        polygon_iou_matrix(np.where(square == 1, np.nan, square)[None], square[None])
    with pytest.raises(ValueError, match=r"boxes_b must have shape \(N, 7\)"):
        bev_iou_matrix(np.zeros((1, 7)), np.zeros((1, 6)))


def test_corners_to_bev_polygons_orients_counter_clockwise():
    rng = np.random.default_rng(4)
    boxes = random_boxes(rng, 20)
    corners = boxes_to_corners(boxes)
    polys = corners_to_bev_polygons(corners)
    assert polys.shape == (20, 4, 2)
    assert (signed_areas(polys) > 0).all()
    np.testing.assert_allclose(signed_areas(polys), boxes[:, 3] * boxes[:, 4])
    # a left-handed (y mirrored) copy also comes out counter-clockwise with the same IoU pattern
    mirrored = corners * np.array([1.0, -1.0, 1.0])
    mpolys = corners_to_bev_polygons(mirrored)
    assert (signed_areas(mpolys) > 0).all()
    np.testing.assert_allclose(polygon_iou_matrix(mpolys, mpolys), bev_iou_matrix(boxes, boxes), atol=1e-9)
    with pytest.raises(ValueError, match=r"\(N, 8, 3\)"):
        corners_to_bev_polygons(np.zeros((2, 4, 3)))
