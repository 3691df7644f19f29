"""The torch-pinned losses against PyTorch itself, when it is installed (the tests against
hand-derived formulas of torch's semantics in test_loss_catalog.py always run). The cases are
benchmarks/verify_torch_losses.py's, which prints them."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

pytest.importorskip("torch")

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "verify_torch_losses.py"


@pytest.fixture(scope="module")
def verify() -> ModuleType:
    spec = importlib.util.spec_from_file_location("verify_torch_losses", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_values_equal_torch(verify: ModuleType) -> None:
    cases = verify.value_cases(np.random.default_rng(5))
    assert len(cases) == 37
    for case, ours, ref in cases:
        assert verify.rel(ours, ref) <= 1e-12, (case, ours, ref)


def test_gradients_equal_torch_autograd(verify: ModuleType) -> None:
    cases = verify.gradient_cases(np.random.default_rng(6))
    assert len(cases) == 6
    for case, worst in cases:
        assert worst <= 1e-11, (case, worst)
