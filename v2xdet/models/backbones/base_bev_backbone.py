"""SECOND/PointPillars 2D backbone: strided conv levels, each upsampled to one stride, concatenated.

Level ``i`` is a ``3x3`` conv with stride ``layer_strides[i]`` then ``layer_nums[i]`` more ``3x3``
convs (all ``conv -> BatchNorm -> ReLU``); its output is brought to the common stride by a
transposed conv (``upsample_strides[i] >= 1``) or a strided conv (``< 1``) with
``num_upsample_filter[i]`` channels. ``out_channels`` is their sum; ``stride`` is the output
stride in input cells.
"""
from __future__ import annotations

import math

import torch
from torch import nn


def conv_bn_relu(cin: int, cout: int, kernel: int = 3, stride: int = 1, padding: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, bias=False),
            nn.BatchNorm2d(cout, eps=1e-3, momentum=0.01), nn.ReLU()]


class BaseBEVBackbone(nn.Module):
    def __init__(self, args: dict, in_channels: int):
        super().__init__()
        keys = ("layer_nums", "layer_strides", "num_filters", "upsample_strides", "num_upsample_filter")
        lengths = {k: len(args[k]) for k in keys}
        if len(set(lengths.values())) != 1:
            raise ValueError(f"base_bev_backbone lists must have one entry per level, got lengths {lengths}")
        self.blocks = nn.ModuleList()
        self.deblocks = nn.ModuleList()
        cin, level_stride, ends = in_channels, 1, []
        for n, s, c, up, cu in zip(*(args[k] for k in keys), strict=True):
            layers = conv_bn_relu(cin, c, stride=int(s))
            for _ in range(int(n)):
                layers += conv_bn_relu(c, c)
            self.blocks.append(nn.Sequential(*layers))
            level_stride *= int(s)
            if up >= 1:
                k = int(round(up))
                self.deblocks.append(nn.Sequential(
                    nn.ConvTranspose2d(c, cu, k, stride=k, bias=False),
                    nn.BatchNorm2d(cu, eps=1e-3, momentum=0.01), nn.ReLU()))
            else:
                k = int(round(1 / up))
                self.deblocks.append(nn.Sequential(*conv_bn_relu(c, cu, kernel=k, stride=k, padding=0)))
            ends.append(level_stride / up)
            cin = c
        if any(not math.isclose(e, ends[0]) for e in ends):
            raise ValueError(f"base_bev_backbone.upsample_strides {list(args['upsample_strides'])} do not "
                             f"bring every level to one stride (they end at {ends})")
        if not math.isclose(ends[0], round(ends[0])) or round(ends[0]) < 1:
            raise ValueError(f"base_bev_backbone output stride must be a whole number >= 1, got {ends[0]}")
        self.stride = int(round(ends[0]))
        self.out_channels = int(sum(args["num_upsample_filter"]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ups = []
        for block, deblock in zip(self.blocks, self.deblocks, strict=True):
            x = block(x)
            ups.append(deblock(x))
        return torch.cat(ups, dim=1) if len(ups) > 1 else ups[0]
