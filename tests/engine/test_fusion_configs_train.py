"""Every compact simulated-world config trains through the engine, and its loss falls.

Each config of ``hypes_yaml/synthetic`` (no fusion and every cooperative method) is loaded with
overrides that point it at a one-frame split of the tiny test world (``tests/data_utils/tiny_world.py``:
an RSU and two CAVs in range), turn augmentation off (the same batch every step, so repeated steps
overfit it) and shrink it for a CPU test: a smaller range (48 x 32 cells instead of 88 x 48, still a
multiple of every window size), fewer filters and half the attention heads. The fusion method and its
switches (windows, deformable branch, sampling mode, STTF, RTE) stay as the config sets them.
``Trainer.fit`` runs the steps; the task records the loss of each.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data_utils"))

import tiny_world as tw  # noqa: E402

from v2xdet.config import load_config, read_yaml  # noqa: E402
from v2xdet.data_utils.formats import write_frame  # noqa: E402
from v2xdet.engine import Trainer, TrainOptions, V2XTask  # noqa: E402
from v2xdet.engine.checkpoint import load_checkpoint  # noqa: E402
from v2xdet.engine.distributed import DistContext  # noqa: E402
from v2xdet.engine.inference import InferenceOptions, run_inference  # noqa: E402

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "hypes_yaml" / "synthetic").glob("*.yaml"))
STEPS = 6
RANGE = [-38.4, -25.6, -3.0, 38.4, 25.6, 1.0]  # 192 x 128 pillars: 48 x 32 cells at stride 4, 96 x 64 at 2
FRAME = 1  # tiny_world's middle frame


class LossRecordingTask(V2XTask):
    """The real task; its loss also records each call's total (training only: no validation runs)."""

    def __init__(self, cfg: dict):
        super().__init__(cfg)
        self.losses: list[float] = []

    def build_loss(self):
        loss = super().build_loss()

        def recorded(output, batch):
            total, terms = loss(output, batch)
            self.losses.append(float(total.detach()))
            return total, terms
        return recorded


def training_overrides(raw: dict, split: Path) -> dict:
    """Overrides for a training test: the one-frame split, no augmentation, one frame per step,
    a smaller range and a cheaper model of the same structure."""
    split = str(split)
    return {"root_dir": split, "validate_dir": split, "test_dir": split, "data_augment": [],
            "train_params.epoches": STEPS, "train_params.batch_size": 1,
            "preprocess.cav_lidar_range": RANGE, "postprocess.anchor_args.cav_lidar_range": RANGE,
            **small_model(raw["model"]["args"])}


def small_model(args: dict) -> dict:
    """Overrides of ``model.args`` that make the config's model cheap, its structure unchanged."""
    out = {
        "lidar_range": RANGE,
        "pillar_vfe.num_filters": [16],
        "point_pillar_scatter.num_features": 16,
        "base_bev_backbone.layer_nums": [1] * len(args["base_bev_backbone"]["layer_nums"]),
        "base_bev_backbone.num_filters": [16, 32, 64],
        "base_bev_backbone.num_upsample_filter": [16, 16, 16],
    }
    if args.get("shrink_header"):
        out.update({"shrink_header.dim": [64], "shrink_header.input_dim": 48})
    encoder = args.get("transformer", {}).get("encoder")
    if encoder:
        half = {"transformer.encoder.cav_att_config.dim": 64,
                "transformer.encoder.cav_att_config.heads": max(1, encoder["cav_att_config"]["heads"] // 2),
                "transformer.encoder.pwindow_att_config.dim": 64,
                "transformer.encoder.pwindow_att_config.heads": [
                    max(1, h // 2) for h in encoder["pwindow_att_config"]["heads"]],
                "transformer.encoder.feed_forward.mlp_dim": 64}
        deform = encoder["pwindow_att_config"].get("deform")
        if deform and "heads" in deform:
            half["transformer.encoder.pwindow_att_config.deform.heads"] = max(1, deform["heads"] // 2)
        out.update(half)
    return {f"model.args.{k}": v for k, v in out.items()}


def training_config(path: Path, split: Path) -> dict:
    """The config at ``path`` loaded with ``training_overrides`` for ``split``."""
    return load_config(path, training_overrides(read_yaml(path), split))


def config_path(stem: str) -> Path:
    return CONFIGS[[p.stem for p in CONFIGS].index(stem)]


needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA is not available")
CUDA = DistContext(device=torch.device("cuda"))


@pytest.fixture(scope="module")
def one_frame_split(tmp_path_factory):
    """The tiny world's middle frame alone (every agent), V2XSet layout."""
    split = tmp_path_factory.mktemp("one_frame") / "train"
    for agent in tw.AGENTS:
        write_frame(split, tw.SCENARIO, agent, tw.TIMESTAMPS[FRAME], tw.world_points(agent, FRAME),
                    tw.world_meta(agent, FRAME))
    return split


def test_the_overrides_keep_the_fusion_switches(one_frame_split):
    """What the shrinking changes: sizes only, never the method or its switches."""
    path = config_path("point_pillar_mswin_deform_own")
    raw = read_yaml(path)
    cfg = load_config(path, training_overrides(raw, one_frame_split))
    window = cfg["model"]["args"]["transformer"]["encoder"]["pwindow_att_config"]
    original = raw["model"]["args"]["transformer"]["encoder"]["pwindow_att_config"]
    assert window["window_size"] == original["window_size"]
    assert window["deform"] == {**original["deform"], "heads": original["deform"]["heads"] // 2}
    assert window["heads"] == [h // 2 for h in original["heads"]]
    assert cfg["postprocess"]["anchor_args"]["anchor_grid"] == [48, 32]


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_config_trains_and_its_loss_falls(path, one_frame_split, tmp_path):
    cfg = training_config(path, one_frame_split)
    task = LossRecordingTask(cfg)
    options = TrainOptions.from_config(cfg, eval_freq=0, save_freq=STEPS, progress=False)
    state = Trainer(task, tmp_path / "run", options, log_console=False).fit()

    assert state.global_step == STEPS and len(task.losses) == STEPS   # one frame, batch 1: a step per epoch
    assert (tmp_path / "run" / f"net_epoch{STEPS}.pth").is_file()
    first, last = task.losses[0], task.losses[-3:]
    assert sum(last) / 3 < first, task.losses


@needs_cuda
@pytest.mark.parametrize("stem", ["point_pillar_v2xvit", "point_pillar_mswin_deform"])
def test_transformer_trains_on_cuda_with_amp_and_its_checkpoint_infers_alike_on_the_cpu(
        stem, one_frame_split, tmp_path, full_fp32):
    """Mixed precision on the GPU (float16 autocast, GradScaler), then inference from that checkpoint
    on both devices: the same boxes (TF32 off, so the GPU computes in full fp32)."""
    path = config_path(stem)
    cfg = training_config(path, one_frame_split)
    task = LossRecordingTask(cfg)
    options = TrainOptions.from_config(cfg, eval_freq=0, save_freq=STEPS, progress=False, amp=True)
    trainer = Trainer(task, tmp_path, options, ctx=CUDA, log_console=False)
    assert trainer.amp and next(trainer.model.parameters()).is_cuda
    trainer.fit()

    assert len(task.losses) == STEPS and sum(task.losses[-3:]) / 3 < task.losses[0], task.losses
    assert load_checkpoint(tmp_path / f"net_epoch{STEPS}.pth")["scaler"]["scale"] > 0
    frames = {}
    for device in ("cpu", "cuda"):
        options = InferenceOptions(checkpoint="latest", save_npy=True, tag=device, progress=False)
        report = run_inference(V2XTask(cfg), tmp_path, options, torch.device(device), log=lambda m: None)
        frames[device] = [dict(np.load(f)) for f in sorted(report.npy_dir.glob("*.npz"))]
    assert len(frames["cpu"]) == len(frames["cuda"]) > 0
    for cpu, cuda in zip(frames["cpu"], frames["cuda"], strict=True):
        np.testing.assert_allclose(cuda["pred_scores"], cpu["pred_scores"], atol=1e-4)
        np.testing.assert_allclose(cuda["pred_corners"], cpu["pred_corners"], atol=1e-3)


@pytest.fixture
def restore_determinism():
    """The trainer's ``deterministic`` option sets a global switch: put it back after the test."""
    saved = torch.are_deterministic_algorithms_enabled()
    yield
    torch.use_deterministic_algorithms(saved)


@needs_cuda
@pytest.mark.parametrize("stem", ["point_pillar_v2xvit", "point_pillar_mswin_deform"])
def test_deterministic_cuda_training_repeats_bit_for_bit(stem, one_frame_split, tmp_path,
                                                         restore_determinism):
    """``deterministic: true`` on the GPU: every kernel has a deterministic form, and two runs give
    the same weights to the bit."""
    path = config_path(stem)
    weights = []
    for run in ("a", "b"):
        cfg = training_config(path, one_frame_split)
        options = TrainOptions.from_config(cfg, eval_freq=0, save_freq=STEPS, progress=False,
                                           deterministic=True)
        Trainer(V2XTask(cfg), tmp_path / run, options, ctx=CUDA, log_console=False).fit()
        weights.append(load_checkpoint(tmp_path / run / f"net_epoch{STEPS}.pth")["model"])
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
