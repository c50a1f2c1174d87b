"""The detector with the real fusion package: warp convention end to end, every cooperative model.

Skipped, naming the reason, only while ``v2xdet.models.fusion`` is not installed.
"""
import copy

import numpy as np
import pytest
import torch
from detector_inputs import config, make_batch, surface_points

from v2xdet.models import MODEL_FUSION, build_detector

fusion = pytest.importorskip("v2xdet.models.fusion", reason="the fusion package is not installed")

ATTENTION = {"dim": 32, "use_hetero": True, "use_RTE": True, "RTE_ratio": 2, "heads": 2, "dim_head": 16,
             "dropout": 0.0}
WINDOWS = {"dim": 32, "heads": [2, 2, 2], "dim_head": [16, 16, 16], "dropout": 0.0, "window_size": [4, 8, 16],
           "relative_pos_embedding": True, "fusion_method": "split_attn"}
TRANSFORMER = {"encoder": {"num_blocks": 1, "depth": 1, "use_roi_mask": True, "cav_att_config": ATTENTION,
                           "pwindow_att_config": WINDOWS, "feed_forward": {"mlp_dim": 32, "dropout": 0.0},
                           "sttf": {"voxel_size": [0.4, 0.4, 4.0], "downsample_rate": 2}}}
DEFORM = {"enabled": True, "heads": 2, "dim_head": 16, "stride": 4, "offset_range_factor": 2.0,
          "offset_kernel": 5, "sample_from": "all", "use_pe": True}


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


def test_agent_to_ego_warp_aligns_the_agent_map_with_the_ego_map():
    cfg = config()
    cfg["model"]["core_method"] = "point_pillar_fcooper"
    torch.manual_seed(0)
    det = build_detector(cfg["model"]).eval()
    batch = two_agent_batch(4.0, np.random.default_rng(0))
    with torch.no_grad():
        bev = det.bev_features(batch)
        warped = fusion.warp_to_ego(bev[None], batch["agent_to_ego"][:, :2], det.lidar_range, det.voxel_size,
                                    det.feature_stride)[0]

    def corr(a, b):
        return torch.corrcoef(torch.stack([a.abs().sum(0).flatten(), b.abs().sum(0).flatten()]))[0, 1].item()

    assert corr(bev[0], warped[1]) > 0.8 > 0.5 > corr(bev[0], bev[1])


@pytest.mark.parametrize("core_method", [m for m, f in MODEL_FUSION.items() if f is not None])
def test_every_cooperative_model_runs_forward_and_backward(core_method):
    cfg = config(transformer=copy.deepcopy(TRANSFORMER))
    if core_method == "point_pillar_mswin_deform":
        cfg["model"]["args"]["transformer"]["encoder"]["pwindow_att_config"]["deform"] = dict(DEFORM)
    cfg["model"]["core_method"] = core_method
    torch.manual_seed(0)
    det = build_detector(cfg["model"])
    assert type(det.fusion) is fusion.FUSIONS[MODEL_FUSION[core_method]]
    out = det(two_agent_batch(3.2, np.random.default_rng(1)))
    assert out["cls_preds"].shape == (1, 2, 32, 32) and out["reg_preds"].shape == (1, 14, 32, 32)
    sum(v.sum() for v in out.values()).backward()
    assert all(p.grad is not None for p in det.fusion.parameters())


@pytest.mark.parametrize("core_method", ["point_pillar_fcooper", "point_pillar_attfuse"])
def test_fusions_without_sttf_get_the_spatial_correction_in_the_ego_warp(core_method):
    cfg = config()
    cfg["model"]["core_method"] = core_method
    torch.manual_seed(0)
    det = build_detector(cfg["model"]).eval()
    assert not det.fusion.applies_spatial_correction
    batch = two_agent_batch(3.2, np.random.default_rng(2))
    correction = torch.eye(4)
    angle = torch.tensor(0.2)
    correction[:2, :2] = torch.tensor([[angle.cos(), -angle.sin()], [angle.sin(), angle.cos()]])
    correction[:2, 3] = torch.tensor([1.6, -2.4])
    corrected = {**batch, "spatial_correction": batch["spatial_correction"].clone()}
    corrected["spatial_correction"][0, 1] = correction
    composed = {**batch, "agent_to_ego": batch["agent_to_ego"].clone()}
    composed["agent_to_ego"][0, 1] = correction @ batch["agent_to_ego"][0, 1]
    with torch.no_grad():
        got, want, uncorrected = det(corrected), det(composed), det(batch)
    for key in want:
        torch.testing.assert_close(got[key], want[key])
    assert (got["cls_preds"] - uncorrected["cls_preds"]).abs().max() > 1e-3
