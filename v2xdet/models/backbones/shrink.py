"""V2X-ViT's ``shrink_header``: strided double convs that shrink the BEV map before fusion."""
from __future__ import annotations

import math

import torch
from torch import nn


class ShrinkHeader(nn.Module):
    """Per entry ``i``: ``conv(kernal_size[i], stride[i], padding[i]) -> ReLU -> conv3x3 -> ReLU``."""

    def __init__(self, args: dict, in_channels: int):
        super().__init__()
        kernels = args.get("kernal_size", args.get("kernel_size"))
        if int(args["input_dim"]) != in_channels:
            raise ValueError(f"shrink_header.input_dim is {args['input_dim']} but the backbone outputs "
                             f"{in_channels} channels")
        layers = []
        cin = in_channels
        for k, s, p, c in zip(kernels, args["stride"], args["padding"], args["dim"], strict=True):
            layers += [nn.Conv2d(cin, int(c), int(k), stride=int(s), padding=int(p)), nn.ReLU(),
                       nn.Conv2d(int(c), int(c), 3, padding=1), nn.ReLU()]
            cin = int(c)
        self.layers = nn.Sequential(*layers)
        self.out_channels = cin
        self.stride = math.prod(int(s) for s in args["stride"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)
