"""A local piece of town: road graph, lanes, junctions with signals, buildings and street clutter.

The road network is a jittered grid whose edges are thinned (T-junctions, bends, mid-block
nodes) and sometimes bent into curves; each road has one or two lanes per direction (right-hand
traffic), optional parking strips and raised sidewalks. Drivable geometry is a set of
*segments*: lanes between junctions and *connectors* (smooth curves) inside junctions, with the
turn rules of a real intersection (right turns from the curb lane, left turns from the inner
lane). Junctions of three or more roads get two-phase traffic signals: opposing approaches share
a phase (straight and right turns protected, left turns permitted when the opposing approach is
clear, see ``traffic``) and an approach without an opposite one (the stem of a T) gets a phase
of its own; queues form at red lights.

Blocks are filled with buildings placed along the frontages (some adjacent, some with gaps and
walls), parking lots, street lights, trees and signal poles; the corner buildings are what
hides cross traffic from a vehicle approaching a junction. Every static object becomes
triangles in :attr:`Town.static` (the ground plane included), tagged with its kind.

Everything is generated directly in world coordinates: the grid is rotated and shifted by a
random rigid transform, so poses in the written files are not all axis-aligned at the origin.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np
import shapely

from . import meshes
from . import polylines as pl

STATIC_KINDS = ("ground", "curb", "building", "wall", "pole", "tree", "signal", "rsu_pole")


@dataclass(frozen=True)
class TownSpec:
    """Parameters of the generated town (lengths in metres)."""

    area_half: float = 160.0              # buildings fill the square |x|, |y| <= area_half (local)
    block_length: tuple[float, float] = (70.0, 130.0)
    node_jitter: float = 4.0
    edge_drop_prob: float = 0.22          # thinning of the grid: T-junctions, bends
    curve_prob: float = 0.25              # a road bent into a curve
    curve_bulge: tuple[float, float] = (0.08, 0.18)  # bend of a curved road, fraction of its length
    arterial_prob: float = 0.45           # a grid line with two lanes per direction
    median_width: tuple[float, float] = (0.0, 2.0)
    parking_prob: float = 0.45            # a road side with a parking strip
    parking_occupancy: float = 0.65
    sidewalk: tuple[float, float] = (2.0, 4.0)
    corner_margin: float = 3.5            # junction radius beyond the widest road's half width
    building_setback: tuple[float, float] = (0.0, 2.5)
    building_frontage: tuple[float, float] = (10.0, 32.0)
    building_depth: tuple[float, float] = (10.0, 26.0)
    building_height: tuple[float, float] = (4.0, 45.0)
    building_gap_prob: float = 0.35
    wall_prob: float = 0.6                # a wall or fence in a gap between buildings
    lot_prob: float = 0.12                # a frontage slot used as a parking lot
    light_spacing: tuple[float, float] = (25.0, 40.0)
    tree_side_prob: float = 0.6
    tree_spacing: tuple[float, float] = (8.0, 14.0)
    rsu_height: tuple[float, float] = (4.0, 5.0)
    world_offset: float = 400.0           # the town is shifted by up to this much in x and y

    def validate(self) -> None:
        for name in ("block_length", "median_width", "sidewalk", "building_setback", "building_frontage",
                     "building_depth", "building_height", "light_spacing", "tree_spacing", "curve_bulge",
                     "rsu_height"):
            lo, hi = getattr(self, name)
            if not 0 <= lo <= hi:
                raise ValueError(f"town.{name} must be a range [low, high] with 0 <= low <= high, "
                                 f"got {(lo, hi)}")
        if self.block_length[0] < 40:
            raise ValueError(f"town.block_length must start at 40 m or more, got {self.block_length}")
        if self.area_half < 50:
            raise ValueError(f"town.area_half must be at least 50 m, got {self.area_half}")


@dataclass
class Segment:
    """A drivable piece of a route: a lane between two junctions or a connector inside one."""

    poly: np.ndarray          # (M, 2) vertices every ~1 m, in driving direction
    node_start: int
    node_end: int
    is_connector: bool
    road: int = -1            # road index (lanes only)
    lane: int = 0             # lane index from the centre line (0) to the curb (lanes only)
    turn: str = ""            # connectors: "straight" / "right" / "left"
    approach: int = -1        # connectors: the incoming road
    phase: int = -1           # connectors: index of the signal phase that lets it go (-1: no signal)
    next: list[int] = field(default_factory=list)
    length: float = field(init=False)
    tangent_in: np.ndarray = field(init=False, repr=False)    # unit tangent at the start
    tangent_out: np.ndarray = field(init=False, repr=False)   # unit tangent at the end

    def __post_init__(self):
        d = np.diff(self.poly, axis=0)
        self.length = float(np.linalg.norm(d, axis=1).sum())
        self.tangent_in = d[0] / np.linalg.norm(d[0])
        self.tangent_out = d[-1] / np.linalg.norm(d[-1])


@dataclass
class Road:
    a: int
    b: int
    centre: np.ndarray       # (M, 2) from node a to node b, vertices every 1 m
    lanes: int               # per direction
    median: float
    parking: tuple[bool, bool]   # parking strip on the right of a->b, on the right of b->a
    sidewalk: float
    trim: tuple[float, float] = (0.0, 0.0)   # arc lengths where the lanes start / end

    def half_width(self, side: int) -> float:
        """Distance from the centre line to the curb on the right of a->b (side 0) or b->a (1)."""
        return self.median / 2 + self.lanes * LANE_WIDTH + (PARKING_WIDTH if self.parking[side] else 0.0)


LANE_WIDTH = 3.5      # metres, every lane
PARKING_WIDTH = 2.4   # metres, a parking strip along the curb


@dataclass
class Signal:
    """A signal cycling through phases, each green then amber then all-red."""

    node: int
    phases: list[list[int]]   # per phase: the incoming roads it releases (all their turns)
    opposite: dict[int, int]  # incoming road -> the opposing incoming road (left turns yield to it)
    green: np.ndarray         # (P,) seconds
    amber: float
    all_red: float
    offset: float             # seconds into the cycle at t = 0


@dataclass
class Town:
    spec: TownSpec
    nodes: np.ndarray                 # (N, 2) world x/y
    roads: list[Road]
    segments: list[Segment]
    signals: dict[int, Signal]
    static: meshes.Mesh               # world triangles; owner indexes ``static_kind``
    static_kind: np.ndarray           # (n_objects,) index into STATIC_KINDS
    footprints: list[np.ndarray]      # building outlines (4, 2), for pictures
    parking: np.ndarray               # (P, 3) parked-car slots: x, y, yaw (radians)
    rsu_sites: np.ndarray             # (R, 4) x, y, sensor height, yaw (radians)
    rsu_node: np.ndarray              # (R,) junction node of each site
    rotation: float                   # local grid -> world rotation (radians)
    origin: np.ndarray                # world position of the local origin (area centre)

    def to_local(self, xy: np.ndarray) -> np.ndarray:
        """World x/y to the town's local frame (area centred at 0, grid axis-aligned)."""
        return _to_local(xy, self.rotation, self.origin)


def _to_local(xy: np.ndarray, rotation: float, origin: np.ndarray) -> np.ndarray:
    c, s = np.cos(rotation), np.sin(rotation)
    d = np.asarray(xy, np.float64) - origin
    return np.stack([c * d[..., 0] + s * d[..., 1], -s * d[..., 0] + c * d[..., 1]], axis=-1)


# ----------------------------------------------------------------------------------------------
# road graph
# ----------------------------------------------------------------------------------------------

def _grid_lines(rng: np.random.Generator, half: float, block: tuple[float, float]) -> np.ndarray:
    pos = [-half - rng.uniform(0, block[1])]
    while pos[-1] < half:
        pos.append(pos[-1] + rng.uniform(*block))
    return np.array(pos)


def _connected(n_nodes: int, edges: list[tuple[int, int]]) -> bool:
    adj = [[] for _ in range(n_nodes)]
    for a, b in edges:
        adj[a].append(b)
        adj[b].append(a)
    seen = np.zeros(n_nodes, bool)
    seen[0] = True
    todo = deque([0])
    while todo:
        for m in adj[todo.popleft()]:
            if not seen[m]:
                seen[m] = True
                todo.append(m)
    return bool(seen.all())


def _road_graph(spec: TownSpec, rng: np.random.Generator, half: float, rotation: float, origin: np.ndarray):
    xs = _grid_lines(rng, half, spec.block_length)
    ys = _grid_lines(rng, half, spec.block_length)
    gx, gy = np.meshgrid(xs, ys, indexing="ij")
    local = np.stack([gx, gy], -1).reshape(-1, 2) + rng.uniform(-1, 1, (gx.size, 2)) * spec.node_jitter
    c, s = np.cos(rotation), np.sin(rotation)
    nodes = local @ np.array([[c, s], [-s, c]]) + origin
    nx, ny = len(xs), len(ys)
    idx = np.arange(nx * ny).reshape(nx, ny)
    arterial_x = rng.random(nx) < spec.arterial_prob     # lines of constant x (edges along y)
    arterial_y = rng.random(ny) < spec.arterial_prob
    edges, lanes = [], []
    for i in range(nx):
        for j in range(ny):
            if i + 1 < nx:
                edges.append((idx[i, j], idx[i + 1, j]))
                lanes.append(2 if arterial_y[j] else 1)
            if j + 1 < ny:
                edges.append((idx[i, j], idx[i, j + 1]))
                lanes.append(2 if arterial_x[i] else 1)
    # Thin the grid: drop edges while every node keeps two roads and the graph stays connected.
    degree = np.bincount(np.array(edges).reshape(-1), minlength=nx * ny)
    keep = np.ones(len(edges), bool)
    for e in rng.permutation(len(edges)):
        if rng.random() >= spec.edge_drop_prob:
            continue
        a, b = edges[e]
        if degree[a] <= 2 or degree[b] <= 2:
            continue
        keep[e] = False
        if _connected(nx * ny, [edges[k] for k in np.flatnonzero(keep)]):
            degree[a] -= 1
            degree[b] -= 1
        else:
            keep[e] = True
    return nodes, [edges[k] for k in np.flatnonzero(keep)], [lanes[k] for k in np.flatnonzero(keep)]


def _make_roads(spec, rng, nodes, edges, lanes) -> list[Road]:
    roads = []
    for (a, b), n_lanes in zip(edges, lanes, strict=True):
        pa, pb = nodes[a], nodes[b]
        if rng.random() < spec.curve_prob:
            d = pb - pa
            normal = np.array([-d[1], d[0]]) / np.linalg.norm(d)
            bulge = rng.uniform(*spec.curve_bulge) * np.linalg.norm(d) * rng.choice([-1.0, 1.0])
            rough = pl.quadratic_bezier(pa, (pa + pb) / 2 + 2 * bulge * normal, pb, 64)
        else:
            rough = np.stack([pa, pb])
        median = rng.uniform(*spec.median_width) if n_lanes == 2 and rng.random() < 0.5 else 0.0
        parking = (bool(rng.random() < spec.parking_prob), bool(rng.random() < spec.parking_prob))
        roads.append(Road(a, b, pl.resample(rough, 1.0), n_lanes, median, parking,
                          rng.uniform(*spec.sidewalk)))
    return roads


def _end_directions(roads, n_nodes: int):
    """Per node: (road index, unit direction leaving the node, half width) of each road."""
    ends: list[list[tuple[int, np.ndarray, float]]] = [[] for _ in range(n_nodes)]
    for i, r in enumerate(roads):
        hw = max(r.half_width(0), r.half_width(1))
        for n, poly in ((r.a, r.centre), (r.b, r.centre[::-1])):
            d = poly[min(10, len(poly) - 1)] - poly[0]
            ends[n].append((i, d / np.linalg.norm(d), hw))
    return ends


def _straighten_acute(roads, nodes, min_angle_deg: float = 45.0) -> None:
    """A curved road leaving a node at a sharp angle to another road is made straight."""
    for ends in _end_directions(roads, len(nodes)):
        for i, (ri, di, _) in enumerate(ends):
            for rj, dj, _ in ends[i + 1:]:
                if float(di @ dj) > np.cos(np.radians(min_angle_deg)):
                    for rk in (ri, rj):
                        r = roads[rk]
                        if len(r.centre) > 2:
                            r.centre = pl.resample(np.stack([nodes[r.a], nodes[r.b]]), 1.0)


def _junction_radii(spec, nodes, roads) -> np.ndarray:
    """Radius of each junction: lanes stop there and connectors take over.

    Two roads meeting at an angle below 90 degrees overlap until their centre lines are the sum
    of their half widths apart, i.e. up to ``(w1 + w2) / sin(angle)`` from the node.
    """
    radius = np.zeros(len(nodes))
    for n, ends in enumerate(_end_directions(roads, len(nodes))):
        radius[n] = max(hw for _, _, hw in ends) + spec.corner_margin
        for i, (_, di, wi) in enumerate(ends):
            for _, dj, wj in ends[i + 1:]:
                cos = float(di @ dj)
                if cos > 0.0:
                    radius[n] = max(radius[n], (wi + wj) / np.sqrt(1 - min(cos, 0.99) ** 2) + 1.0)
        if len(ends) == 2 and float(ends[0][1] @ ends[1][1]) < -0.97:  # straight mid-block node
            radius[n] = 1.0
    return radius


def _trim_roads(roads, nodes, radius) -> None:
    for r in roads:
        s = pl.arc_length(r.centre)
        da = np.linalg.norm(r.centre - nodes[r.a], axis=1)
        db = np.linalg.norm(r.centre - nodes[r.b], axis=1)
        start = s[np.argmax(da >= radius[r.a])]
        end = s[len(s) - 1 - np.argmax(db[::-1] >= radius[r.b])]
        r.trim = (float(start), float(end))


def _lanes(roads) -> list[Segment]:
    segs = []
    for ri, r in enumerate(roads):
        piece = pl.cut(r.centre, r.trim[0], r.trim[1], 1.0)
        for poly, n0, n1 in ((piece, r.a, r.b), (piece[::-1], r.b, r.a)):
            for k in range(r.lanes):
                lateral = r.median / 2 + (k + 0.5) * LANE_WIDTH
                segs.append(Segment(pl.offset(poly, lateral), n0, n1, False, road=ri, lane=k))
    return segs


def _turn(h_in: float, h_out: float) -> str:
    """Turn kind from the heading change (CARLA frame: a yaw increase turns right)."""
    delta = float(pl.wrap_angle(h_out - h_in))
    if abs(delta) < np.radians(35):
        return "straight"
    return "right" if delta > 0 else "left"


def _connectors(roads, segs: list[Segment], n_nodes: int) -> None:
    """Add junction connectors (appended to ``segs``) and fill every segment's ``next``."""
    incoming = [[] for _ in range(n_nodes)]
    outgoing = [[] for _ in range(n_nodes)]
    for i, sg in enumerate(segs):
        incoming[sg.node_end].append(i)
        outgoing[sg.node_start].append(i)
    for node in range(n_nodes):
        degree = len({segs[i].road for i in incoming[node]})
        for i in incoming[node]:
            lane_in = segs[i]
            n_in = roads[lane_in.road].lanes
            t_in = lane_in.tangent_out
            for o in outgoing[node]:
                lane_out = segs[o]
                if lane_out.road == lane_in.road:
                    continue  # no U-turns
                n_out = roads[lane_out.road].lanes
                t_out = lane_out.tangent_in
                turn = _turn(float(np.arctan2(t_in[1], t_in[0])), float(np.arctan2(t_out[1], t_out[0])))
                if degree <= 2 or turn == "straight":
                    ok = lane_in.lane == lane_out.lane
                elif turn == "right":
                    ok = lane_in.lane == n_in - 1 and lane_out.lane == n_out - 1
                else:
                    ok = lane_in.lane == 0 and lane_out.lane == 0
                if not ok:
                    continue
                poly = pl.connector(lane_in.poly[-1], t_in, lane_out.poly[0], t_out, 1.0)
                segs.append(Segment(poly, node, node, True, turn=turn if degree > 2 else "straight",
                                    approach=lane_in.road, next=[o]))
                lane_in.next.append(len(segs) - 1)


def _prune_dead_ends(segs: list[Segment]) -> None:
    """Drop connectors into lanes from which no route continues (e.g. a lane that ends at a bend
    into a narrower road): a route then never runs into a dead end. Iterates to a fixpoint."""
    alive = np.array([sg.is_connector or bool(sg.next) for sg in segs])
    while True:
        for sg in segs:
            sg.next = [n for n in sg.next if alive[n]]
        now = np.array([bool(sg.next) for sg in segs])
        if (now == alive).all():
            return
        alive = now


def _signals(rng, segs) -> dict[int, Signal]:
    """Signals at junctions of 3+ roads; every connector learns the phase that releases it."""
    heading_in: dict[int, dict[int, float]] = {}
    for sg in segs:
        if sg.is_connector:
            t = sg.tangent_in
            heading_in.setdefault(sg.node_start, {})[sg.approach] = float(np.arctan2(t[1], t[0]))
    signals = {}
    for node, heads in heading_in.items():
        if len(heads) < 3:
            continue
        free = sorted(heads)
        groups = []
        while free:
            a = free.pop(0)
            opposite = [b for b in free if abs(float(pl.wrap_angle(heads[a] - heads[b]))) > np.radians(150)]
            if opposite:
                free.remove(opposite[0])
                groups.append([a, opposite[0]])
            else:
                groups.append([a])
        rng.shuffle(groups)
        # a phase of two opposing approaches lasts longer than a lone approach's
        green = np.array([rng.uniform(18.0, 30.0) if len(g) == 2 else rng.uniform(10.0, 18.0)
                          for g in groups])
        opposite = {g[i]: g[1 - i] for g in groups if len(g) == 2 for i in (0, 1)}
        amber, all_red = 3.0, 2.0
        cycle = float(green.sum() + len(groups) * (amber + all_red))
        signals[node] = Signal(node, groups, opposite, green, amber, all_red, float(rng.uniform(0, cycle)))
    for sg in segs:
        sig = signals.get(sg.node_start) if sg.is_connector else None
        if sig is not None:
            sg.phase = next(i for i, ph in enumerate(sig.phases) if sg.approach in ph)
    return signals


# ----------------------------------------------------------------------------------------------
# buildings, clutter and the static mesh
# ----------------------------------------------------------------------------------------------

def _rect(center: np.ndarray, yaw: float, length: float, width: float) -> np.ndarray:
    c, s = np.cos(yaw), np.sin(yaw)
    local = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], float) * [length / 2, width / 2]
    return local @ np.array([[c, s], [-s, c]]) + center


class _Placer:
    """Keeps the accepted footprints and refuses overlaps with roads or earlier objects."""

    def __init__(self, corridor):
        self.corridor = corridor
        shapely.prepare(self.corridor)
        self.taken: list = []

    def free(self, poly) -> bool:
        poly = poly.buffer(-0.05)   # touching neighbours (row houses) are fine
        if self.corridor.intersects(poly):
            return False
        return not (self.taken and bool(shapely.intersects(np.array(self.taken, dtype=object), poly).any()))

    def take(self, poly) -> None:
        self.taken.append(poly)


def _corridor(roads, nodes, radius):
    """Union of road surfaces plus sidewalks (and junction discs): nothing is built there.

    Each side has its own width (a parking strip on one side only); a positive single-sided
    buffer in shapely lies on the driver's right of the line, as ``polylines.right_normals``.
    """
    shapes = []
    for r in roads:
        line = shapely.LineString(r.centre)
        shapes.append(line.buffer(r.half_width(0) + r.sidewalk, single_sided=True))
        shapes.append(line.buffer(-(r.half_width(1) + r.sidewalk), single_sided=True))
    shapes += [shapely.Point(p).buffer(rad) for p, rad in zip(nodes, radius, strict=True) if rad > 1.0]
    return shapely.union_all(shapes)


@dataclass
class _Static:
    """Static objects collected before meshing (parameters, vectorized into meshes at the end)."""

    boxes: list = field(default_factory=list)     # (cx, cy, length, width, yaw, z0, z1, kind)
    prisms: list = field(default_factory=list)    # (cx, cy, radius, z0, z1, kind)
    crowns: list = field(default_factory=list)    # (cx, cy, cz, rx, ry, rz)
    curbs: list = field(default_factory=list)     # (inner (M, 2), outer (M, 2)) strips
    footprints: list = field(default_factory=list)
    parking: list = field(default_factory=list)   # (x, y, yaw)


def _frontages(spec, rng, roads, placer, st: _Static, to_local, rsu_discs) -> None:
    for r in roads:
        s_all = pl.arc_length(r.centre)
        for side in (0, 1):
            poly = r.centre if side == 0 else r.centre[::-1]
            s = s_all if side == 0 else s_all[-1] - s_all[::-1]
            start = (r.trim[0] if side == 0 else s_all[-1] - r.trim[1]) + 1.0
            end = (r.trim[1] if side == 0 else s_all[-1] - r.trim[0]) - 1.0
            hw = r.half_width(side)
            tang = pl.tangents(poly)
            right = pl.right_normals(poly)
            piece = pl.cut(poly, start, end, 2.0)
            if not np.any(np.all(np.abs(to_local(piece)) <= spec.area_half + 30.0, axis=-1)):
                continue   # beyond the built-up area: bare road
            st.curbs.append((pl.offset(piece, hw), pl.offset(piece, hw + r.sidewalk)))
            if r.parking[side]:
                _parking_strip(spec, rng, poly, s, start + 4.0, end - 4.0, hw - PARKING_WIDTH / 2, st)
            _street_items(spec, rng, poly, s, start, end, hw, r.sidewalk, st, rsu_discs)
            pos = start + rng.uniform(0.0, 3.0)
            front = hw + r.sidewalk + 0.3 + rng.uniform(*spec.building_setback)
            while pos < end - 8.0:
                length = min(rng.uniform(*spec.building_frontage), end - pos)
                depth = rng.uniform(*spec.building_depth)
                for shrink in (1.0, 0.75, 0.55):   # a slot that does not fit gets a smaller building
                    ln, dp = length * shrink, depth * shrink
                    k = min(int(np.searchsorted(s, pos + ln / 2)), len(s) - 1)
                    yaw = float(np.arctan2(tang[k, 1], tang[k, 0]))
                    centre = poly[k] + right[k] * (front + dp / 2)
                    rect = _rect(centre, yaw, ln, dp)
                    inside = bool(np.all(np.abs(to_local(centre)) <= spec.area_half))
                    if not inside or ln < 6.0:
                        break
                    shape = shapely.Polygon(rect)
                    if placer.free(shape):
                        placer.take(shape)
                        if rng.random() < spec.lot_prob:
                            _parking_lot(spec, rng, poly[k], tang[k], right[k], front, ln, dp, st)
                        else:
                            height = float(np.clip(rng.lognormal(np.log(12.0), 0.6), *spec.building_height))
                            st.boxes.append((*centre, ln, dp, yaw, 0.0, height, "building"))
                            st.footprints.append(rect)
                        break
                pos += ln
                if rng.random() < spec.building_gap_prob:
                    gap = rng.uniform(3.0, 12.0)
                    if rng.random() < spec.wall_prob and pos + gap < end:
                        gk = min(int(np.searchsorted(s, pos + gap / 2)), len(s) - 1)
                        wc = poly[gk] + right[gk] * (front + 0.2)
                        wall = _rect(wc, float(np.arctan2(tang[gk, 1], tang[gk, 0])), gap, 0.3)
                        if inside and placer.free(shapely.Polygon(wall)):
                            st.boxes.append((*wc, gap, 0.3, float(np.arctan2(tang[gk, 1], tang[gk, 0])),
                                             0.0, rng.uniform(1.2, 2.5), "wall"))
                    pos += gap


def _parking_strip(spec, rng, poly, s, start, end, lateral, st: _Static) -> None:
    pos = start
    tang = pl.tangents(poly)
    right = pl.right_normals(poly)
    while pos < end:
        if rng.random() < spec.parking_occupancy:
            k = min(int(np.searchsorted(s, pos)), len(s) - 1)
            xy = poly[k] + right[k] * lateral
            st.parking.append((xy[0], xy[1], float(np.arctan2(tang[k, 1], tang[k, 0]))))
        pos += rng.uniform(6.2, 7.5)


def _parking_lot(spec, rng, p0, t, n, front, length, depth, st: _Static) -> None:
    """Perpendicular parking in rows across the slot (cars face the road or away from it)."""
    rows = [front + 3.0] + ([front + depth - 3.0] if depth > 13.0 else [])
    slots = np.arange(-length / 2 + 1.6, length / 2 - 1.4, 2.8)
    for row in rows:
        for off in slots:
            if rng.random() < spec.parking_occupancy:
                xy = p0 + t * off + n * row
                yaw = float(np.arctan2(n[1], n[0])) + (np.pi if rng.random() < 0.5 else 0.0)
                st.parking.append((xy[0], xy[1], yaw))


def _street_items(spec, rng, poly, s, start, end, hw, sidewalk, st: _Static, rsu_discs) -> None:
    """Street lights at the curb and (on some sides) a row of trees."""
    tang = pl.tangents(poly)
    right = pl.right_normals(poly)

    def clear(xy):
        return not rsu_discs.size or bool(np.all(np.linalg.norm(rsu_discs - xy, axis=1) > 3.0))

    pos = start + rng.uniform(2.0, 10.0)
    while pos < end:
        k = min(int(np.searchsorted(s, pos)), len(s) - 1)
        xy = poly[k] + right[k] * (hw + 0.5)
        if clear(xy):
            h = rng.uniform(7.0, 9.0)
            st.prisms.append((*xy, 0.12, 0.0, h, "pole"))
            arm_c = xy - right[k] * 1.2
            yaw = float(np.arctan2(tang[k, 1], tang[k, 0]))
            st.boxes.append((*arm_c, 0.25, 2.6, yaw, h - 0.25, h, "pole"))
        pos += rng.uniform(*spec.light_spacing)
    if sidewalk >= 3.0 and rng.random() < spec.tree_side_prob:
        pos = start + rng.uniform(3.0, 8.0)
        while pos < end:
            k = min(int(np.searchsorted(s, pos)), len(s) - 1)
            xy = poly[k] + right[k] * (hw + sidewalk - 1.2)
            if clear(xy):
                trunk = rng.uniform(2.0, 3.5)
                rad = rng.uniform(1.5, 2.8)
                st.prisms.append((*xy, rng.uniform(0.12, 0.25), 0.0, trunk + 0.5 * rad, "tree"))
                st.crowns.append((*xy, trunk + 0.9 * rad, rad, rad, rad * rng.uniform(0.9, 1.3)))
            pos += rng.uniform(*spec.tree_spacing)


def _signal_poles(segs, signals, roads, st: _Static) -> None:
    """A pole with a mast arm over the lanes at the stop line of every signalized approach."""
    for sg in segs:
        if sg.is_connector or sg.node_end not in signals or sg.lane != roads[sg.road].lanes - 1:
            continue
        t = sg.tangent_out
        n = np.array([-t[1], t[0]])
        base = sg.poly[-1] + n * (LANE_WIDTH / 2 + 1.0 + (PARKING_WIDTH if _has_parking(roads, sg) else 0.0))
        yaw = float(np.arctan2(t[1], t[0]))
        st.prisms.append((*base, 0.18, 0.0, 6.0, "signal"))
        span = roads[sg.road].lanes * LANE_WIDTH + 1.0
        st.boxes.append((*(base - n * span / 2), 0.3, span, yaw, 5.6, 5.9, "signal"))
        st.boxes.append((*(base - n * (span - 0.5)), 0.4, 0.4, yaw, 4.6, 5.6, "signal"))


def _has_parking(roads, sg: Segment) -> bool:
    r = roads[sg.road]
    forward = np.linalg.norm(sg.poly[-1] - r.centre[-1]) < np.linalg.norm(sg.poly[-1] - r.centre[0])
    return r.parking[0] if forward else r.parking[1]


def _rsu_sites(spec, rng, nodes, roads, segs, junctions) -> tuple[np.ndarray, np.ndarray]:
    """One roadside-unit site per given junction: on a corner between two adjacent roads, the
    point of their bisector closest to the junction that is 1.5 m clear of the carriageways and
    junction lanes."""
    sites, site_nodes = [], []
    for node in junctions:
        near_roads = [r for r in roads if node in (r.a, r.b)]
        dirs = []
        for r in near_roads:
            poly = r.centre if r.a == node else r.centre[::-1]
            t = poly[min(8, len(poly) - 1)] - poly[0]
            dirs.append(np.arctan2(t[1], t[0]))
        ang = np.sort(np.array(dirs))
        gaps = np.diff(np.concatenate([ang, [ang[0] + 2 * np.pi]]))
        good = np.flatnonzero((gaps > np.radians(60)) & (gaps < np.radians(200)))
        if not good.size:
            continue
        g = int(rng.choice(good))
        bis = ang[g] + gaps[g] / 2
        dist = np.arange(3.0, 40.0, 0.5)
        cand = nodes[node] + dist[:, None] * np.array([np.cos(bis), np.sin(bis)])
        pts = shapely.points(cand)
        clear = np.ones(len(cand), bool)
        for r in near_roads:       # 1.5 m beyond the wider carriageway side
            hw = max(r.half_width(0), r.half_width(1))
            clear &= shapely.distance(shapely.LineString(r.centre), pts) >= hw + 1.5
        for sg in segs:            # and 1.5 m beyond the lane of every connector of the junction
            if sg.is_connector and sg.node_start == node:
                clear &= shapely.distance(shapely.LineString(sg.poly), pts) >= LANE_WIDTH / 2 + 1.5
        if not clear.any():
            continue
        xy = cand[np.argmax(clear)]
        sites.append((xy[0], xy[1], rng.uniform(*spec.rsu_height), bis + np.pi))
        site_nodes.append(node)
    return np.array(sites, float).reshape(-1, 4), np.array(site_nodes, np.int64)


def _static_mesh(st: _Static, ground_half: float, center: np.ndarray,
                 rsu_sites: np.ndarray) -> tuple[meshes.Mesh, np.ndarray]:
    parts, kinds = [], []

    def add(mesh: meshes.Mesh, kind_per_instance: list[str]):
        parts.append(mesh)
        kinds.extend(kind_per_instance)

    g = ground_half
    ground = meshes.Mesh(np.array([[-g, -g, 0], [g, -g, 0], [g, g, 0], [-g, g, 0]], float)
                         + np.r_[center, 0.0], np.array([[0, 1, 2], [0, 2, 3]]), np.zeros(2, np.int64))
    add(ground, ["ground"])
    if st.curbs:
        add(_curb_mesh(st.curbs), ["curb"] * len(st.curbs))
    if st.boxes:
        b = np.array([x[:7] for x in st.boxes], float)
        add(meshes.boxes(b[:, :2], b[:, 2:4], b[:, 4], b[:, 5], b[:, 6]), [x[7] for x in st.boxes])
    if st.prisms:
        p = np.array([x[:5] for x in st.prisms], float)
        add(meshes.prisms(p[:, :2], p[:, 2], p[:, 3], p[:, 4]), [x[5] for x in st.prisms])
    if st.crowns:
        c = np.array(st.crowns, float)
        add(meshes.ellipsoids(c[:, :3], c[:, 3:6]), ["tree"] * len(st.crowns))
    if rsu_sites.size:
        add(meshes.prisms(rsu_sites[:, :2], 0.15, 0.0, rsu_sites[:, 2] - 0.3), ["rsu_pole"] * len(rsu_sites))
    # Renumber owners so that they index the concatenated kinds list.
    offsets = np.cumsum([0] + [int(m.owner.max()) + 1 if m.n_triangles else 0 for m in parts[:-1]])
    shifted = [meshes.Mesh(m.vertices, m.triangles, m.owner + o) for m, o in zip(parts, offsets, strict=True)]
    kind_idx = np.array([STATIC_KINDS.index(k) for k in kinds], np.int64)
    return meshes.merge(shifted), kind_idx


def _curb_mesh(curbs: list, height: float = 0.15) -> meshes.Mesh:
    """Raised sidewalk strips: the top surface and the curb face toward the road."""
    verts, tris, owner = [], [], []
    base = 0
    for i, (inner, outer) in enumerate(curbs):
        m = len(inner)
        v = np.concatenate([np.c_[inner, np.full(m, height)], np.c_[outer, np.full(m, height)],
                            np.c_[inner, np.zeros(m)]])
        a = np.arange(m - 1)
        top = np.concatenate([np.stack([a, a + 1, a + m + 1], 1), np.stack([a, a + m + 1, a + m], 1)])
        face = np.concatenate([np.stack([a + 2 * m, a + 2 * m + 1, a + 1], 1),
                               np.stack([a + 2 * m, a + 1, a], 1)])
        t = np.concatenate([top, face]) + base
        verts.append(v)
        tris.append(t)
        owner.append(np.full(len(t), i, np.int64))
        base += len(v)
    return meshes.Mesh(np.concatenate(verts), np.concatenate(tris), np.concatenate(owner))


def build_town(spec: TownSpec, rng: np.random.Generator, reach: float = 200.0) -> Town:
    """Generate a town; roads (and traffic) extend ``reach`` metres beyond the built-up area."""
    spec.validate()
    rotation = float(rng.choice([0.0, 0.5 * np.pi, np.pi, 1.5 * np.pi]) if rng.random() < 0.5
                     else rng.uniform(0.0, 2 * np.pi))
    origin = rng.uniform(-spec.world_offset, spec.world_offset, 2)
    half = spec.area_half + reach
    nodes, edges, lanes = _road_graph(spec, rng, half, rotation, origin)
    roads = _make_roads(spec, rng, nodes, edges, lanes)
    _straighten_acute(roads, nodes)
    radius = _junction_radii(spec, nodes, roads)
    _trim_roads(roads, nodes, radius)
    segs = _lanes(roads)
    _connectors(roads, segs, len(nodes))
    _prune_dead_ends(segs)
    signals = _signals(rng, segs)

    def to_local(xy):
        return _to_local(xy, rotation, origin)

    def in_area(xy, margin: float) -> np.ndarray:
        return np.all(np.abs(to_local(xy)) <= spec.area_half + margin, axis=-1)

    built_nodes = [n for n in sorted(signals) if in_area(nodes[n], 20.0)]
    rsu_sites, rsu_node = _rsu_sites(spec, rng, nodes, roads, segs, built_nodes)
    st = _Static()
    placer = _Placer(_corridor([r for r in roads if in_area(r.centre, 60.0).any()], nodes, radius))
    for x, y, *_ in rsu_sites:
        placer.take(shapely.Point(x, y).buffer(2.5))
    _frontages(spec, rng, roads, placer, st, to_local, rsu_sites[:, :2])
    _signal_poles(segs, {n: signals[n] for n in built_nodes}, roads, st)
    static, kinds = _static_mesh(st, half + 200.0, origin, rsu_sites)
    return Town(spec, nodes, roads, segs, signals, static, kinds, st.footprints,
                np.array(st.parking, float).reshape(-1, 3), rsu_sites, rsu_node, rotation, origin)
