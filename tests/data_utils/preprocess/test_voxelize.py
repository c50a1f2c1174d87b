import numpy as np
import pytest

from v2xdet.data_utils.preprocess import Voxelizer

VOXEL = [0.5, 0.5, 4.0]
RANGE = [-4.0, -2.0, -3.0, 4.0, 2.0, 1.0]


def reference_voxelize(points, voxel, lidar_range, max_points, max_voxels):
    """Independent numpy grouping: first-seen voxel order, first points kept."""
    pts = points.astype(np.float32)
    lo = np.asarray(lidar_range[:3], np.float32)
    vs = np.asarray(voxel, np.float32)
    grid = np.round((np.asarray(lidar_range[3:]) - lidar_range[:3]) / voxel).astype(int)
    idx = np.floor((pts[:, :3] - lo) / vs).astype(int)
    valid = ((idx >= 0) & (idx < grid)).all(axis=1)
    order = {}
    members = []
    for i in np.flatnonzero(valid):  # test reference: clarity over speed
        key = tuple(idx[i])
        if key not in order:
            if len(order) == max_voxels:
                continue
            order[key] = len(order)
            members.append([])
        members[order[key]].append(i)
    feats = np.zeros((len(order), max_points, 4), np.float32)
    for v, rows in enumerate(members):
        rows = rows[:max_points]
        feats[v, :len(rows)] = pts[rows]
    coords = np.array([[k[2], k[1], k[0]] for k in order], dtype=np.int32).reshape(-1, 3)
    num = np.array([min(len(m), max_points) for m in members], dtype=np.int32)
    return feats, coords, num


@pytest.mark.parametrize("max_voxels", [1000, 7])
def test_voxelizer_matches_numpy_reference(max_voxels):
    rng = np.random.default_rng(0)
    pts = np.column_stack([rng.uniform(-5, 5, 300), rng.uniform(-3, 3, 300), rng.uniform(-3.5, 1.5, 300),
                           rng.uniform(0, 1, 300)]).astype(np.float32)
    crowd = np.tile(np.array([[0.1, 0.2, 0.0, 0.5]], np.float32), (7, 1))
    crowd[:, 3] = np.arange(7)
    pts = np.concatenate([pts[:100], crowd, pts[100:]])  # one voxel overflows max_points
    out = Voxelizer(VOXEL, RANGE, max_points_per_voxel=5, max_voxels=max_voxels)(pts)
    feats, coords, num = reference_voxelize(pts, VOXEL, RANGE, 5, max_voxels)
    assert out["voxel_coords"].dtype == np.int32 and out["voxel_num_points"].dtype == np.int32
    np.testing.assert_array_equal(out["voxel_coords"], coords)
    np.testing.assert_array_equal(out["voxel_num_points"], num)
    np.testing.assert_array_equal(out["voxel_features"], feats)
    assert out["voxel_features"].shape[0] == min(max_voxels, len(np.unique(coords, axis=0)))
    crowded = (out["voxel_coords"] == [0, 4, 8]).all(axis=1)
    if crowded.any():  # the first 5 of its 7 points, in input order
        np.testing.assert_array_equal(out["voxel_features"][crowded][0, :, 3], [0, 1, 2, 3, 4])
    if max_voxels == 7:
        assert out["voxel_features"].shape[0] == 7
    else:
        assert crowded.sum() == 1 and out["voxel_num_points"][crowded][0] == 5


def test_voxelizer_rejects_bad_config_and_points():
    with pytest.raises(ValueError, match="whole number of voxels"):
        Voxelizer([0.3, 0.5, 4.0], RANGE, 5, 10)
    with pytest.raises(ValueError, match="max_voxels"):
        Voxelizer(VOXEL, RANGE, 5, 0)
    with pytest.raises(ValueError, match=r"\(N, 4\)"):
        Voxelizer(VOXEL, RANGE, 5, 10)(np.zeros((3, 5), np.float32))


def test_from_config_picks_train_or_test_cap():
    cfg = {"preprocess": {"args": {"voxel_size": VOXEL, "max_points_per_voxel": 3, "max_voxel_train": 11,
                                   "max_voxel_test": 22}, "cav_lidar_range": RANGE}}
    assert Voxelizer.from_config(cfg, train=True).max_voxels == 11
    test = Voxelizer.from_config(cfg, train=False)
    assert test.max_voxels == 22 and test.grid_size.tolist() == [16, 8, 1]
