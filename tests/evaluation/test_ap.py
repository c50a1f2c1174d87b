"""AP: hand-worked cases, edge cases, per-frame vs global order, and OpenCOOD's exact numbers."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from v2xdet.evaluation import EvalAccumulator, average_precision, match_frame, voc_ap
from v2xdet.geometry import boxes_to_corners

from .opencood_reference import opencood_ap

CAR = [4.0, 2.0, 1.5]


def car(x: float, y: float, yaw: float = 0.0, l: float = 4.0, w: float = 2.0) -> list[float]:
    return [x, y, -1.0, l, w, 1.5, yaw]


def corners(*boxes) -> np.ndarray:
    return boxes_to_corners(np.array(boxes, dtype=float).reshape(-1, 7))


def random_frame(rng: np.random.Generator, n_gt: int, n_false: int):
    gt = np.hstack([rng.uniform(-90, 90, (n_gt, 2)), np.full((n_gt, 1), -1.0),
                    rng.uniform([3.5, 1.6, 1.4], [5.0, 2.2, 1.8], (n_gt, 3)),
                    rng.uniform(-np.pi, np.pi, (n_gt, 1))])
    hits = gt[rng.random(n_gt) < 0.8]
    hits = np.repeat(hits, rng.integers(1, 3, len(hits)), axis=0)  # some duplicates
    hits[:, :2] += rng.normal(0, 0.35, (len(hits), 2))
    hits[:, 6] += rng.normal(0, 0.1, len(hits))
    false = np.hstack([rng.uniform(-90, 90, (n_false, 2)), np.full((n_false, 1), -1.0),
                       np.tile(CAR, (n_false, 1)), rng.uniform(-np.pi, np.pi, (n_false, 1))])
    preds = np.vstack([hits, false])
    scores = np.round(rng.uniform(0, 1, len(preds)), 2)  # rounded: ties happen, as in real outputs
    return boxes_to_corners(preds), scores, boxes_to_corners(gt)


def test_voc_ap_hand_curve():
    # recall 0.5, 0.5, 1.0 with precision 1, 0.5, 2/3: envelope 1 then 2/3 -> 0.5 + 0.5 * 2/3
    res = voc_ap([0.5, 0.5, 1.0], [1.0, 0.5, 2 / 3])
    assert res.ap == pytest.approx(5 / 6, abs=1e-15)
    np.testing.assert_allclose(res.mrec, [0, 0.5, 0.5, 1, 1])
    np.testing.assert_allclose(res.mpre, [1, 1, 2 / 3, 2 / 3, 0])


def test_average_precision_edge_cases():
    empty = average_precision([], 5)
    assert empty.ap == 0.0 and empty.mrec.tolist() == [0.0, 1.0] and empty.mpre.tolist() == [0.0, 0.0]
    assert average_precision([], 0).ap == 0.0  # nothing to find, nothing found: OpenCOOD gives 0
    assert math.isnan(average_precision([True, False], 0).ap)  # OpenCOOD divides by zero here
    assert average_precision([True, True], 2).ap == 1.0
    assert average_precision([False, False], 2).ap == 0.0
    with pytest.raises(ValueError, match="scores must match tp"):
        average_precision([True], 1, scores=[0.1, 0.2])


def test_perfect_predictions_give_one_and_false_ones_zero():
    gt = corners(car(5, 0), car(20, 5, 0.4), car(-40, -10, 2.0))
    acc = EvalAccumulator()
    acc.add_frame(gt, np.array([0.9, 0.8, 0.7]), gt)
    acc.add_frame(gt[:2], np.array([0.6, 0.5]), gt[:2])
    s = acc.summary()
    assert s["n_frames"] == 2 and s["n_gt"] == 5 and s["n_pred"] == 5
    for order in ("per_frame_order", "global_order"):
        assert [s[order][t]["ap"] for t in (0.3, 0.5, 0.7)] == [1.0, 1.0, 1.0]
    wrong = EvalAccumulator()
    wrong.add_frame(corners(car(50, 30), car(60, -30)), np.array([0.9, 0.8]), gt)
    assert [wrong.summary()["per_frame_order"][t]["ap"] for t in (0.3, 0.5, 0.7)] == [0.0, 0.0, 0.0]


def test_no_predictions():
    acc = EvalAccumulator()
    acc.add_frame(None, None, corners(car(5, 0)))
    acc.add_frame(np.zeros((0, 8, 3)), np.zeros(0), corners(car(9, 9)))
    s = acc.summary()
    assert s["n_gt"] == 2 and s["n_pred"] == 0
    assert s["per_frame_order"][0.5] == {"ap": 0.0, "mrec": [0.0, 1.0], "mpre": [0.0, 0.0]}
    assert EvalAccumulator().summary()["per_frame_order"][0.7]["ap"] == 0.0  # no frames at all


def test_per_frame_order_and_global_order_differ_by_hand():
    # frame 1: GT A found (0.9), one false alarm (0.8); frame 2: GT B found (0.95).
    # per-frame order TP, FP, TP: recall .5 .5 1, precision 1 .5 2/3 -> AP = .5 + .5 * 2/3 = 5/6
    # global order 0.95 TP, 0.9 TP, 0.8 FP: recall reaches 1 at precision 1 -> AP = 1
    acc = EvalAccumulator()
    acc.add_frame(corners(car(10, 0), car(-30, 20)), np.array([0.9, 0.8]), corners(car(10, 0)))
    acc.add_frame(corners(car(0, 15)), np.array([0.95]), corners(car(0, 15)))
    s = acc.summary()
    for t in (0.3, 0.5, 0.7):
        assert s["per_frame_order"][t]["ap"] == pytest.approx(5 / 6, abs=1e-15)
        assert s["global_order"][t]["ap"] == 1.0
    np.testing.assert_allclose(s["per_frame_order"][0.5]["mrec"], [0, 0.5, 0.5, 1, 1])
    np.testing.assert_allclose(s["global_order"][0.5]["mrec"], [0, 0.5, 1, 1, 1])


def test_duplicates_are_false_positives_and_matching_is_greedy_by_score():
    gt = corners(car(0, 10))
    m = match_frame(corners(car(0, 10), car(0, 10)), np.array([0.5, 0.7]), gt, [0.5])
    np.testing.assert_array_equal(m["tp"][0, 0], [True, False])
    np.testing.assert_allclose(m["scores"], [0.7, 0.5])
    # a high-scoring loose box (IoU 0.6) beats a low-scoring exact one at 0.5, not at 0.7
    loose = car(0, 10 + 2.0 * 0.25, l=4.0, w=2.0)  # shifted by a quarter of the width: IoU 0.6
    m = match_frame(corners(loose, car(0, 10)), np.array([0.9, 0.4]), gt, [0.5, 0.7])
    np.testing.assert_array_equal(m["tp"][0], [[True, False], [False, True]])


def test_a_matched_ground_truth_is_not_available_again():
    # GT A and B side by side; p1 overlaps A most (and B a little), p2 overlaps only A
    gt = corners(car(0, 0), car(0, 2.0))
    p1 = car(0, 0.3)
    p2 = car(0, -0.2)
    m = match_frame(corners(p1, p2), np.array([0.9, 0.8]), gt, [0.3])
    np.testing.assert_array_equal(m["tp"][0, 0], [True, False])


def test_range_bins():
    gt = corners(car(10, 0), car(0, -40), car(70, 0), car(150, 0), car(30.4, 0))
    preds = corners(car(10, 0), car(0, -40), car(70, 0), car(150, 0), car(29.6, 0))
    acc = EvalAccumulator(ranges=((0, 30), (30, 50), (50, 100)))
    acc.add_frame(preds, np.array([0.9, 0.8, 0.7, 0.6, 0.5]), gt)
    s = acc.summary()
    r = s["ranges"]
    assert list(r) == ["0-30m", "30-50m", "50-100m"]
    assert [r[k]["n_gt"] for k in r] == [1, 2, 1] and [r[k]["n_pred"] for k in r] == [2, 1, 1]
    # the pred at 29.6 m lies in 0-30 m, its GT at 30.4 m in 30-50 m: a FP there, a miss here
    assert r["0-30m"]["per_frame_order"][0.5] == pytest.approx(1.0)  # TP first, then the FP
    assert r["30-50m"]["per_frame_order"][0.5] == pytest.approx(0.5)
    assert r["50-100m"]["per_frame_order"][0.7] == 1.0
    assert s["per_frame_order"][0.5]["ap"] == 1.0  # over all boxes every prediction is a TP (IoU 2/3)
    assert r["0-30m"]["bounds"] == [0.0, 30.0]


def test_matches_opencood_exactly_on_random_frames():
    rng = np.random.default_rng(0)
    frames = [random_frame(rng, int(rng.integers(0, 12)), int(rng.integers(0, 6))) for _ in range(25)]
    frames.append((np.zeros((0, 8, 3)), np.zeros(0), frames[0][2]))  # a frame without detections
    acc = EvalAccumulator()
    for f in frames:
        acc.add_frame(*f)
    s = acc.summary()
    for thr in (0.3, 0.5, 0.7):
        for order, global_sort in (("per_frame_order", False), ("global_order", True)):
            ap, mrec, mpre = opencood_ap(frames, thr, global_sort)
            assert s[order][thr]["ap"] == ap
            assert s[order][thr]["mrec"] == mrec and s[order][thr]["mpre"] == mpre
    assert 0.0 < s["per_frame_order"][0.7]["ap"] < s["per_frame_order"][0.3]["ap"] < 1.0


def test_inputs_torch_footprints_and_mirrored_frames():
    rng = np.random.default_rng(1)
    pred, scores, gt = random_frame(rng, 10, 4)
    thr = [0.3, 0.5, 0.7]
    ref = match_frame(pred, scores, gt, thr)
    as_torch = match_frame(torch.from_numpy(pred), torch.from_numpy(scores), torch.from_numpy(gt), thr)
    np.testing.assert_array_equal(as_torch["tp"], ref["tp"])
    footprints = match_frame(pred[:, :4, :2], scores, gt[:, :4, :2], thr)
    np.testing.assert_array_equal(footprints["tp"], ref["tp"])
    mirror = np.array([1.0, -1.0, 1.0])  # CARLA's left-handed frame: corners come clockwise
    np.testing.assert_array_equal(match_frame(pred * mirror, scores, gt * mirror, thr)["tp"], ref["tp"])


def test_bad_inputs_are_named():
    acc = EvalAccumulator()
    gt = corners(car(0, 0))
    with pytest.raises(ValueError, match=r"pred_corners must have shape \(N, 8, 3\)"):
        acc.add_frame(np.zeros((2, 8, 2)), np.zeros(2), gt)
    with pytest.raises(ValueError, match=r"pred_scores must be \(1,\) numbers.*shape \(3,\)"):
        acc.add_frame(gt, np.zeros(3), gt)
    with pytest.raises(ValueError, match=r"gt_corners\[0\] has non-finite"):
        acc.add_frame(gt, np.zeros(1), gt * np.nan)
    with pytest.raises(ValueError, match=r"pred_scores\[0\] is NaN"):
        acc.add_frame(gt, np.array([np.nan]), gt)
    with pytest.raises(ValueError, match="iou_thresholds"):
        EvalAccumulator(iou_thresholds=(0.0, 0.5))
    with pytest.raises(ValueError, match="ranges"):
        EvalAccumulator(ranges=((30, 0),))
    assert acc.n_frames == 0  # refused frames were not counted
