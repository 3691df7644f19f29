"""Every loss of the catalog against an independent reference (scikit-learn or a hand formula),
its per-sample gradient against central finite differences, and probability clipping."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from _helpers.data import Data
from _helpers.references import huber, wmean
from conftest import central_diff, per_sample, rel_close
from sklearn.datasets import make_classification, make_regression
from sklearn.linear_model import LinearRegression, LogisticRegression, PoissonRegressor
from sklearn.metrics import (
    log_loss,
    mean_absolute_error,
    mean_pinball_loss,
    mean_poisson_deviance,
    mean_squared_error,
    root_mean_squared_error,
)

import losscli
from losscli.engine import LossResult
from losscli.losses import CATALOG, EPS
from losscli.registry import lookup

RTOL = 1e-9
N = 3000


# --- real model outputs -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def regression() -> Data:
    X, y = make_regression(n_samples=N, n_features=6, noise=15.0, random_state=1)
    pred = LinearRegression().fit(X[: N // 2], y[: N // 2]).predict(X)
    w = np.random.default_rng(1).uniform(0.1, 3.0, N)
    return Data(pred, y, w)


@pytest.fixture(scope="module")
def counts() -> Data:
    rng = np.random.default_rng(2)
    X = rng.normal(size=(N, 3))
    y = rng.poisson(np.exp(0.2 + X @ np.array([0.5, -0.3, 0.2]))).astype(float)
    pred = PoissonRegressor(alpha=1e-3).fit(X, y).predict(X)
    assert (y == 0).any() and (pred > 0).all()
    return Data(pred, y, rng.uniform(0.1, 3.0, N))


@pytest.fixture(scope="module")
def binary() -> tuple[Data, np.ndarray]:
    """(probabilities of class 1, targets, weights), and the matching logits."""
    X, y = make_classification(n_samples=N, n_features=8, random_state=3, flip_y=0.05)
    model = LogisticRegression(max_iter=1000).fit(X, y)
    w = np.random.default_rng(3).uniform(0.1, 3.0, N)
    return Data(model.predict_proba(X)[:, 1], y.astype(float), w), model.decision_function(X)


@pytest.fixture(scope="module")
def multiclass() -> tuple[Data, np.ndarray]:
    """(n, C) probabilities, targets 0..C-1, weights, and the (n, C) logits."""
    X, y = make_classification(n_samples=N, n_features=8, n_informative=6, n_classes=4,
                               random_state=4)
    model = LogisticRegression(max_iter=1000).fit(X, y)
    w = np.random.default_rng(4).uniform(0.1, 3.0, N)
    return Data(model.predict_proba(X), y.astype(float), w), model.decision_function(X)


def run(spec: str, pred: np.ndarray, target: np.ndarray, weight: np.ndarray | None = None,
        logits: bool = False) -> LossResult:
    """Evaluate one loss spec on in-memory columns through the public API."""
    data: dict[str, Any] = {"target": target}
    if pred.ndim == 2:  # (n, C): one column per class
        for k in range(pred.shape[1]):
            data[f"prob_{k}"] = pred[:, k]
        pred_col = "prob_*"
    else:
        data["pred"] = pred
        pred_col = "pred"
    if weight is not None:
        data["w"] = weight
    report = losscli.evaluate(data, pred=pred_col, target="target",
                              weight=None if weight is None else "w", losses=[spec],
                              logits=logits)
    assert len(report.losses) == 1
    return report.losses[0]


def mean_of(fn: Callable[[float, float], float], pred: np.ndarray, target: np.ndarray,
            weight: np.ndarray | None) -> float:
    """Weighted mean of a per-sample reference fn(pred_i, target_i), in plain Python."""
    return wmean([fn(p, y) for p, y in zip(pred.tolist(), target.tolist(), strict=True)], weight)


# --- regression against scikit-learn ------------------------------------------------------------

SklearnFn = Callable[..., float]

SKLEARN_REGRESSION: list[tuple[str, SklearnFn, dict[str, float]]] = [
    ("mse", mean_squared_error, {}),
    ("rmse", root_mean_squared_error, {}),
    ("mae", mean_absolute_error, {}),
    ("quantile", mean_pinball_loss, {"alpha": 0.5}),
    ("quantile:q=0.1", mean_pinball_loss, {"alpha": 0.1}),
    ("pinball:q=0.9", mean_pinball_loss, {"alpha": 0.9}),
    ("quantile:q=0.975", mean_pinball_loss, {"alpha": 0.975}),
]


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize(("spec", "fn", "kwargs"), SKLEARN_REGRESSION,
                         ids=[s for s, _, _ in SKLEARN_REGRESSION])
def test_regression_loss_matches_sklearn(regression: Data, spec: str, fn: SklearnFn,
                                         kwargs: dict[str, float], weighted: bool) -> None:
    w = regression.weight if weighted else None
    expected = fn(regression.target, regression.pred, sample_weight=w, **kwargs)
    got = run(spec, regression.pred, regression.target, w).value
    assert rel_close(got, expected, RTOL), (spec, got, expected)


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_poisson_matches_sklearn(counts: Data, weighted: bool) -> None:
    w = counts.weight if weighted else None
    expected = mean_poisson_deviance(counts.target, counts.pred, sample_weight=w)
    got = run("poisson", counts.pred, counts.target, w).value
    assert rel_close(got, expected, RTOL), (got, expected)


# --- regression against hand formulas -------------------------------------------------------------


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("delta", [0.5, 1.0, 2.5, 30.0])
def test_huber_matches_formula(regression: Data, delta: float, weighted: bool) -> None:
    w = regression.weight if weighted else None
    e = (regression.pred - regression.target).tolist()
    expected = wmean(huber(np.array(e), delta), w)
    spec = "huber" if delta == 1.0 else f"huber:delta={delta}"
    got = run(spec, regression.pred, regression.target, w).value
    assert rel_close(got, expected, RTOL), (spec, got, expected)


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("beta", [0.5, 1.0, 2.5, 30.0])
def test_smooth_l1_is_huber_over_beta(regression: Data, beta: float, weighted: bool) -> None:
    w = regression.weight if weighted else None
    e = (regression.pred - regression.target).tolist()
    expected = wmean(huber(np.array(e), beta) / beta, w)
    spec = "smooth_l1" if beta == 1.0 else f"smooth_l1:beta={beta}"
    got = run(spec, regression.pred, regression.target, w).value
    assert rel_close(got, expected, RTOL), (spec, got, expected)
    as_huber = run(f"huber:delta={beta}", regression.pred, regression.target, w).value
    assert rel_close(got, as_huber / beta, RTOL)


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_log_cosh_matches_naive_formula(regression: Data, weighted: bool) -> None:
    # residuals scaled to a moderate range where log(cosh(e)) is accurate when computed naively
    e = (regression.pred - regression.target) / 10.0
    assert np.abs(e).max() < 50
    target = np.zeros(N)
    w = regression.weight if weighted else None
    expected = wmean([math.log(math.cosh(x)) for x in e.tolist()], w)
    got = run("log_cosh", e, target, w).value
    assert rel_close(got, expected, RTOL), (got, expected)


def test_log_cosh_large_residuals_are_finite() -> None:
    e = np.array([-1000.0, -400.0, 400.0, 1000.0])
    values, grads = per_sample(lookup("log_cosh"), {}, e, np.zeros(4))  # type: ignore[arg-type]
    np.testing.assert_allclose(values, np.abs(e) - math.log(2.0), rtol=1e-15)
    np.testing.assert_array_equal(grads, np.sign(e))


# --- binary --------------------------------------------------------------------------------------


def sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))


def bce_naive(p: float, y: float) -> float:
    return -(y * math.log(p) + (1.0 - y) * math.log(1.0 - p))


def focal_naive(p: float, y: float, gamma: float, alpha: float | None) -> float:
    pt = p if y == 1.0 else 1.0 - p
    at = 1.0 if alpha is None else (alpha if y == 1.0 else 1.0 - alpha)
    return -at * (1.0 - pt) ** gamma * math.log(pt)


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_bce_matches_sklearn_log_loss(binary: tuple[Data, np.ndarray], weighted: bool) -> None:
    data, _ = binary
    w = data.weight if weighted else None
    expected = log_loss(data.target, y_proba=data.pred, sample_weight=w)
    for spec in ("bce", "log_loss"):
        got = run(spec, data.pred, data.target, w)
        assert rel_close(got.value, expected, RTOL), (spec, got.value, expected)
        assert got.clipped_inputs == 0


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_bce_logits_match_probability_form_and_naive(binary: tuple[Data, np.ndarray],
                                                     weighted: bool) -> None:
    data, z = binary
    assert np.abs(z).max() < 30  # moderate logits: the probability form is accurate
    w = data.weight if weighted else None
    probs = np.array([sigmoid(v) for v in z.tolist()])
    naive = mean_of(bce_naive, probs, data.target, w)
    from_logits = run("bce", z, data.target, w, logits=True)
    from_probs = run("bce", probs, data.target, w)
    assert rel_close(from_logits.value, naive, RTOL), (from_logits.value, naive)
    assert rel_close(from_probs.value, naive, RTOL), (from_probs.value, naive)
    assert rel_close(from_logits.value, log_loss(data.target, y_proba=probs, sample_weight=w),
                     RTOL)
    assert not from_logits.clipped_inputs  # logit input never clips


FOCAL_PARAMS = [(0.0, None), (0.5, None), (2.0, None), (3.7, None), (2.0, 0.25), (1.0, 0.8),
                (0.0, 0.6)]


def focal_spec(gamma: float, alpha: float | None) -> str:
    return f"focal:gamma={gamma}" + ("" if alpha is None else f",alpha={alpha}")


@pytest.mark.parametrize("logits", [False, True], ids=["probs", "logits"])
@pytest.mark.parametrize(("gamma", "alpha"), FOCAL_PARAMS)
def test_focal_matches_naive_formula(binary: tuple[Data, np.ndarray], gamma: float,
                                     alpha: float | None, logits: bool) -> None:
    data, z = binary
    probs = np.array([sigmoid(v) for v in z.tolist()]) if logits else data.pred
    expected = mean_of(lambda p, y: focal_naive(p, y, gamma, alpha), probs, data.target,
                       data.weight)
    got = run(focal_spec(gamma, alpha), z if logits else data.pred, data.target, data.weight,
              logits)
    assert rel_close(got.value, expected, RTOL), (got.value, expected)


@pytest.mark.parametrize("logits", [False, True], ids=["probs", "logits"])
def test_focal_gamma_zero_is_bce(binary: tuple[Data, np.ndarray], logits: bool) -> None:
    data, z = binary
    pred = z if logits else data.pred
    probs = np.array([sigmoid(v) for v in z.tolist()]) if logits else data.pred
    expected = log_loss(data.target, y_proba=probs, sample_weight=data.weight)
    focal = run("focal:gamma=0", pred, data.target, data.weight, logits).value
    bce = run("bce", pred, data.target, data.weight, logits).value
    assert rel_close(focal, expected, RTOL), (focal, expected)
    assert rel_close(focal, bce, 1e-12)


# --- multiclass ----------------------------------------------------------------------------------


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_cce_matches_sklearn_log_loss(multiclass: tuple[Data, np.ndarray],
                                      weighted: bool) -> None:
    data, z = multiclass
    w = data.weight if weighted else None
    expected = log_loss(data.target, y_proba=data.pred, sample_weight=w)
    got = run("cce", data.pred, data.target, w)
    assert rel_close(got.value, expected, RTOL), (got.value, expected)
    assert got.clipped_inputs == 0
    # logits: logsumexp(z) - z_y, against the probability form of the same model
    from_logits = run("cce", z, data.target, w, logits=True)
    zmax = z.max(axis=1, keepdims=True)
    soft = np.exp(z - zmax) / np.exp(z - zmax).sum(axis=1, keepdims=True)
    assert rel_close(from_logits.value, log_loss(data.target, y_proba=soft, sample_weight=w),
                     RTOL)
    assert rel_close(from_logits.value, run("cce", soft, data.target, w).value, RTOL)
    naive = wmean([math.log(sum(math.exp(v) for v in row)) - row[int(y)]
                   for row, y in zip(z.tolist(), data.target.tolist(), strict=True)], w)
    assert rel_close(from_logits.value, naive, RTOL), (from_logits.value, naive)


# --- stability of the logit forms ------------------------------------------------------------


def test_bce_and_focal_extreme_logits_are_exact() -> None:
    z = np.array([1000.0, -1000.0, 1000.0, -1000.0, 40.0, -40.0])
    y = np.array([0.0, 1.0, 1.0, 0.0, 0.0, 1.0])
    values, grads = per_sample(CATALOG["bce"], {}, z, y, logits=True)
    assert values.tolist() == [1000.0, 1000.0, 0.0, 0.0, 40.0 + math.log1p(math.exp(-40.0)),
                               40.0 + math.log1p(math.exp(-40.0))]
    assert grads.tolist() == [1.0, -1.0, 0.0, 0.0, sigmoid(40.0), -sigmoid(40.0)]
    values, grads = per_sample(CATALOG["focal"], {"gamma": 2.0, "alpha": 0.25}, z[:4], y[:4],
                               logits=True)
    assert values.tolist() == [750.0, 250.0, 0.0, 0.0]
    assert grads.tolist() == [0.75, -0.25, 0.0, 0.0]
    r = run("bce", z[:4], y[:4], logits=True)
    assert r.value == 500.0
    assert np.isfinite([r.gradient.mean, r.gradient.std, r.gradient.norm]).all()


def test_cce_extreme_logits_are_exact() -> None:
    z = np.array([[1000.0, 0.0, -1000.0], [1000.0, 0.0, -1000.0], [-1000.0, 1000.0, 0.0]])
    y = np.array([2.0, 0.0, 0.0])
    values, grads = per_sample(CATALOG["cce"], {}, z.T, y, logits=True)
    assert values.tolist() == [2000.0, 0.0, 2000.0]
    # softmax is one-hot on the max: gradient rows (1, 0, -1), 0 and (-1, 1, 0)
    np.testing.assert_allclose(grads, [math.sqrt(2.0), 0.0, math.sqrt(2.0)], rtol=1e-15)
    r = run("cce", z, y, logits=True)
    assert rel_close(r.value, 4000.0 / 3.0, 1e-15)


# --- clipping ------------------------------------------------------------------------------------


def test_probability_clipping_matches_sklearn_and_is_counted() -> None:
    p = np.array([0.0, 1.0, 0.0, 1.0, 0.3, 0.9, 1e-20, 1.0 - 1e-17])
    y = np.array([1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 0.0])
    outside = int(np.count_nonzero((p < EPS) | (p > 1.0 - EPS)))
    assert outside == 6
    clipped = np.clip(p, EPS, 1.0 - EPS)
    expected = mean_of(bce_naive, clipped, y, None)
    r = run("bce", p, y)
    assert rel_close(r.value, expected, 1e-12), (r.value, expected)
    assert rel_close(r.value, log_loss(y, y_proba=p), 1e-12)
    assert math.isfinite(r.gradient.abs_max)
    assert r.clipped_inputs == outside
    f = run("focal:gamma=2", p, y)
    assert f.clipped_inputs == outside
    expected_f = mean_of(lambda q, t: focal_naive(q, t, 2.0, None), clipped, y, None)
    assert rel_close(f.value, expected_f, 1e-12), (f.value, expected_f)


def test_cce_probability_clipping_is_counted() -> None:
    p = np.array([[0.0, 0.5, 0.5], [0.2, 0.3, 0.5], [0.5, 0.0, 0.5], [0.1, 0.1, 0.8]])
    y = np.array([0.0, 2.0, 1.0, 2.0])
    r = run("cce", p, y)
    assert r.clipped_inputs == 2
    expected = wmean([-math.log(EPS), -math.log(0.5), -math.log(EPS), -math.log(0.8)], None)
    assert rel_close(r.value, expected, 1e-12)
    assert rel_close(r.value, log_loss(y, y_proba=p, labels=[0, 1, 2]), 1e-12)


# --- gradients by central finite differences ---------------------------------------------------


def away_from(x: np.ndarray, kinks: list[float], gap: float) -> np.ndarray:
    """Push values that lie within ``gap`` of a kink away from it."""
    x = x.copy()
    for k in kinks:
        near = np.abs(x - k) < gap
        x[near] = k + np.where(x[near] >= k, gap, -gap)
    return x


REGRESSION_GRAD = [
    ("mse", [0.0]),
    ("mae", [0.0]),
    ("huber", [-1.0, 1.0]),
    ("huber:delta=2.5", [-2.5, 2.5]),
    ("smooth_l1", [-1.0, 1.0]),
    ("smooth_l1:beta=0.3", [-0.3, 0.3]),
    ("log_cosh", []),
    ("quantile:q=0.2", [0.0]),
    ("quantile:q=0.9", [0.0]),
]


def loss_and_params(spec: str) -> tuple[Any, dict[str, float | None]]:
    from losscli.spec import parse_spec

    term = parse_spec(spec).terms[0]
    return term.loss, dict(term.params)


@pytest.mark.parametrize(("spec", "kinks"), REGRESSION_GRAD, ids=[s for s, _ in REGRESSION_GRAD])
def test_regression_gradient_finite_differences(spec: str, kinks: list[float],
                                                rng: np.random.Generator) -> None:
    loss, params = loss_and_params(spec)
    target = rng.normal(3.0, 2.0, 400)
    e = away_from(rng.normal(0.0, 3.0, 400), kinks, 1e-3)
    pred = target + e
    _, grads = per_sample(loss, params, pred, target)
    fd = central_diff(loss, params, pred, target)
    np.testing.assert_allclose(grads, fd, rtol=1e-6, atol=1e-7)


def test_poisson_gradient_finite_differences(counts: Data) -> None:
    loss, params = loss_and_params("poisson")
    _, grads = per_sample(loss, params, counts.pred, counts.target)
    fd = central_diff(loss, params, counts.pred, counts.target)
    np.testing.assert_allclose(grads, fd, rtol=1e-6, atol=1e-7)
    # and the closed form 2 (1 - y / mu)
    np.testing.assert_allclose(grads, 2.0 * (1.0 - counts.target / counts.pred), rtol=1e-14)


BINARY_GRAD = ["bce", "focal:gamma=0", "focal", "focal:gamma=0.5", "focal:gamma=3.7,alpha=0.25",
               "focal:gamma=1,alpha=0.8"]


@pytest.mark.parametrize("logits", [False, True], ids=["probs", "logits"])
@pytest.mark.parametrize("spec", BINARY_GRAD)
def test_binary_gradient_finite_differences(spec: str, logits: bool,
                                            rng: np.random.Generator) -> None:
    loss, params = loss_and_params(spec)
    y = (rng.random(500) < 0.4).astype(float)
    pred = rng.uniform(-8.0, 8.0, 500) if logits else rng.uniform(0.02, 0.98, 500)
    _, grads = per_sample(loss, params, pred, y, logits)
    fd = central_diff(loss, params, pred, y, logits)
    np.testing.assert_allclose(grads, fd, rtol=1e-6, atol=1e-8)
    if spec == "bce":  # closed forms: (p - y) / (p (1 - p)) and sigmoid(z) - y
        sig = np.array([sigmoid(v) for v in pred.tolist()])
        closed = sig - y if logits else (pred - y) / (pred * (1.0 - pred))
        np.testing.assert_allclose(grads, closed, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("logits", [False, True], ids=["probs", "logits"])
def test_cce_gradient_row_norm_finite_differences(logits: bool,
                                                  rng: np.random.Generator) -> None:
    loss = CATALOG["cce"]
    c, n = 5, 300
    z = rng.normal(0.0, 3.0, (c, n))
    if logits:
        pred = z
    else:
        pred = np.exp(z) / np.exp(z).sum(axis=0)
        pred = np.clip(pred, 1e-3, None)  # keep p_y away from the clip region
    y = rng.integers(0, c, n).astype(float)
    _, grads = per_sample(loss, {}, pred, y, logits)
    fd = central_diff(loss, {}, pred, y, logits)  # (C, n): one derivative per class
    np.testing.assert_allclose(grads, np.sqrt((fd * fd).sum(axis=0)), rtol=1e-6, atol=1e-8)


def test_mae_gradient_is_zero_at_zero_residual() -> None:
    pred = np.array([1.0, 2.0, -3.5, 0.0, 7.0])
    target = np.array([1.0, 2.0, -3.5, 0.0, 6.0])
    _, grads = per_sample(CATALOG["mae"], {}, pred, target)
    assert grads.tolist() == [0.0, 0.0, 0.0, 0.0, 1.0]


def test_rmse_gradient_of_reduced_loss_by_finite_differences(rng: np.random.Generator) -> None:
    """rmse reports g_i = e_i / rmse, so that d rmse / d pred_i = w_i g_i / sum w."""
    n = 6
    target = rng.normal(0.0, 1.0, n)
    pred = target + rng.normal(0.5, 1.0, n)
    w = rng.uniform(0.5, 2.0, n)

    def rmse(p: np.ndarray) -> float:
        return run("rmse", p, target, w).value

    h = 1e-6
    g = np.empty(n)
    for i in range(n):
        up, down = pred.copy(), pred.copy()
        up[i] += h
        down[i] -= h
        g[i] = (rmse(up) - rmse(down)) / (2 * h) * w.sum() / w[i]
    stats = run("rmse", pred, target, w).gradient
    assert rel_close(stats.mean, float(g.mean()), 1e-6, 1e-9)
    assert rel_close(stats.abs_max, float(np.abs(g).max()), 1e-6)
    assert rel_close(stats.abs_mean, float(np.abs(g).mean()), 1e-6)
    assert rel_close(stats.norm, float(np.sqrt(((w * g) ** 2).sum()) / w.sum()), 1e-6)


def test_every_catalog_loss_is_covered() -> None:
    covered = {"mse", "rmse", "mae", "huber", "smooth_l1", "log_cosh", "quantile", "poisson",
               "bce", "focal", "cce",
               # tests/test_loss_catalog.py
               "msle", "rmsle", "mape", "gamma", "tweedie", "poisson_nll", "hinge",
               "squared_hinge", "multi_hinge", "gaussian_nll", "kl_div"}
    assert set(CATALOG) == covered
