"""Class weights with PyTorch's semantics: ``bce:pos_weight``, ``cce:class_weights``,
``focal:alpha`` and their ``balanced`` forms, against formulas written from PyTorch's
documentation and scikit-learn's ``log_loss`` / ``compute_class_weight``; gradient statistics
of the weighted per-row loss; chunk and thread invariance; the comma-list spec syntax."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _helpers.tester import sweep
from conftest import ALPHA, check_gradient_stats, rel_close
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from sklearn.utils.class_weight import compute_class_weight

import losscli
from losscli.cli import run
from losscli.engine import Report
from losscli.errors import InputError, UsageError
from losscli.spec import parse_spec

N = 4000
RTOL = 1e-12


# --- data: imbalanced real model outputs ----------------------------------------------------------


@pytest.fixture(scope="module")
def binary() -> dict[str, np.ndarray]:
    X, y = make_classification(n_samples=N, n_features=8, weights=[0.9], flip_y=0.02,
                               random_state=11)
    model = LogisticRegression(max_iter=1000).fit(X[: N // 2], y[: N // 2])
    w = np.random.default_rng(11).uniform(0.1, 3.0, N)
    return {"p": model.predict_proba(X)[:, 1], "z": model.decision_function(X),
            "y": y.astype(float), "w": w}


@pytest.fixture(scope="module")
def multi() -> dict[str, np.ndarray]:
    X, y = make_classification(n_samples=N, n_features=8, n_informative=6, n_classes=4,
                               weights=[0.6, 0.25, 0.1, 0.05], random_state=12)
    model = LogisticRegression(max_iter=1000).fit(X[: N // 2], y[: N // 2])
    w = np.random.default_rng(12).uniform(0.1, 3.0, N)
    return {"P": model.predict_proba(X), "Z": model.decision_function(X), "y": y.astype(float),
            "w": w}


def ev(cols: dict[str, Any], spec: str, **kw: Any) -> Report:
    return losscli.evaluate(cols, pred=kw.pop("pred", "pred"), target="target",
                            weight=kw.pop("weight", None), losses=[spec], **kw)


def binary_cols(d: dict[str, np.ndarray], logits: bool, weighted: bool) -> dict[str, Any]:
    cols = {"pred": d["z"] if logits else d["p"], "target": d["y"]}
    return {**cols, "w": d["w"]} if weighted else cols


def multi_cols(d: dict[str, np.ndarray], logits: bool, weighted: bool) -> dict[str, Any]:
    pred = d["Z"] if logits else d["P"]
    cols: dict[str, Any] = {f"s{k}": pred[:, k] for k in range(pred.shape[1])}
    cols["target"] = d["y"]
    return {**cols, "w": d["w"]} if weighted else cols


def fsum_mean(values: np.ndarray, w: np.ndarray) -> float:
    return math.fsum((values * w).tolist()) / math.fsum(w.tolist())


# --- references written from PyTorch's documentation -------------------------------------------


def log_sigmoid(z: np.ndarray) -> np.ndarray:
    return -np.logaddexp(0.0, -z)


def bce_pos_weight_ref(pred: np.ndarray, y: np.ndarray, k: float,
                       logits: bool) -> tuple[np.ndarray, np.ndarray]:
    """BCEWithLogitsLoss(pos_weight=k) per row: l = -(k y log p + (1 - y) log(1 - p)), and
    d l / d pred (the logit, or the probability)."""
    if logits:
        log_p, log_q = log_sigmoid(pred), log_sigmoid(-pred)
        p = np.exp(log_p)
        grad = np.where(y == 1.0, k * (p - 1.0), p)
    else:
        eps = np.finfo(np.float64).eps
        p = np.clip(pred, eps, 1.0 - eps)
        log_p, log_q = np.log(p), np.log1p(-p)
        grad = np.where(y == 1.0, -k / p, 1.0 / (1.0 - p))
    return -(k * y * log_p + (1.0 - y) * log_q), grad


def cce_weight_ref(pred: np.ndarray, y: np.ndarray, c: np.ndarray,
                   logits: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CrossEntropyLoss(weight=c) per row: (c_y l_i, c_y, |d (c_y l_i) / d pred_i|_2)."""
    rows, yi = np.arange(y.size), y.astype(int)
    if logits:
        lse = np.logaddexp.reduce(pred, axis=1)
        soft = np.exp(pred - lse[:, None])
        soft[rows, yi] -= 1.0
        base, gnorm = lse - pred[rows, yi], np.sqrt((soft * soft).sum(axis=1))
    else:
        base, gnorm = -np.log(pred[rows, yi]), 1.0 / pred[rows, yi]
    return c[yi] * base, c[yi], c[yi] * gnorm


def focal_ref(pred: np.ndarray, y: np.ndarray, gamma: float, alpha: float,
              logits: bool) -> tuple[np.ndarray, np.ndarray]:
    """torchvision's sigmoid_focal_loss per row and its derivative (chain rule through p_t)."""
    p = np.exp(log_sigmoid(pred)) if logits else pred
    pt = np.where(y == 1.0, p, 1.0 - p)
    at = np.where(y == 1.0, alpha, 1.0 - alpha)
    s = 2.0 * y - 1.0
    value = -at * (1.0 - pt) ** gamma * np.log(pt)
    dpt = at * (gamma * (1.0 - pt) ** (gamma - 1.0) * np.log(pt) - (1.0 - pt) ** gamma / pt)
    return value, s * dpt * (pt * (1.0 - pt) if logits else 1.0)


def thresholds(g: np.ndarray) -> tuple[float, float, float]:
    """(vanish, explode, clip) thresholds inside the range of |g|."""
    a = np.abs(g)
    return tuple(float(np.quantile(a, q)) for q in (0.1, 0.95, 0.5))  # type: ignore[return-value]


# --- bce:pos_weight -------------------------------------------------------------------------------


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("logits", [False, True], ids=["probabilities", "logits"])
@pytest.mark.parametrize("k", [0.3, 9.0])
def test_bce_pos_weight_matches_pytorch_definition(binary: dict[str, np.ndarray], k: float,
                                                   logits: bool, weighted: bool) -> None:
    cols = binary_cols(binary, logits, weighted)
    w = binary["w"] if weighted else np.ones(N)
    vt, et, ct = thresholds(bce_pos_weight_ref(cols["pred"], binary["y"], k, logits)[1])
    r = ev(cols, f"bce:pos_weight={k:g}", weight="w" if weighted else None, logits=logits,
           vanish_tol=vt, explode_tol=et, grad_clip=ct).losses[0]
    values, grads = bce_pos_weight_ref(cols["pred"], binary["y"], k, logits)
    assert rel_close(r.value, fsum_mean(values, w), RTOL), r.value
    check_gradient_stats(r.gradient, grads, binary["w"] if weighted else None, vt, et, ct)
    if not logits:
        # scikit-learn: log loss with sample weights w a_y, rescaled to the denominator sum w
        a = np.where(binary["y"] == 1.0, k, 1.0)
        sk = log_loss(binary["y"], cols["pred"], sample_weight=w * a) * (
            math.fsum((w * a).tolist()) / math.fsum(w.tolist()))
        assert rel_close(r.value, sk, 1e-10), (r.value, sk)


def test_pos_weight_one_is_plain_bce(binary: dict[str, np.ndarray]) -> None:
    cols = binary_cols(binary, False, True)
    a = ev(cols, "bce:pos_weight=1", weight="w").losses[0]
    b = ev(cols, "bce", weight="w").losses[0]
    assert a.spec == "bce" and a.value == b.value


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("logits", [False, True], ids=["probabilities", "logits"])
def test_pos_weight_balanced_is_n_neg_over_n_pos(binary: dict[str, np.ndarray], logits: bool,
                                                 weighted: bool) -> None:
    y = binary["y"]
    cw = compute_class_weight("balanced", classes=np.array([0.0, 1.0]), y=y)
    k = cw[1] / cw[0]  # = n_neg / n_pos
    assert k == pytest.approx(np.count_nonzero(y == 0) / np.count_nonzero(y == 1), rel=1e-15)
    cols = binary_cols(binary, logits, weighted)
    w = binary["w"] if weighted else np.ones(N)
    values, grads = bce_pos_weight_ref(cols["pred"], y, k, logits)
    vt, et, ct = thresholds(grads)
    report = ev(cols, "bce:pos_weight=balanced", weight="w" if weighted else None,
                logits=logits, vanish_tol=vt, explode_tol=et, grad_clip=ct)
    r = report.losses[0]
    assert r.spec == "bce:pos_weight=balanced"
    assert r.balanced is not None and r.balanced["param"] == "pos_weight"
    assert rel_close(r.balanced["value"], k, 1e-15)
    assert r.balanced["class_counts"] == [int(np.count_nonzero(y == 0)),
                                          int(np.count_nonzero(y == 1))]
    assert rel_close(r.value, fsum_mean(values, w), RTOL), r.value
    # measured in the same pass: the moments are exact, the fractions within the histogram's
    # bucket accuracy around each threshold
    check_gradient_stats(r.gradient, grads, binary["w"] if weighted else None, vt, et, ct,
                         exact_fractions=False)
    doc = report.to_dict()["losses"][0]
    assert doc["balanced"]["value"] == r.balanced["value"]
    assert "n_neg / n_pos" in doc["balanced"]["text"]


def test_pos_weight_balanced_without_positives_is_an_input_error() -> None:
    cols = {"pred": np.array([0.2, 0.3, 0.4]), "target": np.zeros(3)}
    with pytest.raises(InputError, match="no positive row"):
        ev(cols, "bce:pos_weight=balanced")


# --- focal:alpha=balanced ------------------------------------------------------------------------


@pytest.mark.parametrize("logits", [False, True], ids=["probabilities", "logits"])
def test_focal_alpha_balanced_is_n_neg_over_n(binary: dict[str, np.ndarray], logits: bool) -> None:
    y = binary["y"]
    alpha = float(np.count_nonzero(y == 0) / N)
    cols = binary_cols(binary, logits, True)
    values, grads = focal_ref(cols["pred"], y, 2.0, alpha, logits)
    vt, et, ct = thresholds(grads)
    r = ev(cols, "focal:alpha=balanced", weight="w", logits=logits, vanish_tol=vt,
           explode_tol=et, grad_clip=ct).losses[0]
    assert r.balanced is not None and rel_close(r.balanced["value"], alpha, 1e-15)
    assert rel_close(r.value, fsum_mean(values, binary["w"]), RTOL)
    check_gradient_stats(r.gradient, grads, binary["w"], vt, et, ct, exact_fractions=False)
    explicit = ev(cols, f"focal:alpha={alpha!r}", weight="w", logits=logits).losses[0]
    assert rel_close(explicit.value, r.value, 1e-13)


# --- cce:class_weights ----------------------------------------------------------------------------


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("logits", [False, True], ids=["probabilities", "logits"])
def test_cce_class_weights_match_pytorch_definition(multi: dict[str, np.ndarray], logits: bool,
                                                    weighted: bool) -> None:
    c = np.array([0.5, 1.0, 2.5, 4.0])
    cols = multi_cols(multi, logits, weighted)
    pred = multi["Z"] if logits else multi["P"]
    w = multi["w"] if weighted else np.ones(N)
    values, cy, gnorm = cce_weight_ref(pred, multi["y"], c, logits)
    vt, et, ct = thresholds(gnorm)
    r = ev(cols, "cce:class_weights=0.5,1,2.5,4", pred="s*", weight="w" if weighted else None,
           logits=logits, vanish_tol=vt, explode_tol=et, grad_clip=ct).losses[0]
    # reduced by sum(w c_y l) / sum(w c_y), as CrossEntropyLoss(weight=c, reduction="mean")
    expected = math.fsum((w * values).tolist()) / math.fsum((w * cy).tolist())
    assert rel_close(r.value, expected, RTOL), (r.value, expected)
    if not logits:
        sk = log_loss(multi["y"], pred, sample_weight=w * cy, labels=[0, 1, 2, 3])
        assert rel_close(r.value, sk, 1e-10), (r.value, sk)
    check_weighted_cce_gradient(r.gradient, gnorm, w, cy, (vt, et, ct), exact_fractions=True)


def check_weighted_cce_gradient(stats: Any, gnorm: np.ndarray, w: np.ndarray, cy: np.ndarray,
                                tols: tuple[float, float, float], exact_fractions: bool) -> None:
    """Row statistics of g' = c_y g; the norm of the reduced loss's gradient divides by the
    class-weighted total sum(w c_y)."""
    a = np.abs(gnorm)
    assert rel_close(stats.abs_mean, math.fsum(a.tolist()) / N, RTOL)
    assert rel_close(stats.mean, math.fsum(gnorm.tolist()) / N, RTOL)
    assert rel_close(stats.std, float(np.std(gnorm)), 1e-10)
    assert rel_close(stats.rms, math.sqrt(math.fsum((gnorm * gnorm).tolist()) / N), 1e-10)
    assert rel_close(stats.abs_max, float(a.max()), RTOL)
    assert rel_close(stats.norm, math.sqrt(math.fsum(((w * gnorm) ** 2).tolist()))
                     / math.fsum((w * cy).tolist()), RTOL)
    for key, q in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99)):
        assert rel_close(getattr(stats, key), float(np.quantile(a, q, method="inverted_cdf")),
                         ALPHA)
    vt, et, ct = tols
    for got, pick, t in ((stats.vanishing_fraction, lambda t: a <= t, vt),
                         (stats.exploding_fraction, lambda t: a >= t, et),
                         (stats.clipped_fraction, lambda t: a > t, ct)):
        if exact_fractions:
            assert got == np.count_nonzero(pick(t)) / N
        else:
            bounds = sorted(np.count_nonzero(pick(t * f)) / N for f in (1 - 0.005, 1 + 0.005))
            assert bounds[0] <= got <= bounds[1], (got, bounds)


@pytest.mark.parametrize("logits", [False, True], ids=["probabilities", "logits"])
def test_cce_class_weights_balanced_matches_compute_class_weight(
        multi: dict[str, np.ndarray], logits: bool) -> None:
    y = multi["y"]
    c = compute_class_weight("balanced", classes=np.unique(y), y=y)
    cols = multi_cols(multi, logits, True)
    pred = multi["Z"] if logits else multi["P"]
    values, cy, gnorm = cce_weight_ref(pred, y, c, logits)
    vt, et, ct = thresholds(gnorm)
    r = ev(cols, "cce:class_weights=balanced", pred="s*", weight="w", logits=logits,
           vanish_tol=vt, explode_tol=et, grad_clip=ct).losses[0]
    assert r.balanced is not None
    np.testing.assert_allclose(r.balanced["value"], c, rtol=1e-15)
    w = multi["w"]
    expected = math.fsum((w * values).tolist()) / math.fsum((w * cy).tolist())
    assert rel_close(r.value, expected, RTOL)
    check_weighted_cce_gradient(r.gradient, gnorm, w, cy, (vt, et, ct), exact_fractions=False)
    if not logits:
        sk = log_loss(y, pred, sample_weight=w * cy, labels=[0, 1, 2, 3])
        assert rel_close(r.value, sk, 1e-10)


def test_balanced_class_weights_skip_absent_classes() -> None:
    """k counts the classes present (compute_class_weight over np.unique(y))."""
    rng = np.random.default_rng(3)
    P = rng.dirichlet(np.ones(3), size=50)
    y = np.array([0.0] * 40 + [2.0] * 10)
    cols = {"a": P[:, 0], "b": P[:, 1], "c": P[:, 2], "target": y}
    r = ev(cols, "cce:class_weights=balanced", pred="a,b,c").losses[0]
    c = compute_class_weight("balanced", classes=np.array([0.0, 2.0]), y=y)
    assert r.balanced is not None
    np.testing.assert_allclose(r.balanced["value"], [c[0], 0.0, c[1]], rtol=1e-15)
    assert r.balanced["class_counts"] == [40, 0, 10]


def test_class_weight_count_must_match_the_classes(multi: dict[str, np.ndarray]) -> None:
    with pytest.raises(UsageError, match=r"3 class weight.*4 classes"):
        ev(multi_cols(multi, False, False), "cce:class_weights=1,2,3", pred="s*")


# --- invariance --------------------------------------------------------------------------------


BALANCE_SPECS = ["bce:pos_weight=balanced", "bce:pos_weight=7.5", "focal:alpha=balanced",
                 "cce:class_weights=balanced", "cce:class_weights=0.5,1,2.5,4"]


@pytest.mark.parametrize("spec", BALANCE_SPECS)
def test_chunk_thread_and_input_invariance(binary: dict[str, np.ndarray],
                                           multi: dict[str, np.ndarray], spec: str,
                                           tmp_path: Path) -> None:
    if spec.startswith("cce"):
        cols, pred = multi_cols(multi, True, True), "s*"
    else:
        cols, pred = binary_cols(binary, True, True), "pred"
    part = {k: v[:1500] for k, v in cols.items()}
    runs = sweep("eval", part, tmp_path, chunks=(1 << 17, 1000, 333), pred=pred,
          target="target", weight="w", losses=[spec], logits=True)
    assert ("balanced" in spec) == ("balanced" in runs.first().to_dict()["losses"][0])


# --- the spec syntax ------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "canonical", "value"), [
    ("cce:class_weights=1,2,3", "cce:class_weights=1,2,3", (1.0, 2.0, 3.0)),
    ("cce:class_weights=[1, 2.0, 0.5]", "cce:class_weights=1,2,0.5", (1.0, 2.0, 0.5)),
    ("ce:class_weights=Balanced", "cce:class_weights=balanced", "balanced"),
    ("bce:pos_weight=15", "bce:pos_weight=15", 15.0),
    ("log_loss:pos_weight=balanced", "bce:pos_weight=balanced", "balanced"),
])
def test_class_weight_spec_syntax(text: str, canonical: str, value: Any) -> None:
    spec = parse_spec(text)
    assert spec.spec == canonical
    assert next(iter(spec.params.values())) == value
    assert parse_spec(spec.spec).spec == canonical  # the canonical text reads back


def test_list_value_and_a_following_parameter_are_unambiguous() -> None:
    spec = parse_spec("focal:alpha=balanced,gamma=1")
    assert spec.params == {"gamma": 1.0, "alpha": "balanced"}
    assert spec.spec == "focal:gamma=1,alpha=balanced"


@pytest.mark.parametrize(("text", "message"), [
    ("bce:pos_weight=1,2", "expected param=value"),
    ("cce:class_weights=1,x", "comma list of numbers or 'balanced'"),
    ("cce:class_weights=1,-2", "must be >= 0 each"),
    ("bce:pos_weight=0", "must be > 0"),
    ("focal:alpha=equal", "must be a number or 'balanced'"),
    ("0.5*bce:pos_weight=balanced+0.5*focal", "cannot be part of a weighted combination"),
    ("0.5*cce:class_weights=1,2+0.5*cce", "cannot be part of a weighted combination"),
])
def test_bad_class_weight_specs(text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_spec(text)


def test_numeric_pos_weight_combines_as_a_per_row_loss(binary: dict[str, np.ndarray]) -> None:
    cols = binary_cols(binary, True, True)
    both = ev(cols, "0.5*bce:pos_weight=3+0.5*focal", weight="w", logits=True).losses[0]
    a = ev(cols, "bce:pos_weight=3", weight="w", logits=True).losses[0]
    b = ev(cols, "focal", weight="w", logits=True).losses[0]
    assert rel_close(both.value, 0.5 * a.value + 0.5 * b.value, 1e-12)


# --- the command line ----------------------------------------------------------------------------


def test_cli_reports_the_balanced_numbers(capsys: pytest.CaptureFixture[str]) -> None:
    code = run(["eval", "sample_data/binary.csv", "--loss", "bce:pos_weight=balanced",
                "--format", "json"])
    out = capsys.readouterr().out
    assert code == 0
    loss = json.loads(out)["losses"][0]
    n_neg, n_pos = loss["balanced"]["class_counts"]
    assert loss["balanced"]["value"] == n_neg / n_pos
    code = run(["eval", "sample_data/binary.csv", "--loss", "bce:pos_weight=balanced"])
    out = capsys.readouterr().out
    assert code == 0
    assert f"pos_weight = n_neg / n_pos = {n_neg / n_pos:.6g}" in out
    assert f"class counts {n_neg:,}, {n_pos:,}" in out
    code = run(["eval", "sample_data/binary.csv", "--loss", "bce:pos_weight=balanced",
                "--format", "markdown"])
    out = capsys.readouterr().out
    assert code == 0 and f"pos_weight = n_neg / n_pos = {n_neg / n_pos:.6g}" in out


def test_cli_gate_on_a_class_weighted_spec(capsys: pytest.CaptureFixture[str]) -> None:
    code = run(["eval", "sample_data/multiclass.csv", "--loss", "cce:class_weights=1,2,3,4",
                "--max", "cce:class_weights=1,2,3,4=1e-9", "--format", "json"])
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    assert code == 1 and doc["gates"][0]["loss"] == "cce:class_weights=1,2,3,4"


def test_balanced_with_many_classes_sorts_rows_by_class() -> None:
    """Past CLASS_MASK_LIMIT classes the rows are grouped by one stable sort: same numbers."""
    from losscli.state import CLASS_MASK_LIMIT

    k, n = CLASS_MASK_LIMIT + 4, 3000
    rng = np.random.default_rng(21)
    shares = rng.uniform(0.2, 3.0, k)
    y = rng.choice(k, n, p=shares / shares.sum()).astype(float)
    Z = rng.normal(0.0, 2.0, (n, k))
    cols: dict[str, Any] = {f"z{j:02d}": Z[:, j] for j in range(k)}
    cols["target"] = y
    c = compute_class_weight("balanced", classes=np.unique(y), y=y)
    values, cy, gnorm = cce_weight_ref(Z, y, c, True)
    for chunk_rows in (N, 257):
        r = ev(cols, "cce:class_weights=balanced", pred="z*", logits=True,
               chunk_rows=chunk_rows).losses[0]
        assert r.balanced is not None
        np.testing.assert_allclose(r.balanced["value"], c, rtol=1e-15)
        assert rel_close(r.value, math.fsum(values.tolist()) / math.fsum(cy.tolist()), RTOL)
        assert rel_close(r.gradient.abs_mean, math.fsum(gnorm.tolist()) / n, RTOL)
