"""Collect per-frame matches over a dataset and turn them into AP numbers.

``EvalAccumulator.add_frame`` is called once per frame in dataset order; ``summary()`` gives AP
at every IoU threshold in two orders: OpenCOOD's (per-frame score order, frames concatenated,
no global re-sort: the numbers papers report) and the global re-sort by score (OpenCOOD's
``--global_sort_detections``), plus range-wise AP by the BEV distance of box centres from the
ego origin (a box counts in the ``[lo, hi)`` bin its centre falls in; matching is redone inside
each bin with only that bin's boxes).
"""
from __future__ import annotations

import numpy as np

from v2xdet.evaluation.ap import average_precision
from v2xdet.evaluation.matching import match_frame

DEFAULT_IOU_THRESHOLDS = (0.3, 0.5, 0.7)
DEFAULT_RANGES = ((0.0, 30.0), (30.0, 50.0), (50.0, 100.0))


def range_name(lo: float, hi: float) -> str:
    """``(0, 30)`` -> ``"0-30m"``."""
    return f"{lo:g}-{hi:g}m"


class EvalAccumulator:
    """Accumulates TP/FP flags, scores and GT counts frame by frame for AP at several thresholds."""

    def __init__(self, iou_thresholds=DEFAULT_IOU_THRESHOLDS, ranges=DEFAULT_RANGES):
        self.iou_thresholds = tuple(float(t) for t in iou_thresholds)
        if not self.iou_thresholds or not all(0.0 < t <= 1.0 for t in self.iou_thresholds):
            raise ValueError(f"iou_thresholds must be non-empty values in (0, 1], got {iou_thresholds}")
        self.ranges = tuple((float(lo), float(hi)) for lo, hi in ranges)
        if not all(0.0 <= lo < hi for lo, hi in self.ranges):
            raise ValueError(f"ranges must be (lo, hi) pairs with 0 <= lo < hi, got {ranges}")
        self._scores: list[np.ndarray] = []
        self._tp: list[np.ndarray] = []
        self._pred_bin: list[np.ndarray] = []
        self._gt_counts: list[np.ndarray] = []

    @property
    def n_frames(self) -> int:
        return len(self._scores)

    def add_frame(self, pred_corners, pred_scores, gt_corners) -> None:
        """Add one frame: ``pred_corners`` (N, 8, 3) (or None), ``pred_scores`` (N,),
        ``gt_corners`` (M, 8, 3), all in the ego frame; numpy arrays or torch tensors."""
        m = match_frame(pred_corners, pred_scores, gt_corners, self.iou_thresholds, self.ranges)
        self._scores.append(m["scores"])
        self._tp.append(m["tp"])
        self._pred_bin.append(m["pred_bin"])
        counts = np.bincount(m["gt_bin"][m["gt_bin"] >= 0], minlength=len(self.ranges))
        self._gt_counts.append(np.concatenate([[m["gt_bin"].size], counts]))

    def _ap_pair(self, tp: np.ndarray, scores: np.ndarray, n_gt: int) -> tuple:
        return average_precision(tp, n_gt), average_precision(tp, n_gt, scores=scores)

    def summary(self) -> dict:
        """AP numbers and curves as plain Python values (ready for yaml).

        ``{"iou_thresholds", "n_frames", "n_gt", "n_pred",
           "per_frame_order": {thr: {"ap", "mrec", "mpre"}}, "global_order": {...},
           "ranges": {"0-30m": {"bounds", "n_gt", "n_pred", "per_frame_order": {thr: ap},
                                "global_order": {thr: ap}}}}``
        """
        n_slots = 1 + len(self.ranges)
        if self._scores:
            scores = np.concatenate(self._scores)
            tp = np.concatenate(self._tp, axis=2)
            pred_bin = np.concatenate(self._pred_bin)
            gt_counts = np.sum(self._gt_counts, axis=0)
        else:
            scores, pred_bin = np.zeros(0), np.zeros(0, dtype=np.int64)
            tp = np.zeros((n_slots, len(self.iou_thresholds), 0), dtype=bool)
            gt_counts = np.zeros(n_slots, dtype=np.int64)
        out = {"iou_thresholds": list(self.iou_thresholds), "n_frames": self.n_frames,
               "n_gt": int(gt_counts[0]), "n_pred": int(scores.size),
               "per_frame_order": {}, "global_order": {}, "ranges": {}}
        for t, thr in enumerate(self.iou_thresholds):
            for order, res in zip(("per_frame_order", "global_order"),
                                  self._ap_pair(tp[0, t], scores, int(gt_counts[0])), strict=True):
                out[order][thr] = {"ap": res.ap, "mrec": res.mrec.tolist(), "mpre": res.mpre.tolist()}
        for b, (lo, hi) in enumerate(self.ranges):
            sel = pred_bin == b
            entry = {"bounds": [lo, hi], "n_gt": int(gt_counts[b + 1]), "n_pred": int(sel.sum()),
                     "per_frame_order": {}, "global_order": {}}
            for t, thr in enumerate(self.iou_thresholds):
                local, glob = self._ap_pair(tp[b + 1, t][sel], scores[sel], int(gt_counts[b + 1]))
                entry["per_frame_order"][thr] = local.ap
                entry["global_order"][thr] = glob.ap
            out["ranges"][range_name(lo, hi)] = entry
        return out
