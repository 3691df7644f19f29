"""Mergeable accumulators: ``update`` a chunk, ``merge`` another state, read ``result``.

Every accumulator here obeys one contract: ``merge`` is associative and commutative and a fresh
instance is its identity, so chunking, threads and a distributed engine share one code path and the
results do not depend on how the rows were split (up to the last bits of per-chunk float sums).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

# Values below this are counted in the zero bucket of a log histogram (subnormals included).
HIST_MIN_POSITIVE = 1e-300
# Relative accuracy of the log-bucket histograms: a quantile is within this factor of a true
# order statistic of the data (128 buckets per octave, midpoints).
HIST_ALPHA = 1.0 / 256


class ExactSum:
    """Exactly rounded sum of the floats added to it (Shewchuk's partials, as in ``math.fsum``).

    Chunk sums are added here, so the total does not depend on the order or grouping of chunks;
    only the pairwise ``np.sum`` inside each chunk rounds. Memory stays a handful of floats.
    """

    __slots__ = ("partials",)

    def __init__(self) -> None:
        self.partials: list[float] = []

    def add(self, x: float) -> None:
        partials = self.partials
        i = 0
        for y in partials:
            if abs(x) < abs(y):
                x, y = y, x
            hi = x + y
            lo = y - (hi - x)
            if lo:
                partials[i] = lo
                i += 1
            x = hi
        partials[i:] = [x]

    def merge(self, other: ExactSum) -> None:
        for p in other.partials:
            self.add(p)

    @property
    def value(self) -> float:
        return math.fsum(self.partials)


@dataclass
class Moments:
    """Count, mean and central moment sums M2..M4, merged with Chan's and Pebay's formulas.

    Within a chunk the moments are computed in two passes around the chunk mean; raw power sums
    are never formed, so offset data keeps its precision.
    """

    order: int = 2
    n: int = 0
    mean: float = 0.0
    m2: float = 0.0
    m3: float = 0.0
    m4: float = 0.0

    @classmethod
    def of(cls, x: np.ndarray, order: int = 2) -> Moments:
        """The moments of one array, two-pass around its own mean."""
        n = int(x.size)
        if n == 0:
            return cls(order)
        mean = float(np.sum(x)) / n
        d = x - mean
        # einsum's sum of products: one pass, no temporary, no BLAS.
        m = cls(order, n, mean, float(np.einsum("i,i->", d, d)))
        if order >= 3:
            d2 = d * d
            d2 *= d
            m.m3 = float(np.sum(d2))
            if order >= 4:
                d2 *= d
                m.m4 = float(np.sum(d2))
        return m

    def update(self, x: np.ndarray) -> None:
        self.merge(Moments.of(x, self.order))

    def scaled(self, c: float) -> Moments:
        """The moments of c * x (order 2)."""
        return Moments(2, self.n, c * self.mean, c * c * self.m2)

    @property
    def sum_of_squares(self) -> float:
        """sum x^2 = M2 + n mean^2 (both terms non-negative: no cancellation)."""
        return self.m2 + self.n * self.mean * self.mean

    def merge(self, other: Moments) -> None:
        na, nb = self.n, other.n
        if nb == 0:
            return
        if na == 0:
            self.n, self.mean, self.m2, self.m3, self.m4 = (
                other.n, other.mean, other.m2, other.m3, other.m4)
            return
        n = na + nb
        delta = other.mean - self.mean
        dn = delta / n
        m2a, m2b, m3a, m3b = self.m2, other.m2, self.m3, other.m3
        m2 = m2a + m2b + delta * dn * na * nb
        if self.order >= 3:
            self.m3 = (m3a + m3b + delta * dn * dn * na * nb * (na - nb)
                       + 3.0 * dn * (na * m2b - nb * m2a))
        if self.order >= 4:
            self.m4 = (self.m4 + other.m4
                       + delta * dn * dn * dn * na * nb * (na * na - na * nb + nb * nb)
                       + 6.0 * dn * dn * (na * na * m2b + nb * nb * m2a)
                       + 4.0 * dn * (na * m3b - nb * m3a))
        self.mean = (na * self.mean + nb * other.mean) / n
        self.m2 = m2
        self.n = n

    @property
    def variance(self) -> float:
        """Population variance (ddof=0)."""
        return self.m2 / self.n if self.n else math.nan

    @property
    def std(self) -> float:
        return math.sqrt(max(self.variance, 0.0)) if self.n else math.nan

    @property
    def skewness(self) -> float:
        """Fisher-Pearson skewness g1 (biased, as ``scipy.stats.skew``)."""
        if self.n == 0 or self.m2 <= 0.0:
            return math.nan
        return math.sqrt(self.n) * self.m3 / self.m2**1.5

    @property
    def excess_kurtosis(self) -> float:
        """Excess kurtosis g2 (biased, as ``scipy.stats.kurtosis``)."""
        if self.n == 0 or self.m2 <= 0.0:
            return math.nan
        return self.n * self.m4 / (self.m2 * self.m2) - 3.0


#: Mantissa bits kept by the histogram keys: 2**7 = 128 buckets per octave, so a bucket's
#: midpoint is within 1/256 (0.39%) of every value in it.
_MANTISSA_BITS = 7
_SHIFT = 52 - _MANTISSA_BITS
#: Keys below this (values under HIST_MIN_POSITIVE, zero included) count as zero.
_MIN_KEY = int(np.array([HIST_MIN_POSITIVE]).view(np.int64)[0] >> _SHIFT)


def bucket_value(keys: np.ndarray) -> np.ndarray:
    """Midpoint of log buckets: within HIST_ALPHA of anything inside the bucket."""
    k = keys.astype(np.int64)
    lo = (k << _SHIFT).view(np.float64)
    hi = ((k + 1) << _SHIFT).view(np.float64)
    return 0.5 * (lo + hi)


@dataclass
class LogHistogram:
    """Counts of non-negative values in log-spaced buckets (a DDSketch-like dense store).

    The key of a positive float is the top bits of its IEEE-754 pattern (exponent and the first
    mantissa bits): one integer shift per value instead of a logarithm, and monotone in the value.
    Integer counts make merging exact and independent of chunking; quantiles are within
    HIST_ALPHA relative error of the true order statistic.
    """

    zero: int = 0
    offset: int = 0
    counts: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def update(self, x: np.ndarray) -> None:
        """Add non-negative values (NaN-free; +0.0 and values below HIST_MIN_POSITIVE are zero)."""
        if x.size == 0:
            return
        keys = np.right_shift(np.ascontiguousarray(x).view(np.int64), _SHIFT)
        kmin = int(keys.min())
        if kmin < _MIN_KEY:  # zeros (or -0.0, tiny values): counted apart, kept out of the range
            small = keys < _MIN_KEY
            self.zero += int(np.count_nonzero(small))
            keys = keys[~small]
            if keys.size == 0:
                return
            kmin = int(keys.min())
        keys -= kmin
        self._add(kmin, np.bincount(keys))

    def _add(self, offset: int, counts: np.ndarray) -> None:
        if counts.size == 0:
            return
        if self.counts.size == 0:
            self.offset, self.counts = offset, counts.astype(np.int64, copy=True)
            return
        lo = min(self.offset, offset)
        hi = max(self.offset + self.counts.size, offset + counts.size)
        if lo != self.offset or hi != self.offset + self.counts.size:
            grown = np.zeros(hi - lo, dtype=np.int64)
            grown[self.offset - lo:self.offset - lo + self.counts.size] = self.counts
            self.offset, self.counts = lo, grown
        self.counts[offset - lo:offset - lo + counts.size] += counts

    def merge(self, other: LogHistogram) -> None:
        self.zero += other.zero
        self._add(other.offset, other.counts)

    @property
    def n(self) -> int:
        return self.zero + int(self.counts.sum())

    def quantile(self, q: float) -> float:
        """The ceil(q*n)-th smallest value (inverted CDF), within HIST_ALPHA relative error."""
        n = self.n
        if n == 0:
            return math.nan
        rank = max(1, math.ceil(q * n))
        if rank <= self.zero:
            return 0.0
        idx = int(np.searchsorted(np.cumsum(self.counts), rank - self.zero))
        return float(bucket_value(np.array([self.offset + idx]))[0])

    def buckets(self) -> tuple[np.ndarray, np.ndarray]:
        """Representative values and counts of the non-empty buckets, zero bucket first."""
        nz = np.nonzero(self.counts)[0]
        values = np.concatenate(([0.0], bucket_value(nz + self.offset)))
        counts = np.concatenate(([self.zero], self.counts[nz]))
        return values, counts

    def count_at_most(self, threshold: float) -> int:
        """Approximate count of values <= threshold (exact for the zero bucket)."""
        values, counts = self.buckets()
        return int(counts[values <= threshold].sum())
