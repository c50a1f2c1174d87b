"""One agent's frame at one timestamp: its point cloud and metadata, read or written together."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .atomic import atomic_write_bytes
from .errors import FormatError
from .frame_yaml import dump_frame_yaml, read_frame_yaml, to_plain, validate_frame_meta
from .index import DatasetIndex, frame_paths, timestamp_str
from .labels import vehicle_boxes
from .pcd import encode_pcd, read_pcd

_FRAME_KEYS = ("lidar_pose", "vehicles", "ego_speed", "RSU")


@dataclass
class Frame:
    """A loaded frame. ``extra`` holds the yaml's other keys (``true_ego_pos``, ``camera0``, ...)."""

    points: np.ndarray
    lidar_pose: np.ndarray
    vehicles: dict
    ego_speed: float
    is_rsu: bool
    agent_id: int
    timestamp: str
    scenario: str
    extra: dict = field(default_factory=dict)

    def boxes(self) -> tuple[np.ndarray, np.ndarray]:
        """``(ids, boxes (K, 7))`` of the labelled vehicles in this frame's LiDAR frame."""
        return vehicle_boxes(self.vehicles, self.lidar_pose)


def load_frame(index_or_split_dir: DatasetIndex | str | os.PathLike, scenario: str, agent_id: int,
               timestamp: int | str) -> Frame:
    """Read ``<split>/<scenario>/<agent_id>/<timestamp>.{pcd,yaml}`` into a :class:`Frame`.

    With a :class:`DatasetIndex` the frame must be in the index (FormatError otherwise); with a
    folder the files are read directly.
    """
    timestamp = timestamp_str(timestamp)
    agent_id = int(agent_id)
    if isinstance(index_or_split_dir, DatasetIndex):
        root = index_or_split_dir.root
        if not index_or_split_dir.has_frame(scenario, agent_id, timestamp):
            raise FormatError(root / scenario / str(agent_id),
                              f"no frame {timestamp} for agent {agent_id} of scenario {scenario!r} "
                              "in the index")
    else:
        root = Path(index_or_split_dir)
    pcd_path, yaml_path = frame_paths(root, scenario, agent_id, timestamp)
    meta = read_frame_yaml(yaml_path, agent_id=agent_id)
    points = read_pcd(pcd_path)
    return Frame(points=points, lidar_pose=np.asarray(meta["lidar_pose"], dtype=np.float64),
                 vehicles=meta["vehicles"], ego_speed=meta["ego_speed"], is_rsu=meta["RSU"],
                 agent_id=agent_id, timestamp=timestamp, scenario=scenario,
                 extra={k: v for k, v in meta.items() if k not in _FRAME_KEYS})


def write_frame(split_dir: str | os.PathLike, scenario: str, agent_id: int, timestamp: int | str,
                points, meta: dict, data: str = "binary") -> tuple[Path, Path]:
    """Write one agent's frame (PCD in V2XSet's ``x y z rgb`` layout, then yaml), each atomically.

    ``meta`` is the yaml content (``lidar_pose`` required, see ``read_frame_yaml``; ``RSU``
    defaults to ``agent_id < 0``); it is validated before anything is written. The folders are
    created. Returns ``(pcd_path, yaml_path)``.
    """
    pcd_path, yaml_path = frame_paths(split_dir, scenario, agent_id, timestamp)
    pcd_bytes = encode_pcd(points, data=data)
    yaml_bytes = dump_frame_yaml(validate_frame_meta(yaml_path, to_plain(meta), int(agent_id)))
    pcd_path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(pcd_path, pcd_bytes)
    atomic_write_bytes(yaml_path, yaml_bytes)
    return pcd_path, yaml_path
