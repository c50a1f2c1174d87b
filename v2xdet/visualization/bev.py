"""Bird's-eye-view pictures, headless (matplotlib's Agg canvas, no display needed).

The picture shows each agent's points in its own colour, the agents (ego star, vehicles
triangles, roadside units squares) and their V2X links to the ego, ground-truth boxes and
detections with their scores, a scale bar and a legend.

Handedness: the data is in CARLA's left-handed frame (x forward, y to the RIGHT, z up). Drawn
with y upwards the scene would come out mirrored, so the y axis is drawn pointing DOWN: the ego
drives to the right of the picture and what is on its right is below it, as seen from above.
Tick labels keep the true y values.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # noqa: E402 - before any pyplot import elsewhere; we only use the OO API

import numpy as np  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.collections import LineCollection, PolyCollection  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from mpl_toolkits.axes_grid1.anchored_artists import AnchoredSizeBar  # noqa: E402

from .scene import Scene  # noqa: E402

GT_COLOR = "#00a651"      # green
PRED_COLOR = "#e8112d"    # red
LINK_COLOR = "#444444"
POINT_ALPHA = 0.8
# agent point colours, chosen away from the box colours
AGENT_COLORS = ("#1f5fbf", "#f28e00", "#8e44ad", "#00a3b4", "#7a4a1f", "#6b6b6b", "#d45fb0", "#9a9a00")


def agent_color(i: int) -> str:
    return AGENT_COLORS[i % len(AGENT_COLORS)]


def _scale_length(span: float) -> float:
    """A round scale-bar length of about a tenth of the picture's width."""
    target = span / 10
    base = 10 ** np.floor(np.log10(target))
    return float(max(m * base for m in (1, 2, 5) if m * base <= target))


def render_bev(scene: Scene, view_range=None, width_px: int = 1600, dpi: int = 100,
               max_points: int = 200_000, score_labels: int = 60) -> np.ndarray:
    """Draw ``scene`` and return the picture as an ``(H, W, 3)`` uint8 array.

    ``view_range`` is ``[xmin, ymin, xmax, ymax]`` (or a 6-value lidar range) in metres, default
    the extent of everything drawn; ``max_points`` caps the points drawn (evenly subsampled);
    only the ``score_labels`` highest-scored detections get a score label.
    """
    xmin, ymin, xmax, ymax = _view(scene, view_range)
    span_x, span_y = xmax - xmin, ymax - ymin
    fig_w = width_px / dpi
    fig = Figure(figsize=(fig_w, fig_w * 0.9 * span_y / span_x + 1.8), dpi=dpi, facecolor="white",
                 layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.set_facecolor("white")
    ax.set_xlim(xmin, xmax)
    ax.set_ylim(ymax, ymin)          # y drawn downwards: CARLA's left-handed frame, not mirrored
    ax.set_aspect("equal", adjustable="box")
    ax.set_xlabel("x (m, forward)")
    ax.set_ylabel("y (m, right; drawn downwards)")
    ax.grid(True, color="#e6e6e6", linewidth=0.6, zorder=0)

    handles = []
    total = sum(len(p) for p in scene.points)
    stride = max(1, int(np.ceil(total / max_points))) if total else 1
    for i, pts in enumerate(scene.points):
        if len(pts):
            ax.scatter(pts[::stride, 0], pts[::stride, 1], s=1.5, c=agent_color(i), marker="o",
                       linewidths=0, alpha=POINT_ALPHA, rasterized=True, zorder=1)
        handles.append(Line2D([], [], marker="o", linestyle="", color=agent_color(i), markersize=5,
                              label=f"{_agent_name(scene, i)} points"))

    _draw_boxes(ax, scene.gt_corners, GT_COLOR, 1.4, zorder=3)
    _draw_boxes(ax, scene.pred_corners, PRED_COLOR, 1.0, zorder=4)
    if len(scene.pred_corners) and score_labels:
        centres = scene.pred_corners[:, :4, :2].mean(axis=1)
        inside = ((centres[:, 0] >= xmin) & (centres[:, 0] <= xmax) & (centres[:, 1] >= ymin)
                  & (centres[:, 1] <= ymax))
        order = [i for i in np.argsort(-scene.pred_scores, kind="stable") if inside[i]][:score_labels]
        for i in order:
            ax.annotate(f"{scene.pred_scores[i]:.2f}", centres[i], xytext=(0, 9), textcoords="offset points",
                        ha="center", va="bottom", fontsize=7, color=PRED_COLOR, zorder=5, clip_on=True,
                        bbox={"boxstyle": "round,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.75})
    handles += [Patch(facecolor="none", edgecolor=GT_COLOR, linewidth=1.4,
                      label=f"ground truth ({len(scene.gt_corners)})"),
                Patch(facecolor="none", edgecolor=PRED_COLOR, linewidth=1.0,
                      label=f"detections ({len(scene.pred_corners)}), score")]
    handles += _draw_agents(ax, scene)

    bar = _scale_length(span_x)
    ax.add_artist(AnchoredSizeBar(ax.transData, bar, f"{bar:g} m", "lower right", pad=0.4, borderpad=0.6,
                                  sep=3, color="black", frameon=True, size_vertical=span_y / 150))
    fig.legend(handles=handles, loc="outside lower center", ncol=min(5, len(handles)), fontsize=8,
               frameon=False)
    if scene.title:
        fig.suptitle(scene.title, fontsize=10)
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()


def _view(scene: Scene, view_range) -> tuple[float, float, float, float]:
    if view_range is not None:
        r = [float(v) for v in view_range]
        if len(r) == 6:
            r = [r[0], r[1], r[3], r[4]]
        if len(r) != 4 or not (r[0] < r[2] and r[1] < r[3]):
            raise ValueError(f"view_range must be [xmin, ymin, xmax, ymax] (or a 6-value lidar range) with "
                             f"min < max, got {view_range}")
        return tuple(r)
    xy = [p[:, :2] for p in scene.points if len(p)]
    xy += [c[:, :4, :2].reshape(-1, 2) for c in (scene.gt_corners, scene.pred_corners) if len(c)]
    if scene.agent_positions is not None:
        xy.append(scene.agent_positions[:, :2])
    if not xy:
        return (-50.0, -50.0, 50.0, 50.0)
    xy = np.concatenate(xy)
    lo, hi = xy.min(axis=0) - 5, xy.max(axis=0) + 5
    return (float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1]))


def _draw_boxes(ax, corners: np.ndarray, color: str, width: float, zorder: int) -> None:
    """Box footprints (bottom corners 0-1-2-3) and a heading tick from the centre to the front."""
    if not len(corners):
        return
    foot = corners[:, :4, :2]
    ax.add_collection(PolyCollection(foot, facecolors="none", edgecolors=color, linewidths=width,
                                     zorder=zorder))
    centre = foot.mean(axis=1)
    front = foot[:, :2].mean(axis=1)        # corners 0 and 1 are the front face
    ax.add_collection(LineCollection(np.stack([centre, front], axis=1), colors=color, linewidths=width,
                                     zorder=zorder))


def _agent_name(scene: Scene, i: int) -> str:
    kind = "ego" if i == 0 else ("RSU" if scene.is_rsu[i] else "CAV")
    return f"{kind} {scene.agent_ids[i]}"


def _draw_agents(ax, scene: Scene) -> list:
    if scene.agent_positions is None or not len(scene.agent_positions):
        return []
    pos = scene.agent_positions[:, :2]
    if len(pos) > 1:
        links = np.stack([np.broadcast_to(pos[0], pos[1:].shape), pos[1:]], axis=1)
        ax.add_collection(LineCollection(links, colors=LINK_COLOR, linewidths=1.0, linestyles="--", zorder=5))
    for i, (x, y) in enumerate(pos):
        marker = "*" if i == 0 else ("s" if scene.is_rsu[i] else "^")
        ax.scatter([x], [y], marker=marker, s=220 if i == 0 else 110, c=agent_color(i), edgecolors="black",
                   linewidths=0.8, zorder=6)
        ax.annotate(_agent_name(scene, i), (x, y), xytext=(7, 7), textcoords="offset points", fontsize=8,
                    fontweight="bold", zorder=7,
                    bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": agent_color(i), "alpha": 0.85})
    handles = [Line2D([], [], marker="*", linestyle="", markerfacecolor="white", markeredgecolor="black",
                      markersize=11, label="ego"),
               Line2D([], [], marker="^", linestyle="", markerfacecolor="white", markeredgecolor="black",
                      markersize=8, label="connected vehicle")]
    if any(scene.is_rsu):
        handles.append(Line2D([], [], marker="s", linestyle="", markerfacecolor="white",
                              markeredgecolor="black", markersize=8, label="roadside unit"))
    if len(pos) > 1:
        handles.append(Line2D([], [], color=LINK_COLOR, linestyle="--", label="V2X link"))
    return handles


def save_png(image: np.ndarray, path) -> Path:
    """Write an ``(H, W, 3)`` uint8 picture to ``path`` atomically (temporary file, then rename)."""
    import imageio.v3 as iio

    from v2xdet.engine.files import atomic_path

    with atomic_path(path) as tmp:
        iio.imwrite(tmp, np.ascontiguousarray(image), extension=".png")
    return Path(path)


def draw_bev(scene: Scene, path, **kwargs) -> np.ndarray:
    """Render ``scene`` (see :func:`render_bev` for ``kwargs``) and save it as a PNG at ``path``."""
    image = render_bev(scene, **kwargs)
    save_png(image, path)
    return image
