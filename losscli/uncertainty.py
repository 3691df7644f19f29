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
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import numpy as np

from losscli.errors import UsageError

CiMethod = Literal["johnson", "t", "bootstrap", "none"]
CI_METHODS: tuple[CiMethod, ...] = ("johnson", "t", "bootstrap", "none")
DEFAULT_CONFIDENCE = 0.95
DEFAULT_BOOTSTRAP_SAMPLES = 200
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
    """P(T > t) for Student's t with ``df`` degrees of freedom (t >= 0)."""
    return 0.5 * _betainc(0.5 * df, 0.5, df / (df + t * t))


@lru_cache(maxsize=256)
def t_ppf(p: float, df: float) -> float:
    """The quantile of Student's t for an upper probability p in (0.5, 1): Newton steps on the
    incomplete beta function from the Cornish-Fisher expansion, which alone is used from
    df = 1e5 on (its error there is below 1e-13)."""
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
    if df >= 1e5:
        return t
    if df == 1.0:
        return math.tan(math.pi * (p - 0.5))
    if df == 2.0:
        q = 2.0 * p - 1.0
        return q * math.sqrt(2.0 / (1.0 - q * q))
    if not (t > 0.0 and math.isfinite(t)):
        t = 1.0
    tail = 1.0 - p
    log_c = (math.lgamma(0.5 * (df + 1.0)) - math.lgamma(0.5 * df)
             - 0.5 * math.log(df * math.pi))
    last = math.inf
    for _ in range(100):
        density = math.exp(log_c - 0.5 * (df + 1.0) * math.log1p(t * t / df))
        step = (t_sf(t, df) - tail) / density
        t_new = t + step
        if t_new <= 0.0:
            t_new = 0.5 * t
        if abs(t_new - t) <= 1e-14 * t_new:
            return t_new
        if abs(step) >= last:  # steps no longer shrink: t_sf's rounding (large df) is reached
            return t
        last = abs(step)
        t = t_new
    return t


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

    def to_dict(self) -> dict[str, float | int | str | None]:
        d: dict[str, float | int | str | None] = {"low": self.low, "high": self.high,
                                                  "level": self.level, "method": self.method}
        if self.samples is not None:
            d["samples"] = self.samples
            d["seed"] = self.seed
        return d


def mean_interval(mean: float, s2: float, m3: float, n: int, level: float,
                  method: str) -> tuple[float, float]:
    """The interval of a mean from the sample variance s2 (ddof 1) and third central moment m3
    of its n (linearised) terms: ``t`` is mean +- t(n-1) s / sqrt(n); ``johnson`` inverts
    Johnson's (1978) statistic t1 = [D + m3/(6 s^2 n) + m3/(3 s^4) D^2] / (s / sqrt(n)),
    D = mean - mu, for t1 = +-t(n-1)."""
    if n < 2 or not (s2 >= 0.0) or not math.isfinite(mean):
        return math.nan, math.nan
    t = t_ppf(0.5 + 0.5 * level, n - 1)
    h = math.sqrt(s2 / n)
    if method == "t" or s2 == 0.0 or not math.isfinite(m3):
        return mean - t * h, mean + t * h
    # m3 / s2 / s2, not m3 / s2^2: s2^2 underflows to 0 for s2 below ~1e-162 (tiny weights or
    # losses); a skew term that is not a finite number leaves the t interval.
    a = m3 / s2 / (3.0 * s2)
    b = m3 / (6.0 * s2 * n)
    if not (math.isfinite(a) and math.isfinite(b)):
        return mean - t * h, mean + t * h

    def d_at(c: float) -> float:
        """The root D of a D^2 + D + b = c h on the branch through D = c h - b (a -> 0)."""
        k = c * h - b
        disc = 1.0 + 4.0 * a * k
        if disc <= 0.0:  # t1 never reaches c: the turning point of the parabola
            return -0.5 / a
        return 2.0 * k / (1.0 + math.sqrt(disc))

    return mean - d_at(t), mean - d_at(-t)


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


def percentile_interval(replicates: np.ndarray, level: float) -> tuple[float, float]:
    """The percentile bootstrap interval: the (1 -+ level)/2 quantiles of the replicates."""
    finite = replicates[np.isfinite(replicates)]
    if finite.size == 0:
        return math.nan, math.nan
    low, high = np.quantile(finite, [0.5 - 0.5 * level, 0.5 + 0.5 * level])
    return float(low), float(high)
