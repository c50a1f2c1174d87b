"""Optimizer/scheduler tables and the glibc allocator tuning."""
from __future__ import annotations

import math
import platform
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from v2xdet.engine import allocator
from v2xdet.engine.allocator import tune_allocator
from v2xdet.engine.optim import build_optimizer, build_scheduler


def _lrs(sched_cfg, epochs=6, steps_per_epoch=1, per_step=False):
    p = [torch.nn.Parameter(torch.zeros(1))]
    opt = build_optimizer({"core_method": "SGD", "lr": 1.0}, p)
    schedule = build_scheduler(sched_cfg, opt, epochs, steps_per_epoch)
    assert schedule.per_step == per_step
    out = []
    for _ in range(epochs * steps_per_epoch):
        out.append(round(opt.param_groups[0]["lr"], 6))
        opt.step()
        schedule.scheduler.step()
    return out


def test_schedulers_follow_the_config():
    multistep = {"core_method": "multistep", "step_size": [2, 4], "gamma": 0.1}
    assert _lrs(multistep) == [1, 1, 0.1, 0.1, 0.01, 0.01]
    assert _lrs({"core_method": "step", "step_size": 3, "gamma": 0.5}) == [1, 1, 1, 0.5, 0.5, 0.5]
    assert _lrs({"core_method": "exponential", "gamma": 0.5}, 3) == [1, 0.5, 0.25]
    warm = {"core_method": "cosineannealwarm", "epoches": 4, "warmup_lr": 0.2, "warmup_epoches": 1,
            "lr_min": 0.1}
    lrs = _lrs(warm, epochs=5, steps_per_epoch=2, per_step=True)
    cosine = [0.1 + 0.45 * (1 + math.cos(math.pi * t / 8)) for t in range(2, 8)]   # 8 steps in all
    expected = [0.2, 0.6] + cosine + [0.1, 0.1]
    assert lrs == pytest.approx(expected, abs=1e-6)
    assert _lrs(None, 3) == [1, 1, 1]


def test_optimizers_and_errors():
    p = [torch.nn.Parameter(torch.zeros(1))]
    args = {"eps": 1e-10, "weight_decay": 1e-4}
    opt = build_optimizer({"core_method": "Adam", "lr": 0.002, "args": args}, p)
    assert isinstance(opt, torch.optim.Adam) and opt.defaults["eps"] == 1e-10
    assert isinstance(build_optimizer({"core_method": "adamw", "lr": 1e-3}, p), torch.optim.AdamW)
    with pytest.raises(ValueError, match="optimizer.core_method must be one of"):
        build_optimizer({"core_method": "Adamax", "lr": 1}, p)
    with pytest.raises(ValueError, match="optimizer.lr is required"):
        build_optimizer({"core_method": "Adam"}, p)
    with pytest.raises(ValueError, match="not accepted by Adam"):
        build_optimizer({"core_method": "Adam", "lr": 1, "args": {"momentum": 0.9}}, p)
    with pytest.raises(ValueError, match="lr_scheduler.step_size must be a list"):
        build_scheduler({"core_method": "multistep", "step_size": 3}, opt, 5)
    with pytest.raises(ValueError, match="lr_scheduler.core_method must be one of"):
        build_scheduler({"core_method": "onecycle"}, opt, 5)


_PROBE = """
import ctypes, importlib.util, sys, numpy as np
spec = importlib.util.spec_from_file_location("allocator", sys.argv[1])   # the module alone, no torch
allocator = importlib.util.module_from_spec(spec)
spec.loader.exec_module(allocator)
tune_allocator = allocator.tune_allocator
class MI(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in
                "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]
libc = ctypes.CDLL("libc.so.6"); libc.mallinfo2.restype = MI
def mmapped_after_alloc():
    base = libc.mallinfo2().hblkhd
    a = np.ones(8_000_000)         # 64 MB
    return libc.mallinfo2().hblkhd - base
before = mmapped_after_alloc()
print(tune_allocator())
after = mmapped_after_alloc()
print(before, after)
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc-only mechanism")
def test_tune_allocator_keeps_large_blocks_on_the_heap():
    module = Path(allocator.__file__)
    out = subprocess.run([sys.executable, "-c", _PROBE, str(module)], capture_output=True, text=True,
                         check=True).stdout
    settings, counts = out.strip().splitlines()
    assert settings == "{'M_TRIM_THRESHOLD': 1073741824, 'M_MMAP_MAX': 0}"
    before, after = map(int, counts.split())
    assert before >= 64_000_000 and after == 0      # 64 MB was mmapped before, heap-served after


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc-only mechanism")
def test_tune_allocator_rejects_out_of_range_values():
    with pytest.raises(ValueError, match="M_TRIM_THRESHOLD must be in"):
        tune_allocator(trim_threshold=-5)


def test_configure_allocator_says_what_is_in_use(monkeypatch):
    assert allocator.configure_allocator(False) == "glibc defaults (--no_tune_allocator)"
    monkeypatch.setattr(allocator, "tune_allocator", lambda: {"M_TRIM_THRESHOLD": 5, "M_MMAP_MAX": 0})
    assert allocator.configure_allocator() == "M_TRIM_THRESHOLD=5, M_MMAP_MAX=0"
    monkeypatch.setattr(allocator, "tune_allocator", lambda: {"skipped": "not glibc (Darwin)"})
    assert allocator.configure_allocator() == "glibc defaults (tune_allocator skipped: not glibc (Darwin))"
