"""Realism statistics of simulated frames, comparable with what the real V2XSet frame shows.

Per agent frame: points per sweep and their range histogram (the real frame at hand: 39,719
points, 22 % within 5 m, 52 % at 5-10 m, 13 % at 10-20 m, 10 % beyond 20 m), labelled vehicles
and how far away. Per frame, with each connected vehicle as the ego in turn: the ground-truth
vehicles in V2X-ViT's evaluation range (the union of all agents' labels with centres at
x in [-140.8, 140.8], y in [-38.4, 38.4] of the ego's LiDAR frame: V2X-ViT's ``cav_lidar_range``,
which its post-processor also uses to crop the ground truth) and what cooperation adds: the
share of those the ego sees with fewer than ``min_points`` points while another agent sees
them with ``min_points`` or more.
"""
from __future__ import annotations

import numpy as np

from v2xdet.data_utils.formats.frame_yaml import to_plain
from v2xdet.geometry.transforms import x_to_world

from .world import FrameRecord

RANGE_BINS = (0.0, 5.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 80.0, 100.0, 120.0)
EVAL_RANGE = (-140.8, -38.4, 140.8, 38.4)   # V2X-ViT's cav_lidar_range in x / y (GT crop)


def range_histogram(points: np.ndarray, bins=RANGE_BINS) -> np.ndarray:
    """Point counts per range bin (3D distance from the sensor; bins closed on the left, the last
    one on both sides, as ``np.histogram``; points beyond the last edge are not counted)."""
    p = np.asarray(points)[:, :3].astype(np.float64)
    r2 = p[:, 0] ** 2 + p[:, 1] ** 2 + p[:, 2] ** 2
    edges2 = np.square(np.asarray(bins, np.float64))
    at_least = (r2[:, None] >= edges2[None, :]).sum(axis=0)      # points at or beyond each edge
    beyond = int((r2 > edges2[-1]).sum())
    return at_least[:-1] - np.r_[at_least[1:-1], beyond]


def _summary(values) -> dict:
    v = np.asarray(values, float)
    if not v.size:
        return {"mean": None, "min": None, "max": None}
    return {"mean": round(float(v.mean()), 3), "min": round(float(v.min()), 3),
            "max": round(float(v.max()), 3)}


class RealismStats:
    """Accumulates statistics frame by frame; :meth:`summary` gives a yaml-able dict."""

    def __init__(self, min_points: int = 5):
        self.min_points = min_points
        self.points, self.points_cav, self.points_rsu = [], [], []
        self.hist = np.zeros(len(RANGE_BINS) - 1, np.int64)
        self.labels, self.label_dist = [], []
        self.agents, self.cavs, self.rsus = [], [], []
        self.gt_in_range = []
        self.coop = np.zeros(3, np.int64)   # ego < k & other >= k, ego >= k, nobody >= k
        self.frames = 0
        self.max_range = 0.0
        self.lengths = []
        self.moving_labelled = []

    def add(self, record: FrameRecord, sizes: np.ndarray) -> None:
        """Add one frame; ``sizes`` (V, 3) are the vehicles' length, width, height."""
        self.frames += 1
        n_vehicles = len(record.poses)
        counts = []
        for a in record.agents:
            pts = a.sweep.points
            self.points.append(len(pts))
            (self.points_rsu if a.is_rsu else self.points_cav).append(len(pts))
            self.hist += range_histogram(pts)
            if len(pts):
                self.max_range = max(self.max_range, float(np.linalg.norm(pts[:, :3], axis=1).max()))
            self.labels.append(len(a.labels))
            if len(a.labels):
                self.label_dist.append(float(np.linalg.norm(record.poses[a.labels, :2] - a.true_ego_pos[:2],
                                                            axis=1).max()))
            counts.append(np.bincount(a.sweep.vehicle[a.sweep.vehicle >= 0], minlength=n_vehicles))
        counts = np.array(counts)
        self.agents.append(len(record.agents))
        self.rsus.append(sum(a.is_rsu for a in record.agents))
        self.cavs.append(self.agents[-1] - self.rsus[-1])
        gt = np.unique(np.concatenate([a.labels for a in record.agents]))
        self.lengths.extend(sizes[gt, 0].tolist())
        self.moving_labelled.extend((record.speed_kmh[gt] > 1.0).tolist())
        k = self.min_points
        for e, ego in enumerate(record.agents):
            if ego.is_rsu:
                continue
            to_ego = np.linalg.inv(x_to_world(ego.lidar_pose))
            cand = gt[gt != ego.vehicle]
            c = (to_ego[:3, :3] @ record.poses[cand, :3].T).T + to_ego[:3, 3]
            x0, y0, x1, y1 = EVAL_RANGE
            inside = cand[(c[:, 0] >= x0) & (c[:, 0] <= x1) & (c[:, 1] >= y0) & (c[:, 1] <= y1)]
            self.gt_in_range.append(len(inside))
            mine = counts[e, inside]
            others = np.zeros_like(mine)
            if len(counts) > 1:
                others = np.delete(counts, e, axis=0)[:, inside].max(axis=0)
            self.coop += [int(np.sum((mine < k) & (others >= k))), int(np.sum(mine >= k)),
                          int(np.sum((mine < k) & (others < k)))]

    def merge(self, other: RealismStats) -> None:
        """Fold another accumulator's frames into this one (scenes simulated elsewhere)."""
        for name in ("points", "points_cav", "points_rsu", "labels", "label_dist", "agents", "cavs", "rsus",
                     "gt_in_range", "lengths", "moving_labelled"):
            getattr(self, name).extend(getattr(other, name))
        self.hist += other.hist
        self.coop += other.coop
        self.frames += other.frames
        self.max_range = max(self.max_range, other.max_range)

    def summary(self) -> dict:
        total = int(self.hist.sum())
        seen = int(self.coop.sum())
        return to_plain({
            "frames": self.frames,
            "agent_frames": len(self.points),
            "agents_per_frame": _summary(self.agents),
            "cavs_per_frame": _summary(self.cavs),
            "rsus_per_frame": _summary(self.rsus),
            "points_per_agent_frame": _summary(self.points),
            "points_per_cav_frame": _summary(self.points_cav),
            "points_per_rsu_frame": _summary(self.points_rsu),
            "max_point_range_m": round(self.max_range, 3),
            "range_histogram": {
                "bins_m": list(RANGE_BINS),
                "counts": self.hist.tolist(),
                "share": [round(c / total, 4) if total else 0.0 for c in self.hist.tolist()],
            },
            "labels_per_agent_frame": _summary(self.labels),
            "farthest_label_m": _summary(self.label_dist),
            "gt_vehicles_in_eval_range_per_ego_frame": _summary(self.gt_in_range),
            "eval_range_xy": list(EVAL_RANGE),
            "labelled_vehicle_length_m": _summary(self.lengths),
            "labelled_moving_share": (round(float(np.mean(self.moving_labelled)), 4)
                                      if self.moving_labelled else None),
            "cooperation": {
                "min_points": self.min_points,
                "gt_vehicles_counted": seen,
                "ego_below_min_other_at_or_above": round(self.coop[0] / seen, 4) if seen else None,
                "ego_at_or_above_min": round(self.coop[1] / seen, 4) if seen else None,
                "nobody_at_or_above_min": round(self.coop[2] / seen, 4) if seen else None,
            },
        })

