"""PointPillars loss: focal classification, smooth-L1 box residuals, heading-bin cross-entropy.

Per batch entry, every term is normalised by that entry's number of positive anchors (at least
one) and the sum is divided by the batch size, as OpenCOOD does:

* classification: sigmoid focal loss (alpha 0.25, gamma 2) over positive and negative anchors
  (ignored anchors weigh zero), times ``cls_weight``;
* regression: smooth-L1 (beta 1/9) over positives, the yaw residual compared as
  ``sin(a - b) = sin a cos b - cos a sin b`` so headings pi apart cost nothing, times ``reg``;
* direction: softmax cross-entropy of the heading bin over positives, times ``dir_weight``
  (only when the model predicts ``dir_preds``), which settles the pi ambiguity.

Targets (from ``assign_targets``, stacked per entry): ``labels (B, H, W, A)`` 1/0/-1,
``reg_targets (B, H, W, A, 7)``, ``dir_targets (B, H, W, A)``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

FOCAL_ALPHA = 0.25
FOCAL_GAMMA = 2.0
SMOOTH_L1_BETA = 1.0 / 9.0
DEFAULT_DIR_WEIGHT = 0.2


def sigmoid_focal_loss(logits: torch.Tensor, targets: torch.Tensor, alpha: float = FOCAL_ALPHA,
                       gamma: float = FOCAL_GAMMA) -> torch.Tensor:
    """Element-wise focal loss of logits against 0/1 targets (no reduction)."""
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    p = torch.sigmoid(logits)
    p_t = targets * p + (1 - targets) * (1 - p)
    alpha_t = targets * alpha + (1 - targets) * (1 - alpha)
    return alpha_t * (1 - p_t) ** gamma * ce


def sin_difference(preds: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Replace the yaw channel (last) so that their difference is ``sin(pred - target)``."""
    a, b = preds[..., 6:7], targets[..., 6:7]
    preds = torch.cat([preds[..., :6], torch.sin(a) * torch.cos(b)], dim=-1)
    targets = torch.cat([targets[..., :6], torch.cos(a) * torch.sin(b)], dim=-1)
    return preds, targets


class PointPillarLoss(nn.Module):
    """``forward(output, targets) -> (total, {'cls', 'reg', 'dir'})``; the terms are detached."""

    def __init__(self, args: dict):
        super().__init__()
        self.cls_weight = float(args.get("cls_weight", 1.0))
        self.reg_weight = float(args.get("reg", 2.0))
        dir_weight = args.get("dir_weight")
        self.dir_weight = DEFAULT_DIR_WEIGHT if dir_weight is None else float(dir_weight)

    def forward(self, output: dict, targets: dict) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        cls_preds = output["cls_preds"]
        batch, anchors = cls_preds.shape[0], cls_preds.shape[1]
        labels = targets["labels"].reshape(batch, -1).to(cls_preds.device)
        expected = cls_preds.shape[2] * cls_preds.shape[3] * anchors
        if labels.shape[1] != expected:
            raise ValueError(f"targets['labels'] has {labels.shape[1]} anchors per entry but the head "
                             f"predicts {expected} from (B, A, H, W) = {tuple(cls_preds.shape)}")
        positive = labels == 1
        cared = positive | (labels == 0)
        per_pos = 1.0 / positive.sum(dim=1, keepdim=True).clamp(min=1).to(cls_preds.dtype)

        logits = cls_preds.permute(0, 2, 3, 1).reshape(batch, -1)
        cls = (sigmoid_focal_loss(logits, positive.to(logits.dtype)) * cared * per_pos).sum() / batch

        reg_weight = positive.to(logits.dtype) * per_pos
        reg_preds = output["reg_preds"].permute(0, 2, 3, 1).reshape(batch, -1, 7)
        reg_targets = targets["reg_targets"].reshape(batch, -1, 7).to(reg_preds)
        p, t = sin_difference(reg_preds, reg_targets)
        smooth = F.smooth_l1_loss(p, t, reduction="none", beta=SMOOTH_L1_BETA).sum(-1)
        reg = (smooth * reg_weight).sum() / batch

        total = self.cls_weight * cls + self.reg_weight * reg
        terms = {"cls": cls.detach(), "reg": reg.detach()}
        if "dir_preds" in output:
            bins = output["dir_preds"].shape[1] // anchors
            dir_logits = output["dir_preds"].permute(0, 2, 3, 1).reshape(batch, -1, bins)
            dir_targets = targets["dir_targets"].reshape(-1).to(device=dir_logits.device, dtype=torch.long)
            ce = F.cross_entropy(dir_logits.reshape(-1, bins), dir_targets, reduction="none")
            direction = (ce.reshape(batch, -1) * reg_weight).sum() / batch
            total = total + self.dir_weight * direction
            terms["dir"] = direction.detach()
        return total, terms
