"""The detector, assembled stage by stage from ``model`` config tables.

Stages (each told the channels and stride of the one before)::

    pillar_vfe -> point_pillar_scatter -> base_bev_backbone -> [shrink_header] -> [compression]
      -> (cooperative models) regroup per sample, warp to the ego frame, fuse -> anchor head

``model.core_method`` names the model as OpenCOOD / V2X-ViT do; :data:`MODEL_FUSION` maps it to
a fusion method of ``v2xdet.models.fusion.FUSIONS`` (``None``: single-agent, every batch entry
is its own sample), built as ``FUSIONS[name](args, channels)`` with ``args`` the block of
``model.args`` named in :data:`FUSION_ARGS_KEY` (``{}`` for methods without arguments); the fusion
is called with ``meta = {prior_encoding, spatial_correction, lidar_range}``.

Spatial correction (``fusion.args.cur_ego_pose_flag: false``): ``agent_to_ego`` then maps into
the ego's pose at the agent's delayed time and ``spatial_correction`` maps that into the current
ego frame. A fusion class with ``applies_spatial_correction = True`` (V2X-ViT's STTF) warps by it
itself; for any other (default ``False``: max, att) the detector warps by the composition
``spatial_correction @ agent_to_ego`` and passes the identity as ``meta["spatial_correction"]``.

The batch (all torch tensors; ``N`` = batch entries, one per agent for cooperative models,
laid out sample-major; ``P`` pillars in all; ``T`` points per pillar)::

    voxel_features    (P, T, 4) float   points of each pillar, zero-padded
    voxel_num_points  (P,)      int     real points per pillar
    voxel_coords      (P, 4)    int     (entry, z, y, x)
    record_len        (B,)      int     agents per sample (all ones for single-agent models)
    agent_to_ego      (B, L, 4, 4)      cooperative only: agent frame -> ego frame, slot 0 = ego;
                                        identity where points were already projected (proj_first)
    prior_encoding    (B, L, 3)         cooperative only: passed to the fusion (V2X-ViT: velocity,
                                        time delay, infrastructure flag)
    spatial_correction (B, L, 4, 4)     cooperative only: ego reference frame -> current ego frame
                                        (see above)

``L`` may be larger than ``max(record_len)`` (padded to ``max_cav``); only the first
``max(record_len)`` slots are used. The output holds ``cls_preds (B, A, H, W)``,
``reg_preds (B, 7A, H, W)`` and ``dir_preds (B, bins*A, H, W)`` (when ``dir_args`` is set), with
``B = N`` for single-agent models.
"""
from __future__ import annotations

import importlib.util
import inspect
import math
from collections.abc import Callable

import torch
from torch import nn

from v2xdet.data_utils.preprocess.voxelize import NUM_POINT_FEATURES, grid_size
from v2xdet.models.backbones import BACKBONES
from v2xdet.models.encoders import ENCODERS, SCATTERS
from v2xdet.models.heads import HEADS

# model.core_method -> fusion method (None: single-agent detector)
MODEL_FUSION: dict[str, str | None] = {
    "point_pillar": None,
    "point_pillar_fcooper": "max",
    "point_pillar_opv2v": "att",
    "point_pillar_attfuse": "att",
    "point_pillar_transformer": "v2xvit",
    "point_pillar_mswin_deform": "mswin_deform",
}

# fusion method -> the model.args key holding its arguments (methods not listed take none)
FUSION_ARGS_KEY: dict[str, str] = {"v2xvit": "transformer", "mswin_deform": "transformer"}


def available_fusions() -> dict:
    """``v2xdet.models.fusion.FUSIONS`` when the fusion package is installed, else ``{}``."""
    if importlib.util.find_spec("v2xdet.models.fusion") is None:
        return {}
    from v2xdet.models.fusion import FUSIONS
    return FUSIONS


def default_warp() -> Callable:
    from v2xdet.models.fusion.warp import warp_to_ego
    return warp_to_ego


def regroup(features: torch.Tensor, record_len: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, C, H, W) sample-major entries -> ``(B, Lmax, C, H, W)`` zero-padded and a ``(B, Lmax)`` mask."""
    record_len = record_len.to(device=features.device, dtype=torch.long)
    if int(record_len.sum()) != features.shape[0] or bool((record_len < 1).any()):
        raise ValueError(f"record_len {record_len.tolist()} must be positive and sum to the number of "
                         f"batch entries ({features.shape[0]})")
    batch, lmax = record_len.shape[0], int(record_len.max())
    sample = torch.repeat_interleave(torch.arange(batch, device=features.device), record_len)
    start = torch.cumsum(record_len, 0) - record_len
    slot = torch.arange(features.shape[0], device=features.device) - start[sample]
    out = features.new_zeros((batch, lmax, *features.shape[1:]))
    out[sample, slot] = features
    mask = torch.zeros((batch, lmax), dtype=torch.bool, device=features.device)
    mask[sample, slot] = True
    return out, mask


def _need(batch: dict, key: str, why: str) -> torch.Tensor:
    if key not in batch:
        raise KeyError(f"the detector's batch needs {key!r} ({why}); got keys {sorted(batch)}")
    return batch[key]


class Detector(nn.Module):
    """PointPillars BEV detector with an optional cooperative fusion stage (see the module doc)."""

    def __init__(self, args: dict, fusion: str | None = None, fusions: dict | None = None,
                 warp: Callable | None = None):
        super().__init__()
        for key in ("voxel_size", "lidar_range"):
            if key not in args:
                raise ValueError(f"model.args.{key} is required to build the detector")
        self.voxel_size = [float(v) for v in args["voxel_size"]]
        self.lidar_range = [float(v) for v in args["lidar_range"]]
        grid = grid_size(self.voxel_size, self.lidar_range)
        given = args["point_pillar_scatter"].get("grid_size")
        if given is not None and [int(v) for v in given] != grid.tolist():
            raise ValueError(f"model.args.point_pillar_scatter.grid_size {list(given)} disagrees with "
                             f"lidar_range / voxel_size = {grid.tolist()}")
        self.encoder = ENCODERS["pillar_vfe"](args["pillar_vfe"], NUM_POINT_FEATURES,
                                              self.voxel_size, self.lidar_range)
        self.scatter = SCATTERS["point_pillar_scatter"](args["point_pillar_scatter"],
                                                        self.encoder.out_channels, grid)
        channels, stride = self.scatter.out_channels, 1
        stages = {}
        for key, cls in BACKBONES.items():
            value = args.get(key)
            if value is None or (key == "compression" and value == 0):
                continue
            stages[key] = cls(value, channels)
            channels, stride = stages[key].out_channels, stride * stages[key].stride
        if "base_bev_backbone" not in stages:
            raise ValueError("model.args.base_bev_backbone is required")
        self.bev = nn.ModuleDict(stages)
        self.out_channels, self.feature_stride = channels, stride
        self.grid_size = grid.tolist()

        self.fusion_name = fusion
        self.fusion = None
        if fusion is not None:
            table = available_fusions() if fusions is None else fusions
            if fusion not in table:
                raise ValueError(f"fusion method {fusion!r} is not available; known: {sorted(table)}")
            self.fusion = self._build_fusion(table[fusion], fusion, args, channels)
            self._warp = warp if warp is not None else default_warp()
        anchors = args.get("anchor_number", args.get("anchor_num"))
        if anchors is None:
            raise ValueError("model.args.anchor_number is required (anchors per feature cell)")
        dir_args = args.get("dir_args")
        self.head = HEADS["anchor_head"](channels, int(anchors), int(dir_args["num_bins"]) if dir_args else 0)
        if args.get("backbone_fix", False):
            self.freeze_backbone()

    @property
    def feature_size(self) -> tuple[int, int]:
        """(H, W) of the map the fusion and the head see."""
        nx, ny = self.grid_size[:2]
        return math.ceil(ny / self.feature_stride), math.ceil(nx / self.feature_stride)

    def _build_fusion(self, cls, name: str, args: dict, channels: int) -> nn.Module:
        """``cls(args, channels)``; the map size goes to fusions that size tables by it (``grid_size``)."""
        key = FUSION_ARGS_KEY.get(name)
        if key is not None and key not in args:
            raise ValueError(f"fusion method {name!r} needs model.args.{key}")
        fusion_args = args[key] if key is not None else {}
        if "grid_size" in inspect.signature(cls).parameters:
            return cls(fusion_args, channels, grid_size=self.feature_size)
        return cls(fusion_args, channels)

    def freeze_backbone(self) -> None:
        """Stop training everything but the fusion (V2X-ViT's ``backbone_fix``, for delay fine-tuning)."""
        for module in (self.encoder, self.scatter, self.bev, self.head):
            for p in module.parameters():
                p.requires_grad_(False)

    def bytes_per_agent(self, height: int, width: int) -> int:
        """Bytes one cooperating agent sends for an ``height x width`` feature map (float32)."""
        if "compression" in self.bev:
            return self.bev["compression"].bytes_sent(height, width)
        return self.out_channels * height * width * 4

    def bev_features(self, batch: dict) -> torch.Tensor:
        """Pillars to the per-entry BEV map ``(N, C, H, W)`` the fusion and head see."""
        coords = _need(batch, "voxel_coords", "(P, 4) int pillar indices (entry, z, y, x)")
        record_len = _need(batch, "record_len", "(B,) agents per sample; all ones without fusion")
        pillars = self.encoder(_need(batch, "voxel_features", "(P, T, 4) float points per pillar"),
                               _need(batch, "voxel_num_points", "(P,) int points per pillar"), coords)
        x = self.scatter(pillars, coords, int(record_len.sum()))
        for stage in self.bev.values():
            x = stage(x)
        return x

    def fuse(self, x: torch.Tensor, batch: dict) -> torch.Tensor:
        """Regroup entries per sample, warp them into the ego frame and fuse to ``(B, C, H, W)``."""
        grouped, mask = regroup(x, batch["record_len"])
        lmax = grouped.shape[1]
        sliced = {}
        for key, tail in (("agent_to_ego", (4, 4)), ("prior_encoding", (3,)), ("spatial_correction", (4, 4))):
            value = _need(batch, key, f"(B, L, {', '.join(map(str, tail))}) per agent, L >= max(record_len)")
            if value.shape[0] != grouped.shape[0] or value.shape[1] < lmax or tuple(value.shape[2:]) != tail:
                raise ValueError(f"batch[{key!r}] must have shape (B={grouped.shape[0]}, L>={lmax}, "
                                 f"{', '.join(map(str, tail))}), got {tuple(value.shape)}")
            sliced[key] = value[:, :lmax].to(device=x.device, dtype=x.dtype)
        transform, correction = sliced["agent_to_ego"], sliced["spatial_correction"]
        eye = torch.eye(4, dtype=transform.dtype, device=transform.device).expand_as(transform)
        if not getattr(self.fusion, "applies_spatial_correction", False):
            transform, correction = correction @ transform, eye
        if not torch.allclose(transform, eye, atol=1e-6):
            grouped = self._warp(grouped, transform, self.lidar_range, self.voxel_size, self.feature_stride)
        meta = {"prior_encoding": sliced["prior_encoding"], "spatial_correction": correction,
                "lidar_range": self.lidar_range}
        return self.fusion(grouped, mask, meta)

    def forward(self, batch: dict) -> dict[str, torch.Tensor]:
        x = self.bev_features(batch)
        if self.fusion is not None:
            x = self.fuse(x, batch)
        return self.head(x)


def build_detector(model_cfg: dict, fusions: dict | None = None, warp: Callable | None = None) -> Detector:
    """Build from a config's ``model`` section (``core_method`` and ``args``).

    ``fusions`` / ``warp`` replace the fusion table and the ego warp (tests, experiments).
    """
    core = model_cfg.get("core_method")
    if core not in MODEL_FUSION:
        raise ValueError(f"model.core_method must be one of {sorted(MODEL_FUSION)}, got {core!r}")
    return Detector(model_cfg["args"], MODEL_FUSION[core], fusions, warp)
