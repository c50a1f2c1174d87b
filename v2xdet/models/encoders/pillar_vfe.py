"""PointPillars' pillar feature net: per-point features, shared linear layers, max over the pillar.

Each point of a pillar is decorated with its offset from the pillar's point mean (3) and from
the pillar's geometric centre (3), optionally its distance to the sensor (1); with
``use_absolute_xyz`` the raw ``x, y, z, intensity`` are kept, otherwise only the intensity.
A PFN layer is ``linear -> BatchNorm -> ReLU`` on every real point; every layer but the last
concatenates the pillar-wise max back onto each point.

The layers run on the packed real points only. OpenPCDet runs them on the padded ``(P, T)``
block, so the padding rows (most of them: a 0.4 m pillar holds a handful of the 32 slots) cost
compute and join the BatchNorm statistics and the max as a constant row; here they take no
part, and a pillar's feature depends on its points alone.
"""
from __future__ import annotations

import torch
from torch import nn


def pillar_max(values: torch.Tensor, pillar: torch.Tensor, num_pillars: int) -> torch.Tensor:
    """(P, C) maximum of the rows of ``values`` (N, C) that belong to each pillar (index (N,))."""
    out = values.new_zeros((num_pillars, values.shape[1]))
    return out.scatter_reduce(0, pillar[:, None].expand_as(values), values, reduce="amax", include_self=False)


class PFNLayer(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, use_norm: bool, last_layer: bool):
        super().__init__()
        self.last_layer = last_layer
        width = out_channels if last_layer else out_channels // 2
        self.linear = nn.Linear(in_channels, width, bias=not use_norm)
        self.norm = nn.BatchNorm1d(width, eps=1e-3, momentum=0.01) if use_norm else nn.Identity()

    def forward(self, x: torch.Tensor, pillar: torch.Tensor, num_pillars: int) -> torch.Tensor:
        """(N, C_in) points of pillars ``pillar`` (N,) -> (N, C_out), or (P, C_out) for the last layer."""
        x = torch.relu(self.norm(self.linear(x)))
        pooled = pillar_max(x, pillar, num_pillars)
        if self.last_layer:
            return pooled
        return torch.cat([x, pooled[pillar]], dim=1)


class PillarVFE(nn.Module):
    """``forward(voxel_features (P, T, 4), voxel_num_points (P,), voxel_coords (P, 4)) -> (P, C)``.

    ``voxel_coords`` rows are ``(entry, z, y, x)``; ``out_channels = num_filters[-1]``. Rows of
    ``voxel_features`` past ``voxel_num_points`` are ignored whatever they hold.
    """

    def __init__(self, args: dict, in_channels: int, voxel_size, lidar_range):
        super().__init__()
        self.use_absolute_xyz = bool(args["use_absolute_xyz"])
        self.with_distance = bool(args["with_distance"])
        filters = [int(f) for f in args["num_filters"]]
        if not filters:
            raise ValueError("pillar_vfe.num_filters must list at least one layer width")
        if any(f % 2 for f in filters[:-1]):
            raise ValueError(f"pillar_vfe.num_filters before the last must be even (half is "
                             f"concatenated with the pillar max), got {filters}")
        decorated = in_channels + 6 if self.use_absolute_xyz else in_channels - 3 + 6
        decorated += int(self.with_distance)
        widths = [decorated, *filters]
        self.layers = nn.ModuleList(
            PFNLayer(widths[i], widths[i + 1], bool(args["use_norm"]), i == len(filters) - 1)
            for i in range(len(filters)))
        self.out_channels = filters[-1]
        vs = torch.as_tensor([float(v) for v in voxel_size], dtype=torch.float32)
        lo = torch.as_tensor([float(v) for v in lidar_range[:3]], dtype=torch.float32)
        self.register_buffer("voxel_size", vs, persistent=False)
        self.register_buffer("centre_offset", lo + vs / 2, persistent=False)

    def decorate(self, voxel_features, voxel_num_points, voxel_coords) -> tuple[torch.Tensor, torch.Tensor]:
        """Decorated features ``(N, D)`` of the real points and the pillar index ``(N,)`` of each."""
        rows = torch.arange(voxel_features.shape[1], device=voxel_features.device)
        real = rows[None, :] < voxel_num_points[:, None]
        pillar, _ = real.nonzero(as_tuple=True)
        points = voxel_features[real]
        xyz = points[:, :3]
        sums = xyz.new_zeros((voxel_features.shape[0], 3)).index_add_(0, pillar, xyz)
        mean = sums / voxel_num_points.to(xyz.dtype).clamp(min=1)[:, None]
        centre = voxel_coords[:, [3, 2, 1]].to(xyz.dtype) * self.voxel_size + self.centre_offset
        parts = [points if self.use_absolute_xyz else points[:, 3:], xyz - mean[pillar], xyz - centre[pillar]]
        if self.with_distance:
            parts.append(xyz.norm(dim=1, keepdim=True))
        return torch.cat(parts, dim=1), pillar

    def forward(self, voxel_features, voxel_num_points, voxel_coords) -> torch.Tensor:
        if voxel_features.shape[0] == 0:
            return voxel_features.new_zeros((0, self.out_channels))
        if bool((voxel_num_points < 1).any()):
            raise ValueError("every pillar needs at least one point (voxel_num_points >= 1)")
        x, pillar = self.decorate(voxel_features, voxel_num_points, voxel_coords)
        for layer in self.layers:
            x = layer(x, pillar, voxel_features.shape[0])
        return x
