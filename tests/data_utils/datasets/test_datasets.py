"""Datasets for every fusion strategy on the tiny world: views, augmentation, noise, delay, collate."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
import tiny_world as tw
import torch
from torch.utils.data import DataLoader

from v2xdet.data_utils.datasets import (
    DATASETS,
    EarlyFusionDataset,
    IntermediateFusionDataset,
    LateFusionDataset,
    NoFusionDataset,
    build_dataset,
    collate,
)
from v2xdet.data_utils.formats import FormatError, frame_paths, read_pcd, vehicle_boxes
from v2xdet.data_utils.noise import noisy_pose
from v2xdet.data_utils.preprocess import crop_range, remove_ego_points
from v2xdet.geometry.boxes import boxes_to_corners, points_in_boxes
from v2xdet.geometry.transforms import transform_points, x1_to_x2

STRATEGIES = ("none", "early", "late", "intermediate")


def make(root, strategy, train=False, wild=None, **kwargs):
    cfg = tw.tiny_config(root, strategy, **kwargs.pop("fusion_args", {}))
    if wild is not None:
        cfg["wild_setting"] = wild
    for key, value in kwargs.pop("cfg", {}).items():
        cfg[key] = value
    return build_dataset(cfg, "train", train, **kwargs)


def agent_cloud(root, agent, t):
    """An agent's cloud as the datasets use it: read from disk, own body cut for vehicles."""
    points = read_pcd(frame_paths(root, tw.SCENARIO, agent, tw.TIMESTAMPS[t])[0])
    return points if agent == tw.RSU_ID else remove_ego_points(points)


def voxel_points(m):
    """The real points stored in one voxelized map, as an (N, 4) array."""
    feats, num = m["voxel_features"], m["voxel_num_points"]
    mask = np.arange(feats.shape[1])[None, :] < num[:, None]
    return feats[mask]


def same_rows(a, b, atol=1e-4):
    """Two point sets are equal up to order (rows sorted lexicographically)."""
    assert a.shape == b.shape
    a, b = (x[np.lexsort(np.round(x, 3).T[::-1])] for x in (a, b))
    np.testing.assert_allclose(a, b, atol=atol)


def test_build_dataset_table_and_errors(tiny_split):
    for strategy, cls in zip(STRATEGIES, (NoFusionDataset, EarlyFusionDataset, LateFusionDataset,
                                          IntermediateFusionDataset), strict=True):
        assert DATASETS[strategy] is cls
        ds = make(tiny_split, strategy)
        assert type(ds) is cls and len(ds) == len(tw.TIMESTAMPS)
        assert isinstance(ds, torch.utils.data.Dataset)
    with pytest.raises(ValueError, match="fusion.strategy"):
        build_dataset(dict(tw.tiny_config(tiny_split, "none"), fusion={"strategy": "middle"}), "train", False)
    cfg = tw.tiny_config(tiny_split, "none")
    del cfg["test_dir"]
    with pytest.raises(ValueError, match="test_dir"):
        build_dataset(cfg, "test", False)
    with pytest.raises(IndexError):
        make(tiny_split, "none")[3]


def test_no_fusion_is_the_ego_cloud_and_its_own_labels(tiny_split):
    s = make(tiny_split, "none")[1]
    assert s["sample_id"] == (tw.SCENARIO, tw.TIMESTAMPS[1], 641)
    (unit,) = s["units"]
    (m,) = unit["maps"]
    same_rows(voxel_points(m), crop_range(agent_cloud(tiny_split, 641, 1), tw.LIDAR_RANGE))
    # own labels of the ego (705 lies outside the range); evaluation GT is the union
    assert len(unit["label_boxes"]) == 4
    np.testing.assert_array_equal(np.sort(s["gt_ids"]), [650, 700, 701, 702, 703])
    np.testing.assert_allclose(s["gt_corners"], boxes_to_corners(s["gt_boxes"]), atol=1e-5)


def test_early_fusion_merges_the_transformed_clouds(tiny_split):
    s = make(tiny_split, "early", keep_points=True)[2]
    ego_pose = tw.lidar_pose(641, 2)
    expected = [transform_points(agent_cloud(tiny_split, a, 2), x1_to_x2(tw.lidar_pose(a, 2), ego_pose))
                for a in (641, -1, 650)]
    for got, exp in zip(s["points"], expected, strict=True):
        np.testing.assert_allclose(got, exp, atol=1e-4)
    same_rows(voxel_points(s["units"][0]["maps"][0]), crop_range(np.concatenate(expected), tw.LIDAR_RANGE))
    # clean transforms: every agent's points of a GT vehicle land inside its box in the ego frame
    boxes = s["gt_boxes"].astype(np.float64)
    for a, pts in zip((641, -1, 650), s["points"], strict=True):
        world_inside = points_in_boxes(pts, boxes).any(axis=1).sum()
        vehicle_pts = 150 * len(set(tw.sensed_vehicles(a, 2)) & set(s["gt_ids"].tolist()))
        assert world_inside == vehicle_pts


def test_intermediate_keeps_each_agent_in_its_frame_ego_first(tiny_split):
    s = make(tiny_split, "intermediate")[0]
    (unit,) = s["units"]
    np.testing.assert_array_equal(s["agent_ids"], [641, -1, 650])
    for m, a in zip(unit["maps"], (641, -1, 650), strict=True):
        cloud = agent_cloud(tiny_split, a, 0)
        if a == tw.RSU_ID:  # voxelized in its detection frame: raised to the ego's sensor height
            cloud[:, 2] += tw.RSU_LIDAR_HEIGHT - tw.CAV_LIDAR_HEIGHT
        assert len(voxel_points(m)) > 0
        same_rows(voxel_points(m), crop_range(cloud, tw.LIDAR_RANGE))
    for row, a in enumerate((641, -1, 650)):
        expected = x1_to_x2(tw.lidar_pose(a, 0), tw.lidar_pose(641, 0))
        np.testing.assert_allclose(unit["agent_to_ego"][row], expected, atol=1e-9)
    np.testing.assert_allclose(unit["prior_encoding"][:, 2], [0, 1, 0])
    np.testing.assert_allclose(unit["spatial_correction"], np.broadcast_to(np.eye(4), (3, 4, 4)))


def test_intermediate_proj_first_projects_and_sets_identity(tiny_split):
    plain = make(tiny_split, "intermediate")[0]["units"][0]
    proj = make(tiny_split, "intermediate", fusion_args={"proj_first": True})[0]["units"][0]
    np.testing.assert_allclose(proj["agent_to_ego"], np.broadcast_to(np.eye(4), (3, 4, 4)))
    for row, a in enumerate((641, -1, 650)):
        moved = transform_points(agent_cloud(tiny_split, a, 0), plain["agent_to_ego"][row])
        same_rows(voxel_points(proj["maps"][row]), crop_range(moved, tw.LIDAR_RANGE))
    np.testing.assert_allclose(proj["pairwise"], np.broadcast_to(np.eye(4), (3, 3, 4, 4)), atol=1e-9)


def test_late_fusion_one_unit_per_agent_with_own_labels_and_merge_transform(tiny_split):
    s = make(tiny_split, "late")[1]
    assert len(s["units"]) == 3
    ego_pose = tw.lidar_pose(641, 1)
    _, world = vehicle_boxes({v: tw.vehicle_label(v, 1) for v in tw.VEHICLES}, ego_pose)
    targets = boxes_to_corners(world)
    for unit, a in zip(s["units"], (641, -1, 650), strict=True):
        # each agent detects in its frame raised to the ego's sensor height (RSU: +3.1 m)
        rise = np.eye(4)
        rise[2, 3] = tw.lidar_pose(a, 1)[2] - ego_pose[2]
        cloud = transform_points(agent_cloud(tiny_split, a, 1), rise)
        same_rows(voxel_points(unit["maps"][0]), crop_range(cloud, tw.LIDAR_RANGE))
        np.testing.assert_allclose(unit["output_to_ego"],
                                   x1_to_x2(tw.lidar_pose(a, 1), ego_pose) @ np.linalg.inv(rise), atol=1e-9)
        # own labels, moved by the merge transform, sit on the true boxes in the ego frame
        to_ego = unit["output_to_ego"]
        moved = boxes_to_corners(unit["label_boxes"]) @ to_ego[:3, :3].T + to_ego[:3, 3]
        for corners in moved:
            dist = np.abs(targets - corners).max(axis=(1, 2))
            assert dist.min() < 1e-3
        assert len(unit["label_boxes"]) == 4


def test_augmentation_keeps_points_in_their_boxes_for_every_strategy(tiny_split):
    for strategy in STRATEGIES:
        test_ds, train_ds = make(tiny_split, strategy), make(tiny_split, strategy, train=True)
        for idx in range(len(test_ds)):
            before, after = test_ds.prepare(idx), train_ds.prepare(idx)
            assert not np.allclose(after.augmentation, np.eye(4))
            assert before.plan.ego_id == after.plan.ego_id
            for row in range(before.plan.num_agents):
                ids = np.intersect1d(before.gt_ids, after.gt_ids)
                inside = [points_in_boxes(transform_points(p.points[row], p.fusion_to_ego[row]),
                                          p.gt_boxes[np.isin(p.gt_ids, ids)]) for p in (before, after)]
                np.testing.assert_array_equal(inside[0], inside[1])
                assert inside[0].any()
                own = np.intersect1d(before.own_ids[row], after.own_ids[row])
                inside = [points_in_boxes(p.points[row], p.own_boxes[row][np.isin(p.own_ids[row], own)])
                          for p in (before, after)]
                np.testing.assert_array_equal(inside[0], inside[1])
                assert inside[0].any()


def test_augmented_intermediate_transforms_are_conjugated(tiny_split):
    before = make(tiny_split, "intermediate").prepare(2)
    after = make(tiny_split, "intermediate", train=True).prepare(2)
    a = after.augmentation
    np.testing.assert_allclose(after.agent_to_ego, a @ before.agent_to_ego @ np.linalg.inv(a), atol=1e-9)
    # still rigid: the augmentation's scale and flip cancel in A T A^-1
    rot = after.agent_to_ego[:, :3, :3]
    np.testing.assert_allclose(rot @ rot.transpose(0, 2, 1), np.broadcast_to(np.eye(3), rot.shape), atol=1e-9)
    np.testing.assert_allclose(np.linalg.det(rot), 1.0, atol=1e-9)


def test_training_draws_repeat_per_epoch_and_change_across_epochs(tiny_split):
    ds = make(tiny_split, "intermediate", train=True, fusion_args={"ego_choice": "random"})
    first = ds.prepare(1)
    np.testing.assert_array_equal(first.augmentation, ds.prepare(1).augmentation)
    egos = set()
    for epoch in range(12):
        ds.set_epoch(epoch)
        egos.add(ds.prepare(1).plan.ego_id)
    assert egos == {641, 650, 680}
    ds.set_epoch(0)
    np.testing.assert_array_equal(ds.prepare(1).augmentation, first.augmentation)
    ds.set_epoch(1)
    assert not np.allclose(ds.prepare(1).augmentation, first.augmentation)


def test_pose_noise_reaches_early_and_late_fusion(tiny_split):
    wild = {"loc_err": True, "xyz_std": 0.5, "ryp_std": 2.0, "seed": 9}
    noisy_pose_650 = noisy_pose(tw.lidar_pose(650, 1), 9, tw.SCENARIO, tw.TIMESTAMPS[1], 650, 0.5, 2.0)
    noisy_t = x1_to_x2(noisy_pose_650, tw.lidar_pose(641, 1))
    early = make(tiny_split, "early", wild=wild, keep_points=True)[1]
    np.testing.assert_allclose(early["points"][2], transform_points(agent_cloud(tiny_split, 650, 1), noisy_t),
                               atol=1e-4)
    clean = make(tiny_split, "early", keep_points=True)[1]
    assert np.abs(early["points"][2][:, :2] - clean["points"][2][:, :2]).max() > 0.1
    np.testing.assert_allclose(early["points"][0], clean["points"][0])  # the ego is never perturbed
    late = make(tiny_split, "late", wild=wild)[1]
    np.testing.assert_allclose(late["units"][2]["output_to_ego"], noisy_t, atol=1e-9)
    np.testing.assert_allclose(late["gt_boxes"], clean["gt_boxes"])  # labels stay clean


def test_delay_feeds_earlier_clouds_with_current_labels(tiny_split):
    wild = {"async": True, "async_mode": "sim", "async_overhead": 100}
    s = make(tiny_split, "intermediate", wild=wild)[2]
    np.testing.assert_array_equal(s["delay"], [0, 1, 1])
    (unit,) = s["units"]
    same_rows(voxel_points(unit["maps"][2]), crop_range(agent_cloud(tiny_split, 650, 1), tw.LIDAR_RANGE))
    same_rows(voxel_points(unit["maps"][0]), crop_range(agent_cloud(tiny_split, 641, 2), tw.LIDAR_RANGE))
    np.testing.assert_allclose(unit["prior_encoding"][:, 1], [0, 1, 1])
    np.testing.assert_allclose(s["gt_boxes"], make(tiny_split, "intermediate")[2]["gt_boxes"])


def test_collate_shapes_padding_and_agent_layout(tiny_split):
    full = make(tiny_split, "intermediate")
    two = make(tiny_split, "intermediate", cfg={"train_params": {"max_cav": 2, "seed": 0}})
    samples = [two[0], full[1]]
    b = collate(samples)
    np.testing.assert_array_equal(b["record_len"], [2, 3])
    assert b["agent_to_ego"].shape == (2, 3, 4, 4) and b["agent_to_ego"].dtype == torch.float32
    assert b["prior_encoding"].shape == (2, 3, 3) and b["spatial_correction"].shape == (2, 3, 4, 4)
    assert b["pairwise"].shape == (2, 3, 3, 4, 4)
    np.testing.assert_array_equal(b["agent_mask"], [[True, True, False], [True, True, True]])
    np.testing.assert_allclose(b["agent_to_ego"][0, 2], torch.eye(4))      # padding
    np.testing.assert_allclose(b["prior_encoding"][0, 2], torch.zeros(3))
    np.testing.assert_allclose(b["agent_to_ego"][1], samples[1]["units"][0]["agent_to_ego"], atol=1e-6)
    # voxels: map index column, sample-major with the ego map first
    counts = [len(m["voxel_coords"]) for s in samples for m in s["units"][0]["maps"]]
    np.testing.assert_array_equal(torch.bincount(b["voxel_coords"][:, 0].long()), counts)
    assert b["voxel_features"].shape[0] == b["voxel_coords"].shape[0] == b["voxel_num_points"].shape[0]
    assert b["voxel_coords"].shape[1] == 4 and b["voxel_coords"].dtype == torch.int32
    assert b["targets"]["labels"].shape == (2, 50, 88, 2)
    assert b["targets"]["reg_targets"].shape == (2, 50, 88, 2, 7)
    assert b["sample_ids"] == [(tw.SCENARIO, tw.TIMESTAMPS[0], 641), (tw.SCENARIO, tw.TIMESTAMPS[1], 641)]
    assert [g.shape[1:] for g in b["gt_corners"]] == [(8, 3), (8, 3)]
    np.testing.assert_array_equal(b["agent_ids"][0], [641, -1])
    np.testing.assert_array_equal(b["unit_sample_index"], [0, 1])
    assert b["strategy"] == "intermediate"


def test_collate_late_units_and_targets_follow_the_labels(tiny_split):
    ds = make(tiny_split, "late")
    b = collate([ds[0], ds[1]])
    np.testing.assert_array_equal(b["record_len"], [1] * 6)
    np.testing.assert_array_equal(b["unit_sample_index"], [0, 0, 0, 1, 1, 1])
    assert b["output_to_ego"].shape == (6, 4, 4) and len(b["gt_boxes"]) == 2
    # every labelled box inside the anchor area gets at least one positive anchor
    positives = (b["targets"]["labels"] == 1).flatten(1).sum(1)
    assert (positives >= torch.tensor([len(x) for x in b["label_boxes"]])).all()
    with pytest.raises(ValueError, match="one fusion strategy"):
        collate([ds[0], make(tiny_split, "none")[0]])
    assert collate([make(tiny_split, "none", with_targets=False)[0]])["targets"] is None


def test_dataloader_with_workers(tiny_split):
    ds = make(tiny_split, "intermediate", train=True)
    loader = DataLoader(ds, batch_size=2, num_workers=1, collate_fn=ds.collate, shuffle=False)
    batches = list(loader)
    assert [len(b["sample_ids"]) for b in batches] == [2, 1]
    direct = ds.collate([ds[0], ds[1]])
    torch.testing.assert_close(batches[0]["voxel_features"], direct["voxel_features"])


def test_unreadable_frame_names_the_file(tiny_split, tmp_path):
    root = shutil.copytree(tiny_split, tmp_path / "train")
    pcd = frame_paths(root, tw.SCENARIO, 650, tw.TIMESTAMPS[1])[0]
    pcd.write_bytes(pcd.read_bytes()[:300])
    ds = make(root, "early")
    ds[0]
    with pytest.raises(FormatError, match=str(pcd)):
        ds[1]


def test_a_real_config_file_builds_its_dataset(tiny_split):
    from v2xdet.config import load_config

    path = tw.REPO_ROOT / "hypes_yaml" / "v2xset" / "point_pillar_v2xvit.yaml"
    cfg = load_config(path, {"root_dir": str(tiny_split), "validate_dir": str(tiny_split),
                             "test_dir": str(tiny_split)})
    ds = build_dataset(cfg, "validate", train=False)
    assert isinstance(ds, IntermediateFusionDataset) and not ds.settings.cur_ego_pose_flag
    assert ds.describe(1).endswith(f"{tw.SCENARIO} frame {tw.TIMESTAMPS[1]}")
    b = ds.collate([ds[1]])
    np.testing.assert_array_equal(b["record_len"], [3])
    w, h = cfg["postprocess"]["anchor_args"]["anchor_grid"]
    assert b["targets"]["labels"].shape == (1, h, w, cfg["postprocess"]["anchor_args"]["num"])
    nx, ny, _ = cfg["preprocess"]["grid_size"]
    coords = b["voxel_coords"]
    assert coords[:, 3].max() < nx and coords[:, 2].max() < ny and (coords[:, 1] == 0).all()


@pytest.mark.parametrize("strategy, fusion_args", [("early", {}), ("intermediate", {"proj_first": True}),
                                                   ("intermediate", {}), ("late", {}), ("none", {})])
def test_every_sample_carries_the_agents_sensor_positions_in_the_ego_frame(tiny_split, strategy, fusion_args):
    ds = make(tiny_split, strategy, fusion_args=fusion_args)
    samples = [ds[0], ds[2]]
    for s, t in zip(samples, (0, 2), strict=True):
        ego_pose = tw.lidar_pose(641, t)
        expected = [x1_to_x2(tw.lidar_pose(a, t), ego_pose)[:3, 3] for a in s["agent_ids"]]
        assert s["agent_positions"].shape == (3, 3) and s["agent_positions"].dtype == np.float32
        np.testing.assert_allclose(s["agent_positions"], expected, atol=1e-4)
        np.testing.assert_array_equal(s["agent_positions"][0], 0.0)
        # the RSU (5 m mast) sits 3.1 m above the ego's sensor, 650 at its height
        np.testing.assert_allclose(s["agent_positions"][1:, 2], [3.1, 0.0], atol=1e-4)
    batch = collate(samples)
    assert [tuple(p.shape) for p in batch["agent_positions"]] == [(3, 3), (3, 3)]
    torch.testing.assert_close(batch["agent_positions"][1], torch.from_numpy(samples[1]["agent_positions"]))


def test_agent_positions_follow_the_augmentation_and_the_pose_noise(tiny_split):
    wild = {"loc_err": True, "xyz_std": 0.5, "ryp_std": 2.0, "seed": 9}
    ds = make(tiny_split, "early", train=True, wild=wild)
    prepared = ds.prepare(1)
    positions = ds[1]["agent_positions"]
    np.testing.assert_allclose(positions, prepared.fusion_to_ego[:, :3, 3], atol=1e-5)
    # the augmented positions are the augmentation of the (noisy) unaugmented ones
    plain = make(tiny_split, "early", wild=wild)[1]["agent_positions"]
    np.testing.assert_allclose(positions, plain @ prepared.augmentation[:3, :3].T, atol=1e-4)


@pytest.mark.parametrize("strategy, fusion_args", [
    ("none", {}), ("late", {}), ("early", {}), ("intermediate", {}), ("intermediate", {"proj_first": True})])
def test_min_points_turns_sparse_labels_into_ignore_regions(tiny_split, strategy, fusion_args):
    def labels(min_points):
        cfg = tw.tiny_config(tiny_split, strategy, **fusion_args)
        cfg["postprocess"]["target_args"]["min_points"] = min_points
        units = build_dataset(cfg, "train", False)[0]["units"]
        return np.concatenate([u["targets"]["labels"].ravel() for u in units])

    plain, some, none_left = labels(0), labels(100), labels(10**6)
    assert (plain == 1).sum() > 0
    # every label sits on ~150 surface points per seeing agent: 100 keeps them, 10**6 drops them all
    np.testing.assert_array_equal(some, plain)
    assert (none_left == 1).sum() == 0
    assert (none_left == -1).sum() > (plain == -1).sum()
    assert (none_left[plain == 1] == -1).all()   # former positives are now ignored
