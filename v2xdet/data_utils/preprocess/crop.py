"""Point filters applied before voxelization: the LiDAR range crop and the ego-vehicle cut."""
from __future__ import annotations

import numpy as np


def check_points(points, name: str = "points") -> np.ndarray:
    """Return ``points`` as an (N, >=3) array or raise naming the argument and its shape."""
    arr = np.asarray(points)
    if arr.ndim != 2 or arr.shape[1] < 3:
        raise ValueError(f"{name} must have shape (N, >=3) with x, y, z first, got {arr.shape}")
    return arr


def check_range(lidar_range, name: str = "lidar_range") -> np.ndarray:
    """Return ``[xmin, ymin, zmin, xmax, ymax, zmax]`` as floats or raise naming the bad value."""
    arr = np.asarray(lidar_range, dtype=np.float64).reshape(-1)
    if arr.shape != (6,) or not np.isfinite(arr).all() or (arr[3:] <= arr[:3]).any():
        raise ValueError(f"{name} must be [xmin, ymin, zmin, xmax, ymax, zmax] with max > min, "
                         f"got {list(np.asarray(lidar_range).reshape(-1))}")
    return arr


def range_mask(points, lidar_range) -> np.ndarray:
    """(N,) bool: the point lies in the half-open box ``min <= p < max`` on x, y and z.

    Half-open like the voxel grid, so every kept point falls into exactly one voxel.
    """
    pts = check_points(points)
    r = check_range(lidar_range)
    xyz = pts[:, :3]
    return ((xyz >= r[:3]) & (xyz < r[3:])).all(axis=1)


def crop_range(points, lidar_range) -> np.ndarray:
    """Keep the points inside ``lidar_range`` (see :func:`range_mask`)."""
    return np.asarray(points)[range_mask(points, lidar_range)]


def remove_ego_points(points, half_extent=(2.45, 1.1), center=(0.5, 0.0)) -> np.ndarray:
    """Drop the returns from the recording vehicle's own body.

    The cut is the BEV rectangle ``|x - cx| <= hx, |y - cy| <= hy``; the default is OpenCOOD's
    ``x in [-1.95, 2.95], y in [-1.1, 1.1]`` around the roof-mounted sensor.
    """
    pts = check_points(points)
    hx, hy = (float(v) for v in half_extent)
    cx, cy = (float(v) for v in center)
    if hx < 0 or hy < 0:
        raise ValueError(f"half_extent must be non-negative (hx, hy), got {tuple(half_extent)}")
    inside = (np.abs(pts[:, 0] - cx) <= hx) & (np.abs(pts[:, 1] - cy) <= hy)
    return pts[~inside]
