import numpy as np
import pytest
from shapely.geometry import Polygon

from v2xdet.data_utils.preprocess import (
    AnchorGenerator,
    assign_targets,
    decode,
    direction_bins,
    split_by_points,
)
from v2xdet.geometry.boxes import boxes_to_bev_corners


def grid():
    # 10 x 10 cells of 2 m, two rotations: anchors at x, y = -9, -7, ..., 9
    return AnchorGenerator([-10, -10, -3, 10, 10, 1], [0.5, 0.5], 4, (3.9, 1.6, 1.56), [0, 90]).anchors()


def test_hand_made_boxes():
    anchors = grid()
    on_anchor = [-1.0, 1.0, -1.0, 3.9, 1.6, 1.56, 0.0]        # exactly anchor (row 5, col 4, r 0)
    shifted = [5.0, -5.0, -0.5, 3.9, 1.6, 1.56, np.pi / 2]    # anchor (2, 7, r 90) shifted 0.5 m in x
    out = assign_targets(anchors, np.array([on_anchor, shifted]), 0.6, 0.45)
    labels, reg = out["labels"], out["reg_targets"]
    assert labels.shape == (10, 10, 2) and reg.shape == (10, 10, 2, 7)
    assert labels[5, 4, 0] == 1
    np.testing.assert_allclose(reg[5, 4, 0], 0.0, atol=1e-6)
    # shifted box: IoU with its anchor = (1.6-0.5)/(1.6+0.5) = 0.524, between the thresholds, but it is
    # the box's best anchor, so positive; the crossed anchor at the same place is below 0.45: negative
    assert labels[2, 7, 1] == 1 and labels[2, 7, 0] == 0
    np.testing.assert_allclose(decode(reg[2, 7, 1], anchors[2, 7, 1]), shifted, atol=1e-5)
    assert (labels == 1).sum() == 2
    far = np.ones_like(labels, dtype=bool)
    far[4:7, 3:6] = False
    far[1:4, 6:9] = False
    assert (labels[far] == 0).all()


def test_in_between_is_ignored_and_over_threshold_is_positive():
    anchors = grid()
    # a GT midway between the anchors at x = -5 and x = -3 (row 2): IoU 2.9 / 4.9 = 0.592 with each
    between = np.array([[-4.0, -5.0, -1.0, 3.9, 1.6, 1.56, 0.0]])
    labels = assign_targets(anchors, between, 0.6, 0.45)["labels"]
    assert labels[2, 2, 0] == 1      # the GT's best anchor (first of the tie) is forced positive
    assert labels[2, 3, 0] == -1     # the other one is between the thresholds: ignored
    assert labels[2, 4, 0] == 0 and labels[2, 2, 1] == 0
    labels = assign_targets(anchors, between, 0.55, 0.45)["labels"]
    assert labels[2, 2, 0] == 1 and labels[2, 3, 0] == 1   # both over the positive threshold
    assert (labels == 1).sum() == 2 and (labels == -1).sum() == 0


def shapely_reference(anchors, gt, pos, neg):
    flat = anchors.reshape(-1, 7)
    pa = [Polygon(p) for p in boxes_to_bev_corners(flat)]
    pg = [Polygon(p) for p in boxes_to_bev_corners(gt)]
    iou = np.array([[a.intersection(g).area / a.union(g).area for g in pg] for a in pa])
    labels = np.where(iou.max(1) > pos, 1, np.where(iou.max(1) < neg, 0, -1))
    best = iou.argmax(0)
    labels[best[iou[best, np.arange(len(gt))] > 0]] = 1
    return labels.reshape(anchors.shape[:3])


def test_matches_rotated_iou_reference_not_axis_aligned():
    rng = np.random.default_rng(0)
    anchors = AnchorGenerator([-6, -6, -3, 6, 6, 1], [0.5, 0.5], 4, (3.9, 1.6, 1.56), [0, 90]).anchors()
    gt = np.column_stack([rng.uniform(-5, 5, (4, 2)), np.full(4, -1.0), rng.uniform(3.5, 4.5, 4),
                          rng.uniform(1.5, 2.0, 4), np.full(4, 1.5), np.array([0.0, 0.785, 1.2, 3.0])])
    out = assign_targets(anchors, gt, 0.5, 0.3)
    np.testing.assert_array_equal(out["labels"], shapely_reference(anchors, gt, 0.5, 0.3))


def test_direction_bins_and_targets():
    np.testing.assert_array_equal(direction_bins([0.0, np.pi, 1.0, -np.pi / 2, 0.786]), [1, 0, 0, 1, 0])
    np.testing.assert_array_equal(direction_bins([0.1, 1.7, 3.3, 4.9], dir_offset=0.0, num_bins=4),
                                  [0, 1, 2, 3])
    anchors = grid()
    out = assign_targets(anchors, np.array([[-1.0, 1.0, -1.0, 3.9, 1.6, 1.56, np.pi]]), 0.6, 0.45)
    assert out["labels"][5, 4, 0] == 1 and out["dir_targets"][5, 4, 0] == 0
    out = assign_targets(anchors, np.array([[-1.0, 1.0, -1.0, 3.9, 1.6, 1.56, 0.0]]), 0.6, 0.45)
    assert out["dir_targets"][5, 4, 0] == 1


def test_no_boxes_all_negative_and_errors():
    out = assign_targets(grid(), np.zeros((0, 7)), 0.6, 0.45)
    assert (out["labels"] == 0).all() and not out["reg_targets"].any()
    with pytest.raises(ValueError, match="neg_threshold"):
        assign_targets(grid(), np.zeros((0, 7)), 0.4, 0.45)
    with pytest.raises(ValueError, match=r"gt_boxes\[0\]"):
        assign_targets(grid(), np.array([[0, 0, 0, 0, 1, 1, 0.0]]), 0.6, 0.45)


def test_sparse_labels_become_ignore_regions():
    anchors = grid()
    dense = [-1.0, 1.0, -1.0, 3.9, 1.6, 1.56, 0.0]   # exactly anchor (row 5, col 4, r 0)
    sparse = [5.0, -5.0, -1.0, 3.9, 1.6, 1.56, 0.0]  # exactly anchor (row 2, col 7, r 0)
    rng = np.random.default_rng(0)
    cloud = np.column_stack([rng.uniform(-2.5, 0.5, 40), rng.uniform(0.5, 1.5, 40),
                             rng.uniform(-1.5, -0.5, 40)])
    cloud = np.vstack([cloud, [[5.0, -5.0, -1.0], [5.5, -5.2, -1.2]]])  # 2 points on the sparse car
    kept, dropped = split_by_points(np.array([dense, sparse]), [cloud[:20], cloud[20:]], min_points=5)
    np.testing.assert_allclose(kept, [dense])
    np.testing.assert_allclose(dropped, [sparse])
    out = assign_targets(anchors, kept, 0.6, 0.45, ignore_boxes=dropped)
    plain = assign_targets(anchors, kept, 0.6, 0.45)
    assert out["labels"][5, 4, 0] == 1
    assert out["labels"][2, 7, 0] == -1 and plain["labels"][2, 7, 0] == 0  # ignored, not background
    changed = out["labels"] != plain["labels"]
    assert changed.sum() >= 1 and (out["labels"][changed] == -1).all()
    all_kept, none_dropped = split_by_points(np.array([dense, sparse]), [cloud], min_points=0)
    assert len(all_kept) == 2 and len(none_dropped) == 0
