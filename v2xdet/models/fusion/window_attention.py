"""One MSwin branch: multi-head self-attention inside non-overlapping square windows.

As V2X-ViT's ``BaseWindowAttention``: a bias-free QKV projection, attention inside each
``window_size`` x ``window_size`` window (no shifted windows), one learned relative position bias
per branch shared by its heads (``bias[i, j] = table[row_j - row_i + s - 1, col_j - col_i + s - 1]``,
key minus query as the reference), and an output projection. The branch reads its Q, K, V from the
MSwin block's fused projection and leaves the output projection to the block, which folds it into
the split attention (see ``mswin.py``).

Tokens are in ``WindowOrder``'s window-major order, so a window batch is a reshape of the token
axis and ``scaled_dot_product_attention`` gets strided views with the bias as an additive mask.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from v2xdet.models.fusion.tokens import WindowOrder


class WindowBranch(nn.Module):
    """Window attention of one size; ``qkv_weight`` (3 * heads * dim_head, dim), ``out`` Linear."""

    def __init__(self, dim: int, heads: int, dim_head: int, window_size: int, relative_pos_embedding: bool):
        super().__init__()
        self.heads, self.dim_head, self.window_size = heads, dim_head, window_size
        self.inner = heads * dim_head
        self.relative = relative_pos_embedding
        self.qkv_weight = nn.Parameter(torch.empty(3 * self.inner, dim))
        nn.init.kaiming_uniform_(self.qkv_weight, a=math.sqrt(5))  # nn.Linear's default
        self.out = nn.Linear(self.inner, dim)
        n = window_size * window_size
        shape = (2 * window_size - 1, 2 * window_size - 1) if self.relative else (n, n)
        self.pos_embedding = nn.Parameter(torch.randn(shape))  # V2X-ViT initialises it N(0, 1)
        self._index_cache: dict[tuple, torch.Tensor] = {}

    def _bias_index(self, order: WindowOrder, device: torch.device) -> torch.Tensor:
        """(N, N) flat index into ``pos_embedding`` for the tokens of a window in token order."""
        key = (tuple(order.sizes), device)
        if key not in self._index_cache:
            s = self.window_size
            rc = order.window_coords(s)
            if self.relative:
                d = rc[None, :, :] - rc[:, None, :] + (s - 1)  # key minus query
                idx = d[..., 0] * (2 * s - 1) + d[..., 1]
            else:
                raster = rc[:, 0] * s + rc[:, 1]
                idx = raster[:, None] * (s * s) + raster[None, :]
            self._index_cache = {key: idx.to(device)}
        return self._index_cache[key]

    def bias(self, order: WindowOrder, device: torch.device) -> torch.Tensor:
        """(N, N) additive attention bias for a window's tokens in token order."""
        return self.pos_embedding.reshape(-1)[self._bias_index(order, device)]

    def attend(self, qkv: torch.Tensor, order: WindowOrder) -> torch.Tensor:
        """Window attention. ``qkv`` (M, T, 3 * inner) in token order -> (M, T, inner)."""
        m, t, _ = qkv.shape
        n = self.window_size * self.window_size
        windows = qkv.view(m * (t // n), n, 3, self.heads, self.dim_head)
        q, k, v = (windows.select(2, i).transpose(1, 2) for i in range(3))
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=self.bias(order, qkv.device).to(qkv.dtype))
        return out.transpose(1, 2).reshape(m, t, self.inner)
