"""Average precision from TP/FP flags, exactly as OpenCOOD computes it (VOC2010 envelope).

OpenCOOD's ``calculate_ap``/``voc_ap``: cumulative TP and FP counts give recall
``tp / n_gt`` and precision ``tp / (tp + fp)``; recall is padded with 0 and 1, precision with
0 and 0; the precision envelope is made monotone from the right; AP sums
``(r[i] - r[i-1]) * p[i]`` over the indices where recall changes, in order. The sums here run
in the same order, so the numbers agree to the last bit.

Edge cases: no detections gives AP 0 (recall [0, 1], precision [0, 0]), as in OpenCOOD.
Detections but no ground truth is a division by zero in OpenCOOD; here recall is undefined and
AP is NaN (``n/a`` in tables).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class APResult:
    """AP and the padded, enveloped curves OpenCOOD writes as ``mrec_*``/``mpre_*``."""

    ap: float
    mrec: np.ndarray
    mpre: np.ndarray


def voc_ap(recall: np.ndarray, precision: np.ndarray) -> APResult:
    """VOC2010 AP of a recall/precision curve (detections in the order they were ranked)."""
    mrec = np.concatenate([[0.0], np.asarray(recall, dtype=np.float64), [1.0]])
    mpre = np.concatenate([[0.0], np.asarray(precision, dtype=np.float64), [0.0]])
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    changes = np.flatnonzero(mrec[1:] != mrec[:-1]) + 1
    terms = (mrec[changes] - mrec[changes - 1]) * mpre[changes]
    # a left-to-right running sum, the order OpenCOOD's loop adds in (np.sum would pair terms)
    ap = float(np.cumsum(terms)[-1]) if terms.size else 0.0
    return APResult(ap, mrec, mpre)


def average_precision(tp, n_gt: int, scores=None) -> APResult:
    """AP of ranked detections given their TP flags (FP = not TP) and the ground-truth count.

    ``tp`` is in the order detections are ranked; OpenCOOD's default is per-frame score order
    concatenated in dataset order. Pass ``scores`` to re-rank all detections by descending score
    first (the global sort of OpenCOOD's ``--global_sort_detections``, same ``np.argsort``).
    """
    tp = np.asarray(tp, dtype=bool).reshape(-1)
    if scores is not None:
        scores = np.asarray(scores, dtype=np.float64).reshape(-1)
        if scores.shape != tp.shape:
            raise ValueError(f"scores must match tp in length, got {scores.shape} and {tp.shape}")
        tp = tp[np.argsort(-scores)]
    if n_gt < 0:
        raise ValueError(f"n_gt must be >= 0, got {n_gt}")
    tp_cum = np.cumsum(tp, dtype=np.int64)
    fp_cum = np.arange(1, tp.size + 1, dtype=np.int64) - tp_cum
    if n_gt == 0 and tp.size:
        nan = np.full(tp.size + 2, np.nan)
        return APResult(float("nan"), nan, nan)
    recall = tp_cum / n_gt if tp.size else np.zeros(0)
    precision = tp_cum / (tp_cum + fp_cum)
    return voc_ap(recall, precision)
