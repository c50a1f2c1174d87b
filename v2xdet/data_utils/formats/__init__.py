"""The V2XSet / OPV2V on-disk format: ``<split>/<scenario>/<agent_id>/<timestamp>.{pcd,yaml}``.

Readers validate everything they return and raise :class:`FormatError` (a ``ValueError``) naming
the file; writers are atomic and produce files that OpenCOOD (open3d) reads the same way.
"""
from .errors import FormatError
from .frame import Frame, load_frame, write_frame
from .frame_yaml import read_frame_yaml, validate_frame_meta, write_frame_yaml
from .index import DatasetIndex, frame_paths, index_dataset, timestamp_str
from .labels import vehicle_boxes, vehicle_boxes_world
from .pcd import DATA_KINDS, encode_pcd, read_pcd, write_pcd

__all__ = [
    "DATA_KINDS", "DatasetIndex", "FormatError", "Frame", "encode_pcd", "frame_paths", "index_dataset",
    "load_frame", "read_frame_yaml", "read_pcd", "timestamp_str", "validate_frame_meta",
    "vehicle_boxes", "vehicle_boxes_world", "write_frame", "write_frame_yaml", "write_pcd",
]
