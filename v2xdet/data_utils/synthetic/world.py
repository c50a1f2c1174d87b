"""One simulated scenario: a town, its traffic, the connected agents and their sweeps per frame.

The agents are an *ego* connected vehicle (CAV) near the centre of the town, further CAVs
driving within a spacing range of it (they are ordinary vehicles of the traffic, labelled in
the others' frames when their LiDAR hits them) and, if asked, roadside units (RSUs) on poles at
the corners of nearby signalized junctions. A CAV's LiDAR sits on its roof as in OpenCDA
(0.5 m behind the vehicle's centre, 1.9 m above the ground, or just above a taller roof).

``Scenario.frames()`` yields one :class:`FrameRecord` per timestamp (every 100 ms, the
timestamp stepping by 2 as in V2XSet): each agent's points in its sensor frame, its poses and
speed, and the vehicles it labels: those hit by at least one of its own points (OpenCDA uses a
semantic LiDAR for this; the ray's geometry id is exact) within ``label_range`` of the agent.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from v2xdet.geometry.transforms import x_to_world

from . import meshes
from .lidar import LidarScene, LidarSpec, Sweep, ray_directions, scan
from .town import STATIC_KINDS, Town, TownSpec, build_town
from .traffic import CAV_TYPES, TYPE_NAMES, Traffic, TrafficSpec

FRAME_DT = 0.1          # seconds between frames
TIMESTAMP_STEP = 2      # V2XSet's timestamps count 50 ms simulator ticks


@dataclass(frozen=True)
class AgentSpec:
    """How many agents a scenario has and where they are."""

    cavs: tuple[int, int] = (2, 5)                # connected vehicles per scenario (inclusive)
    rsus: tuple[int, int] = (0, 2)                # roadside units per scenario (inclusive)
    cav_spacing: tuple[float, float] = (8.0, 60.0)   # other CAVs' distance to the ego at the start
    ego_area: float = 40.0                        # the ego starts this close to the town centre
    rsu_distance: float = 70.0                    # RSU sites this close to the ego at the start
    lidar_mount: tuple[float, float] = (-0.5, 1.9)   # CAV LiDAR: x offset, height above ground
    roof_clearance: float = 0.3                   # ... at least this much above the roof
    label_range: float | None = 50.0              # OpenCDA labels vehicles within 50 m (None: any)
    gnss_noise: tuple[float, float] = (0.03, 0.05)   # predicted_ego_pos error: xy std (m), yaw std (deg)

    def validate(self) -> None:
        lo, hi = self.cavs
        if not 1 <= lo <= hi:
            raise ValueError(f"agents.cavs must be a range 1 <= low <= high (a scenario needs a connected "
                             f"ego vehicle), got {self.cavs}")
        lo, hi = self.rsus
        if not 0 <= lo <= hi:
            raise ValueError(f"agents.rsus must be a range 0 <= low <= high, got {self.rsus}")
        lo, hi = self.cav_spacing
        if not 0 <= lo < hi:
            raise ValueError(f"agents.cav_spacing must be a range 0 <= low < high, got {self.cav_spacing}")
        if self.label_range is not None and self.label_range <= 0:
            raise ValueError(f"agents.label_range must be positive or None, got {self.label_range}")


@dataclass(frozen=True)
class WorldPreset:
    """Everything that defines the simulated world (see ``presets``)."""

    name: str
    town: TownSpec
    traffic: TrafficSpec
    agents: AgentSpec
    lidar: LidarSpec
    rsu_lidar: LidarSpec

    def validate(self) -> None:
        self.town.validate()
        self.traffic.validate()
        self.agents.validate()
        self.lidar.validate()
        self.rsu_lidar.validate()


@dataclass
class Agent:
    agent_id: int
    is_rsu: bool
    vehicle: int = -1          # fleet index of a CAV
    static: int = -1           # static object index of an RSU's pole
    pose: np.ndarray | None = None   # an RSU's fixed LiDAR pose


@dataclass
class AgentFrame:
    agent_id: int
    is_rsu: bool
    vehicle: int                    # fleet index of a CAV, -1 for an RSU
    lidar_pose: np.ndarray          # (6,)
    true_ego_pos: np.ndarray        # (6,)
    predicted_ego_pos: np.ndarray   # (6,)
    ego_speed: float                # km/h
    sweep: Sweep
    labels: np.ndarray              # fleet indices of the vehicles it labels


@dataclass
class FrameRecord:
    timestamp: int
    agents: list[AgentFrame]
    poses: np.ndarray               # (V, 6) every vehicle's pose (world)
    speed_kmh: np.ndarray           # (V,)


class Scenario:
    """A town with traffic and agents; iterate :meth:`frames` to simulate it.

    ``cast_threads`` bounds the ray-casting threads (0: all cores; scenes simulated in parallel
    processes share the cores).
    """

    def __init__(self, preset: WorldPreset, rng: np.random.Generator, n_frames: int, cast_threads: int = 0):
        preset.validate()
        if n_frames < 1:
            raise ValueError(f"a scenario needs at least one frame, got n_frames={n_frames}")
        self.preset, self.rng, self.n_frames = preset, rng, n_frames
        duration = n_frames * FRAME_DT
        v_top = preset.traffic.speed_kmh[1] / 3.6
        reach = min(v_top * (preset.traffic.warmup_s + duration) + 60.0, 600.0)
        # a long scenario builds up a larger area, so that its agents stay in town
        town_spec = dataclasses.replace(preset.town, area_half=preset.town.area_half
                                        + min(max(v_top * duration - 40.0, 0.0), 300.0))
        self.town: Town = build_town(town_spec, rng, reach=reach)
        self.traffic = Traffic(self.town, preset.traffic, rng, duration,
                               spawn_half=town_spec.area_half + reach)
        self.agents = self._choose_agents()
        self.scene = LidarScene(self.town.static, self.town.static_kind, np.r_[self.town.origin, 0.0],
                                nthreads=cast_threads)
        self._dirs = {False: ray_directions(preset.lidar), True: ray_directions(preset.rsu_lidar)}
        self.first_timestamp = 68 + int(rng.integers(0, 2))

    # -- agents ----------------------------------------------------------------------------
    def _choose_agents(self) -> list[Agent]:
        spec, rng, fleet = self.preset.agents, self.rng, self.traffic.fleet
        poses, _ = self.traffic.poses()
        xy = poses[:, :2]
        cav_ok = fleet.moving & np.isin(fleet.types, [TYPE_NAMES.index(t) for t in CAV_TYPES])
        candidates = np.flatnonzero(cav_ok)
        if not candidates.size:
            raise RuntimeError("no vehicle can carry a LiDAR in this town; raise the traffic density")
        centre_dist = np.linalg.norm(self.town.to_local(xy[candidates]), axis=1)
        near = candidates[centre_dist <= spec.ego_area]
        ego = int(rng.choice(near)) if near.size else int(candidates[np.argmin(centre_dist)])
        n_cavs = int(rng.integers(spec.cavs[0], spec.cavs[1] + 1))
        d = np.linalg.norm(xy - xy[ego], axis=1)
        ok = (candidates != ego) & (d[candidates] >= spec.cav_spacing[0])
        within = rng.permutation(candidates[ok & (d[candidates] <= spec.cav_spacing[1])])
        # not enough in the spacing range: the nearest ones beyond it, up to 1.5 x the range
        far = spec.cav_spacing[1]
        beyond = candidates[ok & (d[candidates] > far) & (d[candidates] <= 1.5 * far)]
        beyond = beyond[np.argsort(d[beyond])]
        chosen = [ego] + [int(i) for i in np.concatenate([within, beyond])[:n_cavs - 1]]
        agents = [Agent(int(fleet.ids[v]), False, vehicle=v) for v in chosen]
        n_rsus = int(rng.integers(spec.rsus[0], spec.rsus[1] + 1))
        sites = self.town.rsu_sites
        if n_rsus and len(sites):
            ds = np.linalg.norm(sites[:, :2] - xy[ego], axis=1)
            ok = np.flatnonzero(ds <= spec.rsu_distance)
            ok = ok[np.argsort(ds[ok])][:n_rsus]
            rsu_kind = STATIC_KINDS.index("rsu_pole")
            pole_ids = np.flatnonzero(self.town.static_kind == rsu_kind)   # one per site, in order
            for k, site in enumerate(ok):
                x, y, h, yaw = sites[site]
                pose = np.array([x, y, h, 0.0, np.degrees(yaw), 0.0])
                agents.append(Agent(-(k + 1), True, static=int(pole_ids[site]), pose=pose))
        return agents

    def _lidar_pose(self, agent: Agent, poses: np.ndarray) -> np.ndarray:
        if agent.is_rsu:
            return agent.pose
        dx, height = self.preset.agents.lidar_mount
        roof = self.traffic.fleet.size[agent.vehicle, 2]
        mount = np.eye(4)
        mount[0, 3], mount[2, 3] = dx, max(height, roof + self.preset.agents.roof_clearance)
        m = x_to_world(poses[agent.vehicle]) @ mount
        out = poses[agent.vehicle].copy()
        out[:3] = m[:3, 3]
        return out

    # -- frames ----------------------------------------------------------------------------
    def _vehicle_mesh(self, poses: np.ndarray, centres: np.ndarray) -> meshes.Mesh:
        """World meshes of the vehicles within reach of any sensor (the others cannot be hit)."""
        fleet = self.traffic.fleet
        reach = max(self.preset.lidar.range, self.preset.rsu_lidar.range) + 10.0
        d = np.linalg.norm(poses[:, None, :2] - centres[None, :, :2], axis=-1).min(axis=1)
        keep = d <= reach
        vmask = keep[fleet.vertex_owner]
        tmask = keep[fleet.mesh.owner]
        new_index = np.cumsum(vmask) - 1
        mats = x_to_world(poses)
        owner_v = fleet.vertex_owner[vmask]
        local = fleet.mesh.vertices[vmask]
        world = np.einsum("vij,vj->vi", mats[owner_v, :3, :3], local) + mats[owner_v, :3, 3]
        return meshes.Mesh(world, new_index[fleet.mesh.triangles[tmask]], fleet.mesh.owner[tmask])

    def _sweeps(self, lidar_poses: np.ndarray, mesh: meshes.Mesh) -> list[Sweep]:
        """Every agent's sweep; agents with the same sensor are cast in one call."""
        p = self.preset
        groups = ([list(range(len(self.agents)))] if p.lidar == p.rsu_lidar else
                  [[i for i, a in enumerate(self.agents) if a.is_rsu == r] for r in (False, True)])
        sweeps: list[Sweep] = [None] * len(self.agents)   # type: ignore[list-item]
        for group in [g for g in groups if g]:
            is_rsu = self.agents[group[0]].is_rsu and p.lidar != p.rsu_lidar
            own_v = np.array([self.agents[i].vehicle for i in group])
            own_s = np.array([self.agents[i].static for i in group])
            out = scan(p.rsu_lidar if is_rsu else p.lidar, self.scene, mesh, lidar_poses[group], own_v, own_s,
                       self.rng, self._dirs[is_rsu])
            for i, sw in zip(group, out, strict=True):
                sweeps[i] = sw
        return sweeps

    def frames(self) -> Iterator[FrameRecord]:
        spec = self.preset.agents
        sizes = self.traffic.fleet.size
        for k in range(self.n_frames):
            if k:
                self.traffic.step(FRAME_DT)
            poses, speed = self.traffic.poses()
            lidar_poses = np.array([self._lidar_pose(a, poses) for a in self.agents])
            sweeps = self._sweeps(lidar_poses, self._vehicle_mesh(poses, lidar_poses))
            records = []
            for a, lp, sw in zip(self.agents, lidar_poses, sweeps, strict=True):
                if not a.is_rsu:   # nothing inside the own box (noise may push a ground point in)
                    near = np.flatnonzero(np.abs(sw.points[:, :2]).max(axis=1) < 5.0)   # 0.5 m + l/2
                    box = inside_boxes(sw.points[near], lp, poses[[a.vehicle]], sizes[[a.vehicle]], 0.0)
                    own = near[box[:, 0]]
                    keep = np.ones(len(sw.points), bool)
                    keep[own] = False
                    sw = Sweep(sw.points[keep], sw.vehicle[keep])
                # a vehicle counts as hit by points inside its label box (1 mm margin)
                on = np.flatnonzero(sw.vehicle >= 0)
                v = sw.vehicle[on]
                inside = inside_boxes(sw.points[on], lp, poses, sizes, 1e-3, which=v)
                vehicle = sw.vehicle.copy()
                vehicle[on[~inside]] = -1
                sw = Sweep(sw.points, vehicle)
                here = poses[a.vehicle] if not a.is_rsu else lp
                hit = np.unique(vehicle[vehicle >= 0])
                if spec.label_range is not None:
                    hit = hit[np.linalg.norm(poses[hit, :2] - here[:2], axis=1) <= spec.label_range]
                predicted = here.copy()
                if not a.is_rsu:
                    predicted[:2] += self.rng.normal(0.0, spec.gnss_noise[0], 2)
                    predicted[4] += self.rng.normal(0.0, spec.gnss_noise[1])
                    predicted[[3, 5]] = 0.0
                records.append(AgentFrame(a.agent_id, a.is_rsu, a.vehicle, lp, here.copy(), predicted,
                                          0.0 if a.is_rsu else float(speed[a.vehicle] * 3.6), sw, hit))
            yield FrameRecord(self.first_timestamp + TIMESTAMP_STEP * k, records, poses, speed * 3.6)


def inside_boxes(points: np.ndarray, lidar_pose: np.ndarray, poses: np.ndarray, sizes: np.ndarray,
                 margin: float, which: np.ndarray | None = None) -> np.ndarray:
    """Which sensor-frame points lie inside vehicle boxes (poses (K, 6) at the ground centre,
    sizes (K, 3) l, w, h), at least ``margin`` inside every face: ``(P, K)`` for all pairs, or
    ``(P,)`` for point i against box ``which[i]``."""
    m = x_to_world(lidar_pose)
    p = points[:, :3].astype(np.float64)
    # broadcasting, not BLAS: BLAS threads stall on a busy machine
    world = p[:, :1] * m[:3, 0] + p[:, 1:2] * m[:3, 1] + p[:, 2:3] * m[:3, 2] + m[:3, 3]
    box = x_to_world(poses)                                        # rigid: inverse is (R^T, -R^T t)
    rot_t = np.swapaxes(box[:, :3, :3], 1, 2)
    shift = -np.einsum("kij,kj->ki", rot_t, box[:, :3, 3])
    if which is not None:
        local = np.einsum("pij,pj->pi", rot_t[which], world) + shift[which]
        size = sizes[which]
        return (np.all(np.abs(local[:, :2]) <= size[:, :2] / 2 - margin, axis=1)
                & (local[:, 2] >= margin) & (local[:, 2] <= size[:, 2] - margin))
    local = np.einsum("kij,pj->pki", rot_t, world) + shift[None]
    return (np.all(np.abs(local[..., :2]) <= sizes[None, :, :2] / 2 - margin, axis=-1)
            & (local[..., 2] >= margin) & (local[..., 2] <= sizes[None, :, 2] - margin))
