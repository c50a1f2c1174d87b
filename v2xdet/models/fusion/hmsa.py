"""Per-pixel attention across agents: V2X-ViT's HMSA (heterogeneous) and plain CAV attention.

HMSA (``hetero=True``) follows V2X-ViT's ``HGTCavAttention``: each agent has a node type
(0 = vehicle, 1 = RSU) with its own Q/K/V and output projections (with bias); the attention
logit between query agent i and key agent j at a pixel is ``q_i^T W_att[r] k_j / sqrt(d)`` and
the message is ``W_msg[r]^T v_j``, with one of four relation types ``r = 2 * type_i + type_j``
per head; key agents outside the query's sample or outside the warped ROI at that pixel are
masked out. Plain attention (``hetero=False``) is V2X-ViT's ``CavAttention``: one bias-free QKV
projection and no relation matrices.

How it is computed (batched over samples, agents, pixels and heads; no Python loop over agents):

* The relation matrices are linear maps next to linear projections, so they are folded into the
  query and output projections once per forward: the query of an agent of type t holds, per
  head, one slot per key type tau present, ``q W_att[2t + tau] / sqrt(d)``; the logit with key j
  reads the slot of j's type; the attention-weighted values are summed per key type and the
  output projection of type t reads those partial messages through ``W_msg[2t + tau] W_out[t]``.
  Keys and values are the plain projections. With one node type in the batch (all vehicles) this
  costs nothing extra; with vehicles and RSUs the query and output projections are twice as wide.
* One GEMM produces Q, K and V with the columns interleaved per head, ``(head, [q, k, v], d)``,
  so for every (pixel, head) the agents' vectors are rows at a fixed stride: the per-pixel
  ``(agents x d) @ (d x agents)`` products are ``bmm`` on strided views, with no copies.
* All packed agents of the batch attend in one block; an additive per-pixel bias (-inf) keeps
  samples apart and applies the ROI mask. Padding agents are never packed.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from v2xdet.models.fusion.dropout import Dropout
from v2xdet.models.fusion.products import add_product_


def _linear_init(weight: torch.Tensor, bias: torch.Tensor | None, fan_in: int) -> None:
    """nn.Linear's default initialisation for stacked (type, in, out) weights."""
    bound = 1 / math.sqrt(fan_in)
    nn.init.uniform_(weight, -bound, bound)
    if bias is not None:
        nn.init.uniform_(bias, -bound, bound)


def typed_linear(
    x: torch.Tensor,
    types: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor,
    residual: torch.Tensor | None = None,
) -> torch.Tensor:
    """Per-agent affine map chosen by node type: ``x`` (N, T, Cin), ``types`` (N,),
    ``weight`` (num_types, Cin, Cout), ``bias`` (num_types, Cout) -> (N, T, Cout), plus
    ``residual`` (N, T, Cout) when given (accumulated by the GEMM itself, no extra pass)."""
    n, tok, cin = x.shape
    uniform = bool((types == types[0]).all())
    if uniform:
        t = int(types[0])
        if residual is None:
            return torch.addmm(bias[t], x.reshape(-1, cin), weight[t]).view(n, tok, -1)
        acc = residual + bias[t]
        add_product_(acc.view(n * tok, -1), x.reshape(-1, cin), weight[t])
        return acc
    b = bias.index_select(0, types).unsqueeze(1)
    w = weight.index_select(0, types)
    if residual is None:
        return torch.baddbmm(b, x, w)
    return add_product_(residual + b, x, w)


def agent_rows(t: torch.Tensor, heads: int, width: int, offset: int) -> torch.Tensor:
    """View (T*heads, N, width) of ``t`` (N, T, heads * group) whose per-head groups hold the
    ``width`` channels starting at ``offset``: for every (pixel, head) a matrix with one row per agent."""
    n, tok, cols = t.shape
    group = cols // heads
    return t.as_strided((tok * heads, n, width), (group, tok * cols, 1), t.storage_offset() + offset)


class AgentAttention(nn.Module):
    """Attention across agents at every pixel; returns ``x_q + dropout(out_proj(attention))``."""

    num_types_hetero = 2

    def __init__(self, dim: int, heads: int, dim_head: int, dropout: float, hetero: bool):
        super().__init__()
        self.heads, self.dim_head, self.hetero = heads, dim_head, hetero
        inner = heads * dim_head
        self.inner = inner
        n_types = self.num_types_hetero if hetero else 1
        self.qkv_weight = nn.Parameter(torch.empty(n_types, dim, 3 * inner))
        self.qkv_bias = nn.Parameter(torch.empty(n_types, 3 * inner)) if hetero else None
        self.out_weight = nn.Parameter(torch.empty(n_types, inner, dim))
        self.out_bias = nn.Parameter(torch.empty(n_types, dim))
        _linear_init(self.qkv_weight, self.qkv_bias, dim)
        _linear_init(self.out_weight, self.out_bias, inner)
        if hetero:
            n_rel = n_types * n_types
            self.relation_att = nn.Parameter(torch.empty(n_rel, heads, dim_head, dim_head))
            self.relation_msg = nn.Parameter(torch.empty(n_rel, heads, dim_head, dim_head))
            nn.init.xavier_uniform_(self.relation_att)  # as V2X-ViT (fans over the 4-d tensor)
            nn.init.xavier_uniform_(self.relation_msg)
        self.dropout = Dropout(dropout)

    def folded_weights(self, key_types: list[int]) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """Per-type projection weights with the relations folded in, for the key types present.

        Returns ``{"q", "k", "v", "out"}`` -> (weight (types, Cin, Cout), bias (types, Cout)). The query of
        an agent of type t holds, per head, one slot per key type tau: ``q W_att[2t + tau] / sqrt(d)``;
        keys and values are the plain projections; the output projection of type t reads the slots
        (the per-key-type partial messages) through ``W_msg[2t + tau] W_out[t]``.
        """
        h, d, inner = self.heads, self.dim_head, self.inner
        n_types, c = self.qkv_weight.shape[:2]
        bias = self.qkv_bias if self.qkv_bias is not None else self.qkv_weight.new_zeros(n_types, 3 * inner)
        wq, wk, wv = (w.reshape(n_types, c, h, d) for w in self.qkv_weight.split(inner, dim=-1))
        bq, bk, bv = bias.split(inner, dim=-1)
        scale = d ** -0.5
        out_w = self.out_weight.reshape(n_types, h, d, -1)
        if self.hetero:
            types = torch.arange(n_types, device=wq.device)
            # relation index per (agent type t, key-type slot s): 2 * t + tau_s
            rel = types[:, None] * n_types + torch.tensor(key_types, device=wq.device)[None, :]
            r_att, r_msg = self.relation_att[rel], self.relation_msg[rel]  # (types, slots, h, d, d)
            q_w = torch.einsum("tchd,tshde->tchse", wq * scale, r_att)
            q_b = torch.einsum("thd,tshde->thse", bq.reshape(n_types, h, d) * scale, r_att)
            out_w = torch.einsum("tshde,thec->thsdc", r_msg, out_w)
        else:
            q_w, q_b = (wq * scale).unsqueeze(3), (bq.reshape(n_types, h, d) * scale).unsqueeze(2)
            out_w = out_w.unsqueeze(2)
        return {
            "q": (q_w.reshape(n_types, c, -1), q_b.reshape(n_types, -1)),
            "k": (wk.reshape(n_types, c, -1), bk),
            "v": (wv.reshape(n_types, c, -1), bv),
            "out": (out_w.reshape(n_types, -1, out_w.shape[-1]), self.out_bias),
        }

    @staticmethod
    def _interleave(parts: list[tuple[torch.Tensor, torch.Tensor]], heads: int):
        """Concatenate projections so the output columns are (head, part, width)."""
        ws = [w.unflatten(-1, (heads, -1)) for w, _ in parts]
        bs = [b.unflatten(-1, (heads, -1)) for _, b in parts]
        return torch.cat(ws, dim=-1).flatten(-2), torch.cat(bs, dim=-1).flatten(-2)

    def forward(
        self,
        x_q: torch.Tensor,
        y: torch.Tensor,
        types: torch.Tensor,
        query_index: torch.Tensor | None = None,
        pixel_bias: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``y`` (N, T, C): normalised maps of all packed agents; ``types`` (N,) node types;
        ``query_index`` (Nq,): packed indices of the query agents (None = all, in order);
        ``x_q`` (Nq, T, C): their residual stream; ``pixel_bias`` (T, 1, Nq, N): additive logit bias
        (0 / -inf) separating samples and applying the ROI, or None."""
        n, tok, _ = y.shape
        h, d = self.heads, self.dim_head
        if not self.hetero:
            types = torch.zeros_like(types)
        q_types = types if query_index is None else types.index_select(0, query_index)
        key_types = [int(t) for t in torch.unique(types)]
        slots = len(key_types)
        w = self.folded_weights(key_types)
        if query_index is None:  # one GEMM, columns (head, [q slots, k, v], d)
            weight, bias = self._interleave([w["q"], w["k"], w["v"]], h)
            q = kv = typed_linear(y, types, weight, bias)
            k_off = slots * d
        else:
            q = typed_linear(y.index_select(0, query_index), q_types, *w["q"])
            weight, bias = self._interleave([w["k"], w["v"]], h)
            kv = typed_linear(y, types, weight, bias)
            k_off = 0
        k_rows, v_rows = agent_rows(kv, h, d, k_off), agent_rows(kv, h, d, k_off + d)
        # logits per key-type slot; each key reads the slot of its own type (scale is in W_q)
        scores = [torch.bmm(agent_rows(q, h, d, s * d), k_rows.transpose(1, 2)) for s in range(slots)]
        nq = scores[0].shape[1]
        if slots > 1:
            scores = torch.where(types == key_types[1], scores[1], scores[0])
        else:
            scores = scores[0]
        if pixel_bias is not None:
            scores.view(tok, h, nq, n).add_(pixel_bias)
        attn = scores.softmax(dim=-1)
        if slots > 1:  # partial messages per key type, read by the type-folded output projection
            by_type = torch.stack([(types == t).to(attn.dtype) for t in key_types])  # (slots, N)
            attn = (attn.unsqueeze(1) * by_type[:, None, :]).reshape(tok * h, slots * nq, n)
        out = torch.bmm(attn, v_rows).view(tok, h, slots, nq, d).permute(3, 0, 1, 2, 4).reshape(nq, tok, -1)
        if self.training and self.dropout.p > 0:
            return x_q + self.dropout(typed_linear(out, q_types, *w["out"]))
        return typed_linear(out, q_types, *w["out"], residual=x_q)
