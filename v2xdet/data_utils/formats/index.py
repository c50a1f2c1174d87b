"""Index of a split folder ``<split>/<scenario>/<agent_id>/<timestamp>.{pcd,yaml}``.

Scenario folders hold one folder per agent (integer names, negative = roadside unit) and may
hold ``data_protocol.yaml`` and other files, which are not agents. In an agent folder a frame is
a ``<digits>.pcd`` with its ``<digits>.yaml``; ``*additional*.yaml``, camera images and other
files are skipped. A yaml without its pcd (or the reverse) is an error naming both paths, or, with
``strict=False``, a warning and the frame is left out.
"""
from __future__ import annotations

import os
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .errors import FormatError

_AGENT_RE = re.compile(r"-?\d+")
_FRAME_RE = re.compile(r"(\d+)\.(pcd|yaml)")


def timestamp_str(timestamp: int | str) -> str:
    """V2XSet's zero-padded 6-digit timestamp (``69 -> '000069'``); digit strings pass unchanged."""
    if isinstance(timestamp, str):
        if not timestamp.isdigit():
            raise ValueError(f"timestamp must be digits like '000069', got {timestamp!r}")
        return timestamp
    if int(timestamp) < 0:
        raise ValueError(f"timestamp must be >= 0, got {timestamp}")
    return f"{int(timestamp):06d}"


def frame_paths(split_dir: str | os.PathLike, scenario: str, agent_id: int,
                timestamp: int | str) -> tuple[Path, Path]:
    """``(pcd_path, yaml_path)`` of one agent's frame."""
    stem = Path(split_dir) / scenario / str(int(agent_id)) / timestamp_str(timestamp)
    return stem.with_suffix(".pcd"), stem.with_suffix(".yaml")


@dataclass(frozen=True)
class DatasetIndex:
    """What a split folder holds: ``agents[scenario][agent_id] = sorted timestamps``."""

    root: Path
    agents: dict[str, dict[int, tuple[str, ...]]] = field(repr=False)

    @property
    def scenarios(self) -> tuple[str, ...]:
        """Scenario names, sorted."""
        return tuple(self.agents)

    def agent_ids(self, scenario: str) -> tuple[int, ...]:
        """Agent ids of a scenario, sorted (RSUs, negative, first)."""
        return tuple(self._scenario(scenario))

    def timestamps(self, scenario: str, agent_id: int) -> tuple[str, ...]:
        """Sorted timestamps at which ``agent_id`` has a frame."""
        agents = self._scenario(scenario)
        if agent_id not in agents:
            raise KeyError(f"{self.root / scenario}: no agent {agent_id} (agents: {list(agents)})")
        return agents[agent_id]

    def agents_at(self, scenario: str, timestamp: str) -> tuple[int, ...]:
        """Agents of ``scenario`` that have a frame at ``timestamp``, sorted."""
        return tuple(a for a, ts in self._scenario(scenario).items() if timestamp in ts)

    def frames(self) -> Iterator[tuple[str, str]]:
        """``(scenario, timestamp)`` pairs at which at least one agent has a frame, in order."""
        for scenario, agents in self.agents.items():
            stamps = set().union(*agents.values())
            yield from ((scenario, t) for t in sorted(stamps, key=lambda s: (int(s), s)))

    def has_frame(self, scenario: str, agent_id: int, timestamp: str) -> bool:
        return timestamp in self.agents.get(scenario, {}).get(agent_id, ())

    def __len__(self) -> int:
        """Number of agent frames (one pcd + yaml pair each)."""
        return sum(len(ts) for agents in self.agents.values() for ts in agents.values())

    def _scenario(self, scenario: str) -> dict[int, tuple[str, ...]]:
        if scenario not in self.agents:
            raise KeyError(f"{self.root}: no scenario {scenario!r}")
        return self.agents[scenario]


def _index_agent(agent_dir: Path, strict: bool) -> tuple[str, ...]:
    found: dict[str, set[str]] = {}
    for entry in os.scandir(agent_dir):
        match = _FRAME_RE.fullmatch(entry.name)
        if match and entry.is_file():
            found.setdefault(match.group(1), set()).add(match.group(2))
    stamps = []
    for stamp, kinds in found.items():
        if len(kinds) == 2:
            stamps.append(stamp)
            continue
        order = ("pcd", "yaml") if "pcd" in kinds else ("yaml", "pcd")
        have, lack = (agent_dir / f"{stamp}.{k}" for k in order)
        if strict:
            raise FormatError(have, f"frame has no matching {lack} (expected both .pcd and .yaml)")
        warnings.warn(f"{have}: frame has no matching {lack}; left out of the index", stacklevel=3)
    return tuple(sorted(stamps, key=lambda s: (int(s), s)))


def index_dataset(split_dir: str | os.PathLike, strict: bool = True) -> DatasetIndex:
    """Scan ``split_dir`` (e.g. ``.../validate``) into a :class:`DatasetIndex`.

    Raises :class:`FormatError` if the folder does not exist or holds no scenario with frames,
    and (``strict=True``) for a pcd without its yaml or the reverse; ``strict=False`` warns and
    skips such frames and scenarios without frames.
    """
    root = Path(split_dir)
    if not root.is_dir():
        raise FormatError(root, "split folder does not exist (expected <split>/<scenario>/<agent_id>/)")
    agents: dict[str, dict[int, tuple[str, ...]]] = {}
    for scenario_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        per_agent = {}
        for agent_dir in scenario_dir.iterdir():
            if agent_dir.is_dir() and _AGENT_RE.fullmatch(agent_dir.name):
                stamps = _index_agent(agent_dir, strict)
                if stamps:
                    per_agent[int(agent_dir.name)] = stamps
        if not per_agent:
            if strict:
                raise FormatError(scenario_dir, "scenario holds no agent folder with frames "
                                                "(expected <agent_id>/<timestamp>.pcd and .yaml)")
            warnings.warn(f"{scenario_dir}: no agent folder with frames; scenario skipped", stacklevel=2)
            continue
        agents[scenario_dir.name] = dict(sorted(per_agent.items()))
    if not agents:
        raise FormatError(root, "split folder holds no scenario "
                                "(expected <scenario>/<agent_id>/<timestamp>.pcd)")
    return DatasetIndex(root, agents)
