"""The tests behind slice flags: Welch's t-test of a slice against the rest of the rows, and
the Benjamini-Hochberg step-up rule over the slices tested (a false-discovery rate)."""

from __future__ import annotations

import math

import numpy as np

from losscli.uncertainty import t_sf


def welch_greater(mean_a: np.ndarray, se2_a: np.ndarray, df_a: np.ndarray,
                  mean_b: np.ndarray, se2_b: np.ndarray,
                  df_b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Welch's test that a's mean exceeds b's, from each side's mean, squared standard error
    and degrees of freedom (n - 1; under weights the weighted variance's, state.variance_df):
    (t, Welch-Satterthwaite df, one-sided p). NaN where a side has no variance estimate."""
    mean_a, se2_a, df_a, mean_b, se2_b, df_b = (np.asarray(x, dtype=np.float64) for x in (
        mean_a, se2_a, df_a, mean_b, se2_b, df_b))
    with np.errstate(invalid="ignore", divide="ignore"):
        total = se2_a + se2_b
        t = (mean_a - mean_b) / np.sqrt(total)
        df = total * total / (se2_a * se2_a / df_a + se2_b * se2_b / df_b)
    p = np.full(t.shape, math.nan)
    for i in np.ndindex(t.shape):
        ti, di = float(t[i]), float(df[i])
        if math.isfinite(di) and di > 0 and not math.isnan(ti):
            if math.isinf(ti):
                p[i] = 0.0 if ti > 0 else 1.0
            else:
                p[i] = t_sf(ti, di) if ti >= 0 else 1.0 - t_sf(-ti, di)
    return t, df, p


def benjamini_hochberg(p: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """The Benjamini-Hochberg step-up rule over the finite p-values: (rejected, adjusted
    q-values); NaN p-values are not tests (never rejected, q NaN)."""
    p = np.asarray(p, dtype=np.float64)
    rejected = np.zeros(p.shape, dtype=bool)
    q = np.full(p.shape, math.nan)
    idx = np.flatnonzero(np.isfinite(p))
    m = idx.size
    if m == 0:
        return rejected, q
    order = idx[np.argsort(p[idx], kind="stable")]
    ranked = p[order]
    adjusted = np.minimum.accumulate((ranked * m / np.arange(1, m + 1))[::-1])[::-1]
    q[order] = np.minimum(adjusted, 1.0)
    passing = np.flatnonzero(ranked <= alpha * np.arange(1, m + 1) / m)
    if passing.size:
        rejected[order[:passing[-1] + 1]] = True
    return rejected, q
