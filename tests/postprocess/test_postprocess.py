import math

import numpy as np
import torch

from v2xdet.data_utils.preprocess import AnchorGenerator, direction_bins, encode
from v2xdet.postprocess import (
    PostProcessor,
    boxes_in_range,
    correct_direction,
    decode_predictions,
    merge_late,
    select_detections,
)

CAR = [3.9, 1.6, 1.56]


def test_nms_keeps_the_higher_scoring_of_two_overlapping_boxes():
    boxes = np.array([[0, 0, -1, *CAR, 0.0], [0.3, 0.1, -1, *CAR, 0.05], [10, 0, -1, *CAR, 0.0]])
    out = select_detections(boxes, np.array([0.6, 0.9, 0.5]), score_threshold=0.3, nms_thresh=0.15)
    np.testing.assert_allclose(out["boxes"], boxes[[1, 2]], rtol=1e-6)
    np.testing.assert_allclose(out["scores"], [0.9, 0.5])
    assert out["corners"].shape == (2, 8, 3)
    assert len(select_detections(boxes, np.array([0.6, 0.9, 0.5]), 0.55, 0.15, max_num=1)["boxes"]) == 1
    assert len(select_detections(boxes, np.array([0.6, 0.9, 0.5]), 0.95, 0.15)["boxes"]) == 0


def test_gt_range_keeps_boxes_with_all_corners_inside():
    boxes = np.array([[0, 0, -1, *CAR, 0.0], [9.0, 0, -1, *CAR, 0.0], [20, 0, -1, *CAR, 0.0]])
    mask = boxes_in_range(boxes, [-10, -10, -3, 10, 10, 1])
    assert mask.tolist() == [True, False, False]       # x = 9 reaches 10.95: one end sticks out
    out = select_detections(boxes, np.array([0.9, 0.8, 0.7]), 0.3, 0.15, gt_range=[-10, -10, -3, 10, 10, 1])
    assert len(out["boxes"]) == 1


def test_correct_direction_recovers_headings_from_bins():
    true = torch.tensor([0.0, 3.0, -2.0, 1.5, -0.5, 3.1])
    labels = torch.from_numpy(direction_bins(true.numpy(), math.pi / 4, 2))
    for shift in (0.0, math.pi, -math.pi):                 # the regression may be pi off
        fixed = correct_direction(true + shift, labels, math.pi / 4, 2)
        err = (fixed - true + math.pi) % (2 * math.pi) - math.pi
        assert err.abs().max() < 1e-5 and fixed.min() >= -math.pi and fixed.max() < math.pi


def test_postprocessor_recovers_an_encoded_box():
    cfg = {"preprocess": {"args": {"voxel_size": [0.4, 0.4, 4]}},
           "postprocess": {"anchor_args": {"cav_lidar_range": [-12.8, -12.8, -3, 12.8, 12.8, 1], "l": 3.9,
                                           "w": 1.6, "h": 1.56, "r": [0, 90], "feature_stride": 2, "num": 2},
                           "target_args": {"score_threshold": 0.5}, "nms_thresh": 0.15, "max_num": 10},
           "model": {"args": {"dir_args": {"dir_offset": math.pi / 4, "num_bins": 2}}}}
    anchors = AnchorGenerator.from_config(cfg).anchors()
    h, w, a, _ = anchors.shape
    box = np.array([3.3, -2.1, -0.8, 4.4, 1.9, 1.6, 2.9])
    cls = torch.full((1, a, h, w), -10.0)
    reg = torch.zeros(1, h, w, a, 7)
    dirs = torch.zeros(1, h, w, a, 2)
    i, j = 13, 20
    cls[0, 0, i, j] = 5.0
    reg[0, i, j, 0] = torch.from_numpy(encode(box, anchors[i, j, 0].astype(np.float64)))
    reg[0, i, j, 0, 6] -= math.pi                          # regressed pi off: the bin must fix it
    dirs[0, i, j, 0, direction_bins(box[6])] = 3.0
    output = {"cls_preds": cls, "reg_preds": reg.reshape(1, h, w, a * 7).permute(0, 3, 1, 2),
              "dir_preds": dirs.reshape(1, h, w, a * 2).permute(0, 3, 1, 2)}
    boxes, scores = decode_predictions(output, torch.from_numpy(anchors))
    assert boxes.shape == (1, h * w * a, 7) and scores.shape == (1, h * w * a)
    np.testing.assert_allclose(boxes[0, 5].numpy(), anchors.reshape(-1, 7)[5], rtol=1e-5, atol=1e-6)
    (det,) = PostProcessor.from_config(cfg)(output)
    np.testing.assert_allclose(det["boxes"], box[None], atol=1e-4)
    np.testing.assert_allclose(det["scores"], [1 / (1 + math.exp(-5))], rtol=1e-6)


def test_merge_late_pools_agents_and_suppresses_duplicates():
    a = np.array([[0, 0, -1, *CAR, 0.0], [20, 5, -1, *CAR, 1.0]])
    b = np.array([[0.2, 0.1, -1, *CAR, 0.02], [-15, 3, -1, *CAR, 0.5]])
    out = merge_late([a, b], [np.array([0.7, 0.6]), np.array([0.8, 0.4])], nms_thresh=0.15)
    np.testing.assert_allclose(out["scores"], [0.8, 0.6, 0.4])
    np.testing.assert_allclose(out["boxes"][0], b[0], rtol=1e-6)
    assert len(merge_late([], [], 0.15)["boxes"]) == 0
