"""Localization error: repeatable Gaussian noise on each non-ego agent's pose.

V2X-ViT's noisy setting perturbs an agent's ``x``, ``y`` and ``yaw`` with zero-mean Gaussian
noise (``xyz_std`` metres, ``ryp_std`` degrees). Here each draw comes from its own generator keyed
by ``(seed, scenario, frame, agent)``: the same pose of the same agent gets the same error in every
run, every worker and every sample that uses it, while different agents and different frames get
independent draws. (The reference code re-seeds the global generator on every call, so every
agent in every frame receives the same error; that is not reproduced.) ``z``, roll and pitch are
left clean, as in the paper's description of the noise.
"""
from __future__ import annotations

import zlib

import numpy as np

# Independent random streams derived from one seed (the first key after the seed).
STREAM_POSE_NOISE = 0
STREAM_DELAY = 1


def stable_key(value) -> int:
    """A non-negative integer for ``value`` that is the same in every process and run.

    Non-negative integers and digit strings (``"000069"``) map to their value; negative integers
    (RSU ids) to odd numbers, other integers to even ones (zigzag), so ids never collide; any other
    string to its CRC-32 (Python's ``hash`` is salted per process and would break repeatability).
    """
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"stable_key: expected an id, name or timestamp, got the bool {value!r}")
    if isinstance(value, (int, np.integer)):
        v = int(value)
        return 2 * v if v >= 0 else -2 * v - 1
    if isinstance(value, str):
        if value.isdigit():
            return 2 * int(value)
        return zlib.crc32(value.encode("utf-8"))
    raise TypeError(f"stable_key: expected an int or str, got {type(value).__name__} {value!r}")


def keyed_rng(seed: int, stream: int, scenario: str, timestamp, agent_id) -> np.random.Generator:
    """Generator for one (seed, stream, scenario, frame, agent): repeatable and independent of others."""
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"wild_setting.seed must be a non-negative integer, got {seed!r}")
    keys = [int(seed), int(stream), stable_key(scenario), stable_key(timestamp), stable_key(agent_id)]
    return np.random.default_rng(keys)


def pose_noise(seed: int, scenario: str, timestamp, agent_id, xyz_std: float, ryp_std: float) -> np.ndarray:
    """The (6,) error added to the pose ``[x, y, z, roll, yaw, pitch]`` of one agent in one frame.

    Only ``x``, ``y`` (std ``xyz_std`` metres) and ``yaw`` (std ``ryp_std`` degrees) are non-zero.
    """
    if xyz_std < 0 or ryp_std < 0:
        raise ValueError(f"wild_setting.xyz_std / ryp_std must be >= 0, got {xyz_std!r} / {ryp_std!r}")
    draw = keyed_rng(seed, STREAM_POSE_NOISE, scenario, timestamp, agent_id).standard_normal(3)
    noise = np.zeros(6)
    noise[[0, 1, 4]] = draw * np.array([xyz_std, xyz_std, ryp_std])
    return noise


def noisy_pose(pose, seed: int, scenario: str, timestamp, agent_id, xyz_std: float,
               ryp_std: float) -> np.ndarray:
    """``pose`` plus its repeatable localization error (see :func:`pose_noise`)."""
    return np.asarray(pose, dtype=np.float64) + pose_noise(seed, scenario, timestamp, agent_id,
                                                            xyz_std, ryp_std)
