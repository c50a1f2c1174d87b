"""Warping BEV feature maps between agent frames (V2X-ViT's spatial transformation, STTF).

A BEV map of shape ``(C, H, W)`` covers ``lidar_range = [xmin, ymin, zmin, xmax, ymax, zmax]``:
row ``r`` is y and column ``c`` is x, and cell ``(r, c)`` is centred at
``(xmin + (c + 0.5) * cx, ymin + (r + 0.5) * cy)`` with cell size ``cx = voxel_x * stride``,
``cy = voxel_y * stride`` (PointPillars' scatter, then a backbone of total ``stride``).

``warp_to_ego`` resamples each agent's map into the ego frame: the ego cell centred at metric
point ``p`` reads the agent map at ``inv(T) @ p`` (bilinear, zeros outside), where ``T`` is the
agent -> ego transform in metres. Only the planar part of ``T`` is used (x, y rows and columns,
as V2X-ViT does): BEV maps have no height axis. The normalisation to ``grid_sample``'s [-1, 1]
coordinates uses the x and y extents separately, so non-square maps warp correctly.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F


def _check_grid_geometry(
    height: int, width: int, lidar_range: Sequence[float], voxel_size: Sequence[float], stride: float
) -> tuple[float, float, float, float]:
    """(xmin, ymin, cell_x, cell_y) after checking that an (H, W) map covers ``lidar_range``."""
    if len(lidar_range) != 6:
        raise ValueError(f"lidar_range must be [xmin, ymin, zmin, xmax, ymax, zmax], got {list(lidar_range)}")
    if len(voxel_size) < 2 or min(float(v) for v in voxel_size[:2]) <= 0:
        raise ValueError(f"voxel_size must hold positive x and y sizes, got {list(voxel_size)}")
    if stride <= 0:
        raise ValueError(f"stride must be positive, got {stride}")
    xmin, ymin, _, xmax, ymax, _ = (float(v) for v in lidar_range)
    cell_x, cell_y = float(voxel_size[0]) * stride, float(voxel_size[1]) * stride
    for name, n, lo, hi, cell in (("W", width, xmin, xmax, cell_x), ("H", height, ymin, ymax, cell_y)):
        expected = (hi - lo) / cell
        if abs(n - expected) >= 1.0:
            raise ValueError(
                f"BEV map {name}={n} does not match lidar_range {list(lidar_range)} with voxel_size "
                f"{list(voxel_size)} and stride {stride} (expected about {expected:.2f} cells)"
            )
    return xmin, ymin, cell_x, cell_y


def centred_lidar_range(height: int, width: int, voxel_size: Sequence[float], stride: float) -> list[float]:
    """The lidar range of an (H, W) map centred on the sensor (V2X-ViT's implicit assumption)."""
    half_x = width * float(voxel_size[0]) * stride / 2
    half_y = height * float(voxel_size[1]) * stride / 2
    return [-half_x, -half_y, -1.0, half_x, half_y, 1.0]


def bev_sampling_theta(
    transform: torch.Tensor,
    height: int,
    width: int,
    lidar_range: Sequence[float],
    voxel_size: Sequence[float],
    stride: float,
) -> torch.Tensor:
    """``affine_grid`` matrices (..., 2, 3) that pull an agent map into the ego frame.

    ``transform`` (..., 4, 4) maps agent metres to ego metres. The returned theta maps an
    output (ego) location in normalised coordinates (align_corners=False) to the agent map's
    normalised coordinates.
    """
    if transform.shape[-2:] != (4, 4):
        raise ValueError(f"transform must have shape (..., 4, 4), got {tuple(transform.shape)}")
    if not torch.isfinite(transform).all():
        raise ValueError("transform holds non-finite values")
    xmin, ymin, cell_x, cell_y = _check_grid_geometry(height, width, lidar_range, voxel_size, stride)
    t = transform.detach().to(torch.float64)
    planar = torch.zeros(t.shape[:-2] + (3, 3), dtype=torch.float64, device=t.device)
    planar[..., :2, :2] = t[..., :2, :2]
    planar[..., :2, 2] = t[..., :2, 3]
    planar[..., 2, 2] = 1.0
    ego_to_agent = torch.linalg.inv(planar)
    # metres = A @ normalised + o, with A = diag(half extents) and o the map centre.
    half = torch.tensor([width * cell_x / 2, height * cell_y / 2], dtype=torch.float64, device=t.device)
    centre = torch.tensor([xmin, ymin], dtype=torch.float64, device=t.device) + half
    rot = ego_to_agent[..., :2, :2]
    trans = ego_to_agent[..., :2, 2]
    theta = torch.empty(t.shape[:-2] + (2, 3), dtype=torch.float64, device=t.device)
    theta[..., :2, :2] = rot * half[None, :] / half[:, None]
    theta[..., :2, 2] = ((rot @ centre[:, None]).squeeze(-1) + trans - centre) / half
    return theta


def warp_to_ego(
    x: torch.Tensor,
    transform: torch.Tensor,
    lidar_range: Sequence[float],
    voxel_size: Sequence[float],
    stride: float,
    mode: str = "bilinear",
) -> torch.Tensor:
    """Resample agent maps ``x`` (B, L, C, H, W) into the ego frame given agent->ego ``transform``
    (B, L, 4, 4) in metres. Cells that fall outside an agent's map are zero."""
    if x.dim() != 5:
        raise ValueError(f"x must have shape (B, L, C, H, W), got {tuple(x.shape)}")
    b, n_agents, c, h, w = x.shape
    if transform.shape != (b, n_agents, 4, 4):
        raise ValueError(f"transform must have shape {(b, n_agents, 4, 4)}, got {tuple(transform.shape)}")
    theta = bev_sampling_theta(transform, h, w, lidar_range, voxel_size, stride).to(x.dtype)
    flat = x.reshape(b * n_agents, c, h, w)
    grid = F.affine_grid(theta.reshape(-1, 2, 3), [b * n_agents, c, h, w], align_corners=False)
    out = F.grid_sample(flat, grid, mode=mode, padding_mode="zeros", align_corners=False)
    return out.reshape(b, n_agents, c, h, w)


def warp_valid_mask(
    transform: torch.Tensor,
    height: int,
    width: int,
    lidar_range: Sequence[float],
    voxel_size: Sequence[float],
    stride: float,
) -> torch.Tensor:
    """(..., H, W) bool: which ego cells the warp by ``transform`` (..., 4, 4) reads from inside
    the agent's map (V2X-ViT's ROI mask, used to keep empty warped cells out of attention)."""
    theta = bev_sampling_theta(transform, height, width, lidar_range, voxel_size, stride)
    lead = theta.shape[:-2]
    flat = theta.reshape(-1, 2, 3).float()
    grid = F.affine_grid(flat, [flat.shape[0], 1, height, width], align_corners=False)
    # A cell is inside when its sampling point lies within the source map's extent (nearest cell exists).
    valid = (grid[..., 0].abs() <= 1.0) & (grid[..., 1].abs() <= 1.0)
    return valid.reshape(lead + (height, width))
