"""tools/eval_ap.py through its main(argv) on npz frames written here."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import yaml

from v2xdet.geometry import boxes_to_corners

TOOL = Path(__file__).resolve().parents[2] / "tools" / "eval_ap.py"


@pytest.fixture(scope="module")
def eval_ap():
    spec = importlib.util.spec_from_file_location("eval_ap_tool", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def box(x: float, y: float) -> list[float]:
    return [x, y, -1.0, 4.0, 2.0, 1.5, 0.0]


def write_frames(folder: Path) -> None:
    """Frames 2 and 10: per-frame order gives 5/6 only if 2 comes before 10 (natural order)."""
    folder.mkdir()
    c = lambda *b: boxes_to_corners(np.array(b, dtype=float).reshape(-1, 7))  # noqa: E731
    np.savez(folder / "10.npz", pred_corners=c(box(0, 15)), pred_scores=np.array([0.95]),
             gt_corners=c(box(0, 15)))
    np.savez(folder / "2.npz", pred_corners=c(box(10, 0), box(-30, 20)), pred_scores=np.array([0.9, 0.8]),
             gt_corners=c(box(10, 0)))


def test_writes_yaml_and_prints_table(eval_ap, tmp_path, capsys):
    write_frames(tmp_path / "dets")
    summary = eval_ap.main([str(tmp_path / "dets"), "--out", str(tmp_path / "eval.yaml")])
    data = yaml.safe_load((tmp_path / "eval.yaml").read_text())
    # natural order 2, 10: TP, FP, TP -> 5/6 (lexicographic 10, 2 would give TP, TP, FP -> 1)
    assert data["ap_50"] == pytest.approx(5 / 6) and data["ap_50_global"] == 1.0
    assert summary["n_frames"] == 2
    out = capsys.readouterr().out
    assert "all          per-frame    0.8333" in out and "wrote" in out


def test_global_sort_flag_and_default_output(eval_ap, tmp_path):
    write_frames(tmp_path / "dets")
    eval_ap.main([str(tmp_path / "dets"), "--global_sort_detections"])
    data = yaml.safe_load((tmp_path / "dets" / "eval_global_sort.yaml").read_text())
    assert data["ap_50"] == 1.0 and data["ap_50_per_frame"] == pytest.approx(5 / 6)


def test_missing_key_names_file_and_key(eval_ap, tmp_path):
    write_frames(tmp_path / "dets")
    np.savez(tmp_path / "dets" / "11.npz", pred_corners=np.zeros((0, 8, 3)), pred_scores=np.zeros(0))
    with pytest.raises(SystemExit, match=r"11\.npz: missing key 'gt_corners'"):
        eval_ap.main([str(tmp_path / "dets")])


def test_wrong_shape_names_file_and_key(eval_ap, tmp_path):
    write_frames(tmp_path / "dets")
    np.savez(tmp_path / "dets" / "12.npz", pred_corners=np.zeros((3, 8, 3)), pred_scores=np.zeros(2),
             gt_corners=np.zeros((1, 8, 3)))
    with pytest.raises(SystemExit, match=r"12\.npz: pred_scores must be \(3,\) numbers"):
        eval_ap.main([str(tmp_path / "dets")])
    np.savez(tmp_path / "dets" / "12.npz", pred_corners=np.zeros((0, 8, 3)), pred_scores=np.zeros(0),
             gt_corners=np.zeros((1, 7)))
    with pytest.raises(SystemExit, match=r"12\.npz: gt_corners must have shape \(N, 8, 3\)"):
        eval_ap.main([str(tmp_path / "dets")])


def test_unreadable_or_empty_folder(eval_ap, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit, match="no <frame>.npz files"):
        eval_ap.main([str(tmp_path / "empty")])
    (tmp_path / "empty" / "0.npz").write_text("not a zip")
    with pytest.raises(SystemExit, match=r"0\.npz: not a readable \.npz"):
        eval_ap.main([str(tmp_path / "empty")])
    (tmp_path / "empty" / "0.npz").unlink()
    with open(tmp_path / "empty" / "0.npz", "wb") as f:
        np.save(f, np.zeros(3))  # a plain .npy under an .npz name
    with pytest.raises(SystemExit, match=r"0\.npz: not a readable \.npz file \(it holds a single array"):
        eval_ap.main([str(tmp_path / "empty")])
    with pytest.raises(SystemExit, match="is not a directory"):
        eval_ap.main([str(tmp_path / "nowhere")])
