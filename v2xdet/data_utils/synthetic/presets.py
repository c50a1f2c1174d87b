"""Named worlds: V2XSet-like (CAVs and roadside units), OPV2V-like (CAVs only), and a tiny one for tests.

The LiDAR defaults are the CARLA sensor of V2XSet's ``data_protocol.yaml`` (64 channels, +2 to
-25 degrees, 1.3 M points/s at 20 Hz, 120 m, noise 0.02 m, drop-off 0.1 / 0.7 / 0.15). The one
real V2XSet frame at hand was recorded differently from what its protocol file says: its
elevations fall on 32 levels 27/31 degrees apart and its azimuth step is 360/1563 degrees, i.e.
32 channels at 1.0 M points/s; ``CARLA_32`` is that sensor (preset ``v2xset32``).
"""
from __future__ import annotations

import dataclasses

from .lidar import LidarSpec
from .town import TownSpec
from .traffic import TrafficSpec
from .world import AgentSpec, WorldPreset

CARLA_64 = LidarSpec()
CARLA_32 = LidarSpec(channels=32, points_per_second=1_000_000)

PRESETS: dict[str, WorldPreset] = {
    "v2xset": WorldPreset("v2xset", TownSpec(), TrafficSpec(), AgentSpec(cavs=(2, 5), rsus=(0, 2)),
                          CARLA_64, CARLA_64),
    "v2xset32": WorldPreset("v2xset32", TownSpec(), TrafficSpec(), AgentSpec(cavs=(2, 5), rsus=(0, 2)),
                            CARLA_32, CARLA_32),
    "opv2v": WorldPreset("opv2v", TownSpec(), TrafficSpec(), AgentSpec(cavs=(2, 7), rsus=(0, 0)),
                         CARLA_64, CARLA_64),
    # Small and fast for tests: a smaller town, a 16-channel sensor with 1/16 of the rays.
    "tiny": WorldPreset(
        "tiny", TownSpec(area_half=90.0, block_length=(60.0, 90.0)), TrafficSpec(warmup_s=3.0),
        AgentSpec(cavs=(2, 2), rsus=(1, 1), cav_spacing=(5.0, 60.0), ego_area=30.0),
        LidarSpec(channels=16, points_per_second=81_920, range=120.0),
        LidarSpec(channels=16, points_per_second=81_920, range=120.0)),
}


def get_preset(name: str, cavs: tuple[int, int] | None = None,
               rsus: tuple[int, int] | None = None) -> WorldPreset:
    """A named preset, optionally with another number of CAVs / RSUs per scenario (validated)."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; expected one of {sorted(PRESETS)}")
    preset = PRESETS[name]
    agents = preset.agents
    if cavs is not None:
        agents = dataclasses.replace(agents, cavs=tuple(cavs))
    if rsus is not None:
        agents = dataclasses.replace(agents, rsus=tuple(rsus))
    preset = dataclasses.replace(preset, agents=agents)
    preset.validate()
    return preset


def preset_dict(preset: WorldPreset) -> dict:
    """Every parameter of a preset as plain yaml-able values (for ``generation.yaml``)."""
    def plain(v):
        if isinstance(v, tuple):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v
    return plain(dataclasses.asdict(preset))
