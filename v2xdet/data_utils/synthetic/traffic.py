"""Vehicles of the simulated world: sizes and bodies, parked cars, and traffic that drives.

Moving vehicles follow routes through the town's lanes and junction connectors. Every step
updates all of them at once with the Intelligent Driver Model (IDM): the obstacle ahead of a
vehicle is the nearest of (a) the vehicle in front on its own segment or on the next two
segments of its route, (b) the stop line of a red (or, when it can still stop, amber) signal
and (c) the end of its route; its desired speed drops before curves (lateral acceleration
limit). Positions are arc lengths along pre-sampled routes, so one step is a handful of array
operations whatever the number of vehicles, and consecutive frames move every vehicle by
exactly what its speed integrates to.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import meshes
from . import polylines as pl
from .town import Town

ROUTE_STEP = 0.5   # metres between route samples


@dataclass(frozen=True)
class VehicleType:
    style: str                       # body style of meshes.VEHICLE_STYLES
    length: tuple[float, float]
    width: tuple[float, float]
    height: tuple[float, float]
    wheel_radius: float
    speed_factor: float              # desired speed relative to the driver's base speed


VEHICLE_TYPES: dict[str, VehicleType] = {
    "compact": VehicleType("car", (3.5, 4.1), (1.70, 1.85), (1.40, 1.58), 0.30, 1.0),
    "sedan": VehicleType("car", (4.3, 5.0), (1.80, 2.00), (1.38, 1.52), 0.33, 1.0),
    "suv": VehicleType("suv", (4.4, 5.0), (1.88, 2.08), (1.62, 1.85), 0.37, 1.0),
    "pickup": VehicleType("pickup", (5.1, 5.9), (1.90, 2.08), (1.78, 1.98), 0.40, 0.95),
    "van": VehicleType("van", (4.9, 6.2), (1.90, 2.10), (1.95, 2.60), 0.35, 0.9),
    "truck": VehicleType("truck", (6.5, 8.0), (2.25, 2.55), (2.90, 3.50), 0.48, 0.8),
}
TYPE_NAMES = tuple(VEHICLE_TYPES)
CAV_TYPES = ("compact", "sedan", "suv")   # connected vehicles carry a roof LiDAR


@dataclass(frozen=True)
class TrafficSpec:
    """Traffic density, vehicle mix and driver behaviour."""

    mean_gap: float = 22.0                 # mean free gap between spawned moving vehicles (m)
    moving_mix: tuple[float, ...] = (0.20, 0.35, 0.20, 0.08, 0.10, 0.07)   # per TYPE_NAMES
    parked_mix: tuple[float, ...] = (0.25, 0.40, 0.22, 0.06, 0.07, 0.0)
    speed_kmh: tuple[float, float] = (30.0, 60.0)   # drivers' desired speeds
    accel: tuple[float, float] = (1.2, 2.5)         # IDM maximum acceleration (m/s^2)
    decel: tuple[float, float] = (2.0, 3.5)         # IDM comfortable deceleration (m/s^2)
    headway: tuple[float, float] = (1.0, 1.8)       # IDM time headway (s)
    min_gap: float = 2.0                            # IDM standstill gap (m)
    lateral_accel: float = 2.5                      # speed limit in curves (m/s^2)
    lane_wander: float = 0.15                       # std of each driver's offset from the lane centre (m)
    turn_weights: tuple[float, float, float] = (0.6, 0.2, 0.2)   # straight, right, left
    warmup_s: float = 8.0                           # simulated before the first frame

    def validate(self) -> None:
        for name in ("moving_mix", "parked_mix"):
            mix = np.asarray(getattr(self, name), float)
            if mix.shape != (len(TYPE_NAMES),) or (mix < 0).any() or mix.sum() <= 0:
                raise ValueError(f"traffic.{name} must be {len(TYPE_NAMES)} non-negative weights for "
                                 f"{TYPE_NAMES}, got {getattr(self, name)}")
        if self.mean_gap <= 0:
            raise ValueError(f"traffic.mean_gap must be positive, got {self.mean_gap}")
        for name in ("speed_kmh", "accel", "decel", "headway"):
            lo, hi = getattr(self, name)
            if not 0 < lo <= hi:
                raise ValueError(f"traffic.{name} must be a range 0 < low <= high, got {(lo, hi)}")
        if self.warmup_s < 0:
            raise ValueError(f"traffic.warmup_s must be >= 0, got {self.warmup_s}")


@dataclass
class Fleet:
    """Sizes, bodies and ids of all vehicles (parked first, then moving)."""

    ids: np.ndarray          # (N,) int
    types: np.ndarray        # (N,) index into TYPE_NAMES
    size: np.ndarray         # (N, 3) length, width, height
    moving: np.ndarray       # (N,) bool
    mesh: meshes.Mesh        # bodies in their own frames, owner = vehicle index
    vertex_owner: np.ndarray


def sample_sizes(rng: np.random.Generator, types: np.ndarray, max_length: float = np.inf) -> np.ndarray:
    """(N, 3) length, width, height drawn within each type's range."""
    lo = np.array([[t.length[0], t.width[0], t.height[0]] for t in VEHICLE_TYPES.values()])
    hi = np.array([[t.length[1], t.width[1], t.height[1]] for t in VEHICLE_TYPES.values()])
    size = rng.uniform(lo[types], hi[types])
    size[:, 0] = np.minimum(size[:, 0], max_length)
    return size


def build_bodies(types: np.ndarray, size: np.ndarray) -> meshes.Mesh:
    """One body mesh per vehicle (owner = its index)."""
    vts = [VEHICLE_TYPES[TYPE_NAMES[t]] for t in types]
    return meshes.vehicle_meshes(np.array([v.style for v in vts]), size,
                                 np.array([v.wheel_radius for v in vts]))


# ----------------------------------------------------------------------------------------------
# routes
# ----------------------------------------------------------------------------------------------

def _choose_next(seg, segments, rng, weights) -> int | None:
    if not seg.next:
        return None
    if len(seg.next) == 1:
        return seg.next[0]
    w = np.array([weights[("straight", "right", "left").index(segments[n].turn or "straight")]
                  for n in seg.next])
    return int(seg.next[rng.choice(len(w), p=w / w.sum())])


def _route(first: int, need: float, town: Town, rng, weights) -> list[int]:
    route, total = [first], town.segments[first].length
    while total < need:
        nxt = _choose_next(town.segments[route[-1]], town.segments, rng, weights)
        if nxt is None:
            break
        route.append(nxt)
        total += town.segments[nxt].length
    return route


def _running_min_ahead(x: np.ndarray, window: int) -> np.ndarray:
    """min(x[i : i + window]) along the last axis (by doubling shifts)."""
    out = x.copy()
    span = 1
    while span < window:
        shift = min(span, window - span)
        shifted = np.concatenate([out[..., shift:], np.repeat(out[..., -1:], shift, axis=-1)], axis=-1)
        out = np.minimum(out, shifted)
        span += shift
    return out


@dataclass
class Routes:
    xy: np.ndarray           # (V, M, 2) samples every ROUTE_STEP metres, padded with the last one
    tangent: np.ndarray      # (V, M, 2) unit tangents
    length: np.ndarray       # (V,)
    vmax: np.ndarray         # (V, M) curve speed limit looking 30 m ahead (m/s)
    seg: np.ndarray          # (V, K) segment ids along the route, padded with -1
    seg_start: np.ndarray    # (V, K) arc length where each segment starts, padded with +inf


def build_routes(town: Town, seg_lists: list[list[int]], lateral_accel: float) -> Routes:
    seg_len = np.array([sg.length for sg in town.segments])
    polys, k_max = [], max(len(r) for r in seg_lists)
    seg = np.full((len(seg_lists), k_max), -1, np.int64)
    seg_start = np.full((len(seg_lists), k_max), np.inf)
    for v, ids in enumerate(seg_lists):
        seg[v, :len(ids)] = ids
        seg_start[v, :len(ids)] = np.concatenate([[0.0], np.cumsum(seg_len[ids])[:-1]])
        pieces = [town.segments[ids[0]].poly] + [town.segments[i].poly[1:] for i in ids[1:]]
        polys.append(np.concatenate(pieces))
    length = np.array([pl.arc_length(p)[-1] for p in polys])
    m = int(np.ceil(length.max() / ROUTE_STEP)) + 1
    xy = np.empty((len(polys), m, 2))
    for v, p in enumerate(polys):
        s = pl.arc_length(p)
        t = np.minimum(np.arange(m) * ROUTE_STEP, s[-1])
        xy[v, :, 0] = np.interp(t, s, p[:, 0])
        xy[v, :, 1] = np.interp(t, s, p[:, 1])
    d = np.gradient(xy, axis=1)
    norm = np.linalg.norm(d, axis=-1, keepdims=True)
    tangent = np.where(norm > 1e-9, d / np.maximum(norm, 1e-12), np.array([1.0, 0.0]))
    # tangents of the padded tail repeat the last real one
    last = np.minimum((length / ROUTE_STEP).astype(int) - 1, m - 1)
    tail = np.arange(m)[None] > last[:, None]
    tangent = np.where(tail[..., None], tangent[np.arange(len(polys)), last][:, None], tangent)
    heading = np.unwrap(np.arctan2(tangent[..., 1], tangent[..., 0]), axis=1)
    curvature = np.abs(np.gradient(heading, ROUTE_STEP, axis=1))
    curvature = _running_min_ahead(-_running_min_ahead(-curvature, 4), 1)   # small max filter
    vcurve = np.sqrt(lateral_accel / np.maximum(curvature, 1e-4))
    vmax = _running_min_ahead(vcurve, int(30.0 / ROUTE_STEP))
    return Routes(xy, tangent, length, vmax, seg, seg_start)


# ----------------------------------------------------------------------------------------------
# simulation
# ----------------------------------------------------------------------------------------------

class Traffic:
    """All vehicles of one scenario; ``step(dt)`` advances the moving ones."""

    def __init__(self, town: Town, spec: TrafficSpec, rng: np.random.Generator, duration_s: float,
                 spawn_half: float):
        spec.validate()
        self.town, self.spec, self.time = town, spec, 0.0
        v_top = spec.speed_kmh[1] / 3.6
        need = v_top * 1.1 * (spec.warmup_s + duration_s) + 80.0
        starts, offsets = self._spawn_moving(rng, spawn_half)
        n_mov = len(starts)
        mov_types = rng.choice(len(TYPE_NAMES), n_mov, p=_norm(spec.moving_mix))
        n_park = len(town.parking)
        park_types = rng.choice(len(TYPE_NAMES), n_park, p=_norm(spec.parked_mix))
        types = np.concatenate([park_types, mov_types]).astype(np.int64)
        size = np.concatenate([sample_sizes(rng, park_types, max_length=5.6), sample_sizes(rng, mov_types)])
        first_id = int(rng.integers(200, 8000))
        ids = first_id + np.arange(len(types))
        bodies = build_bodies(types, size)
        self.fleet = Fleet(ids, types, size, np.r_[np.zeros(n_park, bool), np.ones(n_mov, bool)],
                           bodies, meshes.vertex_owner(bodies))
        # parked: fixed poses with small jitter
        self.parked_xy = town.parking[:, :2] + rng.normal(0, 0.05, (n_park, 2))
        self.parked_yaw = town.parking[:, 2] + np.radians(rng.normal(0, 1.0, n_park))
        # moving: routes and driver parameters
        seg_lists = [_route(s, need + o, town, rng, spec.turn_weights)
                     for s, o in zip(starts, offsets, strict=True)]
        self.routes = build_routes(town, seg_lists, spec.lateral_accel)
        mov_size = size[n_park:]
        factor = np.array([VEHICLE_TYPES[TYPE_NAMES[t]].speed_factor for t in mov_types])
        self.v0 = rng.uniform(*spec.speed_kmh, n_mov) / 3.6 * factor
        self.a = rng.uniform(*spec.accel, n_mov)
        self.b = rng.uniform(*spec.decel, n_mov)
        self.headway = rng.uniform(*spec.headway, n_mov)
        self.half_len = mov_size[:, 0] / 2
        # drivers keep off the lane centre a little, never closer than 0.15 m to the lane edge
        room = np.clip(1.6 - mov_size[:, 1] / 2, 0.0, 0.3)
        self.lateral = np.clip(rng.normal(0, spec.lane_wander, n_mov), -room, room)
        self.s = np.asarray(offsets, float)
        to_end = self.seg_len_of(starts) - self.s - self.half_len - 1.0
        self.v = np.minimum(self.v0 * rng.uniform(0.5, 1.0, n_mov), np.sqrt(2 * 2.0 * np.maximum(to_end, 0)))
        self._segment_tables()
        for _ in range(int(round(spec.warmup_s / 0.1))):   # queues form, spawn artefacts settle
            self.step(0.1)

    def seg_len_of(self, seg_ids) -> np.ndarray:
        return np.array([self.town.segments[i].length for i in seg_ids], float).reshape(-1)

    # -- spawning --------------------------------------------------------------------------
    def _spawn_moving(self, rng, spawn_half: float) -> tuple[list[int], list[float]]:
        """Vehicles along every lane inside the spawn square, with random gaps."""
        starts, offsets = [], []
        for i, sg in enumerate(self.town.segments):
            if sg.is_connector or not sg.next:
                continue
            s = pl.arc_length(sg.poly)
            pos = rng.uniform(3.0, 3.0 + self.spec.mean_gap)
            while pos < s[-1] - 3.0:
                xy = np.array([np.interp(pos, s, sg.poly[:, 0]), np.interp(pos, s, sg.poly[:, 1])])
                if np.all(np.abs(self.town.to_local(xy)) <= spawn_half):
                    starts.append(i)
                    offsets.append(pos)
                pos += 9.0 + self.spec.min_gap + rng.exponential(self.spec.mean_gap)
        return starts, offsets

    def _segment_tables(self) -> None:
        segs = self.town.segments
        self.seg_len = np.array([sg.length for sg in segs])
        n = len(segs)
        self.sig_cycle = np.ones(n)
        self.sig_green = np.zeros((n, 2))     # green from, green until (phase seconds)
        self.sig_amber_end = np.zeros(n)
        self.sig_offset = np.zeros(n)
        self.signalized = np.zeros(n, bool)
        self.seg_node = np.array([sg.node_start for sg in segs], np.int64)
        self.conn_src = np.full(n, -1, np.int64)     # connectors: the lane they leave
        for i, sg in enumerate(segs):
            for c in sg.next if not sg.is_connector else ():
                self.conn_src[c] = i
        self.seg_phase = np.array([sg.phase for sg in segs], np.int64)
        self.n_phases = max([len(sig.phases) for sig in self.town.signals.values()] + [1])
        for i, sg in enumerate(segs):
            if not sg.is_connector or sg.phase < 0:
                continue
            sig = self.town.signals[sg.node_start]
            slot = sig.green + sig.amber + sig.all_red
            begin = float(np.concatenate([[0.0], np.cumsum(slot)])[sg.phase])
            self.signalized[i] = True
            self.sig_cycle[i] = float(slot.sum())
            self.sig_green[i] = (begin, begin + sig.green[sg.phase])
            self.sig_amber_end[i] = begin + sig.green[sg.phase] + sig.amber
            self.sig_offset[i] = sig.offset
        # Permitted left turns: a left connector yields to the opposing approach's straight and
        # right-turn traffic. Keys number the (junction, incoming road) approaches.
        keys: dict[tuple[int, int], int] = {}
        for sg in segs:
            if sg.is_connector and sg.phase >= 0:
                keys.setdefault((sg.node_start, sg.approach), len(keys))
        self.n_keys = len(keys)
        self.lane_key = np.full(n, -1, np.int64)    # lanes: the approach they feed
        self.threat_key = np.full(n, -1, np.int64)  # straight / right connectors: their approach
        self.yield_key = np.full(n, -1, np.int64)   # left connectors: the approach they yield to
        for i, sg in enumerate(segs):
            if not sg.is_connector:
                self.lane_key[i] = keys.get((sg.node_end, sg.road), -1)
            elif sg.phase >= 0 and sg.turn != "left":
                self.threat_key[i] = keys[(sg.node_start, sg.approach)]
            elif sg.phase >= 0:
                opp = self.town.signals[sg.node_start].opposite.get(sg.approach)
                self.yield_key[i] = keys[(sg.node_start, opp)] if opp is not None else -1

    def signal_state(self, seg: np.ndarray, t: float) -> np.ndarray:
        """0 red, 1 amber, 2 green (always green where there is no signal)."""
        phase = (t + self.sig_offset[seg]) % self.sig_cycle[seg]
        green = (phase >= self.sig_green[seg, 0]) & (phase < self.sig_green[seg, 1])
        amber = (phase >= self.sig_green[seg, 1]) & (phase < self.sig_amber_end[seg])
        state = np.where(green, 2, np.where(amber, 1, 0))
        return np.where(self.signalized[seg], state, 2)

    # -- one step --------------------------------------------------------------------------
    def _obstacles(self) -> tuple[np.ndarray, np.ndarray]:
        """Gap (bumper to obstacle, m) and obstacle speed for every moving vehicle."""
        r, s, n = self.routes, self.s, len(self.s)
        j = np.maximum((r.seg_start <= s[:, None]).sum(1) - 1, 0)
        rows = np.arange(n)
        seg = r.seg[rows, j]
        off = s - r.seg_start[rows, j]
        gap = np.full(n, np.inf)
        vlead = np.zeros(n)
        # (a) leader on the same segment
        order = np.lexsort((off, seg))
        same = seg[order[1:]] == seg[order[:-1]]
        me, lead = order[:-1][same], order[1:][same]
        gap[me] = off[lead] - off[me] - self.half_len[me] - self.half_len[lead]
        vlead[me] = self.v[lead]
        # (b) the rearmost vehicle of the next two segments of the route; entering a junction,
        # the rearmost vehicle on any connector leaving the same lane (they share their start)
        n_seg = len(self.seg_len)
        first = _rearmost(seg, off, n_seg)
        src = self.conn_src[seg]
        first_src = _rearmost(np.where(src >= 0, src, n_seg), off, n_seg + 1)
        ahead = self.seg_len[seg] - off
        for step in (1, 2):
            jn = np.minimum(j + step, r.seg.shape[1] - 1)
            nxt = np.where(j + step < r.seg.shape[1], r.seg[rows, jn], -1)
            nxt0 = np.maximum(nxt, 0)
            by_src = (step == 1) & (self.conn_src[nxt0] >= 0)
            cand = np.where(by_src, first_src[np.maximum(self.conn_src[nxt0], 0)], first[nxt0])
            cand = np.where(nxt >= 0, cand, -1)
            todo = np.isinf(gap) & (cand >= 0)
            c = cand[todo]
            gap[todo] = ahead[todo] + off[c] - self.half_len[todo] - self.half_len[c]
            vlead[todo] = self.v[c]
            ahead = ahead + np.where(nxt >= 0, self.seg_len[nxt0], np.inf)
        # (c) stop line of a red / amber signal at the end of a lane
        jn = np.minimum(j + 1, r.seg.shape[1] - 1)
        nxt = np.where(j + 1 < r.seg.shape[1], r.seg[rows, jn], -1)
        nxt0 = np.maximum(nxt, 0)
        state = np.where(nxt >= 0, self.signal_state(nxt0, self.time), 2)
        to_line = self.seg_len[seg] - off - self.half_len - 1.0
        # A permitted left turn waits while opposing straight / right traffic is in the junction
        # or will reach it within 6 s; at amber it may still clear the junction from the line.
        busy = np.zeros(self.n_keys + 1, bool)
        busy[self.threat_key[seg][self.threat_key[seg] >= 0]] = True
        coming = ((self.lane_key[seg] >= 0) & (nxt >= 0) & (self.threat_key[nxt0] >= 0) & (state > 0)
                  & (to_line < np.maximum(8.0, 6.0 * self.v)))
        busy[self.lane_key[seg][coming]] = True
        left = (nxt >= 0) & (self.yield_key[nxt0] >= 0)
        blocked = left & busy[np.where(left, self.yield_key[nxt0], self.n_keys)]
        state = np.where(blocked & (state > 0), 0, state)
        state = np.where(left & ~blocked & (state == 1) & (to_line < 3.0), 2, state)
        # A left turn already in the junction has claimed it: opposing traffic waits if it can.
        claimed = np.zeros(self.n_keys + 1, bool)
        claimed[self.yield_key[seg][self.yield_key[seg] >= 0]] = True
        threat = (nxt >= 0) & (self.threat_key[nxt0] >= 0)
        state = np.where(threat & claimed[np.where(threat, self.threat_key[nxt0], self.n_keys)], 0, state)
        # Nobody enters a junction still occupied by vehicles released by another phase (a
        # slow vehicle that entered at the end of amber clears it first).
        occupied = np.zeros((len(self.town.nodes), self.n_phases), bool)
        on_sig = self.signalized[seg]
        occupied[self.seg_node[seg[on_sig]], self.seg_phase[seg[on_sig]]] = True
        entering = (nxt >= 0) & self.signalized[nxt0]
        node_n, phase_n = self.seg_node[nxt0], np.maximum(self.seg_phase[nxt0], 0)
        others = occupied[node_n].sum(1) - occupied[node_n, phase_n] > 0
        state = np.where(entering & others, 0, state)
        # Stop for red unless even a hard stop (6 m/s^2) is impossible; for amber only when a
        # comfortable stop is possible. A vehicle whose front is past the line keeps going.
        hard_ok = to_line > self.v ** 2 / (2 * 6.0) - 0.5
        comfy_ok = to_line > self.v ** 2 / (2 * self.b) - 0.5
        stop = ((state == 0) & hard_ok) | ((state == 1) & comfy_ok)
        stop &= to_line > -0.5
        line_gap = np.where(stop, np.maximum(to_line, 0.0), np.inf)
        # (d) end of the route
        end_gap = r.length - s - self.half_len
        for g in (line_gap, end_gap):
            closer = g < gap
            gap = np.where(closer, g, gap)
            vlead = np.where(closer, 0.0, vlead)
        return gap, vlead

    def step(self, dt: float) -> None:
        """Advance every moving vehicle by ``dt`` seconds (IDM, ballistic update)."""
        gap, vlead = self._obstacles()
        idx = np.minimum((self.s / ROUTE_STEP).astype(np.int64), self.routes.vmax.shape[1] - 1)
        v0 = np.minimum(self.v0, self.routes.vmax[np.arange(len(self.s)), idx])
        v = self.v
        s_star = self.spec.min_gap + np.maximum(
            0.0, v * self.headway + v * (v - vlead) / (2 * np.sqrt(self.a * self.b)))
        interaction = (s_star / np.maximum(gap, 0.1)) ** 2
        acc = self.a * (1 - (v / np.maximum(v0, 0.1)) ** 4 - np.where(np.isinf(gap), 0.0, interaction))
        acc = np.clip(acc, -9.0, self.a)
        v_new = np.maximum(v + acc * dt, 0.0)
        ds = 0.5 * (v + v_new) * dt
        clamped = ds > gap - 0.2          # never drive into the obstacle
        ds = np.where(clamped, np.maximum(gap - 0.2, 0.0), ds)
        self.v = np.where(clamped, np.maximum(2 * ds / dt - v, 0.0), v_new)
        self.s = self.s + ds
        self.time += dt

    # -- poses -----------------------------------------------------------------------------
    def poses(self) -> tuple[np.ndarray, np.ndarray]:
        """World poses (N, 6) ``[x, y, z, roll, yaw, pitch]`` (degrees) and speeds (N,) in m/s."""
        r = self.routes
        n = len(self.s)
        pos = np.minimum(self.s / ROUTE_STEP, r.xy.shape[1] - 1.0)
        i0 = np.minimum(pos.astype(np.int64), r.xy.shape[1] - 2)
        f = (pos - i0)[:, None]
        rows = np.arange(n)
        xy = r.xy[rows, i0] * (1 - f) + r.xy[rows, i0 + 1] * f
        tan = r.tangent[rows, i0] * (1 - f) + r.tangent[rows, i0 + 1] * f
        yaw = np.arctan2(tan[:, 1], tan[:, 0])
        xy = xy + self.lateral[:, None] * np.stack([-np.sin(yaw), np.cos(yaw)], axis=1)
        all_xy = np.concatenate([self.parked_xy, xy])
        all_yaw = np.concatenate([self.parked_yaw, yaw])
        z = np.zeros(len(all_yaw))
        poses = np.stack([all_xy[:, 0], all_xy[:, 1], z, z, np.degrees(pl.wrap_angle(all_yaw)), z], axis=1)
        speed = np.concatenate([np.zeros(len(self.parked_xy)), self.v])
        return poses, speed


def _rearmost(groups: np.ndarray, off: np.ndarray, n_groups: int) -> np.ndarray:
    """Per group, the index of the member with the smallest offset (-1 for empty groups)."""
    order = np.lexsort((off, groups))
    first = np.full(n_groups, -1, np.int64)
    if order.size:
        is_first = np.r_[True, groups[order[1:]] != groups[order[:-1]]]
        first[groups[order[is_first]]] = order[is_first]
    return first


def _norm(w) -> np.ndarray:
    w = np.asarray(w, float)
    return w / w.sum()
