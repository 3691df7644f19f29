"""Standard errors, intervals and the t quantile against SciPy, NumPy formulas and simulation."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import scipy.stats
from _helpers.tester import sweep

from losscli import evaluate
from losscli.engine import CiOptions, _finish_loss
from losscli.losses import Batch
from losscli.spec import parse_spec
from losscli.state import EvalState, RowMoments, linearised_spread
from losscli.uncertainty import CORNISH_FISHER_DF, mean_interval, norm_ppf, t_ppf

REGRESSION = ["mse", "mae", "huber", "huber:delta=0.3", "smooth_l1:beta=2", "log_cosh",
              "quantile:q=0.9", "0.7*mse+0.3*mae"]


def per_row(spec: str, pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Per-row losses from the textbook formulas (independent of the catalog's code)."""
    e = pred - target
    a = np.abs(e)
    table = {
        "mse": e * e, "rmse": e * e, "mae": a,
        "huber": np.where(a <= 1, 0.5 * e * e, a - 0.5),
        "huber:delta=0.3": np.where(a <= 0.3, 0.5 * e * e, 0.3 * (a - 0.15)),
        "smooth_l1:beta=2": np.where(a < 2, 0.25 * e * e, a - 1.0),
        "log_cosh": np.log(np.cosh(e)),
        "quantile:q=0.9": np.maximum(-0.9 * e, 0.1 * e),
        "0.7*mse+0.3*mae": 0.7 * e * e + 0.3 * a,
    }
    return table[spec]


def weighted_se(lv: np.ndarray, w: np.ndarray) -> float:
    """SE^2 = n/(n-1) sum w^2 (lv - L)^2 / (sum w)^2, evaluated directly."""
    n = lv.size
    big_l = np.sum(w * lv) / np.sum(w)
    return math.sqrt(n / (n - 1) * np.sum(w**2 * (lv - big_l) ** 2) / np.sum(w) ** 2)


@pytest.fixture
def data(rng: np.random.Generator) -> dict[str, np.ndarray]:
    n = 3001
    y = rng.normal(5.0, 2.0, n)
    return {"pred": y + rng.standard_t(4, n), "y": y, "w": rng.uniform(0.0, 4.0, n)}


@pytest.mark.parametrize("df", [1, 1.3, 2, 2.5, 3, 4, 7, 10, 29, 100, 299, 300, 999, 2999,
                                3000, 12345, 99_999, 100_000, 5e7])
@pytest.mark.parametrize("level", [0.5, 0.8, 0.9, 0.95, 0.99, 0.999, 0.99999, 1 - 1e-9])
def test_t_quantile_matches_scipy_at_its_documented_accuracy(df: float, level: float) -> None:
    """t_ppf's docstring: relative error below 1e-13 for df = 1, 2 and from 3000 on, 2e-13 for
    df < 100, 1e-11 in between."""
    p = 0.5 + level / 2
    bound = 1e-13 if df in (1, 2) or df >= CORNISH_FISHER_DF else 2e-13 if df < 100 else 1e-11
    assert t_ppf(p, df) == pytest.approx(scipy.stats.t.ppf(p, df), rel=bound, abs=0)


def test_normal_quantile_matches_scipy() -> None:
    for p in (1e-12, 1e-4, 0.02, 0.3, 0.5, 0.7, 0.975, 1 - 1e-9):
        assert norm_ppf(p) == pytest.approx(scipy.stats.norm.ppf(p), rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("spec", REGRESSION)
def test_se_equals_scipy_sem_unweighted(data: dict[str, np.ndarray], spec: str) -> None:
    r = evaluate(data, "pred", "y", losses=[spec], chunk_rows=700).losses[0]
    lv = per_row(spec, data["pred"], data["y"])
    assert r.se == pytest.approx(scipy.stats.sem(lv), rel=1e-10)


@pytest.mark.parametrize("spec", REGRESSION)
def test_se_matches_the_weighted_formula(data: dict[str, np.ndarray], spec: str) -> None:
    r = evaluate(data, "pred", "y", "w", losses=[spec], chunk_rows=700).losses[0]
    lv = per_row(spec, data["pred"], data["y"])
    assert r.se == pytest.approx(weighted_se(lv, data["w"]), rel=1e-10)


@pytest.mark.parametrize("ci", ["johnson", "bootstrap"])
@pytest.mark.parametrize("weighted", [False, True])
def test_rmse_se_by_the_delta_method(data: dict[str, np.ndarray], weighted: bool,
                                     ci: str) -> None:
    w = data["w"] if weighted else np.ones_like(data["y"])
    r = evaluate(data, "pred", "y", "w" if weighted else None, losses=["rmse", "mse"], ci=ci,
                 bootstrap_samples=50).losses
    lv = per_row("mse", data["pred"], data["y"])
    rmse = math.sqrt(np.sum(w * lv) / np.sum(w))
    assert r[0].se == pytest.approx(weighted_se(lv, w) / (2 * rmse), rel=1e-10)
    assert r[0].ci is not None and r[1].ci is not None
    if ci == "bootstrap":  # the percentile interval of the replicates' square roots
        assert (r[0].ci.method, r[1].ci.method) == ("bootstrap", "bootstrap")
        return
    assert r[0].ci.low == pytest.approx(math.sqrt(r[1].ci.low), rel=1e-12)
    assert r[0].ci.high == pytest.approx(math.sqrt(r[1].ci.high), rel=1e-12)


def test_se_of_classification_losses(rng: np.random.Generator) -> None:
    n = 2000
    y = (rng.uniform(size=n) < 0.3).astype(float)
    p = np.clip(0.3 + 0.4 * (y - 0.3) + rng.normal(0, 0.15, n), 0.01, 0.99)
    r = evaluate({"p": p, "y": y}, "p", "y", losses=["bce"]).losses[0]
    lv = -(y * np.log(p) + (1 - y) * np.log(1 - p))
    assert r.se == pytest.approx(scipy.stats.sem(lv), rel=1e-10)
    probs = rng.dirichlet(np.ones(4), n)
    cls = rng.integers(0, 4, n)
    cols = {f"prob_{k}": probs[:, k] for k in range(4)} | {"y": cls.astype(float)}
    r = evaluate(cols, "prob_*", "y", losses=["cce"]).losses[0]
    assert r.se == pytest.approx(scipy.stats.sem(-np.log(probs[np.arange(n), cls])), rel=1e-10)


def test_huge_and_tiny_weights_do_not_overflow(data: dict[str, np.ndarray]) -> None:
    """SE and interval are invariant to scaling all weights; w^3 of 1e200 overflows a double."""
    base = evaluate(data, "pred", "y", "w", losses=["mse"], chunk_rows=500).losses[0]
    for scale in (1e200, 1e-200):
        scaled = dict(data, w=data["w"] * scale)
        r = evaluate(scaled, "pred", "y", "w", losses=["mse"], chunk_rows=500).losses[0]
        assert r.se == pytest.approx(base.se, rel=1e-10)
        assert r.ci is not None and base.ci is not None
        assert (r.ci.low, r.ci.high) == pytest.approx((base.ci.low, base.ci.high), rel=1e-10)


@pytest.mark.parametrize("scale", [1e120, 1e-95, 2.0**-500])
def test_huge_and_tiny_losses_keep_their_interval(data: dict[str, np.ndarray],
                                                  scale: float) -> None:
    """Per-row losses of 1e240 or 1e-190 (squares and cubes out of double range): the moments
    are rescaled by a power of two, so SE and interval scale with the loss (mse by scale^2,
    mae by scale), weighted or not, in any chunking; they were null above 1e152."""
    for weight in (None, "w"):
        base = evaluate(data, "pred", "y", weight, losses=["mse", "mae", "rmse"],
                        chunk_rows=500)
        scaled = dict(data, pred=data["pred"] * scale, y=data["y"] * scale)
        for chunk in (500, 1 << 17):
            r = evaluate(scaled, "pred", "y", weight, losses=["mse", "mae", "rmse"],
                         chunk_rows=chunk, task="regression")
            for a, b, power in zip(r.losses, base.losses, (2, 1, 1), strict=True):
                f = scale**power
                assert a.se is not None and b.se is not None
                assert a.se == pytest.approx(b.se * f, rel=1e-9)
                assert a.ci is not None and b.ci is not None
                assert (a.ci.low, a.ci.high) == pytest.approx((b.ci.low * f, b.ci.high * f),
                                                              rel=1e-9)


def test_weights_spanning_many_orders_of_magnitude(rng: np.random.Generator) -> None:
    n = 4000
    l_pred, y = rng.normal(size=n), np.zeros(n)
    w = 10.0 ** rng.uniform(-150, 150, n)
    r = evaluate({"p": l_pred, "y": y, "w": w}, "p", "y", "w", losses=["mse"],
                 chunk_rows=100).losses[0]
    # reference with the weights rescaled by their maximum (exact as a ratio)
    ws = w / w.max()
    assert r.se == pytest.approx(weighted_se(l_pred**2, ws), rel=1e-9)


@pytest.mark.parametrize("weight", [None, "w"])
def test_se_and_interval_do_not_depend_on_input_chunks_or_executor(
        data: dict[str, np.ndarray], weight: str | None, tmp_path: Path) -> None:
    runs = sweep("eval", data, tmp_path, chunks=(1 << 17, 1000, 97), pred="pred", target="y",
                 weight=weight, losses=REGRESSION)
    assert all(x.se > 0 and x.ci is not None for x in runs.first().losses)


def hall_t(mu: float, x: np.ndarray) -> float:
    """Hall's (1992) transform of the studentized mean, straight from the paper's formula:
    T + g T^2 / (3 sqrt n) + g^2 T^3 / (27 n) + g / (6 sqrt n), T = sqrt(n) (mean - mu) / s,
    g = m3 / s^3 (Johnson's 1978 statistic is its first three terms)."""
    n = x.size
    mean, s = x.mean(), x.std(ddof=1)
    g = np.mean((x - mean) ** 3) / s**3
    t = math.sqrt(n) * (mean - mu) / s
    return float(t + g * t * t / (3 * math.sqrt(n)) + g * g * t**3 / (27 * n)
                 + g / (6 * math.sqrt(n)))


@pytest.mark.parametrize("level", [0.8, 0.95, 0.99])
def test_johnson_interval_inverts_halls_statistic(rng: np.random.Generator,
                                                   level: float) -> None:
    lv = rng.standard_exponential(400) ** 2
    r = evaluate({"p": np.sqrt(lv), "y": np.zeros(lv.size)}, "p", "y", losses=["mse"],
                 confidence=level).losses[0]
    assert r.ci is not None and r.ci.method == "johnson"
    t = scipy.stats.t.ppf(0.5 + level / 2, lv.size - 1)
    assert hall_t(r.ci.low, lv) == pytest.approx(t, rel=1e-9)
    assert hall_t(r.ci.high, lv) == pytest.approx(-t, rel=1e-9)
    assert r.ci.high - r.value > r.value - r.ci.low  # right skew: the upper side is longer


def test_t_interval_is_the_textbook_one(data: dict[str, np.ndarray]) -> None:
    r = evaluate(data, "pred", "y", losses=["mae"], ci="t", confidence=0.9).losses[0]
    lv = per_row("mae", data["pred"], data["y"])
    low, high = scipy.stats.t.interval(0.9, lv.size - 1, loc=lv.mean(), scale=scipy.stats.sem(lv))
    assert r.ci is not None
    assert (r.ci.low, r.ci.high) == pytest.approx((low, high), rel=1e-10)


@pytest.mark.parametrize("weighted", [False, True])
def test_t_interval_is_value_plus_minus_t_se(data: dict[str, np.ndarray], weighted: bool) -> None:
    """--ci t leaves the third moments out (Johnson's interval alone needs them): the interval
    is still L +- t(n-1) SE, with SE from scipy (unweighted) or the weighted formula."""
    specs = ["mse", "mae", "huber", "huber:delta=0.3", "log_cosh"]
    r = evaluate(data, "pred", "y", "w" if weighted else None, losses=specs, ci="t",
                 chunk_rows=97, threads=2)
    n = data["y"].size
    w = data["w"]
    # weighted, the degrees of freedom are the weighted variance's: Satterthwaite's
    # (sum w^2)^2 / sum w^4 - 1 (the Kish size of the squared weights)
    nu = np.sum(w**2) ** 2 / np.sum(w**4)
    t = scipy.stats.t.ppf(0.975, (nu if weighted else n) - 1)
    for spec, got in zip(specs, r.losses, strict=True):
        lv = per_row(spec, data["pred"], data["y"])
        if weighted:
            w = data["w"]
            value, se = float(np.sum(w * lv) / np.sum(w)), weighted_se(lv, w)
        else:
            value, se = float(lv.mean()), float(scipy.stats.sem(lv))
        assert got.se == pytest.approx(se, rel=1e-10)
        assert got.ci is not None and got.ci.method == "t"
        assert (got.ci.low, got.ci.high) == pytest.approx((value - t * se, value + t * se),
                                                          rel=1e-10)


def test_ci_none_reports_neither(data: dict[str, np.ndarray]) -> None:
    r = evaluate(data, "pred", "y", losses=["mse"], ci="none")
    assert r.losses[0].se is None and r.losses[0].ci is None
    assert "se" not in r.to_dict()["losses"][0]


def coverage(residuals: np.ndarray, specs: list[str], truth: dict[str, float],
             method: str) -> dict[str, float]:
    """Share of datasets (rows of ``residuals``) whose interval covers the true loss, each
    dataset folded through EvalState and finished as eval finishes it."""
    parsed = [parse_spec(s) for s in specs]
    hits = dict.fromkeys(specs, 0)
    zeros = np.zeros(residuals.shape[1])
    opts = CiOptions(method)
    for e in residuals:
        state = EvalState(parsed, spread=True)
        state.update(Batch(e, zeros, None))
        for spec, st in zip(parsed, state.losses, strict=True):
            ci = _finish_loss(spec, st, state, False, ci=opts).ci
            assert ci is not None
            hits[spec.spec] += ci.low <= truth[spec.spec] <= ci.high
    return {k: v / residuals.shape[0] for k, v in hits.items()}


def test_default_interval_covers_95_percent_in_simulation() -> None:
    """2,000 seeded datasets of 500 rows: normal and centred exponential residuals; the true
    mse is 1 for both, the true mae sqrt(2/pi) and 2/e."""
    rng = np.random.default_rng(1978)
    cases = {
        "normal": (rng.normal(size=(2000, 500)), math.sqrt(2 / math.pi)),
        "exponential": (rng.standard_exponential((2000, 500)) - 1.0, 2 / math.e),
    }
    for name, (res, mae) in cases.items():
        cov = coverage(res, ["mse", "mae"], {"mse": 1.0, "mae": mae}, "johnson")
        for spec, c in cov.items():
            assert 0.935 <= c <= 0.965, (name, spec, c)


def test_bad_ci_options_exit_2(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    from losscli.cli import run

    path = tmp_path / "d.csv"
    path.write_text("pred,y\n1,2\n2,2\n3,5\n")
    for args, text in ((["--confidence", "1.5"], "--confidence must be between 0 and 1"),
                       (["--ci", "wild"], "--ci must be one of"),
                       (["--ci", "bootstrap", "--bootstrap-samples", "0"],
                        "--bootstrap-samples must be between")):
        assert run(["eval", str(path), *args]) == 2
        out, err = capsys.readouterr()
        assert out == ""
        assert err.startswith("losscli: error: ") and text in err and err.count("\n") == 1


def test_json_carries_se_and_ci(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    from losscli.cli import run

    path = tmp_path / "d.csv"
    path.write_text("pred,y\n1,2\n2,2\n3,5\n4,4.5\n")
    assert run(["eval", str(path), "--loss", "mae", "--format", "json",
                "--confidence", "0.9", "--ci", "t"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["schema"] == "losscli.eval/1"
    loss = doc["losses"][0]
    lv = np.array([1, 0, 2, 0.5])
    assert loss["se"] == pytest.approx(scipy.stats.sem(lv), rel=1e-12)
    low, high = scipy.stats.t.interval(0.9, 3, loc=lv.mean(), scale=scipy.stats.sem(lv))
    assert low < 0  # below mae's range: the interval stops at 0
    assert loss["ci"] == {"low": 0.0, "high": pytest.approx(high), "level": 0.9,
                          "method": "t"}


def test_row_moments_merge_is_associative(rng: np.random.Generator) -> None:
    x, w = rng.lognormal(size=900), rng.uniform(0, 1e5, 900)
    for weight in (None, w):
        whole = RowMoments.of(x, weight)
        parts = RowMoments()
        for lo in range(0, 900, 250):
            parts.merge(RowMoments.of(x[lo:lo + 250], None if weight is None else w[lo:lo + 250]))
        mean = float(np.sum(x if weight is None else x * w) / (900 if weight is None else w.sum()))
        total = 900.0 if weight is None else float(w.sum())
        a = linearised_spread([(whole, 1.0, 1.0)], mean, total, 0)
        b = linearised_spread([(parts, 1.0, 1.0)], mean, total, 0)
        assert a[2] == b[2] == 0
        assert a[:2] == pytest.approx(b[:2], rel=1e-10)
    assert mean_interval(1.0, 0.0, 0.0, 10, 0.95, "johnson") == (1.0, 1.0)


def test_offset_losses_keep_their_precision(rng: np.random.Generator) -> None:
    """l ~ 1e4 +- 2: raw power sums would cancel; the central sums are taken instead."""
    e = 100.0 + rng.normal(0, 0.01, 5000)
    r = evaluate({"p": e, "y": np.zeros(e.size)}, "p", "y", losses=["mse"],
                 chunk_rows=1000).losses[0]
    assert r.se == pytest.approx(scipy.stats.sem(e * e), rel=1e-9)
    assert r.ci is not None
    lv = e * e
    t = scipy.stats.t.ppf(0.975, lv.size - 1)
    assert hall_t(r.ci.low, lv) == pytest.approx(t, rel=1e-6)


def ratio_se(num: np.ndarray, den: np.ndarray) -> float:
    """SE of sum(num) / sum(den) by linearisation: n/(n-1) sum (num - L den)^2 / (sum den)^2."""
    n = num.size
    big_l = num.sum() / den.sum()
    return math.sqrt(n / (n - 1) * np.sum((num - big_l * den) ** 2) / den.sum() ** 2)


@pytest.fixture
def classes(rng: np.random.Generator) -> dict[str, np.ndarray]:
    n = 2500
    y = rng.choice(3, n, p=[0.6, 0.3, 0.1]).astype(float)
    probs = rng.dirichlet(np.ones(3) * 2, n)
    probs[np.arange(n), y.astype(int)] += 0.5
    probs /= probs.sum(axis=1, keepdims=True)
    return {"prob_0": probs[:, 0], "prob_1": probs[:, 1], "prob_2": probs[:, 2], "y": y,
            "w": rng.uniform(0.5, 2.0, n), "yb": (y > 0).astype(float), "p": probs[:, 0]}


@pytest.mark.parametrize("weighted", [False, True])
def test_class_weighted_losses_get_their_interval(classes: dict[str, np.ndarray],
                                                  weighted: bool) -> None:
    """cce:class_weights reduces by sum(w a_y) (a ratio estimator); balanced measures a in
    the pass; bce:pos_weight scales the loss (reduced by sum w)."""
    d = classes
    w = d["w"] if weighted else np.ones_like(d["y"])
    weight = "w" if weighted else None
    yi = d["y"].astype(int)
    nll = -np.log(np.c_[d["prob_0"], d["prob_1"], d["prob_2"]][np.arange(yi.size), yi])
    for spec, a in (("cce:class_weights=1,2,4", np.array([1.0, 2.0, 4.0])),
                    ("cce:class_weights=balanced",
                     yi.size / (3 * np.bincount(yi, minlength=3).astype(float)))):
        r = evaluate(d, "prob_*", "y", weight, losses=[spec], chunk_rows=300).losses[0]
        wa = w * a[yi]
        assert r.value == pytest.approx(np.sum(wa * nll) / wa.sum(), rel=1e-12)
        assert r.se == pytest.approx(ratio_se(wa * nll, wa), rel=1e-10), spec
    yb, p = d["yb"], 1 - d["p"]
    lb = -(yb * np.log(p) + (1 - yb) * np.log(1 - p))
    for spec, pw in (("bce:pos_weight=3", 3.0), ("bce:pos_weight=balanced",
                                                  np.sum(yb == 0) / np.sum(yb == 1))):
        mult = np.where(yb == 1, pw, 1.0)
        data = {"p": p, "y": yb, "w": w}
        r = evaluate(data, "p", "y", weight, losses=[spec], chunk_rows=300).losses[0]
        assert r.se == pytest.approx(ratio_se(w * mult * lb, w), rel=1e-10), spec


def test_plugin_losses_get_intervals(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    """A custom loss (examples/asymmetric_cost.py) goes through the same per-row path."""
    from pathlib import Path

    from losscli.cli import run

    example = Path(__file__).resolve().parent.parent / "examples" / "asymmetric_cost.py"
    rng = np.random.default_rng(4)
    y = rng.normal(size=400)
    pred = y + rng.normal(size=400)
    path = tmp_path / "d.csv"
    np.savetxt(path, np.c_[pred, y], delimiter=",", header="pred,y", comments="")
    assert run(["eval", str(path), "--plugin", str(example), "--loss", "asym:under=5",
                "--format", "json", "--ci", "t"]) == 0
    loss = json.loads(capsys.readouterr().out)["losses"][0]
    e = pred - y
    lv = np.where(e < 0, 5.0, 1.0) * e * e
    assert loss["se"] == pytest.approx(scipy.stats.sem(lv), rel=1e-10)
    low, high = scipy.stats.t.interval(0.95, lv.size - 1, loc=lv.mean(),
                                       scale=scipy.stats.sem(lv))
    assert (loss["ci"]["low"], loss["ci"]["high"]) == pytest.approx((low, high), rel=1e-10)


def test_johnson_interval_of_a_tiny_variance_does_not_divide_by_zero() -> None:
    """Found by fuzzing (weights of 2e-141 and 1): s2^2 underflowed to 0 and the skew term
    m3 / (3 s2^2) raised ZeroDivisionError, an internal error (exit 3)."""
    from losscli import evaluate

    s2, m3, n = 1e-170, 1e-256, 10  # skewness m3 / s2^1.5 = 0.1
    low, high = mean_interval(0.0, s2, m3, n, 0.95, "johnson")
    t_low, t_high = mean_interval(0.0, s2, m3, n, 0.95, "t")
    # a skewness of 0.1 over 10 terms moves the ends by a few percent at most
    assert low == pytest.approx(t_low, rel=0.05) and high == pytest.approx(t_high, rel=0.05)
    assert low < 0.0 < high
    report = evaluate({"y": [1.0, 0.0, 1.0], "pred": [0.0, 0.0, 1.0],
                       "w": [1.9552552033665177e-141, 1.0, 1.0]}, "pred", "y", "w",
                      losses=["mse"])
    want = 1.9552552033665177e-141 / (2.0 + 1.9552552033665177e-141)
    assert report.losses[0].value == pytest.approx(want, rel=1e-15)


def finished(residuals: np.ndarray, specs: list[str], method: str = "johnson",
             weight: np.ndarray | None = None, level: float = 0.95) -> list:
    """Each loss's result for one dataset, folded through EvalState and finished as eval
    finishes it."""
    parsed = [parse_spec(s) for s in specs]
    state = EvalState(parsed, spread=True, skew=method != "t")
    state.update(Batch(residuals, np.zeros(residuals.size), weight))
    return [_finish_loss(p, st, state, False, ci=CiOptions(method, level))
            for p, st in zip(parsed, state.losses, strict=True)]


def test_johnson_never_reaches_less_far_above_than_t_on_skewed_losses() -> None:
    """Lognormal residuals at n = 30 and 100 (the audit found Johnson's capped upper bound
    below t's in 31% of datasets): Hall's transform reaches at least as far, every time, and
    further in most."""
    rng = np.random.default_rng(1992)
    for n in (30, 100):
        further = 0
        for _ in range(300):
            e = rng.lognormal(0.0, 1.0, n)
            j, t = finished(e, ["mse"])[0].ci, finished(e, ["mse"], "t")[0].ci
            assert j.high >= t.high
            further += j.high > t.high
        assert further >= 250


def test_hall_inverse_is_the_root_of_the_papers_statistic(rng: np.random.Generator) -> None:
    """The closed-form inverse against a numerical root of the formula in hall_t."""
    from scipy.optimize import brentq

    for _ in range(20):
        x = rng.lognormal(0.0, rng.uniform(0.2, 1.5), int(rng.integers(5, 60)))
        r = finished(np.sqrt(x), ["mse"], level=0.9)[0].ci
        c = scipy.stats.t.ppf(0.95, x.size - 1)
        if x.mean() < r.high:
            root = brentq(lambda mu, x=x, c=c: hall_t(mu, x) + c, x.mean(), 1e3 * x.max())
            assert r.high == pytest.approx(max(root, x.mean() + c * scipy.stats.sem(x)),
                                           rel=1e-9)


@pytest.mark.parametrize(("sigma", "loss", "true"),
                         [(0.5, "mse", 1.0), (1.0, "mse", 1.0),
                          (1.0, "mae", math.sqrt(2.0 / math.pi))])
def test_weighted_coverage_at_n_100(sigma: float, loss: str, true: float) -> None:
    """Normal residuals, lognormal(0, sigma) weights, n = 100, 1,500 seeded datasets: the
    interval covers within [93%, 97%]. At sigma = 1 a few rows carry most of the weight:
    with Kish's effective n - 1 (about n / e) as the degrees of freedom it covered 89.7%;
    the weighted variance estimate has Satterthwaite's (sum w^2)^2 / sum w^4 - 1 (about
    n / 55), which the interval now uses. Both sizes are stated."""
    rng = np.random.default_rng(1965)
    hits = 0
    runs = 1500
    for _ in range(runs):
        e, w = rng.normal(size=100), rng.lognormal(0.0, sigma, 100)
        ci = finished(e, [loss], weight=w)[0].ci
        assert ci is not None and ci.effective_n == pytest.approx(w.sum() ** 2 / np.sum(w**2))
        assert ci.df == pytest.approx(np.sum(w**2) ** 2 / np.sum(w**4) - 1.0)
        hits += ci.low <= true <= ci.high
    assert 0.93 <= hits / runs <= 0.97


def test_no_bound_leaves_the_losss_range() -> None:
    """mse on 20 skewed rows: the t interval's lower end is often negative by its formula;
    every printed bound is >= 0 (the value of a non-negative loss cannot be below 0)."""
    rng = np.random.default_rng(20)
    below = 0
    for _ in range(300):
        e = rng.lognormal(0.0, 1.2, 20)
        lv = e * e
        below += lv.mean() - scipy.stats.t.ppf(0.975, 19) * scipy.stats.sem(lv) < 0
        for method in ("johnson", "t"):
            for r in finished(e, ["mse", "rmse", "mae"], method):
                assert r.ci is not None and r.ci.low >= 0.0
    assert below >= 30


def test_small_and_degenerate_samples_get_a_note(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    from losscli.cli import run

    r = finished(np.array([1.5]), ["mse", "rmse"])
    assert all(x.ci is not None and x.ci.note == "1 row(s): an interval needs 2 or more"
               for x in r)
    same = finished(np.full(5, 2.0), ["mse", "rmse"])
    assert [x.se for x in same] == [0.0, 0.0]  # rmse's SE is 0, not 0 / 0
    assert all(x.ci is not None and (x.ci.low, x.ci.high) == (x.value, x.value) for x in same)
    path = tmp_path / "one.csv"
    path.write_text("pred,y\n1,2\n")
    assert run(["eval", str(path), "-l", "mse", "-f", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["notes"] == ["mse: 1 row(s): an interval needs 2 or more"]
    assert doc["losses"][0]["ci"]["note"] == "1 row(s): an interval needs 2 or more"


def test_heavy_tails_are_named_and_normal_tails_are_not() -> None:
    """t(2.2) residuals: the squared error has tail index 1.1 (infinite variance); the warning
    names mse and rmse, never mae; normal residuals and the shipped sample (2% outliers, a
    cluster rather than a tail): no warning. The tail index is the larger of Hill's from the
    k = sqrt(n) and k / 2 largest |e| of the histogram, checked against Hill on the exact
    sorted |e| (NumPy)."""
    rng = np.random.default_rng(1975)
    for n in (2000, 20_000):
        y = rng.normal(size=n)
        e = rng.standard_t(2.2, n)
        r = evaluate({"p": y + e, "y": y}, "p", "y")
        heavy = [w for w in r.warnings if "heavy-tailed" in w]
        assert len(heavy) == 1 and heavy[0].startswith("mse (tail index")
        assert "rmse (tail index" in heavy[0] and "mae (" not in heavy[0]
        k = min(1000, max(10, math.isqrt(n)))
        top = np.sort(np.abs(e))[::-1]
        ref = max(1.0 / np.mean(np.log(top[:j] / top[j])) for j in (k, k // 2))
        got = {x.spec: x.tail_index for x in r.losses}
        assert got["mae"] == pytest.approx(ref, rel=0.05)
        assert got["mse"] == pytest.approx(ref / 2, rel=0.05)
        assert r.to_dict()["losses"][0]["tail_index"] == got["mse"]
        calm = evaluate({"p": y + rng.normal(size=n), "y": y}, "p", "y")
        assert not any("heavy-tailed" in w for w in calm.warnings)
    sample = evaluate(str(Path(__file__).parent.parent / "sample_data" / "regression.parquet"),
                      "y_hat", "y")
    assert sample.warnings == []


@pytest.mark.parametrize(("t", "k", "expected"), [
    (0.0, 0.6, 0.1),                                  # g(0) = k / 6: Johnson's bias term
    (1.0, 0.6, 1.0 + 0.2 + 0.36 / 27 + 0.1),          # 1.3133...
    (-2.0, 0.3, -2.0 + 0.4 - 0.72 / 27 + 0.05),       # the cubic term keeps it increasing
    (1.5, 0.0, 1.5),                                  # no skew: t itself
])
def test_hall_transform_by_hand(t: float, k: float, expected: float) -> None:
    """Hall (1992): g(t) = t + k t^2 / 3 + k^2 t^3 / 27 + k / 6, worked out by hand; its
    inverse undoes it."""
    from losscli.uncertainty import hall_inverse, hall_transform

    assert hall_transform(t, k) == pytest.approx(expected, rel=1e-14, abs=1e-15)
    assert hall_inverse(expected, k) == pytest.approx(t, rel=1e-12, abs=1e-12)
