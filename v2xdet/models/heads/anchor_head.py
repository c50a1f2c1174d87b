"""Anchor head: 1x1 convs for class score, box residuals and heading bin per anchor."""
from __future__ import annotations

import math

import torch
from torch import nn

# Focal-loss prior (RetinaNet, OpenPCDet): start every anchor at a 1% foreground probability.
PRIOR_PROBABILITY = 0.01


class AnchorHead(nn.Module):
    """``forward(x (B, C, H, W))`` returns ``cls_preds (B, A, H, W)``, ``reg_preds (B, 7A, H, W)``
    and, when ``num_dir_bins > 0``, ``dir_preds (B, bins * A, H, W)``; channel ``a * 7 + k`` is
    residual ``k`` of anchor ``a`` (``a * bins + j`` for heading bin ``j``)."""

    def __init__(self, in_channels: int, anchor_number: int, num_dir_bins: int = 2):
        super().__init__()
        self.anchor_number = int(anchor_number)
        self.num_dir_bins = int(num_dir_bins)
        self.cls_head = nn.Conv2d(in_channels, self.anchor_number, 1)
        self.reg_head = nn.Conv2d(in_channels, 7 * self.anchor_number, 1)
        self.dir_head = (nn.Conv2d(in_channels, self.num_dir_bins * self.anchor_number, 1)
                         if self.num_dir_bins > 0 else None)
        nn.init.constant_(self.cls_head.bias, -math.log((1 - PRIOR_PROBABILITY) / PRIOR_PROBABILITY))
        nn.init.normal_(self.reg_head.weight, std=0.001)
        nn.init.zeros_(self.reg_head.bias)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        out = {"cls_preds": self.cls_head(x), "reg_preds": self.reg_head(x)}
        if self.dir_head is not None:
            out["dir_preds"] = self.dir_head(x)
        return out
