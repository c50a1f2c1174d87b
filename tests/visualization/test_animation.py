"""Animated GIFs (and the MP4 path's clear error without ffmpeg)."""
from __future__ import annotations

import importlib.util

import imageio.v3 as iio
import numpy as np
import pytest

from v2xdet.visualization import save_png, write_animation


def _frames(n=3, h=40, w=60):
    frames = []
    for i in range(n):
        f = np.full((h, w, 3), 255, np.uint8)
        f[:, i * 15:(i + 1) * 15] = [200, 30, 30]
        frames.append(f)
    return frames


def test_gif_round_trip_from_arrays_and_pngs(tmp_path):
    frames = _frames()
    pngs = [save_png(f, tmp_path / f"{i}.png") for i, f in enumerate(frames)]
    for source in (frames, pngs):
        out = write_animation(source, tmp_path / "seq.gif", fps=5)
        back = iio.imread(out, index=None)
        assert back.shape[0] == 3 and back.shape[1:3] == (40, 60)
        for i in range(3):    # the red band moves frame by frame
            red = (back[i, ..., 0] > 150) & (back[i, ..., 1] < 100)
            assert red[:, i * 15:(i + 1) * 15].all() and red.sum() == 40 * 15
    meta = iio.immeta(tmp_path / "seq.gif", index=0)
    assert meta["duration"] == 200 and meta["loop"] == 0


def test_animation_errors(tmp_path):
    with pytest.raises(ValueError, match="same size"):
        write_animation([np.zeros((4, 4, 3), np.uint8), np.zeros((5, 4, 3), np.uint8)], tmp_path / "a.gif")
    with pytest.raises(ValueError, match="format must be one of"):
        write_animation(_frames(), tmp_path / "a.avi")
    with pytest.raises(ValueError, match="no frames"):
        write_animation([], tmp_path / "a.gif")
    if importlib.util.find_spec("imageio_ffmpeg") is None:
        with pytest.raises(RuntimeError, match="pip install imageio-ffmpeg"):
            write_animation(_frames(), tmp_path / "a.mp4")
    else:
        assert write_animation(_frames(), tmp_path / "a.mp4").stat().st_size > 0
