"""Random states: seeding, capture and restore (for exact resume), and per-sample seeds."""
from __future__ import annotations

import contextlib
import random

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    """Seed python's, numpy's and torch's (CPU and CUDA) global generators."""
    seed_cpu(seed)
    torch.manual_seed(seed)


def seed_cpu(seed: int) -> None:
    """Seed python's, numpy's and torch's CPU generators, leaving the CUDA ones alone."""
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 (the global state is the point)
    torch.default_generator.manual_seed(seed)


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """A 32-bit seed that depends only on (run seed, epoch, sample index).

    Seeding each sample by this makes its augmentation independent of which worker loads it and
    of where a resumed run restarted, which exact resume needs.
    """
    return int(np.random.SeedSequence(seed, spawn_key=(0, epoch, index)).generate_state(1)[0])


def rank_seed(seed: int, rank: int) -> int:
    """The seed of process ``rank``'s own stream (dropout etc.), distinct from every sample seed."""
    return int(np.random.SeedSequence(seed, spawn_key=(1, rank)).generate_state(1)[0])


def get_rng_state(cuda: bool = True) -> dict:
    """Capture every global random state as tensors and plain values (loadable with weights_only);
    ``cuda=False`` leaves out the CUDA generators (and never initialises CUDA)."""
    version, mt_state, gauss = random.getstate()
    np_state = np.random.get_state(legacy=False)  # noqa: NPY002
    state = {
        "python": {"version": version, "state": torch.tensor(mt_state, dtype=torch.int64), "gauss": gauss},
        "numpy": {"key": torch.from_numpy(np_state["state"]["key"].astype(np.int64)),
                  "pos": int(np_state["state"]["pos"]), "has_gauss": int(np_state["has_gauss"]),
                  "gauss": float(np_state["gauss"])},
        "torch": torch.get_rng_state(),
    }
    if cuda and torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore the states captured by :func:`get_rng_state`."""
    py = state["python"]
    random.setstate((py["version"], tuple(int(v) for v in py["state"].tolist()), py["gauss"]))
    np_state = state["numpy"]
    legacy = {"bit_generator": "MT19937",
              "state": {"key": np_state["key"].numpy().astype(np.uint32), "pos": np_state["pos"]},
              "has_gauss": np_state["has_gauss"], "gauss": np_state["gauss"]}
    np.random.set_state(legacy)  # noqa: NPY002
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


@contextlib.contextmanager
def seeded(seed: int):
    """Run a block with the CPU's global generators seeded by ``seed``, then put the old states back.

    Loading a sample in the main process (no workers) must not move the generators that dropout
    and the rest of the training step draw from. Samples are made on the CPU, so the CUDA
    generators are not touched: a DataLoader worker forked from a process that uses CUDA cannot
    initialise CUDA, and reading its generators would.
    """
    saved = get_rng_state(cuda=False)
    seed_cpu(seed)
    try:
        yield
    finally:
        set_rng_state(saved)
