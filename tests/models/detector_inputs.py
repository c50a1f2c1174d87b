"""Tiny detector configs and inputs built in code (no dataset): a helper module, not a test."""
from __future__ import annotations

import copy

import numpy as np
import torch

from v2xdet.data_utils.preprocess import Voxelizer

RANGE = [-12.8, -12.8, -3.0, 12.8, 12.8, 1.0]
VOXEL = [0.4, 0.4, 4.0]

MODEL_ARGS = {
    "voxel_size": VOXEL,
    "lidar_range": RANGE,
    "anchor_number": 2,
    "max_cav": 5,
    "compression": 0,
    "pillar_vfe": {"use_norm": True, "with_distance": False, "use_absolute_xyz": True, "num_filters": [16]},
    "point_pillar_scatter": {"num_features": 16},
    "base_bev_backbone": {"layer_nums": [1, 1], "layer_strides": [2, 2], "num_filters": [16, 32],
                          "upsample_strides": [1, 2], "num_upsample_filter": [16, 16]},
    "dir_args": {"dir_offset": np.pi / 4, "num_bins": 2},
}

CONFIG = {
    "model": {"core_method": "point_pillar", "args": MODEL_ARGS},
    "preprocess": {"core_method": "SpVoxelPreprocessor", "cav_lidar_range": RANGE,
                   "args": {"voxel_size": VOXEL, "max_points_per_voxel": 16, "max_voxel_train": 4000,
                            "max_voxel_test": 4000}},
    "postprocess": {"core_method": "VoxelPostprocessor",
                    "anchor_args": {"cav_lidar_range": RANGE, "l": 3.9, "w": 1.6, "h": 1.56, "r": [0, 90],
                                    "feature_stride": 2, "num": 2},
                    "target_args": {"pos_threshold": 0.6, "neg_threshold": 0.45, "score_threshold": 0.3},
                    "nms_thresh": 0.15, "max_num": 100},
    "loss": {"core_method": "point_pillar_loss", "args": {"cls_weight": 1.0, "reg": 2.0, "dir_weight": 0.2}},
}


def config(**model_args) -> dict:
    """A deep copy of :data:`CONFIG` with ``model.args`` entries replaced."""
    cfg = copy.deepcopy(CONFIG)
    cfg["model"]["args"].update(copy.deepcopy(model_args))
    return cfg


def surface_points(boxes: np.ndarray, per_box: int, rng: np.random.Generator) -> np.ndarray:
    """(per_box * N, 4) points on the four sides and the top of each box, random intensity."""
    out = []
    for box in boxes:
        size = box[3:6]
        face = rng.integers(0, 5, per_box)
        local = rng.uniform(-0.5, 0.5, (per_box, 3)) * size
        for f, (axis, sign) in enumerate([(0, 1), (0, -1), (1, 1), (1, -1), (2, 1)]):
            local[face == f, axis] = sign * size[axis] / 2
        c, s = np.cos(box[6]), np.sin(box[6])
        x = local[:, 0] * c - local[:, 1] * s + box[0]
        y = local[:, 0] * s + local[:, 1] * c + box[1]
        out.append(np.column_stack([x, y, local[:, 2] + box[2], rng.uniform(0, 1, per_box)]))
    return np.concatenate(out).astype(np.float32)


def ground_points(n: int, rng: np.random.Generator, z: float = -1.8) -> np.ndarray:
    xy = rng.uniform(RANGE[0], RANGE[3], (n, 2))
    return np.column_stack([xy, np.full(n, z), rng.uniform(0, 1, n)]).astype(np.float32)


def make_batch(point_clouds: list[np.ndarray], record_len: list[int] | None = None,
               cfg: dict = CONFIG) -> dict:
    """Voxelize each entry and collate: the detector's batch keys (single-agent part)."""
    voxelizer = Voxelizer.from_config(cfg, train=True)
    feats, nums, coords = [], [], []
    for i, pts in enumerate(point_clouds):
        v = voxelizer(pts)
        feats.append(v["voxel_features"])
        nums.append(v["voxel_num_points"])
        coords.append(np.pad(v["voxel_coords"], ((0, 0), (1, 0)), constant_values=i))
    record_len = [1] * len(point_clouds) if record_len is None else record_len
    return {"voxel_features": torch.from_numpy(np.concatenate(feats)),
            "voxel_num_points": torch.from_numpy(np.concatenate(nums)),
            "voxel_coords": torch.from_numpy(np.concatenate(coords)),
            "record_len": torch.tensor(record_len)}


# A one-block fusion encoder small enough for tests, and the deformable branch's settings.
ATTENTION = {"dim": 32, "use_hetero": True, "use_RTE": True, "RTE_ratio": 2, "heads": 2, "dim_head": 16,
             "dropout": 0.0}
WINDOWS = {"dim": 32, "heads": [2, 2, 2], "dim_head": [16, 16, 16], "dropout": 0.0, "window_size": [4, 8, 16],
           "relative_pos_embedding": True, "fusion_method": "split_attn"}
TRANSFORMER = {"encoder": {"num_blocks": 1, "depth": 1, "use_roi_mask": True, "cav_att_config": ATTENTION,
                           "pwindow_att_config": WINDOWS, "feed_forward": {"mlp_dim": 32, "dropout": 0.0},
                           "sttf": {"voxel_size": [0.4, 0.4, 4.0], "downsample_rate": 2}}}
DEFORM = {"enabled": True, "heads": 2, "dim_head": 16, "stride": 4, "offset_range_factor": 2.0,
          "offset_kernel": 5, "sample_from": "all", "use_pe": True}


def fusion_config(core_method: str, **deform) -> dict:
    """The tiny config with ``core_method`` and :data:`TRANSFORMER`; MSwin + deformable gets
    :data:`DEFORM` with ``deform``'s entries replaced."""
    cfg = config(transformer=copy.deepcopy(TRANSFORMER))
    cfg["model"]["core_method"] = core_method
    if core_method == "point_pillar_mswin_deform":
        cfg["model"]["args"]["transformer"]["encoder"]["pwindow_att_config"]["deform"] = {**DEFORM, **deform}
    return cfg


def two_agent_batch(shift: float, rng):
    """The ego and one agent ``shift`` metres ahead (along x) both see the same car."""
    car = np.array([[4.0, 2.0, -1.0, 4.2, 1.8, 1.5, 0.3]])
    seen_by_agent = car.copy()
    seen_by_agent[0, 0] -= shift
    batch = make_batch([surface_points(car, 300, rng), surface_points(seen_by_agent, 300, rng)], [2])
    to_ego = torch.eye(4).expand(1, 5, 4, 4).clone()
    to_ego[0, 1, 0, 3] = shift
    prior = torch.zeros(1, 5, 3)
    prior[0, 1, 2] = 1.0   # the other agent is infrastructure
    return {**batch, "agent_to_ego": to_ego, "prior_encoding": prior,
            "spatial_correction": torch.eye(4).expand(1, 5, 4, 4).clone()}
