"""Write an evaluation summary as OpenCOOD's ``eval.yaml`` and print it as a table.

The yaml keeps OpenCOOD's keys (``ap30, ap_50, ap_70, mpre_50, mrec_50, mpre_70, mrec_70``,
curves as lists) so existing scripts read it. Like OpenCOOD, those keys hold the per-frame order
(``eval.yaml``), or the global re-sort when ``global_sort_detections`` is set (OpenCOOD's
``eval_global_sort.yaml``); the other order follows under the same keys with a ``_global`` (or
``_per_frame``) suffix. Added too: ``mpre_30``/``mrec_30``, counts, and ``ranges`` (per distance
bin: ``bounds``, ``n_gt``, ``n_pred``, ``ap30``, ``ap_50``, ... and their suffixed forms).
"""
from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path

import yaml


def ap_key(threshold: float) -> str:
    """OpenCOOD's key for an IoU threshold: ``ap30`` for 0.3 (sic), ``ap_50``, ``ap_70``, ..."""
    pct = round(threshold * 100)
    return "ap30" if pct == 30 else f"ap_{pct}"


def _orders(global_sort_detections: bool) -> tuple[tuple[str, str], ...]:
    """(key suffix, summary order) pairs, the primary (unsuffixed) order first."""
    if global_sort_detections:
        return ("", "global_order"), ("_per_frame", "per_frame_order")
    return ("", "per_frame_order"), ("_global", "global_order")


def summary_to_eval_dict(summary: dict, global_sort_detections: bool = False) -> dict:
    """The flat OpenCOOD-style mapping written to ``eval.yaml``."""
    out: dict = {}
    orders = _orders(global_sort_detections)
    for suffix, order in orders:
        for thr, res in summary[order].items():
            out[ap_key(thr) + suffix] = float(res["ap"])
        for thr, res in summary[order].items():
            pct = round(thr * 100)
            out[f"mpre_{pct}{suffix}"] = [float(v) for v in res["mpre"]]
            out[f"mrec_{pct}{suffix}"] = [float(v) for v in res["mrec"]]
    out.update(n_frames=summary["n_frames"], n_gt=summary["n_gt"], n_pred=summary["n_pred"])
    out["ranges"] = {}
    for name, entry in summary["ranges"].items():
        r = {"bounds": list(entry["bounds"]), "n_gt": entry["n_gt"], "n_pred": entry["n_pred"]}
        for suffix, order in orders:
            for thr, ap in entry[order].items():
                r[ap_key(thr) + suffix] = float(ap)
        out["ranges"][name] = r
    return out


def write_eval_yaml(path, summary: dict, global_sort_detections: bool = False) -> Path:
    """Write ``summary`` (from ``EvalAccumulator.summary``) to ``path`` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # the C dumper when libyaml is there
    text = yaml.dump(summary_to_eval_dict(summary, global_sort_detections), Dumper=dumper,
                     sort_keys=False, default_flow_style=None)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _fmt(ap: float) -> str:
    return "n/a" if math.isnan(ap) else f"{ap:.4f}"


def format_table(summary: dict) -> str:
    """Plain-text table: one row per (subset, order), one column per IoU threshold."""
    thresholds = summary["iou_thresholds"]
    head = f"{'subset':<12} {'ranking':<10}" + "".join(f" {'AP@' + format(t, 'g'):>8}" for t in thresholds)
    head += f" {'GT':>8} {'pred':>8}"
    lines = [head, "-" * len(head)]
    rows = [("all", summary["n_gt"], summary["n_pred"],
             {o: {t: summary[o][t]["ap"] for t in thresholds} for o in ("per_frame_order", "global_order")})]
    rows += [(name, e["n_gt"], e["n_pred"], {o: e[o] for o in ("per_frame_order", "global_order")})
             for name, e in summary["ranges"].items()]
    for name, n_gt, n_pred, aps in rows:
        for label, order in (("per-frame", "per_frame_order"), ("global", "global_order")):
            counts = f" {n_gt:>8} {n_pred:>8}" if order == "per_frame_order" else ""
            lines.append(f"{name:<12} {label:<10}" + "".join(f" {_fmt(aps[order][t]):>8}" for t in thresholds)
                         + counts)
    lines.append(f"{summary['n_frames']} frames; per-frame = OpenCOOD's order (the published numbers), "
                 "global = all detections re-sorted by score")
    return "\n".join(lines)
