"""Multi-agent feature fusion: the name -> class table the detector builds from.

Every class is built as ``Cls(args: dict, in_channels: int)`` (``args``: the config's
``model.args`` block for the method; for ``v2xvit`` / ``mswin_deform`` the ``transformer``
block) and called as ``forward(x (B, L, C, H, W), mask (B, L) bool, meta: dict) -> (B, C, H, W)``,
the ego's fused map; slot 0 is the ego. ``warp_to_ego`` moves agent maps into the ego frame.
"""
from v2xdet.models.fusion.simple import AttFusion, MaxFusion
from v2xdet.models.fusion.v2xvit import MSwinDeformFusion, V2XViTFusion
from v2xdet.models.fusion.warp import warp_to_ego, warp_valid_mask

FUSIONS = {
    "max": MaxFusion,
    "att": AttFusion,
    "v2xvit": V2XViTFusion,
    "mswin_deform": MSwinDeformFusion,
}

__all__ = ["FUSIONS", "AttFusion", "MaxFusion", "MSwinDeformFusion", "V2XViTFusion", "warp_to_ego",
           "warp_valid_mask"]
