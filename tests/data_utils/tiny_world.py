"""A tiny deterministic V2X world for tests: a few boxes, 3-4 agents, 3 frames, V2XSet layout.

Vehicles move in straight lines on flat ground (z = 0); connected vehicles carry a LiDAR 1.9 m
above their position with the vehicle's heading, the roadside unit is mounted 5 m high. Each
agent's cloud holds points sampled on the surfaces (shrunk by 3 %, so they lie strictly inside) of
the vehicles within ``SENSE_RANGE`` (40 m) of it, plus a ground grid 5 cm below the box bottoms;
each agent's yaml lists those vehicles with their exact world labels, so the same vehicle has
identical values in every yaml (as in V2XSet). Frames are 100 ms apart, named with V2XSet's
step of 2. Agent 680 is parked far away, outside the default 70 m communication range.

``world_meta(agent, t)`` and ``world_points(agent, t)`` give the frames in memory;
``write_tiny_world(split_dir)`` writes them through the formats writer.
"""
from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np

from v2xdet.data_utils.formats import write_frame
from v2xdet.geometry.transforms import x_to_world

REPO_ROOT = Path(__file__).resolve().parents[2]
SCENARIO = "2021_08_20_21_48_35"
TIMESTAMPS = ("000068", "000070", "000072")
FRAME_DT = 0.1  # seconds between frames
SENSE_RANGE = 40.0
CAV_LIDAR_HEIGHT = 1.9
RSU_LIDAR_HEIGHT = 5.0
LIDAR_RANGE = (-70.4, -40.0, -3.0, 70.4, 40.0, 1.0)

# id: (x0, y0, yaw_deg, speed m/s, length, width, height)
VEHICLES = {
    641: (0.0, 0.0, 0.0, 10.0, 4.6, 2.0, 1.6),     # CAV, the fixed ego in testing
    650: (30.0, 8.0, 90.0, 5.0, 4.2, 1.8, 1.5),    # CAV
    680: (200.0, 0.0, 0.0, 0.0, 4.0, 1.8, 1.5),    # CAV out of communication range
    700: (15.0, -4.0, 30.0, 8.0, 3.9, 1.6, 1.5),
    701: (-20.0, 5.0, 180.0, 6.0, 5.0, 2.1, 1.9),
    702: (45.0, 20.0, -60.0, 4.0, 4.4, 1.9, 1.6),
    703: (10.0, 30.0, 135.0, 0.0, 3.6, 1.7, 1.4),
    704: (-60.0, -30.0, 10.0, 3.0, 4.0, 1.8, 1.5),  # sensed by nobody
    705: (0.0, -39.5, 0.0, 0.0, 4.0, 1.8, 1.5),     # sensed by the ego, footprint crosses the range edge
}
CAVS = (641, 650, 680)
RSU_ID = -1
RSU_POSE = (20.0, -15.0, RSU_LIDAR_HEIGHT, 0.0, 120.0, 0.0)
AGENTS = (RSU_ID, *CAVS)


def vehicle_state(vid: int, t: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """``(location (3,), extent (3,) half sizes, angle [roll, yaw, pitch], speed km/h)`` at frame ``t``."""
    x0, y0, yaw, speed, length, width, height = VEHICLES[vid]
    heading = np.radians(yaw)
    travelled = speed * FRAME_DT * t
    location = np.array([x0 + travelled * np.cos(heading), y0 + travelled * np.sin(heading), 0.0])
    return location, np.array([length, width, height]) / 2, np.array([0.0, yaw, 0.0]), speed * 3.6


def vehicle_label(vid: int, t: int) -> dict:
    location, extent, angle, speed = vehicle_state(vid, t)
    return {"location": location.tolist(), "center": [0.0, 0.0, float(extent[2])],
            "extent": extent.tolist(), "angle": angle.tolist(), "speed": speed}


def lidar_pose(agent: int, t: int) -> np.ndarray:
    if agent == RSU_ID:
        return np.array(RSU_POSE)
    location, _, angle, _ = vehicle_state(agent, t)
    return np.array([location[0], location[1], CAV_LIDAR_HEIGHT, 0.0, angle[1], 0.0])


def sensed_vehicles(agent: int, t: int) -> list[int]:
    """Vehicles (other than the agent itself) within SENSE_RANGE of the agent's LiDAR."""
    pose = lidar_pose(agent, t)
    return [v for v in VEHICLES
            if v != agent and np.hypot(*(vehicle_state(v, t)[0][:2] - pose[:2])) <= SENSE_RANGE]


def world_meta(agent: int, t: int) -> dict:
    """The yaml content of ``agent``'s frame ``t`` (index into TIMESTAMPS)."""
    speed = 0.0 if agent == RSU_ID else vehicle_state(agent, t)[3]
    return {"lidar_pose": lidar_pose(agent, t).tolist(), "ego_speed": speed, "RSU": agent == RSU_ID,
            "vehicles": {v: vehicle_label(v, t) for v in sensed_vehicles(agent, t)}}


def _surface_samples(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` points on the surface of the cube [-1, 1]^3."""
    cube = rng.uniform(-1.0, 1.0, (n, 3))
    face = rng.integers(0, 3, n)
    cube[np.arange(n), face] = np.where(rng.random(n) < 0.5, -1.0, 1.0)
    return cube


def vehicle_world_points(vid: int, t: int, seed: int, n: int = 150) -> np.ndarray:
    """(n, 3) world points on the (3 % shrunk) surface of vehicle ``vid`` at frame ``t``."""
    rng = np.random.default_rng([seed, vid + 1000, t])
    location, extent, angle, _ = vehicle_state(vid, t)
    local = _surface_samples(rng, n) * extent * 0.97
    pose = np.array([location[0], location[1], location[2] + extent[2], *angle])
    to_world = x_to_world(pose)
    return local @ to_world[:3, :3].T + to_world[:3, 3]


def world_points(agent: int, t: int) -> np.ndarray:
    """(N, 4) float32 cloud of ``agent`` at frame ``t`` in its LiDAR frame."""
    seed = zlib.crc32(f"{agent}".encode())
    world = [vehicle_world_points(v, t, seed) for v in sensed_vehicles(agent, t)]
    pose = lidar_pose(agent, t)
    gx, gy = np.meshgrid(np.linspace(-30, 30, 16), np.linspace(-30, 30, 16))
    ground = np.column_stack([gx.ravel() + pose[0], gy.ravel() + pose[1], np.full(gx.size, -0.05)])
    xyz = np.concatenate([*world, ground])
    to_lidar = np.linalg.inv(x_to_world(pose))
    local = xyz @ to_lidar[:3, :3].T + to_lidar[:3, 3]
    intensity = np.linspace(0.2, 0.9, len(local))
    return np.column_stack([local, intensity]).astype(np.float32)


def write_tiny_world(split_dir: str | Path) -> Path:
    """Write every agent's frames under ``split_dir/SCENARIO``; returns ``split_dir``."""
    split_dir = Path(split_dir)
    for agent in AGENTS:
        for t, stamp in enumerate(TIMESTAMPS):
            write_frame(split_dir, SCENARIO, agent, stamp, world_points(agent, t), world_meta(agent, t))
    return split_dir


def tiny_config(split_dir: str | Path, strategy: str, **fusion_args) -> dict:
    """A loaded-config dict (the keys the datasets read, OpenCOOD names) for the tiny world.

    Coarse 0.8 m pillars keep targets cheap; ``max_points_per_voxel`` is large enough that no
    point of the tiny world is dropped, so voxel contents can be compared with clouds exactly.
    """
    rng = list(LIDAR_RANGE)
    return {
        "root_dir": str(split_dir), "validate_dir": str(split_dir), "test_dir": str(split_dir),
        "train_params": {"batch_size": 2, "epoches": 1, "max_cav": 5, "seed": 0},
        "comm_range": 70.0,
        "wild_setting": {"async": False, "loc_err": False, "seed": 25},
        "fusion": {"core_method": strategy, "strategy": strategy,
                   "args": {"cur_ego_pose_flag": True, "proj_first": False, "ego_choice": "first",
                            **fusion_args}},
        "data_augment": [{"NAME": "random_world_flip", "ALONG_AXIS_LIST": ["x"]},
                         {"NAME": "random_world_rotation", "WORLD_ROT_ANGLE": [-0.78539816, 0.78539816]},
                         {"NAME": "random_world_scaling", "WORLD_SCALE_RANGE": [0.95, 1.05]}],
        "preprocess": {"core_method": "SpVoxelPreprocessor",
                       "args": {"voxel_size": [0.8, 0.8, 4.0], "max_points_per_voxel": 256,
                                "max_voxel_train": 32000, "max_voxel_test": 32000},
                       "cav_lidar_range": rng},
        "postprocess": {"core_method": "VoxelPostprocessor", "gt_range": rng,
                        "anchor_args": {"cav_lidar_range": rng, "l": 3.9, "w": 1.6, "h": 1.56, "r": [0, 90],
                                        "feature_stride": 2, "num": 2},
                        "target_args": {"pos_threshold": 0.6, "neg_threshold": 0.45, "score_threshold": 0.27},
                        "order": "hwl", "max_num": 100, "nms_thresh": 0.15},
    }
