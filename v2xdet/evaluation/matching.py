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

from v2xdet.geometry.iou import corners_to_bev_polygons, polygon_iou_matrix


def _to_numpy(x) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def bev_polygons(boxes, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(N, 8, 3) corners or (N, 4, 2) footprints to counter-clockwise (N, 4, 2) polygons and
    their (N, 2) BEV centres; ``None`` is no boxes. Errors name the argument."""
    if boxes is None:
        return np.zeros((0, 4, 2)), np.zeros((0, 2))
    arr = _to_numpy(boxes).astype(np.float64)
    if arr.ndim == 1 and arr.size == 0:
        arr = arr.reshape(0, 8, 3)
    if arr.ndim != 3 or arr.shape[1:] not in ((8, 3), (4, 2)):
        raise ValueError(f"{name} must have shape (N, 8, 3) corners or (N, 4, 2) footprints, got {arr.shape}")
    if not np.isfinite(arr).all():
        bad = int(np.flatnonzero(~np.isfinite(arr).all(axis=(1, 2)))[0])
        raise ValueError(f"{name}[{bad}] has non-finite coordinates")
    centres = arr.mean(axis=1)[:, :2]
    if arr.shape[1] == 8:
        return corners_to_bev_polygons(arr), centres
    return arr, centres


@njit(cache=True, nogil=True)
def _greedy_match(iou, order, pred_bin, gt_bin, n_bins, thresholds):
    """TP flags (n_bins + 1, T, N) in ``order``; slot 0 is all boxes, slot b + 1 is bin b.

    Within a bin only detections and ground truth of that bin take part (bin -1: none).
    """
    n, m = iou.shape
    out = np.zeros((n_bins + 1, thresholds.shape[0], n), dtype=np.bool_)
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
                    if iou[i, j] > best:
                        best = iou[i, j]
                        best_j = j
                if best_j >= 0 and best >= thresholds[t]:
                    matched[best_j] = True
                    out[slot, t, r] = True
    return out


def range_bins(centres: np.ndarray, ranges: np.ndarray) -> np.ndarray:
    """Index of the ``[lo, hi)`` range holding each BEV centre's distance from the origin, or -1."""
    if ranges.shape[0] == 0:
        return np.full(centres.shape[0], -1, dtype=np.int64)
    dist = np.hypot(centres[:, 0], centres[:, 1])
    inside = (dist[:, None] >= ranges[None, :, 0]) & (dist[:, None] < ranges[None, :, 1])
    return np.where(inside.any(axis=1), inside.argmax(axis=1), -1).astype(np.int64)


def match_frame(pred_boxes, pred_scores, gt_boxes, iou_thresholds, ranges=()) -> dict:
    """Match one frame's detections to its ground truth at every threshold and range bin.

    Returns ``scores`` (N,) in descending order, ``tp`` (1 + R, T, N) bool in that order (slot 0
    all boxes, then one slot per range), ``pred_bin`` (N,) in that order and ``gt_bin`` (M,):
    each box's range index or -1.
    """
    pred_polys, pred_centres = bev_polygons(pred_boxes, "pred_corners")
    gt_polys, gt_centres = bev_polygons(gt_boxes, "gt_corners")
    scores = (np.zeros(0) if pred_scores is None else _to_numpy(pred_scores)).astype(np.float64).reshape(-1)
    if scores.shape[0] != pred_polys.shape[0]:
        raise ValueError(f"pred_scores must have shape ({pred_polys.shape[0]},) to match pred_corners, "
                         f"got {scores.shape}")
    if np.isnan(scores).any():
        raise ValueError(f"pred_scores[{int(np.flatnonzero(np.isnan(scores))[0])}] is NaN")
    ranges = np.asarray(ranges, dtype=np.float64).reshape(-1, 2)
    thresholds = np.asarray(iou_thresholds, dtype=np.float64)
    order = np.argsort(-scores)
    iou = polygon_iou_matrix(pred_polys, gt_polys).astype(np.float32)
    pred_bin, gt_bin = range_bins(pred_centres, ranges), range_bins(gt_centres, ranges)
    tp = _greedy_match(iou, order, pred_bin, gt_bin, ranges.shape[0], thresholds)
    return {"scores": scores[order], "tp": tp, "pred_bin": pred_bin[order], "gt_bin": gt_bin}
