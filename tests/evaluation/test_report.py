"""eval.yaml keys and values, atomic writing, and the printed table."""
from __future__ import annotations

import math

import numpy as np
import pytest
import yaml

from v2xdet.evaluation import EvalAccumulator, format_table, write_eval_yaml
from v2xdet.evaluation.report import ap_key
from v2xdet.geometry import boxes_to_corners


def two_frame_summary() -> dict:
    """Per-frame AP 5/6, global AP 1 (see test_ap); a lone false alarm at 70 m with no GT there."""
    box = lambda x, y: [x, y, -1.0, 4.0, 2.0, 1.5, 0.0]  # noqa: E731
    acc = EvalAccumulator()
    acc.add_frame(boxes_to_corners(np.array([box(10, 0), box(-20, 15)])), np.array([0.9, 0.8]),
                  boxes_to_corners(np.array([box(10, 0)])))
    acc.add_frame(boxes_to_corners(np.array([box(0, 15), box(70, 0)])), np.array([0.95, 0.01]),
                  boxes_to_corners(np.array([box(0, 15)])))
    return acc.summary()


def test_ap_keys_follow_opencood():
    assert [ap_key(t) for t in (0.3, 0.5, 0.7, 0.25)] == ["ap30", "ap_50", "ap_70", "ap_25"]


def test_eval_yaml_has_opencood_keys_and_ours(tmp_path):
    summary = two_frame_summary()
    path = write_eval_yaml(tmp_path / "out" / "eval.yaml", summary)
    data = yaml.safe_load(path.read_text())
    opencood_keys = ["ap30", "ap_50", "ap_70", "mpre_50", "mrec_50", "mpre_70", "mrec_70"]
    assert set(opencood_keys) <= set(data)
    assert list(data)[:3] == ["ap30", "ap_50", "ap_70"]
    # per-frame order: TP, FP, TP, FP(0.01) -> 0.5 * 1 + 0.5 * 2/3; global: 1.0
    assert data["ap_50"] == pytest.approx(5 / 6) and data["ap_50_global"] == 1.0
    assert data["mrec_50"] == pytest.approx([0.0, 0.5, 0.5, 1.0, 1.0, 1.0])
    assert data["mpre_50"] == pytest.approx([1.0, 1.0, 2 / 3, 2 / 3, 0.5, 0.0])
    assert isinstance(data["mpre_70_global"], list)
    assert data["n_frames"] == 2 and data["n_gt"] == 2 and data["n_pred"] == 4
    near = data["ranges"]["0-30m"]
    assert near["n_gt"] == 2 and near["ap_70"] == pytest.approx(5 / 6) and near["ap_70_global"] == 1.0
    far = data["ranges"]["50-100m"]
    assert far["n_gt"] == 0 and far["n_pred"] == 1 and math.isnan(far["ap30"])
    assert [p.name for p in path.parent.iterdir()] == ["eval.yaml"]  # no temporary file left


def test_eval_yaml_overwrites_atomically(tmp_path):
    path = tmp_path / "eval.yaml"
    path.write_text("stale: true\n")
    write_eval_yaml(path, two_frame_summary())
    assert "stale" not in yaml.safe_load(path.read_text())


def test_format_table():
    text = format_table(two_frame_summary())
    lines = text.splitlines()
    assert lines[0].split() == ["subset", "ranking", "AP@0.3", "AP@0.5", "AP@0.7", "GT", "pred"]
    assert lines[2].split() == ["all", "per-frame", "0.8333", "0.8333", "0.8333", "2", "4"]
    assert lines[3].split() == ["all", "global", "1.0000", "1.0000", "1.0000"]
    assert "50-100m      per-frame       n/a" in text
    assert "2 frames" in lines[-1]


def test_global_sort_detections_puts_the_global_order_under_opencoods_keys(tmp_path):
    data = yaml.safe_load(write_eval_yaml(tmp_path / "g.yaml", two_frame_summary(), True).read_text())
    assert data["ap_50"] == 1.0 and data["ap_50_per_frame"] == pytest.approx(5 / 6)
    assert "ap_50_global" not in data
    assert data["ranges"]["0-30m"]["ap_70_per_frame"] == pytest.approx(5 / 6)
