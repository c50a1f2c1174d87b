"""Rotated NMS: hand cases and a straightforward shapely reference on random data."""
from __future__ import annotations

import numpy as np
import pytest
import shapely
import torch

from v2xdet.geometry.boxes import boxes_to_bev_corners
from v2xdet.geometry.nms import rotated_nms, rotated_nms_polygons


def reference_nms(boxes: np.ndarray, scores: np.ndarray, thr: float) -> list[int]:
    """Textbook greedy NMS with shapely: take the best, drop all overlapping it > thr, repeat."""
    polys = shapely.polygons(boxes_to_bev_corners(boxes))
    remaining = list(np.argsort(-scores, kind="stable"))
    keep = []
    while remaining:
        best = remaining.pop(0)
        keep.append(int(best))
        survivors = []
        for j in remaining:
            inter = shapely.area(shapely.intersection(polys[best], polys[j]))
            union = shapely.area(polys[best]) + shapely.area(polys[j]) - inter
            if inter / union <= thr:
                survivors.append(j)
        remaining = survivors
    return keep


def clustered_candidates(rng: np.random.Generator, n_objects: int, per_object: int) -> tuple:
    centres = np.hstack([rng.uniform(-40, 40, (n_objects, 2)), np.full((n_objects, 1), -1.0),
                         rng.uniform([3.5, 1.6, 1.4], [5.0, 2.2, 1.8], (n_objects, 3)),
                         rng.uniform(-np.pi, np.pi, (n_objects, 1))])
    boxes = np.repeat(centres, per_object, axis=0)
    boxes[:, :2] += rng.normal(0, 0.4, (len(boxes), 2))
    boxes[:, 3:6] *= rng.uniform(0.85, 1.15, (len(boxes), 3))
    boxes[:, 6] += rng.normal(0, 0.15, len(boxes))
    return boxes, rng.uniform(0, 1, len(boxes))


def test_keeps_the_higher_scoring_of_two_overlapping_boxes():
    boxes = np.array([[0, 0, 0, 4, 2, 1.5, 0], [0.2, 0, 0, 4, 2, 1.5, 0.05]])
    np.testing.assert_array_equal(rotated_nms(boxes, [0.3, 0.9], 0.5), [1])
    np.testing.assert_array_equal(rotated_nms(boxes, [0.9, 0.3], 0.5), [0])


def test_keeps_non_overlapping_boxes_sorted_by_score():
    boxes = np.array([[0, 0, 0, 4, 2, 1.5, 0], [10, 0, 0, 4, 2, 1.5, 1.0], [0, 10, 0, 4, 2, 1.5, 2.0]])
    keep = rotated_nms(boxes, [0.2, 0.7, 0.5], 0.1)
    assert keep.dtype == np.int64
    np.testing.assert_array_equal(keep, [1, 2, 0])


def test_threshold_is_strict():
    # two unit squares shifted by half overlap with IoU exactly 1/3: suppressed only above it
    boxes = np.array([[0, 0, 0, 1, 1, 1, 0], [0.5, 0, 0, 1, 1, 1, 0]])
    np.testing.assert_array_equal(rotated_nms(boxes, [1.0, 0.5], 0.34), [0, 1])
    np.testing.assert_array_equal(rotated_nms(boxes, [1.0, 0.5], 0.33), [0])


@pytest.mark.parametrize("thr", [0.01, 0.1, 0.3, 0.5, 0.7])
def test_equals_reference_on_random_clusters(thr):
    rng = np.random.default_rng(int(thr * 100))
    boxes, scores = clustered_candidates(rng, 15, 12)
    keep = rotated_nms(boxes, scores, thr)
    assert keep.tolist() == reference_nms(boxes, scores, thr)
    assert 10 <= len(keep) < len(boxes)  # some boxes were suppressed, not all
    assert (np.diff(scores[keep]) <= 0).all()


def test_keeps_every_candidate_when_scattered():
    # far more than OpenCOOD's silent top-1000 cut, all apart: every box survives
    n = 1500
    grid = np.stack(np.meshgrid(np.arange(50), np.arange(30)), -1).reshape(-1, 2) * 10.0
    boxes = np.hstack([grid, np.zeros((n, 1)), np.tile([4.0, 2.0, 1.5, 0.3], (n, 1))])
    scores = np.random.default_rng(0).uniform(size=n)
    keep = rotated_nms(boxes, scores, 0.1)
    np.testing.assert_array_equal(keep, np.argsort(-scores, kind="stable"))


def test_pre_max_cuts_before_suppression():
    rng = np.random.default_rng(7)
    boxes, scores = clustered_candidates(rng, 5, 10)
    order = np.argsort(-scores, kind="stable")
    keep = rotated_nms(boxes, scores, 0.3, pre_max=8)
    assert set(keep.tolist()) <= set(order[:8].tolist())
    assert keep.tolist() == [order[:8][i] for i in reference_nms(boxes[order[:8]], scores[order[:8]], 0.3)]
    assert rotated_nms(boxes, scores, 0.3, pre_max=0).size == 0


def test_accepts_torch_tensors_and_empty_input():
    rng = np.random.default_rng(3)
    boxes, scores = clustered_candidates(rng, 6, 5)
    expected = rotated_nms(boxes, scores, 0.2)
    got = rotated_nms(torch.from_numpy(boxes).float(), torch.from_numpy(scores).float(), 0.2)
    assert isinstance(got, np.ndarray)
    np.testing.assert_array_equal(got, expected)
    assert rotated_nms(np.zeros((0, 7)), np.zeros(0), 0.5).shape == (0,)


def test_polygon_variant_matches_box_variant():
    rng = np.random.default_rng(4)
    boxes, scores = clustered_candidates(rng, 8, 6)
    polys = boxes_to_bev_corners(boxes)[:, ::-1]  # clockwise input is accepted too
    np.testing.assert_array_equal(rotated_nms_polygons(polys, scores, 0.25), rotated_nms(boxes, scores, 0.25))


def test_bad_input_is_named():
    boxes = np.zeros((3, 7))
    with pytest.raises(ValueError, match=r"scores must have shape \(3,\)"):
        rotated_nms(boxes, np.zeros(2), 0.5)
    with pytest.raises(ValueError, match=r"scores contain NaN at index 1"):
        rotated_nms(boxes, [0.1, np.nan, 0.3], 0.5)
    with pytest.raises(ValueError, match=r"iou_threshold must be in \[0, 1\]"):
        rotated_nms(boxes, np.zeros(3), 1.5)
    with pytest.raises(ValueError, match=r"boxes must have shape \(N, 7\)"):
        rotated_nms(np.zeros((3, 5)), np.zeros(3), 0.5)
