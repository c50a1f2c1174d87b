"""Postprocessing: decode the head, fix headings, threshold, rotated NMS, range crop, late merge."""
from __future__ import annotations

import math

import torch

from v2xdet.data_utils.preprocess.anchors import AnchorGenerator
from v2xdet.postprocess.decode import correct_direction, decode_predictions
from v2xdet.postprocess.select import boxes_in_range, merge_late, select_detections

# NMS candidates per sample (by score) after the threshold; OpenPCDet's test-time default.
DEFAULT_PRE_NMS_MAX = 4096


class PostProcessor:
    """``__call__(output) -> [ {boxes (K, 7), scores (K,), corners (K, 8, 3)} per sample ]`` (numpy)."""

    def __init__(self, anchors, score_threshold: float, nms_thresh: float, max_num: int | None = None,
                 gt_range=None, dir_offset: float = math.pi / 4,
                 pre_nms_max: int | None = DEFAULT_PRE_NMS_MAX):
        self.anchors = torch.as_tensor(anchors, dtype=torch.float32)
        self.score_threshold = float(score_threshold)
        self.nms_thresh = float(nms_thresh)
        self.max_num = max_num
        self.gt_range = gt_range
        self.dir_offset = float(dir_offset)
        self.pre_nms_max = pre_nms_max

    @classmethod
    def from_config(cls, cfg: dict) -> PostProcessor:
        """From ``postprocess`` (score_threshold, nms_thresh, max_num, gt_range, anchor_args) and
        ``model.args.dir_args.dir_offset``; ``gt_range`` defaults to the anchors' lidar range."""
        post = cfg["postprocess"]
        anchors = AnchorGenerator.from_config(cfg)
        dir_args = cfg.get("model", {}).get("args", {}).get("dir_args") or {}
        return cls(anchors.anchors(), post["target_args"]["score_threshold"], post["nms_thresh"],
                   post.get("max_num"), post.get("gt_range") or anchors.lidar_range,
                   dir_args.get("dir_offset", math.pi / 4))

    @torch.no_grad()
    def __call__(self, output: dict) -> list[dict]:
        boxes, scores = decode_predictions(output, self.anchors, self.dir_offset)
        return [select_detections(b, s, self.score_threshold, self.nms_thresh, self.max_num, self.gt_range,
                                  self.pre_nms_max) for b, s in zip(boxes, scores, strict=True)]


__all__ = ["DEFAULT_PRE_NMS_MAX", "PostProcessor", "boxes_in_range", "correct_direction",
           "decode_predictions", "merge_late", "select_detections"]
