"""Vehicle bodies, primitive meshes and the owner bookkeeping the labels rely on."""
from __future__ import annotations

import numpy as np
import pytest

from v2xdet.data_utils.synthetic import meshes
from v2xdet.data_utils.synthetic.traffic import TYPE_NAMES, VEHICLE_TYPES, build_bodies, sample_sizes


def test_vehicle_bounding_box_is_the_label_box_for_every_type():
    rng = np.random.default_rng(0)
    types = np.repeat(np.arange(len(TYPE_NAMES)), 5)
    size = sample_sizes(rng, types)
    mesh = build_bodies(types, size)
    owner = meshes.vertex_owner(mesh)
    for i in range(len(types)):
        v = mesh.vertices[owner == i]
        length, width, height = size[i]
        np.testing.assert_allclose(v.min(0), [-length / 2, -width / 2, 0.0], atol=1e-9)
        np.testing.assert_allclose(v.max(0), [length / 2, width / 2, height], atol=1e-9)
    # the vehicle types span compact cars to trucks (3.5 to 8 m)
    lengths = np.array([t.length for t in VEHICLE_TYPES.values()])
    assert lengths.min() == pytest.approx(3.5) and lengths.max() == pytest.approx(8.0)


def test_vehicle_is_not_a_bare_box():
    """A car's cabin is narrower and shorter than its body: its top face is smaller than the box."""
    mesh = meshes.vehicle_mesh("car", 4.5, 1.8, 1.5, 0.33)
    top = mesh.vertices[np.isclose(mesh.vertices[:, 2], 1.5)]
    assert np.ptp(top[:, 0]) < 0.5 * 4.5 and np.ptp(top[:, 1]) < 1.8
    assert mesh.n_triangles > 12 * 2   # body, cabin and wheels


def test_unknown_style_is_refused():
    with pytest.raises(ValueError, match="unknown vehicle style"):
        meshes.vehicle_mesh("boat", 4.0, 1.8, 1.5, 0.3)


def test_merge_and_transform_keep_owners():
    a = meshes.boxes(np.array([[0.0, 0.0], [10.0, 0.0]]), np.array([[2.0, 1.0], [4.0, 2.0]]),
                     np.array([0.0, np.pi / 2]), 0.0, 3.0)
    assert a.n_triangles == 24 and set(a.owner.tolist()) == {0, 1}
    b = meshes.prisms(np.array([[5.0, 5.0]]), 0.5, 0.0, 2.0, sides=8)
    m = meshes.merge([a, b], renumber=True)
    assert np.bincount(m.owner).tolist() == [24, b.n_triangles]
    # the second box (yaw 90 deg) spans 2 m in x and 4 m in y
    v = a.vertices[meshes.vertex_owner(a) == 1]
    np.testing.assert_allclose(np.ptp(v, axis=0), [2.0, 4.0, 3.0], atol=1e-9)
    shift = np.tile(np.eye(4), (2, 1, 1))
    shift[1, :3, 3] = [1.0, 2.0, 3.0]
    moved = meshes.transform(a, shift, meshes.vertex_owner(a))
    np.testing.assert_allclose(moved.vertices[meshes.vertex_owner(a) == 1], v + [1.0, 2.0, 3.0])
