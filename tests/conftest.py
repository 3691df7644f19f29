"""Shared helpers of the numeric test suite: random data, finite differences, tolerances."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pytest
from hypothesis import settings

from losscli.engine import GradientStats
from losscli.losses import Batch, LossDef

# The long fuzz run by hand: pytest tests/fuzz --hypothesis-profile=fuzz (see tests/fuzz/README.md)
settings.register_profile("fuzz", max_examples=1000, deadline=None)


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One directory per fuzz module for its examples' files (each example overwrites its own)."""
    return tmp_path_factory.mktemp("fuzz")


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


#: relative accuracy of the |g| quantiles the README promises (0.5%)
ALPHA = 0.005


def check_gradient_stats(stats: GradientStats, g: np.ndarray, w: np.ndarray | None,
                         vanish: float, explode: float, clip: float | None,
                         exact_fractions: bool = True) -> None:
    n = g.size
    a = np.abs(g)
    mean = math.fsum(g.tolist()) / n
    abs_mean = math.fsum(a.tolist()) / n
    std = math.sqrt(math.fsum(((g - mean) ** 2).tolist()) / n)
    rms = math.sqrt(math.fsum((g * g).tolist()) / n)
    ww = np.ones(n) if w is None else w
    norm = math.sqrt(math.fsum(((ww * g) ** 2).tolist())) / math.fsum(ww.tolist())
    assert rel_close(stats.mean, mean, 1e-12, abs_tol=1e-12 * abs_mean), (stats.mean, mean)
    assert rel_close(stats.std, std, 1e-10), (stats.std, std)
    assert rel_close(stats.abs_mean, abs_mean, 1e-12), (stats.abs_mean, abs_mean)
    assert rel_close(stats.abs_max, float(a.max()), 1e-13), (stats.abs_max, a.max())
    assert rel_close(stats.rms, rms, 1e-10), (stats.rms, rms)
    assert rel_close(stats.norm, norm, 1e-12), (stats.norm, norm)
    for key, q in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99)):
        expected = inverted_cdf(a, q)
        got = getattr(stats, key)
        assert rel_close(got, expected, ALPHA, abs_tol=0.0 if expected else 1e-300), (key, got,
                                                                                      expected)
    fractions = [(stats.vanishing_fraction, lambda t: a <= t, vanish),
                 (stats.exploding_fraction, lambda t: a >= t, explode)]
    if clip is None:
        assert stats.clipped_fraction is None
    else:
        fractions.append((stats.clipped_fraction, lambda t: a > t, clip))
    for got, pick, t in fractions:
        if exact_fractions:
            assert got == np.count_nonzero(pick(t)) / n, (got, t)
        else:  # read off a histogram: exact up to the bucket accuracy around the threshold
            bounds = sorted(np.count_nonzero(pick(t * f)) / n for f in (1 - ALPHA, 1 + ALPHA))
            assert bounds[0] <= got <= bounds[1], (got, bounds)
