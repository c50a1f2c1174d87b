"""Communication delay, computed as V2X-ViT does, in whole frames of 100 ms.

``async_mode: sim`` delays every non-ego agent by ``|async_overhead|`` ms. ``async_mode: real``
adds a uniform overhead in ``[0, async_overhead)`` ms, the transmission time ``data_size`` (Mb) /
``transmission_speed`` (Mbps) and ``backbone_delay`` ms. The total is truncated to whole 100 ms
steps: frames are 100 ms apart (V2XSet / OPV2V name them with a step of 2 because CARLA ticks at
20 Hz while the sensors record at 10 Hz), so a delay of ``k`` steps means the frame ``k``
positions earlier in the scenario's sorted timestamp list. The ego is never delayed.
"""
from __future__ import annotations

import numpy as np

from .noise import STREAM_DELAY, keyed_rng

FRAME_INTERVAL_MS = 100


def delay_ms(wild, rng: np.random.Generator | None) -> float:
    """Delay in ms of one non-ego agent's data under ``wild`` (a :class:`WildSetting`).

    ``rng`` draws the random overhead of the ``real`` mode; it is unused in ``sim`` mode.
    """
    if not wild.async_:
        return 0.0
    if wild.async_mode == "sim":
        return abs(float(wild.async_overhead))
    if rng is None:
        raise ValueError("async_mode 'real' needs a random generator for the overhead")
    overhead = rng.uniform(0.0, wild.async_overhead)
    transmission = wild.data_size / wild.transmission_speed * 1000.0
    return overhead + transmission + wild.backbone_delay


def delay_steps(wild, scenario: str, timestamp, agent_id, is_ego: bool) -> int:
    """Delay of one agent in whole 100 ms frames (0 for the ego), repeatable per (seed, frame, agent)."""
    if is_ego or not wild.async_:
        return 0
    rng = None
    if wild.async_mode == "real":
        rng = keyed_rng(wild.seed, STREAM_DELAY, scenario, timestamp, agent_id)
    return int(delay_ms(wild, rng)) // FRAME_INTERVAL_MS


def delayed_index(current: int, steps: int) -> int:
    """Index of the frame ``steps`` earlier than ``current``, clamped to the scenario's first frame."""
    if steps < 0:
        raise ValueError(f"delay must be >= 0 frames, got {steps}")
    return max(0, current - steps)
