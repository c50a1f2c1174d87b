"""Scatter pillar features onto the bird's-eye-view canvas (one indexed write for the batch)."""
from __future__ import annotations

import torch
from torch import nn


class PointPillarScatter(nn.Module):
    """``forward(pillar_features (P, C), voxel_coords (P, 4), num_entries) -> (num_entries, C, ny, nx)``.

    ``voxel_coords`` rows are ``(entry, z, y, x)``; the grid is one voxel high (pillars). Cells with
    no pillar are zero.
    """

    def __init__(self, args: dict, in_channels: int, grid_size):
        super().__init__()
        nx, ny, nz = (int(v) for v in grid_size)
        if nz != 1:
            raise ValueError(f"point_pillar_scatter needs a grid one voxel high (pillars), got grid_size "
                             f"{[nx, ny, nz]}; set voxel_size[2] to the lidar range's height")
        if int(args["num_features"]) != in_channels:
            raise ValueError(f"point_pillar_scatter.num_features is {args['num_features']} but the pillar "
                             f"encoder outputs {in_channels} channels")
        self.nx, self.ny = nx, ny
        self.out_channels = in_channels

    def forward(self, pillar_features: torch.Tensor, voxel_coords: torch.Tensor, num_entries: int):
        c = pillar_features.shape[1]
        canvas = pillar_features.new_zeros((num_entries, c, self.ny * self.nx))
        coords = voxel_coords.long()
        cell = coords[:, 2] * self.nx + coords[:, 3]
        canvas[coords[:, 0], :, cell] = pillar_features
        return canvas.view(num_entries, c, self.ny, self.nx)
