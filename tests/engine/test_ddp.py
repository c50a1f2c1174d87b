"""Two CPU processes under torchrun (gloo): DDP replicas stay identical; only rank 0 writes."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from v2xdet.engine.checkpoint import load_checkpoint

HERE = Path(__file__).resolve().parent


def test_two_process_ddp_replicas_identical(tmp_path):
    model_dir, out_dir = tmp_path / "run", tmp_path / "out"
    out_dir.mkdir()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(HERE.parents[1])}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                           "--nproc_per_node=2", str(HERE / "ddp_worker.py"), str(model_dir), str(out_dir)],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0, r1 = (torch.load(out_dir / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    # 24 frames, 2 ranks, batch 4 -> 3 steps per epoch, 2 epochs
    assert r0["steps"] == r1["steps"] == [1, 2, 3, 4, 5, 6]
    assert not set(r0["first_order"]) & set(r1["first_order"])      # each rank saw its own shard
    for key, value in r0["model"].items():
        assert torch.equal(value, r1["model"][key]), key
    saved = load_checkpoint(model_dir / "latest.pth")
    assert saved["world_size"] == 2 and len(saved["rng"]) == 2
    assert not torch.equal(saved["rng"][0]["torch"], saved["rng"][1]["torch"])   # own dropout streams
    for key, value in r0["model"].items():
        assert torch.equal(value, saved["model"][key]), key
    assert (model_dir / "best.pth").is_file() and (model_dir / "net_epoch2.pth").is_file()
    log = (model_dir / "train.log").read_text()
    assert "x2: 24 frames" in log and log.count("training TinyDetector") == 1


def test_more_processes_than_gpus_is_a_clear_error(monkeypatch):
    """torchrun --nproc_per_node=2 on a one-GPU machine: named, before CUDA is asked for device 1."""
    from v2xdet.engine.distributed import init_distributed

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "set_device", lambda device: pytest.fail("set_device was called"))
    for name, value in {"WORLD_SIZE": "2", "RANK": "1", "LOCAL_RANK": "1"}.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(RuntimeError, match=r"LOCAL_RANK is 1 but this machine has 1 CUDA device.*--cpu"):
        init_distributed()
