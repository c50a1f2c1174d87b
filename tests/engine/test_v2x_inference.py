"""The engine over the real stages on the tiny V2X world: train, validate with AP, infer, save, draw."""
from __future__ import annotations

import sys
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import torch
from v2x_tiny import v2x_config, write_tiny_world

from v2xdet.engine.inference import InferenceOptions, run_inference
from v2xdet.engine.trainer import Trainer, TrainOptions
from v2xdet.engine.v2x_task import BOX_BYTES, POINT_BYTES, V2XTask

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def split(tmp_path_factory):
    return write_tiny_world(tmp_path_factory.mktemp("world") / "train")


def _train(cfg, model_dir):
    options = TrainOptions.from_config(cfg, progress=False)
    trainer = Trainer(V2XTask(cfg), model_dir, options, log_console=False)
    return trainer.fit()


def _eval_dir(npy_dir):
    sys.path.insert(0, str(REPO / "tools"))
    from eval_ap import evaluate_dir
    return evaluate_dir(npy_dir)


@pytest.mark.parametrize("strategy", ["late", "intermediate", "early"])
def test_train_then_infer_writes_everything(split, tmp_path, strategy):
    cfg = v2x_config(split, strategy, score_threshold=0.0)   # untrained: keep every candidate box
    state = _train(cfg, tmp_path)
    assert state.global_step == 2 and (tmp_path / "best.pth").is_file()
    report = run_inference(V2XTask(cfg, keep_points=True), tmp_path,
                           InferenceOptions(save_npy=True, save_vis=strategy != "early",
                                            animation="gif" if strategy != "early" else None, progress=False),
                           log=lambda msg: None)
    assert report.frames == 3 and report.summary["n_pred"] > 0 and report.summary["n_gt"] > 0
    assert (tmp_path / "eval.yaml").is_file() and report.checkpoint == tmp_path / "best.pth"
    assert set(report.latency_ms) == {"data", "forward", "postprocess", "total"}
    assert all(v >= 0 for v in report.latency_ms.values())
    # the saved frames evaluate to the same AP with tools/eval_ap.py
    again = _eval_dir(report.npy_dir)
    for order in ("per_frame_order", "global_order"):
        for thr in (0.3, 0.5, 0.7):
            assert again[order][thr]["ap"] == report.summary[order][thr]["ap"]
    with np.load(report.npy_dir / "000000.npz") as frame:
        assert frame["pred_corners"].shape[1:] == (8, 3) and frame["gt_corners"].shape[1:] == (8, 3)
        assert str(frame["sample_id"]).startswith("2021_08_20_21_48_35_000068")
    # bytes each cooperating agent sends, checked against an independent count
    dataset = V2XTask(cfg, keep_points=True).build_dataset("validate", train=False)
    if strategy == "intermediate":     # 32 channels on the 88 x 50 map of stride 2, float32
        assert report.bytes_per_agent == 32 * 50 * 88 * 4
    elif strategy == "early":
        clouds = [len(p) for i in range(len(dataset)) for p in dataset[i]["points"][1:]]
        assert report.bytes_per_agent == pytest.approx(POINT_BYTES * np.mean(clouds))
    else:
        assert report.bytes_per_agent > 0 and report.bytes_per_frame % BOX_BYTES == 0
    if strategy != "early":
        pictures = sorted(report.vis_dir.glob("*_bev.png"))
        assert len(pictures) == 3
        assert iio.imread(report.vis_dir / "sequence.gif", index=None).shape[0] == 3


@pytest.mark.parametrize("strategy, proj_first", [("early", False), ("intermediate", True), ("late", False)])
def test_pictures_mark_every_agent_for_every_strategy(split, strategy, proj_first):
    from v2xdet.engine.task import FrameResult

    cfg = v2x_config(split, strategy)
    cfg["fusion"]["args"]["proj_first"] = proj_first
    task = V2XTask(cfg, keep_points=True)
    dataset = task.build_dataset("validate", train=False)
    batch = task.collate([dataset[0], dataset[1]])
    empty = np.zeros((0, 8, 3), dtype=np.float32)
    results = [FrameResult("f", empty, np.zeros(0, dtype=np.float32), empty) for _ in range(2)]
    for s, scene in enumerate(task.scenes(batch, results)):
        np.testing.assert_allclose(scene.agent_positions, batch["agent_positions"][s].numpy())
        assert scene.agent_positions.shape == (3, 3) and not scene.agent_positions[0].any()
        # the RSU marker sits at its sensor (5 m mast: 3.1 m above the ego's), also in late fusion
        # where its unit's output frame is lowered to the ego's sensor height
        assert scene.agent_positions[1, 2] == pytest.approx(3.1, abs=1e-4)
    del batch["agent_positions"]
    with pytest.raises(ValueError, match="agent_positions"):
        task.scenes(batch, results)


def test_inference_tags_keep_settings_apart_and_global_sort(split, tmp_path):
    cfg = v2x_config(split, "late", score_threshold=0.0)
    _train(cfg, tmp_path)
    run_inference(V2XTask(cfg), tmp_path, InferenceOptions(progress=False), log=lambda m: None)
    options = InferenceOptions(progress=False, global_sort=True, tag="pose0.2m-0.2deg")
    report = run_inference(V2XTask(cfg), tmp_path, options, log=lambda m: None)
    assert report.eval_path == tmp_path / "eval_global_sort_pose0.2m-0.2deg.yaml"
    assert (tmp_path / "eval.yaml").is_file() and report.eval_path.is_file()


def test_validation_loss_and_ap_are_logged(split, tmp_path):
    cfg = v2x_config(split, "intermediate")
    _train(cfg, tmp_path)
    log = (tmp_path / "train.log").read_text()
    assert "epoch 1: ap_30" in log and "loss" in log
    ckpt = torch.load(tmp_path / "latest.pth", weights_only=True)
    assert ckpt["state"]["epoch"] == 1 and np.isfinite(ckpt["state"]["best_metric"])
