"""Sampler resume, per-sample seeds, failed-frame handling, random-state round trips."""
from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from engine_tiny_task import TinyFrames, tiny_collate

from v2xdet.engine.data import (
    FailedFrame,
    FrameLoadError,
    ResumableSampler,
    SafeCollate,
    SeededSamples,
)
from v2xdet.engine.rng import get_rng_state, sample_seed, seeded, set_rng_state


def test_sampler_start_is_the_tail_of_the_epoch_and_shards_cover():
    data = list(range(10))
    full = ResumableSampler(data, shuffle=True, seed=3)
    full.set_epoch(2)
    order = list(full)
    assert sorted(order) == data
    cut = ResumableSampler(data, shuffle=True, seed=3)
    cut.set_epoch(2)
    cut.set_start(4)
    assert list(cut) == order[4:] and len(cut) == 6
    other = ResumableSampler(data, shuffle=True, seed=3)
    other.set_epoch(3)
    assert list(other) != order
    shards = [list(ResumableSampler(data, num_replicas=2, rank=r, shuffle=True, seed=3)) for r in (0, 1)]
    assert sorted(shards[0] + shards[1]) == data and not set(shards[0]) & set(shards[1])
    with pytest.raises(ValueError, match=r"start must be in \[0, 10\]"):
        cut.set_start(11)


def test_seeded_samples_depend_on_epoch_and_index_only():
    data = SeededSamples(TinyFrames(6, train=True), seed=5)
    first = data[3]["x"]
    random.random(), np.random.rand(), torch.rand(1)  # noqa: NPY002 moving the global state changes nothing
    assert torch.equal(data[4]["x"], data[4]["x"]) and torch.equal(first, data[3]["x"])
    data.set_epoch(1)
    assert not torch.equal(first, data[3]["x"])


def test_seeded_samples_do_not_move_the_callers_generators():
    data = SeededSamples(TinyFrames(6, train=True), seed=5)
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    data[1]
    assert torch.equal(torch.rand(3), expected)


def test_failed_frames_become_reports_or_errors():
    data = SeededSamples(TinyFrames(6, train=True, bad=(2,)), seed=5)
    bad = data[2]
    assert isinstance(bad, FailedFrame) and bad.name == "/data/tiny/000002.pcd"
    assert "FileNotFoundError" in bad.error and "000002.pcd does not exist" in bad.error
    loaded = SafeCollate(tiny_collate)([data[1], bad, data[3]])
    assert loaded.num_frames == 2 and loaded.failed == [bad] and loaded.batch["x"].shape == (2, 8)
    assert SafeCollate(tiny_collate)([bad]).batch is None
    strict = SeededSamples(TinyFrames(6, train=True, bad=(2,)), seed=5, strict=True)
    with pytest.raises(FrameLoadError, match=r"/data/tiny/000002\.pcd \(index 2\) failed to load"):
        strict[2]


def test_rng_state_round_trip_and_sample_seeds():
    state = get_rng_state()
    a = (random.random(), float(np.random.normal()), torch.rand(2))  # noqa: NPY002
    set_rng_state(state)
    b = (random.random(), float(np.random.normal()), torch.rand(2))  # noqa: NPY002
    assert a[:2] == b[:2] and torch.equal(a[2], b[2])
    with seeded(1):
        inner = torch.rand(1)
    with seeded(1):
        assert torch.equal(torch.rand(1), inner)
    seeds = {sample_seed(0, e, i) for e in range(3) for i in range(50)}
    assert len(seeds) == 150


def test_seeded_leaves_cuda_alone(monkeypatch):
    """A DataLoader worker forked from a CUDA process cannot initialise CUDA: per-sample seeding must
    neither read nor seed the CUDA generators (it failed on a GPU machine with num_workers > 0)."""
    def cuda_touched(*args, **kwargs):
        raise AssertionError("the CUDA generators were touched")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    for name in ("get_rng_state_all", "set_rng_state_all", "manual_seed_all", "manual_seed"):
        monkeypatch.setattr(torch.cuda, name, cuda_touched)
    torch.default_generator.manual_seed(0)
    expected = torch.rand(2)
    torch.default_generator.manual_seed(0)
    with seeded(1):
        inner = torch.rand(1)
    assert torch.equal(torch.rand(2), expected)   # the caller's CPU stream, put back
    with seeded(1):
        assert torch.equal(torch.rand(1), inner)
