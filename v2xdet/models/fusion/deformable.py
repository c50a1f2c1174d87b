"""The deformable-attention branch of MSwin (ours), after DAT's ``DAttentionBaseline``.

Per query agent: queries ``q = proj_q(x)`` at every pixel; an offset network on ``q``
(depthwise k x k convolution with stride r, LayerNorm, GELU, a bias-free linear map to 2)
predicts one offset per cell of the stride-r grid; offsets are bounded by
``tanh * offset_range_factor / (grid size - 1)`` in [-1, 1] coordinates (DAT's bound), i.e. at most
``offset_range_factor * (H - 1) / (2 * (Hk - 1))`` pixels, about ``factor * r / 2``. Reference
points sit at the centres of the stride-r cells. Keys and values come from bilinear samples
(``grid_sample(..., align_corners=True)`` semantics, zeros outside) of a map at
``reference + offset``, projected by ``proj_k`` / ``proj_v``; every query attends to every sample.
With ``use_pe`` a continuous relative position bias is read from a ``(heads, 2Ht-1, 2Wt-1)`` table
by bilinear sampling at the displacement (normalised by the map size, as DAT) from the query's
stride-r cell centre -- its reference point -- to the sample: the queries of a cell share the
bias, so the table is read r^2 times less often than per query (exact DAT for r = 1). On a CPU a
bias read per query and sample cost more than the rest of the branch together.

``sample_from``: ``"own"`` samples the query agent's own map (DAT inside one map); ``"all"``
samples every real agent's map of the sample, all already in the ego frame, so a query can reach
a neighbour's feature at a displaced position -- the misalignment that pose error and delay
cause. In ``"all"`` mode the offsets of a (query agent, source agent) pair come from both agents'
queries (the offset network reads their concatenation), so each pair can learn its own shift.

Sampling is done on the window-major token layout directly with ``embedding_bag`` (a weighted sum
of the four corner rows per sample), which is the bilinear interpolation of ``grid_sample`` without
moving whole maps to channels-first.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from v2xdet.models.fusion.tokens import WindowOrder

SAMPLE_FROM = ("own", "all")
# Upper bound on the bytes of one chunk of the position-bias mask (cells are processed in chunks).
PE_CHUNK_BYTES = 32 * 2**20


class DeformableBranch(nn.Module):
    """DAT-style deformable attention over one map (``own``) or all agents' maps (``all``)."""

    def __init__(
        self,
        dim: int,
        heads: int,
        dim_head: int,
        stride: int,
        offset_range_factor: float,
        offset_kernel: int,
        sample_from: str,
        use_pe: bool,
        table_size: tuple[int, int],
    ):
        super().__init__()
        if sample_from not in SAMPLE_FROM:
            raise ValueError(f"deform.sample_from must be one of {SAMPLE_FROM}, got {sample_from!r}")
        if stride < 1 or offset_kernel < 1 or offset_kernel % 2 == 0:
            raise ValueError(f"deform.stride must be >= 1 and deform.offset_kernel odd, got {stride} and "
                             f"{offset_kernel}")  # odd: the offset grid is then ceil(H / r) x ceil(W / r)
        if not offset_range_factor > 0:
            raise ValueError(f"deform.offset_range_factor must be positive, got {offset_range_factor}")
        self.heads, self.dim_head, self.inner = heads, dim_head, heads * dim_head
        self.stride, self.range_factor, self.sample_from = stride, float(offset_range_factor), sample_from
        self.use_pe = use_pe
        inner = self.inner
        self.q_weight = nn.Parameter(torch.empty(inner, dim))
        self.q_bias = nn.Parameter(torch.empty(inner))
        nn.init.kaiming_uniform_(self.q_weight, a=math.sqrt(5))
        nn.init.uniform_(self.q_bias, -1 / math.sqrt(dim), 1 / math.sqrt(dim))
        pair = 2 if sample_from == "all" else 1
        self.offset_dw = nn.Conv2d(inner, inner * pair, offset_kernel, stride=stride,
                                   padding=(offset_kernel - 1) // 2, groups=inner)
        self.offset_norm = nn.LayerNorm(inner * pair)
        self.offset_proj = nn.Linear(inner * pair, 2, bias=False)
        self.kv = nn.Linear(dim, 2 * inner)
        self.out = nn.Linear(inner, dim)
        if use_pe:
            ht, wt = table_size
            self.rpe_table = nn.Parameter(torch.empty(heads, 2 * ht - 1, 2 * wt - 1))
            nn.init.trunc_normal_(self.rpe_table, std=0.01)
        else:
            self.register_parameter("rpe_table", None)
        self._slot_cache: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}

    # --- geometry -------------------------------------------------------------------------
    def reference_points(self, h: int, w: int, hk: int, wk: int, device, dtype) -> torch.Tensor:
        """(Hk, Wk, 2) pixel (row, col) of the stride-r cell centres, clamped to the map."""
        r = self.stride
        rows = (torch.arange(hk, device=device, dtype=dtype) * r + (r - 1) / 2).clamp(max=h - 1)
        cols = (torch.arange(wk, device=device, dtype=dtype) * r + (r - 1) / 2).clamp(max=w - 1)
        return torch.stack(torch.meshgrid(rows, cols, indexing="ij"), dim=-1)

    def offset_bound(self, h: int, w: int, hk: int, wk: int) -> tuple[float, float]:
        """Largest |offset| in pixels (row, col): DAT's ``factor / (grid - 1)`` in [-1, 1] units."""
        return (self.range_factor * (h - 1) / (2 * max(hk - 1, 1)),
                self.range_factor * (w - 1) / (2 * max(wk - 1, 1)))

    def sampling_positions(
        self,
        q_map: torch.Tensor,
        src_of_query: torch.Tensor,
        q_src_map: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Sample positions (Nq, A, Hk, Wk, 2) in pixels (row, col) for A source maps per query agent.

        ``q_map`` (Nq, inner, H, W): the query agents' queries; ``q_src_map`` (Ns, inner, H, W): the
        source agents' queries (``all`` mode; None = the query agents themselves);
        ``src_of_query`` (Nq, A): source index of each pair.
        """
        nq, _, h, w = q_map.shape
        dq = self.offset_dw(q_map)
        hk, wk = dq.shape[-2:]
        if self.sample_from == "own":
            feat = dq.permute(0, 2, 3, 1).unsqueeze(1)  # (Nq, 1, Hk, Wk, inner)
        else:
            ds = dq if q_src_map is None else self.offset_dw(q_src_map)
            a = src_of_query.shape[1]
            own = dq[:, 0::2].unsqueeze(1).expand(-1, a, -1, -1, -1)
            other = ds[:, 1::2][src_of_query]
            feat = torch.cat((own, other), dim=2).permute(0, 1, 3, 4, 2)  # (Nq, A, Hk, Wk, 2 inner)
        raw = self.offset_proj(F.gelu(self.offset_norm(feat)))
        bound = torch.tensor(self.offset_bound(h, w, hk, wk), device=raw.device, dtype=raw.dtype)
        ref = self.reference_points(h, w, hk, wk, raw.device, raw.dtype)
        return ref + torch.tanh(raw) * bound

    # --- sampling ---------------------------------------------------------------------------
    @staticmethod
    def bilinear_sample(
        src_tokens: torch.Tensor, order: WindowOrder, src_index: torch.Tensor, pos: torch.Tensor
    ) -> torch.Tensor:
        """Bilinear samples of token maps, ``grid_sample(align_corners=True, zeros)`` semantics.

        ``src_tokens`` (Ns, T, C) in token order; ``src_index`` (...) which map each position reads;
        ``pos`` (..., 2) pixel (row, col). Returns (..., C).
        """
        ns, t, c = src_tokens.shape
        h, w = order.height, order.width
        corner0 = pos.detach().floor()
        frac = pos - corner0  # differentiable in pos
        y0, x0 = corner0[..., 0].long(), corner0[..., 1].long()
        fy, fx = frac[..., 0], frac[..., 1]
        ys = torch.stack((y0, y0, y0 + 1, y0 + 1), dim=-1)
        xs = torch.stack((x0, x0 + 1, x0, x0 + 1), dim=-1)
        weights = torch.stack(((1 - fy) * (1 - fx), (1 - fy) * fx, fy * (1 - fx), fy * fx), dim=-1)
        inside = (ys >= 0) & (ys < h) & (xs >= 0) & (xs < w)
        weights = weights * inside
        raster = ys.clamp(0, h - 1) * w + xs.clamp(0, w - 1)
        rank = order.rank.to(raster.device)
        rows = src_index.unsqueeze(-1) * t + rank[raster]
        lead = pos.shape[:-1]
        out = F.embedding_bag(rows.reshape(-1, 4), src_tokens.reshape(ns * t, c),
                              per_sample_weights=weights.reshape(-1, 4).to(src_tokens.dtype), mode="sum")
        return out.view(lead + (c,))

    def position_bias(self, q_coords: torch.Tensor, pos: torch.Tensor, h: int, w: int) -> torch.Tensor:
        """(Nq, heads, Tq, S) bias: the table read bilinearly at the query-to-sample displacement.

        ``q_coords`` (Tq, 2) query pixels (row, col); ``pos`` (Nq, S, 2) sample pixels.
        """
        nq = pos.shape[0]
        disp = q_coords[None, :, None, :].to(pos.dtype) - pos[:, None, :, :]  # (Nq, Tq, S, 2)
        scale = torch.tensor([1.0 / max(h - 1, 1), 1.0 / max(w - 1, 1)], device=pos.device, dtype=pos.dtype)
        grid = (disp * scale).flip(-1)  # (x, y) order for grid_sample
        if grid.is_cuda and torch.are_deterministic_algorithms_enabled():
            return table_read(self.rpe_table, grid)  # grid_sample's CUDA backward is not deterministic
        table = self.rpe_table.unsqueeze(0).expand(nq, -1, -1, -1)
        return F.grid_sample(table, grid, mode="bilinear", padding_mode="border", align_corners=True)

    # --- attention --------------------------------------------------------------------------
    def forward(
        self,
        q: torch.Tensor,
        src_tokens: torch.Tensor,
        src_of_query: torch.Tensor,
        order: WindowOrder,
        src_valid: torch.Tensor | None = None,
        q_src: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Deformable attention output (Nq, T, inner) in token order.

        ``q`` (Nq, T, inner): projected queries of the query agents; ``src_tokens`` (Ns, T, C): the
        normalised maps keys are sampled from; ``src_of_query`` (Nq, A): which maps each query agent
        samples (A = 1 for ``own``); ``src_valid`` (Nq, A) False for padded sources;
        ``q_src`` (Ns, T, inner): the source agents' queries (``all``; None = ``q``).
        """
        nq, t, _ = q.shape
        q_map = order.to_map(q, channels_last=True)
        q_src_map = None if q_src is None else order.to_map(q_src, channels_last=True)
        pos = self.sampling_positions(q_map, src_of_query, q_src_map)  # (Nq, A, Hk, Wk, 2)
        a, hk, wk = pos.shape[1:4]
        src_index = src_of_query[:, :, None, None].expand(-1, -1, hk, wk)
        samples = self.bilinear_sample(src_tokens, order, src_index, pos).reshape(nq, a * hk * wk, -1)
        s = samples.shape[1]
        kv = self.kv(samples).view(nq, s, 2, self.heads, self.dim_head)
        k, v = kv.select(2, 0).transpose(1, 2), kv.select(2, 1).transpose(1, 2)
        q4 = q.view(nq, t, self.heads, self.dim_head).transpose(1, 2)
        key_valid = None
        if src_valid is not None and not bool(src_valid.all()):
            key_valid = src_valid[:, :, None].expand(-1, -1, hk * wk).reshape(nq, 1, 1, s)
        if not self.use_pe:
            out = F.scaled_dot_product_attention(q4, k, v, attn_mask=key_valid)
            return out.transpose(1, 2).reshape(nq, t, self.inner)
        out = self._attend_with_bias(q, k, v, pos.reshape(nq, s, 2), key_valid, order, hk, wk)
        return out.reshape(nq, t, self.inner)

    def cell_slots(self, order: WindowOrder, hk: int, wk: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Queries laid out cell-major: ``slots`` (Hk * Wk * r^2,) the token at each (cell, in-cell
        offset), token 0 where a border cell is partial (a stand-in whose output is dropped);
        ``inverse`` (T,) each token's slot."""
        key = (order.height, order.width, tuple(order.sizes), self.stride)
        if key not in self._slot_cache:
            r = self.stride
            rows, cols = order.coords[:, 0], order.coords[:, 1]
            inverse = ((rows // r) * wk + cols // r) * (r * r) + (rows % r) * r + cols % r
            slots = torch.zeros(hk * wk * r * r, dtype=torch.long)
            slots[inverse] = torch.arange(inverse.numel())
            self._slot_cache = {key: (slots, inverse)}
        return self._slot_cache[key]

    def _attend_with_bias(self, q, k, v, pos, key_valid, order: WindowOrder, hk: int, wk: int):
        """Attention with the position bias: ``q`` (Nq, T, inner) -> (Nq, T, heads, d) in token order
        (a transposed view).

        The bias is read at the displacement from the centre of the query's stride-r cell (its
        reference point) to each sample, so the r^2 queries of a cell share one row of the bias
        (exact DAT for r = 1): the table is read (T / r^2) x S times instead of T x S, which is what
        makes the bias affordable on a CPU. The queries are laid out cell-major, so that every cell is
        one batch entry of r^2 queries sharing its bias row (``cell_biased_attention``); cells go in
        chunks that bound the bias's memory.
        """
        nq, t, _ = q.shape
        s, r2 = k.shape[2], self.stride ** 2
        h, w = order.height, order.width
        slots, inverse = (i.to(q.device) for i in self.cell_slots(order, hk, wk))
        n_cells = hk * wk
        q_heads = q.view(nq, t, self.heads, self.dim_head).transpose(1, 2)
        batch = nq * self.heads
        q_cells = q_heads.index_select(2, slots).view(batch, n_cells, r2, self.dim_head)
        k_b, v_b = k.reshape(batch, s, self.dim_head), v.reshape(batch, s, self.dim_head)
        centres = self.reference_points(h, w, hk, wk, q.device, pos.dtype).reshape(-1, 2)
        chunk = max(1, PE_CHUNK_BYTES // (4 * batch * s))
        pieces = []
        for c0 in range(0, n_cells, chunk):
            c1 = min(c0 + chunk, n_cells)
            bias = self.position_bias(centres[c0:c1], pos, h, w).to(q.dtype)  # (Nq, heads, cells, S)
            if key_valid is not None:
                bias = bias.masked_fill(~key_valid, float("-inf"))
            pieces.append(cell_biased_attention(q_cells[:, c0:c1], k_b, v_b, bias.reshape(batch, c1 - c0, s)))
        out = torch.cat(pieces, dim=1) if len(pieces) > 1 else pieces[0]
        # reshape, not view: CUDA's fused attention returns its output in a (B, n, cells, d) layout
        out = out.reshape(nq, self.heads, n_cells * r2, self.dim_head).index_select(2, inverse)
        return out.transpose(1, 2)


def table_read(table: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """``grid_sample`` of one table for a batch of grids (bilinear, border padding, align_corners)
    by ``index_select``, whose CUDA backward has a deterministic form (``grid_sample``'s has none).

    ``table`` (C, H, W); ``grid`` (N, Ho, Wo, 2) as (x, y) in [-1, 1]. Returns (N, C, Ho, Wo).
    """
    c, h, w = table.shape
    x = ((grid[..., 0] + 1) * ((w - 1) / 2)).clamp(0, w - 1)
    y = ((grid[..., 1] + 1) * ((h - 1) / 2)).clamp(0, h - 1)
    x0, y0 = x.detach().floor().clamp(max=max(w - 2, 0)), y.detach().floor().clamp(max=max(h - 2, 0))
    fx, fy = x - x0, y - y0
    x0, y0 = x0.long(), y0.long()
    x1, y1 = (x0 + 1).clamp(max=w - 1), (y0 + 1).clamp(max=h - 1)
    flat = table.reshape(c, h * w)

    def at(yi: torch.Tensor, xi: torch.Tensor) -> torch.Tensor:
        return flat.index_select(1, (yi * w + xi).reshape(-1)).view(c, *yi.shape)
    out = (at(y0, x0) * ((1 - fy) * (1 - fx)) + at(y0, x1) * ((1 - fy) * fx)
           + at(y1, x0) * (fy * (1 - fx)) + at(y1, x1) * (fy * fx))
    return out.transpose(0, 1)


def cell_biased_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor
) -> torch.Tensor:
    """Attention of cells of queries that share one additive logit bias per cell.

    ``q`` (B, cells, n, d); ``k``, ``v`` (B, S, d); ``bias`` (B, cells, S). Returns (B, cells, n, d).
    Without gradients: one fused attention call, every cell a batch entry whose keys broadcast
    (stride 0) and whose bias row broadcasts over its n queries. With gradients: explicit logits,
    because the fused CPU kernel has no gradient for its mask and the fallback would materialise
    the broadcast keys once per cell.
    """
    b, cells, n, d = q.shape
    s = k.shape[1]
    if not (torch.is_grad_enabled() and any(t.requires_grad for t in (q, k, v, bias))):
        return F.scaled_dot_product_attention(
            q, k[:, None].expand(-1, cells, -1, -1), v[:, None].expand(-1, cells, -1, -1),
            attn_mask=bias[:, :, None, :].expand(-1, -1, n, -1))
    logits = torch.bmm(q.reshape(b, cells * n, d), k.transpose(1, 2) * d ** -0.5).view(b, cells, n, s)
    weights = (logits + bias[:, :, None, :]).softmax(dim=-1)
    return torch.bmm(weights.view(b, cells * n, s), v).view(b, cells, n, d)
