"""Fixtures of the fuzz suite (its Hypothesis profiles are registered in tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One directory per module for the examples' files (each example overwrites its own)."""
    return tmp_path_factory.mktemp("fuzz")
