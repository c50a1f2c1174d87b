"""V2X-ViT's naive feature compressor: what an agent would send over the network.

The encoder (``3x3 conv -> BatchNorm -> ReLU``) shrinks the channels ``ratio`` times: that map is
what crosses the air; the decoder (two ``3x3 conv -> BatchNorm -> ReLU``) restores the width on
the receiving side. Compression is trained end to end with the detector.
"""
from __future__ import annotations

import torch
from torch import nn

from v2xdet.models.backbones.base_bev_backbone import conv_bn_relu


class NaiveCompressor(nn.Module):
    def __init__(self, ratio: int, in_channels: int):
        super().__init__()
        if int(ratio) != ratio or ratio < 1 or in_channels % int(ratio):
            raise ValueError(f"compression must be a positive divisor of the feature channels "
                             f"({in_channels}), got {ratio!r}")
        self.ratio = int(ratio)
        self.sent_channels = in_channels // self.ratio
        self.encoder = nn.Sequential(*conv_bn_relu(in_channels, self.sent_channels))
        self.decoder = nn.Sequential(*conv_bn_relu(self.sent_channels, in_channels),
                                     *conv_bn_relu(in_channels, in_channels))
        self.out_channels = in_channels
        self.stride = 1

    def bytes_sent(self, height: int, width: int, bytes_per_value: int = 4) -> int:
        """Bytes one agent transmits for an ``height x width`` map (float32 by default)."""
        return self.sent_channels * height * width * bytes_per_value

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))
