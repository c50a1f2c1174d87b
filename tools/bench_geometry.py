"""Benchmark rotated NMS and pairwise BEV IoU against an OpenCOOD-style shapely loop.

The baseline is written here the way OpenCOOD computes it (a shapely ``Polygon`` per box,
``intersection(...).area / union(...).area`` pair by pair in a Python loop; NMS that takes the
best remaining box and drops those above the threshold). Unlike OpenCOOD's ``nms_rotated`` it
keeps every candidate (no top-1000 cut) so both sides do the same work and their outputs are
asserted equal. Fixed seed; numba compilation happens in a warm-up call that is not timed; each
time is the best of ``--repeats`` runs (the baseline runs ``--baseline-repeats`` times).

    python tools/bench_geometry.py [--repeats 5] [--baseline-repeats 1] [--seed 0]
"""
from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
from shapely.geometry import Polygon

from v2xdet.geometry import bev_iou_matrix, boxes_to_bev_corners, rotated_nms

# OpenCOOD-style detection range (x, y) in metres and car-like sizes.
RANGE_XY = np.array([140.8, 40.0])


def shapely_polygons(boxes: np.ndarray) -> list[Polygon]:
    return [Polygon(corners) for corners in boxes_to_bev_corners(boxes)]


def baseline_iou(box: Polygon, others: list[Polygon]) -> np.ndarray:
    """IoU of one polygon with a list of polygons, one shapely call pair at a time."""
    return np.array([box.intersection(o).area / box.union(o).area for o in others])


def baseline_nms(boxes: np.ndarray, scores: np.ndarray, thr: float) -> np.ndarray:
    """Greedy NMS as a Python loop over shapely polygons (OpenCOOD's ``nms_rotated`` pattern)."""
    polys = shapely_polygons(boxes)
    remaining = np.argsort(-scores, kind="stable")
    keep = []
    while remaining.size:
        best, rest = remaining[0], remaining[1:]
        keep.append(best)
        ious = baseline_iou(polys[best], [polys[j] for j in rest])
        remaining = rest[ious <= thr]
    return np.array(keep, dtype=np.int64)


def baseline_iou_matrix(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    polys_b = shapely_polygons(boxes_b)
    return np.stack([baseline_iou(p, polys_b) for p in shapely_polygons(boxes_a)])


def car_boxes(rng: np.random.Generator, centres_xy: np.ndarray) -> np.ndarray:
    n = len(centres_xy)
    return np.hstack([centres_xy, rng.uniform(-1.8, -1.2, (n, 1)),
                      rng.uniform([3.6, 1.6, 1.4], [5.2, 2.2, 1.9], (n, 3)),
                      rng.uniform(-np.pi, np.pi, (n, 1))])


def clustered_candidates(rng: np.random.Generator, n: int, n_objects: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` detections around ``n_objects`` objects, as a detector's raw output looks."""
    objects = car_boxes(rng, rng.uniform(-RANGE_XY, RANGE_XY, (n_objects, 2)))
    boxes = objects[rng.integers(0, n_objects, n)]
    boxes[:, :2] += rng.normal(0, 0.5, (n, 2))
    boxes[:, 3:6] *= rng.uniform(0.85, 1.15, (n, 3))
    boxes[:, 6] += rng.normal(0, 0.2, n)
    return boxes, rng.uniform(0.2, 1.0, n)


def scattered_candidates(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` detections spread uniformly over the detection range."""
    return car_boxes(rng, rng.uniform(-RANGE_XY, RANGE_XY, (n, 2))), rng.uniform(0.2, 1.0, n)


def best_time(fn: Callable[[], object], repeats: int) -> tuple[float, object]:
    """Best wall time (seconds) over ``repeats`` calls and the last result."""
    best, result = np.inf, None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed runs of ours (best is kept)")
    parser.add_argument("--baseline-repeats", type=int, default=1, help="timed runs of the shapely baseline")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--nms-threshold", type=float, default=0.15,
                        help="NMS IoU threshold (OpenCOOD's configs use 0.15)")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)

    cases = []
    for name, (boxes, scores) in [("NMS 2000 cand., 60 objects", clustered_candidates(rng, 2000, 60)),
                                  ("NMS 2000 cand., scattered", scattered_candidates(rng, 2000))]:
        cases.append((name, lambda b=boxes, s=scores: rotated_nms(b, s, args.nms_threshold),
                      lambda b=boxes, s=scores: baseline_nms(b, s, args.nms_threshold), np.array_equal))
    a = scattered_candidates(rng, 1000)[0]
    b = scattered_candidates(rng, 1000)[0]
    cases.append(("IoU matrix 1000 x 1000", lambda: bev_iou_matrix(a, b), lambda: baseline_iou_matrix(a, b),
                  lambda x, y: np.allclose(x, y, rtol=0, atol=1e-9)))

    rows = []
    for name, ours, baseline, same in cases:
        ours()  # warm-up: numba compilation / cache load is not timed
        t_ours, r_ours = best_time(ours, args.repeats)
        t_base, r_base = best_time(baseline, args.baseline_repeats)
        if not same(r_ours, r_base):
            raise AssertionError(f"{name}: v2xdet and the shapely baseline disagree")
        detail = f"{len(r_ours)} kept" if r_ours.ndim == 1 else f"{int((r_ours > 0).sum())} pairs overlap"
        rows.append({"case": name, "baseline_ms": 1e3 * t_base, "ours_ms": 1e3 * t_ours,
                     "speedup": t_base / t_ours, "detail": detail})

    print(f"{'case':<28} {'method':<34} {'time ms':>10} {'speed-up':>9}  result")
    for r in rows:
        print(f"{r['case']:<28} {'shapely loop (OpenCOOD style)':<34} {r['baseline_ms']:>10.1f} {1.0:>8.1f}x")
        print(f"{'':<28} {'v2xdet numba':<34} {r['ours_ms']:>10.2f} {r['speedup']:>8.0f}x  {r['detail']}")
    return rows


if __name__ == "__main__":
    main()
