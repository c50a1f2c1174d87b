"""Per-pixel attention across agents: V2X-ViT's HMSA (heterogeneous) and plain CAV attention.

HMSA (``hetero=True``) follows V2X-ViT's ``HGTCavAttention``: each agent has a node type
(0 = vehicle, 1 = RSU) with its own Q/K/V and output projections (with bias); the attention
logit between query agent i and key agent j at a pixel is ``q_i^T W_att[r] k_j / sqrt(d)`` and
the message is ``W_msg[r]^T v_j``, with one of four relation types ``r = 2 * type_i + type_j``
per head; key agents outside the query's sample or outside the warped ROI at that pixel are
masked out. Plain attention (``hetero=False``) is V2X-ViT's ``CavAttention``: one bias-free QKV
projection and no relation matrices.

How it is computed (batched over samples, agents, pixels and heads; no Python loop over agents):

* The relation matrices are linear maps applied after linear projections, so they are folded into
  the projection weights once per forward: a key agent of type t gets ``W_k[t] W_att[tau, t]^T``
  for every query type tau present, the query projection (pre-scaled by 1/sqrt(d)) writes into
  the slot of its own type, and the output projection reads only that slot. With one query type
  (all vehicles, or ego-only queries) this costs no extra FLOPs at all.
* One GEMM produces Q, K and V with the columns interleaved per head, ``(head, [q, k, v], d')``,
  so for every (pixel, head) the agents' vectors are rows at a fixed stride: the per-pixel
  ``(agents x d') @ (d' x agents)`` products are ``bmm`` on strided views, with no copies.
* All packed agents of the batch attend in one block; an additive per-pixel bias (-inf) keeps
  samples apart and applies the ROI mask. Padding agents are never packed.
"""
from __future__ import annotations

import math

import torch
from torch import nn


def _linear_init(weight: torch.Tensor, bias: torch.Tensor | None, fan_in: int) -> None:
    """nn.Linear's default initialisation for stacked (type, in, out) weights."""
    bound = 1 / math.sqrt(fan_in)
    nn.init.uniform_(weight, -bound, bound)
    if bias is not None:
        nn.init.uniform_(bias, -bound, bound)


def typed_linear(
    x: torch.Tensor, types: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor
) -> torch.Tensor:
    """Per-agent affine map chosen by node type: ``x`` (N, T, Cin), ``types`` (N,),
    ``weight`` (num_types, Cin, Cout), ``bias`` (num_types, Cout) -> (N, T, Cout)."""
    if bool((types == types[0]).all()):
        t = int(types[0])
        return torch.addmm(bias[t], x.reshape(-1, x.shape[-1]), weight[t]).view(x.shape[0], x.shape[1], -1)
    return torch.baddbmm(bias.index_select(0, types).unsqueeze(1), x, weight.index_select(0, types))


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
        self.dropout = nn.Dropout(dropout)

    def folded_weights(self, q_types: list[int]) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """Per-type projection weights with the relations folded in, for the query types present.

        Returns ``{"q", "k", "v", "out"}`` -> (weight (types, Cin, Cout), bias (types, Cout)); q/k/v
        outputs are laid out (head, slot, d) with one slot per query type; ``out`` reads (head, slot, d).
        """
        h, d, inner = self.heads, self.dim_head, self.inner
        n_types = self.qkv_weight.shape[0]
        c = self.qkv_weight.shape[1]
        bias = self.qkv_bias if self.qkv_bias is not None else self.qkv_weight.new_zeros(n_types, 3 * inner)
        wq, wk, wv = (w.reshape(n_types, c, h, d) for w in self.qkv_weight.split(inner, dim=-1))
        bq, bk, bv = (b.reshape(n_types, 1, h, d) for b in bias.split(inner, dim=-1))
        n_slots = len(q_types)
        slot = torch.zeros(n_types, n_slots, dtype=wq.dtype, device=wq.device)
        for i, tau in enumerate(q_types):
            slot[tau, i] = 1.0  # a query (and its output) uses the slot of its own type
        scale = d ** -0.5
        q_w = torch.einsum("tchd,ts->tchsd", wq * scale, slot)
        q_b = torch.einsum("tchd,ts->tchsd", bq * scale, slot)
        if self.hetero:
            types = torch.arange(n_types, device=wq.device)
            # relation index per (key type t, query slot s): 2 * tau_s + t
            rel = torch.tensor(q_types, device=wq.device)[None, :] * n_types + types[:, None]  # (type, slot)
            r_att, r_msg = self.relation_att[rel], self.relation_msg[rel]  # (types, slots, h, d, d)
            k_w = torch.einsum("tchd,tshed->tchse", wk, r_att)  # k @ W_att^T
            k_b = torch.einsum("tchd,tshed->tchse", bk, r_att)
            v_w = torch.einsum("tchd,tshde->tchse", wv, r_msg)  # v @ W_msg
            v_b = torch.einsum("tchd,tshde->tchse", bv, r_msg)
        else:
            k_w, k_b = wk.unsqueeze(3), bk.unsqueeze(3)
            v_w, v_b = wv.unsqueeze(3), bv.unsqueeze(3)
        out_w = torch.einsum("thdc,ts->thsdc", self.out_weight.reshape(n_types, h, d, -1), slot)
        flat = {
            "q": (q_w.reshape(n_types, c, -1), q_b.reshape(n_types, -1)),
            "k": (k_w.reshape(n_types, c, -1), k_b.reshape(n_types, -1)),
            "v": (v_w.reshape(n_types, c, -1), v_b.reshape(n_types, -1)),
            "out": (out_w.reshape(n_types, h * n_slots * d, -1), self.out_bias),
        }
        return flat

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
        q_types_t = types if query_index is None else types.index_select(0, query_index)
        present = [int(t) for t in torch.unique(q_types_t)]
        w = self.folded_weights(present)
        width = len(present) * d
        if query_index is None:
            weight, bias = self._interleave([w["q"], w["k"], w["v"]], h)
            qkv = typed_linear(y, types, weight, bias)
            q_rows = agent_rows(qkv, h, width, 0)
            k_rows, v_rows = agent_rows(qkv, h, width, width), agent_rows(qkv, h, width, 2 * width)
        else:
            q = typed_linear(y.index_select(0, query_index), q_types_t, *w["q"])
            weight, bias = self._interleave([w["k"], w["v"]], h)
            kv = typed_linear(y, types, weight, bias)
            q_rows = agent_rows(q, h, width, 0)
            k_rows, v_rows = agent_rows(kv, h, width, 0), agent_rows(kv, h, width, width)
        nq = q_rows.shape[1]
        scores = torch.bmm(q_rows, k_rows.transpose(1, 2))  # (T*h, Nq, N); scale is in W_q
        if pixel_bias is not None:
            scores.view(tok, h, nq, n).add_(pixel_bias)
        attn = scores.softmax(dim=-1)
        out = torch.bmm(attn, v_rows).view(tok, h, nq, width).permute(2, 0, 1, 3).reshape(nq, tok, h * width)
        proj = typed_linear(out, q_types_t, *w["out"])
        return x_q + self.dropout(proj)
