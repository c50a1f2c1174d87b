"""Data loading for the engine: resumable ordering, per-sample seeds, bad frames skipped and counted.

- :class:`ResumableSampler` is a ``DistributedSampler`` (shuffled by ``seed + epoch``, sharded by
  rank) that can start part-way through an epoch, so a run resumed after step k sees exactly the
  batches an uninterrupted run would.
- :class:`SeededSamples` wraps a dataset: each sample is drawn with the global generators seeded
  by (seed, epoch, index), independent of worker assignment and of restarts; a sample that raises
  becomes a :class:`FailedFrame` (or, with ``strict``, a :class:`FrameLoadError`).
- :class:`SafeCollate` drops the failed frames from a batch and reports them with it, so the count
  reaches the main process even from worker processes.
"""
from __future__ import annotations

import traceback
from collections.abc import Callable
from typing import NamedTuple

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from .rng import sample_seed, seeded


class FrameLoadError(RuntimeError):
    """A frame failed to load in ``--strict`` mode; the message names the frame and the cause."""


class FailedFrame(NamedTuple):
    index: int
    name: str
    error: str


class LoadedBatch(NamedTuple):
    """What the loader yields: the collated batch (None if every frame failed), its frame count
    and the frames that failed."""
    batch: object
    num_frames: int
    failed: list


class ResumableSampler(DistributedSampler):
    """``DistributedSampler`` that can skip the first ``start`` indices of the current epoch."""

    def __init__(self, dataset, num_replicas: int = 1, rank: int = 0, shuffle: bool = True,
                 seed: int = 0, drop_last: bool = False):
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=shuffle, seed=seed,
                         drop_last=drop_last)
        self.start = 0

    def set_start(self, start: int) -> None:
        """Skip the first ``start`` indices of this rank's share of the epoch."""
        if not 0 <= start <= self.num_samples:
            raise ValueError(f"sampler start must be in [0, {self.num_samples}], got {start}")
        self.start = start

    def __iter__(self):
        return iter(list(super().__iter__())[self.start:])

    def __len__(self) -> int:
        return self.num_samples - self.start


def describe_sample(dataset, index: int) -> str:
    """A human name for sample ``index``: the dataset's ``describe(index)`` if it has one."""
    describe = getattr(dataset, "describe", None)
    if callable(describe):
        try:
            return str(describe(index))
        except Exception:  # a broken frame may break its description too
            pass
    return f"sample {index}"


class SeededSamples(Dataset):
    """Wrap ``dataset`` so sample ``i`` of epoch ``e`` is always drawn under the same seeds."""

    def __init__(self, dataset, seed: int, strict: bool = False):
        self.dataset = dataset
        self.seed = int(seed)
        self.strict = strict
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch's draws here and in the wrapped dataset (if it keys its own generators)."""
        self.epoch = int(epoch)
        if callable(getattr(self.dataset, "set_epoch", None)):
            self.dataset.set_epoch(self.epoch)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        with seeded(sample_seed(self.seed, self.epoch, index)):
            try:
                return self.dataset[index]
            except Exception as exc:
                name = describe_sample(self.dataset, index)
                if self.strict:
                    raise FrameLoadError(f"{name} (index {index}) failed to load: "
                                         f"{type(exc).__name__}: {exc}") from exc
                where = traceback.extract_tb(exc.__traceback__)[-1]
                return FailedFrame(index, name, f"{type(exc).__name__}: {exc} "
                                                f"(at {where.filename}:{where.lineno})")


class SafeCollate:
    """Collate the good samples with ``collate`` and carry the failed ones alongside."""

    def __init__(self, collate: Callable):
        self.collate = collate

    def __call__(self, samples: list) -> LoadedBatch:
        failed = [s for s in samples if isinstance(s, FailedFrame)]
        good = [s for s in samples if not isinstance(s, FailedFrame)]
        return LoadedBatch(self.collate(good) if good else None, len(good), failed)


def make_loader(dataset: SeededSamples, sampler: ResumableSampler, batch_size: int, collate: Callable,
                num_workers: int, epoch: int, pin_memory: bool = False) -> DataLoader:
    """A loader for one epoch whose worker seeds come from ``seed + epoch``, not the global generator.

    DataLoader draws its workers' base seed from its ``generator``; without one it would draw from
    the global torch generator and so shift dropout's stream differently in a resumed run.
    """
    generator = torch.Generator()
    generator.manual_seed(dataset.seed + epoch)
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=num_workers,
                      collate_fn=SafeCollate(collate), generator=generator, pin_memory=pin_memory,
                      persistent_workers=False, drop_last=False)
