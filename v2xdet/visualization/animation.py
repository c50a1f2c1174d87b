"""A sequence of pictures as an animated GIF (imageio's pillow plugin) or an MP4 (needs ffmpeg)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

FORMATS = (".gif", ".mp4")


def write_animation(frames, path, fps: float = 10.0) -> Path:
    """Write ``frames`` (a list of ``(H, W, 3)`` uint8 arrays or PNG paths) to ``path`` atomically.

    The suffix chooses the format: ``.gif`` (looping, always available) or ``.mp4`` (needs the
    ``imageio-ffmpeg`` package). All frames must have the same size.
    """
    import imageio.v3 as iio

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(f"{path}: animation format must be one of {FORMATS}, got {suffix or 'no suffix'!r}")
    if fps <= 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    images = [iio.imread(f) if isinstance(f, (str, os.PathLike)) else np.asarray(f) for f in frames]
    if not images:
        raise ValueError(f"{path}: no frames to write")
    images = [im[..., :3] if im.ndim == 3 else np.repeat(im[..., None], 3, axis=2) for im in images]
    shapes = sorted({im.shape for im in images})
    if len(shapes) != 1:
        raise ValueError(f"{path}: all frames must have the same size, got {shapes}")
    stack = np.stack(images).astype(np.uint8)
    if suffix == ".mp4":
        try:
            import imageio_ffmpeg  # noqa: F401
        except ImportError as exc:
            raise RuntimeError(f"{path}: writing MP4 needs the imageio-ffmpeg package "
                               "(pip install imageio-ffmpeg); write a .gif instead") from exc
        stack = _even_size(stack)   # H.264 wants even sides
    from v2xdet.engine.files import atomic_path

    with atomic_path(path) as tmp:
        if suffix == ".gif":
            iio.imwrite(tmp, stack, extension=".gif", duration=1000.0 / fps, loop=0)
        else:
            iio.imwrite(tmp, stack, extension=".mp4", plugin="FFMPEG", fps=fps)
    return path


def _even_size(stack: np.ndarray) -> np.ndarray:
    h, w = stack.shape[1] - stack.shape[1] % 2, stack.shape[2] - stack.shape[2] % 2
    return np.ascontiguousarray(stack[:, :h, :w])
