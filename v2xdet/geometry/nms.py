"""Greedy rotated non-maximum suppression on bird's-eye-view footprints.

Standard semantics: candidates are visited by descending score and a candidate is suppressed
when its IoU with an already kept box exceeds the threshold. Every candidate is considered (no
silent top-k cut); ``pre_max`` is an explicit, optional cut. The loop is compiled with numba,
computes IoU only against kept boxes and skips pairs whose bounding boxes are apart.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from v2xdet.geometry.boxes import as_numpy, boxes_to_bev_corners, check_boxes
from v2xdet.geometry.iou import pair_iou, polygon_bounds, prepare_polygons


@njit(cache=True, nogil=True)
def _greedy_nms(polys, areas, order, iou_threshold):
    n = order.shape[0]
    bounds = polygon_bounds(polys)
    keep = np.empty(n, dtype=np.int64)
    kept = 0
    cap = 4 * polys.shape[1] + 4
    buf_in = np.empty((cap, 2))
    buf_out = np.empty((cap, 2))
    for r in range(n):
        i = order[r]
        suppressed = False
        for q in range(kept):
            j = keep[q]
            if (bounds[i, 0] > bounds[j, 2] or bounds[j, 0] > bounds[i, 2]
                    or bounds[i, 1] > bounds[j, 3] or bounds[j, 1] > bounds[i, 3]):
                continue
            if pair_iou(polys[i], polys[j], areas[i], areas[j], buf_in, buf_out) > iou_threshold:
                suppressed = True
                break
        if not suppressed:
            keep[kept] = i
            kept += 1
    return keep[:kept]


def _score_order(scores: np.ndarray, n: int, pre_max: int | None) -> np.ndarray:
    """Indices by descending score (ties: lower index first), cut to ``pre_max`` if given."""
    scores = scores.astype(np.float64).reshape(-1)
    if scores.shape[0] != n:
        raise ValueError(f"scores must have shape ({n},) to match the boxes, got {scores.shape}")
    if np.isnan(scores).any():
        raise ValueError(f"scores contain NaN at index {int(np.flatnonzero(np.isnan(scores))[0])}")
    order = np.argsort(-scores, kind="stable")
    if pre_max is not None:
        if pre_max < 0:
            raise ValueError(f"pre_max must be >= 0 or None, got {pre_max}")
        order = order[:pre_max]
    return order.astype(np.int64)


def rotated_nms_polygons(polys, scores, iou_threshold: float, pre_max: int | None = None) -> np.ndarray:
    """Greedy NMS on convex (N, K, 2) polygons; kept indices (int64) by descending score."""
    if not 0.0 <= float(iou_threshold) <= 1.0:
        raise ValueError(f"iou_threshold must be in [0, 1], got {iou_threshold}")
    polys, areas = prepare_polygons(as_numpy(polys), "polys")
    order = _score_order(as_numpy(scores), polys.shape[0], pre_max)
    if order.size == 0:
        return np.zeros(0, dtype=np.int64)
    return _greedy_nms(polys, areas, order, float(iou_threshold))


def rotated_nms(boxes, scores, iou_threshold: float, pre_max: int | None = None) -> np.ndarray:
    """Greedy NMS of ``(x, y, z, l, w, h, yaw)`` boxes on their BEV footprints.

    ``boxes`` (N, 7) and ``scores`` (N,) may be numpy arrays or torch tensors; returns the kept
    indices as an int64 numpy array sorted by descending score. A box is suppressed when its IoU
    with a kept, higher-scoring box is ``> iou_threshold``. ``pre_max`` keeps only the
    ``pre_max`` best-scoring candidates before suppression (None: all).
    """
    boxes = check_boxes(as_numpy(boxes)).astype(np.float64)
    return rotated_nms_polygons(boxes_to_bev_corners(boxes), scores, iou_threshold, pre_max)
