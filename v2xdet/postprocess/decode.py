"""Head outputs to boxes: anchor residuals decoded, headings fixed by the direction classifier."""
from __future__ import annotations

import math

import torch

from v2xdet.data_utils.preprocess.box_coder import decode
from v2xdet.geometry.boxes import limit_period


def correct_direction(yaw: torch.Tensor, dir_labels: torch.Tensor, dir_offset: float, num_bins: int):
    """OpenPCDet's heading fix: fold ``yaw`` into one bin of width ``2 pi / num_bins`` starting at
    ``dir_offset``, add the predicted bin, wrap to ``[-pi, pi)``."""
    period = 2 * math.pi / num_bins
    folded = limit_period(yaw - dir_offset, 0.0, period)
    return limit_period(folded + dir_offset + period * dir_labels.to(yaw.dtype), 0.5, 2 * math.pi)


def decode_predictions(output: dict, anchors: torch.Tensor, dir_offset: float = math.pi / 4):
    """``(boxes (B, H*W*A, 7), scores (B, H*W*A))`` from the head's output and anchors ``(H, W, A, 7)``.

    Scores are sigmoid probabilities; when ``dir_preds`` is present the yaw is corrected with the
    arg-max heading bin.
    """
    cls_preds = output["cls_preds"]
    batch, num_anchors, height, width = cls_preds.shape
    if tuple(anchors.shape) != (height, width, num_anchors, 7):
        raise ValueError(f"anchors of shape {tuple(anchors.shape)} do not match the head's "
                         f"(H, W, A) = {(height, width, num_anchors)}")
    anchors = anchors.to(device=cls_preds.device, dtype=cls_preds.dtype).reshape(1, -1, 7)
    scores = torch.sigmoid(cls_preds.permute(0, 2, 3, 1).reshape(batch, -1))
    deltas = output["reg_preds"].permute(0, 2, 3, 1).reshape(batch, -1, 7)
    boxes = decode(deltas, anchors)
    if "dir_preds" in output:
        bins = output["dir_preds"].shape[1] // num_anchors
        labels = output["dir_preds"].permute(0, 2, 3, 1).reshape(batch, -1, bins).argmax(dim=-1)
        yaw = correct_direction(boxes[..., 6], labels, dir_offset, bins)
        boxes = torch.cat([boxes[..., :6], yaw[..., None]], dim=-1)
    return boxes, scores
