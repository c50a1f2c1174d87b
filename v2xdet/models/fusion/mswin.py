"""MSwin: parallel attention branches inside each agent's map, fused by split attention.

V2X-ViT's ``PyramidWindowAttention`` runs window attention of several sizes (4, 8, 16 with
16/8/4 heads of 16/32/64 channels) on the same normalised map and fuses the branch outputs with
split attention (or a plain mean, ``fusion_method: naive``). Ours adds an optional deformable
branch (``deformable.py``), so the split attention takes K branches.

Speed: one fused projection produces every branch's Q/K/V (and the deformable queries) in a
single GEMM. The branch output projections are folded into the split attention: the pooled
branch output is linear in the attention output (``mean(o W^T + b) = mean(o) W^T + b``), so the
split weights ``a_k`` (agent x channel) are computed from cheap means first, and the fused result
``sum_k a_k * (o_k W_k^T + b_k)`` is accumulated straight into the residual stream with one
batched GEMM per branch against ``W_k^T`` scaled by ``a_k`` -- no per-branch output maps.
Dropout (training) is applied to the fused branch sum rather than to each branch's output.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from v2xdet.models.fusion.deformable import DeformableBranch
from v2xdet.models.fusion.dropout import Dropout
from v2xdet.models.fusion.products import add_product_
from v2xdet.models.fusion.split_attention import SplitAttention
from v2xdet.models.fusion.tokens import WindowOrder
from v2xdet.models.fusion.window_attention import WindowBranch

FUSION_METHODS = ("split_attn", "naive")


@dataclass
class DeformSources:
    """Maps the deformable branch samples in ``all`` mode.

    ``tokens`` (Ns, T, C): normalised maps of all packed agents; ``of_query`` (Nq, A) which of
    them each query agent samples; ``valid`` (Nq, A) False for padding slots; ``queries_are_sources``:
    the query agents are exactly ``tokens``' agents in the same order (their queries are reused).
    """

    tokens: torch.Tensor
    of_query: torch.Tensor
    valid: torch.Tensor | None
    queries_are_sources: bool


class MSwin(nn.Module):
    """``forward(x, y, order, sources=None) -> x + fused branches(y)`` for (Nq, T, C) token maps."""

    def __init__(
        self,
        dim: int,
        heads: Sequence[int],
        dim_heads: Sequence[int],
        window_sizes: Sequence[int],
        relative_pos_embedding: bool,
        dropout: float,
        fusion_method: str = "split_attn",
        deform: DeformableBranch | None = None,
    ):
        super().__init__()
        if not (len(heads) == len(dim_heads) == len(window_sizes)):
            raise ValueError(
                f"pwindow_att_config heads {list(heads)}, dim_head {list(dim_heads)} and window_size "
                f"{list(window_sizes)} must have the same length"
            )
        if fusion_method not in FUSION_METHODS:
            raise ValueError(f"pwindow_att_config.fusion_method must be one of {FUSION_METHODS}, "
                             f"got {fusion_method!r}")
        self.windows = nn.ModuleList(
            WindowBranch(dim, hd, dh, ws, relative_pos_embedding)
            for hd, dh, ws in zip(heads, dim_heads, window_sizes, strict=True)
        )
        self.window_sizes = list(window_sizes)
        self.deform = deform
        n_branches = len(self.windows) + (deform is not None)
        if n_branches == 0:
            raise ValueError("MSwin needs at least one branch (window sizes or the deformable branch)")
        self.split = SplitAttention(dim, n_branches) if fusion_method == "split_attn" else None
        self.num_branches = n_branches
        self.dropout = Dropout(dropout)

    def _branches_out(self) -> list[nn.Linear]:
        return [w.out for w in self.windows] + ([self.deform.out] if self.deform is not None else [])

    def fused_projection(self) -> torch.Tensor:
        """Weight (sum of outputs, C) of the single bias-free projection feeding every branch (the
        deformable queries' bias is added to their slice alone)."""
        weights = [w.qkv_weight for w in self.windows]
        if self.deform is not None:
            weights.append(self.deform.q_weight)
        return torch.cat(weights)

    def branch_outputs(
        self, y: torch.Tensor, order: WindowOrder, sources: DeformSources | None
    ) -> list[torch.Tensor]:
        """Attention outputs (before output projection) of every branch, each (Nq, T, inner_k)."""
        proj = F.linear(y, self.fused_projection())
        outs, start = [], 0
        for branch in self.windows:
            width = 3 * branch.inner
            outs.append(branch.attend(proj[..., start:start + width], order))
            start += width
        if self.deform is not None:
            q = proj[..., start:start + self.deform.inner] + self.deform.q_bias
            if self.deform.sample_from == "own" or sources is None:
                own = torch.arange(y.shape[0], device=y.device)[:, None]
                outs.append(self.deform(q, y, own, order))
            else:
                q_src = None
                if not sources.queries_are_sources:
                    q_src = F.linear(sources.tokens, self.deform.q_weight, self.deform.q_bias)
                outs.append(self.deform(q, sources.tokens, sources.of_query, order, sources.valid, q_src))
        return outs

    def branch_weights(self, outs: list[torch.Tensor]) -> torch.Tensor:
        """(Nq, K, C) split-attention weights from the pooled branch outputs (1/K for ``naive``)."""
        heads_out = self._branches_out()
        if self.split is None:
            n = outs[0].shape[0]
            c = heads_out[0].out_features
            return outs[0].new_full((n, self.num_branches, c), 1.0 / self.num_branches)
        pooled = sum(F.linear(o.mean(dim=1), lin.weight, lin.bias)
                     for o, lin in zip(outs, heads_out, strict=True))
        return self.split(pooled)

    def forward(
        self, x: torch.Tensor, y: torch.Tensor, order: WindowOrder, sources: DeformSources | None = None
    ) -> torch.Tensor:
        """``x`` (Nq, T, C): residual stream; ``y``: its layer norm. Returns ``x + MSwin(y)``."""
        outs = self.branch_outputs(y, order, sources)
        weights = self.branch_weights(outs)  # (Nq, K, C)
        heads_out = self._branches_out()
        bias = (weights * torch.stack([lin.bias for lin in heads_out])[None]).sum(dim=1, keepdim=True)
        drop = self.training and self.dropout.p > 0
        acc = bias.expand_as(x).clone() if drop else x + bias
        for k, (o, lin) in enumerate(zip(outs, heads_out, strict=True)):
            add_product_(acc, o, lin.weight.t()[None] * weights[:, k, None, :])
        return x + self.dropout(acc) if drop else acc
