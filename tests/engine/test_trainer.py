"""Training loop: exact resume, logging, skipped frames, strict mode, best checkpoint."""
from __future__ import annotations

import pytest
import torch
from engine_tiny_task import TinyTask, tiny_config
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from v2xdet.engine.checkpoint import BEST, LATEST, load_checkpoint
from v2xdet.engine.data import FrameLoadError
from v2xdet.engine.trainer import Trainer, TrainOptions


class Crash(RuntimeError):
    pass


WARM_COSINE = {"core_method": "cosineannealwarm", "epoches": 3, "warmup_lr": 0.003, "warmup_epoches": 1,
               "lr_min": 0.001}


def _train(model_dir, crash_at=None, bad=(), scheduler=None, **params):
    cfg = tiny_config(**params)
    if scheduler is not None:
        cfg["lr_scheduler"] = scheduler
    options = TrainOptions.from_config(cfg, progress=False)

    def stop(trainer):
        if crash_at is not None and trainer.state.global_step == crash_at:
            raise Crash(f"simulated kill after step {crash_at}")

    trainer = Trainer(TinyTask(cfg, bad=bad), model_dir, options, on_step_end=stop, log_console=False)
    return trainer, trainer.fit()


def _weights(model_dir, name=LATEST):
    return load_checkpoint(model_dir / name)["model"]


@pytest.mark.parametrize("num_workers, scheduler", [(0, None), (2, None), (0, WARM_COSINE)])
def test_resume_mid_epoch_matches_uninterrupted_run(tmp_path, num_workers, scheduler):
    # 24 frames, batch 4 -> 6 steps per epoch, 3 epochs; checkpoints every 4 steps.
    params = {"save_every_steps": 4, "num_workers": num_workers, "scheduler": scheduler}
    _, full_state = _train(tmp_path / "full", **params)
    with pytest.raises(Crash):
        _train(tmp_path / "cut", crash_at=11, **params)   # mid epoch 2; latest.pth is from step 8
    assert load_checkpoint(tmp_path / "cut" / LATEST)["state"]["global_step"] == 8
    trainer, cut_state = _train(tmp_path / "cut", **params)
    assert trainer.resumed_from == tmp_path / "cut" / LATEST
    assert cut_state.global_step == full_state.global_step == 18
    full, cut = _weights(tmp_path / "full"), _weights(tmp_path / "cut")
    assert full.keys() == cut.keys()
    for key in full:
        assert torch.equal(full[key], cut[key]), key
    full_opt = load_checkpoint(tmp_path / "full" / LATEST)["optimizer"]["state"]
    cut_opt = load_checkpoint(tmp_path / "cut" / LATEST)["optimizer"]["state"]
    for idx in full_opt:
        assert torch.equal(full_opt[idx]["exp_avg_sq"], cut_opt[idx]["exp_avg_sq"])
    # an interrupted run that never resumes differs: the comparison above has power
    assert not torch.equal(load_checkpoint(tmp_path / "full" / "net_epoch1.pth")["model"]["body.0.weight"],
                           full["body.0.weight"])


def test_resume_at_epoch_boundary_and_lr_schedule(tmp_path):
    _train(tmp_path / "full")
    with pytest.raises(Crash):
        _train(tmp_path / "cut", crash_at=13)   # epoch 3 started; latest.pth is the end of epoch 2
    ckpt = load_checkpoint(tmp_path / "cut" / LATEST)
    assert ckpt["state"]["epoch"] == 2 and ckpt["state"]["batch_in_epoch"] == 0
    assert ckpt["optimizer"]["param_groups"][0]["lr"] == pytest.approx(0.003)  # multistep at epoch 2
    _train(tmp_path / "cut")
    full, cut = _weights(tmp_path / "full"), _weights(tmp_path / "cut")
    assert all(torch.equal(full[k], cut[k]) for k in full)


def test_tensorboard_scalars_log_file_and_best_checkpoint(tmp_path):
    trainer, state = _train(tmp_path)
    acc = EventAccumulator(str(tmp_path))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    assert {"train/loss", "train/cls", "train/reg", "train/dir", "train/lr", "train/fps",
            "val/ap_30", "val/ap_50", "val/ap_70", "val/loss"} <= tags
    assert [e.step for e in acc.Scalars("train/loss")] == list(range(1, 19))
    assert [e.step for e in acc.Scalars("val/ap_70")] == [1, 2, 3]
    lrs = [round(e.value, 6) for e in acc.Scalars("train/lr")]
    assert lrs[:12] == [0.03] * 12 and lrs[12:] == [0.003] * 6
    best = max(acc.Scalars("val/ap_70"), key=lambda e: (e.value, -e.step))
    assert state.best_epoch == best.step and state.best_metric == pytest.approx(best.value)
    assert best.value > 0   # the tiny task learns: AP@0.7 is not trivially zero
    best_ckpt = load_checkpoint(tmp_path / BEST)
    assert best_ckpt["state"]["best_epoch"] == best.step
    same_epoch = load_checkpoint(tmp_path / f"net_epoch{best.step}.pth")["model"]
    assert all(torch.equal(best_ckpt["model"][k], v) for k, v in same_epoch.items())
    for epoch in (1, 2, 3):
        assert (tmp_path / f"net_epoch{epoch}.pth").is_file()
    log = (tmp_path / "train.log").read_text()
    assert "epoch 3: ap_30" in log and "done: 18 steps" in log


def test_bad_frames_are_skipped_counted_and_named(tmp_path):
    trainer, state = _train(tmp_path, bad=(3, 17), epoches=2, eval_freq=0)
    assert state.skipped_frames == 4          # two bad frames, two epochs
    assert state.global_step == 12            # batches with good frames still train
    log = (tmp_path / "train.log").read_text()
    assert "/data/tiny/000003.pcd (index 3)" in log and "/data/tiny/000017.pcd (index 17)" in log
    assert "epoch 1: 2 frame(s) failed to load and were skipped" in log


def test_skipped_frame_count_survives_a_resume(tmp_path):
    with pytest.raises(Crash):
        _train(tmp_path, crash_at=10, bad=(3, 17), epoches=2, eval_freq=0, save_every_steps=3)
    _, state = _train(tmp_path, bad=(3, 17), epoches=2, eval_freq=0, save_every_steps=3)
    assert state.skipped_frames == 4 and state.skipped_in_epoch == 0


@pytest.mark.parametrize("num_workers", [0, 1])
def test_strict_stops_at_first_bad_frame(tmp_path, num_workers):
    cfg = tiny_config(eval_freq=0, num_workers=num_workers)
    options = TrainOptions.from_config(cfg, strict=True, progress=False)
    trainer = Trainer(TinyTask(cfg, bad=(5,)), tmp_path, options, log_console=False)
    with pytest.raises(FrameLoadError, match=r"/data/tiny/000005\.pcd \(index 5\) failed to load"):
        trainer.fit()


def test_options_from_config_validate(tmp_path):
    with pytest.raises(ValueError, match="train_params.epoches is required"):
        TrainOptions.from_config({"train_params": {"batch_size": 2}})
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        TrainOptions.from_config({"train_params": {"epoches": 2, "batch_size": 0}})
    cfg = {"train_params": {"epoches": 2, "batch_size": 3}}
    opts = TrainOptions.from_config(cfg, num_workers=2, amp=True)
    assert (opts.epochs, opts.batch_size, opts.num_workers, opts.amp) == (2, 3, 2, True)


def test_amp_is_ignored_on_cpu_with_a_warning(tmp_path):
    cfg = tiny_config(epoches=1, eval_freq=0)
    trainer = Trainer(TinyTask(cfg), tmp_path, TrainOptions.from_config(cfg, amp=True, progress=False),
                      log_console=False)
    assert not trainer.amp and not trainer.scaler.is_enabled()
    trainer.fit()
    log = (tmp_path / "train.log").read_text()
    assert "--amp ignored: mixed precision is used only on CUDA devices" in log


def test_diverging_loss_stops_with_a_clear_error(tmp_path):
    cfg = tiny_config(epoches=1, eval_freq=0)
    cfg["optimizer"]["lr"] = 1e30
    options = TrainOptions.from_config(cfg, progress=False)
    trainer = Trainer(TinyTask(cfg), tmp_path, options, log_console=False)
    with pytest.raises(FloatingPointError, match=r"loss is (nan|inf) at epoch 1, step \d+ .*diverged"):
        trainer.fit()


def test_pretrained_model_warm_starts_a_new_run_only(tmp_path):
    _train(tmp_path / "src")
    source = _weights(tmp_path / "src")
    cfg = tiny_config(epoches=1)
    options = TrainOptions.from_config(cfg, progress=False, pretrained_model=str(tmp_path / "src" / LATEST))
    trainer = Trainer(TinyTask(cfg), tmp_path / "warm", options, log_console=False)
    own = trainer.model.state_dict()
    assert all(torch.equal(own[k], source[k]) for k in source)  # every tensor came from the file
    assert "warm start from" in (tmp_path / "warm" / "train.log").read_text()
    trainer.fit()
    trained = _weights(tmp_path / "warm")
    # a resumed run continues from its own checkpoint, not from the pretrained weights
    resumed = Trainer(TinyTask(cfg), tmp_path / "warm", options, log_console=False)
    assert all(torch.equal(resumed.model.state_dict()[k], trained[k]) for k in trained)
