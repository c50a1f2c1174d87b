"""A tiny simulated dataset written once per session (1 scene, 3 frames, 2 CAVs + 1 RSU) and
the same scene simulated again in memory (same seed), for the synthetic-world tests."""
from __future__ import annotations

import numpy as np
import pytest

from v2xdet.data_utils.synthetic import Scenario, generate_dataset, get_preset

SEED = 0
FRAMES = 3


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory):
    """``(out_dir, stats)`` of the tiny preset written under a temporary folder."""
    out = tmp_path_factory.mktemp("synthetic") / "data"
    stats = generate_dataset(out, 1, FRAMES, SEED, preset="tiny", splits={"train": 1.0})
    return out, stats


@pytest.fixture(scope="session")
def tiny_records():
    """``(scenario, records)`` of scene 0 simulated in memory exactly as the writer does."""
    scenario = Scenario(get_preset("tiny"), np.random.default_rng(np.random.SeedSequence([SEED, 0])), FRAMES)
    return scenario, list(scenario.frames())
