"""OpenCOOD's residual box encoding against anchors, for numpy arrays and torch tensors.

For a box ``g`` and an anchor ``a`` (both ``(x, y, z, l, w, h, yaw)``), with the anchor's BEV
diagonal ``d = sqrt(l_a^2 + w_a^2)``::

    (x_g - x_a) / d, (y_g - y_a) / d, (z_g - z_a) / h_a,
    log(l_g / l_a), log(w_g / w_a), log(h_g / h_a), yaw_g - yaw_a

(OpenCOOD stores the same quantities in ``hwl`` channel order.) The yaw residual is left
unwrapped: the loss compares it through ``sin`` and the direction classifier picks the heading.
"""
from __future__ import annotations

import numpy as np
import torch


def _lib(x):
    return torch if isinstance(x, torch.Tensor) else np


def _check(x, name: str):
    if x.shape[-1] != 7:
        raise ValueError(f"{name} must end in 7 values (x, y, z, l, w, h, yaw), got shape {tuple(x.shape)}")


def encode(boxes, anchors):
    """Residuals ``(..., 7)`` of ``boxes`` relative to ``anchors`` (broadcastable ``(..., 7)``)."""
    _check(boxes, "boxes")
    _check(anchors, "anchors")
    lib = _lib(boxes)
    diag = lib.sqrt(anchors[..., 3] ** 2 + anchors[..., 4] ** 2)
    return lib.stack([
        (boxes[..., 0] - anchors[..., 0]) / diag,
        (boxes[..., 1] - anchors[..., 1]) / diag,
        (boxes[..., 2] - anchors[..., 2]) / anchors[..., 5],
        lib.log(boxes[..., 3] / anchors[..., 3]),
        lib.log(boxes[..., 4] / anchors[..., 4]),
        lib.log(boxes[..., 5] / anchors[..., 5]),
        boxes[..., 6] - anchors[..., 6],
    ], -1)


def decode(deltas, anchors):
    """Boxes ``(..., 7)`` from residuals ``deltas`` and ``anchors``: the inverse of :func:`encode`."""
    _check(deltas, "deltas")
    _check(anchors, "anchors")
    lib = _lib(deltas)
    diag = lib.sqrt(anchors[..., 3] ** 2 + anchors[..., 4] ** 2)
    return lib.stack([
        deltas[..., 0] * diag + anchors[..., 0],
        deltas[..., 1] * diag + anchors[..., 1],
        deltas[..., 2] * anchors[..., 5] + anchors[..., 2],
        lib.exp(deltas[..., 3]) * anchors[..., 3],
        lib.exp(deltas[..., 4]) * anchors[..., 4],
        lib.exp(deltas[..., 5]) * anchors[..., 5],
        deltas[..., 6] + anchors[..., 6],
    ], -1)
