"""The detector with the real fusion package: warp convention end to end, every cooperative model.

Skipped, naming the reason, only while ``v2xdet.models.fusion`` is not installed.
"""

import numpy as np
import pytest
import torch
from detector_inputs import config, fusion_config, two_agent_batch

from v2xdet.models import MODEL_FUSION, build_detector

fusion = pytest.importorskip("v2xdet.models.fusion", reason="the fusion package is not installed")


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
    torch.manual_seed(0)
    det = build_detector(fusion_config(core_method)["model"])
    assert type(det.fusion) is fusion.FUSIONS[MODEL_FUSION[core_method]]
    out = det(two_agent_batch(3.2, np.random.default_rng(1)))
    assert out["cls_preds"].shape == (1, 2, 32, 32) and out["reg_preds"].shape == (1, 14, 32, 32)
    sum(v.sum() for v in out.values()).backward()
    assert all(p.grad is not None for p in det.fusion.parameters())


@pytest.mark.parametrize("core_method", [m for m, f in MODEL_FUSION.items() if f is not None])
def test_every_cooperative_model_trains_under_autocast(core_method):
    """Mixed precision (bfloat16 autocast on the CPU, as float16 on CUDA): forward and backward run,
    the outputs stay near the float32 ones and every gradient is finite."""
    torch.manual_seed(0)
    det = build_detector(fusion_config(core_method)["model"])
    batch = two_agent_batch(3.2, np.random.default_rng(1))
    want = det(batch)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = det(batch)
    sum((v.float() ** 2).mean() for v in out.values()).backward()
    for key, ref in want.items():
        assert (out[key].float() - ref).abs().max() < 0.1 * ref.abs().max(), key
    assert all(p.grad is not None and p.grad.isfinite().all() for p in det.parameters())


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
