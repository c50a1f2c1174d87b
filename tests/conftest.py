"""Shared test fixtures: the real V2XSet sample location and deterministic torch settings."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
SAMPLE_DIR = Path(os.environ.get("V2XDET_SAMPLE_DIR", REPO_ROOT.parent / "shared" / "data" / "v2xset_sample"))

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    """The real V2XSet frame of ../shared/data (or $V2XDET_SAMPLE_DIR); skip, naming it, if absent."""
    if not (SAMPLE_DIR / "validate").is_dir():
        pytest.skip(f"real V2XSet sample not found at {SAMPLE_DIR} (set V2XDET_SAMPLE_DIR)")
    return SAMPLE_DIR


@pytest.fixture
def full_fp32():
    """CUDA multiplies in full fp32 (TF32 off, as on the CPU) for the test; restored after it."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved
