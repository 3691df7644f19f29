"""losscli.evaluate end to end on in-memory columns and files: chunk-size invariance, exact sums,
gradient statistics against NumPy references, weights, combinations, multiclass inputs, the
default loss set per task, and the shape of the JSON report."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest
from _helpers.data import Data, regression_data
from _helpers.references import reference, wmean
from _helpers.tester import EXECUTORS, sweep
from conftest import check_gradient_stats, rel_close
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss

import losscli
from losscli.engine import LossResult, Report
from losscli.errors import InputError

N = 4000


# --- data ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def reg() -> Data:
    return regression_data(N)


@pytest.fixture(scope="module")
def counts() -> Data:
    rng = np.random.default_rng(5)
    mu = np.exp(rng.normal(0.5, 0.8, N))
    y = rng.poisson(mu)  # an integer column: counts
    return Data(mu * np.exp(rng.normal(0.0, 0.3, N)), y, rng.uniform(0.2, 2.0, N))


@pytest.fixture(scope="module")
def binary() -> tuple[Data, np.ndarray]:
    X, y = make_classification(n_samples=N, n_features=6, flip_y=0.1, random_state=6)
    model = LogisticRegression(max_iter=500).fit(X[: N // 2], y[: N // 2])
    w = np.random.default_rng(6).uniform(0.0, 2.0, N)
    return Data(model.predict_proba(X)[:, 1], y.astype(float), w), model.decision_function(X)


@pytest.fixture(scope="module")
def multi() -> tuple[Data, np.ndarray]:
    X, y = make_classification(n_samples=N, n_features=8, n_informative=6, n_classes=4,
                               flip_y=0.05, random_state=7)
    model = LogisticRegression(max_iter=500).fit(X[: N // 2], y[: N // 2])
    w = np.random.default_rng(7).uniform(0.0, 2.0, N)
    return Data(model.predict_proba(X), y.astype(float), w), model.decision_function(X)


def evaluate(data: dict[str, Any], losses: list[str] | None, **kw: Any) -> Report:
    pred = kw.pop("pred", "prob_*" if "prob_0" in data else "pred")
    weight = kw.pop("weight", "w" if "w" in data else None)
    return losscli.evaluate(data, pred=pred, target="target", weight=weight, losses=losses, **kw)


# --- independent references ----------------------------------------------------------------------


def cut(a: np.ndarray, frac: float) -> float:
    """A threshold between two distinct values of |g| near the given fraction (no ties)."""
    s = np.unique(a)
    i = min(int(frac * s.size), s.size - 2)
    return float((s[i] + s[i + 1]) / 2.0)


# --- gradient statistics ---------------------------------------------------------------------


REGRESSION_SPECS = ["mse", "rmse", "mae", "huber", "huber:delta=7.5", "huber:delta=0.3",
                    "smooth_l1", "smooth_l1:beta=4", "smooth_l1:beta=0.3", "log_cosh", "quantile",
                    "quantile:q=0.85"]


@pytest.mark.parametrize("weighted", [True, False], ids=["weighted", "unweighted"])
@pytest.mark.parametrize("spec", REGRESSION_SPECS)
def test_regression_value_and_gradient_stats(reg: Data, spec: str, weighted: bool) -> None:
    w = reg.weight if weighted else None
    value, g = reference(spec, reg.pred, reg.target, w)
    a = np.abs(g)
    vanish, explode, clip = cut(a, 0.05), cut(a, 0.95), cut(a, 0.6)
    r = evaluate(reg.columns(weighted), [spec], vanish_tol=vanish, explode_tol=explode,
                 grad_clip=clip).losses[0]
    assert rel_close(r.value, value, 1e-12), (r.value, value)
    check_gradient_stats(r.gradient, g, w, vanish, explode, clip,
                         exact_fractions=not spec.startswith("rmse"))


def test_poisson_value_and_gradient_stats(counts: Data) -> None:
    value, g = reference("poisson", counts.pred, counts.target, counts.weight)
    a = np.abs(g)
    vanish, explode, clip = cut(a, 0.1), cut(a, 0.9), cut(a, 0.5)
    r = evaluate(counts.columns(), ["poisson"], vanish_tol=vanish, explode_tol=explode,
                 grad_clip=clip).losses[0]
    assert rel_close(r.value, value, 1e-12)
    check_gradient_stats(r.gradient, g, counts.weight, vanish, explode, clip)


BINARY_SPECS = ["bce", "focal", "focal:gamma=0.5", "focal:gamma=3,alpha=0.3"]


@pytest.mark.parametrize("logits", [False, True], ids=["probs", "logits"])
@pytest.mark.parametrize("spec", BINARY_SPECS)
def test_binary_value_and_gradient_stats(binary: tuple[Data, np.ndarray], spec: str,
                                         logits: bool) -> None:
    data, z = binary
    pred = z if logits else data.pred
    value, g = reference(spec, pred, data.target, data.weight, logits)
    a = np.abs(g)
    vanish, explode, clip = cut(a, 0.1), cut(a, 0.97), cut(a, 0.8)
    cols = Data(pred, data.target, data.weight).columns()
    r = evaluate(cols, [spec], logits=logits, vanish_tol=vanish, explode_tol=explode,
                 grad_clip=clip).losses[0]
    assert rel_close(r.value, value, 1e-11), (r.value, value)
    check_gradient_stats(r.gradient, g, data.weight, vanish, explode, clip)


@pytest.mark.parametrize("logits", [False, True], ids=["probs", "logits"])
def test_multiclass_value_and_gradient_stats(multi: tuple[Data, np.ndarray],
                                             logits: bool) -> None:
    data, z = multi
    pred = z if logits else data.pred
    value, g = reference("cce", pred, data.target, data.weight, logits)
    a = np.abs(g)
    vanish, explode, clip = cut(a, 0.1), cut(a, 0.97), cut(a, 0.8)
    r = evaluate(Data(pred, data.target, data.weight).columns(), ["cce"], logits=logits,
                 vanish_tol=vanish, explode_tol=explode, grad_clip=clip).losses[0]
    assert rel_close(r.value, value, 1e-12)
    if not logits:
        assert rel_close(r.value, log_loss(data.target, y_proba=data.pred,
                                           sample_weight=data.weight), 1e-12)
    check_gradient_stats(r.gradient, g, data.weight, vanish, explode, clip)


def test_fraction_thresholds_are_inclusive_as_documented() -> None:
    """|g| at or below --vanish-tol vanishes, at or above --explode-tol explodes, and only
    |g| strictly above --grad-clip is clipped (mae: |g| is exactly 0 or 1)."""
    pred = np.array([0.0, 1.0, 2.0, 3.0, 5.0, -1.0, 4.0, 4.0])
    target = np.array([0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 4.0, 3.0])
    r = evaluate({"pred": pred, "target": target}, ["mae", "mse"], vanish_tol=0.0,
                 explode_tol=1.0, grad_clip=1.0)
    mae, mse = r.losses
    assert mae.gradient.vanishing_fraction == 3 / 8
    assert mae.gradient.exploding_fraction == 5 / 8
    assert mae.gradient.clipped_fraction == 0.0
    # mse: |g| = 2|e| = 0, 0, 2, 4, 8, 4, 0, 2
    r = evaluate({"pred": pred, "target": target}, ["mse"], vanish_tol=0.0, explode_tol=4.0,
                 grad_clip=2.0)
    assert r.losses[0].gradient.vanishing_fraction == 3 / 8
    assert r.losses[0].gradient.exploding_fraction == 3 / 8
    assert r.losses[0].gradient.clipped_fraction == 3 / 8
    assert mse.gradient.abs_max == 8.0


# --- weights, rmse, combinations -------------------------------------------------------------


def test_weights_are_replication(reg: Data) -> None:
    """An integer weight k counts a row k times: sum(w l) / sum(w)."""
    k = np.random.default_rng(8).integers(0, 4, N)
    k[0] = 1
    rep = np.repeat(np.arange(N), k)
    specs = ["mse", "rmse", "mae", "huber:delta=2", "log_cosh", "quantile:q=0.3"]
    weighted = evaluate({"pred": reg.pred, "target": reg.target, "w": k.astype(float)}, specs)
    repeated = evaluate({"pred": reg.pred[rep], "target": reg.target[rep]}, specs)
    for a, b in zip(weighted.losses, repeated.losses, strict=True):
        assert rel_close(a.value, b.value, 1e-12), (a.spec, a.value, b.value)


def test_zero_total_weight_is_an_input_error(reg: Data) -> None:
    with pytest.raises(InputError, match="sums to zero"):
        evaluate({"pred": reg.pred[:10], "target": reg.target[:10], "w": np.zeros(10)}, ["mse"])


def test_rmse_is_sqrt_mse_and_gradient_is_e_over_rmse(reg: Data) -> None:
    r = evaluate(reg.columns(), ["mse", "rmse"])
    mse, rmse = r.losses
    e = reg.pred - reg.target
    expected = math.sqrt(wmean(e * e, reg.weight))
    assert rel_close(rmse.value, expected, 1e-13)
    assert rel_close(rmse.value, math.sqrt(mse.value), 1e-15)
    g = e / expected
    assert rel_close(rmse.gradient.mean, float(g.mean()), 1e-12)
    assert rel_close(rmse.gradient.abs_max, float(np.abs(g).max()), 1e-13)
    # d rmse / d pred_i = w_i e_i / (sum(w) rmse): its norm
    norm = math.sqrt(math.fsum(((reg.weight * e) ** 2).tolist())) / (reg.weight.sum() * expected)
    assert rel_close(rmse.gradient.norm, norm, 1e-12)
    # rmse's gradient is mse's divided by 2 rmse, statistic by statistic
    for key in ("mean", "std", "abs_mean", "abs_max", "rms", "norm"):
        assert rel_close(getattr(rmse.gradient, key),
                         getattr(mse.gradient, key) / (2 * expected), 1e-12), key


@pytest.mark.parametrize("spec", ["0.7*mse+0.3*mae", "0.25*huber:delta=2+2*log_cosh",
                                  "0.5*mae"])
def test_weighted_combination_is_weighted_sum_of_parts(reg: Data, spec: str) -> None:
    terms = []
    for part in spec.split("+"):
        coef, _, name = part.partition("*")
        terms.append((float(coef), name))
    r = evaluate(reg.columns(), [spec, *[name for _, name in terms]])
    combo, parts = r.losses[0], r.losses[1:]
    parts_sum = sum(c * p.value for (c, _), p in zip(terms, parts, strict=True))
    assert rel_close(combo.value, parts_sum, 1e-13)
    e_g = [reference(name, reg.pred, reg.target, reg.weight)[1] for _, name in terms]
    g = sum(c * gi for (c, _), gi in zip(terms, e_g, strict=True))
    assert isinstance(g, np.ndarray)
    check_gradient_stats(combo.gradient, g, reg.weight, 1e-6, 1e3, None)
    d = r.to_dict()["losses"][0]
    assert [(t["coef"], t["spec"]) for t in d["terms"]] == terms


# --- chunk-size invariance -------------------------------------------------------------------


# The same report for every input kind, chunk size and executor, every loss against its
# reference: tests/test_invariance.py on the shared harness (tests/_helpers/tester.py).

CHUNKS = [1000, 7, losscli.engine.DEFAULT_CHUNK_ROWS]
OPTS: dict[str, Any] = {"vanish_tol": 0.05, "explode_tol": 40.0, "grad_clip": 2.0}
SERIAL = EXECUTORS[:1]

small = regression_data(600, seed=11)


@settings(max_examples=15, deadline=None)
@given(st.integers(1, 700))
def test_chunk_size_invariance_property(chunk_rows: int) -> None:
    specs = ["mse", "rmse", "mae", "huber", "log_cosh", "quantile:q=0.9", "0.7*mse+0.3*mae"]
    sweep("eval", small.columns(), None, kinds=["dataframe"],
          chunks=[chunk_rows, losscli.engine.DEFAULT_CHUNK_ROWS], executors=SERIAL, pred="pred",
          target="target", weight="w", losses=specs, **OPTS)


def test_default_loss_set_does_not_depend_on_chunk_size(reg: Data, tmp_path: Path) -> None:
    """The task is detected from the data, not from the first chunk: a regression file whose
    first rows happen to look binary (0/1 targets, predictions in [0, 1]) is still regression."""
    pred, target = reg.pred[:800].copy(), reg.target[:800].copy()
    target[:10] = [0, 1, 1, 0, 0, 1, 0, 1, 1, 0]
    pred[:10] = np.linspace(0.05, 0.95, 10)

    def check(r: Report) -> None:
        assert r.task == "regression"
        assert names(r) == REGRESSION_DEFAULT

    sweep("eval", {"pred": pred, "target": target}, tmp_path, check, chunks=CHUNKS,
          pred="pred", target="target")


def test_notes_do_not_depend_on_chunk_size(counts: Data, tmp_path: Path) -> None:
    """The report (JSON) of the same input is the same whatever --chunk-rows is: here poisson's
    domain fails twice, non-positive predictions at rows 4 and 501. A default loss left out is
    a note (a footnote), not a warning: nobody asked for it."""
    pred = counts.pred[:800].copy()
    pred[3] = -0.5
    pred[500] = 0.0

    def check(r: Report) -> None:
        assert r.warnings == []
        assert len(r.notes) == 1 and "poisson" in r.notes[0]
        assert "row 4" in r.notes[0]
        assert names(r) == REGRESSION_DEFAULT

    sweep("eval", {"pred": pred, "target": counts.target[:800]}, tmp_path, check, chunks=CHUNKS,
          pred="pred", target="target")


# --- exact sums on many rows -------------------------------------------------------------------


def test_values_match_fsum_on_two_million_rows() -> None:
    rng = np.random.default_rng(9)
    n = 2_000_000
    target = rng.normal(1e4, 1.0, n)
    pred = target + rng.lognormal(0.0, 2.0, n) * rng.choice([-1.0, 1.0], n)
    w = rng.uniform(0.0, 10.0, n)
    r = losscli.evaluate({"pred": pred, "target": target, "w": w}, weight="w",
                         losses=["mse", "mae", "huber:delta=3"])
    e = pred - target
    a = np.abs(e)
    huber = np.where(a <= 3.0, 0.5 * e * e, 3.0 * (a - 1.5))
    wsum = math.fsum(w.tolist())
    for result, per_row in zip(r.losses, (e * e, a, huber), strict=True):
        expected = math.fsum((per_row * w).tolist()) / wsum
        assert rel_close(result.value, expected, 1e-12), (result.spec, result.value, expected)
    assert r.source.rows == n


# --- multiclass inputs ---------------------------------------------------------------------------


CLASSES = ["dog", "cat", "bird"]  # deliberately not in alphabetical order


@pytest.fixture(scope="module")
def labelled() -> tuple[np.ndarray, np.ndarray, float]:
    """(n, 3) probabilities, class indices into CLASSES, and the reference cross-entropy."""
    X, y = make_classification(n_samples=1500, n_features=6, n_informative=4, n_classes=3,
                               random_state=10)
    proba = LogisticRegression(max_iter=500).fit(X, y).predict_proba(X)
    expected = math.fsum((-np.log(proba[np.arange(y.size), y])).tolist()) / y.size
    assert rel_close(expected, log_loss(y, y_proba=proba), 1e-12)
    return proba, y, expected


def test_multiclass_glob_columns_with_string_labels(labelled: tuple[np.ndarray, np.ndarray,
                                                                    float]) -> None:
    proba, y, expected = labelled
    data: dict[str, Any] = {f"prob_{c}": proba[:, k] for k, c in enumerate(CLASSES)}
    data["label"] = np.array([CLASSES[i] for i in y])
    r = losscli.evaluate(data, pred="prob_*", target="label", losses=["cce"])
    assert rel_close(r.losses[0].value, expected, 1e-12)
    assert r.columns["classes"] == CLASSES
    assert r.task == "multiclass"
    # integer class indices give the same result
    data["label"] = y
    r2 = losscli.evaluate(data, pred="prob_*", target="label", losses=["cce"])
    assert rel_close(r2.losses[0].value, expected, 1e-12)


def test_multiclass_string_labels_from_csv(labelled: tuple[np.ndarray, np.ndarray, float],
                                           tmp_path: Path) -> None:
    proba, y, expected = labelled
    path = tmp_path / "multi.csv"
    cols: dict[str, Any] = {"label": [CLASSES[i] for i in y]}
    cols.update({f"prob_{c}": proba[:, k] for k, c in enumerate(CLASSES)})
    pcsv.write_csv(pa.table(cols), path)
    r = losscli.evaluate(path, losses=["cce"], chunk_rows=333)  # columns recognised by name
    assert rel_close(r.losses[0].value, expected, 1e-12)
    assert r.columns["classes"] == CLASSES


def test_multiclass_parquet_list_column(labelled: tuple[np.ndarray, np.ndarray, float],
                                        tmp_path: Path) -> None:
    proba, y, expected = labelled
    path = tmp_path / "multi.parquet"
    table = pa.table({"y": pa.array(y.astype(np.int64)),
                      "probs": pa.array(proba.tolist(), type=pa.list_(pa.float64()))})
    pq.write_table(table, path, row_group_size=400)
    r = losscli.evaluate(path, pred="probs", target="y", losses=["cce"], chunk_rows=256)
    assert rel_close(r.losses[0].value, expected, 1e-12)
    assert r.task == "multiclass"
    assert r.columns["classes"] == ["0", "1", "2"]
    g = 1.0 / proba[np.arange(y.size), y]
    check_gradient_stats(r.losses[0].gradient, g, None, 1e-6, 1e3, None)
    # logits in a list column
    logits = np.log(proba) + 3.0
    table = pa.table({"y": pa.array(y.astype(np.int64)),
                      "z": pa.array(logits.tolist(), type=pa.list_(pa.float64()))})
    pq.write_table(table, path)
    r = losscli.evaluate(path, pred="z", target="y", losses=["cce"], logits=True)
    assert rel_close(r.losses[0].value, expected, 1e-12)


def test_multiclass_numbered_columns_follow_one_rule_in_csv_and_parquet(tmp_path: Path) -> None:
    """Columns prob_1..prob_3 name the classes 1..3 (README): targets 1..3 are those labels in
    CSV and Parquet alike (as scikit-learn's log_loss(labels=[1, 2, 3])), and a target 0, which
    could only be a position, is refused in both."""
    from sklearn.metrics import log_loss

    rng = np.random.default_rng(12)
    proba = rng.dirichlet([2.0, 2.0, 2.0], 300)
    y = rng.integers(0, 3, 300)
    expected = log_loss(y + 1, proba, labels=[1, 2, 3])
    for target, ok in ((y + 1, True), (y, False)):
        table = pa.table({"y": pa.array(target),
                          **{f"prob_{k + 1}": proba[:, k] for k in range(3)}})
        pq.write_table(table, tmp_path / "m.parquet")
        pcsv.write_csv(table, tmp_path / "m.csv")
        for name in ("m.parquet", "m.csv"):
            if ok:
                r = losscli.evaluate(tmp_path / name, pred="prob_*", target="y", losses=["cce"])
                assert rel_close(r.losses[0].value, expected, 1e-12), (name, r.losses[0].value)
            else:
                with pytest.raises(InputError, match="has class 0, which is not a class label"):
                    losscli.evaluate(tmp_path / name, pred="prob_*", target="y", losses=["cce"])


@pytest.mark.parametrize("order", [(2, 0, 1), (1, 0), (3, 1, 2)])
def test_numbered_columns_in_another_order_map_targets_to_their_columns(
        tmp_path: Path, order: tuple[int, ...]) -> None:
    """Columns prob_2, prob_0, prob_1 (in that order in the file) name the classes 2, 0, 1: a
    target 2 is the first column's class, whatever the columns' order (scikit-learn's log_loss
    with the probabilities in sorted label order)."""
    from sklearn.metrics import log_loss

    rng = np.random.default_rng(13)
    k = len(order)
    proba = rng.dirichlet([1.0] * k, 400)  # column j holds the probability of class order[j]
    y = np.array(order)[rng.integers(0, k, 400)]
    by_label = proba[:, np.argsort(order)]  # columns in ascending label order
    expected = log_loss(y, by_label, labels=sorted(order))
    table = pa.table({"y": pa.array(y), **{f"prob_{c}": proba[:, j] for j, c in enumerate(order)}})
    pq.write_table(table, tmp_path / "m.parquet")
    r = losscli.evaluate(tmp_path / "m.parquet", pred="prob_*", target="y", losses=["cce"])
    assert rel_close(r.losses[0].value, expected, 1e-12), (r.losses[0].value, expected)


# --- default losses and the report -----------------------------------------------------------


# smooth_l1 (beta = 1) would repeat huber's numbers, quantile (q = 0.5) is mae / 2; poisson
# belongs to counts
REGRESSION_DEFAULT = ["mse", "rmse", "mae", "huber", "log_cosh"]
COUNTS_DEFAULT = [*REGRESSION_DEFAULT, "poisson"]


def names(r: Report) -> list[str]:
    return [x.name for x in r.losses]


def test_default_losses_per_detected_task(reg: Data, counts: Data,
                                          binary: tuple[Data, np.ndarray],
                                          multi: tuple[Data, np.ndarray]) -> None:
    r = evaluate(counts.columns(False), None)
    assert (r.task, r.input, names(r)) == ("counts", "values", COUNTS_DEFAULT)
    assert r.warnings == r.notes == []
    r = evaluate(reg.columns(False), None)  # negative targets: no poisson, and nothing said
    assert (r.task, r.input, names(r)) == ("regression", "values", REGRESSION_DEFAULT)
    assert r.warnings == r.notes == []
    bdata, bz = binary
    r = evaluate(bdata.columns(False), None)
    assert (r.task, r.input, names(r)) == ("binary", "probabilities", ["bce", "focal"])
    r = evaluate(Data(bz, bdata.target, bdata.weight).columns(False), None, logits=True)
    assert (r.task, r.input, names(r)) == ("binary", "logits", ["bce", "focal"])
    r = evaluate(multi[0].columns(False), None)
    assert (r.task, r.input, names(r)) == ("multiclass", "probabilities", ["cce"])
    # the defaults are the same numbers as asking for them
    asked = evaluate(bdata.columns(False), ["bce", "focal"])
    assert [x.value for x in asked.losses] == [x.value for x in
                                               evaluate(bdata.columns(False), None).losses]


# the losscli.eval/1 document as the README shows it
TOP_KEYS = ["schema", "version", "source", "task", "input", "columns", "settings", "losses",
            "gates", "passed", "warnings", "notes", "elapsed_seconds"]
GRADIENT_KEYS = {"mean", "std", "abs_mean", "abs_max", "rms", "norm", "p50", "p90", "p99",
                 "vanishing_fraction", "exploding_fraction", "clipped_fraction"}


def test_json_report_shape_and_order(binary: tuple[Data, np.ndarray]) -> None:
    data, _ = binary
    asked = ["focal:gamma=1", "bce", "0.3*bce+0.7*focal", "mse"]
    r = evaluate(data.columns(), asked, grad_clip=5.0)
    d = r.to_dict()
    assert list(d) == TOP_KEYS
    assert d["schema"] == "losscli.eval/1"
    assert d["version"] == losscli.__version__
    assert d["task"] == "binary" and d["input"] == "probabilities"
    assert d["source"] == {"path": "<memory>", "format": "memory", "rows": N, "rows_used": N,
                           "rows_dropped": 0}
    assert d["columns"]["pred"] == ["pred"] and d["columns"]["target"] == "target"
    assert d["columns"]["weight"] == "w"
    assert d["settings"]["grad_clip"] == 5.0
    assert (d["gates"], d["passed"], d["warnings"]) == ([], True, [])
    assert [x["spec"] for x in d["losses"]] == asked
    assert [x["name"] for x in d["losses"]] == ["focal", "bce", "0.3*bce+0.7*focal", "mse"]
    for x in d["losses"]:
        assert set(x["gradient"]) == GRADIENT_KEYS
        assert isinstance(x["value"], float)
    assert d["losses"][0]["params"] == {"gamma": 1.0, "alpha": None}
    assert "terms" in d["losses"][2] and "terms" not in d["losses"][0]
    assert d["losses"][1]["clipped_inputs"] == 0
    text = json.dumps(d, allow_nan=False)  # strict JSON: no NaN / inf
    again = evaluate(data.columns(), asked, grad_clip=5.0).to_dict()
    d.pop("elapsed_seconds")
    again.pop("elapsed_seconds")
    assert again == d  # deterministic for the same input
    assert json.loads(text)["losses"][3]["value"] == r.losses[3].value
    assert r.loss("0.3*bce+0.7*focal") is r.losses[2]


def test_report_value_matches_weighted_mean_definition() -> None:
    pred = np.array([1.0, 2.0, 4.0, 8.0])
    target = np.array([0.0, 0.0, 0.0, 0.0])
    w = np.array([1.0, 0.0, 3.0, 0.5])
    r = evaluate({"pred": pred, "target": target, "w": w}, ["mse", "mae"])
    mse: LossResult = r.losses[0]
    assert mse.value == (1.0 + 0.0 + 48.0 + 32.0) / 4.5
    assert r.losses[1].value == (1.0 + 12.0 + 4.0) / 4.5



@pytest.mark.parametrize("threads", [0, 2])
def test_nan_rows_counted_in_order_on_any_thread(threads: int, rng: np.random.Generator) -> None:
    # Past the 65,536 rows read first for task detection, and one chunk with no finite row.
    n, chunk = 100_000, 7_000
    target = rng.normal(size=n)
    pred = target + rng.normal(size=n)
    pred[[3, 1_200]] = np.nan
    target[1_201] = np.inf
    pred[70_000:77_000] = np.nan
    target[99_999] = -np.inf
    keep = np.isfinite(pred) & np.isfinite(target)
    dropped = n - int(keep.sum())
    cols = {"pred": pred, "target": target}
    r = losscli.evaluate(cols, losses=["mse"], nan="drop", chunk_rows=chunk, threads=threads)
    assert (r.source.rows, r.source.rows_dropped) == (n, dropped) == (n, 7_004)
    e = pred[keep] - target[keep]
    assert rel_close(r.losses[0].value, math.fsum((e * e).tolist()) / keep.sum(), 1e-13)
    with pytest.raises(InputError, match=r"7004 row\(s\) with NaN, inf or empty values, first at "
                                         r"row 4 in column 'pred'"):
        losscli.evaluate(cols, losses=["mse"], chunk_rows=chunk, threads=threads)
