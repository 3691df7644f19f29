"""Standard errors and confidence intervals of weighted means of per-row losses.

A reported loss is L = sum(w l) / sum(w). Its standard error by linearisation is
SE^2 = n/(n-1) sum(w_i^2 (l_i - L)^2) / (sum w)^2 (unweighted: ``scipy.stats.sem``), and the
intervals use the linearised per-row terms z_i = n w_i (l_i - L) / sum(w), whose mean is 0, whose
sample variance is n SE^2 and whose third central moment feeds Johnson's skewness correction.
Everything is computed from :class:`RowMoments`, mergeable like every other accumulator.
No SciPy at run time: the t quantile is computed here (Newton on the incomplete beta function).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import numpy as np

from losscli.errors import UsageError

CiMethod = Literal["johnson", "t", "bootstrap", "percentile", "none"]
CI_METHODS: tuple[CiMethod, ...] = ("johnson", "t", "bootstrap", "percentile", "none")
DEFAULT_CONFIDENCE = 0.95
#: Replicates by default: an endpoint's Monte Carlo error is then about 4% of the interval's
#: half-width at 95% (measured on normal residuals, at most 5%; reported as ``ci.mc_error``);
#: 200 left 14%.
DEFAULT_BOOTSTRAP_SAMPLES = 2000
#: The bootstrap needs this many rows: below it the Poisson replicates of a few rows take few
#: distinct values (3 rows: 25.6% of H0 datasets called significant), and no interval is given.
BOOTSTRAP_MIN_ROWS = 20
#: The largest --bootstrap-samples: the replicate sums are B floats per loss and per chunk.
MAX_BOOTSTRAP_SAMPLES = 100_000


def check_ci_options(method: str, confidence: float, samples: int,
                     where: Callable[[str], str] = lambda key: "", *, seed: int = 0) -> None:
    """Validate --ci, --confidence, --bootstrap-samples and --seed (UsageError, exit 2);
    ``where`` names the origin of a setting (e.g. ' (from pyproject.toml)'). A seed is a
    64-bit key of the replicate hash: outside [0, 2^64) it would alias another seed."""
    if method not in CI_METHODS:
        raise UsageError(f"--ci must be one of {', '.join(CI_METHODS)}, got '{method}'"
                         f"{where('ci')}")
    if not (0.0 < confidence < 1.0):
        raise UsageError(f"--confidence must be between 0 and 1 (e.g. 0.95), got "
                         f"{confidence:g}{where('confidence')}")
    if not (1 <= samples <= MAX_BOOTSTRAP_SAMPLES):
        raise UsageError(f"--bootstrap-samples must be between 1 and {MAX_BOOTSTRAP_SAMPLES:,}, "
                         f"got {samples}{where('bootstrap_samples')}")
    if not (0 <= seed < 1 << 64):
        raise UsageError(f"--seed must be an integer from 0 to 2^64 - 1, got {seed}"
                         f"{where('seed')}")


# --- quantiles of the normal and t distributions ------------------------------------------------


def norm_ppf(p: float) -> float:
    """The standard normal quantile: Acklam's rational approximation (1.15e-9 relative) and one
    Halley step on ``math.erfc``, which leaves it at a few ulps."""
    if not 0.0 < p < 1.0:
        return -math.inf if p <= 0.0 else math.inf
    if p > 0.5:  # the lower tail keeps the precision of a small 1 - p
        return -norm_ppf(1.0 - p)
    a = (-3.969683028665376e01, 2.209460984245205e02, -2.759285104469687e02,
         1.383577518672690e02, -3.066479806614716e01, 2.506628277459239e00)
    b = (-5.447609879822406e01, 1.615858368580409e02, -1.556989798598866e02,
         6.680131188771972e01, -1.328068155288572e01)
    c = (-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e00,
         -2.549732539343734e00, 4.374664141464968e00, 2.938163982698783e00)
    d = (7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e00,
         3.754408661907416e00)
    lo = 0.02425
    if p < lo or p > 1.0 - lo:
        q = math.sqrt(-2.0 * math.log(p if p < lo else 1.0 - p))
        x = ((((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5])
             / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1.0))
        if p > 1.0 - lo:
            x = -x
    else:
        q = p - 0.5
        r = q * q
        x = ((((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q
             / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1.0))
    e = 0.5 * math.erfc(-x / math.sqrt(2.0)) - p
    u = e * math.sqrt(2.0 * math.pi) * math.exp(0.5 * x * x)
    return x - u / (1.0 + 0.5 * x * u)


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 100_000):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-15:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    """The regularised incomplete beta function I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    lbt = (math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
           + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(lbt) * _betacf(a, b, x) / a
    return 1.0 - math.exp(lbt) * _betacf(b, a, 1.0 - x) / b


def t_sf(t: float, df: float) -> float:
    """P(T > t) for Student's t with ``df`` degrees of freedom (t >= 0; df = inf: normal)."""
    if df == math.inf:
        return 0.5 * math.erfc(t / math.sqrt(2.0))
    return 0.5 * _betainc(0.5 * df, 0.5, df / (df + t * t))


#: from this df on the Cornish-Fisher expansion to 1 / df^4 alone is within 1e-14 of the t
#: quantile at levels up to 1 - 1e-9 (measured against scipy: 6.5e-15 at df = 3000, 5e-14 at
#: 2000), closer than Newton steps on the incomplete beta function there (up to 9e-10)
CORNISH_FISHER_DF = 3000.0


@lru_cache(maxsize=256)
def t_ppf(p: float, df: float) -> float:
    """The quantile of Student's t for an upper probability p in (0.5, 1): exact for df = 1 and
    2; the Cornish-Fisher expansion alone from df = CORNISH_FISHER_DF on; below it, Newton steps
    on the incomplete beta function from it. Relative error against scipy.stats.t.ppf at
    confidence levels 2p - 1 from 0.5 to 1 - 1e-9 (measured): below 1e-13 for df = 1, 2 and
    from CORNISH_FISHER_DF on; below 2e-13 for df < 100 and 1e-11 up to CORNISH_FISHER_DF (the
    incomplete beta function's accuracy, which falls as df grows)."""
    if not 0.5 <= p < 1.0:
        raise ValueError("t_ppf takes p in [0.5, 1)")
    if p == 0.5:
        return 0.0
    z = norm_ppf(p)
    z2 = z * z
    g1 = (z2 + 1.0) * z / 4.0
    g2 = ((5.0 * z2 + 16.0) * z2 + 3.0) * z / 96.0
    g3 = (((3.0 * z2 + 19.0) * z2 + 17.0) * z2 - 15.0) * z / 384.0
    g4 = ((((79.0 * z2 + 776.0) * z2 + 1482.0) * z2 - 1920.0) * z2 - 945.0) * z / 92160.0
    t = z + g1 / df + g2 / df**2 + g3 / df**3 + g4 / df**4
    if df >= CORNISH_FISHER_DF:
        return t
    if df == 1.0:  # cot(pi (1 - p)): 1 - p is exact, p - 0.5 loses the tail's digits
        return 1.0 / math.tan(math.pi * (1.0 - p))
    if df == 2.0:  # q sqrt(2 / (1 - q^2)), with 1 - q = 2 (1 - p) exact
        q = 2.0 * p - 1.0
        return q * math.sqrt(2.0 / (2.0 * (1.0 - p) * (1.0 + q)))
    if not (t > 0.0 and math.isfinite(t)):
        t = 1.0
    tail = 1.0 - p
    log_c = (math.lgamma(0.5 * (df + 1.0)) - math.lgamma(0.5 * df)
             - 0.5 * math.log(df * math.pi))
    last = math.inf
    for _ in range(100):
        density = math.exp(log_c - 0.5 * (df + 1.0) * math.log1p(t * t / df))
        if density == 0.0:  # so far out that the density underflows (df near 0)
            return _t_ppf_bisect(tail, df)
        step = (t_sf(t, df) - tail) / density
        t_new = t + step
        if t_new <= 0.0:
            t_new = 0.5 * t
        if abs(t_new - t) <= 1e-14 * t_new:
            return t_new
        if abs(step) >= last and abs(step) <= 1e-9 * t:
            # steps no longer shrink near the root: t_sf's rounding (large df) is reached (far
            # from it, in the heavy tails of small df, steps grow before they converge)
            return t
        last = abs(step)
        t = t_new
    return t


def _t_ppf_bisect(tail: float, df: float) -> float:
    """The t quantile of upper tail ``tail`` by bisection on log2 t, for df so small that it
    lies where the density underflows (df = 0.0084: 6.1e152); inf beyond the floats."""
    lo, hi = 0.0, 1023.99
    if t_sf(2.0**hi, df) > tail:
        return math.inf
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        if t_sf(2.0**mid, df) > tail:
            lo = mid
        else:
            hi = mid
    return 2.0 ** (0.5 * (lo + hi))


# --- intervals ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Interval:
    """A confidence interval of one reported number."""

    low: float
    high: float
    level: float
    method: str
    samples: int | None = None
    seed: int | None = None
    #: Kish's effective sample size of the weighted mean (weighted rows only)
    effective_n: float | None = None
    #: the t quantile's degrees of freedom: those of the weighted variance estimate,
    #: Satterthwaite's (sum w^2)^2 / sum w^4 - 1 (weighted rows only; n - 1 unweighted)
    df: float | None = None
    #: why the interval is missing or degenerate, when it is
    note: str | None = None
    #: the bootstrap endpoints' Monte Carlo error (in the value's units)
    mc_error: float | None = None

    def to_dict(self) -> dict[str, float | int | str | None]:
        d: dict[str, float | int | str | None] = {"low": self.low, "high": self.high,
                                                  "level": self.level, "method": self.method}
        if self.samples is not None:
            d["samples"] = self.samples
            d["seed"] = self.seed
        for key in ("effective_n", "df", "mc_error", "note"):  # stated only when there is one
            if getattr(self, key) is not None:
                d[key] = getattr(self, key)
        return d


def estimator_skewness(s2: float, m3: float, n: int) -> float:
    """The skewness of a mean of n linearised terms with sample variance s2 and third central
    moment m3: gamma / sqrt(n), gamma = m3 / s^3 (with weights the terms absorb them, so this is
    sum w^3 (l - L)^3 / (sum w^2 (l - L)^2)^1.5). 0 when it is not a finite number."""
    if not (s2 > 0.0 and math.isfinite(m3)) or n < 2:
        return 0.0
    k = m3 / s2 / math.sqrt(s2) / math.sqrt(n)
    return k if math.isfinite(k) else 0.0


def hall_transform(t: float, k: float) -> float:
    """Hall's (1992) cubic transform of a studentized mean t whose estimator has skewness k:
    g(t) = t + k t^2 / 3 + k^2 t^3 / 27 + k / 6, increasing in t (g' = (1 + k t / 3)^2),
    Johnson's (1978) correction plus the cubic term that keeps it monotone."""
    return t + k * t * t / 3.0 + k * k * t * t * t / 27.0 + k / 6.0


def hall_inverse(c: float, k: float) -> float:
    """The t with g(t) = c, in closed form: g(t) = ((1 + k t / 3)^3 - 1) / k + k / 6, so
    t = (r - 1) / (k / 3) with r = cbrt(1 + k (c - k / 6)), written as
    3 (c - k / 6) / (r^2 + r + 1), which does not cancel as k -> 0."""
    u = c - k / 6.0
    y = 1.0 + k * u
    r = math.copysign(abs(y) ** (1.0 / 3.0), y)
    return 3.0 * u / (r * r + r + 1.0)


def skew_bounds(mean: float, se: float, k: float, crit: float) -> tuple[float, float]:
    """The interval {mu : |g((mean - mu) / se)| <= crit} of Hall's transform g (k = 0: the
    symmetric mean +- crit se). On the side the skew points to it reaches at least as far as
    the symmetric interval (Hall's transform does once |k| is below about 1.7, which the
    sample skewness keeps it: the bound only guards the extreme)."""
    if k == 0.0 or se == 0.0:
        return mean - crit * se, mean + crit * se
    low = mean - se * hall_inverse(crit, k)
    high = mean - se * hall_inverse(-crit, k)
    if k > 0.0:
        high = max(high, mean + crit * se)
    else:
        low = min(low, mean - crit * se)
    return low, high


def skew_statistic(mean: float, se: float, k: float) -> float:
    """The signed statistic s of the hypothesis mu = 0 under :func:`skew_bounds`: the interval
    with critical value c lies above 0 exactly when s > c and below it exactly when s < -c,
    so the two-sided p-value of the interval's own method is P(|T| >= |s|)."""
    if se == 0.0 or not math.isfinite(se):
        return 0.0 if mean == 0.0 else math.copysign(math.inf, mean)
    t0 = mean / se
    s = hall_transform(t0, k)
    if k > 0.0 and s < 0.0:  # the upper end is also the symmetric one's
        s = max(s, t0)
    elif k < 0.0 and s > 0.0:
        s = min(s, t0)
    return s


def mean_interval(mean: float, s2: float, m3: float, n: int, level: float,
                  method: str, df: float | None = None,
                  crit: float | None = None) -> tuple[float, float]:
    """The interval of a mean from the sample variance s2 (ddof 1) and third central moment m3
    of its n (linearised) terms: ``t`` is mean +- t(df) s / sqrt(n); ``johnson`` inverts Hall's
    monotone cubic transform of the studentized mean (:func:`skew_bounds`). ``df`` defaults
    to n - 1 (with weights the caller gives the variance estimate's, :func:`variance_df`);
    ``crit`` replaces the t quantile (a family's simultaneous critical value)."""
    if n < 2 or not (s2 >= 0.0) or not math.isfinite(mean):
        return math.nan, math.nan
    df = n - 1.0 if df is None else df
    if not df > 0.0:
        return math.nan, math.nan
    c = t_ppf(0.5 + 0.5 * level, df) if crit is None else crit
    se = math.sqrt(s2 / n)
    k = estimator_skewness(s2, m3, n) if method == "johnson" else 0.0
    return skew_bounds(mean, se, k, c)


def interval_note(rows: int, n_eff: float | None, s2: float) -> str | None:
    """Why an interval is missing or degenerate (None when it is not): fewer than 2 rows,
    fewer than 2 effective rows under weights, or rows whose losses are all equal."""
    if rows < 2:
        return f"{rows} row(s): an interval needs 2 or more"
    if n_eff is not None and n_eff < 2.0:
        return (f"Kish's effective n is {n_eff:.3g} (a few rows carry the weight): an interval "
                "needs 2 or more")
    if s2 == 0.0:
        return "every row's loss is the same: the interval has zero width"
    return None


#: Below this many rows the tail index is not estimated (Hill's estimate needs a tail).
TAIL_MIN_ROWS = 1000


def tail_order(n: int) -> int:
    """The k of Hill's estimate from n values: sqrt(n), 10 to 1,000."""
    return min(1000, max(10, math.isqrt(n)))


def hill_tail_index(values: np.ndarray, counts: np.ndarray,
                    want: int | None = None) -> tuple[float, int]:
    """Hill's (1975) estimate of the tail index alpha (P(X > x) ~ x^-alpha) from the largest
    k (``want``, by default sqrt(n), 10 to 1,000) of values given as sorted (value, count)
    buckets, and k. 1 / alpha = mean over the k largest of log(X_i / X_(k+1)). NaN when there
    is no tail."""
    n = int(counts.sum())
    if n < TAIL_MIN_ROWS:
        return math.nan, 0
    if want is None:
        want = tail_order(n)
    above = np.cumsum(counts[::-1])  # values at or above each bucket, from the top
    b = int(np.searchsorted(above, want + 1))  # the bucket holding X_(k+1), from the top
    if b >= counts.size:
        return math.nan, 0
    cut = values.size - 1 - b
    k = int(above[b - 1]) if b > 0 else 0
    threshold = values[cut]
    if k < 2 or not threshold > 0.0:
        return math.nan, 0
    top, c = values[cut + 1:], counts[cut + 1:]
    xi = float(np.sum(c * np.log(top / threshold))) / k
    return (1.0 / xi if xi > 0.0 else math.inf), k


def grouped_hill_tail_index(counts: np.ndarray, width: float,
                            want: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Hill's estimate for values known only by their log bucket, for several samples at once:
    ``counts`` (buckets x samples) in buckets of equal log width ``width`` (ln of the ratio of
    a bucket's ends), highest bucket first, the last bucket the values below the range (never
    a threshold). The threshold u is the lower end of the highest bucket with at least ``want``
    values at or above it (k of them); above u a Pareto tail of index alpha puts each value
    J buckets above u's with P(J >= j) = exp(-alpha width j), whose maximum-likelihood estimate
    from the mean m of J is alpha = ln(1 + 1 / m) / width (Hill's 1 / alpha = mean log(X / u)
    for bucketed data). Returns (alpha, k); NaN and 0 where the threshold would be the last
    bucket; inf where all k values are in the threshold's bucket."""
    buckets = counts.shape[0]
    cum = np.cumsum(counts, axis=0)
    j = np.argmax(cum >= want[None, :], axis=0)
    found = (cum[-1] >= want) & (j < buckets - 1)
    k = np.where(found, cum[j, np.arange(counts.shape[1])], 0)
    above = np.maximum(j[None, :] - np.arange(buckets)[:, None], 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        m = np.sum(counts * above, axis=0) / k
        alpha = np.where(m > 0, np.log1p(1.0 / m) / width, math.inf)
    return np.where(found, alpha, math.nan), k


def heavy_tail(alpha: float, k: int) -> bool:
    """Whether a tail index alpha estimated from k order statistics is below 2 (infinite
    variance) beyond its sampling error: alpha (1 + 2 / sqrt(k)) < 2."""
    return k > 0 and alpha * (1.0 + 2.0 / math.sqrt(k)) < 2.0


#: Draws of the multivariate t behind a family's critical value: the Monte Carlo error of an
#: adjusted p-value near 0.05 is sqrt(0.05 * 0.95 / 20000) = 0.0015.
FAMILY_DRAWS = 20_000
#: Two losses whose per-row differences correlate this closely are one test (rmse and mse,
#: quantile at 0.5 and mae, any loss and a multiple of it).
SAME_TEST_CORRELATION = 1.0 - 1e-9


@dataclass(frozen=True)
class Family:
    """Simultaneous inference over a family of tests whose statistics are jointly t with
    correlation matrix ``corr`` (single-step max-T): the critical value c of max_k |T_k| and
    each test's adjusted p-value P(max_k |T_k| >= |s|), consistent with each other exactly:
    p(s) < alpha if and only if |s| > critical(alpha).

    Tests that correlate at SAME_TEST_CORRELATION count once. One distinct test: the t
    distribution itself. Several: the smaller of the Monte Carlo max-T (multivariate t with a
    shared chi-square, ``draws`` seeded draws, p = (1 + #{M >= s}) / (N + 1)) and Bonferroni
    over the distinct tests, which is sharper in the far tail the draws cannot reach; never
    below a single test's p.
    """

    distinct: int
    df: float
    #: representative (distinct) test of each test
    groups: tuple[int, ...]
    maxima: np.ndarray | None = None  # sorted max |T| over the draws
    #: the maxima are bootstrap replicates: p = #{M >= |s|} / B, at least 1 / B
    replicates: bool = False

    @classmethod
    def of(cls, corr: np.ndarray, df: float, draws: int = FAMILY_DRAWS,
           seed: int = 20_260_512) -> Family:
        m = corr.shape[0]
        groups: list[int] = []
        reps: list[int] = []
        for i in range(m):
            same = next((r for r in reps if abs(corr[i, r]) >= SAME_TEST_CORRELATION), None)
            if same is None:
                reps.append(i)
                same = i
            groups.append(same)
        if len(reps) == 1 or draws == 0:
            return cls(len(reps), df, tuple(groups))
        sub = corr[np.ix_(reps, reps)]
        try:  # Cholesky, continuous in the correlation (an eigenbasis can turn)
            root = np.linalg.cholesky(sub)
        except np.linalg.LinAlgError:  # nearly collinear tests
            vals, vecs = np.linalg.eigh(sub)
            root = vecs * np.sqrt(np.clip(vals, 0.0, None))
        rng = np.random.default_rng(seed)
        z = rng.standard_normal((draws, len(reps))) @ root.T
        if math.isfinite(df) and df < 1e6:
            z /= np.sqrt(rng.chisquare(df, draws) / df)[:, None]
        return cls(len(reps), df, tuple(groups), np.sort(np.max(np.abs(z), axis=1)))

    @classmethod
    def of_replicates(cls, u: np.ndarray, corr: np.ndarray) -> Family:
        """A family from bootstrap replicates u (B x tests) of the studentized statistics
        (replicate - estimate) / se: its own maxima, no normal theory."""
        groups = cls.of(corr, math.inf, draws=0).groups
        reps = sorted(set(groups))
        return cls(len(reps), math.inf, groups,
                   np.sort(np.max(np.abs(u[:, reps]), axis=1)), replicates=True)

    def single_p(self, s: float) -> float:
        """The two-sided p-value of one test: 2 P(T_df >= |s|)."""
        a = abs(s)
        if a == math.inf:
            return 0.0
        return min(1.0, 2.0 * t_sf(a, self.df))

    def p(self, s: float) -> float:
        """The family-adjusted two-sided p-value of a test whose statistic is s."""
        if self.replicates:
            assert self.maxima is not None
            return max(self.above(s), 1) / self.maxima.size
        single = self.single_p(s)
        if self.maxima is None:
            return single
        n = self.maxima.size
        return max(single, min((1 + self.above(s)) / (n + 1), self.distinct * single))

    def above(self, s: float) -> int:
        """How many draws (or replicates) of max |T| reach |s|."""
        assert self.maxima is not None
        return self.maxima.size - int(np.searchsorted(self.maxima, abs(s), side="left"))

    def critical(self, alpha: float) -> float:
        """The c with p(s) < alpha exactly when |s| > c (inf: no statistic is enough, as with
        fewer than 2 / alpha bootstrap replicates)."""
        if self.replicates:
            assert self.maxima is not None
            n = self.maxima.size
            k0 = math.ceil(alpha * n) - 1  # max(#, 1) < alpha B allows this many
            return float(self.maxima[n - 1 - k0]) if k0 >= 1 else math.inf
        single = t_ppf(1.0 - 0.5 * alpha, self.df)
        if self.maxima is None:
            return single
        n = self.maxima.size
        k0 = math.ceil(alpha * (n + 1) - 1) - 1  # the most draws >= s that p < alpha allows
        mc = float(self.maxima[n - 1 - k0]) if k0 >= 0 else math.inf
        bonferroni = t_ppf(1.0 - 0.5 * alpha / self.distinct, self.df)
        return max(single, min(mc, bonferroni))


@dataclass(frozen=True)
class StepDown:
    """The step-down max-T procedure (Westfall and Young 1993; Romano and Wolf 2005) over a
    family: per test its critical value, its adjusted p-value and whether that p-value is a
    bound (no bootstrap replicate reached it).

    The distinct tests are taken in decreasing |statistic|. The j-th is rejected when it and
    every one before it exceeds the max-T critical value of the tests not yet rejected; its
    adjusted p-value is the largest of the max-T p-values met so far, so p < alpha exactly
    when the test is rejected. A rejected test's critical value is its step's, the others'
    that of the step where the procedure stopped: the interval built with it excludes 0
    exactly when the test is rejected. Family-wise error is alpha (closed testing over the
    max-T tests of the subsets), as the single-step procedure's, with more power: once the
    strongest test is rejected the next is judged among fewer.
    """

    critical: tuple[float, ...]
    p: tuple[float, ...]
    below: tuple[bool, ...]

    @classmethod
    def of(cls, statistics: Sequence[float], groups: Sequence[int],
           family_of: Callable[[list[int]], Family], alpha: float) -> StepDown:
        """``groups`` maps each test to its representative (:attr:`Family.groups`);
        ``family_of`` gives the max-T family of a list of representatives."""
        m = len(statistics)
        reps = sorted(set(groups), key=lambda r: (-abs(statistics[r]), r))
        crit, padj, floor = [math.nan] * m, [math.nan] * m, [False] * m
        running, bound, stop = 0.0, False, math.nan
        for j, r in enumerate(reps):
            fam = family_of(sorted(reps[j:]))
            p = fam.p(statistics[r])
            if p >= running:
                running = p
                bound = fam.replicates and fam.above(statistics[r]) == 0
            if running < alpha:
                crit[r] = fam.critical(alpha)
            else:
                if math.isnan(stop):
                    stop = fam.critical(alpha)
                crit[r] = stop
            padj[r], floor[r] = running, bound
        for i, r in enumerate(groups):
            crit[i], padj[i], floor[i] = crit[r], padj[r], floor[r]
        return cls(tuple(crit), tuple(padj), tuple(floor))


def sqrt_interval(low: float, high: float) -> tuple[float, float]:
    """An interval of mse mapped to rmse (sqrt is increasing; a negative end becomes 0)."""
    return math.sqrt(max(low, 0.0)), math.sqrt(max(high, 0.0))


# --- the Poisson bootstrap ------------------------------------------------------------------------

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_ROW_STEP = np.uint64(0xD1B54A32D192ED03)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
#: Rows per block of replicate counts: B x 4096 bytes at a time, whatever the chunk size.
BOOTSTRAP_BLOCK_ROWS = 4096


def _mix(z: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser, in place on uint64 (a bijection with good avalanche)."""
    z ^= z >> np.uint64(30)
    z *= _MIX1
    z ^= z >> np.uint64(27)
    z *= _MIX2
    z ^= z >> np.uint64(31)
    return z


def _poisson1_thresholds() -> np.ndarray:
    """floor(2^53 P(K <= k)) for K ~ Poisson(1), k = 0, 1, ... until it reaches 2^53."""
    out, cdf, p, k = [], 0.0, math.exp(-1.0), 0
    while True:
        cdf += p
        t = min(int(math.ldexp(cdf, 53)), 1 << 53)
        if t >= 1 << 53:
            break
        out.append(t)
        k += 1
        p /= k
    return np.array(out, dtype=np.uint64)


POISSON1_THRESHOLDS = _poisson1_thresholds()


def stream_key(seed: int, stream: int = 0) -> np.uint64:
    """The hash key of a seed and an input stream (a file of a directory; 0 for one file)."""
    z = np.array([(seed * 0x9E3779B97F4A7C15 + stream * 0xC2B2AE3D27D4EB4F) % (1 << 64)],
                 dtype=np.uint64)
    return np.uint64(_mix(z)[0])


def replicate_counts(key: np.uint64, rows: np.ndarray, samples: int) -> np.ndarray:
    """The (samples, len(rows)) Poisson(1) bootstrap counts of these source rows: a hash of
    (key, row, replicate), so any chunking, thread or worker draws the same counts."""
    r = rows.astype(np.uint64, copy=False)
    with np.errstate(over="ignore"):
        z = (np.arange(1, samples + 1, dtype=np.uint64) * _GOLDEN + key)[:, None] + r * _ROW_STEP
    u = _mix(z) >> np.uint64(11)  # uniform on 0 .. 2^53 - 1
    t = POISSON1_THRESHOLDS
    counts = (u >= t[0]).view(np.uint8)
    for k in range(1, 5):
        counts += u >= t[k]
    tail = u >= t[4]  # K >= 5: about 0.37% of the draws
    if tail.any():
        counts[tail] = np.searchsorted(t, u[tail], side="right").astype(np.uint8)
    return counts


def bootstrap_sums(vectors: np.ndarray, rows: np.ndarray, key: np.uint64,
                   samples: int) -> np.ndarray:
    """(len(vectors), samples): sum_i c_bi v_i for each vector v (rows of ``vectors``) and each
    replicate b, with c the replicate counts of ``rows``; blocks of rows bound the memory."""
    out = np.zeros((vectors.shape[0], samples))
    n = rows.shape[0]
    for lo in range(0, n, BOOTSTRAP_BLOCK_ROWS):
        hi = min(n, lo + BOOTSTRAP_BLOCK_ROWS)
        c = replicate_counts(key, rows[lo:hi], samples)
        # einsum's own loop (no BLAS): sum over the block's rows of counts x values
        out += np.einsum("bi,li->lb", c, vectors[:, lo:hi])
    return out


def studentized_interval(value: float, se: float, replicates: np.ndarray,
                         replicate_se: np.ndarray | None,
                         level: float) -> tuple[float, float, float]:
    """The bootstrap-t interval [L - q_hi SE, L - q_lo SE] of the quantiles q of the
    studentized replicates (L_b - L) / SE_b, and the endpoints' Monte Carlo error: half the
    spread of the order statistics one binomial standard error either side, times SE."""
    if replicate_se is None:
        return math.nan, math.nan, math.nan
    with np.errstate(all="ignore"):
        t = (replicates - value) / replicate_se
    t = np.sort(t[np.isfinite(t)])
    b = t.size
    if b < 2 or not se >= 0.0:
        return math.nan, math.nan, math.nan
    a = 0.5 - 0.5 * level
    q_lo, q_hi = np.quantile(t, [a, 1.0 - a])
    d = math.sqrt(b * a * (1.0 - a))
    errs = []
    for p in (a, 1.0 - a):
        r = p * (b - 1)
        lo, hi = int(max(0, math.floor(r - d))), int(min(b - 1, math.ceil(r + d)))
        errs.append(0.5 * (t[hi] - t[lo]) * se)
    return value - float(q_hi) * se, value - float(q_lo) * se, float(max(errs))


def percentile_interval(replicates: np.ndarray, level: float) -> tuple[float, float]:
    """The percentile bootstrap interval: the (1 -+ level)/2 quantiles of the replicates."""
    finite = replicates[np.isfinite(replicates)]
    if finite.size == 0:
        return math.nan, math.nan
    low, high = np.quantile(finite, [0.5 - 0.5 * level, 0.5 + 0.5 * level])
    return float(low), float(high)
