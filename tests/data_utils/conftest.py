"""Fixtures for the data tests: the tiny deterministic world written once per session.

``tiny_world.py`` is a helper module, not a test; this folder goes on ``sys.path`` so tests here and
below import it as ``tiny_world`` (pytest runs with ``--import-mode=importlib``, no packages).
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from tiny_world import write_tiny_world  # noqa: E402


@pytest.fixture(scope="session")
def tiny_split(tmp_path_factory):
    """A split folder holding the tiny world (see tiny_world.py), V2XSet layout."""
    return write_tiny_world(tmp_path_factory.mktemp("tiny") / "train")
