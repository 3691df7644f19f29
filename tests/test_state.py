"""Accumulators against exact references, and the merge laws (identity, commutativity,
associativity) of ExactSum, Moments, LogHistogram and the engine's whole EvalState."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from conftest import inverted_cdf, rel_close
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from losscli.losses import Batch
from losscli.spec import parse_spec
from losscli.state import HIST_ALPHA, EvalState, ExactSum, GradientOptions, LogHistogram, Moments

SETTINGS = settings(max_examples=40, deadline=None)

# --- ExactSum ------------------------------------------------------------------------------------


def exact_sum(values: list[float]) -> ExactSum:
    s = ExactSum()
    for v in values:
        s.add(v)
    return s


ADVERSARIAL: list[list[float]] = [
    [1.0, 1e100, 1.0, -1e100],
    [1e16, 1.0, -1e16, 1.0, 1e-16],
    [0.1] * 10 + [-1.0],
    [1.0, 1e-16, 1e-16, 1e-16, 1e-16, -1.0],
    [2.0**53, 1.0, -(2.0**53)],
    [1e308, -1e308, 1e-308, 5e-324],
    [1e300, 1.0, -1e300, 1e-300, 3.0, -1e200, 1e200],
    [0.0, -0.0],
    # a tie at the last partial that only the lower partials break (round-half-even trap)
    [1.0, 2.0**-53, 2.0**-106],
    [2.0**-106, -1.0, -(2.0**-53)],
    [1e16, 1.0, 2.0**-40, -1e16 + 2.0],
]


@pytest.mark.parametrize("values", ADVERSARIAL)
def test_exact_sum_matches_fsum_adversarial(values: list[float]) -> None:
    assert exact_sum(values).value == math.fsum(values)


def test_exact_sum_matches_fsum_on_cancelling_random_data(rng: np.random.Generator) -> None:
    mags = 10.0 ** rng.uniform(-200, 200, 3000)
    values = np.concatenate([mags, -mags[:2000] * (1 + 1e-15), rng.normal(size=500)])
    rng.shuffle(values)
    data = values.tolist()
    assert exact_sum(data).value == math.fsum(data)
    assert exact_sum(data).value != sum(data)  # the data really is adversarial


finite = st.floats(min_value=-1e300, max_value=1e300, allow_nan=False, allow_infinity=False)
float_lists = st.lists(finite, max_size=40)


def groupings(make: Callable[[Any], Any], a: Any, b: Any, c: Any) -> tuple[Any, Any, Any, Any]:
    """a+b, b+a, (a+b)+c and a+(b+c), each built with ``merge`` from states made by ``make``:
    the operands of the commutativity and associativity laws."""
    ab, ba = make(a), make(b)
    ab.merge(make(b))
    ba.merge(make(a))
    left = make(a)
    left.merge(make(b))
    left.merge(make(c))
    bc = make(b)
    bc.merge(make(c))
    right = make(a)
    right.merge(bc)
    return ab, ba, left, right


@SETTINGS
@given(float_lists, float_lists, float_lists)
def test_exact_sum_merge_laws(a: list[float], b: list[float], c: list[float]) -> None:
    expected = math.fsum(a + b + c)
    # identity, both sides
    x = exact_sum(a)
    x.merge(ExactSum())
    assert x.value == math.fsum(a)
    y = ExactSum()
    y.merge(exact_sum(a))
    assert y.value == math.fsum(a)
    # commutativity
    ab, ba, left, right = groupings(exact_sum, a, b, c)
    assert ab.value == ba.value == math.fsum(a + b)
    # associativity
    assert left.value == right.value == expected


# --- Moments -------------------------------------------------------------------------------------


def reference_moments(x: np.ndarray) -> tuple[float, float, float, float]:
    """(mean, population variance, skewness g1, excess kurtosis g2): fsum two-pass with a
    correction of the mean, so deviations are accurate even when the data sits at 1e9."""
    n = len(x)
    m = math.fsum(x.tolist()) / n
    d0 = x - m  # exact (Sterbenz) for data close to m
    c = math.fsum(d0.tolist()) / n
    d = d0 - c
    m2 = math.fsum((d * d).tolist())
    m3 = math.fsum((d * d * d).tolist())
    m4 = math.fsum((d * d * d * d).tolist())
    return m + c, m2 / n, math.sqrt(n) * m3 / m2**1.5, n * m4 / (m2 * m2) - 3.0


def moments_of(x: np.ndarray, chunk: int | None) -> Moments:
    m = Moments(order=4)
    if chunk is None:
        m.update(x)
    else:
        for i in range(0, len(x), chunk):
            m.update(x[i:i + chunk])
    return m


@pytest.mark.parametrize("chunk", [None, 1000, 7, 1])
@pytest.mark.parametrize("noise", ["exponential", "normal"])
def test_moments_on_offset_data(chunk: int | None, noise: str,
                                rng: np.random.Generator) -> None:
    n = 20_000 if chunk == 1 else 200_000
    x = 1e9 + (rng.exponential(1.0, n) if noise == "exponential" else rng.normal(0.0, 1.0, n))
    mean, var, skew, kurt = reference_moments(x)
    m = moments_of(x, chunk)
    assert m.n == n
    # A float64 mean near 1e9 carries an ulp of 1.2e-7 (in units of the noise's std) and each
    # merge rounds it once, which bounds any float64 streaming algorithm; raw power sums give a
    # variance of 0 here (100% wrong).
    assert rel_close(m.mean, mean, 1e-13)
    assert rel_close(m.variance, var, 1e-6), (m.variance, var)
    assert rel_close(m.std, math.sqrt(var), 1e-6)
    assert rel_close(m.skewness, skew, 1e-6, abs_tol=1e-6), (m.skewness, skew)
    assert rel_close(m.excess_kurtosis, kurt, 1e-6, abs_tol=1e-6), (m.excess_kurtosis, kurt)
    if noise == "exponential":  # the exponential distribution: skew 2, excess kurtosis 6
        assert abs(skew - 2.0) < 0.3 and abs(kurt - 6.0) < 2.0


def test_moments_chunked_unit_data_is_exactish(rng: np.random.Generator) -> None:
    x = rng.gamma(2.0, 3.0, 50_000)
    mean, var, skew, kurt = reference_moments(x)
    m = moments_of(x, 333)
    assert rel_close(m.mean, mean, 1e-13)
    assert rel_close(m.variance, var, 1e-12)
    assert rel_close(m.skewness, skew, 1e-11)
    assert rel_close(m.excess_kurtosis, kurt, 1e-11)


@pytest.mark.parametrize("offset", [0.0, 0.5, 3.0, 1e3, 1e9])
@pytest.mark.parametrize("chunk", [None, 1000])
def test_order_two_moments_from_sums_or_two_passes(offset: float, chunk: int | None,
                                                   rng: np.random.Generator) -> None:
    # Order 2 takes M2 from sum x^2 while the mean is small against the spread (offsets 0 and
    # 0.5 in units of the std) and a second pass around the mean otherwise; either way the
    # variance is as precise as the data allows.
    x = offset + rng.normal(0.0, 1.0, 100_000)
    mean, var, _, _ = reference_moments(x)
    m = Moments(order=2)
    for i in range(0, x.size, chunk or x.size):
        part = x[i:i + (chunk or x.size)]
        m.merge(Moments.of(part, sum_sq=math.fsum((part * part).tolist()) if chunk else None))
    assert rel_close(m.mean, mean, 1e-13)
    # At 1e9 an ulp of the mean is 1.2e-7 std, which bounds any float64 algorithm; raw power
    # sums would be off by 1e-10 at 1e3 and entirely at 1e9.
    tol = 1e-6 if offset >= 1e9 else 1e-12
    assert rel_close(m.variance, var, tol), (m.variance, var)


# no tiny magnitudes: fourth powers of 1e-80 underflow to subnormals and lose all precision
moment_elements = st.one_of(st.just(0.0), st.floats(1e-6, 1e6), st.floats(-1e6, -1e-6))
moment_arrays = arrays(np.float64, st.integers(0, 30), elements=moment_elements)


def moments_close(a: Moments, b: Moments, data: np.ndarray) -> None:
    assert a.n == b.n == data.size
    if data.size == 0:
        return
    n = data.size
    spread = float(np.max(np.abs(data - np.mean(data))))
    scale = float(np.max(np.abs(data)))
    assert math.isclose(a.mean, b.mean, rel_tol=1e-12, abs_tol=1e-12 * scale)
    # a float64 mean is off by delta ~ a few ulps of the data; sum (d - delta)^k moves by about
    # k delta sum |d|^(k-1)
    delta = 1e-14 * scale
    for k, (u, v) in enumerate(((a.m2, b.m2), (a.m3, b.m3), (a.m4, b.m4)), start=2):
        tol = 1e-9 * n * spread**k + 4 * k * n * delta * (spread + delta) ** (k - 1)
        assert math.isclose(u, v, rel_tol=1e-9, abs_tol=tol), (k, u, v)


def m_of(x: np.ndarray) -> Moments:
    m = Moments(order=4)
    m.update(x)
    return m


@SETTINGS
@given(moment_arrays, moment_arrays, moment_arrays)
def test_moments_merge_laws(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> None:
    # identity, both sides: exactly nothing changes
    x = m_of(a)
    x.merge(Moments(order=4))
    y = Moments(order=4)
    y.merge(m_of(a))
    ref = m_of(a)
    assert (x.n, x.mean, x.m2, x.m3, x.m4) == (ref.n, ref.mean, ref.m2, ref.m3, ref.m4)
    assert (y.n, y.mean, y.m2, y.m3, y.m4) == (ref.n, ref.mean, ref.m2, ref.m3, ref.m4)
    # commutativity
    ab, ba, left, right = groupings(m_of, a, b, c)
    moments_close(ab, ba, np.concatenate([a, b]))
    # associativity, and agreement with the exact moments of the concatenation
    allx = np.concatenate([a, b, c])
    moments_close(left, right, allx)
    if allx.size:
        exact = Moments(order=4, n=allx.size)
        mean = math.fsum(allx.tolist()) / allx.size
        d = allx - mean
        exact.mean = mean
        exact.m2, exact.m3, exact.m4 = (math.fsum((d**k).tolist()) for k in (2, 3, 4))
        moments_close(left, exact, allx)


# --- LogHistogram --------------------------------------------------------------------------------


def hist_of(x: np.ndarray) -> LogHistogram:
    h = LogHistogram()
    h.update(x)
    return h


def same_hist(a: LogHistogram, b: LogHistogram) -> bool:
    va, ca = a.buckets()
    vb, cb = b.buckets()
    return a.n == b.n and np.array_equal(va, vb) and np.array_equal(ca, cb)


QS = (0.0, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999, 1.0)


def check_quantiles(h: LogHistogram, x: np.ndarray, qs: tuple[float, ...] = QS) -> None:
    for q in qs:
        expected = inverted_cdf(x, q)
        got = h.quantile(q)
        if expected == 0.0:
            assert got == 0.0, (q, got)
        else:
            # the bucket midpoint is within HIST_ALPHA (1/256) of every value in its bucket
            assert rel_close(got, expected, HIST_ALPHA * (1 + 1e-12)), (q, got, expected)


DISTRIBUTIONS = {
    "lognormal": lambda r, n: r.lognormal(0.0, 3.0, n),
    "exponential": lambda r, n: r.exponential(2.0, n),
    "uniform": lambda r, n: r.uniform(1e-5, 1e3, n),
    "pareto": lambda r, n: r.pareto(1.1, n),
    "with_zeros": lambda r, n: np.where(r.random(n) < 0.3, 0.0, r.lognormal(0.0, 1.0, n)),
    "tiny_and_huge": lambda r, n: 10.0 ** r.uniform(-250, 250, n),
}


@pytest.mark.parametrize("dist", list(DISTRIBUTIONS))
def test_log_histogram_quantiles(dist: str, rng: np.random.Generator) -> None:
    x = DISTRIBUTIONS[dist](rng, 20_001)
    h = LogHistogram()
    for i in range(0, x.size, 997):
        h.update(x[i:i + 997])
    assert h.n == x.size
    check_quantiles(h, x)
    assert same_hist(h, hist_of(x))  # chunking is exact


@pytest.mark.parametrize("dist", list(DISTRIBUTIONS))
def test_log_histogram_given_minimum_is_the_same(dist: str, rng: np.random.Generator) -> None:
    x = DISTRIBUTIONS[dist](rng, 5_000)
    h = LogHistogram()
    h.update(x, lo=float(x.min()))
    assert same_hist(h, hist_of(x))


positive = st.one_of(st.just(0.0), st.floats(1e-290, 1e290))
hist_arrays = arrays(np.float64, st.integers(0, 40), elements=positive)


@SETTINGS
@given(arrays(np.float64, st.integers(1, 200), elements=positive),
       st.floats(0.0, 1.0))
def test_log_histogram_quantile_property(x: np.ndarray, q: float) -> None:
    check_quantiles(hist_of(x), x, (q,))


@SETTINGS
@given(hist_arrays, hist_arrays, hist_arrays)
def test_log_histogram_merge_laws(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> None:
    x = hist_of(a)
    x.merge(LogHistogram())
    assert same_hist(x, hist_of(a))
    y = LogHistogram()
    y.merge(hist_of(a))
    assert same_hist(y, hist_of(a))
    ab, ba, left, right = groupings(hist_of, a, b, c)
    assert same_hist(ab, ba)
    assert same_hist(left, right)
    allx = np.concatenate([a, b, c])
    assert same_hist(left, hist_of(allx))
    if allx.size:
        check_quantiles(left, allx)


# --- EvalState -----------------------------------------------------------------------------------

REGRESSION_SPECS = ["mse", "rmse", "mae", "huber:delta=0.5", "smooth_l1", "log_cosh",
                    "quantile:q=0.3", "0.7*mse+0.3*mae"]
BINARY_SPECS = ["bce", "focal", "focal:gamma=0.5,alpha=0.25", "0.5*bce+0.5*focal"]
OPTS = GradientOptions(vanish_tol=1e-2, explode_tol=5.0, grad_clip=1.0)


@st.composite
def batches(draw: Any, task: str) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """A few chunks of (pred, target, weight)."""
    out = []
    for _ in range(draw(st.integers(0, 3))):
        n = draw(st.integers(1, 25))
        if task == "regression":
            pred = draw(arrays(np.float64, n, elements=st.floats(-50, 50)))
            target = draw(arrays(np.float64, n, elements=st.floats(-50, 50)))
        else:
            pred = draw(arrays(np.float64, n, elements=st.floats(0.0, 1.0)))
            target = draw(arrays(np.float64, n, elements=st.sampled_from([0.0, 1.0])))
        weight = draw(arrays(np.float64, n, elements=st.floats(0.0, 4.0)))
        out.append((pred, target, weight))
    return out


def state_of(specs: list[str], chunks: list[tuple[np.ndarray, np.ndarray, np.ndarray]]
             ) -> EvalState:
    s = EvalState([parse_spec(t) for t in specs], OPTS)
    for pred, target, weight in chunks:
        s.update(Batch(pred, target, weight))
    return s


def summary(s: EvalState) -> dict[str, Any]:
    """Everything the report is computed from; floats from ExactSum are exact, moments not."""
    out: dict[str, Any] = {"rows": s.rows, "weight_sum": s.weight_sum.value}
    if s.residual_hist is not None:
        out["residual_hist"] = [a.tolist() for a in s.residual_hist.buckets()]
    for spec, ls in zip(s.specs, s.losses, strict=True):
        g = ls.grad
        out[spec.spec] = {
            "value": ls.value.value, "abs_sum": g.abs_sum.value, "abs_max": g.abs_max,
            "sq_weighted": g.sq_weighted.value, "vanishing": g.vanishing,
            "exploding": g.exploding, "clipped": g.clipped, "clipped_inputs": ls.clipped_inputs,
            "n": g.moments.n, "mean": g.moments.mean, "m2": g.moments.m2,
            "hist": None if g.hist is None else [a.tolist() for a in g.hist.buckets()],
        }
    return out


def summaries_close(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert a.keys() == b.keys()
    for key, va in a.items():
        vb = b[key]
        if not isinstance(va, dict):
            assert va == vb, key
            continue
        for field, x in va.items():
            y = vb[field]
            if field == "mean":  # |mean| <= sum |g|
                assert math.isclose(x, y, rel_tol=1e-12, abs_tol=1e-12 * (1 + va["abs_sum"])
                                    ), (key, field, x, y)
            elif field == "m2":  # m2 <= (sum |g|)^2
                assert math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-12 * (1 + va["abs_sum"]) ** 2
                                    ), (key, field, x, y)
            else:
                assert x == y, (key, field, x, y)


@pytest.mark.parametrize("task", ["regression", "binary"])
@SETTINGS
@given(data=st.data())
def test_eval_state_merge_laws(task: str, data: st.DataObject) -> None:
    specs = REGRESSION_SPECS if task == "regression" else BINARY_SPECS
    a, b, c = (data.draw(batches(task)) for _ in range(3))
    ref = summary(state_of(specs, a))
    # identity on both sides is exact
    x = state_of(specs, a)
    x.merge(x.empty())
    assert summary(x) == ref
    y = state_of(specs, []).empty()
    y.merge(state_of(specs, a))
    assert summary(y) == ref
    # commutativity
    ab, ba, left, right = groupings(lambda x: state_of(specs, x), a, b, c)
    summaries_close(summary(ab), summary(ba))
    # associativity, and merging equals one state fed all chunks
    summaries_close(summary(left), summary(right))
    summaries_close(summary(left), summary(state_of(specs, a + b + c)))


def test_huge_per_row_losses_overflow_to_inf_not_to_an_error() -> None:
    """Found by fuzzing: Python's float ** raised OverflowError (an internal error, exit 3) in
    the interval's third moments (weighted mse of 1e103) and in the skewness (m2 ** 1.5 past
    1e308); products overflow to inf as every other sum does, and the value stays exact."""
    import math as m

    from losscli import evaluate
    from losscli.recommend import recommend

    pred = [0.0] * 28 + [5.04e51, 1.0]
    weight = [1.0, 1.0] + [0.0] * 26 + [2.0, 1.0]
    report = evaluate({"y": [0.0] * 30, "pred": pred, "w": weight}, "pred", "y", "w",
                      losses=["mse", "mae"])
    want = m.fsum(w * p * p for w, p in zip(weight, pred, strict=True)) / m.fsum(weight)
    assert report.losses[0].value == pytest.approx(want, rel=1e-15)
    rec = recommend({"y": [0.0] * 30, "pred": [float(i) for i in range(29)] + [1e150]},
                    "pred", "y", task="regression")
    assert rec.evidence is not None and rec.evidence.rows == 30
