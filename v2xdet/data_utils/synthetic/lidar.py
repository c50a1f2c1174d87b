"""A spinning LiDAR as CARLA's ``sensor.lidar.ray_cast`` models it, cast with open3d.

CARLA (``RayCastSemanticLidar`` / ``RayCastLidar``) shoots ``channels`` lasers at elevations
spaced evenly from ``upper_fov`` down to ``lower_fov`` and, per sweep, ``round(points_per_second
/ rotation_frequency / channels)`` azimuths per laser starting at -180 degrees; a ray returns the
first surface within ``range``. Then, per ray and in this order:

* general drop-off: a ray is discarded before casting with probability ``dropoff_general_rate``;
* intensity ``exp(-atmosphere_attenuation_rate * distance)``;
* noise: the point moves along its ray by ``N(0, noise_stddev)``;
* intensity drop-off: a point with intensity above ``dropoff_intensity_limit`` is kept; below it,
  kept with probability ``alpha * intensity + beta`` where ``beta = 1 - dropoff_zero_intensity``
  and ``alpha = dropoff_zero_intensity / dropoff_intensity_limit``.

Points are in the sensor frame with CARLA's axes (x forward, y right, z up: the left-handed
frame that ``x_to_world`` maps into the CARLA world), so ``transform_points(points,
x_to_world(lidar_pose))`` puts them where they were hit. Hits on the agent's own body give no
point (the body hides what is behind it; real data crops them anyway).

All agents of a frame are cast in one ``RaycastingScene.cast_rays`` call against one scene
(static town + the vehicles at that instant). The hit's geometry and primitive ids say exactly
which vehicle a point came from, which is how labels are decided.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import open3d as o3d

from v2xdet.geometry.transforms import x_to_world

from . import meshes


@dataclass(frozen=True)
class LidarSpec:
    """The LiDAR section of V2XSet's ``data_protocol.yaml`` (CARLA attribute names)."""

    channels: int = 64
    upper_fov: float = 2.0
    lower_fov: float = -25.0
    points_per_second: int = 1_300_000
    rotation_frequency: float = 20.0
    range: float = 120.0
    noise_stddev: float = 0.02
    dropoff_general_rate: float = 0.1
    dropoff_intensity_limit: float = 0.7
    dropoff_zero_intensity: float = 0.15
    atmosphere_attenuation_rate: float = 0.004
    incidence_intensity: bool = False   # not CARLA: also scale intensity by |cos(incidence)|

    def validate(self) -> None:
        if int(self.channels) < 1:
            raise ValueError(f"lidar.channels must be >= 1, got {self.channels}")
        if not self.lower_fov < self.upper_fov or not -90 <= self.lower_fov or not self.upper_fov <= 90:
            raise ValueError(f"lidar fov must satisfy -90 <= lower_fov < upper_fov <= 90, got "
                             f"lower_fov={self.lower_fov}, upper_fov={self.upper_fov}")
        if self.points_per_channel < 1:
            raise ValueError(f"lidar.points_per_second={self.points_per_second} is too low for "
                             f"{self.channels} channels at {self.rotation_frequency} Hz (no ray per channel)")
        for name in ("range", "rotation_frequency"):
            if not getattr(self, name) > 0:
                raise ValueError(f"lidar.{name} must be positive, got {getattr(self, name)}")
        for name in ("dropoff_general_rate", "dropoff_intensity_limit", "dropoff_zero_intensity"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"lidar.{name} must be in [0, 1], got {getattr(self, name)}")
        if self.noise_stddev < 0 or self.atmosphere_attenuation_rate < 0:
            raise ValueError("lidar.noise_stddev and lidar.atmosphere_attenuation_rate must be >= 0")

    @property
    def points_per_channel(self) -> int:
        """Azimuth steps per laser in one sweep (CARLA rounds half away from zero)."""
        return int(np.floor(self.points_per_second / self.rotation_frequency / self.channels + 0.5))

    @property
    def rays_per_sweep(self) -> int:
        return self.points_per_channel * int(self.channels)

    def protocol(self) -> dict:
        """The ``lidar`` entry of ``data_protocol.yaml``."""
        d = asdict(self)
        d.pop("incidence_intensity")
        d["channels"] = int(d["channels"])
        d["points_per_second"] = int(d["points_per_second"])
        return d


def ray_directions(spec: LidarSpec) -> np.ndarray:
    """(channels * points_per_channel, 3) unit directions in the sensor frame, channel-major
    (channel 0 = ``upper_fov``), azimuth from -180 degrees increasing (toward +y)."""
    ch = int(spec.channels)
    elev = np.radians(spec.upper_fov - np.arange(ch) * ((spec.upper_fov - spec.lower_fov) / max(ch - 1, 1)))
    n_az = spec.points_per_channel
    azim = np.radians(np.arange(n_az) * (360.0 / n_az) - 180.0)
    ce, se = np.cos(elev)[:, None], np.sin(elev)[:, None]
    d = np.stack([ce * np.cos(azim)[None], ce * np.sin(azim)[None], np.broadcast_to(se, (ch, n_az))], -1)
    return d.reshape(-1, 3)


@dataclass
class Sweep:
    """One agent's sweep: points in its sensor frame and what each point hit."""

    points: np.ndarray       # (N, 4) float32 x, y, z, intensity
    vehicle: np.ndarray      # (N,) int64 index of the vehicle hit, -1 for the static world


class LidarScene:
    """The static town (kept) plus the vehicles of one instant, cast together.

    Vertices are shifted by ``origin`` before going to float32 so that precision does not
    depend on where the town lies in the world. ``nthreads`` bounds open3d's casting threads
    (0: all cores).
    """

    def __init__(self, static: meshes.Mesh, static_owner_kind: np.ndarray, origin: np.ndarray,
                 nthreads: int = 0):
        self.nthreads = int(nthreads)
        self.origin = np.asarray(origin, np.float64)
        self._static_v = (static.vertices - self.origin).astype(np.float32)
        self._static_t = static.triangles.astype(np.uint32)
        self.static_owner = static.owner
        self.static_kind = static_owner_kind

    def cast(self, vehicles: meshes.Mesh, origins: np.ndarray, directions: np.ndarray):
        """Cast rays (world origins (R, 3), unit directions (R, 3)).

        Returns ``t`` (R,) float32 distance (inf: no hit), ``kind`` (R,) uint8 (0 nothing,
        1 static, 2 vehicle), ``prim`` (R,) the primitive id within that geometry and, with
        ``normals=True`` in the spec, ``normal`` (R, 3).
        """
        scene = o3d.t.geometry.RaycastingScene()
        sid = scene.add_triangles(o3d.core.Tensor(self._static_v), o3d.core.Tensor(self._static_t))
        vid = -1
        if vehicles.n_triangles:
            vid = scene.add_triangles(o3d.core.Tensor((vehicles.vertices - self.origin).astype(np.float32)),
                                      o3d.core.Tensor(vehicles.triangles.astype(np.uint32)))
        rays = np.empty((len(origins), 6), np.float32)
        rays[:, :3] = origins - self.origin
        rays[:, 3:] = directions
        ans = scene.cast_rays(o3d.core.Tensor(rays), nthreads=self.nthreads)
        geom = ans["geometry_ids"].numpy()
        kind = np.zeros(len(rays), np.uint8)
        kind[geom == sid] = 1
        kind[geom == vid] = 2
        return {"t": ans["t_hit"].numpy(), "kind": kind, "prim": ans["primitive_ids"].numpy(),
                "normal": ans["primitive_normals"].numpy()}


def scan(spec: LidarSpec, scene: LidarScene, vehicles: meshes.Mesh, sensor_poses: np.ndarray,
         own_vehicle: np.ndarray, own_static: np.ndarray, rng: np.random.Generator,
         directions: np.ndarray | None = None) -> list[Sweep]:
    """One sweep per sensor pose (A, 6), all cast in one call; CARLA's noise and drop-off.

    ``own_vehicle`` / ``own_static`` (A,) name each agent's own body (vehicle owner index or
    static object index, -1 for none): rays that hit it give no point.
    """
    if directions is None:
        directions = ray_directions(spec)
    directions = np.asarray(directions, np.float32)
    mats = x_to_world(np.asarray(sensor_poses, np.float64).reshape(-1, 6))
    n_agents = mats.shape[0]
    keep_rays = [np.flatnonzero(rng.random(len(directions)) >= spec.dropoff_general_rate)
                 for _ in range(n_agents)]
    counts = np.array([len(k) for k in keep_rays])
    local = np.take(directions, np.concatenate(keep_rays), axis=0)
    # rotate into the world per agent, by broadcasting (BLAS threads stall on a busy machine)
    world_dirs = np.empty_like(local)
    bounds = np.r_[0, np.cumsum(counts)]
    for a in range(n_agents):
        rot = mats[a, :3, :3].astype(np.float32)
        d = local[bounds[a]:bounds[a + 1]]
        world_dirs[bounds[a]:bounds[a + 1]] = (d[:, :1] * rot[:, 0] + d[:, 1:2] * rot[:, 1]
                                               + d[:, 2:3] * rot[:, 2])
    agent = np.repeat(np.arange(n_agents), counts)
    hits = scene.cast(vehicles, np.repeat(mats[:, :3, 3], counts, axis=0), world_dirs)
    t, kind, prim = hits["t"], hits["kind"], hits["prim"]
    valid = t <= spec.range   # inf (no hit) fails too
    # no point from the agent's own body
    on_vehicle = np.flatnonzero(valid & (kind == 2))
    vehicle_of = np.full(len(t), -1, np.int64)
    vehicle_of[on_vehicle] = vehicles.owner[prim[on_vehicle]]
    valid &= ~((vehicle_of >= 0) & (vehicle_of == own_vehicle[agent]))
    if (own_static >= 0).any():
        on_static = np.flatnonzero(valid & (kind == 1) & (own_static[agent] >= 0))
        mine = scene.static_owner[prim[on_static]] == own_static[agent[on_static]]
        valid[on_static[mine]] = False
    idx = np.flatnonzero(valid)
    dist = t[idx]
    intensity = np.exp(-spec.atmosphere_attenuation_rate * dist)
    if spec.incidence_intensity:
        intensity = intensity * np.abs(np.einsum("ij,ij->i", hits["normal"][idx], world_dirs[idx]))
    noisy = dist
    if spec.noise_stddev > 0:
        noisy = dist + rng.normal(0.0, spec.noise_stddev, dist.shape).astype(np.float32)
    keep = intensity > spec.dropoff_intensity_limit
    alpha = spec.dropoff_zero_intensity / max(spec.dropoff_intensity_limit, 1e-12)
    beta = 1.0 - spec.dropoff_zero_intensity
    keep |= rng.random(dist.shape) < alpha * intensity + beta
    keep &= (noisy > 0) & (noisy <= spec.range)
    idx, noisy, intensity = idx[keep], noisy[keep], intensity[keep]
    pts = np.empty((len(idx), 4), np.float32)
    pts[:, :3] = local[idx] * noisy[:, None]
    pts[:, 3] = intensity
    ends = np.searchsorted(agent[idx], np.arange(n_agents + 1))
    hit_vehicle = vehicle_of[idx]
    return [Sweep(pts[ends[a]:ends[a + 1]], hit_vehicle[ends[a]:ends[a + 1]]) for a in range(n_agents)]
