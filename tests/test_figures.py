"""The report's figure accumulators against numpy / scikit-learn: exact counts, float sums to
1e-12, the same result however the rows are cut, merged in any grouping or pickled."""

from __future__ import annotations

import itertools
import math
import pickle

import numpy as np
import pytest
from sklearn.calibration import calibration_curve
from sklearn.metrics import confusion_matrix

from losscli.compare import compare
from losscli.engine import evaluate
from losscli.figures import (
    CalibrationBins,
    ClassHistograms,
    ClassLoss,
    Confusion,
    FigureState,
    GridHistogram2D,
    symlog_bins,
)
from losscli.losses import Batch
from losscli.state import LogHistogram, SignedHistogram

EPS = np.finfo(np.float64).eps


def cuts(n: int, rng: np.random.Generator, parts: int = 5) -> list[slice]:
    """Random contiguous pieces of range(n), some of them empty."""
    points = np.sort(rng.integers(0, n + 1, size=parts - 1))
    edges = [0, *points.tolist(), n]
    return [slice(a, b) for a, b in itertools.pairwise(edges)]


def folded(make, update, pieces) -> object:
    """Each piece into its own empty state, merged in order into one."""
    total = make()
    for piece in pieces:
        part = make()
        update(part, piece)
        total.merge(part)
    return total


# --- predicted vs actual ------------------------------------------------------------------------


@pytest.mark.parametrize("case", ["normal", "offset", "wide", "constant", "integers", "tiny"])
def test_grid_histogram_matches_histogram2d_for_any_cut(case: str) -> None:
    rng = np.random.default_rng(hash(case) % 2**32)
    n = 5000
    if case == "normal":
        y = rng.normal(0, 3, n)
        x = y + rng.normal(0, 1, n)
    elif case == "offset":  # far from zero, small spread: keys stay exact
        y = 1e6 + rng.normal(0, 1e-3, n)
        x = y + rng.normal(0, 1e-4, n)
    elif case == "wide":
        y = rng.standard_cauchy(n) * 1e100
        x = rng.standard_cauchy(n)
    elif case == "constant":
        x = y = np.full(n, 2.5)
    elif case == "integers":
        y = rng.poisson(4, n).astype(float)
        x = rng.poisson(4, n).astype(float)
    else:
        y = rng.normal(0, 1e-300, n)
        x = -y
    whole = GridHistogram2D()
    whole.update(x, y)
    assert whole.exp is not None
    ex, ey = whole.edges()
    ref, _, _ = np.histogram2d(x, y, [ex, ey])
    assert whole.counts.dtype == np.int64
    assert np.array_equal(ref.astype(np.int64), whole.counts)
    assert whole.counts.sum() == n
    assert max(whole.counts.shape) <= whole.cells
    # the side is the smallest power of two that fits both axes (keys exact below 2**53)
    smaller = whole.exp - 1
    floor_ok = smaller >= max(math.frexp(float(max(np.abs(x).max(), np.abs(y).max())))[1] - 52,
                              -1074)
    fits = all(math.floor(math.ldexp(float(v.max()), -smaller))
               - math.floor(math.ldexp(float(v.min()), -smaller)) < whole.cells for v in (x, y))
    assert not (floor_ok and fits)
    for seed in range(3):
        pieces = cuts(n, np.random.default_rng(seed), parts=7)
        merged = folded(GridHistogram2D, lambda h, s: h.update(x[s], y[s]), pieces)
        assert (merged.exp, merged.x0, merged.y0) == (whole.exp, whole.x0, whole.y0)
        assert np.array_equal(merged.counts, whole.counts)


def test_grid_histogram_merge_is_associative() -> None:
    rng = np.random.default_rng(3)
    parts = []
    for scale in (1.0, 100.0, 0.01):
        h = GridHistogram2D()
        v = rng.normal(0, scale, 300)
        h.update(v, v + rng.normal(0, scale, 300))
        parts.append(h)

    def copy(h: GridHistogram2D) -> GridHistogram2D:
        return pickle.loads(pickle.dumps(h))

    left = copy(parts[0])
    left.merge(parts[1])
    left.merge(parts[2])
    right = copy(parts[1])
    right.merge(parts[2])
    first = copy(parts[0])
    first.merge(right)
    assert (left.exp, left.x0, left.y0) == (first.exp, first.x0, first.y0)
    assert np.array_equal(left.counts, first.counts)
    empty = GridHistogram2D()
    empty.merge(left)
    assert np.array_equal(empty.counts, left.counts)


# --- binary ---------------------------------------------------------------------------------------


def binary_rows(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    p = rng.beta(0.6, 1.2, n)
    # values on the bin edges test which side they fall on; 0 and 1 the ends
    p[: 11] = np.linspace(0.0, 1.0, 11)
    p[11:21] = np.linspace(0.0, 1.0, 21)[1::2]
    y = (rng.random(n) < p ** 0.8).astype(float)
    return p, y


def test_calibration_bins_match_calibration_curve() -> None:
    p, y = binary_rows(20_000, 1)
    whole = CalibrationBins()
    whole.update(p, y)
    res = whole.result()
    prob_true, prob_pred = calibration_curve(y, p, n_bins=10)
    np.testing.assert_allclose(res["observed_rate"], prob_true, rtol=1e-12, atol=0)
    np.testing.assert_allclose(res["mean_predicted"], prob_pred, rtol=1e-12, atol=0)
    # counts by the definition: bin i is (i/10, (i+1)/10], the first one closed at 0
    edges = np.linspace(0, 1, 11)
    counts = [int(np.count_nonzero(p <= edges[1])) if i == 0 else
              int(np.count_nonzero((p > edges[i]) & (p <= edges[i + 1]))) for i in range(10)]
    assert res["count"] == counts
    assert res["positive"] == [int(y[(p > edges[i]) & (p <= edges[i + 1]) | (
        (i == 0) & (p == 0))].sum()) for i in range(10)]
    keep = np.array(counts) > 0
    ece = math.fsum(np.array(counts)[keep] / len(p) * np.abs(prob_true - prob_pred))
    assert res["ece"] == pytest.approx(ece, rel=1e-12)
    assert res["max_error"] == pytest.approx(float(np.max(np.abs(prob_true - prob_pred))),
                                             rel=1e-12)
    for seed in range(3):
        merged = folded(CalibrationBins, lambda c, s: c.update(p[s], y[s]),
                        cuts(len(p), np.random.default_rng(seed)))
        assert merged.count.tolist() == whole.count.tolist()
        assert merged.positive.tolist() == whole.positive.tolist()
        np.testing.assert_allclose(merged.result()["mean_predicted"], res["mean_predicted"],
                                   rtol=1e-12, atol=0)


def test_class_histograms_match_np_histogram() -> None:
    p, y = binary_rows(5000, 2)
    whole = ClassHistograms(2)
    whole.update(p, y)
    for k in (0, 1):
        ref, _ = np.histogram(p[y == k], bins=np.linspace(0, 1, 21))
        assert whole.counts[k].tolist() == ref.tolist()
    merged = folded(lambda: ClassHistograms(2), lambda h, s: h.update(p[s], y[s]),
                    cuts(len(p), np.random.default_rng(0)))
    assert np.array_equal(merged.counts, whole.counts)


# --- multiclass -----------------------------------------------------------------------------------


def multiclass_rows(n: int, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    logits = rng.normal(0, 1, (k, n))
    logits[y, np.arange(n)] += 1.5
    p = np.exp(logits) / np.exp(logits).sum(axis=0)
    return p, y.astype(float)


def test_confusion_matches_sklearn() -> None:
    p, y = multiclass_rows(4000, 5, 4)
    whole = Confusion(5)
    whole.update(p, y)
    ref = confusion_matrix(y.astype(int), np.argmax(p, axis=0), labels=range(5))
    assert np.array_equal(whole.counts, ref)
    merged = folded(lambda: Confusion(5), lambda c, s: c.update(p[:, s], y[s]),
                    cuts(len(y), np.random.default_rng(1)))
    assert np.array_equal(merged.counts, ref)


def test_class_loss_matches_per_class_cross_entropy() -> None:
    p, y = multiclass_rows(3000, 4, 5)
    rows = -np.log(np.clip(p[y.astype(int), np.arange(len(y))], EPS, 1 - EPS))
    whole = ClassLoss(4)
    whole.update(y, rows)
    for c in range(4):
        mine = y == c
        assert whole.rows[c] == int(np.count_nonzero(mine))
        assert whole.means()[c] == pytest.approx(math.fsum(rows[mine]) / mine.sum(), rel=1e-12)
    # the run's per-class loss is the cce of each class's rows, as scikit-learn computes it
    from sklearn.metrics import log_loss

    report = evaluate({"label": y, **{f"p{c}": p[c] for c in range(4)}},
                      pred="p0,p1,p2,p3", target="label", losses=["cce"], figures=True)
    (spec, means, counts), = report.figures.class_loss
    assert spec == "cce"
    for c in range(4):
        mine = y == c
        ref = log_loss(y[mine], p[:, mine].T, labels=range(4))
        assert means[c] == pytest.approx(ref, rel=1e-12)
        assert counts[c] == int(mine.sum())


# --- signed, symmetric-log histograms -------------------------------------------------------------


@pytest.mark.parametrize("scale", [1.0, 1e-200, 1e200])
def test_symlog_bins_match_np_histogram(scale: float) -> None:
    rng = np.random.default_rng(6)
    x = np.concatenate((rng.standard_t(2, 7000) * scale, np.zeros(13), [scale, -scale]))
    h = SignedHistogram()
    h.update(x)
    b = symlog_bins(h)
    pos, _ = np.histogram(x[x > 0], bins=b.edges)
    neg, _ = np.histogram(-x[x < 0], bins=b.edges)
    # np.histogram closes the last bin; the edges reach past the largest |x|
    assert np.abs(x).max() < b.edges[-1]
    assert b.positive.tolist() == pos.tolist()
    assert b.negative.tolist() == neg.tolist()
    assert b.centre == int(np.count_nonzero(np.abs(x) < b.edges[0]))
    assert b.n == x.size
    # the median and the outlier cuts are within the buckets' accuracy (0.4%) of numpy's
    med = float(np.median(x))
    mad = float(np.median(np.abs(x - med)))
    assert b.median == pytest.approx(med, rel=0.01, abs=0.01 * mad)
    assert b.cuts[1] - b.median == pytest.approx(3.5 * 1.4826 * mad, rel=0.01)


def test_the_signed_histogram_fills_the_abs_histogram_from_its_keys() -> None:
    """The |e| histogram filled with the residual figure's keys is the one |e| gives itself:
    the same buckets and zeros, with zeros and tiny values in a block or not, on one side or
    both, and in the run's results (|g| quantiles and the tail index)."""
    rng = np.random.default_rng(12)
    blocks = [rng.standard_t(3, 4000), np.array([0.0, -0.0, 1.5, -2.0, 5e-310, -5e-310]),
              -rng.random(50), rng.random(7) * 1e30, np.array([-3.0])]
    direct, shared, signed = LogHistogram(), LogHistogram(), SignedHistogram()
    for d in blocks:
        direct.update(np.abs(d))
        signed.update(d, np.abs(d), shared)
        assert direct.zero == shared.zero
        for a, b in zip(direct.buckets(), shared.buckets(), strict=True):
            assert a.tolist() == b.tolist()
    path = "sample_data/regression.parquet"
    plain = evaluate(path, chunk_rows=333).to_dict()
    drawn = evaluate(path, chunk_rows=333, figures=True).to_dict()
    assert plain["losses"] == drawn["losses"]


def test_compare_collects_the_per_row_differences(tmp_path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(7)
    y = rng.normal(0, 1, 3000)
    a = y + rng.normal(0, 1, 3000)
    b = y + rng.normal(0, 0.8, 3000)
    path = str(tmp_path / "pair.parquet")
    pq.write_table(pa.table({"y": y, "a": a, "b": b}), path)
    result = compare(path, baseline_pred="a", pred="b", target="y",
                     losses=["mse", "mae"], figures=True, chunk_rows=311)
    diffs = dict(result.figures.diffs)
    for spec, d in (("mse", (b - y) ** 2 - (a - y) ** 2), ("mae", np.abs(b - y) - np.abs(a - y))):
        bins = diffs[spec]
        assert bins.positive.tolist() == np.histogram(d[d > 0], bins.edges)[0].tolist()
        assert bins.negative.tolist() == np.histogram(-d[d < 0], bins.edges)[0].tolist()
        assert bins.n == d.size
    # no figures were asked for: none kept
    assert compare(path, baseline_pred="a", pred="b", target="y",
                   losses=["mse"]).figures is None


# --- whole runs: chunks, threads, pickling --------------------------------------------------------


def _same(a: object, b: object) -> None:
    """Two FigureData equal: integer arrays exactly, floats to 1e-12."""
    for name in ("rows", "task", "labels"):
        assert getattr(a, name) == getattr(b, name)
    if a.residual is not None:
        for f in ("edges", "negative", "positive"):
            assert np.array_equal(getattr(a.residual, f), getattr(b.residual, f))
        assert a.residual.centre == b.residual.centre
    if a.pred_actual is not None:
        for u, v in zip(a.pred_actual, b.pred_actual, strict=True):
            assert np.array_equal(u, v)
    if a.calibration is not None:
        for key in ("count", "positive"):
            assert a.calibration[key] == b.calibration[key]
        np.testing.assert_allclose(a.calibration["mean_predicted"],
                                   b.calibration["mean_predicted"], rtol=1e-12)
        assert np.array_equal(a.prob_counts, b.prob_counts)
    if a.confusion is not None:
        assert np.array_equal(a.confusion, b.confusion)
    for (s, m, c), (t, n, d) in zip(a.class_loss, b.class_loss, strict=True):
        assert s == t and np.array_equal(c, d)
        np.testing.assert_allclose(m, n, rtol=1e-12)
    for g, h in zip(a.gradients, b.gradients, strict=True):
        assert g.spec == h.spec and np.array_equal(g.counts, h.counts)


@pytest.mark.parametrize("name", ["regression", "binary", "multiclass", "counts"])
def test_figures_do_not_depend_on_chunks_or_threads(name: str) -> None:
    path = f"sample_data/{name}.parquet"
    one = evaluate(path, figures=True, threads=0)
    many = evaluate(path, figures=True, chunk_rows=97, threads=2)
    _same(one.figures, many.figures)
    assert evaluate(path).figures is None


@pytest.mark.parametrize("task", ["regression", "binary"])
def test_figures_travel_through_a_process_pool(tmp_path, task: str) -> None:
    """The figure states pickle and merge across blocks: over 3 blocks of the read plan, a
    process pool gives the serial run's figures, whatever the batch size."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(9)
    n = 300_001
    if task == "binary":
        p = rng.beta(0.7, 1.3, n)
        y = (rng.random(n) < p).astype(float)
    else:
        y = rng.normal(0, 3, n)
        p = y + rng.standard_t(2, n)
    path = str(tmp_path / "rows.parquet")
    pq.write_table(pa.table({"p": p, "y": y}), path)
    serial = evaluate(path, pred="p", target="y", figures=True, executor="serial")
    pooled = evaluate(path, pred="p", target="y", figures=True, chunk_rows=7777,
                      executor="processes:2")
    _same(serial.figures, pooled.figures)
    assert serial.figures.rows == n


def test_the_run_figures_match_references() -> None:
    import pyarrow.parquet as pq

    t = pq.read_table("sample_data/regression.parquet").to_pandas()
    report = evaluate("sample_data/regression.parquet", figures=True, chunk_rows=333)
    ex, ey, counts = report.figures.pred_actual
    ref, _, _ = np.histogram2d(t["y_hat"], t["y"], [ex, ey])
    assert np.array_equal(ref.astype(np.int64), counts)
    e = (t["y_hat"] - t["y"]).to_numpy()
    b = report.figures.residual
    assert b.positive.tolist() == np.histogram(e[e > 0], b.edges)[0].tolist()
    assert b.negative.tolist() == np.histogram(-e[e < 0], b.edges)[0].tolist()
    # |g| of mae is 1 on every row with e != 0
    mae = next(g for g in report.figures.gradients if g.spec == "mae")
    assert int(mae.counts[mae.values == 1.0].sum()) == int(np.count_nonzero(e))

    bt = pq.read_table("sample_data/binary.parquet").to_pandas()
    binary = evaluate("sample_data/binary.parquet", figures=True, chunk_rows=333)
    prob_true, prob_pred = calibration_curve(bt["label"], bt["prob"], n_bins=10)
    cal = binary.to_dict()["calibration"]
    np.testing.assert_allclose(cal["observed_rate"], prob_true, rtol=1e-12, atol=0)
    np.testing.assert_allclose(cal["mean_predicted"], prob_pred, rtol=1e-12, atol=0)
    assert "calibration" not in evaluate("sample_data/binary.parquet").to_dict()


def test_figure_state_merges_associatively_and_pickles() -> None:
    p, y = binary_rows(900, 8)
    states = []
    for s in (slice(0, 300), slice(300, 600), slice(600, 900)):
        st = FigureState("binary")
        st.update(Batch(p[s], y[s], None))
        states.append(pickle.loads(pickle.dumps(st)))
    left = states[0].empty()
    for st in states:
        left.merge(st)
    tail = states[1].empty()
    tail.merge(states[1])
    tail.merge(states[2])
    right = states[0].empty()
    right.merge(states[0])
    right.merge(tail)
    assert left.calibration.count.tolist() == right.calibration.count.tolist()
    assert [s.units for s in left.calibration.prob] == [s.units for s in right.calibration.prob]
    assert np.array_equal(left.prob.counts, right.prob.counts)


def test_auto_figures_drop_the_binary_ones_on_a_non_binary_row() -> None:
    st = FigureState("auto")
    st.update(Batch(np.array([0.2, 0.7]), np.array([0.0, 1.0]), None))
    assert not st.not_binary
    later = st.empty()
    later.update(Batch(np.array([0.2, 0.7]), np.array([0.0, 2.0]), None))
    st.merge(later)
    assert st.not_binary
    assert st.residual is not None and st.residual.pos.n + st.residual.neg.n == 4
