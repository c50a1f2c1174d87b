"""The multi-agent sample plan: ego, communication range, delay, pose noise, transforms, labels."""
from __future__ import annotations

import numpy as np
import pytest
import tiny_world as tw

from v2xdet.data_utils.formats import validate_frame_meta, vehicle_boxes
from v2xdet.data_utils.noise import pose_noise
from v2xdet.data_utils.scenario import (
    ScenarioSettings,
    WildSetting,
    boxes_in_range,
    choose_ego,
    listing_order,
    plan_scenario,
    select_agents,
)
from v2xdet.geometry.boxes import transform_boxes
from v2xdet.geometry.transforms import x1_to_x2


def _meta(agent, stamp):
    return validate_frame_meta("memory", tw.world_meta(agent, tw.TIMESTAMPS.index(stamp)), agent)


def plan(t=2, rng=None, **kwargs):
    settings = ScenarioSettings(lidar_range=tw.LIDAR_RANGE, **kwargs)
    return plan_scenario(tw.SCENARIO, tw.TIMESTAMPS[t], list(tw.AGENTS), lambda a: tw.TIMESTAMPS, _meta,
                         vehicle_boxes, settings, rng)


def _close(a, b, atol=1e-6):
    np.testing.assert_allclose(a, b, atol=atol)


# ---- ego choice --------------------------------------------------------------------------------

def test_fixed_ego_is_first_vehicle_in_folder_name_order():
    assert choose_ego([-1, 641, 650], [True, False, False], None) == 641
    # folder names sort as strings (OpenCOOD's sorted(os.listdir)): "1000" < "999"
    assert listing_order([999, 1000, -1]) == [-1, 1000, 999]
    assert choose_ego([999, 1000], [False, False], None) == 1000
    # two roadside units listed first never become ego
    assert choose_ego([-2, -1, 7], [True, True, False], None) == 7


def test_random_ego_is_repeatable_and_never_an_rsu():
    ids, rsu = [-1, 641, 650, 680], [True, False, False, False]
    first = [choose_ego(ids, rsu, np.random.default_rng(s)) for s in range(200)]
    again = [choose_ego(ids, rsu, np.random.default_rng(s)) for s in range(200)]
    assert first == again
    assert set(first) == {641, 650, 680}


def test_no_vehicle_to_be_ego_is_an_error():
    with pytest.raises(ValueError, match="roadside"):
        choose_ego([-1, -2], [True, True], None)


def test_plan_in_test_mode_is_fixed_and_training_mode_follows_the_generator():
    assert plan().ego_id == 641
    egos = {plan(rng=np.random.default_rng(s)).ego_id for s in range(30)}
    assert egos == {641, 650, 680}
    assert plan(rng=np.random.default_rng(5)).ego_id == plan(rng=np.random.default_rng(5)).ego_id


# ---- communication range -----------------------------------------------------------------------

def test_select_agents_range_and_cap_nearest_first():
    poses = np.zeros((6, 6))
    poses[:, 0] = [0.0, 50.0, 10.0, 80.0, 30.0, -69.0]
    poses[:, 1] = [0.0, 0.0, 0.0, 0.0, 0.0, 5.0]  # agent 5 at 69.18 m
    np.testing.assert_array_equal(select_agents(0, poses, 70.0, 10), [0, 2, 4, 1, 5])
    np.testing.assert_array_equal(select_agents(0, poses, 70.0, 3), [0, 2, 4])
    np.testing.assert_array_equal(select_agents(2, poses, 25.0, 5), [2, 0, 4])
    np.testing.assert_array_equal(select_agents(0, poses, 70.0, 1), [0])


def test_plan_excludes_far_agents_and_orders_by_distance():
    s = plan(t=0)
    np.testing.assert_array_equal(s.agent_ids, [641, -1, 650])  # RSU at 25.0 m, 650 at 31.0 m
    _close(s.distance, [0.0, 25.0, np.hypot(30, 8)])
    np.testing.assert_array_equal(s.is_rsu, [False, True, False])
    assert 680 not in s.agent_ids
    capped = plan(t=0, max_cav=2)
    np.testing.assert_array_equal(capped.agent_ids, [641, -1])
    alone = plan(t=0, comm_range=20.0)
    np.testing.assert_array_equal(alone.agent_ids, [641])


# ---- delay -------------------------------------------------------------------------------------

def test_delay_takes_points_and_pose_from_the_earlier_frame_but_labels_from_now():
    clean = plan(t=2)
    late = plan(t=2, wild=WildSetting(async_=True, async_mode="sim", async_overhead=100))
    np.testing.assert_array_equal(late.delay, [0, 1, 1])
    assert late.data_timestamps == [tw.TIMESTAMPS[2], tw.TIMESTAMPS[1], tw.TIMESTAMPS[1]]
    _close(late.pose_data[2], tw.lidar_pose(650, 1))
    _close(late.pose_data[0], tw.lidar_pose(641, 2))
    _close(late.speed, [tw.vehicle_state(641, 2)[3], 0.0, tw.vehicle_state(650, 1)[3]])
    _close(late.prior_encoding[:, 1], [0, 1, 1])
    # labels stay at the current time, and so do the union GT and the agent set
    np.testing.assert_array_equal(late.gt_ids, clean.gt_ids)
    _close(late.gt_boxes, clean.gt_boxes)
    # the clean placement of a delayed agent's data is its earlier pose
    _close(late.agent_to_ego_clean[2], x1_to_x2(tw.lidar_pose(650, 1), tw.lidar_pose(641, 2)))


def test_delay_is_clamped_to_the_first_frame():
    wild = WildSetting(async_=True, async_mode="sim", async_overhead=250)
    np.testing.assert_array_equal(plan(t=1, wild=wild).delay, [0, 1, 1])
    np.testing.assert_array_equal(plan(t=2, wild=wild).delay, [0, 2, 2])
    first = plan(t=0, wild=wild)
    np.testing.assert_array_equal(first.delay, [0, 0, 0])
    assert first.data_timestamps == [tw.TIMESTAMPS[0]] * 3


def test_real_mode_delay_is_repeatable_and_bounded():
    wild = WildSetting(async_=True, async_mode="real", async_overhead=200, data_size=1.06,
                       transmission_speed=27, backbone_delay=10, seed=3)
    a, b = plan(t=2, wild=wild), plan(t=2, wild=wild)
    np.testing.assert_array_equal(a.delay, b.delay)
    assert a.delay[0] == 0
    assert np.all((a.delay[1:] >= 0) & (a.delay[1:] <= 2))


# ---- pose noise --------------------------------------------------------------------------------

def test_pose_noise_on_sent_poses_of_non_ego_agents_only():
    wild = WildSetting(loc_err=True, xyz_std=0.5, ryp_std=1.0, seed=11)
    s = plan(t=1, wild=wild)
    _close(s.pose_sent[0], s.pose_data[0])
    for row in (1, 2):
        expected = pose_noise(11, tw.SCENARIO, tw.TIMESTAMPS[1], int(s.agent_ids[row]), 0.5, 1.0)
        _close(s.pose_sent[row] - s.pose_data[row], expected)
    assert not np.allclose(s.pose_sent[1] - s.pose_data[1], s.pose_sent[2] - s.pose_data[2])
    # fusion uses the noisy pose, labels the clean one
    _close(s.agent_to_ego[2], x1_to_x2(s.pose_sent[2], tw.lidar_pose(641, 1)))
    _close(s.agent_to_ego_clean[2], x1_to_x2(tw.lidar_pose(650, 1), tw.lidar_pose(641, 1)))
    _close(s.gt_boxes, plan(t=1).gt_boxes)
    # the same sample planned again draws the same error
    _close(plan(t=1, wild=wild).agent_to_ego, s.agent_to_ego)


def test_delayed_agents_get_the_noise_of_the_frame_they_send():
    wild = WildSetting(loc_err=True, xyz_std=0.3, ryp_std=0.3, seed=2, async_=True, async_overhead=100)
    s = plan(t=2, wild=wild)
    expected = pose_noise(2, tw.SCENARIO, tw.TIMESTAMPS[1], 650, 0.3, 0.3)
    _close(s.pose_sent[2] - s.pose_data[2], expected)


# ---- transforms --------------------------------------------------------------------------------

def test_clean_transforms_put_one_agents_box_on_anothers():
    for t in range(3):
        ids_a, boxes_a = vehicle_boxes(_meta(650, tw.TIMESTAMPS[t])["vehicles"], tw.lidar_pose(650, t))
        ids_b, boxes_b = vehicle_boxes(_meta(-1, tw.TIMESTAMPS[t])["vehicles"], tw.lidar_pose(-1, t))
        shared = np.intersect1d(ids_a, ids_b)
        assert shared.size >= 2
        moved = transform_boxes(boxes_a[np.isin(ids_a, shared)], x1_to_x2(tw.lidar_pose(650, t),
                                                                           tw.lidar_pose(-1, t)))
        _close(moved, boxes_b[np.isin(ids_b, shared)], atol=1e-6)


def test_own_labels_move_onto_the_union_gt_with_the_clean_transform():
    s = plan(t=1)
    for row in range(s.num_agents):
        moved = transform_boxes(s.own_boxes[row], s.agent_to_ego_clean[row])
        for vid, box in zip(s.own_ids[row], moved, strict=True):
            if vid in s.gt_ids:
                _close(box[:6], s.gt_boxes[list(s.gt_ids).index(vid)][:6], atol=1e-6)


def test_pairwise_matrices_are_consistent():
    wild = WildSetting(loc_err=True, xyz_std=0.4, ryp_std=2.0, seed=4)
    s = plan(t=2, wild=wild)
    n = s.num_agents
    for i in range(n):
        _close(s.pairwise[i, i], np.eye(4))
        _close(s.pairwise[i, 0], s.fusion_to_ego[i])
        for j in range(n):
            _close(s.pairwise[i, j], x1_to_x2(s.pose_sent[i], s.pose_sent[j]))
            for k in range(n):
                _close(s.pairwise[j, k] @ s.pairwise[i, j], s.pairwise[i, k])


def test_spatial_correction_with_delayed_ego_reference():
    wild = WildSetting(async_=True, async_overhead=100)
    cur = plan(t=2, wild=wild)
    ref = plan(t=2, wild=wild, cur_ego_pose_flag=False)
    _close(cur.spatial_correction, np.broadcast_to(np.eye(4), cur.spatial_correction.shape))
    ego_then, ego_now = tw.lidar_pose(641, 1), tw.lidar_pose(641, 2)
    _close(ref.agent_to_ego[2], x1_to_x2(tw.lidar_pose(650, 1), ego_then))
    _close(ref.spatial_correction[2], x1_to_x2(ego_then, ego_now))
    assert not np.allclose(ref.spatial_correction[2], np.eye(4))  # the ego moved 1 m in 100 ms
    _close(ref.fusion_to_ego, cur.fusion_to_ego)
    _close(ref.spatial_correction[0], np.eye(4))


# ---- labels ------------------------------------------------------------------------------------

def test_gt_is_the_deduplicated_union_without_the_ego_inside_the_range():
    s = plan(t=0)
    # 641 lists 650 700 701 703 705, the RSU 641 650 700 705, 650 lists 641 700 702 703;
    # 704 is listed by nobody, 705's footprint crosses the range edge, 641 is the ego.
    np.testing.assert_array_equal(np.sort(s.gt_ids), [650, 700, 701, 702, 703])
    expected_ids, expected = vehicle_boxes({v: tw.vehicle_label(v, 0) for v in s.gt_ids},
                                           tw.lidar_pose(641, 0))
    order = np.argsort(s.gt_ids)
    _close(s.gt_boxes[order], expected)
    assert (np.abs(s.gt_boxes[:, :2]) < 70).all()
    np.testing.assert_array_equal(np.sort(s.own_ids[0]), [650, 700, 701, 703, 705])
    np.testing.assert_array_equal(np.sort(s.own_ids[2]), [641, 700, 702, 703])


def test_boxes_in_range_checks_the_whole_footprint():
    boxes = np.array([[0, 0, 0, 4, 2, 1.5, 0.0], [69, 0, 0, 4, 2, 1.5, 0.0],
                      [0, 38.5, 0, 4, 2, 1.5, 0.0], [0, 38.5, 0, 4, 2, 1.5, np.pi / 2]])
    np.testing.assert_array_equal(boxes_in_range(boxes, tw.LIDAR_RANGE), [True, False, True, False])
    assert boxes_in_range(np.zeros((0, 7)), tw.LIDAR_RANGE).shape == (0,)


def test_prior_encoding_columns():
    s = plan(t=1)
    _close(s.prior_encoding[:, 0], s.speed / 30.0)
    _close(s.prior_encoding[:, 2], [0, 1, 0])


# ---- config ------------------------------------------------------------------------------------

def test_wild_setting_from_config_reads_v2xvit_keys_and_rejects_bad_values():
    w = WildSetting.from_config({"async": True, "async_mode": "real", "async_overhead": 100, "seed": 25,
                                 "loc_err": True, "xyz_std": 0.2, "ryp_std": 0.2, "data_size": 1.06,
                                 "transmission_speed": 27, "backbone_delay": 10})
    assert (w.async_, w.async_mode, w.seed, w.loc_err, w.xyz_std, w.backbone_delay) == (
        True, "real", 25, True, 0.2, 10.0)
    assert WildSetting.from_config(None) == WildSetting()
    with pytest.raises(ValueError, match="wild_setting.async_mode"):
        WildSetting.from_config({"async_mode": "fast"})
    with pytest.raises(ValueError, match="wild_setting.xyz_std"):
        WildSetting.from_config({"xyz_std": -1})
    with pytest.raises(ValueError, match="wild_setting.seed"):
        WildSetting.from_config({"seed": -3})
    with pytest.raises(ValueError, match="wild_setting.loc_err"):
        WildSetting.from_config({"loc_err": "yes"})
    with pytest.raises(ValueError, match="max_cav"):
        ScenarioSettings(lidar_range=tw.LIDAR_RANGE, max_cav=0)
