"""Mergeable accumulators: ``update`` a chunk, ``merge`` another state, read ``result``.

Every accumulator here obeys one contract: ``merge`` is associative and commutative and a fresh
instance is its identity, so chunking, threads and a distributed engine share one code path and the
results do not depend on how the rows were split (up to the last bits of per-chunk float sums).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from losscli.losses import Batch, Computed, LossDef, Params, row_multipliers
from losscli.spec import LossSpec
from losscli.uncertainty import bootstrap_sums, stream_key

# Values below this are counted in the zero bucket of a log histogram (subnormals included).
HIST_MIN_POSITIVE = 1e-300
# Relative accuracy of the log-bucket histograms: a quantile is within this factor of a true
# order statistic of the data (128 buckets per octave, midpoints).
HIST_ALPHA = 1.0 / 256


#: Every finite float64 is an integer multiple of 2**-1074 (the smallest subnormal); sums
#: count units 4400 bits finer still, so that rescaling a weighted sum by the ratio of two weight
#: scales (2**-d, d <= 2 x 2098 for sums of squared weights) stays exact.
_UNIT_BITS = 1074 + 4400
_UNIT = 1 << _UNIT_BITS


class ExactSum:
    """Exact sum of the floats added to it, rounded once when read (as ``math.fsum``).

    The sum is a Python integer counting units of 2**-5474, so it never overflows nor loses a
    bit whatever the order or grouping of chunks (nor when scaled by 2**-d, d <= 4400); only
    the pairwise ``np.sum`` inside each chunk rounds. Infinities and NaN are summed apart
    (``math.fsum`` raises on them, and on an intermediate overflow). A total beyond the float
    range reads as +-inf.
    """

    __slots__ = ("special", "units")

    def __init__(self) -> None:
        self.units = 0
        self.special = 0.0  # the sum of the infinite and NaN values added

    def add(self, x: float, exponent: int = 0) -> None:
        """Add x times 2**exponent."""
        try:
            num, den = float(x).as_integer_ratio()
        except (OverflowError, ValueError):  # inf, nan
            self.special += x
            return
        shift = _UNIT_BITS + 1 - den.bit_length() + exponent
        self.units += num << shift if shift >= 0 else num >> -shift

    def add_array(self, x: np.ndarray) -> None:
        """Add the sum of an array (NumPy's pairwise sum); when that overflows although every
        value is finite, the values are summed at 2**-64 of their size instead."""
        total = float(np.sum(x))
        if not math.isfinite(total):
            with np.errstate(over="ignore", invalid="ignore"):
                small = float(np.sum(np.ldexp(x, -64)))
            if math.isfinite(small):
                self.add(small, 64)
                return
        self.add(total)

    def merge(self, other: ExactSum, exponent: int = 0) -> None:
        """Add another sum, times 2**exponent."""
        self.units += (other.units << exponent if exponent >= 0
                       else other.units >> -exponent)
        self.special += other.special

    def scale(self, exponent: int) -> None:
        """Multiply the sum by 2**exponent (exact while the scalings total at most 2**-4400)."""
        self.units = self.units << exponent if exponent >= 0 else self.units >> -exponent

    def add_scaled(self, other: ExactSum, factor: float) -> None:
        """Add ``factor`` times another sum (exact unless a product drops below 2**-1074)."""
        num, den = float(factor).as_integer_ratio()
        self.units += (other.units * num) >> (den.bit_length() - 1)
        self.special += factor * other.special if other.special else 0.0

    def ratio(self, other: ExactSum) -> float:
        """This sum divided by another, rounded once: finite whenever the quotient is, even
        when either sum alone is beyond the float range."""
        if self.special or other.special:
            return self.value / other.value if other.value else math.nan
        if not other.units:
            return math.nan
        try:
            return self.units / other.units
        except OverflowError:
            return math.inf if (self.units > 0) == (other.units > 0) else -math.inf

    @property
    def value(self) -> float:
        if self.special:  # inf or NaN
            return self.special
        try:
            return self.units / _UNIT  # int / int is correctly rounded
        except OverflowError:
            return math.inf if self.units > 0 else -math.inf


def dot(x: np.ndarray, y: np.ndarray, out: np.ndarray | None = None) -> float:
    """sum x y without BLAS (whose threads fight the reading thread): the products, into
    ``out`` when given, then numpy's pairwise sum. Faster than einsum here, and its rounding
    error grows with log n, not n, so chunk sizes barely move the result."""
    return float(np.sum(np.multiply(x, y, out=out)))


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
    def of(cls, x: np.ndarray, order: int = 2, sum_sq: float | None = None) -> Moments:
        """The moments of one array. ``sum_sq`` is sum x^2 when the caller has it.

        Order 2 first tries M2 = sum x^2 - n mean^2, whose relative error is about
        (sum x^2 / M2) eps; when the mean carries more than three quarters of sum x^2 it takes
        the second pass around the mean instead, so offset data keeps its precision.
        """
        n = int(x.size)
        if n == 0:
            return cls(order)
        total = float(np.sum(x))
        mean = total / n
        if order == 2:
            ss = dot(x, x) if sum_sq is None else sum_sq
            m2 = ss - total * mean
            if 4.0 * m2 >= ss:  # false for NaN; ss = 0 means all zeros: M2 = 0
                return cls(order, n, mean, m2)
        d = x - mean
        m = cls(order, n, mean, dot(d, d))
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
        # Products, not **: a Python float's ** raises OverflowError where * gives inf.
        return math.sqrt(self.n) * self.m3 / (self.m2 * math.sqrt(self.m2))

    @property
    def excess_kurtosis(self) -> float:
        """Excess kurtosis g2 (biased, as ``scipy.stats.kurtosis``)."""
        if self.n == 0 or self.m2 <= 0.0:
            return math.nan
        return self.n * self.m4 / (self.m2 * self.m2) - 3.0


# --- mergeable moments of per-row losses (standard errors and intervals) -------------------


def _scaled(m: Moments, factor: float) -> Moments:
    """Weighted moments whose weights are multiplied by ``factor`` (the mean is unchanged)."""
    return Moments(m.order, m.n * factor, m.mean, m.m2 * factor, m.m3 * factor)  # type: ignore[arg-type]


def _weighted(x: np.ndarray, v: np.ndarray, order: int) -> Moments:
    """Moments of x under non-negative weights v (n is their sum): two passes, as Moments.of."""
    total = float(np.sum(v))
    if total <= 0.0:
        return Moments(order)
    mean = dot(v, x) / total
    d = x - mean
    vd = v * d
    m = Moments(order, total, mean, dot(vd, d))  # type: ignore[arg-type]
    if order >= 3:
        vd *= d
        m.m3 = dot(vd, d, out=vd)
    return m


@dataclass
class RowMoments:
    """What the standard error and the intervals of a weighted mean of per-row losses need.

    Unweighted: the count, mean and central sums M2, M3 of l (Chan/Pebay merge). Weighted: the
    moments of l under weights w^2 (order 2, for the variance) and under w^3 (order 3, for the
    skewness), merged with Chan's formulas generalised to weights. Those weights are w * 2^-scale
    with ``scale`` the exponent of the largest weight so far, so that w^3 neither overflows nor
    underflows; merging brings both sides to the larger scale (exactly: powers of two).
    Without ``skew`` (the t interval) the third moments are not computed: NaN.
    """

    weighted: bool = False
    skew: bool = True
    n: int = 0
    plain: Moments = field(default_factory=lambda: Moments(3))
    scale: int = 0
    w2: Moments = field(default_factory=lambda: Moments(2))
    w3: Moments = field(default_factory=lambda: Moments(3))
    #: the smallest per-row value: a loss whose rows are all >= 0 has intervals >= 0
    low: float = math.inf
    #: the moments are of l * 2^-vscale: losses whose squares or cubes would overflow (above
    #: about 1e100) or underflow (below about 1e-90) are rescaled by a power of two (exact)
    vscale: int = 0
    #: sum (w 2^-scale)^4 (weighted): with w2.n = sum (w 2^-scale)^2 it gives the degrees of
    #: freedom of the weighted variance (:func:`variance_df`); 0 where nobody kept it
    w4: float = 0.0

    @classmethod
    def of(cls, values: np.ndarray, weight: np.ndarray | None, total: float | None = None,
           exp: int = 0, squares: tuple[np.ndarray, float] | None = None,
           skew: bool = True, low: float | None = None) -> RowMoments:
        """The moments of one chunk's per-row losses under weights ``weight`` * 2^exp (the
        caller may have rescaled them). Unweighted, ``total`` is sum l and ``squares`` the
        array l^2 with its sum, when the caller has them (each saves passes). Without
        ``skew`` the third moments are left out (one pass less unweighted, three weighted).
        ``low`` is a lower bound of the values when the caller knows one (0 for e^2: a pass
        saved; -inf when nobody reads it). Moments out of range are taken again of the values
        rescaled by a power of two."""
        out = cls._of(values, weight, total, exp, squares, skew, low)
        if out._in_range():
            return out
        top = float(np.max(np.abs(values)))
        if not (top > 0.0 and math.isfinite(top)):
            return out
        e = math.frexp(top)[1]
        scaled = cls._of(np.ldexp(values, -e), weight, None, exp, None, skew, out.low)
        scaled.vscale, scaled.low = e, out.low
        return scaled

    def _in_range(self) -> bool:
        """Whether the second and third moments neither overflowed nor underflowed."""
        if self.n == 0:
            return True
        m2, m3 = ((self.w2.m2, self.w3.m3) if self.weighted else (self.plain.m2, self.plain.m3))
        mean = self.w2.mean if self.weighted else self.plain.mean
        if not math.isfinite(m2) or (self.skew and not math.isfinite(m3)):
            return not math.isfinite(mean)  # NaN data stays as it is
        return not (m2 < 2.0**-600 and abs(mean) < 2.0**-200)

    def _rescale(self, vscale: int) -> None:
        """Express the moments in units of 2^vscale (>= the current one)."""
        k = self.vscale - vscale
        if k == 0:
            return
        for m in (self.plain, self.w2, self.w3):
            m.mean, m.m2, m.m3 = (math.ldexp(m.mean, k), math.ldexp(m.m2, 2 * k),
                                  math.ldexp(m.m3, 3 * k))
        self.vscale = vscale

    @classmethod
    def _of(cls, values: np.ndarray, weight: np.ndarray | None, total: float | None = None,
            exp: int = 0, squares: tuple[np.ndarray, float] | None = None,
            skew: bool = True, low: float | None = None) -> RowMoments:
        n = int(values.size)
        if low is None:
            low = float(np.min(values)) if n else math.inf
        if weight is None:
            if n == 0:
                return cls(False, skew=skew)
            s1 = float(np.sum(values)) if total is None else total
            mean = s1 / n
            # Raw sums first: l^2 once (unless the caller has it), its pairwise sum, and sum
            # l^2 l in one pass of einsum's product-sum loop (no BLAS): three passes, where
            # einsum's three-operand loop alone costs two. When the mean carries more than
            # three quarters of sum l^2 they would cancel, and the central sums are taken
            # around the mean instead.
            if squares is None:
                sq = np.multiply(values, values)
                s2 = float(np.add.reduce(sq))
            else:
                sq, s2 = squares
            m2 = s2 - s1 * mean
            if 4.0 * m2 >= s2:  # false for NaN
                m3 = math.nan
                if skew:
                    s3 = float(np.einsum("i,i->", sq, values))
                    m3 = s3 - 3.0 * mean * s2 + 2.0 * n * mean * mean * mean
                return cls(False, skew, n, Moments(3, n, mean, m2, m3), low=low)
            d = values - mean
            d2 = d * d
            m2 = float(np.sum(d2))
            m3 = math.nan
            if skew:
                d2 *= d
                m3 = float(np.sum(d2))
            return cls(False, skew, n, Moments(3, n, mean, m2, m3), low=low)
        out = cls(True, skew, n, low=low)
        if n == 0:
            return out
        top = float(weight.max())
        if top <= 0.0:
            return out
        e = math.frexp(top)[1]
        out.scale = e + exp
        ws = np.ldexp(weight, -e)
        v = ws * ws
        out.w2 = _weighted(values, v, 2)
        out.w4 = dot(v, v)
        if skew:
            v *= ws
            out.w3 = _weighted(values, v, 3)
        return out

    def merge(self, other: RowMoments) -> None:
        if other.n == 0:
            return
        self.low = min(self.low, other.low)
        if self.n == 0:
            self.weighted, self.n, self.scale = other.weighted, other.n, other.scale
            self.skew, self.vscale, self.w4 = other.skew, other.vscale, other.w4
            self.plain, self.w2, self.w3 = (_scaled(other.plain, 1.0), _scaled(other.w2, 1.0),
                                            _scaled(other.w3, 1.0))
            return
        if other.vscale != self.vscale:
            if other.vscale < self.vscale:
                other = RowMoments(other.weighted, other.skew, other.n, _scaled(other.plain, 1.0),
                                   other.scale, _scaled(other.w2, 1.0), _scaled(other.w3, 1.0),
                                   other.low, other.vscale, other.w4)
                other._rescale(self.vscale)
            else:
                self._rescale(other.vscale)
        self.n += other.n
        self.skew = self.skew and other.skew
        if not self.weighted:
            self.plain.merge(other.plain)
            return
        o2, o3, o4 = other.w2, other.w3, other.w4
        if other.scale > self.scale:
            f = 2.0 ** (self.scale - other.scale)
            self.w2, self.w3 = _scaled(self.w2, f * f), _scaled(self.w3, f * f * f)
            self.w4 *= (f * f) * (f * f)
            self.scale = other.scale
        elif other.scale < self.scale:
            f = 2.0 ** (other.scale - self.scale)
            o2, o3, o4 = _scaled(o2, f * f), _scaled(o3, f * f * f), o4 * (f * f) * (f * f)
        self.w2.merge(o2)
        self.w3.merge(o3)
        self.w4 += o4

    def sums(self, value: float, mult: float = 1.0, wmult: float = 1.0) -> tuple[float, float]:
        """(sum v^2 (c l - L)^2, sum v^3 (c l - L)^3) with v = wmult w 2^-scale (1 unweighted),
        c = ``mult`` and L = ``value``: the pieces of the linearised terms' moments, of the
        values in units of 2^vscale (L is given in those units)."""
        if not self.weighted:
            m2, m3, n, mean = self.plain.m2, self.plain.m3, self.plain.n, self.plain.mean
            a2 = a3 = float(n)
            mean2, mean3, m2_3 = mean, mean, m2
        else:
            a2, mean2, m2 = self.w2.n, self.w2.mean, self.w2.m2
            a3, mean3, m2_3, m3 = self.w3.n, self.w3.mean, self.w3.m2, self.w3.m3
        d2 = mult * mean2 - value
        d3 = mult * mean3 - value
        # Products, not **: a Python float's ** raises OverflowError where * gives inf.
        q2 = wmult * wmult * (mult * mult * m2 + a2 * d2 * d2)
        if not self.skew:
            return q2, math.nan
        q3 = wmult * wmult * wmult * (mult * mult * mult * m3 + 3.0 * mult * mult * m2_3 * d3
                                      + a3 * d3 * d3 * d3)
        return q2, q3


@dataclass
class CoMoments:
    """The weighted means and co-moment matrix of several per-row series under weights w^2
    (the covariance of their linearised terms: what correlates several losses' tests), merged
    with Chan's formula. Weights are scaled by 2^-scale (the largest weight's exponent), as in
    :class:`RowMoments`; unweighted the weight is 1."""

    total: float = 0.0  # sum v, v = (w 2^-scale)^2
    scale: int = 0
    mean: np.ndarray | None = None
    comoment: np.ndarray | None = None

    @classmethod
    def of(cls, series: np.ndarray, weight: np.ndarray | None) -> CoMoments:
        """The co-moments of the rows of ``series`` (k x n), in two passes (einsum's own
        loop: no BLAS)."""
        n = series.shape[1]
        if n == 0:
            return cls()
        if weight is None:
            mean = np.mean(series, axis=1)
            d = series - mean[:, None]
            return cls(float(n), 0, mean, np.einsum("ki,li->kl", d, d))
        top = float(weight.max())
        if top <= 0.0:
            return cls()
        e = math.frexp(top)[1]
        ws = np.ldexp(weight, -e)
        v = ws * ws
        total = float(np.sum(v))
        mean = np.einsum("ki,i->k", series, v) / total
        d = series - mean[:, None]
        return cls(total, e, mean, np.einsum("ki,li->kl", d * v, d))

    def merge(self, other: CoMoments) -> None:
        if other.mean is None or other.comoment is None:
            return
        if self.mean is None or self.comoment is None:
            self.total, self.scale = other.total, other.scale
            self.mean, self.comoment = other.mean.copy(), other.comoment.copy()
            return
        ta, tb, ca, cb = self.total, other.total, self.comoment, other.comoment
        if other.scale > self.scale:
            f = 4.0 ** (self.scale - other.scale)
            ta, ca, self.scale = ta * f, ca * f, other.scale
        elif other.scale < self.scale:
            f = 4.0 ** (other.scale - self.scale)
            tb, cb = tb * f, cb * f
        t = ta + tb
        delta = other.mean - self.mean
        self.comoment = ca + cb + np.multiply.outer(delta, delta) * (ta * tb / t)
        self.mean = self.mean + delta * (tb / t)
        self.total = t

    def correlation(self, centre: np.ndarray) -> np.ndarray:
        """The correlation matrix of the series' linearised terms v (x - centre), centre
        being their w-weighted means (the reported values)."""
        assert self.mean is not None and self.comoment is not None
        off = self.mean - centre
        cov = self.comoment + np.multiply.outer(off, off) * self.total
        sd = np.sqrt(np.clip(np.diag(cov), 0.0, None))
        with np.errstate(divide="ignore", invalid="ignore"):
            corr = cov / np.multiply.outer(sd, sd)
        corr[~np.isfinite(corr)] = 0.0
        np.fill_diagonal(corr, 1.0)
        return np.clip(corr, -1.0, 1.0)


def linearised_spread(parts: Sequence[tuple[RowMoments, float, float]], value: float,
                      weight_total: float, weight_exp: int) -> tuple[float, float, int]:
    """(s^2, m3, k) of the linearised terms z_i = n v_i (c_i l_i - L) / sum(v) of a weighted
    mean L = ``value``: their sample variance (ddof 1) and third central moment (over n), of
    the terms in units of 2^k (k = 0 unless the losses were rescaled: their SE is then
    sqrt(s^2 / n) 2^k, which s^2 alone could not hold).

    ``parts`` are (moments, c, a) of groups of rows whose effective weights are v = a w (class
    weights, or 1) and whose per-row loss is c l; ``weight_total`` is sum(v) * 2^-weight_exp.
    """
    live = [p for p in parts if p[0].n]
    n = sum(p[0].n for p in live)
    if n < 2 or not live:
        return math.nan, math.nan, 0
    top = max(p[0].scale for p in live)
    k = max(p[0].vscale for p in live)
    q2 = q3 = 0.0
    for m, c, a in live:
        f = 2.0 ** (m.scale - top)
        g = 2.0 ** (m.vscale - k)
        s2, s3 = m.sums(math.ldexp(value, -m.vscale), c, a)
        q2 += s2 * (f * f * g * g)
        q3 += s3 * (f * f * f * g * g * g)
    r = 1.0 / math.ldexp(weight_total, weight_exp - top)  # 2^top / sum(v)
    nr = n * r
    return nr * nr * q2 / (n - 1), nr * nr * nr * q3 / n, k


def effective_rows(parts: Sequence[tuple[RowMoments, float, float]], weight_total: float,
                   weight_exp: int) -> float:
    """Kish's effective sample size (sum v)^2 / sum v^2 of the rows behind a weighted mean
    (the parts and weights as in :func:`linearised_spread`); the row count unweighted."""
    live = [p for p in parts if p[0].n]
    if not live:
        return 0.0
    if not any(m.weighted for m, _, _ in live):
        if all(a == 1.0 for _, _, a in live):
            return float(sum(m.n for m, _, _ in live))
        top = 0
    else:
        top = max(m.scale for m, _, _ in live)
    sq = 0.0
    for m, _, a in live:
        f = 4.0 ** (m.scale - top)
        sq += a * a * (m.w2.n if m.weighted else m.n) * f
    total = math.ldexp(weight_total, weight_exp - top)
    return total * total / sq if sq > 0.0 else math.nan


def variance_df(parts: Sequence[tuple[RowMoments, float, float]], n_eff: float) -> float:
    """The degrees of freedom of the weighted variance estimate behind a weighted mean's SE,
    sum v^2 (l - L)^2: Satterthwaite's (sum v^2)^2 / sum v^4 - 1 for rows of equal variance
    (v = a w, the parts as in :func:`linearised_spread`). Unweighted it is n - 1. Few large
    weights leave the variance estimate far fewer degrees of freedom than the mean has
    effective rows (lognormal(0, 1) weights: about n / 55 against Kish's n / e), and Kish's
    n_eff - 1 under-covers (89.7% for mse at n = 100). Falls back to ``n_eff`` - 1 when a
    part kept no fourth power sum."""
    live = [p for p in parts if p[0].n]
    if not live:
        return math.nan
    top = max(m.scale for m, _, _ in live)
    s2 = s4 = 0.0
    for m, _, a in live:
        if not m.weighted:
            s2 += a * a * m.n
            s4 += (a * a) * (a * a) * m.n
            continue
        if not m.w4 > 0.0:
            return n_eff - 1.0
        f = 4.0 ** (m.scale - top)
        s2 += a * a * m.w2.n * f
        s4 += (a * a) * (a * a) * m.w4 * (f * f)
    return s2 * s2 / s4 - 1.0 if s4 > 0.0 else math.nan


#: Mantissa bits kept by the histogram keys: 2**7 = 128 buckets per octave, so a bucket's
#: midpoint is within 1/256 (0.39%) of every value in it.
_MANTISSA_BITS = 7
_SHIFT = 52 - _MANTISSA_BITS


def _key(x: float) -> int:
    """The histogram key of one non-negative float."""
    return int(np.array([x], dtype=np.float64).view(np.int64)[0] >> _SHIFT)


#: Keys below this (values under HIST_MIN_POSITIVE, zero included) count as zero.
_MIN_KEY = _key(HIST_MIN_POSITIVE)


def bucket_value(keys: np.ndarray) -> np.ndarray:
    """Midpoint of log buckets: within HIST_ALPHA of anything inside the bucket."""
    k = keys.astype(np.int64)
    lo = (k << _SHIFT).view(np.float64)
    hi = np.fmin(((k + 1) << _SHIFT).view(np.float64), np.finfo(np.float64).max)
    # The bucket of +inf is inf (the key after it is NaN); the last finite one ends at the
    # largest float. Computed as lo + (hi - lo) / 2, which cannot overflow for finite lo.
    with np.errstate(invalid="ignore"):
        return np.where(np.isinf(lo), lo, lo + 0.5 * (hi - lo))


def inverted_cdf(values: np.ndarray, counts: np.ndarray, q: float) -> float:
    """The ceil(q n)-th smallest of ascending ``values`` repeated ``counts`` times (NaN if
    there are none): numpy's ``method="inverted_cdf"`` on bucketed data."""
    cum = np.cumsum(counts)
    n = int(cum[-1]) if cum.size else 0
    if n == 0:
        return math.nan
    rank = max(1, math.ceil(q * n))
    return float(values[int(np.searchsorted(cum, rank))])


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

    def update(self, x: np.ndarray, lo: float | None = None) -> None:
        """Add non-negative values (NaN-free; +0.0 and values below HIST_MIN_POSITIVE are zero).
        ``lo`` is ``x.min()`` when the caller has it (the smallest value has the smallest key)."""
        if x.size == 0:
            return
        keys = np.right_shift(np.ascontiguousarray(x).view(np.int64), _SHIFT)
        kmin = int(keys.min()) if lo is None else _key(lo)
        if kmin < _MIN_KEY:  # zeros (or -0.0, tiny values): counted apart, kept out of the range
            small = keys < _MIN_KEY
            self.zero += int(np.count_nonzero(small))
            keys = keys[~small]
            if keys.size == 0:
                return
            kmin = int(keys.min())
        keys -= kmin
        self.add_counts(kmin, np.bincount(keys))

    def add_counts(self, offset: int, counts: np.ndarray) -> None:
        """Add bucket counts: ``counts[i]`` values of key ``offset + i``."""
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
        self.add_counts(other.offset, other.counts)

    @property
    def n(self) -> int:
        return self.zero + int(self.counts.sum())

    def quantile(self, q: float) -> float:
        """The ceil(q*n)-th smallest value (inverted CDF), within HIST_ALPHA relative error."""
        return inverted_cdf(*self.buckets(), q)

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


@dataclass
class SignedHistogram:
    """Values x - centre in two log histograms (positive side, negative side); exact zeros are
    counted in the positive side's zero bucket. Integer counts: merging is exact."""

    pos: LogHistogram = field(default_factory=LogHistogram)
    neg: LogHistogram = field(default_factory=LogHistogram)

    def update(self, d: np.ndarray, abs_d: np.ndarray | None = None,
               unsigned: LogHistogram | None = None) -> None:
        """Add NaN-free values; ``abs_d`` is |d| when the caller has it. ``unsigned`` (a
        histogram of |d|) gets the same values too, from the same keys: the counts of the two
        sides added, which are those of |d| (the key of -x is that of x)."""
        if d.size == 0:
            return
        # The keys of |d| once, interleaved with the sign (2 key + [d < 0]), one bincount: no
        # copy of either side (boolean indexing cost twice as much, a masked add three times).
        a = np.abs(d) if abs_d is None else np.ascontiguousarray(abs_d)
        keys = np.right_shift(a.view(np.int64), _SHIFT)
        kmin = int(keys.min())
        if kmin < _MIN_KEY:  # zeros or values below HIST_MIN_POSITIVE: each side apart
            neg = d < 0.0
            self.neg.update(-d[neg])
            self.pos.update(d[~neg])
            if unsigned is not None:
                unsigned.update(a)
            return
        keys -= kmin
        keys <<= 1
        keys += d < 0.0
        counts = np.bincount(keys)
        on_pos, on_neg = counts[0::2], counts[1::2]
        self.pos.add_counts(kmin, on_pos)
        self.neg.add_counts(kmin, on_neg)
        if unsigned is not None:
            both = on_pos.copy()
            both[:on_neg.size] += on_neg
            unsigned.add_counts(kmin, both)

    def merge(self, other: SignedHistogram) -> None:
        self.pos.merge(other.pos)
        self.neg.merge(other.neg)

    def signed_buckets(self) -> tuple[np.ndarray, np.ndarray]:
        """Ascending signed representative values and their counts (zero bucket included)."""
        pv, pc = self.pos.buckets()
        nv, nc = self.neg.buckets()
        # neg.buckets() includes its (always empty, or sub-1e-300) zero bucket first.
        values = np.concatenate((-nv[::-1], pv))
        counts = np.concatenate((nc[::-1], pc))
        keep = counts > 0
        return values[keep], counts[keep]


# --- the evaluation state -----------------------------------------------------------------


@dataclass(frozen=True)
class GradientOptions:
    """Thresholds of the gradient fractions."""

    vanish_tol: float = 1e-6
    explode_tol: float = 1e3
    grad_clip: float | None = None


@dataclass
class GradState:
    """Accumulated statistics of |g| and g for one loss."""

    moments: Moments = field(default_factory=Moments)
    abs_sum: ExactSum = field(default_factory=ExactSum)
    abs_max: float = 0.0
    abs_min: float = math.inf
    sq_weighted: ExactSum = field(default_factory=ExactSum)  # sum (w_i g_i)^2
    vanishing: int = 0
    exploding: int = 0
    clipped: int = 0
    hist: LogHistogram | None = None

    def update(self, g: np.ndarray, w: np.ndarray | None, opts: GradientOptions,
               abs_g: np.ndarray | None = None) -> None:
        if g.size == 0:
            return
        ss = dot(g, g)
        self.moments.merge(Moments.of(g, sum_sq=ss))
        a = np.abs(g) if abs_g is None else abs_g
        self.abs_sum.add(float(np.sum(a)))
        amax, amin = float(a.max()), float(a.min())
        self.abs_max = max(self.abs_max, amax)
        self.abs_min = min(self.abs_min, amin)
        if w is None:
            self.sq_weighted.add(ss)
        else:
            wg = a * w
            self.sq_weighted.add(dot(wg, wg, out=wg))
        self._count(a, opts, 1.0, amax, amin)
        if self.hist is not None:
            self.hist.update(a)

    def update_linear(self, c: float, base: Summary, opts: GradientOptions) -> None:
        """g = c b for a summarised b (the residual, or the clipped residual): the statistics
        are b's, scaled; only the threshold counts are taken anew."""
        self.moments.merge(base.moments.scaled(c))
        self.abs_sum.add(c * base.abs_sum)
        self.abs_max = max(self.abs_max, c * base.abs_max)
        self.abs_min = min(self.abs_min, c * base.abs_min)
        self.sq_weighted.add(c * c * base.sq_weighted)
        self._count(base.abs_values, opts, c, base.abs_max, base.abs_min)

    def update_sign(self, res: ResidualChunk, w: np.ndarray | None,
                    opts: GradientOptions) -> None:
        """g = sign(e): everything follows from the counts of positive and negative e."""
        n, pos, neg = res.moments.n, res.positive, res.negative
        nonzero = pos + neg
        mean = (pos - neg) / n
        m2 = pos * (1.0 - mean) ** 2 + neg * (1.0 + mean) ** 2 + (n - nonzero) * mean * mean
        self.moments.merge(Moments(2, n, mean, m2))
        self.abs_sum.add(float(nonzero))
        self.abs_max = max(self.abs_max, 1.0 if nonzero else 0.0)
        self.abs_min = min(self.abs_min, 0.0 if nonzero < n else 1.0)
        if w is None:
            self.sq_weighted.add(float(nonzero))
        else:
            w2 = np.where(res.abs_values > 0.0, w, 0.0)
            self.sq_weighted.add(dot(w2, w2, out=w2))
        zero = n - nonzero
        # |g| is 0 on `zero` rows and 1 on the others.
        self.vanishing += zero + (nonzero if opts.vanish_tol >= 1.0 else 0)
        self.exploding += (nonzero if opts.explode_tol <= 1.0 else 0) + (
            zero if opts.explode_tol <= 0.0 else 0)
        if opts.grad_clip is not None:
            self.clipped += nonzero if opts.grad_clip < 1.0 else 0

    def _count(self, a: np.ndarray, opts: GradientOptions, c: float, amax: float,
               amin: float | None = None) -> None:
        """Threshold counts of |g| = c |a| (exact: thresholds are divided by c, a power of two
        or one for the catalog's linear losses). A threshold outside [min, max] needs no pass."""
        n = int(a.size)
        lo = float(a.min()) if amin is None else amin

        def at_most(t: float) -> int:
            return 0 if lo > t else n if amax <= t else int(np.count_nonzero(a <= t))

        def at_least(t: float) -> int:
            return 0 if amax < t else n if lo >= t else int(np.count_nonzero(a >= t))

        self.vanishing += at_most(opts.vanish_tol / c)
        self.exploding += at_least(opts.explode_tol / c)
        if opts.grad_clip is not None:
            self.clipped += n - at_most(opts.grad_clip / c)

    def merge(self, other: GradState, weight_exp: int = 0) -> None:
        """Add the statistics of later rows; their weights were 2**weight_exp times ours."""
        self.moments.merge(other.moments)
        self.abs_sum.merge(other.abs_sum)
        self.abs_max = max(self.abs_max, other.abs_max)
        self.abs_min = min(self.abs_min, other.abs_min)
        self.sq_weighted.merge(other.sq_weighted, 2 * weight_exp)
        self.vanishing += other.vanishing
        self.exploding += other.exploding
        self.clipped += other.clipped
        if self.hist is not None and other.hist is not None:
            self.hist.merge(other.hist)


@dataclass
class Summary:
    """One chunk's sums of an array b that gradients are multiples of (g = c b)."""

    abs_values: np.ndarray  # |b|
    moments: Moments  # of b
    abs_sum: float
    abs_max: float
    abs_min: float
    sq_weighted: float  # sum (w b)^2


@dataclass
class ResidualChunk(Summary):
    """What one chunk's residual e = pred - target gives every loss whose gradient is c e or
    sign(e): computed once, shared."""

    sum_sq: float = 0.0  # sum e^2
    positive: int = 0
    negative: int = 0
    squares: np.ndarray | None = None  # e^2, kept when asked for (per-row squared errors)

    @classmethod
    def of(cls, batch: Batch, signs: bool, keep_squares: bool = False,
           gradients: bool = True) -> ResidualChunk:
        """``gradients=False``: the value sums only (sum e^2, sum |e|), as for losses whose
        gradient statistics nobody reads."""
        e, a, w = batch.residual(), batch.abs_residual(), batch.weight
        squares = np.multiply(e, e)
        ss = float(np.sum(squares))
        if not gradients:
            return cls(a, Moments(), float(np.sum(a)), math.nan, math.nan, math.nan, ss, 0, 0,
                       squares if keep_squares else None)
        moments = Moments.of(e, sum_sq=ss)
        if w is None:
            sq = ss
        else:
            we = e * w
            sq = dot(we, we, out=we)
        amin = float(a.min())
        pos = neg = 0
        if signs:
            pos = int(np.count_nonzero(e > 0.0))
            zeros = int(np.count_nonzero(a == 0.0)) if amin == 0.0 else 0
            neg = int(e.size) - pos - zeros
        return cls(a, moments, float(np.sum(a)), float(a.max()), amin, sq, ss, pos, neg,
                   squares if keep_squares else None)

    def value_sum(self, form: str, w: np.ndarray | None, e: np.ndarray) -> float:
        """sum w l for l = e^2 ("square") or |e| ("abs"), from what is already computed."""
        if form == "square":
            if w is None:
                return self.sum_sq
            return dot(np.multiply(w, e), e)
        if w is None:
            return self.abs_sum
        return dot(w, self.abs_values)


@dataclass
class ClippedChunk(Summary):
    """g = clip(e, -d, d) / s and the Huber-shaped loss l = m (|e| - m/2) / s, m = min(|e|, d),
    summarised from sums (sum g, sum |g|, sum m^2, sum m |e|) without a per-row loss array."""

    value: float = 0.0  # sum w l
    #: unweighted: the arrays m^2 and m |e| behind the sums, which make the per-row losses
    products: tuple[np.ndarray, np.ndarray] | None = None

    @classmethod
    def of(cls, d: float, s: float, res: ResidualChunk, e: np.ndarray,
           w: np.ndarray | None, gradients: bool = True) -> ClippedChunk:
        """``gradients=False``: the value alone (``value``; the summary fields are empty)."""
        g = np.clip(e, -d, d)
        m = np.abs(g)
        a = res.abs_values
        wm = m if w is None else m * w
        mm, ma = wm * m, wm * a
        sq = float(np.sum(mm))
        # sum w m |e| - sum w m^2 / 2: m |e| >= m^2, so at most one bit is lost.
        value = (float(np.sum(ma)) - 0.5 * sq) / s
        if not gradients:
            return cls(m, Moments(), math.nan, math.nan, math.nan, math.nan, value,
                       (mm, ma) if w is None else None)
        lo, hi = min(res.abs_min, d), min(res.abs_max, d)
        if s != 1.0:
            # Divided row by row, as g is defined: thresholds then count exactly.
            g /= s
            m /= s
            wm = m if w is None else m * w
            sq, lo, hi = dot(wm, m), lo / s, hi / s
        if w is None:
            moments, sq_weighted = Moments.of(g, sum_sq=sq), sq
        else:
            moments, sq_weighted = Moments.of(g), dot(wm, wm, out=wm)
        return cls(m, moments, float(np.sum(m)), hi, lo, sq_weighted, value,
                   (mm, ma) if w is None else None)

    def row_losses(self, s: float, res: ResidualChunk) -> np.ndarray:
        """The per-row losses l = (m |e| - m^2 / 2) / s, from the products of the sums when
        they were kept (consumed here), else from |g| = m / s."""
        if self.products is not None:
            values, ma = self.products
            self.products = None
            values *= -0.5
            values += ma
            if s != 1.0:
                values /= s
            return values
        g = self.abs_values
        values = g * (-0.5 * s)
        values += res.abs_values
        values *= g
        return values


#: Up to this many classes, each class's rows are found by a comparison pass (k passes over
#: the chunk); beyond it by one stable sort.
CLASS_MASK_LIMIT = 8


def _class_rows(y: np.ndarray, k: int) -> list[np.ndarray]:
    """The row indices of each class 0..k-1, each in row order."""
    if k <= CLASS_MASK_LIMIT:
        return [np.flatnonzero(y == c) for c in range(k)]
    order = np.argsort(y, kind="stable")
    bounds = np.searchsorted(y[order], np.arange(k + 1, dtype=np.float64) - 0.5)
    return [order[bounds[c]:bounds[c + 1]] for c in range(k)]


@dataclass
class ClassSplit:
    """Per-class sums of a loss whose class weights a_c are known only at the end of the pass
    (``balanced``): the unscaled loss l and gradient g of each class's rows, kept apart, so the
    weighted loss a_y l and its gradient a_y g follow exactly once the class counts are in."""

    counts: list[int] = field(default_factory=list)
    values: list[ExactSum] = field(default_factory=list)  # sum over the class of w l
    weights: list[ExactSum] = field(default_factory=list)  # sum over the class of w
    grads: list[GradState] = field(default_factory=list)  # of the unscaled g
    #: keep the moments of each class's per-row losses (for standard errors and intervals)
    spread: bool = False
    #: with their third moments (Johnson's interval)
    skew: bool = True
    spreads: list[RowMoments] = field(default_factory=list)

    def _grow(self, k: int) -> None:
        while len(self.counts) < k:
            self.counts.append(0)
            self.values.append(ExactSum())
            self.weights.append(ExactSum())
            self.grads.append(GradState(hist=LogHistogram()))
            self.spreads.append(RowMoments())

    def update(self, c: Computed, batch: Batch, opts: GradientOptions, exp: int = 0) -> None:
        """Add a chunk's rows to their classes; ``exp``: the weights were scaled by 2^-exp."""
        k = batch.pred.shape[0] if batch.pred.ndim == 2 else 2
        self._grow(k)
        w = batch.weight
        for cls, rows in enumerate(_class_rows(batch.target, k)):
            if rows.size == 0:
                continue
            wc = None if w is None else w[rows]
            vals = c.values[rows]
            self.counts[cls] += int(rows.size)
            self.values[cls].add_array(vals if wc is None else vals * wc)
            self.weights[cls].add(float(rows.size) if wc is None else float(np.sum(wc)))
            self.grads[cls].update(c.grads[rows], wc, opts,
                                   None if c.abs_grads is None else c.abs_grads[rows])
            if self.spread:
                self.spreads[cls].merge(RowMoments.of(vals, wc, exp=exp, skew=self.skew))

    def merge(self, other: ClassSplit, weight_exp: int = 0) -> None:
        """Add later rows' sums; their weights were 2**weight_exp times ours."""
        self._grow(len(other.counts))
        for i in range(len(other.counts)):
            self.counts[i] += other.counts[i]
            self.values[i].merge(other.values[i], weight_exp)
            self.weights[i].merge(other.weights[i], weight_exp)
            self.grads[i].merge(other.grads[i], weight_exp)
            self.spreads[i].merge(other.spreads[i])

    def scale(self, exponent: int) -> None:
        """Multiply the weights behind every sum by 2**exponent."""
        for i in range(len(self.counts)):
            self.values[i].scale(exponent)
            self.weights[i].scale(exponent)
            self.grads[i].sq_weighted.scale(2 * exponent)

    def value_sums(self, a: np.ndarray) -> tuple[ExactSum, ExactSum]:
        """(sum_c a_c S_c, sum_c a_c W_c): the weighted loss sum and its class-weighted total."""
        num, den = ExactSum(), ExactSum()
        for c in range(len(self.counts)):
            num.add_scaled(self.values[c], float(a[c]))
            den.add_scaled(self.weights[c], float(a[c]))
        return num, den

    def gradient(self, a: np.ndarray, opts: GradientOptions,
                 quantiles: Sequence[float]) -> tuple[GradState, list[float]]:
        """The statistics of g' = a_y g over all rows, and its |g'| quantiles.

        Moments, |g'| sum and max and sum (w g')^2 are exact (each class's, scaled by a_c and
        merged); the quantiles and the threshold fractions come from each class's |g| histogram
        scaled by a_c, within its bucket accuracy (HIST_ALPHA relative)."""
        out = GradState()
        values: list[np.ndarray] = []
        counts: list[np.ndarray] = []
        for c, g in enumerate(self.grads):
            n, ac = g.moments.n, float(a[c])
            if n == 0:
                continue
            out.moments.merge(g.moments.scaled(ac))
            out.abs_sum.add_scaled(g.abs_sum, ac)
            out.abs_max = max(out.abs_max, ac * g.abs_max)
            out.abs_min = min(out.abs_min, ac * g.abs_min)
            out.sq_weighted.add_scaled(g.sq_weighted, ac * ac)
            assert g.hist is not None
            v, cnt = g.hist.buckets()
            values.append(v * ac)
            counts.append(cnt)
            if ac > 0.0:
                at_most = g.hist.count_at_most
                out.vanishing += at_most(opts.vanish_tol / ac)
                out.exploding += n - at_most(opts.explode_tol / ac * (1 - 1e-12))
                if opts.grad_clip is not None:
                    out.clipped += n - at_most(opts.grad_clip / ac)
            else:  # |g'| = 0 on every row of the class
                out.vanishing += n if opts.vanish_tol >= 0.0 else 0
                out.exploding += n if opts.explode_tol <= 0.0 else 0
        if not values:
            return out, [math.nan for _ in quantiles]
        allv, allc = np.concatenate(values), np.concatenate(counts)
        order = np.argsort(allv, kind="stable")
        return out, [inverted_cdf(allv[order], allc[order], q) for q in quantiles]


@dataclass
class BootSums:
    """Bootstrap replicate sums of one loss: num[b] = sum c_bi w_i l_i and den[b] = sum c_bi w_i,
    with the weights scaled by 2^-exp (merging brings both sides to the larger exp); for the
    studentized interval also q2 = sum c w^2 l^2, and weighted q1 = sum c w^2 l and
    q0 = sum c w^2 (unweighted they are num and den)."""

    exp: int = 0
    num: np.ndarray | None = None
    den: np.ndarray | None = None
    q2: np.ndarray | None = None
    q1: np.ndarray | None = None
    q0: np.ndarray | None = None

    def merge(self, other: BootSums) -> None:
        if other.num is None or other.den is None:
            return
        if self.num is None or self.den is None:
            self.exp = other.exp
            self.num, self.den, self.q2, self.q1, self.q0 = (
                None if a is None else a.copy()
                for a in (other.num, other.den, other.q2, other.q1, other.q0))
            return
        mine = [self.num, self.den, self.q2, self.q1, self.q0]
        theirs = [other.num, other.den, other.q2, other.q1, other.q0]
        powers = (1, 1, 2, 2, 2)
        if other.exp > self.exp:
            mine = [None if a is None else np.ldexp(a, k * (self.exp - other.exp))
                    for a, k in zip(mine, powers, strict=True)]
            self.exp = other.exp
        elif other.exp < self.exp:
            theirs = [None if a is None else np.ldexp(a, k * (other.exp - self.exp))
                      for a, k in zip(theirs, powers, strict=True)]
        self.num, self.den, self.q2, self.q1, self.q0 = (
            None if a is None or b is None else a + b
            for a, b in zip(mine, theirs, strict=True))

    def replicates(self) -> np.ndarray:
        """The loss of each replicate: num / den."""
        assert self.num is not None and self.den is not None
        with np.errstate(all="ignore"):
            return self.num / self.den

    def standard_errors(self, rows: int) -> np.ndarray | None:
        """Each replicate's linearised standard error, as the value's (None without q2)."""
        if self.q2 is None or self.num is None or self.den is None or rows < 2:
            return None
        q1 = self.num if self.q1 is None else self.q1
        q0 = self.den if self.q0 is None else self.q0
        with np.errstate(all="ignore"):
            mean = self.num / self.den
            spread = (self.q2 - 2.0 * mean * q1 + mean * mean * q0) / (self.den * self.den)
            return np.sqrt(np.maximum(spread, 0.0) * (rows / (rows - 1.0)))


@dataclass
class _RowTerms:
    """One chunk's per-row losses on their way to each loss's moments (standard error,
    interval) and bootstrap sums; losses that share per-row values (mse and rmse, two losses
    with the same clipping) share the work, by key."""

    weight: np.ndarray | None
    exp: int
    boot: bool
    skew: bool = True
    moments: dict[object, RowMoments] = field(default_factory=dict)
    vectors: list[np.ndarray] = field(default_factory=list)
    index: dict[object, int] = field(default_factory=dict)
    slots: list[tuple[LossState, int, int, tuple[int, ...]]] = field(default_factory=list)
    #: the studentized bootstrap: also the sums of w^2 l^2 (and w^2 l, w^2 weighted)
    student: bool = False

    def _vector(self, key: object, make: Callable[[], np.ndarray]) -> int:
        if key not in self.index:
            self.index[key] = len(self.vectors)
            self.vectors.append(make())
        return self.index[key]

    def add(self, st: LossState, key: object, values: Callable[[], np.ndarray] | np.ndarray,
            total: float | None = None, weight: np.ndarray | bool | None = True,
            squares: tuple[np.ndarray, float] | None = None, low: float | None = None) -> None:
        """Per-row losses ``values`` (or a function that makes them) of ``st`` under the
        chunk's weights (or ``weight``, with a key of its own in ``key``); ``low``: a lower
        bound of them, when known by construction."""
        if st.spread is None and st.boot is None:
            return
        w = self.weight if weight is True else weight
        assert not isinstance(w, bool)
        if key not in self.moments:
            v = values() if callable(values) else values
            self.moments[key] = RowMoments.of(v, w, total, self.exp,
                                              squares if w is None else None, self.skew, low)
            if self.boot:
                self._vector(("num", key), lambda: v if w is None else v * w)
        if st.spread is not None:
            st.spread.merge(self.moments[key])
        if self.boot and st.boot is not None:
            n = self.moments[key].n
            wkey = key if weight is not True else None
            di = self._vector(("den", wkey), lambda: np.ones(n) if w is None else w)
            extra: tuple[int, ...] = ()
            if self.student:
                num = self.vectors[self.index[("num", key)]]
                if w is None:
                    extra = (self._vector(("sq", key), lambda: num * num),)
                else:
                    extra = (self._vector(("sq", key), lambda: num * num),
                             self._vector(("w2l", key), lambda: num * w),
                             self._vector(("w2", wkey), lambda: w * w))
            self.slots.append((st, self.index[("num", key)], di, extra))

    def finish(self, rows: np.ndarray, key: np.uint64, samples: int) -> None:
        """The bootstrap sums of every vector, handed to their losses."""
        if not self.slots:
            return
        sums = bootstrap_sums(np.stack(self.vectors), rows, key, samples)
        for st, ni, di, extra in self.slots:
            assert st.boot is not None
            q = [sums[i] for i in extra] + [None] * (3 - len(extra))
            st.boot.merge(BootSums(self.exp, sums[ni], sums[di], *q))


@dataclass
class LossState:
    value: ExactSum = field(default_factory=ExactSum)  # sum w_i l_i
    grad: GradState = field(default_factory=GradState)
    clipped_inputs: int = 0
    #: sum w_i a_{y_i}, for losses reduced by their class-weighted total (cce class_weights)
    denom: ExactSum | None = None
    #: per-class sums, for class weights measured at the end of the pass (``balanced``)
    classes: ClassSplit | None = None
    #: moments of the per-row losses (standard error and interval), when asked for
    spread: RowMoments | None = None
    #: Poisson bootstrap replicate sums, with --ci bootstrap
    boot: BootSums | None = None
    #: the gradient w.r.t. a predicted variance (gaussian_nll)
    var_grad: GradState | None = None
    #: multilabel: sum w_i l_ki for each label k
    labels: list[ExactSum] | None = None

    def merge(self, other: LossState, weight_exp: int = 0) -> None:
        self.value.merge(other.value, weight_exp)
        self.grad.merge(other.grad, weight_exp)
        if self.var_grad is not None and other.var_grad is not None:
            self.var_grad.merge(other.var_grad, weight_exp)
        if other.labels is not None:
            if self.labels is None:
                self.labels = [ExactSum() for _ in other.labels]
            for mine, theirs in zip(self.labels, other.labels, strict=True):
                mine.merge(theirs, weight_exp)
        self.clipped_inputs += other.clipped_inputs
        if self.denom is not None and other.denom is not None:
            self.denom.merge(other.denom, weight_exp)
        if self.classes is not None and other.classes is not None:
            self.classes.merge(other.classes, weight_exp)
        if self.spread is not None and other.spread is not None:
            self.spread.merge(other.spread)
        if self.boot is not None and other.boot is not None:
            self.boot.merge(other.boot)


def _grad_form(spec: LossSpec) -> str | None:
    loss = spec.single
    return None if loss is None else loss.grad_form


def _shares_residual_hist(spec: LossSpec) -> bool:
    loss = spec.single
    return loss is not None and loss.abs_grad_of_abs_residual is not None


def _normalised_weights(spec: LossSpec) -> np.ndarray | None:
    """The class multipliers of a single loss reduced by sum(w a_y) with numeric class weights."""
    t = spec.terms[0]
    cw = t.loss.class_weighting
    if spec.is_combination or cw is None or not cw.normalise or t.balanced:
        return None
    value = t.params[cw.param]
    return None if value is None else cw.multipliers(value, 0)


def _per_label(loss: LossDef, batch: Batch, params: Params) -> Computed:
    """A binary loss on multilabel rows: the loss of every (label, row) at once, l_i the mean
    over the L labels (torch's BCEWithLogitsLoss on (n, L), mean reduction), g_i the L2 norm
    of the row's gradient d l_i / d pred_ki = g_ki / L."""
    assert batch.labels is not None
    c = loss.compute(Batch(batch.pred, batch.labels, None, batch.logits), params)
    width = batch.labels.shape[0]
    g = np.asarray(c.grads)
    norm = np.sqrt(np.einsum("ij,ij->j", g, g)) / width
    return Computed(c.values.mean(axis=0), norm, c.clipped, label_values=c.values)


def _compute(loss: LossDef, batch: Batch, params: Params) -> Computed:
    return loss.compute(batch, params) if batch.labels is None else _per_label(loss, batch,
                                                                              params)


def _evaluate_spec(spec: LossSpec, batch: Batch) -> Computed:
    if not spec.is_combination:
        t = spec.terms[0]
        if t.balanced:  # the unscaled loss; ClassSplit applies the class weights at the end
            cw = t.loss.class_weighting
            assert cw is not None
            return _compute(t.loss, batch, {**t.params, cw.param: cw.neutral})
        return _compute(t.loss, batch, t.params)
    values = np.zeros(batch.n)
    grads = np.zeros(batch.n)
    var_grads = label_values = None
    clipped = 0
    for t in spec.terms:
        c = _compute(t.loss, batch, t.params)
        values += t.coef * c.values
        grads += t.coef * c.grads
        if c.var_grads is not None:
            var_grads = t.coef * c.var_grads + (0.0 if var_grads is None else var_grads)
        if c.label_values is not None:
            label_values = t.coef * c.label_values + (
                0.0 if label_values is None else label_values)
        clipped = max(clipped, c.clipped)
    return Computed(values, grads, clipped, var_grads=var_grads, label_values=label_values)


def row_losses(spec: LossSpec, batch: Batch) -> np.ndarray:
    """The per-row losses of a batch, without the gradients that compare does not need: from
    the batch's shared residual for the losses whose value is e^2, |e| or Huber-shaped."""
    loss = spec.single
    if loss is not None and loss.value_form == "square":
        e = batch.residual()
        return e * e
    if loss is not None and loss.value_form == "abs":
        return batch.abs_residual()
    if loss is not None and loss.grad_form == "clipped" and loss.clip_of is not None:
        d, scale = loss.clip_of(spec.terms[0].params)
        a = batch.abs_residual()
        m = np.minimum(a, d)
        values = m * -0.5
        values += a
        values *= m
        if scale != 1.0:
            values /= scale
        return values
    return _evaluate_spec(spec, batch).values


#: Weights whose largest lies in [2**-WEIGHT_EXP_BAND, 1) are used as they are; others are
#: rescaled by a power of two near the largest (exact), so that sum w, sum w l and sum (w g)^2
#: neither overflow nor underflow: weighted means and norms do not depend on the weights' scale.
#: Scaled weights are at most 1, so w l is finite wherever l is (a weight of 2 on a loss of
#: 9e307 would otherwise read as inf).
WEIGHT_EXP_BAND = 64


def weight_exponent(w: np.ndarray) -> int:
    """0 for weights below 1 and not tiny, else the exponent of the largest: w * 2**-e < 1."""
    top = float(w.max()) if w.size else 0.0
    e = math.frexp(top)[1]
    return e if e > 0 or -e > WEIGHT_EXP_BAND else 0


def align_weight_exp(current: int | None, new: int) -> tuple[int, int]:
    """(common exponent, shift for the sums kept at ``current``) when weighted sums at exponent
    ``new`` join them: the larger exponent wins, so nothing overflows. None: no sums yet."""
    if current is None:
        return new, 0
    if new > current:
        return new, current - new
    return current, 0


@dataclass
class EvalState:
    """The whole mergeable state of one evaluation: rows, weights, per-loss and shared parts.

    The weighted sums (sum w, sum w l, sum (w g)^2) are of the weights times 2**-weight_exp
    (see :func:`weight_exponent`); every result is a ratio in which that factor cancels.
    """

    specs: Sequence[LossSpec]
    opts: GradientOptions = field(default_factory=GradientOptions)
    rows: int = 0
    weight_sum: ExactSum = field(default_factory=ExactSum)
    losses: list[LossState] = field(default_factory=list)
    residual_hist: LogHistogram | None = None
    weight_exp: int = 0
    #: accumulate the moments of the per-row losses (for standard errors and intervals)
    spread: bool = False
    #: with their third moments (Johnson's interval; the t interval does without)
    skew: bool = True
    #: Poisson bootstrap replicates (0: none) and their seed
    boot_samples: int = 0
    boot_seed: int = 0
    #: the gradient statistics too (False: the values alone, as recommend's candidates need)
    gradients: bool = True
    #: the report's figure accumulators (a losscli.figures.FigureState), when asked for
    figures: Any = None
    #: the replicates' own standard errors too (the studentized bootstrap)
    boot_student: bool = False

    def __post_init__(self) -> None:
        if not self.losses:
            self.losses = [LossState(
                grad=GradState(hist=None if _shares_residual_hist(s) else LogHistogram()),
                denom=None if _normalised_weights(s) is None else ExactSum(),
                classes=(ClassSplit(spread=self.spread, skew=self.skew)
                         if not s.is_combination and s.terms[0].balanced else None),
                spread=RowMoments() if self.spread else None,
                boot=BootSums() if self.boot_samples and not (
                    not s.is_combination and s.terms[0].balanced) else None,
                var_grad=(GradState(hist=LogHistogram())
                          if any(t.loss.uses_var for t in s.terms) else None))
                for s in self.specs]
        if self.residual_hist is None and self.gradients and any(
                _shares_residual_hist(s) for s in self.specs):
            self.residual_hist = LogHistogram()

    def empty(self) -> EvalState:
        return EvalState(self.specs, self.opts, spread=self.spread, skew=self.skew,
                         boot_samples=self.boot_samples, boot_seed=self.boot_seed,
                         gradients=self.gradients, boot_student=self.boot_student,
                         figures=None if self.figures is None else self.figures.empty())

    def update(self, batch: Batch, skip: Iterable[int] = (), rows: np.ndarray | None = None,
               stream: int = 0) -> None:
        """Add one chunk; losses whose index is in ``skip`` are left untouched. ``rows`` are
        the chunk's row numbers in the input (and ``stream`` the input's file), from which the
        bootstrap draws its replicate counts; required with bootstrap replicates."""
        n = batch.n
        if n == 0:
            return
        skipped = set(skip)
        w = batch.weight
        if w is not None:
            exp = weight_exponent(w)
            if self.rows and exp != self.weight_exp:
                # Rows of another weight scale are summed at their own and merged (an exact
                # rescaling), so that a chunk's sums do not depend on the chunks before it.
                part = self.empty()
                part.update(batch, skip, rows, stream)
                self.merge(part)
                return
            self.weight_exp = exp
            if exp:
                w = np.ldexp(w, -exp)
                batch = replace(batch, weight=w)
        self.rows += n
        self.weight_sum.add(float(n) if w is None else float(np.sum(w)))
        # the figures' signed residual histogram fills the |e| histogram too, from its keys
        shared = self.figures is not None and self.figures.update(batch, self.residual_hist)
        forms = [_grad_form(s) for s in self.specs]
        res = None
        if any(f is not None for f in forms):
            res = ResidualChunk.of(batch, signs=any(f == "sign" for f in forms),
                                   keep_squares=self.spread, gradients=self.gradients)
        if self.residual_hist is not None and not shared:
            self.residual_hist.update(batch.abs_residual(), None if res is None else res.abs_min)
        clipped: dict[tuple[float, float], ClippedChunk] = {}
        terms = _RowTerms(w, self.weight_exp, self.boot_samples > 0, self.skew,
                          student=self.boot_student)
        for i, (spec, st) in enumerate(zip(self.specs, self.losses, strict=True)):
            if i in skipped:
                continue
            form = forms[i]
            if form is not None and res is not None:
                self._update_from_residual(spec, st, form, res, batch, clipped, terms)
                continue
            c = _evaluate_spec(spec, batch)
            st.clipped_inputs += c.clipped
            if self.figures is not None:
                self.figures.update_loss(i, batch.target, c.values)
            if st.classes is not None:
                st.classes.update(c, batch, self.opts, self.weight_exp)
                continue
            if st.denom is not None:
                a = row_multipliers(_normalised_weights(spec), batch.target)  # type: ignore[arg-type]
                wa = a if w is None else a * w
                st.denom.add_array(wa)
                # reduced by sum(w a): the linearised terms are w a (l / a - L)
                if st.spread is not None or st.boot is not None:
                    terms.add(st, i, np.divide(c.values, a, out=np.zeros_like(c.values),
                                               where=a > 0), weight=wa)
            else:
                terms.add(st, i, c.values)
            st.value.add_array(c.values if w is None else c.values * w)
            if self.gradients:
                st.grad.update(c.grads, w, self.opts, c.abs_grads)
                if st.var_grad is not None and c.var_grads is not None:
                    st.var_grad.update(c.var_grads, w, self.opts)
            if c.label_values is not None:
                if st.labels is None:
                    st.labels = [ExactSum() for _ in c.label_values]
                for k, sums in enumerate(st.labels):
                    sums.add_array(c.label_values[k] if w is None else c.label_values[k] * w)
        if self.boot_samples:
            if rows is None:
                raise ValueError("bootstrap replicates need the chunk's row numbers")
            terms.finish(rows, stream_key(self.boot_seed, stream), self.boot_samples)

    def _update_from_residual(self, spec: LossSpec, st: LossState, form: str,
                              res: ResidualChunk, batch: Batch,
                              clipped: dict[tuple[float, float], ClippedChunk],
                              terms: _RowTerms) -> None:
        """Value and gradient of a loss that both follow from the shared residual summary;
        ``clipped`` holds the clipped residuals of this chunk already summarised, by (d, s), and
        ``terms`` takes the per-row losses, by the same keys."""
        loss, params, w = spec.terms[0].loss, spec.terms[0].params, batch.weight
        if form == "clipped":
            assert loss.clip_of is not None
            key = loss.clip_of(params)
            if key not in clipped:
                clipped[key] = ClippedChunk.of(*key, res, batch.residual(), w, self.gradients)
            st.value.add(clipped[key].value)
            if self.gradients:
                st.grad.update_linear(1.0, clipped[key], self.opts)
            chunk = clipped[key]
            terms.add(st, key, lambda: chunk.row_losses(key[1], res), chunk.value, low=0.0)
            return
        assert loss.value_form is not None
        total = res.value_sum(loss.value_form, w, batch.residual())
        st.value.add(total)
        if loss.value_form == "square":
            if res.squares is not None:
                terms.add(st, "square", res.squares, total, low=0.0)
        elif res.squares is not None:  # |e|^2 = e^2: its sum is known
            terms.add(st, "abs", res.abs_values, total, squares=(res.squares, res.sum_sq),
                      low=0.0)
        if not self.gradients:
            return
        if form == "linear":
            st.grad.update_linear(loss.grad_coef, res, self.opts)
        else:
            st.grad.update_sign(res, w, self.opts)

    def _common_exponent(self, exp: int) -> int:
        """The weight exponent for this state and rows of exponent ``exp``: the larger one; the
        sums so far are rescaled to it (the rows' weights are the caller's to rescale)."""
        common, shift = align_weight_exp(self.weight_exp if self.rows else None, exp)
        if shift:
            self.weight_sum.scale(shift)
            for st in self.losses:
                st.value.scale(shift)
                st.grad.sq_weighted.scale(2 * shift)
                if st.denom is not None:
                    st.denom.scale(shift)
                if st.classes is not None:
                    st.classes.scale(shift)
        self.weight_exp = common
        return common

    def merge(self, other: EvalState) -> None:
        shift = 0
        if other.rows:
            shift = other.weight_exp - self._common_exponent(other.weight_exp)
        self.rows += other.rows
        self.weight_sum.merge(other.weight_sum, shift)
        for a, b in zip(self.losses, other.losses, strict=True):
            a.merge(b, shift)
        if self.residual_hist is not None and other.residual_hist is not None:
            self.residual_hist.merge(other.residual_hist)
        if self.figures is not None and other.figures is not None:
            self.figures.merge(other.figures)
