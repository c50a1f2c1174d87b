"""A simulated V2X world written in V2XSet's exact layout (towns, traffic, CAV / RSU LiDARs).

``generate_dataset(out_dir, n_scenes, n_frames, seed, preset)`` is the entry point (also
``tools/make_synthetic_data.py``); ``Scenario`` simulates one scene frame by frame.
Modules: ``town`` (roads, junctions, buildings, clutter), ``traffic`` (vehicles, IDM driving),
``meshes`` (triangles), ``lidar`` (CARLA's ray-cast LiDAR with open3d), ``world`` (agents and
frames), ``presets``, ``writer`` (files), ``stats`` (realism statistics), ``preview`` (a PNG).
"""
from .lidar import LidarSpec
from .presets import PRESETS, get_preset
from .stats import RealismStats
from .world import Scenario
from .writer import DatasetExistsError, generate_dataset, parse_splits

__all__ = ["PRESETS", "DatasetExistsError", "LidarSpec", "RealismStats", "Scenario", "generate_dataset",
           "get_preset", "parse_splits"]
