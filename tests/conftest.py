"""Shared helpers of the numeric test suite: random data, finite differences, tolerances."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pytest

from losscli.losses import Batch, LossDef


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20240611)


def rel_close(a: float, b: float, rel: float, abs_tol: float = 0.0) -> bool:
    """|a - b| <= max(rel * max(|a|, |b|), abs_tol), and both finite."""
    return math.isfinite(a) and math.isfinite(b) and math.isclose(a, b, rel_tol=rel,
                                                                  abs_tol=abs_tol)


def per_sample(loss: LossDef, params: Mapping[str, float | None], pred: np.ndarray,
               target: np.ndarray, logits: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(values, grads) of one loss on a fresh Batch (the batch caches the residual)."""
    c = loss.compute(Batch(np.array(pred, dtype=float), np.array(target, dtype=float), None,
                           logits), params)
    return np.asarray(c.values, dtype=float), np.asarray(c.grads, dtype=float)


def central_diff(loss: LossDef, params: Mapping[str, float | None], pred: np.ndarray,
                 target: np.ndarray, logits: bool = False) -> np.ndarray:
    """d l_i / d pred_i by central differences; pred is (n,) or (C, n) (one gradient per class)."""
    pred = np.asarray(pred, dtype=float)
    h = 1e-6 * np.maximum(1.0, np.abs(pred))
    if pred.ndim == 1:
        up, _ = per_sample(loss, params, pred + h, target, logits)
        down, _ = per_sample(loss, params, pred - h, target, logits)
        return (up - down) / (2.0 * h)
    out = np.empty_like(pred)
    for k in range(pred.shape[0]):
        plus, minus = pred.copy(), pred.copy()
        plus[k] += h[k]
        minus[k] -= h[k]
        up, _ = per_sample(loss, params, plus, target, logits)
        down, _ = per_sample(loss, params, minus, target, logits)
        out[k] = (up - down) / (2.0 * h[k])
    return out


def inverted_cdf(x: np.ndarray, q: float) -> float:
    return float(np.quantile(x, q, method="inverted_cdf"))
