"""PointPillars' pillar feature net: per-point features, shared linear layers, max over the pillar.

Each point of a pillar is decorated with its offset from the pillar's point mean (3) and from
the pillar's geometric centre (3), optionally its distance to the sensor (1); with
``use_absolute_xyz`` the raw ``x, y, z, intensity`` are kept, otherwise only the intensity.
Padding rows (whatever they hold) are zeroed before the first layer. A PFN layer is
``linear -> BatchNorm -> ReLU``; every layer but the last concatenates the pillar-wise max back
onto each point.
"""
from __future__ import annotations

import torch
from torch import nn


class PFNLayer(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, use_norm: bool, last_layer: bool):
        super().__init__()
        self.last_layer = last_layer
        width = out_channels if last_layer else out_channels // 2
        self.linear = nn.Linear(in_channels, width, bias=not use_norm)
        self.norm = nn.BatchNorm1d(width, eps=1e-3, momentum=0.01) if use_norm else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(P, T, C_in) -> (P, T, C_out) or, for the last layer, (P, C_out)."""
        p, t, _ = x.shape
        x = torch.relu(self.norm(self.linear(x).reshape(p * t, -1)).reshape(p, t, -1))
        pooled = x.max(dim=1, keepdim=True).values
        if self.last_layer:
            return pooled.squeeze(1)
        return torch.cat([x, pooled.expand(-1, t, -1)], dim=2)


class PillarVFE(nn.Module):
    """``forward(voxel_features (P, T, 4), voxel_num_points (P,), voxel_coords (P, 4)) -> (P, C)``.

    ``voxel_coords`` rows are ``(entry, z, y, x)``; ``out_channels = num_filters[-1]``.
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

    def decorate(self, voxel_features, voxel_num_points, voxel_coords) -> torch.Tensor:
        """(P, T, 4) points to (P, T, D) decorated features, padding rows zero."""
        rows = torch.arange(voxel_features.shape[1], device=voxel_features.device)
        real = (rows[None, :] < voxel_num_points[:, None]).unsqueeze(2).to(voxel_features.dtype)
        voxel_features = voxel_features * real
        xyz = voxel_features[..., :3]
        num = voxel_num_points.to(xyz.dtype).clamp(min=1).view(-1, 1, 1)
        to_mean = xyz - xyz.sum(dim=1, keepdim=True) / num
        centre = voxel_coords[:, [3, 2, 1]].to(xyz.dtype) * self.voxel_size + self.centre_offset
        to_centre = xyz - centre[:, None, :]
        parts = [voxel_features if self.use_absolute_xyz else voxel_features[..., 3:], to_mean, to_centre]
        if self.with_distance:
            parts.append(xyz.norm(dim=2, keepdim=True))
        return torch.cat(parts, dim=2) * real

    def forward(self, voxel_features, voxel_num_points, voxel_coords) -> torch.Tensor:
        if voxel_features.shape[0] == 0:
            return voxel_features.new_zeros((0, self.out_channels))
        x = self.decorate(voxel_features, voxel_num_points, voxel_coords)
        for layer in self.layers:
            x = layer(x)
        return x
