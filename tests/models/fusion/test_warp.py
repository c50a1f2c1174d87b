"""warp_to_ego: BEV maps land where their world points are, on non-square maps, with rotations."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from v2xdet.geometry.transforms import x1_to_x2, x_to_world
from v2xdet.models.fusion.warp import warp_to_ego, warp_valid_mask

VOXEL = [0.4, 0.4, 4.0]
STRIDE = 2
CELL = VOXEL[0] * STRIDE  # 0.8 m
H, W = 10, 16  # 8 m x 12.8 m, not square
RANGE = [-6.4, -4.0, -3.0, 6.4, 4.0, 1.0]


def cell_centre(row: int, col: int) -> np.ndarray:
    return np.array([RANGE[0] + (col + 0.5) * CELL, RANGE[1] + (row + 0.5) * CELL])


def planar(yaw_deg: float, tx: float, ty: float) -> torch.Tensor:
    a = math.radians(yaw_deg)
    t = torch.eye(4, dtype=torch.float64)
    t[:2, :2] = torch.tensor([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    t[:2, 3] = torch.tensor([tx, ty])
    return t


def test_feature_lands_at_its_world_point_after_pose_round_trip():
    """A feature at a world point in a neighbour's map lands on that point's ego cell."""
    ego_pose = [10.0, -3.0, 1.5, 0.0, 30.0, 0.0]
    ego_cell = (6, 11)
    p_world = x_to_world(ego_pose) @ np.array([*cell_centre(*ego_cell), 0.0, 1.0])
    # Choose the neighbour pose so that the same world point sits on a neighbour cell centre.
    nb_yaw = 30.0 + 57.0
    nb_cell = (3, 4)
    c, s = math.cos(math.radians(nb_yaw)), math.sin(math.radians(nb_yaw))
    local = cell_centre(*nb_cell)
    nb_xy = p_world[:2] - np.array([[c, -s], [s, c]]) @ local
    nb_pose = [nb_xy[0], nb_xy[1], 1.5, 0.0, nb_yaw, 0.0]
    t_nb_to_ego = torch.from_numpy(x1_to_x2(nb_pose, ego_pose))
    landed = t_nb_to_ego.numpy() @ np.array([*local, 0.0, 1.0])
    assert np.allclose(landed, [*cell_centre(*ego_cell), 0.0, 1.0])

    x = torch.zeros(1, 2, 3, H, W)
    x[0, 1, :, nb_cell[0], nb_cell[1]] = torch.tensor([1.0, 2.0, 3.0])
    transform = torch.stack([torch.eye(4, dtype=torch.float64), t_nb_to_ego])[None]
    out = warp_to_ego(x, transform, RANGE, VOXEL, STRIDE)
    assert torch.allclose(out[0, 1, :, ego_cell[0], ego_cell[1]], torch.tensor([1.0, 2.0, 3.0]), atol=1e-4)
    # The ego cell is the only one reading the exact centre: every other cell gets less of it.
    energy = out[0, 1, 0]
    assert energy.argmax().item() == ego_cell[0] * W + ego_cell[1]
    assert torch.equal(out[0, 0], x[0, 0])  # identity transform keeps the ego map


def test_linear_field_is_resampled_exactly():
    """Bilinear warping reproduces a linear function of the agent's metric coordinates."""
    t = planar(23.0, 0.7, -0.4)
    coef = np.array([0.3, -1.1])
    rows, cols = np.meshgrid(np.arange(H), np.arange(W), indexing="ij")
    centres = np.stack([RANGE[0] + (cols + 0.5) * CELL, RANGE[1] + (rows + 0.5) * CELL], -1)
    field = torch.tensor(centres @ coef + 2.0, dtype=torch.float32)
    x = field.expand(1, 1, 1, H, W).clone()
    out = warp_to_ego(x, t[None, None], RANGE, VOXEL, STRIDE)[0, 0, 0]
    inv = np.linalg.inv(t.numpy())
    src = centres @ inv[:2, :2].T + inv[:2, 3]
    expected = src @ coef + 2.0
    # Interior cells: the source point lies between four source cell centres.
    col_f = (src[..., 0] - RANGE[0]) / CELL - 0.5
    row_f = (src[..., 1] - RANGE[1]) / CELL - 0.5
    interior = (col_f >= 0) & (col_f <= W - 1) & (row_f >= 0) & (row_f <= H - 1)
    assert interior.sum() > 60
    assert np.allclose(out.numpy()[interior], expected[interior], atol=1e-4)
    valid = warp_valid_mask(t, H, W, RANGE, VOXEL, STRIDE).numpy()
    assert valid[interior].all()
    outside = (col_f < -1) | (col_f > W) | (row_f < -1) | (row_f > H)
    assert outside.any() and not valid[outside].any()
    assert np.all(out.numpy()[outside] == 0)


def test_translation_moves_by_whole_cells():
    x = torch.arange(H * W, dtype=torch.float32).view(1, 1, 1, H, W)
    out = warp_to_ego(x, planar(0.0, 2 * CELL, -1 * CELL)[None, None], RANGE, VOXEL, STRIDE)[0, 0, 0]
    # agent point p lands at p + (2 cells in x, -1 cell in y)
    assert torch.allclose(out[0:H - 1, 2:], x[0, 0, 0, 1:, : W - 2], atol=1e-4)
    assert out[:, :2].abs().max() < 1e-4 and out[H - 1].abs().max() < 1e-4


def test_bad_inputs_are_named():
    x = torch.zeros(1, 1, 2, H, W)
    with pytest.raises(ValueError, match="does not match lidar_range"):
        warp_to_ego(x, torch.eye(4)[None, None], [-10, -4, -3, 10, 4, 1], VOXEL, STRIDE)
    with pytest.raises(ValueError, match="transform must have shape"):
        warp_to_ego(x, torch.eye(4)[None], RANGE, VOXEL, STRIDE)
    with pytest.raises(ValueError, match="non-finite"):
        warp_to_ego(x, torch.full((1, 1, 4, 4), float("nan")), RANGE, VOXEL, STRIDE)
    with pytest.raises(ValueError, match=r"\(B, L, C, H, W\)"):
        warp_to_ego(x[0], torch.eye(4)[None, None], RANGE, VOXEL, STRIDE)
