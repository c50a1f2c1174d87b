"""Pillar/voxel grouping of a point cloud with spconv's ``PointToVoxel`` (CPU or CUDA).

spconv keeps voxels in the order their first point appears and points within a voxel in input
order: a voxel past ``max_voxels`` and a point past ``max_points_per_voxel`` are dropped, so the
result is a deterministic function of the point order. Coordinates come back as ``(z, y, x)``
integer indices of the grid ``floor((p - range_min) / voxel_size)``; points outside the range
(half-open, ``min <= p < max``) are ignored.
"""
from __future__ import annotations

import numpy as np
import torch
from spconv.pytorch.utils import PointToVoxel

from v2xdet.data_utils.preprocess.crop import check_points, check_range

NUM_POINT_FEATURES = 4


def grid_size(voxel_size, lidar_range) -> np.ndarray:
    """(3,) int grid dimensions ``(nx, ny, nz)``; the range must be a whole number of voxels."""
    vs = np.asarray(voxel_size, dtype=np.float64).reshape(-1)
    r = check_range(lidar_range)
    if vs.shape != (3,) or (vs <= 0).any():
        raise ValueError(f"voxel_size must be three positive numbers [vx, vy, vz], got {list(vs)}")
    cells = (r[3:] - r[:3]) / vs
    whole = np.round(cells)
    if np.abs(cells - whole).max() > 1e-4:
        raise ValueError(f"lidar_range {list(r)} is not a whole number of voxels of size {list(vs)} "
                         f"(got {list(cells)} cells)")
    return whole.astype(np.int64)


class Voxelizer:
    """Group (N, 4) points into at most ``max_voxels`` voxels of at most ``max_points_per_voxel``.

    ``__call__(points)`` returns numpy arrays::

        voxel_features  (P, T, 4) float32   the points of each voxel, zero-padded
        voxel_coords    (P, 3)    int32     (z, y, x) grid indices
        voxel_num_points (P,)     int32     how many rows of voxel_features are real
    """

    def __init__(self, voxel_size, lidar_range, max_points_per_voxel: int, max_voxels: int):
        self.voxel_size = [float(v) for v in np.asarray(voxel_size).reshape(-1)]
        self.lidar_range = [float(v) for v in check_range(lidar_range)]
        self.grid_size = grid_size(self.voxel_size, self.lidar_range)
        for name, value in (("max_points_per_voxel", max_points_per_voxel), ("max_voxels", max_voxels)):
            if int(value) != value or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        self.max_points_per_voxel = int(max_points_per_voxel)
        self.max_voxels = int(max_voxels)
        self._generator = PointToVoxel(vsize_xyz=self.voxel_size, coors_range_xyz=self.lidar_range,
                                       num_point_features=NUM_POINT_FEATURES,
                                       max_num_voxels=self.max_voxels,
                                       max_num_points_per_voxel=self.max_points_per_voxel)

    @classmethod
    def from_config(cls, cfg: dict, train: bool) -> Voxelizer:
        """Build from a config's ``preprocess`` section (OpenCOOD keys); ``train`` picks the voxel cap."""
        pre = cfg["preprocess"]
        args = pre["args"]
        cap = args["max_voxel_train"] if train else args["max_voxel_test"]
        return cls(args["voxel_size"], pre["cav_lidar_range"], args["max_points_per_voxel"], cap)

    def __call__(self, points) -> dict[str, np.ndarray]:
        pts = check_points(points)
        if pts.shape[1] != NUM_POINT_FEATURES:
            raise ValueError(f"points must have shape (N, 4) as x, y, z, intensity, got {pts.shape}")
        tensor = torch.from_numpy(np.ascontiguousarray(pts, dtype=np.float32))
        voxels, coords, num = self._generator(tensor)
        return {"voxel_features": voxels.numpy(),
                "voxel_coords": coords.numpy().astype(np.int32, copy=False),
                "voxel_num_points": num.numpy().astype(np.int32, copy=False)}
