"""Poses and rigid transforms in OpenCOOD's convention (CARLA world frame, degrees).

A pose is ``[x, y, z, roll, yaw, pitch]``; ``x_to_world(pose)`` is the 4x4 matrix that maps a
point of the pose's frame into the world; ``x1_to_x2(p1, p2)`` maps frame 1 into frame 2.
Every function accepts one pose ``(6,)`` or a stack ``(N, 6)``.
"""
from __future__ import annotations

import numpy as np


def x_to_world(pose) -> np.ndarray:
    """4x4 (or (N, 4, 4)) matrix from the pose's frame to the world, as OpenCOOD builds it."""
    pose = np.asarray(pose, dtype=np.float64)
    if pose.shape[-1] != 6:
        raise ValueError(f"pose must be [x, y, z, roll, yaw, pitch], got shape {pose.shape}")
    x, y, z = pose[..., 0], pose[..., 1], pose[..., 2]
    roll, yaw, pitch = np.radians(pose[..., 3]), np.radians(pose[..., 4]), np.radians(pose[..., 5])
    c_y, s_y = np.cos(yaw), np.sin(yaw)
    c_r, s_r = np.cos(roll), np.sin(roll)
    c_p, s_p = np.cos(pitch), np.sin(pitch)
    m = np.zeros(pose.shape[:-1] + (4, 4))
    m[..., 0, 3], m[..., 1, 3], m[..., 2, 3], m[..., 3, 3] = x, y, z, 1.0
    m[..., 0, 0] = c_p * c_y
    m[..., 0, 1] = c_y * s_p * s_r - s_y * c_r
    m[..., 0, 2] = -c_y * s_p * c_r - s_y * s_r
    m[..., 1, 0] = s_y * c_p
    m[..., 1, 1] = s_y * s_p * s_r + c_y * c_r
    m[..., 1, 2] = -s_y * s_p * c_r + c_y * s_r
    m[..., 2, 0] = s_p
    m[..., 2, 1] = -c_p * s_r
    m[..., 2, 2] = c_p * c_r
    return m


def x1_to_x2(pose1, pose2) -> np.ndarray:
    """Matrix mapping points of frame ``pose1`` into frame ``pose2``: inv(T2) @ T1."""
    return np.linalg.inv(x_to_world(pose2)) @ x_to_world(pose1)


def check_matrix(matrix, name: str = "matrix") -> np.ndarray:
    """Return ``matrix`` as a float (4, 4) array or raise naming the argument and its shape."""
    arr = np.asarray(matrix, dtype=np.float64)
    if arr.shape != (4, 4):
        raise ValueError(f"{name} must be a 4x4 homogeneous transform, got shape {arr.shape}")
    return arr


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a 4x4 transform to the xyz columns of ``points`` (N, >=3); other columns are kept."""
    points = np.asarray(points)
    matrix = check_matrix(matrix)
    if points.ndim != 2 or points.shape[1] < 3:
        raise ValueError(f"points must have shape (N, >=3) with x, y, z first, got {points.shape}")
    out = points.astype(np.result_type(points.dtype, np.float32))  # a copy; integer input becomes float
    xyz = points[:, :3].astype(np.float64)
    out[:, :3] = xyz @ matrix[:3, :3].T + matrix[:3, 3]
    return out


def yaw_of(matrix: np.ndarray) -> np.ndarray:
    """Rotation about z (radians) of a 4x4 transform or a stack of them."""
    return np.arctan2(matrix[..., 1, 0], matrix[..., 0, 0])
