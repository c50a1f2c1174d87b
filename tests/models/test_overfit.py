"""One frame made in code: a tiny PointPillars must learn it and recover its boxes after NMS."""
import numpy as np
import torch
from detector_inputs import config, ground_points, make_batch, surface_points
from torch import nn

from v2xdet.data_utils.preprocess import AnchorGenerator, assign_targets
from v2xdet.geometry.iou import bev_iou_matrix
from v2xdet.losses import build_loss
from v2xdet.models import build_detector
from v2xdet.postprocess import PostProcessor

BOXES = np.array([[5.0, 4.0, -1.0, 4.2, 1.8, 1.5, 0.3],
                  [-6.0, -3.0, -0.9, 4.6, 2.0, 1.6, 2.0],
                  [-3.0, 7.0, -1.0, 3.8, 1.7, 1.5, -1.2],
                  [7.0, -7.0, -1.0, 4.0, 1.9, 1.5, 3.0]])   # yaw 3.0: needs the direction bin


def recalibrate_batchnorm(model: nn.Module, batch: dict) -> None:
    """Running statistics = this batch's (BatchNorm's momentum 0.01 needs far more than 60 steps)."""
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None
    model.train()
    with torch.no_grad():
        model(batch)


def test_tiny_pointpillars_overfits_one_frame():
    rng = np.random.default_rng(0)
    points = np.concatenate([surface_points(BOXES, 300, rng), ground_points(1500, rng)])
    cfg = config()
    torch.manual_seed(0)
    det = build_detector(cfg["model"])
    batch = make_batch([points])
    anchors = AnchorGenerator.from_config(cfg).anchors()
    t = cfg["postprocess"]["target_args"]
    targets = {k: torch.from_numpy(v)[None] for k, v in
               assign_targets(anchors, BOXES, t["pos_threshold"], t["neg_threshold"]).items()}
    loss_fn = build_loss(cfg["loss"])
    opt = torch.optim.Adam(det.parameters(), lr=0.01)
    history = []
    for _ in range(60):
        total, _ = loss_fn(det(batch), targets)
        opt.zero_grad()
        total.backward()
        opt.step()
        history.append(total.item())
    assert np.mean(history[-5:]) < 0.1 * np.mean(history[:5])

    recalibrate_batchnorm(det, batch)
    det.eval()
    with torch.no_grad():
        detections = PostProcessor.from_config(cfg)(det(batch))[0]
    assert len(detections["boxes"]) == len(BOXES)
    iou = bev_iou_matrix(BOXES, detections["boxes"])
    assert (iou.max(axis=1) > 0.7).all(), iou
    matched = detections["boxes"][iou.argmax(axis=1)]
    heading_error = np.abs((matched[:, 6] - BOXES[:, 6] + np.pi) % (2 * np.pi) - np.pi)
    assert (heading_error < 0.2).all(), heading_error
