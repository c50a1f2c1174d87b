import numpy as np
import pytest
import torch
from detector_inputs import config, ground_points, make_batch, surface_points
from torch import nn

from v2xdet.data_utils.preprocess import AnchorGenerator, assign_targets
from v2xdet.losses import build_loss
from v2xdet.models import build_detector, regroup

SHRINK = {"kernal_size": [3], "stride": [2], "padding": [1], "dim": [24], "input_dim": 32}


class MaxOverAgents(nn.Module):
    """Test fusion: element-wise max over the real agents (F-Cooper's rule), checking its inputs."""

    def __init__(self, args: dict, in_channels: int):
        super().__init__()
        self.in_channels = in_channels
        self.scale = nn.Parameter(torch.ones(()))
        self.calls = []

    def forward(self, x, mask, meta):
        b, n_agents, c = x.shape[:3]
        assert c == self.in_channels and mask.shape == (b, n_agents) and mask.dtype == torch.bool
        assert meta["prior_encoding"].shape == (b, n_agents, 3)
        assert meta["spatial_correction"].shape == (b, n_agents, 4, 4)
        self.calls.append((x.detach().clone(), mask.clone()))
        filled = x.masked_fill(~mask[:, :, None, None, None], float("-inf"))
        return filled.max(dim=1).values * self.scale


class RecordingWarp:
    def __init__(self):
        self.calls = []

    def __call__(self, x, transform, lidar_range, voxel_size, stride):
        self.calls.append((transform.clone(), list(lidar_range), list(voxel_size), stride))
        return x.flip(-1)


def frames(n, seed=0):
    rng = np.random.default_rng(seed)
    boxes = np.array([[4.0, 3.0, -1.0, 4.2, 1.8, 1.5, 0.3], [-5.0, -4.0, -1.0, 4.5, 1.9, 1.6, 1.9]])
    clouds = [np.concatenate([surface_points(boxes, 100, rng), ground_points(300, rng)]) for _ in range(n)]
    return clouds, boxes


def cooperative(batch, record_len, max_cav=5):
    b = len(record_len)
    eye = torch.eye(4).expand(b, max_cav, 4, 4).clone()
    return {**batch, "record_len": torch.tensor(record_len), "agent_to_ego": eye,
            "prior_encoding": torch.zeros(b, max_cav, 3), "spatial_correction": eye.clone()}


def test_single_agent_outputs_line_up_with_the_anchors():
    cfg = config()
    det = build_detector(cfg["model"])
    pts, _ = frames(3)
    out = det(make_batch(pts))
    h, w = AnchorGenerator.from_config(cfg).feature_size
    assert out["cls_preds"].shape == (3, 2, h, w)
    assert out["reg_preds"].shape == (3, 14, h, w)
    assert out["dir_preds"].shape == (3, 4, h, w)
    assert det.feature_stride == cfg["postprocess"]["anchor_args"]["feature_stride"]
    no_dir = build_detector(config(dir_args=None)["model"])
    assert "dir_preds" not in no_dir(make_batch(pts[:1]))


def test_gradients_reach_every_parameter():
    cfg = config(shrink_header=SHRINK, compression=4)
    cfg["postprocess"]["anchor_args"]["feature_stride"] = 4
    torch.manual_seed(0)
    det = build_detector(cfg["model"])
    assert det.feature_stride == 4 and det.out_channels == 24
    pts, boxes = frames(2)
    out = det(make_batch(pts))
    anchors = AnchorGenerator.from_config(cfg).anchors()
    t = assign_targets(anchors, boxes, 0.6, 0.45)
    targets = {k: torch.from_numpy(np.stack([v, v])) for k, v in t.items()}
    total, _ = build_loss(cfg["loss"])(out, targets)
    total.backward()
    dead = [name for name, p in det.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not dead, f"no gradient reaches {dead}"


def test_regroup_matches_a_loop():
    feats = torch.randn(6, 2, 3, 4)
    grouped, mask = regroup(feats, torch.tensor([2, 1, 3]))
    assert grouped.shape == (3, 3, 2, 3, 4)
    expected = torch.zeros(3, 3, 2, 3, 4)
    start = 0
    for b, n in enumerate([2, 1, 3]):
        expected[b, :n] = feats[start:start + n]
        start += n
    torch.testing.assert_close(grouped, expected)
    assert mask.tolist() == [[True, True, False], [True, False, False], [True, True, True]]
    with pytest.raises(ValueError, match="record_len"):
        regroup(feats, torch.tensor([2, 2]))


def test_fusion_plumbing_regroup_mask_warp():
    cfg = config()
    cfg["model"]["core_method"] = "point_pillar_fcooper"
    warp = RecordingWarp()
    torch.manual_seed(0)
    det = build_detector(cfg["model"], fusions={"max": MaxOverAgents}, warp=warp).eval()
    pts, _ = frames(6, seed=1)
    record_len = [2, 1, 3]
    batch = cooperative(make_batch(pts, record_len), record_len)
    with torch.no_grad():
        bev = det.bev_features(batch)
        out = det(batch)
    assert out["cls_preds"].shape[0] == 3 and not warp.calls     # identity transforms: no warp
    x, mask = det.fusion.calls[-1]
    assert x.shape[:2] == (3, 3) and mask.tolist() == [[1, 1, 0], [1, 0, 0], [1, 1, 1]]
    expected = torch.stack([bev[0:2].max(0).values, bev[2], bev[3:6].max(0).values])
    torch.testing.assert_close(out["cls_preds"], det.head(expected)["cls_preds"])

    batch["agent_to_ego"][2, 1, 0, 3] = 3.2        # agent 1 of sample 2 sits 3.2 m ahead of the ego
    with torch.no_grad():
        out = det(batch)
    (transform, lidar_range, voxel_size, stride), = warp.calls
    assert transform.shape == (3, 3, 4, 4) and transform[2, 1, 0, 3] == 3.2    # sliced to max(record_len)
    assert lidar_range == cfg["model"]["args"]["lidar_range"] and stride == det.feature_stride
    assert voxel_size == cfg["model"]["args"]["voxel_size"]
    flipped = bev.flip(-1)
    expected = torch.stack([flipped[0:2].max(0).values, flipped[2], flipped[3:6].max(0).values])
    torch.testing.assert_close(out["reg_preds"], det.head(expected)["reg_preds"])


class PlainMax(MaxOverAgents):
    """MaxOverAgents recording the spatial correction it is given."""

    def forward(self, x, mask, meta):
        self.corrections = meta["spatial_correction"].clone()
        return super().forward(x, mask, meta)


class CorrectingMax(PlainMax):
    """A fusion that applies the spatial correction itself (as V2X-ViT's STTF)."""

    applies_spatial_correction = True


def test_spatial_correction_goes_to_the_warp_or_to_the_fusion_that_applies_it():
    cfg = config()
    cfg["model"]["core_method"] = "point_pillar_fcooper"
    pts, _ = frames(3, seed=2)
    batch = cooperative(make_batch(pts, [3]), [3])
    batch["agent_to_ego"][0, 1, 0, 3] = 3.2
    batch["spatial_correction"][0, 1, 1, 3] = -1.5
    batch["spatial_correction"][0, 2, 0, 3] = 2.0    # agent 2 needs the correction alone
    to_ego, correction = batch["agent_to_ego"][:, :3], batch["spatial_correction"][:, :3]
    for fusion_cls, warped, seen in ((PlainMax, correction @ to_ego, torch.eye(4).expand(1, 3, 4, 4)),
                                     (CorrectingMax, to_ego, correction)):
        warp = RecordingWarp()
        det = build_detector(cfg["model"], fusions={"max": fusion_cls}, warp=warp)
        with torch.no_grad():
            det(batch)
        (transform, *_), = warp.calls
        torch.testing.assert_close(transform, warped)
        torch.testing.assert_close(det.fusion.corrections, seen)


def test_cooperative_batch_errors_name_the_key():
    cfg = config()
    cfg["model"]["core_method"] = "point_pillar_fcooper"
    det = build_detector(cfg["model"], fusions={"max": MaxOverAgents}, warp=RecordingWarp())
    pts, _ = frames(2)
    batch = cooperative(make_batch(pts, [2]), [2])
    del batch["prior_encoding"]
    with pytest.raises(KeyError, match="prior_encoding"):
        det(batch)
    batch = cooperative(make_batch(pts, [2]), [2], max_cav=1)
    with pytest.raises(ValueError, match="agent_to_ego"):
        det(batch)
    with pytest.raises(ValueError, match="not available"):
        build_detector(cfg["model"], fusions={})
    with pytest.raises(ValueError, match="core_method"):
        build_detector({"core_method": "second", "args": cfg["model"]["args"]})
    with pytest.raises(ValueError, match="grid_size"):
        build_detector(config(point_pillar_scatter={"num_features": 16, "grid_size": [10, 10, 1]})["model"])


def test_backbone_fix_and_bytes_per_agent():
    cfg = config(backbone_fix=True, compression=4)
    cfg["model"]["core_method"] = "point_pillar_fcooper"
    det = build_detector(cfg["model"], fusions={"max": MaxOverAgents}, warp=RecordingWarp())
    trainable = [n for n, p in det.named_parameters() if p.requires_grad]
    assert trainable == ["fusion.scale"]
    assert det.bytes_per_agent(32, 32) == (32 // 4) * 32 * 32 * 4
    plain = build_detector(config()["model"])
    assert plain.bytes_per_agent(32, 32) == 32 * 32 * 32 * 4
