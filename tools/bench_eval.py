"""Benchmark AP evaluation: v2xdet's EvalAccumulator against an OpenCOOD-style shapely loop.

Synthetic detections: ``--frames`` frames of ``--gt`` ground-truth cars and ``--preds``
detections (most near a GT box with position/size/yaw noise, a few duplicates, the rest false
alarms), fixed seed. The baseline is written here the way OpenCOOD evaluates (per threshold and
per frame: shapely polygons, each detection's IoU with the remaining GT pair by pair, pop the
match; running sums; VOC envelope). Both must give identical AP (per-frame and global order) at
0.3/0.5/0.7, asserted. Times exclude interpreter start-up and imports; numba compilation is
warmed up on one frame first and not timed. Best of ``--repeats`` for ours, one baseline run.

    python tools/bench_eval.py [--frames 1000] [--gt 30] [--preds 40] [--repeats 3] [--seed 0]
"""
from __future__ import annotations

import argparse
import time

import numpy as np
from shapely.geometry import Polygon

from v2xdet.evaluation import EvalAccumulator
from v2xdet.geometry import boxes_to_corners

THRESHOLDS = (0.3, 0.5, 0.7)


def make_frames(rng: np.random.Generator, n_frames: int, n_gt: int, n_pred: int) -> list[tuple]:
    """[(pred_corners, pred_scores, gt_corners)] with realistic hits, duplicates and false alarms."""
    frames = []
    for _ in range(n_frames):
        gt = np.hstack([rng.uniform([-100, -40], [100, 40], (n_gt, 2)), rng.uniform(-1.8, -1.2, (n_gt, 1)),
                        rng.uniform([3.6, 1.6, 1.4], [5.2, 2.2, 1.9], (n_gt, 3)),
                        rng.uniform(-np.pi, np.pi, (n_gt, 1))])
        found = rng.permutation(n_gt)[:int(0.85 * n_gt)]
        found = np.concatenate([found, rng.choice(found, min(3, found.size))])  # a few duplicates
        n_hit = min(n_pred, found.size)
        hits = gt[found[:n_hit]]
        hits[:, :2] += rng.normal(0, 0.3, (n_hit, 2))
        hits[:, 3:6] *= rng.uniform(0.9, 1.1, (n_hit, 3))
        hits[:, 6] += rng.normal(0, 0.08, n_hit)
        n_false = n_pred - n_hit
        false = np.hstack([rng.uniform([-100, -40], [100, 40], (n_false, 2)), np.full((n_false, 1), -1.5),
                           np.tile([4.5, 1.9, 1.6], (n_false, 1)), rng.uniform(-np.pi, np.pi, (n_false, 1))])
        scores = np.concatenate([rng.uniform(0.3, 1.0, n_hit), rng.uniform(0.2, 0.7, n_false)])
        frames.append((boxes_to_corners(np.vstack([hits, false])), scores.astype(np.float32),
                       boxes_to_corners(gt)))
    return frames


def baseline_frame(pred_corners, pred_scores, gt_corners, thr: float, stat: dict) -> None:
    """One frame at one threshold, OpenCOOD's way: shapely polygons, pair-by-pair IoU, pop matches."""
    order = np.argsort(-pred_scores)
    preds = [Polygon([(c[i, 0], c[i, 1]) for i in range(4)]) for c in pred_corners]
    gts = [Polygon([(c[i, 0], c[i, 1]) for i in range(4)]) for c in gt_corners]
    for i in order:
        ious = np.array([preds[i].intersection(g).area / preds[i].union(g).area for g in gts],
                        dtype=np.float32)
        if not gts or float(np.max(ious)) < thr:
            stat["tp"].append(0)
            stat["fp"].append(1)
            continue
        stat["tp"].append(1)
        stat["fp"].append(0)
        gts.pop(int(np.argmax(ious)))
    stat["score"] += pred_scores[order].tolist()
    stat["gt"] += len(gt_corners)


def baseline_ap(stat: dict, global_sort: bool) -> float:
    tp, fp = list(stat["tp"]), list(stat["fp"])
    if global_sort:
        idx = np.argsort(-np.array(stat["score"]))
        tp, fp = np.array(tp)[idx].tolist(), np.array(fp)[idx].tolist()
    for k in range(1, len(tp)):
        tp[k] += tp[k - 1]
        fp[k] += fp[k - 1]
    mrec = [0.0] + [t / stat["gt"] for t in tp] + [1.0]
    mpre = [0.0] + [t / (t + f) for t, f in zip(tp, fp, strict=True)] + [0.0]
    for k in range(len(mpre) - 2, -1, -1):
        mpre[k] = max(mpre[k], mpre[k + 1])
    ap = 0.0
    for k in range(1, len(mrec)):
        if mrec[k] != mrec[k - 1]:
            ap += (mrec[k] - mrec[k - 1]) * mpre[k]
    return ap


def run_baseline(frames) -> dict:
    out = {}
    for thr in THRESHOLDS:
        stat = {"tp": [], "fp": [], "score": [], "gt": 0}
        for frame in frames:
            baseline_frame(*frame, thr, stat)
        out[thr] = (baseline_ap(stat, False), baseline_ap(stat, True))
    return out


def run_ours(frames) -> dict:
    acc = EvalAccumulator(THRESHOLDS)
    for frame in frames:
        acc.add_frame(*frame)
    s = acc.summary()
    return {thr: (s["per_frame_order"][thr]["ap"], s["global_order"][thr]["ap"]) for thr in THRESHOLDS}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=1000)
    parser.add_argument("--gt", type=int, default=30)
    parser.add_argument("--preds", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    frames = make_frames(np.random.default_rng(args.seed), args.frames, args.gt, args.preds)
    run_ours(frames[:1])  # warm-up: numba compilation / cache load

    t_ours = np.inf
    for _ in range(args.repeats):
        start = time.perf_counter()
        ours = run_ours(frames)
        t_ours = min(t_ours, time.perf_counter() - start)
    start = time.perf_counter()
    base = run_baseline(frames)
    t_base = time.perf_counter() - start
    if ours != base:
        raise AssertionError(f"AP differs: v2xdet {ours} vs shapely baseline {base}")

    print(f"{args.frames} frames x {args.gt} GT x {args.preds} detections, thresholds {THRESHOLDS}")
    head = "  ".join(f"AP@{t} frame/global" for t in THRESHOLDS)
    print(f"{'method':<34} {'time s':>9} {'speed-up':>9}   {head}")
    aps = "  ".join(f"{base[t][0]:>8.4f}/{base[t][1]:<8.4f}" for t in THRESHOLDS)
    print(f"{'shapely loop (OpenCOOD style)':<34} {t_base:>9.3f} {1.0:>8.1f}x   {aps}")
    print(f"{'v2xdet EvalAccumulator':<34} {t_ours:>9.3f} {t_base / t_ours:>8.0f}x   identical AP (asserted)")
    return {"baseline_s": t_base, "ours_s": t_ours, "ap": ours}


if __name__ == "__main__":
    main()
