"""A plain re-statement of OpenCOOD's AP (shapely polygons, Python lists) used as the oracle.

It follows ``opencood/utils/eval_utils.py`` step by step: per frame, detections by
``np.argsort(-score)``; each takes the remaining GT polygon of highest IoU (IoU as float32,
``np.argmax`` on ties) and pops it when IoU >= threshold; lists concatenated frame by frame;
optional global re-sort; running sums; VOC2010 envelope.
"""
from __future__ import annotations

import numpy as np
from shapely.geometry import Polygon


def _polygons(corners: np.ndarray) -> list[Polygon]:
    return [Polygon([(c[i, 0], c[i, 1]) for i in range(4)]) for c in corners]


def frame_tp_fp(pred_corners, pred_scores, gt_corners, thr: float) -> tuple[list, list, list, int]:
    """(tp, fp, sorted scores, n_gt) of one frame."""
    order = np.argsort(-pred_scores)
    preds = _polygons(pred_corners)
    gts = _polygons(gt_corners)
    tp, fp = [], []
    for i in order:
        ious = np.array([preds[i].intersection(g).area / preds[i].union(g).area for g in gts],
                        dtype=np.float32)
        if len(gts) == 0 or float(np.max(ious)) < thr:
            tp.append(0)
            fp.append(1)
            continue
        tp.append(1)
        fp.append(0)
        gts.pop(int(np.argmax(ious)))
    return tp, fp, pred_scores[order].tolist(), len(gt_corners)


def ap_from_lists(tp: list, fp: list, scores: list, n_gt: int, global_sort: bool) -> tuple[float, list, list]:
    if global_sort:
        idx = np.argsort(-np.array(scores))
        tp = np.array(tp)[idx].tolist()
        fp = np.array(fp)[idx].tolist()
    tp, fp = list(tp), list(fp)
    cum = 0
    for k, v in enumerate(fp):
        fp[k] += cum
        cum += v
    cum = 0
    for k, v in enumerate(tp):
        tp[k] += cum
        cum += v
    rec = [float(t) / n_gt for t in tp]
    prec = [float(t) / (f + t) for t, f in zip(tp, fp, strict=True)]
    mrec = [0.0] + rec + [1.0]
    mpre = [0.0] + prec + [0.0]
    for k in range(len(mpre) - 2, -1, -1):
        mpre[k] = max(mpre[k], mpre[k + 1])
    ap = 0.0
    for k in range(1, len(mrec)):
        if mrec[k] != mrec[k - 1]:
            ap += (mrec[k] - mrec[k - 1]) * mpre[k]
    return ap, mrec, mpre


def opencood_ap(frames, thr: float, global_sort: bool = False) -> tuple[float, list, list]:
    """AP over ``frames`` = [(pred_corners, pred_scores, gt_corners), ...] in dataset order."""
    tp, fp, scores, n_gt = [], [], [], 0
    for pred_corners, pred_scores, gt_corners in frames:
        t, f, s, g = frame_tp_fp(pred_corners, pred_scores, gt_corners, thr)
        tp += t
        fp += f
        scores += s
        n_gt += g
    return ap_from_lists(tp, fp, scores, n_gt, global_sort)
