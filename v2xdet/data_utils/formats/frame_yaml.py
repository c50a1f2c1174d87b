"""Per-frame yaml (``<agent_id>/<timestamp>.yaml``): read, validate the keys we use, write.

A V2XSet / OPV2V frame yaml holds ``lidar_pose`` (``[x, y, z, roll, yaw, pitch]``, degrees),
``ego_speed``, ``true_ego_pos``, ``predicted_ego_pos``, ``RSU`` and ``vehicles``
(``{id: {location, center, extent, angle, speed}}``), plus keys we keep but do not interpret
(``camera0..3``, ``plan_trajectory``, ...). Validation normalises the interpreted keys to plain
Python floats / ints / bools and fills the optional ones with their defaults.
"""
from __future__ import annotations

import math
import os
from numbers import Integral, Real
from pathlib import Path

import numpy as np
import yaml

from .atomic import atomic_write_bytes
from .errors import FormatError, read_file_bytes

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

POSE_KEYS = ("lidar_pose", "true_ego_pos", "predicted_ego_pos")
VEHICLE_VECTOR_KEYS = ("location", "center", "extent", "angle")


def _is_number(value) -> bool:
    return isinstance(value, Real) and not isinstance(value, (bool, np.bool_))


def _vector(path, where: str, value, length: int) -> list[float]:
    """``value`` as ``length`` finite floats, or a FormatError naming the file and key."""
    if (not isinstance(value, (list, tuple, np.ndarray)) or len(value) != length
            or not all(_is_number(v) and math.isfinite(v) for v in value)):
        raise FormatError(path, f"{where} must be a list of {length} finite numbers, got {value!r}")
    return [float(v) for v in value]


def _number(path, where: str, value) -> float:
    if not (_is_number(value) and math.isfinite(value)):
        raise FormatError(path, f"{where} must be a finite number, got {value!r}")
    return float(value)


def _vehicle_id(path, key) -> int:
    if isinstance(key, Integral) and not isinstance(key, bool):
        return int(key)
    if isinstance(key, str) and key.lstrip("-").isdigit():
        return int(key)
    raise FormatError(path, f"vehicles: id {key!r} is not an integer")


def _validate_vehicles(path, vehicles) -> dict[int, dict]:
    if vehicles is None:
        return {}
    if not isinstance(vehicles, dict):
        raise FormatError(path, f"'vehicles' must be a mapping id -> vehicle, got {type(vehicles).__name__}")
    out = {}
    for key, veh in vehicles.items():
        vid = _vehicle_id(path, key)
        if not isinstance(veh, dict):
            raise FormatError(path, f"vehicles: vehicle {vid} must be a mapping with keys "
                                    f"{', '.join(VEHICLE_VECTOR_KEYS)}, speed; got {veh!r}")
        clean = dict(veh)
        for k in (*VEHICLE_VECTOR_KEYS, "speed"):
            if k not in veh:
                raise FormatError(path, f"vehicles: vehicle {vid} has no '{k}' key")
        for k in VEHICLE_VECTOR_KEYS:
            clean[k] = _vector(path, f"vehicles: vehicle {vid} key '{k}'", veh[k], 3)
        if min(clean["extent"]) < 0:
            raise FormatError(path, f"vehicles: vehicle {vid} key 'extent' holds half sizes, expected >= 0, "
                                    f"got {clean['extent']}")
        clean["speed"] = _number(path, f"vehicles: vehicle {vid} key 'speed'", veh["speed"])
        if vid in out:
            raise FormatError(path, f"vehicles: vehicle {vid} is listed twice")
        out[vid] = clean
    return out


def validate_frame_meta(path, meta, agent_id: int | None = None) -> dict:
    """Check and normalise a frame dict; ``path`` only names the source in errors.

    ``lidar_pose`` is required; ``ego_speed`` defaults to 0.0; ``RSU`` defaults to
    ``agent_id < 0`` when ``agent_id`` is known (left absent otherwise); unknown keys are kept.
    """
    if not isinstance(meta, dict):
        raise FormatError(path, f"frame yaml must be a mapping, got {type(meta).__name__}")
    out = dict(meta)
    if "lidar_pose" not in meta:
        raise FormatError(path, "frame yaml has no 'lidar_pose' key (expected [x, y, z, roll, yaw, pitch])")
    for key in POSE_KEYS:
        if key in meta:
            out[key] = _vector(path, f"'{key}'", meta[key], 6)
    out["ego_speed"] = _number(path, "'ego_speed'", meta.get("ego_speed", 0.0))
    if "RSU" in meta:
        if not isinstance(meta["RSU"], (bool, np.bool_)):
            raise FormatError(path, f"'RSU' must be true or false, got {meta['RSU']!r}")
        out["RSU"] = bool(meta["RSU"])
    elif agent_id is not None:
        out["RSU"] = agent_id < 0
    out["vehicles"] = _validate_vehicles(path, meta.get("vehicles"))
    return out


def _agent_id_of(path: Path) -> int | None:
    name = path.parent.name
    return int(name) if name.lstrip("-").isdigit() else None


def read_frame_yaml(path: str | os.PathLike, agent_id: int | None = None) -> dict:
    """Load and validate one frame yaml (see :func:`validate_frame_meta`).

    ``agent_id`` (for the ``RSU`` default) is taken from the parent folder name when not given.
    """
    path = Path(path)
    text = read_file_bytes(path, "frame yaml")
    try:
        meta = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as err:
        raise FormatError(path, f"not valid yaml: {err}") from None
    return validate_frame_meta(path, meta, agent_id if agent_id is not None else _agent_id_of(path))


def to_plain(value):
    """numpy arrays / scalars and tuples to plain Python lists, floats, ints and bools for yaml."""
    if isinstance(value, dict):
        return {to_plain(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_plain(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    return value


def dump_frame_yaml(meta: dict) -> bytes:
    """The yaml text of a frame dict: plain block style; floats as ``repr`` so they read back exactly."""
    return yaml.dump(to_plain(meta), Dumper=_Dumper, default_flow_style=False, sort_keys=True,
                     allow_unicode=True).encode("utf-8")


def write_frame_yaml(path: str | os.PathLike, meta: dict, agent_id: int | None = None) -> Path:
    """Validate ``meta`` (``lidar_pose`` required) and write it as yaml, atomically; return the path."""
    path = Path(path)
    if agent_id is None:
        agent_id = _agent_id_of(path)
    clean = validate_frame_meta(path, to_plain(meta), agent_id)
    return atomic_write_bytes(path, dump_frame_yaml(clean))
