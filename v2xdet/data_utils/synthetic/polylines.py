"""2D polylines: arc length, uniform resampling, lateral offsets and Bezier curves.

Roads, lanes, junction connectors and vehicle routes are all polylines ``(M, 2)`` in the world
x/y plane. Headings follow ``x_to_world``: a heading ``h`` points along ``(cos h, sin h)`` and the
right-hand side of a driver (CARLA's +y in the vehicle frame) is ``(-sin h, cos h)``.
"""
from __future__ import annotations

import numpy as np


def arc_length(poly: np.ndarray) -> np.ndarray:
    """Cumulative length at each vertex, starting at 0: (M,)."""
    seg = np.linalg.norm(np.diff(poly, axis=0), axis=1)
    return np.concatenate([[0.0], np.cumsum(seg)])


def resample(poly: np.ndarray, spacing: float) -> np.ndarray:
    """The same curve with vertices every ``spacing`` metres (the last vertex kept)."""
    s = arc_length(poly)
    n = max(int(np.ceil(s[-1] / spacing)), 1)
    t = np.linspace(0.0, s[-1], n + 1)
    return np.stack([np.interp(t, s, poly[:, 0]), np.interp(t, s, poly[:, 1])], axis=1)


def tangents(poly: np.ndarray) -> np.ndarray:
    """Unit tangent at each vertex (central differences, one-sided at the ends)."""
    d = np.gradient(poly, axis=0)
    return d / np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-12)


def right_normals(poly: np.ndarray) -> np.ndarray:
    """Unit vector to the driver's right at each vertex: ``(-t_y, t_x)``."""
    t = tangents(poly)
    return np.stack([-t[:, 1], t[:, 0]], axis=1)


def offset(poly: np.ndarray, distance: float) -> np.ndarray:
    """Parallel curve ``distance`` metres to the right (negative: to the left)."""
    return poly + distance * right_normals(poly)


def cut(poly: np.ndarray, start: float, end: float, spacing: float) -> np.ndarray:
    """The piece between arc lengths ``start`` and ``end``, resampled every ``spacing`` metres."""
    s = arc_length(poly)
    n = max(int(np.ceil((end - start) / spacing)), 1)
    t = np.linspace(start, end, n + 1)
    return np.stack([np.interp(t, s, poly[:, 0]), np.interp(t, s, poly[:, 1])], axis=1)


def cubic_bezier(p0, p1, p2, p3, n: int) -> np.ndarray:
    """``n + 1`` points of the cubic Bezier curve with control points p0..p3."""
    t = np.linspace(0.0, 1.0, n + 1)[:, None]
    return ((1 - t) ** 3 * p0 + 3 * (1 - t) ** 2 * t * p1 + 3 * (1 - t) * t ** 2 * p2 + t ** 3 * p3)


def quadratic_bezier(p0, p1, p2, n: int) -> np.ndarray:
    """``n + 1`` points of the quadratic Bezier curve with control points p0..p2."""
    t = np.linspace(0.0, 1.0, n + 1)[:, None]
    return (1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t ** 2 * p2


def connector(p_in, t_in, p_out, t_out, spacing: float) -> np.ndarray:
    """A smooth curve leaving ``p_in`` along ``t_in`` and arriving at ``p_out`` along ``t_out``.

    Cubic Bezier with handles of 0.4 x the chord, close to a circular arc for a right-angle turn.
    """
    chord = float(np.linalg.norm(np.asarray(p_out) - np.asarray(p_in)))
    h = 0.4 * chord
    rough = cubic_bezier(p_in, p_in + h * t_in, p_out - h * t_out, p_out, 32)
    return resample(rough, spacing)


def headings(poly: np.ndarray) -> np.ndarray:
    """Heading (radians) of the tangent at each vertex."""
    t = tangents(poly)
    return np.arctan2(t[:, 1], t[:, 0])


def wrap_angle(a):
    """Angles wrapped into [-pi, pi)."""
    return (np.asarray(a) + np.pi) % (2 * np.pi) - np.pi
