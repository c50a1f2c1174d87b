"""Parameter-free fusions: F-Cooper's element-wise max and AttFuse's per-pixel attention.

Both take ``x (B, L, C, H, W)`` maps already in the ego frame and ``mask (B, L)`` (True = real
agent, slot 0 = ego) and return the ego's fused map ``(B, C, H, W)``; padding slots never
contribute. Neither applies ``meta["spatial_correction"]`` (``applies_spatial_correction =
False``): the detector folds it into the ego warp.
"""
from __future__ import annotations

import math

import torch
from torch import nn


def check_fusion_inputs(x: torch.Tensor, mask: torch.Tensor, channels: int) -> None:
    """Raise a ValueError naming the problem when ``x``/``mask`` break the fusion contract."""
    if x.dim() != 5:
        raise ValueError(f"fusion input must have shape (B, L, C, H, W), got {tuple(x.shape)}")
    if x.shape[2] != channels:
        raise ValueError(f"fusion input has {x.shape[2]} channels, the module was built for {channels}")
    if mask.shape != x.shape[:2] or mask.dtype != torch.bool:
        raise ValueError(f"mask must be a bool tensor of shape {tuple(x.shape[:2])}, got {mask.dtype} "
                         f"{tuple(mask.shape)}")
    if not bool(mask[:, 0].all()):
        raise ValueError("mask[:, 0] must be True: slot 0 of every sample is its ego agent")


class _ParameterFreeFusion(nn.Module):
    """A fusion without arguments or weights; the detector warps its maps by the spatial
    correction (it has no STTF of its own)."""

    name = ""
    applies_spatial_correction = False

    def __init__(self, args: dict | None, in_channels: int):
        super().__init__()
        if args:
            raise ValueError(f"fusion {self.name!r} takes no arguments, got keys {sorted(args)}")
        self.in_channels = in_channels


class MaxFusion(_ParameterFreeFusion):
    """F-Cooper (``SpatialFusion``): the element-wise maximum over the real agents."""

    name = "max"

    def forward(self, x: torch.Tensor, mask: torch.Tensor, meta: dict | None = None) -> torch.Tensor:
        check_fusion_inputs(x, mask, self.in_channels)
        if bool(mask.all()):
            return x.amax(dim=1)
        return x.masked_fill(~mask[:, :, None, None, None], float("-inf")).amax(dim=1)


class AttFusion(_ParameterFreeFusion):
    """AttFuse (``AttFusion``): at each pixel the ego feature attends over the agents' features,
    ``softmax_j(x_ego . x_j / sqrt(C)) x_j`` (no projections, as OpenCOOD)."""

    name = "att"

    def forward(self, x: torch.Tensor, mask: torch.Tensor, meta: dict | None = None) -> torch.Tensor:
        check_fusion_inputs(x, mask, self.in_channels)
        b, n, c, h, w = x.shape
        flat = x.reshape(b, n, c, h * w)
        full = bool(mask.all())
        if not full:  # padding slots may hold anything, even NaN: zero them before any product
            flat = flat.masked_fill(~mask[:, :, None, None], 0.0)
        scores = torch.einsum("bcp,blcp->blp", flat[:, 0], flat) / math.sqrt(c)
        if not full:
            scores = scores.masked_fill(~mask[:, :, None], float("-inf"))
        attn = scores.softmax(dim=1)
        return torch.einsum("blp,blcp->bcp", attn, flat).reshape(b, c, h, w)
