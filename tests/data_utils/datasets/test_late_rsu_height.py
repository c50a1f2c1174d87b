"""Late fusion detects in each agent's detection frame: its frame raised to the ego's sensor height.

In the tiny world the roadside unit's LiDAR is 5 m high and the vehicles' 1.9 m, so in its own frame
the RSU sees the ground at z = -5.05 and the cars below the range's z = -3: without the shift its
cloud would be cropped away while its labels stay.
"""
from __future__ import annotations

import numpy as np
import pytest
import tiny_world as tw

from v2xdet.data_utils.datasets import build_dataset
from v2xdet.geometry.boxes import boxes_to_corners, points_in_boxes, transform_boxes

RSU_ROW = 1  # agents of the tiny world's samples: 641 (ego), -1 (RSU), 650
RISE = tw.RSU_LIDAR_HEIGHT - tw.CAV_LIDAR_HEIGHT


def late(root, train=False):
    return build_dataset(tw.tiny_config(root, "late"), "train", train)


def map_points(m):
    """The real points of one voxelized map, (N, 4)."""
    mask = np.arange(m["voxel_features"].shape[1])[None, :] < m["voxel_num_points"][:, None]
    return m["voxel_features"][mask]


def test_rsu_cloud_survives_the_crop_and_its_labels_sit_at_vehicle_height(tiny_split):
    ds = late(tiny_split)
    prepared = ds.prepare(1)
    np.testing.assert_array_equal(prepared.plan.agent_ids, [641, tw.RSU_ID, 650])
    unit = ds.view(prepared)["units"][RSU_ROW]
    points, labels = map_points(unit["maps"][0]), unit["label_boxes"].astype(np.float64)
    # every point of the RSU's cloud inside the x/y range is kept (cropping only drops x/y outliers)
    cloud = prepared.points[RSU_ROW]
    lo, hi = np.array(tw.LIDAR_RANGE[:2]), np.array(tw.LIDAR_RANGE[3:5])
    in_xy = ((cloud[:, :2] >= lo) & (cloud[:, :2] < hi)).all(axis=1)
    assert len(points) == in_xy.sum() > 0
    np.testing.assert_allclose(np.sort(points[:, 2]), np.sort(cloud[in_xy, 2] + RISE), atol=1e-5)
    # labels: the same z as the ego sees a car at (box centre h/2 above the ground, 1.9 m below it)
    assert len(labels) >= 3
    np.testing.assert_allclose(labels[:, 2], labels[:, 5] / 2 - tw.CAV_LIDAR_HEIGHT, atol=1e-6)
    assert (labels[:, 2] > tw.LIDAR_RANGE[2]).all() and (labels[:, 2] < tw.LIDAR_RANGE[5]).all()
    # and the RSU's points of each car lie in its label (150 surface points per car)
    assert (points_in_boxes(points, labels).sum(axis=0) == 150).all()


@pytest.mark.parametrize("train", [False, True])
def test_output_to_ego_maps_the_shifted_labels_onto_the_ego_frame_gt(tiny_split, train):
    ds = late(tiny_split, train)
    for idx in range(len(ds)):
        prepared = ds.prepare(idx)
        units = ds.view(prepared)["units"]
        gt = dict(zip(prepared.gt_ids.tolist(), boxes_to_corners(prepared.gt_boxes), strict=True))
        matched = 0
        for row, unit in enumerate(units):
            moved = boxes_to_corners(transform_boxes(unit["label_boxes"].astype(np.float64),
                                                     unit["output_to_ego"]))
            for vid, corners in zip(prepared.own_ids[row].tolist(), moved, strict=True):
                if vid in gt:
                    np.testing.assert_allclose(corners, gt[vid], atol=1e-3)
                    matched += 1
        assert matched >= 6
        # vehicles at the ego's height keep their frame: no shift for the ego and agent 650
        for row in (0, 2):
            np.testing.assert_allclose(units[row]["output_to_ego"], prepared.fusion_to_ego[row], atol=1e-12)
        assert not np.allclose(units[RSU_ROW]["output_to_ego"], prepared.fusion_to_ego[RSU_ROW])


def test_intermediate_maps_without_proj_first_keep_the_rsu_cloud(tiny_split):
    """Intermediate fusion voxelizes each cloud in its own frame: the RSU's needs the same rise."""
    ds = build_dataset(tw.tiny_config(tiny_split, "intermediate"), "train", False)
    prepared = ds.prepare(1)
    maps = ds.view(prepared)["units"][0]["maps"]
    cloud = prepared.points[RSU_ROW]
    lo, hi = np.array(tw.LIDAR_RANGE[:2]), np.array(tw.LIDAR_RANGE[3:5])
    in_xy = ((cloud[:, :2] >= lo) & (cloud[:, :2] < hi)).all(axis=1)
    points = map_points(maps[RSU_ROW])
    assert len(points) == in_xy.sum() > 0
    np.testing.assert_allclose(np.sort(points[:, 2]), np.sort(cloud[in_xy, 2] + RISE), atol=1e-5)
    # the ego's map is untouched
    ego = map_points(maps[0])
    np.testing.assert_allclose(np.sort(ego[:, 2]), np.sort(prepared.points[0][:, 2][
        ((prepared.points[0][:, :2] >= lo) & (prepared.points[0][:, :2] < hi)).all(axis=1)
        & (prepared.points[0][:, 2] >= tw.LIDAR_RANGE[2]) & (prepared.points[0][:, 2] < tw.LIDAR_RANGE[5])]),
        atol=1e-6)
