"""BEV pictures: size, content by colour, orientation (left-handed frame not mirrored), errors."""
from __future__ import annotations

import imageio.v3 as iio
import numpy as np
import pytest

from v2xdet.geometry.boxes import boxes_to_corners
from v2xdet.visualization import Scene, draw_bev, render_bev
from v2xdet.visualization.bev import AGENT_COLORS, GT_COLOR, PRED_COLOR


def _mask(image: np.ndarray, hex_color: str, tol: int = 40) -> np.ndarray:
    rgb = np.array([int(hex_color[i:i + 2], 16) for i in (1, 3, 5)])
    return np.abs(image.astype(int) - rgb).max(axis=2) <= tol


def _tinted(image: np.ndarray, hex_color: str, tol: float = 12.0) -> np.ndarray:
    """Pixels of ``hex_color`` blended over white at any opacity >= 0.2 (points are translucent)."""
    rgb = np.array([int(hex_color[i:i + 2], 16) for i in (1, 3, 5)], dtype=float)
    d = rgb - 255.0
    px = image.astype(float) - 255.0
    t = (px @ d) / (d @ d)
    residual = np.linalg.norm(px - t[..., None] * d, axis=-1)
    return (t >= 0.2) & (t <= 1.05) & (residual <= tol)


def _box(x, y, yaw=0.0, length=8.0, width=4.0):
    return boxes_to_corners(np.array([[x, y, 0.0, length, width, 1.5, yaw]]))


def test_png_written_with_expected_size_and_content(tmp_path):
    rng = np.random.default_rng(0)
    scene = Scene(points=[rng.uniform([-40, -20, -2], [40, 20, 0], (5000, 3)),
                          rng.uniform([0, -20, -2], [40, 20, 0], (3000, 3))],
                  agent_positions=[[0, 0, 0], [20, 5, 0]], agent_ids=[7, -3], is_rsu=[False, True],
                  gt_corners=_box(10, 0), pred_corners=_box(-20, 0), pred_scores=[0.87], title="frame 1")
    path = tmp_path / "bev.png"
    image = draw_bev(scene, path, view_range=[-50, -25, 50, 25], width_px=1000)
    read = iio.imread(path)
    assert read.shape == image.shape and read.shape[1] == 1000 and 450 < read.shape[0] < 800
    assert np.array_equal(read[..., :3], image)
    assert (image.reshape(-1, 3) != 255).any(axis=1).mean() > 0.05          # not blank
    assert _mask(image, GT_COLOR).sum() > 100 and _mask(image, PRED_COLOR).sum() > 100
    ego_px, rsu_px = (_tinted(image, c).sum() for c in AGENT_COLORS[:2])
    assert ego_px > 500 and rsu_px > 300
    assert not list(tmp_path.glob(".*"))                                     # no temp file left


def test_left_handed_frame_is_drawn_not_mirrored():
    """CARLA's +y is the ego's right: seen from above with x to the right, it must be DOWN."""
    right_side = Scene(gt_corners=_box(0, 15))      # 15 m to the ego's right
    ahead = Scene(pred_corners=_box(30, 0), pred_scores=[0.5])
    view = [-40, -40, 40, 40]
    img = render_bev(right_side, view_range=view, width_px=600)
    rows, cols = np.nonzero(_mask(img, GT_COLOR))
    plot_rows, plot_cols = np.nonzero((img != 255).any(axis=2))
    mid_row = (plot_rows.min() + plot_rows.max()) / 2
    assert rows.mean() > mid_row + 20                    # below the picture's middle
    img = render_bev(ahead, view_range=view, width_px=600)
    rows, cols = np.nonzero(_mask(img, PRED_COLOR))
    assert cols.mean() > (plot_cols.min() + plot_cols.max()) / 2 + 20   # +x is to the right


def test_default_view_covers_everything_and_empty_scene_draws():
    img = render_bev(Scene(gt_corners=_box(100, -60)), width_px=500)
    assert _mask(img, GT_COLOR).sum() > 50
    assert render_bev(Scene(), width_px=400).shape[1] == 400


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match=r"gt_corners must have shape \(N, 8, 3\)"):
        Scene(gt_corners=np.zeros((2, 4, 3)))
    with pytest.raises(ValueError, match=r"pred_scores must have shape \(1,\)"):
        Scene(pred_corners=_box(0, 0), pred_scores=[0.1, 0.2])
    with pytest.raises(ValueError, match=r"points\[1\] must have shape"):
        Scene(points=[np.zeros((3, 3)), np.zeros(5)])
    with pytest.raises(ValueError, match="one entry per agent"):
        Scene(agent_positions=[[0, 0], [1, 1]], agent_ids=[1])
    with pytest.raises(ValueError, match="view_range must be"):
        render_bev(Scene(), view_range=[10, 0, -10, 5])
