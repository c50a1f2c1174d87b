"""V2X-ViT's fusion encoder, and ours: the same encoder with a deformable branch in MSwin.

Per sample: the delay-aware positional encoding (RTE) is added to every agent's map, the non-ego
maps are warped by the spatial correction matrix (STTF, ``warp.py``), then ``depth`` layers of
(``num_blocks`` x [HMSA, MSwin], FFN), each pre-normalised with a residual; the ego's map is the
output. Config keys are V2X-ViT's (``model.args.transformer``: ``encoder {sttf, use_roi_mask,
use_RTE, RTE_ratio, cav_att_config, pwindow_att_config, feed_forward, num_blocks, depth}``); ours
adds ``pwindow_att_config.deform``.

``forward(x (B, L, C, H, W), mask (B, L), meta)`` reads from ``meta``:
  ``prior_encoding`` (B, L, 3): (speed, delay in 100 ms steps, is_rsu) -- needed for RTE and HMSA;
  ``spatial_correction`` (B, L, 4, 4): correction agent -> ego in metres (optional; identity);
  ``lidar_range`` [6] (optional): the map's range; default a range centred on the ego (as V2X-ViT).

Speed: maps are packed to the real agents (cost follows the real agent count) and moved once to
a window-major token order (``tokens.py``); in the last block only the ego's queries are
computed after the agents have exchanged information (the other agents' rows would be dropped).
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from v2xdet.models.fusion.agents import AgentLayout
from v2xdet.models.fusion.deformable import DeformableBranch
from v2xdet.models.fusion.dropout import Dropout
from v2xdet.models.fusion.hmsa import AgentAttention
from v2xdet.models.fusion.mswin import DeformSources, MSwin
from v2xdet.models.fusion.products import add_product_
from v2xdet.models.fusion.simple import check_fusion_inputs
from v2xdet.models.fusion.tokens import WindowOrder
from v2xdet.models.fusion.warp import centred_lidar_range, warp_to_ego, warp_valid_mask

# Size of the deformable branch's position-bias table when the detector does not pass the fusion
# map size: V2X-ViT's fusion map (48 x 176 for [-140.8, -38.4, 140.8, 38.4] m, 0.4 m voxels, stride 4).
DEFAULT_GRID_SIZE = (48, 176)
DEFORM_KEYS = ("enabled", "heads", "dim_head", "stride", "offset_range_factor", "offset_kernel",
               "sample_from", "use_pe")


class ArgsReader:
    """Reads required config keys with errors that name the key path."""

    def __init__(self, args: dict, path: str):
        if not isinstance(args, dict):
            raise ValueError(f"{path} must be a mapping, got {type(args).__name__}")
        self.args, self.path = args, path

    def section(self, key: str) -> ArgsReader:
        return ArgsReader(self.get(key, dict), f"{self.path}.{key}")

    def get(self, key: str, kind, default=None):
        if key not in self.args:
            if default is not None:
                return default
            raise ValueError(f"missing config key {self.path}.{key}")
        value = self.args[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if float in kinds and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kinds) or (bool not in kinds and isinstance(value, bool)):
            names = "/".join(k.__name__ for k in kinds)
            raise ValueError(f"config key {self.path}.{key} must be {names}, got {value!r}")
        return value

    def int_list(self, key: str) -> list[int]:
        value = self.get(key, (list, tuple))
        if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value):
            raise ValueError(f"config key {self.path}.{key} must be a list of positive integers, "
                             f"got {value!r}")
        return list(value)


class DelayEncoding(nn.Module):
    """V2X-ViT's RTE: a fixed sinusoid table indexed by ``delay * RTE_ratio``, then a Linear,
    added to every pixel of the agent's map. (The reference meant the table to be frozen but left
    it trainable by mistake; here it is a buffer.)"""

    def __init__(self, dim: int, ratio: int, max_len: int = 100):
        super().__init__()
        position = torch.arange(max_len, dtype=torch.float32)[:, None]
        div = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * -(math.log(10000.0) / dim))
        table = torch.zeros(max_len, dim)
        table[:, 0::2] = torch.sin(position * div) / math.sqrt(dim)
        table[:, 1::2] = torch.cos(position * div)[:, : dim // 2] / math.sqrt(dim)
        self.register_buffer("table", table, persistent=False)
        self.ratio, self.max_len = ratio, max_len
        self.lin = nn.Linear(dim, dim)

    def forward(self, delay: torch.Tensor) -> torch.Tensor:
        """(N,) delays in 100 ms steps -> (N, C) encodings."""
        idx = torch.round(delay * self.ratio).long()
        if bool((idx < 0).any()) or bool((idx >= self.max_len).any()):
            raise ValueError(
                f"prior_encoding delay * RTE_ratio must lie in [0, {self.max_len}), got {idx.tolist()}"
            )
        return self.lin(self.table[idx])


class FeedForward(nn.Module):
    """V2X-ViT's pre-normalised FFN block: ``x + Dropout(Linear(Dropout(GELU(Linear(LN(x))))))``."""

    def __init__(self, dim: int, hidden: int, dropout: float):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.fc1, self.fc2 = nn.Linear(dim, hidden), nn.Linear(hidden, dim)
        self.dropout = Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.dropout(F.gelu(self.fc1(self.norm(x))))
        if self.training and self.dropout.p > 0:
            return x + self.dropout(self.fc2(h))
        acc = x + self.fc2.bias  # the residual is accumulated by the GEMM
        add_product_(acc.view(-1, acc.shape[-1]), h.reshape(-1, h.shape[-1]), self.fc2.weight.t())
        return acc


class FusionBlock(nn.Module):
    """One [HMSA, MSwin] pair, each pre-normalised with a residual."""

    def __init__(self, dim: int, att: AgentAttention, mswin: MSwin):
        super().__init__()
        self.att_norm, self.att = nn.LayerNorm(dim), att
        self.win_norm, self.mswin = nn.LayerNorm(dim), mswin


class V2XViTFusion(nn.Module):
    """V2X-ViT's fusion encoder; ``forward(x, mask, meta) -> (B, C, H, W)`` the ego's map.

    ``args``: the config's ``model.args.transformer`` block; ``grid_size``: the fusion map's
    (H, W) (sizes the deformable branch's position table; optional).
    """

    allow_deform = False
    applies_spatial_correction = True  # STTF: the detector leaves the correction to it

    def __init__(self, args: dict, in_channels: int, grid_size: Sequence[int] | None = None):
        super().__init__()
        enc = ArgsReader(args, "transformer").section("encoder")
        cav = enc.section("cav_att_config")
        win = enc.section("pwindow_att_config")
        ffn = enc.section("feed_forward")
        sttf = enc.section("sttf")
        dim = cav.get("dim", int)
        for reader in (cav, win):
            if reader.get("dim", int) != in_channels:
                raise ValueError(f"config key {reader.path}.dim is {reader.get('dim', int)} but the fusion "
                                 f"input has {in_channels} channels")
        self.in_channels = in_channels
        self.num_blocks, self.depth = enc.get("num_blocks", int), enc.get("depth", int)
        if self.num_blocks < 1 or self.depth < 1:
            raise ValueError(f"{enc.path}.num_blocks and depth must be >= 1, got {self.num_blocks} "
                             f"and {self.depth}")
        self.use_roi_mask = enc.get("use_roi_mask", bool)
        self.use_rte = cav.get("use_RTE", bool, enc.args.get("use_RTE"))
        self.voxel_size = [float(v) for v in sttf.get("voxel_size", (list, tuple))]
        self.downsample_rate = sttf.get("downsample_rate", (int, float))
        self.hetero = cav.get("use_hetero", bool)
        rte_ratio = cav.get("RTE_ratio", int, enc.args.get("RTE_ratio")) if self.use_rte else None
        self.rte = DelayEncoding(dim, rte_ratio) if self.use_rte else None
        deform_cfg = self._deform_config(win)
        window_sizes = win.int_list("window_size")
        self.window_sizes = window_sizes
        grid = tuple(grid_size) if grid_size is not None else DEFAULT_GRID_SIZE
        blocks, ffns = [], []
        for _ in range(self.depth):
            for _ in range(self.num_blocks):
                deform = DeformableBranch(dim, table_size=grid, **deform_cfg) if deform_cfg else None
                blocks.append(FusionBlock(
                    dim,
                    AgentAttention(dim, cav.get("heads", int), cav.get("dim_head", int),
                                   cav.get("dropout", float), self.hetero),
                    MSwin(dim, win.int_list("heads"), win.int_list("dim_head"), window_sizes,
                          win.get("relative_pos_embedding", bool), win.get("dropout", float),
                          win.get("fusion_method", str), deform),
                ))
            ffns.append(FeedForward(dim, ffn.get("mlp_dim", int), ffn.get("dropout", float)))
        self.blocks = nn.ModuleList(blocks)
        self.ffns = nn.ModuleList(ffns)
        self.sample_all = bool(deform_cfg) and deform_cfg["sample_from"] == "all"
        self._orders: dict[tuple[int, int], WindowOrder] = {}

    def _deform_config(self, win: ArgsReader) -> dict | None:
        """The deformable branch's constructor arguments, or None when it is off."""
        if win.args.get("deform") is None:  # absent, or null as V2X-ViT configs may write it
            if self.allow_deform:
                raise ValueError(f"missing config key {win.path}.deform (fusion 'mswin_deform' needs it)")
            return None
        deform = win.section("deform")
        unknown = sorted(set(deform.args) - set(DEFORM_KEYS))
        if unknown:
            raise ValueError(f"unknown config keys {unknown} in {deform.path} (expected {list(DEFORM_KEYS)})")
        if not deform.get("enabled", bool):
            return None
        if not self.allow_deform:
            raise ValueError(f"{deform.path}.enabled is true: use the fusion 'mswin_deform' for the "
                             "deformable branch ('v2xvit' is the reference model)")
        return {
            "heads": deform.get("heads", int),
            "dim_head": deform.get("dim_head", int),
            "stride": deform.get("stride", int),
            "offset_range_factor": deform.get("offset_range_factor", float),
            "offset_kernel": deform.get("offset_kernel", int),
            "sample_from": deform.get("sample_from", str),
            "use_pe": deform.get("use_pe", bool),
        }

    def order(self, height: int, width: int) -> WindowOrder:
        key = (height, width)
        if key not in self._orders:
            self._orders[key] = WindowOrder(height, width, self.window_sizes)
        return self._orders[key]

    def _prior(self, meta: dict, shape: tuple[int, int]) -> torch.Tensor | None:
        prior = meta.get("prior_encoding")
        if prior is None:
            if self.use_rte or self.hetero:
                raise ValueError("meta['prior_encoding'] (B, L, 3) is required by V2X-ViT (RTE / HMSA)")
            return None
        if tuple(prior.shape) != shape + (3,):
            raise ValueError(f"meta['prior_encoding'] must have shape {shape + (3,)}, "
                             f"got {tuple(prior.shape)}")
        return prior

    def _align(self, xp: torch.Tensor, layout: AgentLayout, meta: dict, n_slots: int):
        """STTF: warp the packed non-ego maps by the spatial correction; also the per-pixel ROI."""
        corr = meta.get("spatial_correction")
        n, _, h, w = xp.shape
        key_valid = None
        if corr is None:
            return xp, key_valid
        if tuple(corr.shape) != tuple(layout.mask.shape) + (4, 4):
            expected = tuple(layout.mask.shape) + (4, 4)
            raise ValueError(f"meta['spatial_correction'] must have shape {expected}, "
                             f"got {tuple(corr.shape)}")
        non_ego = (layout.flat % n_slots != 0).nonzero().squeeze(1)
        if non_ego.numel() == 0:
            return xp, key_valid
        corr_p = layout.pack(corr).index_select(0, non_ego)
        lidar_range = meta.get("lidar_range")
        if lidar_range is None:
            lidar_range = centred_lidar_range(h, w, self.voxel_size, self.downsample_rate)
        eye = torch.eye(4, dtype=corr_p.dtype, device=corr_p.device)
        if torch.equal(corr_p, eye.expand_as(corr_p)):  # nothing to correct, every cell in view
            return xp, key_valid
        warped = warp_to_ego(xp.index_select(0, non_ego)[None], corr_p[None], lidar_range,
                             self.voxel_size, self.downsample_rate)[0]
        xp = xp.index_put((non_ego,), warped)
        if self.use_roi_mask:
            key_valid = torch.ones(n, h, w, dtype=torch.bool, device=xp.device)
            key_valid[non_ego] = warp_valid_mask(corr_p, h, w, lidar_range, self.voxel_size,
                                                 self.downsample_rate)
        return xp, key_valid

    def forward(self, x: torch.Tensor, mask: torch.Tensor, meta: dict | None = None) -> torch.Tensor:
        check_fusion_inputs(x, mask, self.in_channels)
        meta = meta or {}
        b, n_slots, _, h, w = x.shape
        layout = AgentLayout.from_mask(mask)
        prior = self._prior(meta, (b, n_slots))
        order = self.order(h, w)
        xp = layout.pack(x)
        if self.rte is not None:
            xp = xp + self.rte(layout.pack(prior[..., 1]))[:, :, None, None]
        xp, key_valid = self._align(xp, layout, meta, n_slots)
        tokens = order.to_tokens(xp)
        if key_valid is not None:
            key_valid = order.to_tokens(key_valid[:, None].float())[..., 0] > 0.5
        types = (layout.pack(prior[..., 2]) > 0.5).long() if prior is not None else \
            torch.zeros(layout.num_packed, dtype=torch.long, device=x.device)
        all_bias = pixel_bias(layout, key_valid, None, x.dtype)
        ego_bias = pixel_bias(layout, key_valid, layout.ego, x.dtype)
        n_blocks = len(self.blocks)
        for i, block in enumerate(self.blocks):
            last = i == n_blocks - 1
            y = block.att_norm(tokens)
            if last and not self.sample_all:  # only the ego's row is needed from here on
                tokens = block.att(tokens.index_select(0, layout.ego), y, types, layout.ego, ego_bias)
            else:
                tokens = block.att(tokens, y, types, None, all_bias)
            y = block.win_norm(tokens)
            sources = None
            if self.sample_all:
                query_batch = layout.batch if not last else torch.arange(b, device=x.device)
                valid = None if layout.full else layout.mask.index_select(0, query_batch)
                sources = DeformSources(y, layout.slot_to_packed.index_select(0, query_batch), valid,
                                        queries_are_sources=not last)
                if last:
                    tokens, y = tokens.index_select(0, layout.ego), y.index_select(0, layout.ego)
            tokens = block.mswin(tokens, y, order, sources)
            if (i + 1) % self.num_blocks == 0:
                tokens = self.ffns[(i + 1) // self.num_blocks - 1](tokens)
        return order.to_map(tokens)


def pixel_bias(
    layout: AgentLayout, key_valid: torch.Tensor | None, query_index: torch.Tensor | None, dtype: torch.dtype
) -> torch.Tensor | None:
    """(T, 1, Nq, N) additive attention bias for HMSA: -inf between agents of different samples
    and for keys outside their warped ROI (``key_valid`` (N, T)); None when nothing is masked."""
    n_samples = layout.mask.shape[0]
    if n_samples == 1 and key_valid is None:
        return None
    q_batch = layout.batch if query_index is None else layout.batch.index_select(0, query_index)
    valid = (q_batch[:, None] == layout.batch[None, :])[None]  # (1, Nq, N)
    if key_valid is not None:
        valid = valid & key_valid.t()[:, None, :]
    bias = torch.zeros(valid.shape, dtype=dtype, device=valid.device)
    bias.masked_fill_(~valid, float("-inf"))
    return bias.unsqueeze(1)


class MSwinDeformFusion(V2XViTFusion):
    """Ours: V2X-ViT with a DAT-style deformable branch inside MSwin (``pwindow_att_config.deform``);
    ``deform.enabled: false`` gives the same model without it (the ablation)."""

    allow_deform = True

