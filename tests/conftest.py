"""Shared fixtures: where the shared real market data lives."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import settings

# Deterministic property tests: the same examples every run (CI and locally).
settings.register_profile("tradestack", derandomize=True)
settings.load_profile("tradestack")

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` beside the checkout; tests that need it skip when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared market data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def examples_dir() -> Path:
    """The project's bundled example configs and data."""
    return EXAMPLES
