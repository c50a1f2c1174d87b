"""Training targets for the anchor head: labels by rotated BEV IoU, box residuals, heading bins.

Matching (OpenCOOD's rule, on rotated footprints instead of its axis-aligned ones): an anchor is
positive when its best IoU with a ground-truth box is ``> pos_threshold``, and every GT box makes
its single best anchor positive (when that IoU is above zero) even below the threshold; an
anchor is negative when all its IoUs are ``< neg_threshold`` and it is not positive; the rest is
ignored by the classification loss. Optional ``ignore_boxes`` (labels too sparse to learn from,
see :func:`split_by_points`) make every anchor that is not positive and overlaps one of them with
IoU ``>= neg_threshold``, or is its best anchor, ignored too: the detector is neither taught to
find them nor to call them background.
"""
from __future__ import annotations

import numpy as np

from v2xdet.data_utils.preprocess.box_coder import encode
from v2xdet.geometry.boxes import check_boxes, count_points_in_boxes, limit_period
from v2xdet.geometry.iou import bev_iou_matrix

POSITIVE, NEGATIVE, IGNORED = 1, 0, -1
# OpenPCDet's / HEAL's default: heading bins start at 45 degrees, so neither bin boundary lies
# on the two anchor rotations (0 and 90 degrees).
DEFAULT_DIR_OFFSET = np.pi / 4
DEFAULT_NUM_DIR_BINS = 2


def direction_bins(yaw, dir_offset: float = DEFAULT_DIR_OFFSET, num_bins: int = DEFAULT_NUM_DIR_BINS):
    """Heading class of each yaw: ``floor(((yaw - offset) mod 2 pi) / (2 pi / num_bins))``."""
    rot = limit_period(np.asarray(yaw, dtype=np.float64) - dir_offset, 0.0, 2 * np.pi)
    return np.clip(np.floor(rot / (2 * np.pi / num_bins)), 0, num_bins - 1).astype(np.int64)


def split_by_points(boxes, clouds, min_points: int) -> tuple[np.ndarray, np.ndarray]:
    """``(kept, sparse)``: the ``boxes`` (N, 7) holding at least ``min_points`` points of the
    ``clouds`` (a list of (P, >=3) arrays in the boxes' frame) together, and the others
    (OpenPCDet's ``filter_by_min_points``, here turned into ignore regions by
    :func:`assign_targets`). ``min_points <= 0`` keeps every box."""
    boxes = check_boxes(boxes, "boxes")
    if min_points <= 0 or len(boxes) == 0:
        return boxes, boxes[:0]
    counts = sum(count_points_in_boxes(c, boxes) for c in clouds)
    dense = np.asarray(counts) >= min_points
    return boxes[dense], boxes[~dense]


def assign_targets(anchors, gt_boxes, pos_threshold: float, neg_threshold: float,
                   dir_offset: float = DEFAULT_DIR_OFFSET,
                   num_dir_bins: int = DEFAULT_NUM_DIR_BINS, ignore_boxes=None) -> dict[str, np.ndarray]:
    """Targets for ``anchors`` (H, W, A, 7) and ``gt_boxes`` (M, 7), both ``(x, y, z, l, w, h, yaw)``.

    Returns ``labels`` (H, W, A) int8 (1 positive, 0 negative, -1 ignored), ``reg_targets``
    (H, W, A, 7) float32 (:func:`box_coder.encode` of the matched box, zero off the positives)
    and ``dir_targets`` (H, W, A) int64 (heading bin of the matched box, zero off the positives).
    """
    anchors = np.asarray(anchors)
    if anchors.ndim != 4 or anchors.shape[-1] != 7:
        raise ValueError(f"anchors must have shape (H, W, A, 7), got {anchors.shape}")
    gt = check_boxes(gt_boxes, "gt_boxes").astype(np.float64)
    if not 0.0 <= neg_threshold <= pos_threshold <= 1.0:
        raise ValueError(f"need 0 <= neg_threshold <= pos_threshold <= 1, got neg_threshold="
                         f"{neg_threshold}, pos_threshold={pos_threshold}")
    if (gt[:, 3:6] <= 0).any():
        bad = int(np.flatnonzero((gt[:, 3:6] <= 0).any(axis=1))[0])
        raise ValueError(f"gt_boxes[{bad}] has a non-positive size: {gt[bad].tolist()}")
    grid = anchors.shape[:3]
    flat = anchors.reshape(-1, 7).astype(np.float64)
    labels = np.full(flat.shape[0], NEGATIVE, dtype=np.int8)
    reg = np.zeros((flat.shape[0], 7), dtype=np.float32)
    dirs = np.zeros(flat.shape[0], dtype=np.int64)
    if gt.shape[0] > 0:
        iou = bev_iou_matrix(flat, gt)
        matched = iou.argmax(axis=1)
        best_iou = iou[np.arange(flat.shape[0]), matched]
        positive = best_iou > pos_threshold
        best_anchor = iou.argmax(axis=0)
        has_overlap = iou[best_anchor, np.arange(gt.shape[0])] > 0
        forced = best_anchor[has_overlap]
        matched[forced] = np.flatnonzero(has_overlap)
        positive[forced] = True
        labels[(best_iou >= neg_threshold) & ~positive] = IGNORED
        labels[positive] = POSITIVE
        pos = np.flatnonzero(positive)
        reg[pos] = encode(gt[matched[pos]], flat[pos])
        dirs[pos] = direction_bins(gt[matched[pos], 6], dir_offset, num_dir_bins)
    if ignore_boxes is not None and len(ignore_boxes):
        iou = bev_iou_matrix(flat, check_boxes(ignore_boxes, "ignore_boxes").astype(np.float64))
        near = iou.max(axis=1) >= neg_threshold
        best = iou.argmax(axis=0)
        near[best[iou[best, np.arange(iou.shape[1])] > 0]] = True  # as a kept label's best anchor
        labels[near & (labels != POSITIVE)] = IGNORED
    return {"labels": labels.reshape(grid), "reg_targets": reg.reshape(*grid, 7),
            "dir_targets": dirs.reshape(grid)}
