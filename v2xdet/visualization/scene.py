"""What a picture shows: one frame's clouds, agents, ground truth and detections in the ego frame."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


def _corners(value, name: str) -> np.ndarray:
    arr = np.asarray(value if value is not None else np.zeros((0, 8, 3)), dtype=np.float64)
    if arr.size == 0:
        return np.zeros((0, 8, 3))
    if arr.ndim != 3 or arr.shape[1:] != (8, 3):
        raise ValueError(f"{name} must have shape (N, 8, 3), got {arr.shape}")
    return arr


@dataclass
class Scene:
    """One frame to draw, everything in the ego LiDAR frame (metres, CARLA's left-handed axes).

    ``points[i]`` is agent ``i``'s cloud ``(N_i, >=3)``, ego first; ``agent_positions`` ``(A, >=2)``
    the agents' sensor positions (ego first, usually the origin); ``agent_ids`` and ``is_rsu``
    label them. Boxes are corners ``(K, 8, 3)`` in OpenCOOD's order. ``view_range`` is the area a
    BEV picture shows (the detection range, typically).
    """

    points: list = field(default_factory=list)
    agent_positions: np.ndarray | None = None
    agent_ids: list = field(default_factory=list)
    is_rsu: list = field(default_factory=list)
    gt_corners: np.ndarray | None = None
    pred_corners: np.ndarray | None = None
    pred_scores: np.ndarray | None = None
    title: str = ""
    view_range: list | None = None    # [xmin, ymin, xmax, ymax] (or a 6-value range) to draw; None: fit

    def __post_init__(self):
        self.points = [self._cloud(p, i) for i, p in enumerate(self.points)]
        self.gt_corners = _corners(self.gt_corners, "gt_corners")
        self.pred_corners = _corners(self.pred_corners, "pred_corners")
        scores = np.zeros(0) if self.pred_scores is None else np.asarray(self.pred_scores, dtype=np.float64)
        if scores.reshape(-1).shape != (len(self.pred_corners),):
            raise ValueError(f"pred_scores must have shape ({len(self.pred_corners)},) to match "
                             f"pred_corners, got {scores.shape}")
        self.pred_scores = scores.reshape(-1)
        if self.agent_positions is not None:
            pos = np.asarray(self.agent_positions, dtype=np.float64)
            if pos.ndim != 2 or pos.shape[1] < 2:
                raise ValueError(f"agent_positions must have shape (A, 2) or (A, 3), got {pos.shape}")
            self.agent_positions = pos
        n_agents = self.num_agents
        self.agent_ids = list(self.agent_ids) or list(range(n_agents))
        self.is_rsu = [bool(r) for r in self.is_rsu] or [False] * n_agents
        if len(self.agent_ids) != n_agents or len(self.is_rsu) != n_agents:
            raise ValueError(f"agent_ids ({len(self.agent_ids)}) and is_rsu ({len(self.is_rsu)}) must have "
                             f"one entry per agent ({n_agents})")

    @staticmethod
    def _cloud(points, i: int) -> np.ndarray:
        arr = np.asarray(points)
        if arr.ndim != 2 or arr.shape[1] < 3:
            raise ValueError(f"points[{i}] must have shape (N, >=3), got {arr.shape}")
        return arr

    @property
    def num_agents(self) -> int:
        if self.agent_positions is not None:
            return len(self.agent_positions)
        return len(self.points)
