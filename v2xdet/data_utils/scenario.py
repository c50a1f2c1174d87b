"""One multi-agent sample: who is the ego, who talks to it, with which delay and pose error.

:func:`plan_scenario` decides everything about a sample that does not need the point clouds, from
the frames' metadata alone (pure numpy, no file access of its own):

* **Ego.** In training a random non-RSU agent (from the caller's ``numpy.random.Generator``); in
  testing a fixed one: the first non-RSU agent in the folders' name order, which is the agent
  OpenCOOD / V2X-ViT use as ego (they list the folders sorted by name and move a leading RSU to
  the end).
* **Agents.** Those whose current LiDAR pose lies within ``comm_range`` metres of the ego's
  (distance in the ground plane, as V2X-ViT), nearest first, at most ``max_cav`` including the ego.
  The ego is always first.
* **Delay** (``wild_setting.async``, see :mod:`.delay`). A delayed agent's points, pose and speed
  come from the frame ``delay`` steps earlier, clamped to the first frame; the recorded delay is the
  one actually applied. Labels always stay at the current time.
* **Pose noise** (``wild_setting.loc_err``, see :mod:`.noise`) on the pose each non-ego agent
  sends (the delayed one), for every fusion strategy.
* **Transforms** (4x4, OpenCOOD's ``x1_to_x2``): ``agent_to_ego`` from the noisy sent pose to the
  ego reference pose (the current ego pose, or with ``cur_ego_pose_flag: false`` the ego pose at
  the agent's delayed time, V2X-ViT's convention), ``spatial_correction`` from that ego reference
  pose to the current ego pose (identity when ``cur_ego_pose_flag``), so that
  ``spatial_correction @ agent_to_ego`` always maps an agent's data into the current ego frame;
  ``agent_to_ego_clean`` is the true placement of the agent's data frame in the current ego frame;
  ``pairwise[i, j]`` maps agent ``i``'s data frame into agent ``j``'s as the agents believe it
  (noisy poses; the ego's data frame is its current pose).
* **Labels.** ``gt_boxes``: the union of the vehicles listed by the chosen agents at the current
  time, deduplicated by id, without the ego itself, in the current ego frame from the clean world
  poses, kept when their footprint lies inside ``lidar_range``. ``own_boxes[i]``: the vehicles
  agent ``i`` lists at the current time, in its own data frame (clean), for single-agent training
  (no fusion, late fusion).
* ``prior_encoding[i] = (speed / 30 km/h, delay in 100 ms steps, RSU flag)``, V2X-ViT's prior.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from v2xdet.geometry.boxes import boxes_to_bev_corners
from v2xdet.geometry.transforms import x1_to_x2, x_to_world

from .delay import FRAME_INTERVAL_MS, delay_steps, delayed_index
from .noise import noisy_pose

DEFAULT_COMM_RANGE = 70.0
DEFAULT_MAX_CAV = 5
SPEED_NORMALISER = 30.0  # km/h, V2X-ViT's prior encoding divides the speed by it
ASYNC_MODES = ("sim", "real")


def _number(section: str, key: str, value, minimum: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{section}.{key} must be a number, got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{section}.{key} must be >= {minimum}, got {value!r}")
    return float(value)


def _flag(section: str, key: str, value) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{section}.{key} must be true or false, got {value!r}")
    return bool(value)


@dataclass(frozen=True)
class WildSetting:
    """The ``wild_setting`` config section (V2X-ViT's keys and defaults); disabled by default."""

    async_: bool = False
    async_mode: str = "sim"
    async_overhead: float = 0.0  # ms
    seed: int = 0
    loc_err: bool = False
    xyz_std: float = 0.0  # metres
    ryp_std: float = 0.0  # degrees
    data_size: float = 0.0  # Mb
    transmission_speed: float = 27.0  # Mbps
    backbone_delay: float = 0.0  # ms

    @classmethod
    def from_config(cls, section: dict | None) -> WildSetting:
        """Read ``cfg['wild_setting']`` (absent: everything off); bad values name the key."""
        if section is None:
            return cls()
        if not isinstance(section, dict):
            raise ValueError(f"wild_setting must be a mapping, got {section!r}")
        s = "wild_setting"
        mode = section.get("async_mode", "sim")
        if mode not in ASYNC_MODES:
            raise ValueError(f"{s}.async_mode must be one of {ASYNC_MODES}, got {mode!r}")
        seed = section.get("seed", 0)
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"{s}.seed must be a non-negative integer, got {seed!r}")
        speed = _number(s, "transmission_speed", section.get("transmission_speed", 27.0))
        if speed <= 0:
            raise ValueError(f"{s}.transmission_speed must be > 0 Mbps, got {speed!r}")
        return cls(
            async_=_flag(s, "async", section.get("async", False)),
            async_mode=mode,
            async_overhead=_number(s, "async_overhead", section.get("async_overhead", 0.0), 0.0),
            seed=int(seed),
            loc_err=_flag(s, "loc_err", section.get("loc_err", False)),
            xyz_std=_number(s, "xyz_std", section.get("xyz_std", 0.0), 0.0),
            ryp_std=_number(s, "ryp_std", section.get("ryp_std", 0.0), 0.0),
            data_size=_number(s, "data_size", section.get("data_size", 0.0), 0.0),
            transmission_speed=speed,
            backbone_delay=_number(s, "backbone_delay", section.get("backbone_delay", 0.0), 0.0),
        )


@dataclass(frozen=True)
class ScenarioSettings:
    """What :func:`plan_scenario` needs from the config."""

    lidar_range: tuple[float, ...]
    comm_range: float = DEFAULT_COMM_RANGE
    max_cav: int = DEFAULT_MAX_CAV
    cur_ego_pose_flag: bool = True
    wild: WildSetting = field(default_factory=WildSetting)

    def __post_init__(self):
        if len(self.lidar_range) != 6 or not (
                self.lidar_range[0] < self.lidar_range[3] and self.lidar_range[1] < self.lidar_range[4]):
            raise ValueError("lidar_range must be [xmin, ymin, zmin, xmax, ymax, zmax] with min < max, "
                             f"got {self.lidar_range}")
        if self.comm_range <= 0:
            raise ValueError(f"comm_range must be > 0 metres, got {self.comm_range}")
        if int(self.max_cav) != self.max_cav or self.max_cav < 1:
            raise ValueError(f"max_cav must be an integer >= 1, got {self.max_cav}")


@dataclass
class Scenario:
    """The plan of one sample; arrays are indexed by agent, ego first (see the module docstring)."""

    scenario: str
    timestamp: str
    ego_id: int
    agent_ids: np.ndarray          # (L,) int64
    is_rsu: np.ndarray             # (L,) bool
    distance: np.ndarray           # (L,) metres to the ego, current clean poses
    delay: np.ndarray              # (L,) int, 100 ms steps actually applied
    data_timestamps: list[str]     # (L,) the frame each agent's points / pose / speed come from
    speed: np.ndarray              # (L,) km/h at the data frame
    pose_current: np.ndarray       # (L, 6) clean poses at the current time
    pose_data: np.ndarray          # (L, 6) clean poses of the data frames
    pose_sent: np.ndarray          # (L, 6) the data poses with localization error (ego: clean)
    agent_to_ego: np.ndarray       # (L, 4, 4) noisy, into the ego reference frame
    spatial_correction: np.ndarray  # (L, 4, 4) ego reference frame -> current ego frame
    agent_to_ego_clean: np.ndarray  # (L, 4, 4) data frame -> current ego frame, clean
    pairwise: np.ndarray           # (L, L, 4, 4) agent i's data frame -> agent j's, noisy
    prior_encoding: np.ndarray     # (L, 3) speed / 30, delay steps, RSU flag
    gt_ids: np.ndarray             # (K,) int64
    gt_boxes: np.ndarray           # (K, 7) current ego frame, clean, in range
    own_ids: list[np.ndarray]      # per agent (K_i,)
    own_boxes: list[np.ndarray]    # per agent (K_i, 7) in its data frame, clean (not range-cropped)

    @property
    def num_agents(self) -> int:
        return int(self.agent_ids.size)

    @property
    def fusion_to_ego(self) -> np.ndarray:
        """(L, 4, 4) noisy map of each agent's data into the current ego frame."""
        return self.spatial_correction @ self.agent_to_ego


def listing_order(agent_ids: Sequence[int]) -> list[int]:
    """Agent ids in the order of their folder names (OpenCOOD's ``sorted(os.listdir)``)."""
    return sorted((int(a) for a in agent_ids), key=str)


def choose_ego(agent_ids: Sequence[int], is_rsu: Sequence[bool], rng: np.random.Generator | None) -> int:
    """A random non-RSU agent when ``rng`` is given (training), else the first in listing order."""
    ids = [int(a) for a in agent_ids]
    candidates = [a for a in listing_order(ids) if not is_rsu[ids.index(a)]]
    if not candidates:
        raise ValueError(f"no vehicle can be ego: every agent {ids} is a roadside unit")
    if rng is None:
        return candidates[0]
    return candidates[int(rng.integers(len(candidates)))]


def select_agents(ego_index: int, poses: np.ndarray, comm_range: float, max_cav: int) -> np.ndarray:
    """Indices of the ego and the agents within ``comm_range`` of it, nearest first, at most ``max_cav``.

    Distances are in the ground plane between LiDAR poses; ties keep the input order.
    """
    poses = np.asarray(poses, dtype=np.float64)
    dist = np.linalg.norm(poses[:, :2] - poses[ego_index, :2], axis=1)
    others = np.flatnonzero((dist <= comm_range) & (np.arange(len(poses)) != ego_index))
    others = others[np.argsort(dist[others], kind="stable")]
    return np.concatenate([[ego_index], others])[:max_cav].astype(np.int64)


def boxes_in_range(boxes: np.ndarray, lidar_range) -> np.ndarray:
    """(K,) mask of the boxes whose four footprint corners lie inside the range's x/y bounds.

    Height is not checked: roadside units sit higher than vehicles, and a box's footprint is what
    detection and AP are about (OpenCOOD's evaluation range is a ground-plane one too).
    """
    if len(boxes) == 0:
        return np.zeros(0, dtype=bool)
    xy = boxes_to_bev_corners(boxes)
    lo, hi = np.asarray(lidar_range[:2]), np.asarray(lidar_range[3:5])
    return ((xy >= lo) & (xy <= hi)).all(axis=(1, 2))


MetaFn = Callable[[int, str], dict]
BoxesFn = Callable[[dict, np.ndarray], tuple[np.ndarray, np.ndarray]]


def plan_scenario(scenario: str, timestamp: str, agent_ids: Sequence[int],
                  timestamps_of: Callable[[int], Sequence[str]], meta: MetaFn, vehicle_boxes: BoxesFn,
                  settings: ScenarioSettings, rng: np.random.Generator | None) -> Scenario:
    """Plan the sample of ``scenario`` at ``timestamp`` (see the module docstring).

    ``agent_ids``: the agents that have a frame at ``timestamp``; ``timestamps_of(agent)``: that
    agent's frames in time order (a delay steps back along it); ``meta(agent, timestamp)``: a
    validated frame dict (``lidar_pose``, ``ego_speed``, ``RSU``, ``vehicles``);
    ``vehicle_boxes(vehicles, lidar_pose) -> (ids, boxes)``: labels into a LiDAR frame;
    ``rng``: the training generator for the ego choice, ``None`` in testing.
    """
    ids = [int(a) for a in agent_ids]
    if not ids:
        raise ValueError(f"scenario {scenario}: no agent has a frame at {timestamp!r}")
    current = [meta(a, timestamp) for a in ids]
    poses_now = np.array([m["lidar_pose"] for m in current], dtype=np.float64)
    rsu_all = np.array([bool(m.get("RSU", a < 0)) for a, m in zip(ids, current, strict=True)])

    ego_id = choose_ego(ids, rsu_all, rng)
    ego_index = ids.index(ego_id)
    chosen = select_agents(ego_index, poses_now, settings.comm_range, settings.max_cav)
    chosen_ids = [ids[i] for i in chosen]
    wild = settings.wild

    # Delay: which frame each agent's data comes from.
    delay, data_ts = [], []
    for a in chosen_ids:
        own_stamps = list(timestamps_of(a))
        if timestamp not in own_stamps:
            raise ValueError(f"scenario {scenario}: agent {a} has no frame {timestamp!r}")
        t_index = own_stamps.index(timestamp)
        steps = delay_steps(wild, scenario, timestamp, a, is_ego=(a == ego_id))
        d_index = delayed_index(t_index, steps)
        delay.append(t_index - d_index)
        data_ts.append(own_stamps[d_index])
    data_meta = [meta(a, ts) for a, ts in zip(chosen_ids, data_ts, strict=True)]
    pose_data = np.array([m["lidar_pose"] for m in data_meta], dtype=np.float64)

    # Pose noise on the sent (data-frame) pose of every non-ego agent.
    pose_sent = pose_data.copy()
    if wild.loc_err:
        for row, (a, ts) in enumerate(zip(chosen_ids, data_ts, strict=True)):
            if a != ego_id:
                pose_sent[row] = noisy_pose(pose_data[row], wild.seed, scenario, ts, a, wild.xyz_std,
                                            wild.ryp_std)

    ego_now = poses_now[ego_index]
    if settings.cur_ego_pose_flag:
        ego_ref = np.broadcast_to(ego_now, pose_data.shape)
    else:
        ego_ref = np.array([meta(ego_id, ts)["lidar_pose"] for ts in data_ts], dtype=np.float64)
    sent_world = x_to_world(pose_sent)  # (L, 4, 4); the ego's row is its current, clean pose
    agent_to_ego = np.linalg.inv(x_to_world(ego_ref)) @ x_to_world(pose_sent)
    spatial_correction = np.linalg.inv(x_to_world(ego_now)) @ x_to_world(ego_ref)
    agent_to_ego_clean = x1_to_x2(pose_data, ego_now)
    pairwise = np.linalg.inv(sent_world)[None, :] @ sent_world[:, None]

    speed = np.array([m["ego_speed"] for m in data_meta], dtype=np.float64)
    is_rsu = rsu_all[chosen]
    prior = np.column_stack([speed / SPEED_NORMALISER, np.asarray(delay, dtype=np.float64),
                             is_rsu.astype(np.float64)])

    # Labels at the current time.
    union: dict[int, dict] = {}
    for i in chosen:
        for vid, veh in current[i]["vehicles"].items():
            if vid != ego_id:
                union.setdefault(int(vid), veh)
    gt_ids, gt_boxes = vehicle_boxes(union, ego_now)
    keep = boxes_in_range(gt_boxes, settings.lidar_range)
    own_ids, own_boxes = [], []
    for row, i in enumerate(chosen):
        own = {v: veh for v, veh in current[i]["vehicles"].items() if v != chosen_ids[row]}
        o_ids, o_boxes = vehicle_boxes(own, pose_data[row])
        own_ids.append(np.asarray(o_ids, dtype=np.int64))
        own_boxes.append(np.asarray(o_boxes, dtype=np.float64).reshape(-1, 7))

    return Scenario(
        scenario=scenario, timestamp=timestamp, ego_id=ego_id,
        agent_ids=np.asarray(chosen_ids, dtype=np.int64), is_rsu=is_rsu,
        distance=np.linalg.norm(poses_now[chosen, :2] - ego_now[:2], axis=1),
        delay=np.asarray(delay, dtype=np.int64), data_timestamps=data_ts, speed=speed,
        pose_current=poses_now[chosen], pose_data=pose_data, pose_sent=pose_sent,
        agent_to_ego=agent_to_ego, spatial_correction=spatial_correction,
        agent_to_ego_clean=agent_to_ego_clean, pairwise=pairwise, prior_encoding=prior,
        gt_ids=np.asarray(gt_ids, dtype=np.int64)[keep],
        gt_boxes=np.asarray(gt_boxes, dtype=np.float64).reshape(-1, 7)[keep],
        own_ids=own_ids, own_boxes=own_boxes,
    )


__all__ = ["DEFAULT_COMM_RANGE", "DEFAULT_MAX_CAV", "FRAME_INTERVAL_MS", "Scenario", "ScenarioSettings",
           "WildSetting", "boxes_in_range", "choose_ego", "listing_order", "plan_scenario", "select_agents"]
