"""The real V2XSet frame (../shared/data/v2xset_sample): PCD layout, labels and poses agree."""
from __future__ import annotations

import re
import warnings

import numpy as np
import open3d as o3d
import pytest

from v2xdet.data_utils.formats import (
    FormatError,
    index_dataset,
    load_frame,
    read_frame_yaml,
    read_pcd,
    vehicle_boxes,
)
from v2xdet.geometry.boxes import points_in_boxes
from v2xdet.geometry.transforms import transform_points, x1_to_x2

SCENARIO = "2021_08_21_17_30_41"


@pytest.fixture(scope="module")
def scenario_dir(sample_dir):
    return sample_dir / "validate" / SCENARIO


@pytest.fixture(scope="module")
def frame_4279(sample_dir):
    return load_frame(sample_dir / "validate", SCENARIO, 4279, "000069")


def test_point_cloud_of_4279(frame_4279, scenario_dir):
    pts = frame_4279.points
    assert pts.shape == (39719, 4) and pts.dtype == np.float32
    assert np.isfinite(pts[:, :3]).all()
    assert pts[:, 3].min() >= 0 and pts[:, 3].max() <= 1
    # the README's figures: intensity 0.62 .. 0.99, the LiDAR's 120 m range
    assert 0.6 < pts[:, 3].min() < pts[:, 3].max() < 1.0
    assert np.linalg.norm(pts[:, :3], axis=1).max() < 120.5
    # open3d (what OpenCOOD reads with) agrees: points and intensity = colors[:, 0]
    pc = o3d.io.read_point_cloud(str(scenario_dir / "4279" / "000069.pcd"))
    np.testing.assert_array_equal(np.asarray(pc.points).astype(np.float32), pts[:, :3])
    np.testing.assert_allclose(np.asarray(pc.colors)[:, 0], pts[:, 3], rtol=0, atol=1e-7)


def test_metadata_of_4279(frame_4279):
    assert frame_4279.is_rsu is False and frame_4279.agent_id == 4279
    assert frame_4279.ego_speed == pytest.approx(16.512588725917475)
    np.testing.assert_allclose(frame_4279.lidar_pose[:3],
                               [-275.6085205078125, -19.80833625793457, 1.9313920736312866])
    assert len(frame_4279.vehicles) == 21
    assert {"camera0", "plan_trajectory", "true_ego_pos", "predicted_ego_pos"} <= set(frame_4279.extra)


def test_every_labelled_vehicle_has_lidar_points(frame_4279):
    ids, boxes = frame_4279.boxes()
    assert boxes.shape == (21, 7)
    counts = points_in_boxes(frame_4279.points, boxes).sum(axis=0)
    assert (counts >= 1).all(), dict(zip(ids.tolist(), counts.tolist(), strict=True))
    # the same boxes lifted 3 m hold almost nothing: the labels sit on the vehicles, not in clutter
    lifted = boxes + np.array([0, 0, 3.0, 0, 0, 0, 0])
    assert points_in_boxes(frame_4279.points, lifted).sum() < counts.sum() / 20


def test_labels_agree_across_agents(scenario_dir, frame_4279):
    """4288's own pose and labels, projected into 4279's frame, give 4279's boxes (within 1 cm)."""
    meta_4288 = read_frame_yaml(scenario_dir / "4288" / "000069.yaml")
    ids_a, boxes_a = frame_4279.boxes()
    ids_b, boxes_b = vehicle_boxes(meta_4288["vehicles"], meta_4288["lidar_pose"])
    common = np.intersect1d(ids_a, ids_b)
    assert len(common) >= 10
    assert 4279 in ids_b  # the other CAV sees 4279 itself
    centres_b = transform_points(boxes_b[np.searchsorted(ids_b, common), :3],
                                 x1_to_x2(meta_4288["lidar_pose"], frame_4279.lidar_pose))
    centres_a = boxes_a[np.searchsorted(ids_a, common), :3]
    assert np.abs(centres_a - centres_b).max() < 0.01
    np.testing.assert_allclose(boxes_a[np.searchsorted(ids_a, common), 3:6],
                               boxes_b[np.searchsorted(ids_b, common), 3:6], atol=1e-6)


@pytest.mark.parametrize("agent", ["4288", "4297"])
def test_truncated_heads_are_refused(scenario_dir, agent):
    path = scenario_dir / agent / "000069.pcd.head"
    with pytest.raises(FormatError, match=re.escape(str(path)) + ".*truncated"):
        read_pcd(path)


def test_index_of_the_sample(sample_dir):
    split = sample_dir / "validate"
    with pytest.raises(FormatError, match=re.escape(str(split / SCENARIO / "4288" / "000069.yaml"))):
        index_dataset(split)  # 4288 has a yaml but only a .pcd.head
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        index = index_dataset(split, strict=False)
    assert len(caught) == 2
    assert index.scenarios == (SCENARIO,) and index.agent_ids(SCENARIO) == (4279,)
    assert list(index.frames()) == [(SCENARIO, "000069")]
