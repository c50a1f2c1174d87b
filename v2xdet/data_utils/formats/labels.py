"""Ground-truth boxes from a frame's ``vehicles`` labels (OpenCOOD's convention, DESIGN.md section 3).

A vehicle's pose is ``[*(location + center), *angle]`` (the ``center`` offset is added, not
rotated; ``angle`` is ``[roll, yaw, pitch]`` degrees) and its 8 corners are ``±extent`` (half
sizes) in that pose's frame. Corners go to the world by ``x_to_world(vehicle_pose)``, then into a
LiDAR frame by ``inv(x_to_world(lidar_pose))``, and back to ``(x, y, z, l, w, h, yaw)`` through
``corners_to_boxes``; a rolled or pitched vehicle comes back as its best upright fit, as in
OpenCOOD.
"""
from __future__ import annotations

import numpy as np

from v2xdet.geometry.boxes import boxes_to_corners, corners_to_boxes
from v2xdet.geometry.transforms import x_to_world


def vehicle_arrays(vehicles: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(ids (K,) int64, poses (K, 6), extents (K, 3))`` of validated ``vehicles``, in id order."""
    items = sorted(vehicles.items(), key=lambda item: int(item[0]))
    ids = np.array([int(vid) for vid, _ in items], dtype=np.int64)
    poses = np.zeros((ids.size, 6))
    extents = np.zeros((ids.size, 3))
    for row, (_, veh) in enumerate(items):
        poses[row, :3] = np.add(veh["location"], veh["center"])
        poses[row, 3:] = veh["angle"]
        extents[row] = veh["extent"]
    return ids, poses, extents


def _boxes_in(vehicles: dict, world_to_target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ids, poses, extents = vehicle_arrays(vehicles)
    if ids.size == 0:
        return ids, np.zeros((0, 7))
    local = boxes_to_corners(np.column_stack([np.zeros((ids.size, 3)), 2.0 * extents, np.zeros(ids.size)]))
    to_target = world_to_target @ x_to_world(poses)  # (K, 4, 4)
    corners = np.einsum("kij,kcj->kci", to_target[:, :3, :3], local) + to_target[:, None, :3, 3]
    return ids, corners_to_boxes(corners)


def vehicle_boxes(vehicles: dict, lidar_pose) -> tuple[np.ndarray, np.ndarray]:
    """``(ids (K,) int64, boxes (K, 7) float64)`` of ``vehicles`` in the LiDAR frame of ``lidar_pose``.

    ``vehicles`` is the validated ``vehicles`` mapping of a frame (see ``read_frame_yaml``);
    rows are sorted by id.
    """
    return _boxes_in(vehicles, np.linalg.inv(x_to_world(lidar_pose)))


def vehicle_boxes_world(vehicles: dict) -> tuple[np.ndarray, np.ndarray]:
    """``(ids, boxes (K, 7))`` of ``vehicles`` in the world frame (the same labels, no LiDAR)."""
    return _boxes_in(vehicles, np.eye(4))
