"""A token order in which every MSwin window is a contiguous run of tokens.

MSwin attends inside non-overlapping windows of several sizes (V2X-ViT: 4, 8 and 16). When each
size divides the next, windows nest, and ordering the pixels window-major at every level (16-window,
then its 8-windows, then their 4-windows, then the pixels of a 4-window in raster order) makes a
window of any size a contiguous block of tokens. The fusion encoder moves its maps into this order
once on entry and back once on exit; every per-pixel operation in between (layer norms,
projections, per-pixel agent attention, the FFN) does not care about the order, and window
attention needs no partition copies: a window batch is a plain reshape.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch


class WindowOrder:
    """Window-major token order of an (H, W) map for nested window sizes.

    ``to_tokens(x (M, C, H, W)) -> (M, T, C)`` and ``to_map`` invert each other;
    ``coords (T, 2)`` holds each token's (row, col); ``window_coords(s)`` the (row, col) inside a
    window of size ``s`` of that window's tokens in order (the same for every window).
    """

    def __init__(self, height: int, width: int, window_sizes: Sequence[int]):
        sizes = sorted({int(s) for s in window_sizes})
        if not sizes or sizes[0] < 1:
            raise ValueError(f"window sizes must be positive integers, got {list(window_sizes)}")
        for small, big in zip(sizes, sizes[1:], strict=False):
            if big % small:
                raise ValueError(
                    f"window sizes {sizes} must nest (each divides the next) so that windows are contiguous"
                )
        top = sizes[-1]
        if height % top or width % top:
            raise ValueError(
                f"BEV map {height}x{width} is not a multiple of the largest window size {top}; choose a "
                "lidar range / stride whose fusion map divides by every window size"
            )
        self.height, self.width, self.sizes = height, width, sizes
        # Digits of a row (or column) index, most significant first: block count, then the
        # ratio between consecutive window sizes, then the smallest window.
        ratios = [big // small for small, big in zip(sizes, sizes[1:], strict=False)]
        self._digits = [height // top] + ratios[::-1]
        self._digits_w = [width // top] + self._digits[1:]
        self._digits.append(sizes[0])
        self._digits_w.append(sizes[0])
        k = len(self._digits)
        # A raster map viewed as (rows digits..., cols digits...) -> interleave (r0, c0, r1, c1, ...).
        self._perm = [d for i in range(k) for d in (i, k + i)]
        raster = torch.arange(height * width).view(self._digits + self._digits_w)
        self.order = raster.permute(self._perm).reshape(-1)  # token -> raster index
        self.rank = torch.empty_like(self.order)
        self.rank[self.order] = torch.arange(height * width)  # raster index -> token
        self.coords = torch.stack((self.order // width, self.order % width), dim=1)

    @property
    def num_tokens(self) -> int:
        return self.height * self.width

    def to_tokens(self, x: torch.Tensor) -> torch.Tensor:
        """(M, C, H, W) -> (M, T, C), channels last, tokens in window-major order (one copy)."""
        m, c, h, w = x.shape
        if (h, w) != (self.height, self.width):
            raise ValueError(f"map is {h}x{w}, token order was built for {self.height}x{self.width}")
        view = x.reshape([m, c] + self._digits + self._digits_w)
        dims = [0] + [2 + d for d in self._perm] + [1]
        return view.permute(dims).reshape(m, h * w, c)

    def to_map(self, tokens: torch.Tensor, channels_last: bool = False) -> torch.Tensor:
        """(M, T, C) window-major tokens -> (M, C, H, W) raster map (one copy). ``channels_last``:
        the map is a channels-last tensor (a permuted view of (M, H, W, C)), whose copy moves whole
        channel vectors and is several times faster; convolutions take it as it is."""
        m, t, c = tokens.shape
        if t != self.num_tokens:
            raise ValueError(f"got {t} tokens, token order was built for {self.num_tokens}")
        k = len(self._digits)
        interleaved = [self._digits[i // 2] if i % 2 == 0 else self._digits_w[i // 2] for i in range(2 * k)]
        view = tokens.reshape([m] + interleaved + [c])
        # position of raster digit d (rows 0..k-1, cols k..2k-1) in the interleaved view
        where = {d: i for i, d in enumerate(self._perm)}
        raster = [1 + where[d] for d in range(2 * k)]
        if channels_last:
            rows = view.permute([0] + raster + [2 * k + 1]).reshape(m, self.height, self.width, c)
            return rows.permute(0, 3, 1, 2)
        return view.permute([0, 2 * k + 1] + raster).reshape(m, c, self.height, self.width)

    def window_coords(self, size: int) -> torch.Tensor:
        """(size*size, 2) (row, col) within the window of the tokens of one window of ``size``."""
        if size not in self.sizes:
            raise ValueError(f"window size {size} is not one of {self.sizes}")
        return self.coords[: size * size] % size
