"""BEV backbones and the optional stages after them (shrink header, compression)."""
from v2xdet.models.backbones.base_bev_backbone import BaseBEVBackbone
from v2xdet.models.backbones.compression import NaiveCompressor
from v2xdet.models.backbones.shrink import ShrinkHeader

# config key under model.args -> stage class; built in this order when the key is present
BACKBONES = {"base_bev_backbone": BaseBEVBackbone, "shrink_header": ShrinkHeader,
             "compression": NaiveCompressor}

__all__ = ["BACKBONES", "BaseBEVBackbone", "NaiveCompressor", "ShrinkHeader"]
