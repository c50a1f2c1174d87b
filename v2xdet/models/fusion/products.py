"""Residual accumulation by the GEMM itself, also under autocast.

The fusion encoder adds a linear layer's output to its residual stream inside the GEMM
(``addmm_`` / ``baddbmm_``), which saves a pass over the (tokens x channels) maps on the CPU. Autocast
casts the operands of out-of-place ops only, so under mixed precision an in-place GEMM would meet a
float32 accumulator and float16 / bfloat16 operands. There the product is computed out of place
(in autocast's dtype, on tensor cores) and added to the accumulator, which keeps its own dtype.
"""
from __future__ import annotations

import torch


def add_product_(acc: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``acc += a @ b`` in place and return ``acc``: 2-D (``addmm_``) or batched (``baddbmm_``)."""
    if torch.is_autocast_enabled(acc.device.type):
        return acc.add_(torch.matmul(a, b))
    return acc.addmm_(a, b) if acc.dim() == 2 else acc.baddbmm_(a, b)
