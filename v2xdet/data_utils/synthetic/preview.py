"""A bird's-eye picture of one simulated frame: the town, every agent's points, the labels.

Drawn in the ego's LiDAR frame (x forward). That frame is CARLA's left-handed one (y to the
right), so y is drawn downwards: the picture shows the scene as seen from above, not mirrored.
"""
from __future__ import annotations

import io
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # noqa: E402

import numpy as np  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.collections import LineCollection, PolyCollection  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from v2xdet.data_utils.formats.atomic import atomic_write_bytes  # noqa: E402
from v2xdet.geometry.boxes import boxes_to_bev_corners  # noqa: E402
from v2xdet.geometry.transforms import transform_points, x_to_world  # noqa: E402
from v2xdet.visualization.bev import agent_color  # noqa: E402

from .world import FrameRecord, Scenario  # noqa: E402


def _to_ego(xy: np.ndarray, world_to_ego: np.ndarray) -> np.ndarray:
    pts = np.c_[xy, np.zeros(len(xy))]
    return transform_points(pts, world_to_ego)[:, :2]


def render_frame(scenario: Scenario, record: FrameRecord, path: str | os.PathLike,
                 half_extent: float = 100.0, dpi: int = 110) -> Path:
    """Save the frame as a PNG (atomically) and return its path."""
    world_to_ego = np.linalg.inv(x_to_world(record.agents[0].lidar_pose))
    fig = Figure(figsize=(12, 12), dpi=dpi, facecolor="white", layout="constrained")
    canvas = FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.set_xlim(-half_extent, half_extent)
    ax.set_ylim(half_extent, -half_extent)   # y drawn downwards (left-handed frame)
    ax.set_aspect("equal")
    ax.set_xlabel("x (m, ego forward)")
    ax.set_ylabel("y (m, ego right; drawn downwards)")
    town = scenario.town
    if town.footprints:
        polys = [_to_ego(f, world_to_ego) for f in town.footprints]
        ax.add_collection(PolyCollection(polys, facecolors="#d9d9d9", edgecolors="#a0a0a0", linewidths=0.5,
                                         zorder=0))
    lanes = [_to_ego(sg.poly, world_to_ego) for sg in town.segments]
    ax.add_collection(LineCollection(lanes, colors="#b0b0b0", linewidths=0.6, zorder=0))
    handles = [Patch(facecolor="#d9d9d9", edgecolor="#a0a0a0", label="buildings")]
    for i, a in enumerate(record.agents):
        pts = transform_points(a.sweep.points, world_to_ego @ x_to_world(a.lidar_pose))
        ax.scatter(pts[::2, 0], pts[::2, 1], s=0.6, c=agent_color(i), linewidths=0, alpha=0.7,
                   rasterized=True, zorder=1)
        origin = (world_to_ego @ x_to_world(a.lidar_pose))[:2, 3]
        ax.plot(*origin, marker="s" if a.is_rsu else ("*" if i == 0 else "^"), ms=14 if i == 0 else 11,
                color=agent_color(i), markeredgecolor="black", zorder=4)
        kind = "RSU" if a.is_rsu else ("ego CAV" if i == 0 else "CAV")
        handles.append(Line2D([], [], color=agent_color(i), marker="o", ls="",
                              label=f"{kind} {a.agent_id}: {len(a.sweep.points):,} points"))
    fleet = scenario.traffic.fleet
    labelled = np.unique(np.concatenate([a.labels for a in record.agents]))
    if labelled.size:
        poses = record.poses[labelled]
        size = fleet.size[labelled]
        boxes = np.c_[poses[:, :3] + np.c_[np.zeros((len(size), 2)), size[:, 2] / 2], size,
                      np.radians(poses[:, 4])]
        corners = boxes_to_bev_corners(boxes)
        ego_c = [_to_ego(c, world_to_ego) for c in corners]
        ax.add_collection(PolyCollection(ego_c, facecolors="none", edgecolors="#00a651", linewidths=1.3,
                                         zorder=3))
        handles.append(Patch(facecolor="none", edgecolor="#00a651",
                             label=f"labelled vehicles ({labelled.size})"))
    others = np.setdiff1d(np.arange(len(fleet.ids)), labelled)
    gap = np.linalg.norm(record.poses[others, :2] - record.agents[0].lidar_pose[:2], axis=1)
    near = others[gap < 1.5 * half_extent]
    if near.size:
        poses = record.poses[near]
        boxes = np.c_[poses[:, :3], fleet.size[near], np.radians(poses[:, 4])]
        ax.add_collection(PolyCollection([_to_ego(c, world_to_ego) for c in boxes_to_bev_corners(boxes)],
                                         facecolors="none", edgecolors="#9a9a9a", linewidths=0.7,
                                         linestyles="--", zorder=2))
        handles.append(Patch(facecolor="none", edgecolor="#9a9a9a", ls="--", label="unlabelled vehicles"))
    ax.legend(handles=handles, loc="upper right", fontsize=9, framealpha=0.9)
    ax.set_title(f"simulated V2X frame {record.timestamp:06d}: every agent's points and the labels "
                 f"in the ego LiDAR frame (seen from above)")
    canvas.draw()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return atomic_write_bytes(path, buf.getvalue())
