"""Anchor boxes at the centres of the detection head's feature cells.

From ``postprocess.anchor_args`` (OpenCOOD keys): ``cav_lidar_range``, box size ``l, w, h``,
rotations ``r`` (degrees, one anchor per entry, ``num`` of them) and ``feature_stride`` (voxels
per feature cell). The anchors of cell ``(i, j)`` sit at
``(xmin + (j + 0.5) * vx * stride, ymin + (i + 0.5) * vy * stride, z_center)``. OpenCOOD spreads
them with ``linspace(min + v, max - v, n)``, which drifts up to half a cell off the true centres;
here they sit exactly where the feature cells are.
"""
from __future__ import annotations

import numpy as np

from v2xdet.data_utils.preprocess.crop import check_range
from v2xdet.data_utils.preprocess.voxelize import grid_size

# OpenCOOD's fixed anchor height (metres, LiDAR frame): car centres below a roof-mounted sensor.
DEFAULT_Z_CENTER = -1.0


class AnchorGenerator:
    """``anchors()`` is an ``(H, W, num, 7)`` float32 array of ``(x, y, z, l, w, h, yaw)`` boxes."""

    def __init__(self, lidar_range, voxel_size, feature_stride: int, size, rotations_deg,
                 z_center: float = DEFAULT_Z_CENTER):
        lidar_range = check_range(lidar_range, "cav_lidar_range")
        vs = list(np.asarray(voxel_size, dtype=np.float64).reshape(-1))
        if len(vs) == 2:  # pillars: one voxel spans the height
            vs.append(lidar_range[5] - lidar_range[2])
        nx, ny, _ = grid_size(vs, lidar_range)
        if int(feature_stride) != feature_stride or feature_stride < 1:
            raise ValueError(f"feature_stride must be a positive integer, got {feature_stride!r}")
        stride = int(feature_stride)
        if nx % stride or ny % stride:
            raise ValueError(f"the voxel grid {nx} x {ny} is not divisible by feature_stride {stride}")
        size = np.asarray(size, dtype=np.float64).reshape(-1)
        if size.shape != (3,) or (size <= 0).any():
            raise ValueError(f"anchor size must be positive (l, w, h), got {list(size)}")
        rotations = np.asarray(rotations_deg, dtype=np.float64).reshape(-1)
        if rotations.size == 0:
            raise ValueError("anchor rotations r must list at least one angle (degrees)")
        self.lidar_range = [float(v) for v in lidar_range]
        self.cell = (vs[0] * stride, vs[1] * stride)
        self.feature_size = (int(ny) // stride, int(nx) // stride)
        self.size = size
        self.rotations = np.radians(rotations)
        self.z_center = float(z_center)

    @property
    def num(self) -> int:
        return len(self.rotations)

    @classmethod
    def from_config(cls, cfg: dict) -> AnchorGenerator:
        """From ``postprocess.anchor_args``, voxel size from ``preprocess.args.voxel_size``."""
        args = cfg["postprocess"]["anchor_args"]
        rotations = args["r"]
        if "num" in args and int(args["num"]) != len(rotations):
            raise ValueError(f"postprocess.anchor_args.num is {args['num']} but r lists "
                             f"{len(rotations)} rotations {rotations}")
        voxel_size = cfg["preprocess"]["args"]["voxel_size"]
        return cls(args["cav_lidar_range"], voxel_size, args.get("feature_stride", 2),
                   (args["l"], args["w"], args["h"]), rotations)

    def anchors(self) -> np.ndarray:
        h, w = self.feature_size
        xs = self.lidar_range[0] + (np.arange(w) + 0.5) * self.cell[0]
        ys = self.lidar_range[1] + (np.arange(h) + 0.5) * self.cell[1]
        out = np.empty((h, w, self.num, 7), dtype=np.float64)
        out[..., 0] = xs[None, :, None]
        out[..., 1] = ys[:, None, None]
        out[..., 2] = self.z_center
        out[..., 3:6] = self.size
        out[..., 6] = self.rotations
        return out.astype(np.float32)
