"""The compact synthetic-world config loads and its stages line up (model, anchors, loss, postprocess)."""
from pathlib import Path

import numpy as np
import torch
from detector_inputs import make_batch, surface_points

from v2xdet.config import load_config
from v2xdet.data_utils.preprocess import AnchorGenerator, assign_targets
from v2xdet.losses import build_loss
from v2xdet.models import build_detector
from v2xdet.postprocess import PostProcessor

CONFIG = Path(__file__).resolve().parents[2] / "hypes_yaml" / "synthetic" / "point_pillar_none.yaml"


def test_compact_config_builds_a_consistent_detector():
    cfg = load_config(CONFIG)
    det = build_detector(cfg["model"])
    anchors = AnchorGenerator.from_config(cfg)
    assert det.feature_stride == cfg["postprocess"]["anchor_args"]["feature_stride"] == 2
    assert anchors.feature_size == (96, 176)
    assert sum(p.numel() for p in det.parameters()) < 2_000_000      # CPU-sized
    boxes = np.array([[10.0, -5.0, -1.0, 4.3, 1.8, 1.5, 0.4]])
    points = surface_points(boxes, 200, np.random.default_rng(0))
    batch = make_batch([points], cfg=cfg)
    with torch.no_grad():
        out = det.eval()(batch)
    assert out["cls_preds"].shape == (1, 2, 96, 176) and out["dir_preds"].shape == (1, 4, 96, 176)
    t = assign_targets(anchors.anchors(), boxes, cfg["postprocess"]["target_args"]["pos_threshold"],
                       cfg["postprocess"]["target_args"]["neg_threshold"],
                       dir_offset=cfg["model"]["args"]["dir_args"]["dir_offset"])
    total, terms = build_loss(cfg["loss"])(out, {k: torch.from_numpy(v)[None] for k, v in t.items()})
    assert torch.isfinite(total) and set(terms) == {"cls", "reg", "dir"}
    detections = PostProcessor.from_config(cfg)(out)
    assert len(detections) == 1 and detections[0]["boxes"].shape[1] == 7
