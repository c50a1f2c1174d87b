"""The one box format and its conversions (the only place that knows other layouts).

Inside v2xdet a box is ``(x, y, z, l, w, h, yaw)``: metres and radians, the box centre, yaw
counter-clockwise from +x about +z. Corners follow OpenCOOD's order so that saved
``pred_corners`` / ``gt_corners`` files are interchangeable::

        4 -------- 5          x (length) points from the 2-3-6-7 face to the 0-1-4-5 face,
       /|         /|          y (width) from the 1-2-5-6 face to the 0-3-4-7 face,
      7 -------- 6 .          z (height) from 0-3 (bottom) to 4-7 (top).
      | |        | |
      . 0 -------- 1
      |/         |/
      3 -------- 2
"""
from __future__ import annotations

import numpy as np
from numba import njit

from v2xdet.geometry.transforms import check_matrix

BOX_DIM = 7
_CORNER_SIGNS = np.array(
    [[1, 1, -1], [1, -1, -1], [-1, -1, -1], [-1, 1, -1],
     [1, 1, 1], [1, -1, 1], [-1, -1, 1], [-1, 1, 1]], dtype=np.float64) / 2.0
_BEV_SIGNS = _CORNER_SIGNS[[2, 1, 0, 3], :2]  # bottom face, counter-clockwise


def as_numpy(x) -> np.ndarray:
    """numpy array of a numpy array, a sequence or a torch tensor (any device, dtype kept;
    bfloat16, which numpy lacks, becomes float32)."""
    if hasattr(x, "detach"):
        t = x.detach().cpu()
        x = t.float().numpy() if str(t.dtype) == "torch.bfloat16" else t.numpy()
    return np.asarray(x)


def check_boxes(boxes, name: str = "boxes") -> np.ndarray:
    """Return ``boxes`` (numpy, list or torch) as an (N, 7) array or raise naming the argument."""
    arr = as_numpy(boxes)
    if arr.ndim == 1 and arr.size == 0:
        arr = arr.reshape(0, BOX_DIM)
    if arr.ndim != 2 or arr.shape[1] != BOX_DIM:
        raise ValueError(f"{name} must have shape (N, 7) as (x, y, z, l, w, h, yaw), got {arr.shape}")
    return arr


def limit_period(angle, offset: float = 0.5, period: float = 2 * np.pi):
    """Wrap angles into ``[-offset * period, (1 - offset) * period)``; works on numpy and torch."""
    shifted = angle / period + offset
    floor = shifted.floor() if hasattr(shifted, "floor") else np.floor(shifted)  # torch stays torch
    return angle - floor * period


def boxes_to_corners(boxes) -> np.ndarray:
    """(N, 7) boxes to (N, 8, 3) corners in OpenCOOD's order."""
    boxes = check_boxes(boxes)
    local = _CORNER_SIGNS[None] * boxes[:, None, 3:6]
    c, s = np.cos(boxes[:, 6]), np.sin(boxes[:, 6])
    x = local[..., 0] * c[:, None] - local[..., 1] * s[:, None]
    y = local[..., 0] * s[:, None] + local[..., 1] * c[:, None]
    return np.stack([x, y, local[..., 2]], axis=-1) + boxes[:, None, :3]


def boxes_to_bev_corners(boxes) -> np.ndarray:
    """(N, 7) boxes to their (N, 4, 2) bird's-eye-view footprints, counter-clockwise.

    The rows are the bottom corners 2, 1, 0, 3 (same values as ``boxes_to_corners``), computed
    directly because NMS and IoU call this on every candidate.
    """
    boxes = check_boxes(boxes)
    lx = _BEV_SIGNS[:, 0] * boxes[:, 3:4]
    ly = _BEV_SIGNS[:, 1] * boxes[:, 4:5]
    c, s = np.cos(boxes[:, 6:7]), np.sin(boxes[:, 6:7])
    out = np.empty((boxes.shape[0], 4, 2))
    out[..., 0] = (lx * c - ly * s) + boxes[:, 0:1]
    out[..., 1] = (lx * s + ly * c) + boxes[:, 1:2]
    return out


def corners_to_boxes(corners) -> np.ndarray:
    """(N, 8, 3) corners (any rigid pose, OpenCOOD's order) to (N, 7) boxes.

    Sizes average the four parallel edges; yaw is the heading of the length edges in the xy
    plane, so a box that was tilted (roll/pitch) comes back as its best upright fit.
    """
    corners = np.asarray(corners, dtype=np.float64)
    if corners.ndim != 3 or corners.shape[1:] != (8, 3):
        raise ValueError(f"corners must have shape (N, 8, 3), got {corners.shape}")
    front, back = corners[:, [0, 1, 4, 5]], corners[:, [3, 2, 7, 6]]
    left, right = corners[:, [0, 3, 4, 7]], corners[:, [1, 2, 5, 6]]
    top, bottom = corners[:, 4:8], corners[:, 0:4]
    length_vec = (front - back).mean(axis=1)
    l = np.linalg.norm(front - back, axis=2).mean(axis=1)
    w = np.linalg.norm(left - right, axis=2).mean(axis=1)
    h = np.linalg.norm(top - bottom, axis=2).mean(axis=1)
    yaw = np.arctan2(length_vec[:, 1], length_vec[:, 0])
    center = corners.mean(axis=1)
    return np.column_stack([center, l, w, h, yaw])


def boxes_to_hwl(boxes) -> np.ndarray:
    """Our ``(x, y, z, l, w, h, yaw)`` to OpenCOOD's ``hwl`` order ``(x, y, z, h, w, l, yaw)``."""
    boxes = check_boxes(boxes)
    return boxes[:, [0, 1, 2, 5, 4, 3, 6]]


def boxes_from_hwl(boxes_hwl) -> np.ndarray:
    """OpenCOOD's ``(x, y, z, h, w, l, yaw)`` to our ``(x, y, z, l, w, h, yaw)``."""
    boxes_hwl = check_boxes(boxes_hwl, "boxes_hwl")
    return boxes_hwl[:, [0, 1, 2, 5, 4, 3, 6]]


def transform_boxes(boxes, matrix: np.ndarray) -> np.ndarray:
    """Move boxes by a 4x4 rigid transform (through their corners, like OpenCOOD)."""
    matrix = check_matrix(matrix)
    corners = boxes_to_corners(boxes)
    moved = corners @ matrix[:3, :3].T + matrix[:3, 3]
    return corners_to_boxes(moved)


@njit(cache=True, nogil=True)
def _count_in_boxes(pts, boxes, out):
    radius = np.sqrt(boxes[:, 3] ** 2 + boxes[:, 4] ** 2) / 2.0
    cos, sin = np.cos(boxes[:, 6]), np.sin(boxes[:, 6])
    for p in range(pts.shape[0]):
        for n in range(boxes.shape[0]):
            dx, dy = pts[p, 0] - boxes[n, 0], pts[p, 1] - boxes[n, 1]
            if abs(dx) > radius[n] or abs(dy) > radius[n] or abs(pts[p, 2] - boxes[n, 2]) > boxes[n, 5] / 2.0:
                continue
            if (abs(dx * cos[n] + dy * sin[n]) <= boxes[n, 3] / 2.0
                    and abs(-dx * sin[n] + dy * cos[n]) <= boxes[n, 4] / 2.0):
                out[n] += 1


def count_points_in_boxes(points, boxes) -> np.ndarray:
    """(N,) int64: how many of ``points`` (P, >=3) lie in each box (closed faces), the column sums
    of :func:`points_in_boxes` without its (P, N) mask (numba; for whole clouds)."""
    boxes = check_boxes(boxes)
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] < 3:
        raise ValueError(f"points must have shape (P, >=3) with x, y, z first, got {pts.shape}")
    out = np.zeros(len(boxes), dtype=np.int64)
    if len(boxes) and len(pts):
        _count_in_boxes(np.ascontiguousarray(pts[:, :3]), np.ascontiguousarray(boxes, dtype=np.float64), out)
    return out


def points_in_boxes(points, boxes) -> np.ndarray:
    """(P, N) boolean mask: point p lies inside box n (closed faces), vectorized."""
    boxes = check_boxes(boxes)
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] < 3:
        raise ValueError(f"points must have shape (P, >=3) with x, y, z first, got {pts.shape}")
    pts = pts[:, :3]
    d = pts[:, None, :] - boxes[None, :, :3]
    c, s = np.cos(boxes[:, 6]), np.sin(boxes[:, 6])
    local_x = d[..., 0] * c + d[..., 1] * s
    local_y = -d[..., 0] * s + d[..., 1] * c
    half = boxes[None, :, 3:6] / 2.0
    return ((np.abs(local_x) <= half[..., 0]) & (np.abs(local_y) <= half[..., 1])
            & (np.abs(d[..., 2]) <= half[..., 2]))
