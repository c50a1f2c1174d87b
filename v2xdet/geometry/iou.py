"""Rotated bird's-eye-view IoU of boxes and convex polygons, exact and vectorized.

Every pair is clipped with Sutherland-Hodgman (one convex polygon against the edges of the
other) and measured with the shoelace formula, compiled with numba. Pairs whose axis-aligned
bounding boxes do not overlap are skipped before any clipping, so in a scene of spread-out
boxes almost every pair costs four comparisons.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from v2xdet.geometry.boxes import boxes_to_bev_corners, check_boxes

# Relative tolerance for the convexity check: cross products this small (relative to the
# polygon's scale squared) count as collinear, not as a turn the other way.
_CONVEX_RTOL = 1e-9


def signed_areas(polys: np.ndarray) -> np.ndarray:
    """(N, K, 2) polygons to (N,) shoelace areas, positive for counter-clockwise order."""
    polys = np.asarray(polys, dtype=np.float64)
    nxt = np.concatenate([polys[:, 1:], polys[:, :1]], axis=1)
    return 0.5 * (polys[..., 0] * nxt[..., 1] - nxt[..., 0] * polys[..., 1]).sum(axis=-1)


@njit(cache=True, nogil=True)
def _orient_convex(polys):
    """Counter-clockwise copy of ``polys``, their areas, and the first bad row and why.

    Returns ``(out, areas, bad_row, reason)``: reason 1 = non-finite coordinates, 2 = not
    convex (turns both ways beyond a tolerance relative to the polygon's size); bad_row -1 if
    all rows are fine.
    """
    n, k = polys.shape[0], polys.shape[1]
    out = np.empty((n, k, 2))
    areas = np.empty(n)
    for i in range(n):
        s = 0.0
        for v in range(k):
            x, y = polys[i, v, 0], polys[i, v, 1]
            if not (np.isfinite(x) and np.isfinite(y)):
                return out, areas, i, 1
            w = (v + 1) % k
            s += x * polys[i, w, 1] - polys[i, w, 0] * y
        flip = s < 0.0
        for v in range(k):
            src = k - 1 - v if flip else v
            out[i, v, 0] = polys[i, src, 0]
            out[i, v, 1] = polys[i, src, 1]
        areas[i] = 0.5 * abs(s)
        scale = 0.0
        for v in range(k):
            w = (v + 1) % k
            scale = max(scale, abs(out[i, w, 0] - out[i, v, 0]), abs(out[i, w, 1] - out[i, v, 1]))
        tol = _CONVEX_RTOL * scale * scale
        for v in range(k):
            w, u = (v + 1) % k, (v + 2) % k
            e1x, e1y = out[i, w, 0] - out[i, v, 0], out[i, w, 1] - out[i, v, 1]
            e2x, e2y = out[i, u, 0] - out[i, w, 0], out[i, u, 1] - out[i, w, 1]
            if e1x * e2y - e1y * e2x < -tol:
                return out, areas, i, 2
    return out, areas, -1, 0


def prepare_polygons(polys, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Validate (N, K, 2) convex polygons; return them counter-clockwise (float64) and their areas.

    Clockwise rows are reversed (CARLA's left-handed frames produce them); a non-finite or
    non-convex polygon is refused, naming its row.
    """
    arr = np.asarray(polys, dtype=np.float64)
    if arr.ndim == 3 and arr.shape[0] == 0:
        return np.zeros((0, max(arr.shape[1], 3), 2)), np.zeros(0)
    if arr.ndim != 3 or arr.shape[2] != 2 or arr.shape[1] < 3:
        raise ValueError(f"{name} must have shape (N, K, 2) with K >= 3 vertices, got {arr.shape}")
    out, areas, bad, reason = _orient_convex(np.ascontiguousarray(arr))
    if bad >= 0:
        what = "has non-finite coordinates" if reason == 1 else "is not a convex polygon"
        raise ValueError(f"{name}[{bad}] {what}: {arr[bad].tolist()}")
    return out, areas


@njit(cache=True, nogil=True)
def _clip_area(pa, pb, buf_in, buf_out) -> float:
    """Area of the intersection of convex counter-clockwise polygons ``pa`` and ``pb``.

    ``pa`` is clipped by the half-plane left of each edge of ``pb``; ``buf_in``/``buf_out`` are
    scratch arrays of shape (capacity, 2) reused across pairs.
    """
    n = pa.shape[0]
    for k in range(n):
        buf_in[k, 0] = pa[k, 0]
        buf_in[k, 1] = pa[k, 1]
    cap = buf_in.shape[0]
    kb = pb.shape[0]
    for e in range(kb):
        ax, ay = pb[e, 0], pb[e, 1]
        ex, ey = pb[(e + 1) % kb, 0] - ax, pb[(e + 1) % kb, 1] - ay
        m = 0
        px, py = buf_in[n - 1, 0], buf_in[n - 1, 1]
        dp = ex * (py - ay) - ey * (px - ax)
        for k in range(n):
            cx, cy = buf_in[k, 0], buf_in[k, 1]
            dc = ex * (cy - ay) - ey * (cx - ax)
            if (dp >= 0.0) != (dc >= 0.0) and m < cap:
                t = dp / (dp - dc)
                buf_out[m, 0] = px + t * (cx - px)
                buf_out[m, 1] = py + t * (cy - py)
                m += 1
            if dc >= 0.0 and m < cap:
                buf_out[m, 0] = cx
                buf_out[m, 1] = cy
                m += 1
            px, py, dp = cx, cy, dc
        if m < 3:
            return 0.0
        buf_in, buf_out = buf_out, buf_in
        n = m
    area = 0.0
    for k in range(n):
        j = (k + 1) % n
        area += buf_in[k, 0] * buf_in[j, 1] - buf_in[j, 0] * buf_in[k, 1]
    return max(0.5 * area, 0.0)


@njit(cache=True, nogil=True)
def polygon_bounds(polys):
    """(N, 4) axis-aligned bounds (xmin, ymin, xmax, ymax) of (N, K, 2) polygons."""
    out = np.empty((polys.shape[0], 4))
    for i in range(polys.shape[0]):
        out[i, 0] = polys[i, :, 0].min()
        out[i, 1] = polys[i, :, 1].min()
        out[i, 2] = polys[i, :, 0].max()
        out[i, 3] = polys[i, :, 1].max()
    return out


@njit(cache=True, nogil=True)
def pair_iou(pa, pb, area_a, area_b, buf_in, buf_out) -> float:
    """IoU of two convex counter-clockwise polygons with known areas (0 when either is empty)."""
    if area_a <= 0.0 or area_b <= 0.0:
        return 0.0
    inter = _clip_area(pa, pb, buf_in, buf_out)
    union = area_a + area_b - inter
    if union <= 0.0:
        return 0.0
    return min(inter / union, 1.0)


@njit(cache=True, nogil=True)
def iou_matrix_kernel(polys_a, polys_b, area_a, area_b):
    """(N, M) IoU of prepared (counter-clockwise, convex) polygons with their areas."""
    n, m = polys_a.shape[0], polys_b.shape[0]
    out = np.zeros((n, m))
    box_a, box_b = polygon_bounds(polys_a), polygon_bounds(polys_b)
    cap = 2 * (polys_a.shape[1] + polys_b.shape[1]) + 4
    buf_in = np.empty((cap, 2))
    buf_out = np.empty((cap, 2))
    for i in range(n):
        for j in range(m):
            if (box_a[i, 0] > box_b[j, 2] or box_b[j, 0] > box_a[i, 2]
                    or box_a[i, 1] > box_b[j, 3] or box_b[j, 1] > box_a[i, 3]):
                continue
            out[i, j] = pair_iou(polys_a[i], polys_b[j], area_a[i], area_b[j], buf_in, buf_out)
    return out


def polygon_iou_matrix(polys_a, polys_b) -> np.ndarray:
    """(N, M) float64 IoU of convex polygons ``(N, K, 2)`` and ``(M, K', 2)``.

    Either vertex order is accepted (clockwise rows are reversed); zero-area polygons have IoU 0
    with everything, identical ones 1, and polygons that only touch 0.
    """
    a, area_a = prepare_polygons(polys_a, "polys_a")
    b, area_b = prepare_polygons(polys_b, "polys_b")
    if a.shape[0] == 0 or b.shape[0] == 0:
        return np.zeros((a.shape[0], b.shape[0]))
    return iou_matrix_kernel(a, b, area_a, area_b)


def bev_iou_matrix(boxes_a, boxes_b) -> np.ndarray:
    """(N, M) float64 bird's-eye-view IoU of ``(x, y, z, l, w, h, yaw)`` boxes (z and h ignored)."""
    a = check_boxes(boxes_a, "boxes_a").astype(np.float64)
    b = check_boxes(boxes_b, "boxes_b").astype(np.float64)
    return polygon_iou_matrix(boxes_to_bev_corners(a), boxes_to_bev_corners(b))


def corners_to_bev_polygons(corners) -> np.ndarray:
    """(N, 8, 3) corners (OpenCOOD's order) to (N, 4, 2) bottom footprints, counter-clockwise.

    The bottom corners 0-3 are clockwise in a right-handed frame and counter-clockwise in the
    mirrored (left-handed) one, so each row's order is fixed by the sign of its area.
    """
    arr = np.asarray(corners, dtype=np.float64)
    if arr.ndim != 3 or arr.shape[1:] != (8, 3):
        raise ValueError(f"corners must have shape (N, 8, 3), got {arr.shape}")
    return prepare_polygons(arr[:, :4, :2], "corners")[0]
