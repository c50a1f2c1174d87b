"""Per-frame matching of detections to ground truth (OpenCOOD's ``caluclate_tp_fp``).

Detections are visited by descending score (``np.argsort(-scores)``, the call OpenCOOD makes);
each takes the still unmatched ground-truth box of highest BEV IoU (the first one on ties); it
is a TP when that IoU is >= the threshold, and the box is then matched; otherwise it is a FP
(also when no ground truth is left). One IoU matrix per frame serves every threshold and every
range bin; the greedy loop runs compiled.

IoU values are rounded to float32 before matching, as OpenCOOD's ``compute_iou`` returns
float32; they are compared with the threshold in float64, as under the numpy 1.x it ran with.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from v2xdet.geometry.boxes import as_numpy
from v2xdet.geometry.iou import iou_matrix_kernel, prepare_polygons


def bev_footprints(boxes, name: str) -> np.ndarray:
    """(N, 8, 3) corners or (N, 4, 2) footprints to (N, 4, 2) footprints (bottom corners, either
    orientation); ``None`` is no boxes. Shape errors name the argument."""
    if boxes is None:
        return np.zeros((0, 4, 2))
    arr = as_numpy(boxes).astype(np.float64)
    if arr.ndim == 1 and arr.size == 0:
        arr = arr.reshape(0, 8, 3)
    if arr.ndim != 3 or arr.shape[1:] not in ((8, 3), (4, 2)):
        raise ValueError(f"{name} must have shape (N, 8, 3) corners or (N, 4, 2) footprints, got {arr.shape}")
    return arr[:, :4, :2]


@njit(cache=True, nogil=True)
def _range_bins(polys, ranges):
    """Index of the ``[lo, hi)`` range holding each footprint centre's distance from the origin, or -1."""
    out = np.full(polys.shape[0], -1, dtype=np.int64)
    for i in range(polys.shape[0]):
        cx, cy = 0.0, 0.0
        for v in range(polys.shape[1]):
            cx += polys[i, v, 0]
            cy += polys[i, v, 1]
        dist = np.hypot(cx / polys.shape[1], cy / polys.shape[1])
        for b in range(ranges.shape[0]):
            if ranges[b, 0] <= dist < ranges[b, 1]:
                out[i] = b
                break
    return out


@njit(cache=True, nogil=True)
def _match_kernel(pred_polys, pred_areas, gt_polys, gt_areas, order, ranges, thresholds):
    """IoU matrix, range bins and greedy matching of one frame in one compiled call.

    Returns TP flags (R + 1, T, N) in ``order`` (slot 0: all boxes; slot b + 1: only the
    detections and ground truth of range b), and the range index of each detection and GT box.
    """
    n, m = pred_polys.shape[0], gt_polys.shape[0]
    n_bins = ranges.shape[0]
    pred_bin = _range_bins(pred_polys, ranges)
    gt_bin = _range_bins(gt_polys, ranges)
    out = np.zeros((n_bins + 1, thresholds.shape[0], n), dtype=np.bool_)
    if n == 0 or m == 0:
        return out, pred_bin, gt_bin
    iou = iou_matrix_kernel(pred_polys, gt_polys, pred_areas, gt_areas)
    matched = np.zeros(m, dtype=np.bool_)
    for slot in range(n_bins + 1):
        for t in range(thresholds.shape[0]):
            matched[:] = False
            for r in range(n):
                i = order[r]
                if slot > 0 and pred_bin[i] != slot - 1:
                    continue
                best = -1.0
                best_j = -1
                for j in range(m):
                    if matched[j] or (slot > 0 and gt_bin[j] != slot - 1):
                        continue
                    v = np.float64(np.float32(iou[i, j]))  # OpenCOOD's IoU is float32
                    if v > best:
                        best = v
                        best_j = j
                if best_j >= 0 and best >= thresholds[t]:
                    matched[best_j] = True
                    out[slot, t, r] = True
    return out, pred_bin, gt_bin


def match_frame(pred_boxes, pred_scores, gt_boxes, iou_thresholds, ranges=()) -> dict:
    """Match one frame's detections to its ground truth at every threshold and range bin.

    ``pred_boxes``/``gt_boxes`` are (N, 8, 3) corners or (N, 4, 2) footprints (numpy or torch).
    Returns ``scores`` (N,) in descending order, ``tp`` (1 + R, T, N) bool in that order (slot 0
    all boxes, then one slot per range), ``pred_bin`` (N,) in that order and ``gt_bin`` (M,):
    each box's range index (by the BEV distance of its centre from the origin) or -1.
    """
    pred_polys, pred_areas = prepare_polygons(bev_footprints(pred_boxes, "pred_corners"), "pred_corners")
    gt_polys, gt_areas = prepare_polygons(bev_footprints(gt_boxes, "gt_corners"), "gt_corners")
    given = np.zeros(0) if pred_scores is None else as_numpy(pred_scores)
    raw = given.reshape(-1)
    if raw.shape[0] != pred_polys.shape[0] or given.dtype.kind not in "fiub":
        raise ValueError(f"pred_scores must be ({pred_polys.shape[0]},) numbers to match pred_corners, "
                         f"got shape {given.shape} of {given.dtype}")
    if raw.dtype.kind in "ub":
        raw = raw.astype(np.float64)  # negating unsigned or bool values would not reverse their order
    scores = raw.astype(np.float64)
    if np.isnan(scores).any():
        raise ValueError(f"pred_scores[{int(np.flatnonzero(np.isnan(scores))[0])}] is NaN")
    order = np.argsort(-raw)  # in the scores' own dtype, as OpenCOOD sorts them (ties included)
    tp, pred_bin, gt_bin = _match_kernel(pred_polys, pred_areas, gt_polys, gt_areas, order,
                                         np.asarray(ranges, dtype=np.float64).reshape(-1, 2),
                                         np.asarray(iou_thresholds, dtype=np.float64))
    return {"scores": scores[order], "tp": tp, "pred_bin": pred_bin[order], "gt_bin": gt_bin}
