"""3D off-screen rendering: a PNG when possible, a clear install message when not."""
from __future__ import annotations

import sys

import imageio.v3 as iio
import numpy as np
import pytest

from v2xdet.geometry.boxes import boxes_to_corners
from v2xdet.visualization import RenderUnavailableError, Scene, draw_3d, view3d
from v2xdet.visualization.bev import GT_COLOR, PRED_COLOR


def _scene():
    rng = np.random.default_rng(1)
    ground = rng.uniform([-30, -20, -1.8], [60, 20, -1.7], (8000, 3))
    boxes = np.array([[12.0, 4.0, -1.0, 4.5, 2.0, 1.6, 0.3], [25.0, -6.0, -1.0, 4.5, 2.0, 1.6, 1.2]])
    return Scene(points=[ground], agent_positions=[[0, 0, 0]], agent_ids=[1],
                 gt_corners=boxes_to_corners(boxes), pred_corners=boxes_to_corners(boxes[:1] + 0.3),
                 pred_scores=[0.9], title="synthetic")


def _count(image, hex_color, tol=60):
    rgb = np.array([int(hex_color[i:i + 2], 16) for i in (1, 3, 5)])
    return int((np.abs(image.astype(int) - rgb).max(axis=2) <= tol).sum())


def test_png_is_rendered_when_possible(tmp_path):
    try:
        image, backend = draw_3d(_scene(), tmp_path / "3d.png", width=480, height=320)
    except RenderUnavailableError as exc:      # only on machines without any GL/Vulkan driver
        pytest.skip(f"3D rendering impossible here: {exc}")
    assert backend in ("offscreen", "legacy")
    read = iio.imread(tmp_path / "3d.png")
    assert read.shape[1] == 480 and read.shape[0] > 320
    assert _count(read, GT_COLOR) > 30 and _count(read, PRED_COLOR) > 10
    assert (read[:320] != 255).any(axis=2).mean() > 0.02       # the cloud is there, not a blank frame


def test_clear_message_when_no_backend_works(monkeypatch):
    pytest.importorskip("open3d", reason="the message of a failed render needs open3d importable")
    def glfw_fail(*args):
        raise RuntimeError("GLFW Error: Failed to detect any supported platform")
    monkeypatch.setattr(view3d, "_render_offscreen", glfw_fail)
    monkeypatch.setattr(view3d, "_render_legacy", glfw_fail)
    with pytest.raises(RenderUnavailableError) as err:
        view3d.render_3d(_scene(), 64, 48)
    msg = str(err.value)
    assert "apt-get install libvulkan1 mesa-vulkan-drivers" in msg and "libegl1" in msg
    assert msg.startswith("open3d cannot render off-screen on this machine")
    assert "offscreen: RuntimeError" in msg and "legacy: RuntimeError" in msg


def test_clear_message_when_open3d_cannot_import(monkeypatch):
    monkeypatch.setitem(sys.modules, "open3d", None)
    with pytest.raises(RenderUnavailableError, match=r"pip install open3d-cpu .*libusb-1\.0-0"):
        view3d.render_3d(_scene(), 64, 48)


def test_show_without_display_says_so(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.raises(RenderUnavailableError, match="no display"):
        view3d.show_3d(_scene())


def test_look_at_maps_the_target_to_the_image_centre():
    extrinsic = view3d.look_at([-10.0, 0.0, 10.0], [5.0, 0.0, 0.0])
    target = extrinsic @ np.array([5.0, 0.0, 0.0, 1.0])
    assert np.allclose(target[:2], 0) and target[2] > 0         # straight ahead of the camera
    above = extrinsic @ np.array([5.0, 0.0, 5.0, 1.0])
    assert above[1] < 0                                          # world up is image up (y down)
    assert np.allclose(extrinsic[:3, :3] @ extrinsic[:3, :3].T, np.eye(3))
