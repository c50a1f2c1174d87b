"""A full V2X config for the tiny world of tests/data_utils (a helper module, not a test)."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data_utils"))

from tiny_world import LIDAR_RANGE, tiny_config, write_tiny_world  # noqa: E402

MODELS = {"none": "point_pillar", "early": "point_pillar", "late": "point_pillar",
          "intermediate": "point_pillar_fcooper"}


def v2x_config(split_dir, strategy: str, score_threshold: float = 0.27) -> dict:
    """tiny_world's dataset config plus a small PointPillars (F-Cooper for intermediate fusion)."""
    cfg = tiny_config(split_dir, strategy)
    cfg["name"] = f"tiny_{strategy}"
    cfg["postprocess"]["target_args"]["score_threshold"] = score_threshold
    cfg["model"] = {"core_method": MODELS[strategy], "args": {
        "voxel_size": [0.8, 0.8, 4.0], "lidar_range": list(LIDAR_RANGE), "anchor_number": 2, "max_cav": 5,
        "compression": 0,
        "pillar_vfe": {"use_norm": True, "with_distance": False, "use_absolute_xyz": True,
                       "num_filters": [16]},
        "point_pillar_scatter": {"num_features": 16},
        "base_bev_backbone": {"layer_nums": [1, 1], "layer_strides": [2, 2], "num_filters": [16, 32],
                              "upsample_strides": [1, 2], "num_upsample_filter": [16, 16]},
        "dir_args": {"dir_offset": np.pi / 4, "num_bins": 2}}}
    cfg["loss"] = {"core_method": "point_pillar_loss",
                   "args": {"cls_weight": 1.0, "reg": 2.0, "dir_weight": 0.2}}
    cfg["optimizer"] = {"core_method": "Adam", "lr": 0.002}
    cfg["lr_scheduler"] = {"core_method": "multistep", "step_size": [10], "gamma": 0.1}
    cfg["train_params"].update(epoches=1, batch_size=2)
    return cfg


__all__ = ["v2x_config", "write_tiny_world"]
