"""Triangle meshes of the simulated world: boxes, prisms, ellipsoids and vehicle bodies.

A :class:`Mesh` is a pair of arrays (``vertices`` (V, 3) float64, ``triangles`` (F, 3) int64).
Every builder is vectorized over many instances (one call builds all buildings of a town), and
:func:`merge` concatenates meshes while keeping, per triangle, the index of the instance it came
from, so that a ray hit's primitive id tells which object was hit.

Vehicle bodies are assembled from a few hexahedra (body, cabin with sloped glass, cargo box) and
wheels, built so that their axis-aligned bounding box in the vehicle frame is exactly
``[-l/2, l/2] x [-w/2, w/2] x [0, h]``: the label box of a vehicle is its full bounding box.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Corner order of a hexahedron: bottom face (z0) then top face (z1), each counter-clockwise
# seen from above in x/y: (-x,-y), (+x,-y), (+x,+y), (-x,+y).
_HEX_FACES = np.array([
    [0, 2, 1], [0, 3, 2],        # bottom
    [4, 5, 6], [4, 6, 7],        # top
    [0, 1, 5], [0, 5, 4],        # -y side
    [1, 2, 6], [1, 6, 5],        # +x side
    [2, 3, 7], [2, 7, 6],        # +y side
    [3, 0, 4], [3, 4, 7],        # -x side
], dtype=np.int64)


@dataclass(frozen=True)
class Mesh:
    """Triangles with, per triangle, the index of the object (instance) it belongs to."""

    vertices: np.ndarray   # (V, 3) float64
    triangles: np.ndarray  # (F, 3) int64
    owner: np.ndarray      # (F,) int64, instance index of each triangle

    @property
    def n_triangles(self) -> int:
        return int(self.triangles.shape[0])


def empty_mesh() -> Mesh:
    return Mesh(np.zeros((0, 3)), np.zeros((0, 3), np.int64), np.zeros(0, np.int64))


def merge(meshes: list[Mesh], renumber: bool = False) -> Mesh:
    """Concatenate meshes; with ``renumber`` each input mesh becomes one owner (its list index)."""
    meshes = [m for m in meshes] or [empty_mesh()]
    offsets = np.cumsum([0] + [m.vertices.shape[0] for m in meshes[:-1]])
    vertices = np.concatenate([m.vertices for m in meshes])
    triangles = np.concatenate([m.triangles + o for m, o in zip(meshes, offsets, strict=True)])
    if renumber:
        owner = np.concatenate([np.full(m.n_triangles, i, np.int64) for i, m in enumerate(meshes)])
    else:
        owner = np.concatenate([m.owner for m in meshes])
    return Mesh(vertices, triangles, owner)


def _instances(corners: np.ndarray, faces: np.ndarray) -> Mesh:
    """Mesh of N instances sharing one topology: ``corners`` (N, K, 3), ``faces`` (F, 3) into K."""
    n, k = corners.shape[:2]
    tris = (faces[None] + k * np.arange(n)[:, None, None]).reshape(-1, 3)
    owner = np.repeat(np.arange(n), faces.shape[0])
    return Mesh(corners.reshape(-1, 3).astype(np.float64), tris, owner)


def _rotate_z(xy: np.ndarray, yaw: np.ndarray) -> np.ndarray:
    """Rotate (N, K, 2) local points by per-instance yaw (N,) radians."""
    c, s = np.cos(yaw)[:, None], np.sin(yaw)[:, None]
    return np.stack([xy[..., 0] * c - xy[..., 1] * s, xy[..., 0] * s + xy[..., 1] * c], axis=-1)


def hexahedra(bottom: np.ndarray, top: np.ndarray, z0: np.ndarray, z1: np.ndarray) -> Mesh:
    """Closed hexahedra from bottom and top quads: ``bottom``/``top`` (N, 4, 2), heights (N,).

    The quads are given counter-clockwise (x/y, the order of ``_HEX_FACES``); top and bottom may
    differ (a cabin whose roof is shorter than its base, a tapered wall).
    """
    z0 = np.broadcast_to(np.asarray(z0, np.float64), bottom.shape[:1])
    z1 = np.broadcast_to(np.asarray(z1, np.float64), bottom.shape[:1])
    low = np.concatenate([bottom, np.repeat(z0[:, None, None], 4, axis=1)], axis=-1)
    high = np.concatenate([top, np.repeat(z1[:, None, None], 4, axis=1)], axis=-1)
    return _instances(np.concatenate([low, high], axis=1), _HEX_FACES)


def boxes(centers_xy: np.ndarray, size: np.ndarray, yaw: np.ndarray, z0, z1) -> Mesh:
    """Upright boxes: centre (N, 2), size (N, 2) as (length along yaw, width), z from z0 to z1."""
    centers_xy = np.asarray(centers_xy, np.float64).reshape(-1, 2)
    half = np.asarray(size, np.float64).reshape(-1, 2) / 2.0
    signs = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], np.float64)
    quad = _rotate_z(signs[None] * half[:, None], np.asarray(yaw, np.float64).reshape(-1))
    quad = quad + centers_xy[:, None]
    return hexahedra(quad, quad, z0, z1)


def prisms(centers_xy: np.ndarray, radius: np.ndarray, z0, z1, sides: int = 8) -> Mesh:
    """Upright regular prisms (poles, trunks): centre (N, 2), radius (N,), z from z0 to z1."""
    centers_xy = np.asarray(centers_xy, np.float64).reshape(-1, 2)
    n = centers_xy.shape[0]
    radius = np.broadcast_to(np.asarray(radius, np.float64), (n,))
    z0 = np.broadcast_to(np.asarray(z0, np.float64), (n,))
    z1 = np.broadcast_to(np.asarray(z1, np.float64), (n,))
    ang = 2 * np.pi * np.arange(sides) / sides
    ring = np.stack([np.cos(ang), np.sin(ang)], axis=-1)
    xy = centers_xy[:, None] + radius[:, None, None] * ring[None]
    corners = np.concatenate([
        np.concatenate([xy, np.repeat(z0[:, None, None], sides, 1)], -1),
        np.concatenate([xy, np.repeat(z1[:, None, None], sides, 1)], -1)], axis=1)
    i = np.arange(sides)
    j = (i + 1) % sides
    side = np.concatenate([np.stack([i, j, j + sides], 1), np.stack([i, j + sides, i + sides], 1)])
    caps_b = np.stack([np.zeros(sides - 2, int), np.arange(2, sides), np.arange(1, sides - 1)], 1)
    caps_t = np.stack([np.full(sides - 2, sides), np.arange(1, sides - 1) + sides,
                       np.arange(2, sides) + sides], 1)
    return _instances(corners, np.concatenate([side, caps_b, caps_t]).astype(np.int64))


def _unit_sphere(subdivisions: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """An icosphere (vertices on the unit sphere, outward triangles)."""
    t = (1.0 + 5 ** 0.5) / 2
    v = np.array([[-1, t, 0], [1, t, 0], [-1, -t, 0], [1, -t, 0], [0, -1, t], [0, 1, t],
                  [0, -1, -t], [0, 1, -t], [t, 0, -1], [t, 0, 1], [-t, 0, -1], [-t, 0, 1]], float)
    f = np.array([[0, 11, 5], [0, 5, 1], [0, 1, 7], [0, 7, 10], [0, 10, 11], [1, 5, 9], [5, 11, 4],
                  [11, 10, 2], [10, 7, 6], [7, 1, 8], [3, 9, 4], [3, 4, 2], [3, 2, 6], [3, 6, 8],
                  [3, 8, 9], [4, 9, 5], [2, 4, 11], [6, 2, 10], [8, 6, 7], [9, 8, 1]], np.int64)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    for _ in range(subdivisions):
        edges = np.sort(np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]]), axis=1)
        uniq, inv = np.unique(edges, axis=0, return_inverse=True)
        mids = v[uniq].mean(axis=1)
        mids /= np.linalg.norm(mids, axis=1, keepdims=True)
        m = inv.reshape(3, -1).T + v.shape[0]  # midpoint ids of edges (01, 12, 20) per face
        v = np.concatenate([v, mids])
        f = np.concatenate([np.stack([f[:, 0], m[:, 0], m[:, 2]], 1),
                            np.stack([f[:, 1], m[:, 1], m[:, 0]], 1),
                            np.stack([f[:, 2], m[:, 2], m[:, 1]], 1), m])
    return v, f


_SPHERE = _unit_sphere(1)


def ellipsoids(centers: np.ndarray, radii: np.ndarray) -> Mesh:
    """Axis-aligned ellipsoids (tree crowns, bushes): centres (N, 3), radii (N, 3)."""
    v, f = _SPHERE
    corners = np.asarray(centers, np.float64)[:, None] + np.asarray(radii, np.float64)[:, None] * v[None]
    return _instances(corners, f)


def transform(mesh: Mesh, matrices: np.ndarray, vertex_owner: np.ndarray) -> Mesh:
    """Move each instance's vertices by its own 4x4 matrix: ``matrices`` (N, 4, 4)."""
    r = matrices[vertex_owner, :3, :3]
    t = matrices[vertex_owner, :3, 3]
    moved = np.einsum("vij,vj->vi", r, mesh.vertices) + t
    return Mesh(moved, mesh.triangles, mesh.owner)


def vertex_owner(mesh: Mesh) -> np.ndarray:
    """Instance index of each vertex (vertices are never shared between instances here)."""
    owner = np.zeros(mesh.vertices.shape[0], np.int64)
    owner[mesh.triangles.reshape(-1)] = np.repeat(mesh.owner, 3)
    return owner


# ----------------------------------------------------------------------------------------------
# Vehicle bodies
# ----------------------------------------------------------------------------------------------

# Body styles as fractions of (l, w, h). Each part is a hexahedron: x range of its base and of its
# top (sloped windshield / rear glass), width fraction of base and top, z range.
#   ("part", (xb0, xb1), (xt0, xt1), (wb, wt), (z0, z1))
VEHICLE_STYLES: dict[str, list[tuple]] = {
    "car": [  # compact / sedan: low hood and trunk, greenhouse in the middle
        ("body", (-0.50, 0.50), (-0.48, 0.46), (1.00, 0.97), (0.20, 0.62)),
        ("cabin", (-0.33, 0.20), (-0.24, 0.02), (0.93, 0.80), (0.62, 1.00)),
    ],
    "suv": [  # tall body, long roof, near-vertical rear
        ("body", (-0.50, 0.50), (-0.49, 0.47), (1.00, 0.98), (0.22, 0.60)),
        ("cabin", (-0.46, 0.22), (-0.44, 0.05), (0.95, 0.84), (0.60, 1.00)),
    ],
    "pickup": [  # cab in front, open bed behind (bed walls up to the body line)
        ("body", (-0.50, 0.50), (-0.50, 0.47), (1.00, 0.98), (0.25, 0.60)),
        ("cabin", (-0.12, 0.24), (-0.10, 0.10), (0.95, 0.84), (0.60, 1.00)),
    ],
    "van": [  # one box with a short sloped nose
        ("body", (-0.50, 0.50), (-0.50, 0.49), (1.00, 1.00), (0.12, 0.45)),
        ("cabin", (-0.50, 0.36), (-0.50, 0.26), (1.00, 0.96), (0.45, 1.00)),
    ],
    "truck": [  # cab, gap, tall cargo box over a chassis
        ("chassis", (-0.48, 0.46), (-0.48, 0.46), (0.80, 0.80), (0.18, 0.30)),
        ("cab", (0.24, 0.50), (0.26, 0.48), (0.97, 0.95), (0.18, 0.82)),
        ("cargo", (-0.50, 0.21), (-0.50, 0.21), (1.00, 1.00), (0.30, 1.00)),
    ],
}


def vehicle_meshes(styles, size: np.ndarray, wheel_radius: np.ndarray) -> Mesh:
    """Bodies of N vehicles (owner = vehicle index), each in its own frame (x forward, origin on
    the ground under the box centre), built per style in one vectorized pass.

    ``styles`` (N,) names from VEHICLE_STYLES, ``size`` (N, 3) length, width, height, ``wheel_radius``
    (N,). The bounding box of vehicle i is exactly ``[-l/2, l/2] x [-w/2, w/2] x [0, h]``.
    """
    styles = np.asarray(styles)
    size = np.asarray(size, np.float64).reshape(-1, 3)
    wheel_radius = np.broadcast_to(np.asarray(wheel_radius, np.float64), styles.shape)
    unknown = set(styles.tolist()) - set(VEHICLE_STYLES)
    if unknown:
        raise ValueError(f"unknown vehicle style(s) {sorted(unknown)}; expected {sorted(VEHICLE_STYLES)}")
    out = []
    for style in sorted(set(styles.tolist())):
        idx = np.flatnonzero(styles == style)
        parts = np.array([[*xb, *xt, *w, *z] for _, xb, xt, w, z in VEHICLE_STYLES[style]])  # (P, 8)
        length, width, height = (size[idx, k][:, None] for k in range(3))                     # (n, 1)
        sx = np.array([0, 1, 1, 0])
        sy = np.array([-1, -1, 1, 1]) / 2.0
        xb = parts[None, :, [0, 1]][..., sx] * length[..., None]          # (n, P, 4)
        xt = parts[None, :, [2, 3]][..., sx] * length[..., None]
        yb = parts[None, :, 4, None] * sy * width[..., None]
        yt = parts[None, :, 5, None] * sy * width[..., None]
        p = parts.shape[0]
        bottom = np.stack([xb, np.broadcast_to(yb, xb.shape)], -1).reshape(-1, 4, 2)
        top = np.stack([xt, np.broadcast_to(yt, xt.shape)], -1).reshape(-1, 4, 2)
        z0 = (parts[None, :, 6] * height).reshape(-1)
        z1 = (parts[None, :, 7] * height).reshape(-1)
        body = hexahedra(bottom, top, z0, z1)
        out.append(Mesh(body.vertices, body.triangles, idx[body.owner // p]))
        # wheels: short prisms with their axis along y, touching the ground
        r = wheel_radius[idx]
        axle = size[idx, 0] / 2 - np.maximum(1.6 * r, 0.12 * size[idx, 0])
        rear = -size[idx, 0] / 2 + 1.6 * r if style == "truck" else -axle
        wheel_w = np.minimum(0.25, 0.12 * size[idx, 1])
        cx = np.stack([axle, axle, rear, rear], 1)
        cy = np.array([1, -1, 1, -1])[None] * (size[idx, 1] / 2 - wheel_w / 2)[:, None]
        wheels = _wheels(cx.reshape(-1), cy.reshape(-1), np.repeat(r, 4), np.repeat(wheel_w, 4))
        out.append(Mesh(wheels.vertices, wheels.triangles, idx[wheels.owner // 4]))
    return merge(out)


def vehicle_mesh(style: str, length: float, width: float, height: float, wheel_radius: float) -> Mesh:
    """One vehicle body (see :func:`vehicle_meshes`)."""
    return vehicle_meshes(np.array([style]), np.array([[length, width, height]]), np.array([wheel_radius]))


def _wheels(cx: np.ndarray, cy: np.ndarray, radius: np.ndarray, width: np.ndarray, sides: int = 8) -> Mesh:
    """Prisms with axis along y (x/z polygons), centred at (cx, cy, radius)."""
    ring = prisms(np.zeros((cx.shape[0], 2)), radius, -width / 2, width / 2, sides)
    v = ring.vertices.reshape(cx.shape[0], -1, 3)
    # prism axis z -> y: (x, y, z) -> (x, z, y); the swap mirrors, so flip triangles back outward.
    moved = np.stack([v[..., 0] + cx[:, None], v[..., 2] + cy[:, None], v[..., 1] + radius[:, None]], axis=-1)
    return Mesh(moved.reshape(-1, 3), ring.triangles[:, [0, 2, 1]], ring.owner)
