"""Split attention: per-agent, per-channel softmax weights over K parallel branches.

As V2X-ViT's ``SplitAttn`` (ResNeSt's radix softmax with one cardinal group), generalised from
three branches to K: the branch outputs are summed and averaged over the map, passed through
``Linear -> LayerNorm -> ReLU -> Linear(C -> K*C)``, and a softmax across the K branches gives
each agent a weight per channel and branch. The caller forms ``sum_k w_k * branch_k``.
"""
from __future__ import annotations

import torch
from torch import nn


class SplitAttention(nn.Module):
    """``forward(pooled (N, C)) -> weights (N, K, C)`` that sum to one over K."""

    def __init__(self, dim: int, num_branches: int):
        super().__init__()
        if num_branches < 1:
            raise ValueError(f"split attention needs at least one branch, got {num_branches}")
        self.num_branches = num_branches
        self.fc1 = nn.Linear(dim, dim, bias=False)
        self.norm = nn.LayerNorm(dim)
        self.act = nn.ReLU()
        self.fc2 = nn.Linear(dim, dim * num_branches, bias=False)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        n, c = pooled.shape
        logits = self.fc2(self.act(self.norm(self.fc1(pooled))))
        return logits.view(n, self.num_branches, c).softmax(dim=1)
