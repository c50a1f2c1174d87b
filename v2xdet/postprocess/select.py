"""From scored candidate boxes to detections: threshold, rotated NMS, range crop, top ``max_num``."""
from __future__ import annotations

import numpy as np

from v2xdet.data_utils.preprocess.crop import check_range
from v2xdet.geometry.boxes import boxes_to_corners, check_boxes
from v2xdet.geometry.nms import rotated_nms


def boxes_in_range(boxes, limit_range, min_corners: int = 8) -> np.ndarray:
    """(N,) bool: at least ``min_corners`` of the box's 8 corners lie in the range (inclusive, x/y/z).

    OpenCOOD's ``mask_boxes_outside_range_numpy`` rule (all 8 corners by default), used on both
    predictions and ground truth so that AP counts the same region.
    """
    r = check_range(limit_range, "gt_range")
    corners = boxes_to_corners(boxes)
    inside = ((corners >= r[:3]) & (corners <= r[3:])).all(axis=2)
    return inside.sum(axis=1) >= min_corners


def _result(boxes: np.ndarray, scores: np.ndarray) -> dict[str, np.ndarray]:
    boxes = boxes.astype(np.float32)
    return {"boxes": boxes, "scores": scores.astype(np.float32),
            "corners": boxes_to_corners(boxes).astype(np.float32)}


def select_detections(boxes, scores, score_threshold: float, nms_thresh: float, max_num: int | None = None,
                      gt_range=None, pre_nms_max: int | None = None) -> dict[str, np.ndarray]:
    """Detections of one sample from candidate ``boxes (N, 7)`` and ``scores (N,)`` (numpy or torch).

    Keeps ``score > score_threshold``, then greedy rotated NMS at ``nms_thresh`` over the best
    ``pre_nms_max`` (None: all), then the boxes inside ``gt_range`` (if given), then the best
    ``max_num``. Returns ``boxes (K, 7)``, ``scores (K,)`` by descending score and ``corners (K, 8, 3)``.
    """
    if hasattr(boxes, "detach"):
        boxes, scores = boxes.detach().cpu().numpy(), scores.detach().cpu().numpy()
    boxes = check_boxes(boxes).astype(np.float64)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if scores.shape[0] != boxes.shape[0]:
        raise ValueError(f"scores must have one entry per box ({boxes.shape[0]}), got {scores.shape}")
    keep = scores > score_threshold
    boxes, scores = boxes[keep], scores[keep]
    order = rotated_nms(boxes, scores, nms_thresh, pre_max=pre_nms_max)
    boxes, scores = boxes[order], scores[order]
    if gt_range is not None:
        inside = boxes_in_range(boxes, gt_range)
        boxes, scores = boxes[inside], scores[inside]
    if max_num is not None:
        boxes, scores = boxes[:max_num], scores[:max_num]
    return _result(boxes, scores)


def merge_late(boxes_per_agent, scores_per_agent, nms_thresh: float,
               max_num: int | None = None) -> dict[str, np.ndarray]:
    """Late fusion: pool every agent's detections (already in the ego frame) and suppress duplicates."""
    if len(boxes_per_agent) != len(scores_per_agent):
        raise ValueError(f"got boxes for {len(boxes_per_agent)} agents but scores for "
                         f"{len(scores_per_agent)}")
    boxes = [check_boxes(np.asarray(b), f"boxes_per_agent[{i}]") for i, b in enumerate(boxes_per_agent)]
    scores = [np.asarray(s, dtype=np.float64).reshape(-1) for s in scores_per_agent]
    all_boxes = np.concatenate(boxes, axis=0) if boxes else np.zeros((0, 7))
    all_scores = np.concatenate(scores, axis=0) if scores else np.zeros(0)
    return select_detections(all_boxes, all_scores, -np.inf, nms_thresh, max_num)
