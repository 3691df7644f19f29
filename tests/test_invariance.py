"""The shared harness at work: every loss and every command (eval, compare, recommend) from a CSV
file, a Parquet file and a DataFrame, at every chunk size and on every executor, against
independent references (textbook formulas with math.fsum, scikit-learn, scipy), and the same
result every time."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _helpers.data import Data, classification_data, count_data, regression_data
from _helpers.references import huber, paired, per_row, reference, wmean
from _helpers.tester import sweep
from conftest import check_gradient_stats, rel_close

N = 300
OPTS: dict[str, Any] = {"vanish_tol": 0.05, "explode_tol": 40.0, "grad_clip": 2.0}

REGRESSION = ["mse", "rmse", "mae", "huber", "huber:delta=7.5", "huber:delta=0.3", "smooth_l1",
              "smooth_l1:beta=4", "smooth_l1:beta=0.3", "log_cosh", "quantile", "quantile:q=0.85",
              "0.7*mse+0.3*mae"]
BINARY = ["bce", "focal", "focal:gamma=0.5", "focal:gamma=3,alpha=0.3", "0.5*bce+0.5*focal"]


def combination(spec: str, pred: np.ndarray, y: np.ndarray, w: np.ndarray | None,
                logits: bool) -> tuple[float, np.ndarray]:
    """The reference of a weighted sum of losses: the weighted sum of the references."""
    value, g = 0.0, np.zeros(pred.shape[0])
    for term in spec.split("+"):
        coef, _, name = term.partition("*") if "*" in term else ("1", "", term)
        v, gi = reference(name, pred, y, w, logits)
        value, g = value + float(coef) * v, g + float(coef) * gi
    return value, g


def eval_check(data: Data, specs: list[str], logits: bool = False, ref_target: Any = None) -> Any:
    """``ref_target``: what the references read as the target, when not data.target
    (gaussian_nll's (target, variance), kl_div's soft targets)."""
    y = data.target if ref_target is None else ref_target
    expected = [combination(s, data.pred, y, data.weight, logits) for s in specs]

    def check(report: Any) -> None:
        assert [x.spec for x in report.losses] == specs
        for x, (value, g) in zip(report.losses, expected, strict=True):
            assert rel_close(x.value, value, 1e-11), (x.spec, x.value, value)
            check_gradient_stats(x.gradient, g, data.weight, OPTS["vanish_tol"],
                                 OPTS["explode_tol"], OPTS["grad_clip"],
                                 exact_fractions=x.spec.split(":")[0] not in ("rmse", "rmsle"))
    return check


def positive_data(n: int, seed: int = 9) -> Data:
    """Positive, right-skewed amounts (Gamma) and noisy positive predictions."""
    rng = np.random.default_rng(seed)
    y = rng.gamma(2.0, 3.0, n)
    return Data(y * np.exp(rng.normal(0.0, 0.4, n)), y, rng.uniform(0.2, 2.0, n))


def variance_data(n: int) -> Data:
    """regression_data with a predicted variance per row (gaussian_nll's --var)."""
    d = regression_data(n, seed=3)
    var = np.exp(np.random.default_rng(11).normal(5.0, 1.0, n))
    return Data(d.pred, d.target, d.weight, {"var": var})


def soft_data(n: int, classes: int = 4) -> Data:
    """Probabilities and soft targets (one probability column per class, q_0 ..)."""
    d, _ = classification_data(n, classes, 7)
    q = np.random.default_rng(12).dirichlet(np.ones(classes), n)
    return Data(d.pred, d.target, d.weight, {f"q_{k}": q[:, k] for k in range(classes)})


CASES = {
    "regression": (lambda: regression_data(N, seed=3), REGRESSION, False),
    "poisson": (lambda: count_data(N), ["poisson", "mse"], False),
    "binary-probs": (lambda: classification_data(N, 2, 6)[0], BINARY, False),
    "binary-logits": (lambda: (lambda d, z: Data(z, d.target, d.weight))(
        *classification_data(N, 2, 6)), BINARY, True),
    "multiclass-probs": (lambda: classification_data(N // 2, 4, 7)[0], ["cce"], False),
    "multiclass-logits": (lambda: (lambda d, z: Data(z, d.target, d.weight))(
        *classification_data(N // 2, 4, 7)), ["cce"], True),
    "positive": (lambda: positive_data(N), ["msle", "rmsle", "mape", "gamma", "tweedie",
                                             "tweedie:power=3", "poisson_nll",
                                             "poisson_nll:log_input=false"], False),
    "binary-margins": (lambda: (lambda d, z: Data(z, d.target, d.weight))(
        *classification_data(N, 2, 6)), ["hinge", "squared_hinge"], False),
    "multiclass-margins": (lambda: (lambda d, z: Data(z, d.target, d.weight))(
        *classification_data(N // 2, 4, 7)), ["multi_hinge"], False),
    "variance": (lambda: variance_data(N), ["gaussian_nll"], False),
    "soft-targets": (lambda: soft_data(N // 2), ["kl_div"], False),
}

#: the options and reference targets of the cases whose losses read more columns
EXTRA: dict[str, tuple[dict[str, Any], Any]] = {
    "variance": ({"var": "var"}, lambda d: (d.target, d.extra["var"])),
    "soft-targets": ({"target": "q_*"},
                     lambda d: np.stack([d.extra[f"q_{k}"] for k in range(d.pred.shape[1])],
                                        axis=1)),
}


def test_every_catalog_loss_is_in_the_sweep() -> None:
    """A loss added to the catalog needs its reference here (references.py) and a case."""
    from losscli.losses import CATALOG

    swept = {term.split(":")[0].split("*")[-1] for _, specs, _ in CASES.values() for s in specs
             for term in s.split("+")}
    assert set(CATALOG) <= swept, set(CATALOG) - swept


@pytest.mark.parametrize("case", list(CASES))
def test_eval_every_loss_everywhere(case: str, tmp_path: Path) -> None:
    make, specs, logits = CASES[case]
    data = make()
    cols = data.columns()
    pred = "prob_*" if data.pred.ndim == 2 else "pred"
    # counts: given, since a float column of whole numbers reads as counts from CSV text but as
    # regression from Parquet and a DataFrame (the detector sees the column's type)
    task = "counts" if case == "poisson" else None
    options, ref_target = EXTRA.get(case, ({}, None))
    options = {"target": "target", **options}
    sweep("eval", cols, tmp_path,
          eval_check(data, specs, logits, ref_target(data) if ref_target else None),
          pred=pred, weight="w", losses=specs, logits=logits, task=task, **options, **OPTS)


def test_compare_everywhere(tmp_path: Path) -> None:
    rng = np.random.default_rng(31)
    y = rng.normal(size=N)
    cols = {"y": y, "old": y + rng.normal(size=N), "new": y + 1.1 * rng.normal(size=N) + 0.05,
            "w": rng.uniform(0.3, 2.0, N)}
    specs = ["mse", "mae", "huber:delta=0.5"]
    diffs = [per_row(s, cols["new"], y) - per_row(s, cols["old"], y) for s in specs]
    own = [paired(d, cols["w"], 0.9) for d in diffs]  # each loss's own 90% t interval
    bonferroni = [paired(d, cols["w"], 1 - 0.1 / 3) for d in diffs]

    def check(c: Any) -> None:
        for x, ref, wide in zip(c.losses, own, bonferroni, strict=True):
            assert x.delta == pytest.approx(ref["delta"], rel=1e-11)
            assert x.se == pytest.approx(ref["se"], rel=1e-9)
            assert x.p_value == pytest.approx(ref["p_value"], rel=1e-7)
            # adjusted over the family (step-down): between the loss's own interval (its last
            # step's) and Bonferroni's, up to the t quantile's last digits
            slack = 1e-12 * (wide["high"] - wide["low"])
            assert wide["low"] - slack <= x.ci.low <= ref["low"] + slack, x.spec
            assert ref["high"] - slack <= x.ci.high <= wide["high"] + slack, x.spec

    sweep("compare", cols, tmp_path, check, baseline_pred="old", pred="new", target="y",
          weight="w", losses=specs, ci="t", alpha=0.1)


def test_recommend_everywhere(tmp_path: Path) -> None:
    rng = np.random.default_rng(32)
    y = rng.normal(50.0, 10.0, N)
    cols = {"y": y, "pred": y + rng.standard_t(3, N)}
    e = cols["pred"] - y

    def check(rec: Any) -> None:
        for cand in [rec.recommended, *rec.alternatives]:
            if cand.name == "huber":
                expected = wmean(huber(e, cand.params["delta"]), None)
            else:
                expected = wmean(per_row(cand.name, cols["pred"], y), None)
            assert cand.value == pytest.approx(expected, rel=1e-12), cand.name
        assert rec.evidence.rows == N
        assert rec.evidence.mean == pytest.approx(wmean(e, None), rel=1e-12)

    sweep("recommend", cols, tmp_path, check, pred="pred", target="y")

