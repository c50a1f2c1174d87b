"""The town and its traffic: kinds of places, occluders, and traffic that never collides."""
from __future__ import annotations

import numpy as np
import pytest
import shapely

from v2xdet.data_utils.synthetic.town import STATIC_KINDS, TownSpec, build_town
from v2xdet.data_utils.synthetic.traffic import Traffic, TrafficSpec
from v2xdet.geometry.boxes import boxes_to_bev_corners


@pytest.fixture(scope="module")
def town_and_traffic():
    rng = np.random.default_rng(7)
    town = build_town(TownSpec(area_half=90.0, block_length=(60.0, 90.0)), rng, reach=80.0)
    traffic = Traffic(town, TrafficSpec(warmup_s=2.0), rng, duration_s=6.0, spawn_half=170.0)
    return town, traffic


def test_town_has_junctions_curves_buildings_and_clutter(town_and_traffic):
    town, _ = town_and_traffic
    degrees = np.bincount(np.array([[r.a, r.b] for r in town.roads]).ravel(), minlength=len(town.nodes))
    assert (degrees == 4).any() and (degrees == 3).any()                     # 4-way and T junctions
    def bend(c):   # distance of a road's middle from the chord between its ends
        d = c[-1] - c[0]
        m = c[len(c) // 2] - c[0]
        return abs(d[0] * m[1] - d[1] * m[0]) / np.linalg.norm(d)
    assert max(bend(r.centre) for r in town.roads) > 3.0                     # a curved road
    kinds = {STATIC_KINDS[k] for k in np.unique(town.static_kind)}
    assert {"ground", "building", "pole", "tree", "curb"} <= kinds
    assert len(town.footprints) >= 10 and len(town.parking) >= 10 and len(town.rsu_sites) >= 1
    turns = {sg.turn for sg in town.segments if sg.is_connector}
    assert {"straight", "right", "left"} <= turns
    # buildings stay off the roads: no footprint crosses a lane centre line
    lanes = shapely.union_all([shapely.LineString(sg.poly) for sg in town.segments])
    assert not any(shapely.Polygon(f).intersects(lanes) for f in town.footprints)


def test_traffic_moves_without_collisions(town_and_traffic):
    _, traffic = town_and_traffic
    fleet = traffic.fleet
    assert fleet.moving.sum() >= 20 and (~fleet.moving).sum() >= 10
    prev = None
    for step in range(40):
        poses, speed = traffic.poses()
        boxes = np.c_[poses[:, :2], np.zeros(len(poses)), fleet.size, np.radians(poses[:, 4])]
        polys = shapely.polygons(boxes_to_bev_corners(boxes))
        pairs = shapely.STRtree(polys).query(polys, predicate="intersects")
        overlapping = pairs[:, pairs[0] != pairs[1]]
        assert not overlapping.size, f"vehicles overlap at step {step}: {overlapping}"
        if prev is not None:   # the ballistic update: displacement = mean speed x dt along the route
            moved = np.linalg.norm(poses[:, :2] - prev[0][:, :2], axis=1)
            np.testing.assert_allclose(moved, (speed + prev[1]) / 2 * 0.1, atol=0.02, rtol=0.05)
            assert (poses[~fleet.moving, :2] == prev[0][~fleet.moving, :2]).all()
        prev = (poses, speed)
        traffic.step(0.1)
    moving_speed = prev[1][fleet.moving]
    assert (moving_speed > 3.0).mean() > 0.3 and moving_speed.max() < 60 / 3.6 + 0.1


def test_bad_specs_are_refused():
    with pytest.raises(ValueError, match="town.block_length"):
        build_town(TownSpec(block_length=(10.0, 20.0)), np.random.default_rng(0))
    with pytest.raises(ValueError, match="traffic.moving_mix"):
        TrafficSpec(moving_mix=(1.0, 0.0)).validate()
