"""The written dataset read back through the real reader, and the properties it promises."""
from __future__ import annotations

import numpy as np
import pytest
import yaml

from v2xdet.data_utils.formats import index_dataset, load_frame, vehicle_boxes
from v2xdet.data_utils.synthetic.world import FRAME_DT
from v2xdet.geometry.boxes import points_in_boxes
from v2xdet.geometry.transforms import transform_points, x_to_world


def _frames(out):
    index = index_dataset(out / "train")
    for scenario in index.scenarios:
        for agent in index.agent_ids(scenario):
            for ts in index.timestamps(scenario, agent):
                yield index, load_frame(index, scenario, agent, ts)


def test_layout_ids_and_timestamps(tiny_dataset):
    out, _ = tiny_dataset
    index = index_dataset(out / "train")
    assert len(index.scenarios) == 1
    scenario = index.scenarios[0]
    assert (out / "train" / scenario / "data_protocol.yaml").is_file()
    agents = index.agent_ids(scenario)
    assert len(agents) == 3 and sum(a < 0 for a in agents) == 1        # two CAVs and one RSU
    for agent in agents:
        stamps = [int(t) for t in index.timestamps(scenario, agent)]
        assert all(len(t) == 6 for t in index.timestamps(scenario, agent))
        assert stamps[0] in (68, 69) and np.diff(stamps).tolist() == [2, 2]
    header = (out / "train" / scenario / str(agents[-1]) / index.timestamps(scenario, agents[-1])[0])
    text = header.with_suffix(".pcd").read_bytes()[:300]
    assert b"FIELDS x y z rgb" in text and b"DATA binary" in text
    protocol = yaml.safe_load((out / "train" / scenario / "data_protocol.yaml").read_text())
    lidar = protocol["scenario"]["single_cav_list"][0]["sensing"]["perception"]["lidar"]
    assert lidar["channels"] == 16 and lidar["range"] == 120.0


def test_rsu_and_cav_frames(tiny_dataset):
    out, _ = tiny_dataset
    for _, frame in _frames(out):
        assert frame.is_rsu == (frame.agent_id < 0)
        for key in ("true_ego_pos", "predicted_ego_pos"):
            assert len(frame.extra[key]) == 6
        if frame.is_rsu:
            assert frame.ego_speed == 0.0 and 4.0 <= frame.lidar_pose[2] <= 5.0
        else:
            assert frame.lidar_pose[2] == pytest.approx(1.9, abs=0.5)   # roof LiDAR
            # the LiDAR sits 0.5 m behind the vehicle's centre, 1.9 m up (OpenCDA's mount)
            offset = np.linalg.inv(x_to_world(frame.extra["true_ego_pos"])) @ x_to_world(frame.lidar_pose)
            np.testing.assert_allclose(offset[:3, 3], [-0.5, 0.0, frame.lidar_pose[2]], atol=1e-6)


def test_round_trip_matches_the_simulation(tiny_dataset, tiny_records):
    """Files read back equal the in-memory sweeps (intensity quantised to the red byte)."""
    out, _ = tiny_dataset
    _, records = tiny_records
    index = index_dataset(out / "train")
    scenario = index.scenarios[0]
    for rec in records:
        for agent in rec.agents:
            frame = load_frame(index, scenario, agent.agent_id, rec.timestamp)
            np.testing.assert_array_equal(frame.points[:, :3], agent.sweep.points[:, :3])
            np.testing.assert_allclose(frame.points[:, 3], agent.sweep.points[:, 3], atol=0.5 / 255 + 1e-6)
            np.testing.assert_allclose(frame.lidar_pose, agent.lidar_pose)
            assert sorted(frame.vehicles) == sorted(
                int(v) for v in tiny_records[0].traffic.fleet.ids[agent.labels])


def test_every_label_has_a_point_in_its_box_and_none_beyond_range(tiny_dataset):
    out, _ = tiny_dataset
    n_labels = 0
    for _, frame in _frames(out):
        r = np.linalg.norm(frame.points[:, :3], axis=1)
        assert r.max() <= 120.0
        ids, boxes = vehicle_boxes(frame.vehicles, frame.lidar_pose)
        inside = points_in_boxes(frame.points, boxes)
        missing = ids[~inside.any(axis=0)]
        assert not missing.size, f"agent {frame.agent_id}: labels without a point {missing}"
        n_labels += len(ids)
        # labels are the vehicles within 50 m of the agent (OpenCDA's rule), sizes 3.5-8 m
        loc = np.array([v["location"] for v in frame.vehicles.values()]).reshape(-1, 3)
        here = np.asarray(frame.extra["true_ego_pos"][:2])
        assert (np.linalg.norm(loc[:, :2] - here, axis=1) <= 50.0 + 1e-6).all()
        assert ((boxes[:, 3] >= 3.5 - 1e-6) & (boxes[:, 3] <= 8.0 + 1e-6)).all()
    assert n_labels > 20


def test_no_point_inside_own_body(tiny_records):
    scenario, records = tiny_records
    fleet = scenario.traffic.fleet
    for rec in records:
        for agent in rec.agents:
            world = transform_points(agent.sweep.points, x_to_world(agent.lidar_pose))
            if agent.is_rsu:   # the pole below the sensor: radius 0.15 m
                d = np.linalg.norm(world[:, :2] - agent.lidar_pose[:2], axis=1)
                assert not ((d < 0.2) & (world[:, 2] < agent.lidar_pose[2])).any()
                continue
            pose = rec.poses[agent.vehicle]
            size = fleet.size[agent.vehicle]
            box = np.r_[pose[:2], size[2] / 2, size, np.radians(pose[4])][None]
            assert not points_in_boxes(world, box).any()


def test_other_cavs_are_labelled_when_seen(tiny_records):
    """A CAV is an ordinary vehicle for the others: listed in their labels when their points hit it."""
    _, records = tiny_records
    cav_vehicles = {a.vehicle for a in records[0].agents if not a.is_rsu}
    seen = set()
    for rec in records:
        for agent in rec.agents:
            assert agent.vehicle not in set(agent.labels.tolist())   # never labels itself
            seen |= cav_vehicles & set(agent.labels.tolist())
    assert seen, "no CAV labelled by another agent in the tiny scene"


def test_vehicles_move_consistently_between_frames(tiny_dataset):
    """Displacement between consecutive frames = mean speed x 0.1 s (speeds in km/h)."""
    out, _ = tiny_dataset
    index = index_dataset(out / "train")
    scenario = index.scenarios[0]
    by_time: dict[str, dict[int, dict]] = {}
    for agent in index.agent_ids(scenario):
        for ts in index.timestamps(scenario, agent):
            by_time.setdefault(ts, {}).update(load_frame(index, scenario, agent, ts).vehicles)
    stamps = sorted(by_time)
    checked = moving = 0
    for t0, t1 in zip(stamps[:-1], stamps[1:], strict=True):
        for vid in set(by_time[t0]) & set(by_time[t1]):
            a, b = by_time[t0][vid], by_time[t1][vid]
            step = np.linalg.norm(np.subtract(b["location"], a["location"]))
            expected = (a["speed"] + b["speed"]) / 2 / 3.6 * FRAME_DT
            assert step == pytest.approx(expected, abs=0.02 + 0.05 * expected), vid
            checked += 1
            moving += expected > 0.2
    assert checked > 10 and moving > 2


def test_statistics_are_within_bounds(tiny_dataset):
    out, stats = tiny_dataset
    on_disk = yaml.safe_load((out / "stats.yaml").read_text())
    assert on_disk["frames"] == stats["frames"] == 3
    assert stats["agent_frames"] == 9 and stats["agents_per_frame"]["mean"] == 3.0
    n_rays = 16 * 256
    assert 0.5 * n_rays < stats["points_per_agent_frame"]["mean"] <= 0.9 * n_rays
    hist = stats["range_histogram"]
    assert sum(hist["counts"]) == pytest.approx(stats["points_per_agent_frame"]["mean"] * 9)
    assert sum(hist["share"]) == pytest.approx(1.0, abs=1e-3)
    assert stats["max_point_range_m"] <= 120.0
    coop = stats["cooperation"]
    shares = [coop["ego_below_min_other_at_or_above"], coop["ego_at_or_above_min"],
              coop["nobody_at_or_above_min"]]
    assert sum(shares) == pytest.approx(1.0, abs=1e-3) and all(0 <= s <= 1 for s in shares)
    assert stats["farthest_label_m"]["max"] <= 50.0
    assert stats["timing"]["seconds"] > 0
