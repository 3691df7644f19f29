"""The catalog's library losses (log errors, mape, deviances, Poisson NLL, hinge losses, label
smoothing) against scikit-learn and hand-derived formulas of torch's and Keras' documented
semantics, their gradients against finite differences, chunk and thread invariance, domain
errors and spec parameters. torch itself, when installed, in tests/test_loss_catalog_torch.py."""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import central_diff, per_sample, rel_close
from sklearn.metrics import (
    hinge_loss,
    log_loss,
    mean_absolute_percentage_error,
    mean_gamma_deviance,
    mean_squared_log_error,
    mean_tweedie_deviance,
    root_mean_squared_log_error,
)
from test_cli import assert_input_error, cli
from test_losses import loss_and_params, wmean

import losscli
from losscli.errors import InputError, UsageError
from losscli.gradcheck import check_gradient
from losscli.losses import CATALOG, EPS
from losscli.spec import parse_spec

RTOL = 1e-12
N = 2000


def evaluate(spec: str, pred: np.ndarray, target: np.ndarray, weight: np.ndarray | None = None,
             logits: bool = False, **kw: Any) -> float:
    """One loss's value through the public API; pred (n,) or (n, C)."""
    data: dict[str, Any] = {"target": target}
    if pred.ndim == 2:
        for k in range(pred.shape[1]):
            data[f"p_{k}"] = pred[:, k]
    else:
        data["pred"] = pred
    if weight is not None:
        data["w"] = weight
    report = losscli.evaluate(data, pred="p_*" if pred.ndim == 2 else "pred", target="target",
                              weight=None if weight is None else "w", losses=[spec],
                              logits=logits, **kw)
    return report.losses[0].value


def weights() -> np.ndarray:
    return np.random.default_rng(7).uniform(0.1, 3.0, N)


# --- data: model-like predictions of each kind --------------------------------------------------


def positive_skewed() -> tuple[np.ndarray, np.ndarray]:
    """Gamma-distributed amounts (claim sizes, durations) and a log-linear model's means."""
    rng = np.random.default_rng(11)
    x = rng.normal(size=N)
    mu = np.exp(1.0 + 0.6 * x)
    y = rng.gamma(2.0, mu / 2.0)
    return mu * np.exp(rng.normal(0.0, 0.2, N)), y


def zero_inflated() -> tuple[np.ndarray, np.ndarray]:
    """Compound Poisson-Gamma amounts: a mass of exact zeros and a continuous positive part."""
    rng = np.random.default_rng(12)
    counts = rng.poisson(0.8, N)
    y = np.array([rng.gamma(2.0, 3.0, k).sum() for k in counts])
    assert (y == 0).mean() > 0.3
    return np.full(N, y.mean()) * np.exp(rng.normal(0.0, 0.3, N)), y


def any_sign() -> tuple[np.ndarray, np.ndarray]:
    """Targets of both signs and positive predictions (Tweedie powers below 0)."""
    rng = np.random.default_rng(13)
    return rng.uniform(0.2, 5.0, N), rng.normal(1.0, 2.0, N)


# --- regression against scikit-learn -------------------------------------------------------------

SklearnFn = Callable[..., float]
REGRESSION: list[tuple[str, SklearnFn, dict[str, float], Callable[[], Any]]] = [
    ("msle", mean_squared_log_error, {}, positive_skewed),
    ("rmsle", root_mean_squared_log_error, {}, positive_skewed),
    ("mape", mean_absolute_percentage_error, {}, positive_skewed),
    ("gamma", mean_gamma_deviance, {}, positive_skewed),
    *[(f"tweedie:power={p:g}", mean_tweedie_deviance, {"power": p}, data)
      for p, data in [(-1.5, any_sign), (-0.5, any_sign), (0.0, any_sign), (1.0, zero_inflated),
                      (1.2, zero_inflated), (1.5, zero_inflated), (1.9, zero_inflated),
                      (2.0, positive_skewed), (2.5, positive_skewed), (3.0, positive_skewed)]],
]


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize(("spec", "fn", "kwargs", "data"), REGRESSION,
                         ids=[r[0] for r in REGRESSION])
def test_regression_matches_sklearn(spec: str, fn: SklearnFn, kwargs: dict[str, float],
                                    data: Callable[[], Any], weighted: bool) -> None:
    pred, y = data()
    w = weights() if weighted else None
    expected = fn(y, pred, sample_weight=w, **kwargs)
    got = evaluate(spec, pred, y, w)
    assert rel_close(got, expected, RTOL), (spec, got, expected)


def test_msle_accepts_targets_between_minus_one_and_zero() -> None:
    rng = np.random.default_rng(3)
    y, pred = rng.uniform(-0.99, 3.0, 500), rng.uniform(-0.9, 3.0, 500)
    assert rel_close(evaluate("msle", pred, y), mean_squared_log_error(y, pred), RTOL)


def test_mape_pins_sklearn_epsilon_at_zero_targets() -> None:
    y = np.array([0.0, 0.0, 2.0, -4.0])
    pred = np.array([1e-3, 0.0, 1.0, -3.0])
    expected = math.fsum([1e-3 / EPS, 0.0, 0.5, 0.25]) / 4
    assert rel_close(evaluate("mape", pred, y), expected, RTOL)
    assert rel_close(mean_absolute_percentage_error(y, pred), expected, RTOL)


def test_tweedie_special_powers_are_the_named_losses() -> None:
    pred, y = positive_skewed()
    w = weights()
    for power, other in ((0, "mse"), (1, "poisson"), (2, "gamma")):
        assert rel_close(evaluate(f"tweedie:power={power}", pred, y, w),
                         evaluate(other, pred, y, w), RTOL)


# --- poisson_nll: torch's PoissonNLLLoss by its documented formula ------------------------------


def poisson_nll_ref(x: float, y: float, log_input: bool, full: bool, eps: float = 1e-8) -> float:
    value = math.exp(x) - y * x if log_input else x - y * math.log(x + eps)
    if full and y > 1:
        value += y * math.log(y) - y + 0.5 * math.log(2 * math.pi * y)
    return value


def counts() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(14)
    x = rng.normal(size=N)
    rate = np.exp(0.5 + 0.4 * x)
    return rate * np.exp(rng.normal(0.0, 0.1, N)), rng.poisson(rate).astype(float)


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("full", [False, True], ids=["partial", "full"])
@pytest.mark.parametrize("log_input", [True, False], ids=["log_input", "rate"])
def test_poisson_nll_matches_torch_formula(log_input: bool, full: bool, weighted: bool) -> None:
    rate, y = counts()
    x = np.log(rate) if log_input else rate
    w = weights() if weighted else None
    expected = wmean([poisson_nll_ref(a, b, log_input, full)
                      for a, b in zip(x.tolist(), y.tolist(), strict=True)], w)
    spec = "poisson_nll" + ("" if log_input else ":log_input=false") + (
        ("," if not log_input else ":") + "full=true" if full else "")
    assert rel_close(evaluate(spec, x, y, w), expected, RTOL), spec


def test_poisson_nll_is_half_the_deviance_up_to_a_target_term() -> None:
    """poisson = 2 (poisson_nll:log_input=false,eps=0 + y log y - y): the relation `losses`
    states."""
    rate, y = counts()
    ylogy = [b * math.log(b) if b > 0 else 0.0 for b in y.tolist()]
    shift = math.fsum(ylogy) / N - math.fsum(y.tolist()) / N
    nll = evaluate("poisson_nll:log_input=false,eps=0", rate, y)
    assert rel_close(evaluate("poisson", rate, y), 2.0 * (nll + shift), 1e-10)


# --- binary: hinge losses and label smoothing ----------------------------------------------------


@functools.cache
def margins() -> tuple[np.ndarray, np.ndarray]:
    """Decision values of a linear SVM and 0/1 labels."""
    from sklearn.datasets import make_classification
    from sklearn.svm import LinearSVC

    X, y = make_classification(n_samples=N, n_features=6, random_state=5, flip_y=0.08)
    z = LinearSVC(C=0.5).fit(X[: N // 2], y[: N // 2]).decision_function(X)
    assert np.abs(z).max() > 2.0
    return z, y.astype(float)


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_hinge_matches_sklearn_and_keras_formula(weighted: bool) -> None:
    z, y = margins()
    w = weights() if weighted else None
    expected = hinge_loss(y, z, sample_weight=w)
    # without --logits: decision values are not probabilities, and are not refused as such
    assert rel_close(evaluate("hinge", z, y, w), expected, RTOL)
    assert rel_close(evaluate("hinge", z, y, w, logits=True), expected, RTOL)
    s = 2 * y - 1
    keras_sq = wmean([max(0.0, 1.0 - a * b) ** 2 for a, b in zip(s.tolist(), z.tolist(),
                                                                 strict=True)], w)
    assert rel_close(evaluate("squared_hinge", z, y, w), keras_sq, RTOL)


def bce_smoothed_ref(p: float, y: float, e: float, k: float = 1.0) -> float:
    t = y * (1 - e) + e / 2
    return -(k * t * math.log(p) + (1 - t) * math.log(1 - p))


def log_sigmoid(z: float) -> float:
    return -math.log1p(math.exp(-z)) if z >= 0 else z - math.log1p(math.exp(z))


@functools.cache
def binary_probs() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression

    X, y = make_classification(n_samples=N, n_features=6, random_state=6, flip_y=0.05)
    m = LogisticRegression(max_iter=500).fit(X, y)
    return m.predict_proba(X)[:, 1], m.decision_function(X), y.astype(float)


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize(("e", "k"), [(0.1, 1.0), (0.25, 1.0), (1.0, 1.0), (0.1, 3.0)])
def test_bce_label_smoothing_matches_keras_formula(e: float, k: float, weighted: bool) -> None:
    p, z, y = binary_probs()
    w = weights() if weighted else None
    spec = f"bce:label_smoothing={e:g}" + (f",pos_weight={k:g}" if k != 1.0 else "")
    expected = wmean([bce_smoothed_ref(a, b, e, k) for a, b in zip(p.tolist(), y.tolist(),
                                                                   strict=True)], w)
    assert rel_close(evaluate(spec, p, y, w), expected, RTOL)
    # logits: -(K t log sigmoid(z) + (1 - t) log sigmoid(-z)), no clipping
    t = y * (1 - e) + e / 2
    expected_z = wmean([-(k * a * log_sigmoid(b) + (1 - a) * log_sigmoid(-b))
                        for a, b in zip(t.tolist(), z.tolist(), strict=True)], w)
    assert rel_close(evaluate(spec, z, y, w, logits=True), expected_z, RTOL)


def test_bce_smoothing_zero_is_log_loss() -> None:
    p, _, y = binary_probs()
    assert evaluate("bce:label_smoothing=0", p, y) == evaluate("bce", p, y)
    assert rel_close(evaluate("bce", p, y), log_loss(y, p), RTOL)


# --- multiclass: label smoothing and Crammer-Singer ---------------------------------------------


@functools.cache
def multiclass() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(n, C) probabilities, logits, targets of a 4-class model."""
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression

    X, y = make_classification(n_samples=N, n_features=8, n_informative=6, n_classes=4,
                               random_state=8)
    m = LogisticRegression(max_iter=1000).fit(X, y)
    return m.predict_proba(X), m.decision_function(X), y.astype(float)


def cce_smoothed_rows(logp: np.ndarray, y: np.ndarray, e: float,
                      c: np.ndarray) -> tuple[list[float], list[float]]:
    """torch's cross_entropy(weight=c, label_smoothing=e), reduction none, row by row:
    (1 - e) c_y (-log p_y) + e/C sum_k c_k (-log p_k); and each row's c_y (its mean's
    denominator)."""
    k = logp.shape[1]
    values, denom = [], []
    for row, t in zip(logp.tolist(), y.astype(int).tolist(), strict=True):
        smooth = math.fsum(-ck * v for ck, v in zip(c.tolist(), row, strict=True))
        values.append((1 - e) * c[t] * -row[t] + e / k * smooth)
        denom.append(float(c[t]))
    return values, denom


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("logits", [False, True], ids=["probs", "logits"])
@pytest.mark.parametrize(("e", "cw"), [(0.1, None), (0.3, None), (0.1, (1.0, 2.0, 0.5, 3.0))])
def test_cce_label_smoothing_matches_torch_formula(e: float, cw: tuple[float, ...] | None,
                                                   logits: bool, weighted: bool) -> None:
    p, z, y = multiclass()
    w = weights() if weighted else np.ones(N)
    c = np.ones(4) if cw is None else np.array(cw)
    if logits:
        zmax = z.max(axis=1, keepdims=True)
        logp = z - zmax - np.log(np.exp(z - zmax).sum(axis=1, keepdims=True))
    else:
        logp = np.log(p)
    values, denom = cce_smoothed_rows(logp, y, e, c)
    expected = (math.fsum(v * float(a) for v, a in zip(values, w, strict=True))
                / math.fsum(d * float(a) for d, a in zip(denom, w, strict=True)))
    spec = f"cce:label_smoothing={e:g}" + ("" if cw is None else
                                           ",class_weights=" + ",".join(f"{x:g}" for x in cw))
    got = evaluate(spec, z if logits else p, y, w if weighted else None, logits)
    assert rel_close(got, expected, RTOL), (got, expected)


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_multi_hinge_matches_sklearn(weighted: bool) -> None:
    _, z, y = multiclass()
    w = weights() if weighted else None
    expected = hinge_loss(y, z, labels=[0, 1, 2, 3], sample_weight=w)
    assert rel_close(evaluate("multi_hinge", z, y, w), expected, RTOL)


# --- gradients -----------------------------------------------------------------------------------

GRID_SPECS = ["gaussian_nll", "gaussian_nll:full=true,eps=0.01", "msle", "rmsle", "mape",
              "gamma", "tweedie", "tweedie:power=-0.5", "tweedie:power=-1", "tweedie:power=-3",
              "tweedie:power=1.2", "tweedie:power=3",
              "tweedie:power=1", "tweedie:power=2.5", "poisson_nll",
              "poisson_nll:log_input=false,full=true", "hinge", "squared_hinge",
              "bce:label_smoothing=0.1", "bce:label_smoothing=0.2,pos_weight=3",
              "cce:label_smoothing=0.1", "cce:label_smoothing=0.2,class_weights=1,2,0.5",
              "multi_hinge"]


@pytest.mark.parametrize("spec", GRID_SPECS)
def test_gradient_check_passes_on_the_grid(spec: str) -> None:
    loss, params = loss_and_params(spec)
    for logits in ([False, True] if loss.uses_probabilities else [False]):
        result = check_gradient(loss, params, logits=logits)
        assert result.passed, (spec, logits, result.worst)
        assert result.worst.points > 20


@pytest.mark.parametrize(("spec", "data"), [
    ("msle", positive_skewed), ("rmsle", positive_skewed), ("mape", positive_skewed),
    ("gamma", positive_skewed), ("tweedie:power=1.5", zero_inflated),
    ("tweedie:power=-1", any_sign), ("poisson_nll:log_input=false", counts)])
def test_regression_gradients_against_finite_differences(spec: str,
                                                         data: Callable[[], Any]) -> None:
    loss, params = loss_and_params(spec)
    pred, y = data()
    pred, y = pred[:400], y[:400]
    if spec == "mape":  # away from the kink at e = 0
        pred = np.where(np.abs(pred - y) < 1e-3, pred + 1e-2, pred)
    _, grads = per_sample(loss, params, pred, y)
    fd = central_diff(loss, params, pred, y)
    if loss.reduce == "sqrt":  # rmsle's g is half of d(log error^2)/dpred, before the 1/L
        fd = fd / 2.0
    np.testing.assert_allclose(grads, fd, rtol=1e-6, atol=1e-8)


def test_hinge_gradients_closed_form() -> None:
    z = np.array([-2.0, 0.5, 1.0, 3.0, -2.0, 0.5, -1.0, -3.0])
    y = np.array([1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0])
    values, grads = per_sample(CATALOG["hinge"], {}, z, y)
    assert values.tolist() == [3.0, 0.5, 0.0, 0.0, 0.0, 1.5, 0.0, 0.0]
    assert grads.tolist() == [-1.0, -1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0]  # 0 at the kink
    values, grads = per_sample(CATALOG["squared_hinge"], {}, z, y)
    assert values.tolist() == [9.0, 0.25, 0.0, 0.0, 0.0, 2.25, 0.0, 0.0]
    assert grads.tolist() == [-6.0, -1.0, 0.0, 0.0, 0.0, 3.0, 0.0, 0.0]


# --- chunking and threads -----------------------------------------------------------------------

INVARIANT: list[tuple[str, Callable[[], Any], bool]] = [
    ("msle", positive_skewed, False), ("rmsle", positive_skewed, False),
    ("mape", positive_skewed, False), ("gamma", positive_skewed, False),
    ("tweedie:power=1.5", zero_inflated, False), ("poisson_nll", counts, False),
    ("hinge", lambda: margins(), False), ("squared_hinge", lambda: margins(), False),
    ("bce:label_smoothing=0.1", lambda: binary_probs()[1:], True),
    ("cce:label_smoothing=0.1", lambda: multiclass()[1:], True),
    ("multi_hinge", lambda: multiclass()[1:], False),
]


@pytest.mark.parametrize(("spec", "data", "logits"), INVARIANT, ids=[s for s, _, _ in INVARIANT])
def test_chunk_and_thread_invariant(spec: str, data: Callable[[], Any], logits: bool) -> None:
    pred, y = data()
    if spec == "poisson_nll":
        pred = np.log(pred)
    w = weights()
    if pred.ndim == 2:  # --chunk-rows counts values: 7 is one or two rows of four classes
        pred, y, w = pred[:300], y[:300], w[:300]
    reports = []
    for chunk_rows in (7, 1000):
        for threads in (0, 2):
            data_: dict[str, Any] = {"target": y, "w": w}
            if pred.ndim == 2:
                data_.update({f"p_{k}": pred[:, k] for k in range(pred.shape[1])})
            else:
                data_["pred"] = pred
            reports.append(losscli.evaluate(
                data_, pred="p_*" if pred.ndim == 2 else "pred", target="target", weight="w",
                losses=[spec], logits=logits, chunk_rows=chunk_rows, threads=threads).losses[0])
    first = reports[0]
    for r in reports[1:]:
        assert rel_close(r.value, first.value, 1e-13), (spec, r.value, first.value)
        assert rel_close(r.gradient.mean, first.gradient.mean, 1e-12, 1e-15)
        assert rel_close(r.gradient.abs_max, first.gradient.abs_max, 1e-15)
        assert r.se is not None and first.se is not None
        assert rel_close(r.se, first.se, 1e-10)


# --- domains, parameters, messages ---------------------------------------------------------------


@pytest.mark.parametrize(("spec", "pred", "target", "column", "row"), [
    ("gamma", [1.0, 2.0, 3.0], [1.0, -2.0, 3.0], "y", 2),
    ("gamma", [1.0, 0.0, 3.0], [1.0, 2.0, 3.0], "pred", 2),
    ("msle", [1.0, 2.0, 3.0], [0.5, 1.0, -1.0], "y", 3),
    ("rmsle", [1.0, -1.5, 3.0], [0.5, 1.0, 1.0], "pred", 2),
    ("tweedie:power=1.5", [1.0, 2.0, 3.0], [0.0, -1.0, 3.0], "y", 2),
    ("tweedie:power=2", [1.0, 2.0, 3.0], [1.0, 0.0, 3.0], "y", 2),
    ("tweedie:power=-1", [1.0, 2.0, -3.0], [-1.0, -5.0, 3.0], "pred", 3),
    ("poisson_nll:log_input=false", [1.0, -2.0, 3.0], [1.0, 2.0, 3.0], "pred", 2),
    ("poisson_nll", [-1.0, 2.0, 3.0], [1.0, 2.0, -3.0], "y", 3),
])
def test_domain_errors_name_column_and_row(capfd: pytest.CaptureFixture[str], tmp_path: Path,
                                           spec: str, pred: list[float], target: list[float],
                                           column: str, row: int) -> None:
    path = tmp_path / "d.csv"
    path.write_text("y,pred\n" + "".join(f"{a},{b}\n" for a, b in zip(target, pred,
                                                                     strict=True)))
    assert_input_error(cli(capfd, "eval", path, "--pred", "pred", "--target", "y", "--loss",
                           spec), f"column '{column}' row {row}", spec.split(":")[0])


def test_tweedie_domain_is_sklearn_per_power() -> None:
    pred = np.array([1.0, 2.0])
    for power, y, ok in [(-1, [-1.0, 0.0], True), (0, [-1.0, 0.0], True), (1.5, [0.0, 1.0], True),
                         (1.5, [-1.0, 1.0], False), (2, [0.0, 1.0], False), (3, [0.5, 1.0], True)]:
        target = np.array(y)
        try:
            got: float | None = evaluate(f"tweedie:power={power}", pred, target)
        except InputError:
            got = None
        try:
            expected: float | None = mean_tweedie_deviance(target, pred, power=power)
        except ValueError:
            expected = None
        assert (got is not None) == ok == (expected is not None), (power, y)


@pytest.mark.parametrize(("spec", "needle"), [
    ("tweedie:power=0.5", "<= 0 or >= 1"),
    ("bce:label_smoothing=1.5", "in [0, 1]"),
    ("poisson_nll:log_input=maybe", "true or false"),
    ("bce:label_smoothing=0.1,pos_weight=balanced", "do not go together"),
    ("cce:label_smoothing=0.1,class_weights=balanced", "do not go together"),
])
def test_bad_parameters_are_usage_errors(spec: str, needle: str) -> None:
    with pytest.raises(UsageError, match=needle.replace("[", r"\[").replace("]", r"\]")):
        parse_spec(spec)


def test_flag_parameters_read_and_print_as_words() -> None:
    assert parse_spec("poisson_nll:log_input=false").spec == "poisson_nll:log_input=false"
    assert parse_spec("poisson_nll:log_input=true,full=1").spec == "poisson_nll:full=true"
    assert parse_spec("tweedie:power=1.5").spec == "tweedie"


def test_margins_against_bce_suggest_hinge(capfd: pytest.CaptureFixture[str],
                                           tmp_path: Path) -> None:
    """SVM-style decision values on a 0/1 target: the messages name --logits and hinge, and
    say that log loss needs calibrated probabilities."""
    z, y = margins()
    path = tmp_path / "svm.csv"
    path.write_text("y,score\n" + "".join(f"{int(a)},{float(b)!r}\n" for a, b in zip(y, z,
                                                                           strict=True)))
    detected = assert_input_error(cli(capfd, "eval", path, "--pred", "score", "--target", "y"),
                                  "--logits", "--loss hinge", "calibrat")
    asked = assert_input_error(cli(capfd, "eval", path, "--pred", "score", "--target", "y",
                                   "--loss", "bce"), "--logits", "--loss hinge", "calibrat")
    assert "row" in asked and detected
    rc, out, err = cli(capfd, "eval", path, "--pred", "score", "--target", "y", "--loss",
                       "hinge", "--format", "json")
    assert rc == 0, err
    assert rel_close(json.loads(out)["losses"][0]["value"], hinge_loss(y, z), RTOL)
    # probabilities just outside [0, 1] (rounding) get no hinge suggestion
    path.write_text("y,p\n1,1.0000001\n0,0.2\n")
    err = assert_input_error(cli(capfd, "eval", path, "--pred", "p", "--target", "y",
                                 "--loss", "bce"), "--logits")
    assert "hinge" not in err


def test_losses_command_names_every_reference(capfd: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = cli(capfd, "losses", "--format", "json")
    assert rc == 0
    doc = {d["name"]: d for d in json.loads(out)["losses"]}
    assert set(doc) == set(CATALOG)
    assert all(d.get("reference") for d in doc.values())
    assert "mean_tweedie_deviance" in doc["tweedie"]["reference"]
    assert "PoissonNLLLoss" in doc["poisson_nll"]["reference"]
    assert "poisson = 2 (poisson_nll:log_input=false + y log y - y)" in doc["poisson_nll"][
        "formula"]


def test_catalog_prints_flags_and_references_at_80_columns() -> None:
    from rich.console import Console

    from losscli.render.catalog import print_catalog

    console = Console(width=80, record=True)
    print_catalog(list(CATALOG.values()), EPS, console)
    text = console.export_text()
    assert "log_input=true (true or false)" in text
    assert "full=false (true or false)" in text
    assert "as        torch PoissonNLLLoss" in text
    assert max(len(line) for line in text.splitlines()) <= 80


# --- gaussian_nll: a predicted-variance column -------------------------------------------------


def gaussian() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean, variance, target): heteroscedastic, with a few variances below torch's 1e-6 clamp."""
    rng = np.random.default_rng(15)
    mu = rng.normal(0.0, 2.0, N)
    var = rng.uniform(0.2, 4.0, N)
    var[:7] = rng.uniform(1e-9, 1e-6, 7)
    return mu, var, mu + rng.normal(0.0, 1.0, N) * np.sqrt(var)


def gaussian_nll_ref(m: float, v: float, y: float, full: bool, eps: float = 1e-6) -> float:
    """torch's GaussianNLLLoss per row: (log max(v, eps) + (m - y)^2 / max(v, eps)) / 2."""
    v = max(v, eps)
    return 0.5 * (math.log(v) + (m - y) ** 2 / v) + (0.5 * math.log(2 * math.pi) if full else 0)


def evaluate_gaussian(spec: str, w: np.ndarray | None = None,
                      **kw: Any) -> losscli.engine.LossResult:
    mu, var, y = gaussian()
    data: dict[str, Any] = {"y": y, "mu": mu, "v": var}
    if w is not None:
        data["w"] = w
    return losscli.evaluate(data, pred="mu", target="y", var="v", losses=[spec],
                            weight=None if w is None else "w", **kw).losses[0]


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("full", [False, True], ids=["partial", "full"])
def test_gaussian_nll_matches_torch_formula(full: bool, weighted: bool) -> None:
    mu, var, y = gaussian()
    w = weights() if weighted else None
    expected = wmean([gaussian_nll_ref(m, v, t, full) for m, v, t in zip(
        mu.tolist(), var.tolist(), y.tolist(), strict=True)], w)
    got = evaluate_gaussian("gaussian_nll:full=true" if full else "gaussian_nll", w)
    assert rel_close(got.value, expected, RTOL), (got.value, expected)


def test_gaussian_nll_gradients_for_mean_and_variance() -> None:
    """The per-row gradients against central differences in the mean and in the variance, and
    the reported statistics of both against the per-row values."""
    mu, var, y = gaussian()
    loss, params = loss_and_params("gaussian_nll")
    from losscli.losses import Batch

    def values(m: np.ndarray, v: np.ndarray) -> np.ndarray:
        return loss.compute(Batch(m, y, None, var=v), params).values

    c = loss.compute(Batch(mu, y, None, var=var), params)
    hm, hv = 1e-6 * np.maximum(1.0, np.abs(mu)), 1e-4 * var
    fd_mean = (values(mu + hm, var) - values(mu - hm, var)) / (2 * hm)
    inside = var > 1e-6  # at the clamp the value is flat in v; torch's gradient is not
    fd_var = (values(mu, var + hv) - values(mu, var - hv)) / (2 * hv)
    np.testing.assert_allclose(c.grads, fd_mean, rtol=1e-6, atol=1e-8)
    assert c.var_grads is not None
    np.testing.assert_allclose(c.var_grads[inside], fd_var[inside], rtol=1e-6, atol=1e-8)
    r = evaluate_gaussian("gaussian_nll")
    assert r.var_gradient is not None
    assert rel_close(r.var_gradient.mean, math.fsum(c.var_grads.tolist()) / N, 1e-12)
    assert r.var_gradient.abs_max == float(np.abs(c.var_grads).max())
    assert rel_close(r.gradient.mean, math.fsum(c.grads.tolist()) / N, 1e-12)
    p99 = float(np.quantile(np.abs(c.var_grads), 0.99, method="inverted_cdf"))
    assert rel_close(r.var_gradient.p99, p99, 0.01)


def test_gaussian_nll_chunk_and_thread_invariant() -> None:
    w = weights()
    results = [evaluate_gaussian("gaussian_nll", w, chunk_rows=rows, threads=threads)
               for rows in (7, 1000) for threads in (0, 2)]
    for r in results[1:]:
        assert r.value == results[0].value
        assert r.var_gradient == results[0].var_gradient
        assert r.gradient == results[0].gradient


def test_gaussian_nll_cli(capfd: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    mu, var, y = gaussian()
    path = tmp_path / "g.csv"
    path.write_text("y,mu,v\n" + "".join(f"{a!r},{b!r},{c!r}\n" for a, b, c in zip(
        y.tolist(), mu.tolist(), var.tolist(), strict=True)))
    rc, out, err = cli(capfd, "eval", path, "--pred", "mu", "--target", "y", "--var", "v",
                       "--loss", "gaussian_nll", "--format", "json")
    assert rc == 0, err
    doc = json.loads(out)
    assert doc["columns"]["var"] == "v"
    loss = doc["losses"][0]
    expected = wmean([gaussian_nll_ref(m, v, t, False) for m, v, t in zip(
        mu.tolist(), var.tolist(), y.tolist(), strict=True)], None)
    assert rel_close(loss["value"], expected, RTOL)
    assert set(loss["var_gradient"]) == set(loss["gradient"])
    rc, out, _ = cli(capfd, "eval", path, "--pred", "mu", "--target", "y", "--var", "v",
                     "--loss", "gaussian_nll")
    assert rc == 0 and "gradient w.r.t. the variance" in out
    assert_input_error(cli(capfd, "eval", path, "--pred", "mu", "--target", "y", "--loss",
                           "gaussian_nll"), "--var")
    assert_input_error(cli(capfd, "eval", path, "--pred", "mu", "--target", "y", "--var", "v"),
                       "--var", "gaussian_nll")
    assert_input_error(cli(capfd, "compare", path, path, "--pred", "mu", "--target", "y",
                           "--loss", "gaussian_nll"), "compare")
    path.write_text("y,mu,v\n1,1,1\n2,2,0.5\n3,3,0\n4,4,-1\n")
    assert_input_error(cli(capfd, "eval", path, "--pred", "mu", "--target", "y", "--var", "v",
                           "--loss", "gaussian_nll"), "column 'v' row 3", "variance")
    path.write_text("y,mu,v\n1,1,1\n2,2,\n3,3,2\n")
    rc, out, err = cli(capfd, "eval", path, "--pred", "mu", "--target", "y", "--var", "v",
                       "--loss", "gaussian_nll", "--nan", "drop", "--format", "json")
    assert rc == 0, err
    doc = json.loads(out)
    assert doc["source"]["rows_dropped"] == 1
    assert rel_close(doc["losses"][0]["value"], (0.0 + 0.5 * math.log(2.0)) / 2, RTOL)


# --- soft targets: kl_div and soft-label cce -----------------------------------------------------


@functools.cache
def soft_data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(n, C) logits, (n, C) soft targets (a teacher's probabilities, some one-hot rows with
    exact zeros), and the same as probabilities."""
    rng = np.random.default_rng(16)
    z = rng.normal(0.0, 2.0, (N, 4))
    q = rng.dirichlet(np.full(4, 0.7), N)
    q[:50] = np.eye(4)[rng.integers(0, 4, 50)]
    zmax = z.max(axis=1, keepdims=True)
    p = np.exp(z - zmax) / np.exp(z - zmax).sum(axis=1, keepdims=True)
    return z, q, p


def soft_frame(pred: np.ndarray, q: np.ndarray, w: np.ndarray | None = None,
               order: list[int] | None = None) -> dict[str, Any]:
    names = "abcd"
    data: dict[str, Any] = {f"p_{names[k]}": pred[:, k] for k in range(pred.shape[1])}
    for k in order or range(q.shape[1]):
        data[f"q_{names[k]}"] = q[:, k]
    if w is not None:
        data["w"] = w
    return data


def soft_rows(logp: np.ndarray, q: np.ndarray, kind: str, e: float = 0.0) -> list[float]:
    """torch's per-row soft-label losses from log-probabilities: cross_entropy with probability
    targets (and label_smoothing e: q -> (1 - e) q + e / C), KLDivLoss's sum q (log q - log p)
    with 0 log 0 = 0."""
    out = []
    c = q.shape[1]
    for lp, qs in zip(logp.tolist(), q.tolist(), strict=True):
        if kind == "cce":
            out.append(-math.fsum(((1 - e) * a + e / c) * b for a, b in zip(qs, lp,
                                                                             strict=True)))
        else:
            out.append(math.fsum(a * (math.log(a) - b) if a > 0 else 0.0
                                 for a, b in zip(qs, lp, strict=True)))
    return out


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("logits", [False, True], ids=["probs", "logits"])
@pytest.mark.parametrize(("spec", "kind", "e"), [("cce", "cce", 0.0), ("kl_div", "kl", 0.0),
                                                 ("cce:label_smoothing=0.2", "cce", 0.2)])
def test_soft_targets_match_torch_formula(spec: str, kind: str, e: float, logits: bool,
                                          weighted: bool) -> None:
    z, q, p = soft_data()
    w = weights() if weighted else None
    logp = z - z.max(axis=1, keepdims=True)
    logp = logp - np.log(np.exp(logp).sum(axis=1, keepdims=True))
    expected = wmean(soft_rows(logp if logits else np.log(p), q, kind, e), w)
    report = losscli.evaluate(soft_frame(z if logits else p, q, w), pred="p_*", target="q_*",
                              weight=None if w is None else "w", losses=[spec], logits=logits)
    assert rel_close(report.losses[0].value, expected, RTOL), (report.losses[0].value, expected)


def test_soft_targets_follow_the_prediction_classes_and_chunking() -> None:
    """Target columns pair with prediction columns by their labels, not their file order; the
    values do not depend on chunks or threads; kl_div = cce - the targets' mean entropy."""
    z, q, _ = soft_data()
    w = weights()
    values = []
    for order in ([0, 1, 2, 3], [3, 1, 0, 2]):
        for rows, threads in ((7, 0), (1000, 2)):
            r = losscli.evaluate(soft_frame(z[:400], q[:400], w[:400], order), pred="p_*",
                                 target="q_*", weight="w", losses=["cce", "kl_div"],
                                 logits=True, chunk_rows=rows, threads=threads)
            values.append((r.losses[0].value, r.losses[1].value, r.losses[1].gradient))
    assert all(v == values[0] for v in values[1:])
    ent = [-math.fsum(a * math.log(a) for a in row if a > 0) for row in q[:400].tolist()]
    assert rel_close(values[0][1], values[0][0] - wmean(ent, w[:400]), 1e-12)


def test_soft_target_gradients_against_finite_differences() -> None:
    z, q, p = soft_data()
    for spec in ("cce", "kl_div", "cce:label_smoothing=0.1"):
        loss, params = loss_and_params(spec)
        for logits, pred in ((True, z[:200].T.copy()), (False, p[:200].T.copy())):
            from losscli.losses import Batch

            def values(x: np.ndarray, loss: Any = loss, params: Any = params,
                       logits: bool = logits) -> np.ndarray:
                b = Batch(x, np.argmax(q[:200], axis=1).astype(float), None, logits,
                          soft=q[:200].T.copy())
                return loss.compute(b, params).values

            c = loss.compute(Batch(pred, np.argmax(q[:200], axis=1).astype(float), None,
                                   logits, soft=q[:200].T.copy()), params)
            fd = np.empty_like(pred)
            for k in range(pred.shape[0]):
                h = 1e-6 * (np.maximum(1.0, np.abs(pred[k])) if logits else pred[k])
                up, down = pred.copy(), pred.copy()
                up[k] += h
                down[k] -= h
                fd[k] = (values(up) - values(down)) / (2 * h)
            np.testing.assert_allclose(c.grads, np.sqrt((fd * fd).sum(axis=0)), rtol=1e-6,
                                       atol=1e-8, err_msg=f"{spec} logits={logits}")


def test_soft_target_errors(capfd: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "s.csv"

    def run_(*args: str) -> tuple[int, str, str]:
        return cli(capfd, "eval", path, "--pred", "p_*", "--target", "q_*", *args)

    path.write_text("p_a,p_b,q_a,q_b\n0.2,0.8,0.3,0.7\n0.6,0.4,1.2,-0.2\n")
    assert_input_error(run_("--loss", "cce"), "column 'q_a' row 2", "[0, 1]")
    path.write_text("p_a,p_b,q_a,q_b\n0.2,0.8,0.3,0.7\n0.6,0.4,0.5,0.4\n")
    assert_input_error(run_("--loss", "kl_div"), "row 2", "sum to 1", "q_a,q_b")
    path.write_text("p_a,p_b,q_a,q_b\n0.2,0.8,0.3,0.7\n")
    assert_input_error(run_("--loss", "multi_hinge"), "class labels")
    assert_input_error(run_("--loss", "cce:class_weights=1,2"), "class weights")
    assert_input_error(run_(), "--loss cce or kl_div")
    assert_input_error(cli(capfd, "eval", path, "--pred", "p_a,p_b", "--target", "q_a",
                           "--loss", "kl_div"), "column 'q_a' row 1")
    assert_input_error(cli(capfd, "compare", path, path, "--pred", "p_*", "--target", "q_*",
                           "--loss", "cce"), "compare")
    path.write_text("p_a,p_b,p_c,q_a,q_b\n0.2,0.7,0.1,0.3,0.7\n")
    assert_input_error(run_("--loss", "cce"), "3", "2")


# --- multilabel: a binary loss per label, averaged over the labels -------------------------------


@functools.cache
def multilabel_data() -> tuple[np.ndarray, np.ndarray]:
    """(n, L) logits and 0/1 targets of three labels of different prevalence."""
    rng = np.random.default_rng(17)
    z = rng.normal(0.0, 2.0, (N, 3))
    y = (rng.random((N, 3)) < 1.0 / (1.0 + np.exp(-(z + rng.normal(0.0, 1.5, (N, 3)))))) * 1.0
    return z, y


def multilabel_frame(pred: np.ndarray, y: np.ndarray, w: np.ndarray | None = None,
                     order: tuple[int, ...] = (0, 1, 2)) -> dict[str, Any]:
    names = ("cat", "dog", "owl")
    data: dict[str, Any] = {f"p_{names[k]}": pred[:, k] for k in range(3)}
    data.update({f"y_{names[k]}": y[:, k] for k in order})
    if w is not None:
        data["w"] = w
    return data


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("logits", [False, True], ids=["probs", "logits"])
@pytest.mark.parametrize(("spec", "k"), [("bce", 1.0), ("bce:pos_weight=3", 3.0)])
def test_multilabel_bce_matches_torch_formula(spec: str, k: float, logits: bool,
                                              weighted: bool) -> None:
    """BCEWithLogitsLoss on (n, L): the mean over rows of each row's mean over labels; and
    each label's own mean."""
    z, y = multilabel_data()
    w = weights() if weighted else None
    p = 1.0 / (1.0 + np.exp(-z))
    per = [[-(k * t * log_sigmoid(a) + (1 - t) * log_sigmoid(-a)) for a, t in zip(zr, yr,
                                                                                 strict=True)]
           for zr, yr in zip(z.tolist(), y.tolist(), strict=True)]
    expected = wmean([math.fsum(row) / 3 for row in per], w)
    r = losscli.evaluate(multilabel_frame(z if logits else p, y, w), pred="p_*",
                         target="y_*", weight=None if w is None else "w", task="multilabel",
                         losses=[spec], logits=logits)
    got = r.losses[0]
    assert r.task == "multilabel"
    tol = RTOL if logits else 1e-9  # sigmoid then log: the probabilities carry rounding
    assert rel_close(got.value, expected, tol), (got.value, expected)
    assert got.per_label is not None and list(got.per_label) == ["cat", "dog", "owl"]
    for j, name in enumerate(("cat", "dog", "owl")):
        assert rel_close(got.per_label[name], wmean([row[j] for row in per], w), tol)
    assert rel_close(math.fsum(got.per_label.values()) / 3, got.value, 1e-12)


def test_multilabel_pairs_labels_gradients_and_chunks() -> None:
    z, y = multilabel_data()
    w = weights()[:300]
    runs = [losscli.evaluate(multilabel_frame(z[:300], y[:300], w, order), pred="p_*",
                             target="y_*", weight="w", task="multilabel", logits=True,
                             chunk_rows=rows, threads=threads).losses
            for order in ((0, 1, 2), (2, 0, 1)) for rows, threads in ((7, 0), (1000, 2))]
    assert [x.spec for x in runs[0]] == ["bce", "focal"]
    for r in runs[1:]:
        assert [(x.value, x.per_label, x.gradient) for x in r] == [
            (x.value, x.per_label, x.gradient) for x in runs[0]]
    # per-row gradient: the L2 norm of (sigmoid(z_k) - y_k) / L over the labels
    s = 1.0 / (1.0 + np.exp(-z[:300]))
    g = np.sqrt((((s - y[:300]) / 3) ** 2).sum(axis=1))
    assert rel_close(runs[0][0].gradient.abs_max, float(g.max()), 1e-12)
    assert rel_close(runs[0][0].gradient.mean, math.fsum(g.tolist()) / 300, 1e-12)


def test_multilabel_errors(capfd: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_text("p_a,p_b,y_a,y_b\n0.2,0.8,0,1\n0.6,0.4,1,2\n")

    def run_(*args: str) -> tuple[int, str, str]:
        return cli(capfd, "eval", path, "--pred", "p_*", "--target", "y_*", "--task",
                   "multilabel", *args)

    assert_input_error(run_(), "column 'y_b' row 2", "0 or 1")
    path.write_text("p_a,p_b,y_a,y_b\n0.2,1.8,0,1\n")
    assert_input_error(run_(), "[0, 1]", "--logits")
    path.write_text("p_a,p_b,y_a,y_b\n0.2,0.8,0,1\n")
    assert_input_error(run_("--loss", "mse"), "binary")
    assert_input_error(run_("--loss", "bce:pos_weight=balanced"), "balanced")
    assert_input_error(cli(capfd, "eval", path, "--pred", "p_*", "--target", "y_a", "--task",
                           "multilabel"), "one target column per label")
    assert_input_error(cli(capfd, "compare", path, path, "--pred", "p_*", "--target", "y_*",
                           "--task", "multilabel"), "--task")
    path.write_text("p_a,p_b,p_c,y_a,y_b,y_c\n0.2,0.8,0.5,0,1,1\n0.6,0.4,0.1,1,0,0\n")
    rc, out, err = run_()
    assert rc == 0, err
    assert "bce per label: a " in out and "target y_a,y_b,y_c" in out
