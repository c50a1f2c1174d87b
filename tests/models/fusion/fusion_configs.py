"""Small V2X-ViT / MSwin-deformable configs for the fusion tests (V2X-ViT's keys, tiny sizes)."""
from __future__ import annotations

import copy

DIM = 32


def v2xvit_args(**deform) -> dict:
    """The ``transformer`` block of a small V2X-ViT; ``deform`` keys switch on our branch."""
    args = {
        "encoder": {
            "num_blocks": 1,
            "depth": 2,
            "use_roi_mask": True,
            "use_RTE": True,
            "RTE_ratio": 2,
            "sttf": {"voxel_size": [0.4, 0.4, 4], "downsample_rate": 4},
            "cav_att_config": {"dim": DIM, "use_hetero": True, "use_RTE": True, "RTE_ratio": 2,
                               "heads": 2, "dim_head": 8, "dropout": 0.0},
            "pwindow_att_config": {"dim": DIM, "heads": [4, 2], "dim_head": [4, 8], "dropout": 0.0,
                                   "window_size": [2, 4], "relative_pos_embedding": True,
                                   "fusion_method": "split_attn"},
            "feed_forward": {"mlp_dim": 48, "dropout": 0.0},
        }
    }
    if deform:
        cfg = {"enabled": True, "heads": 2, "dim_head": 8, "stride": 2, "offset_range_factor": 2.0,
               "offset_kernel": 3, "sample_from": "all", "use_pe": True}
        cfg.update(deform)
        args["encoder"]["pwindow_att_config"]["deform"] = cfg
    return copy.deepcopy(args)
