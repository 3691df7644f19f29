"""losscli recommend: each rule fires on data built to need it, with the parameters it should carry.

References are independent of the code under test: NumPy's exact median / MAD, loss formulas
written out here, and the known truth of the synthetic data (outlier rate, class shares).
Every statistical test uses >= 1e5 rows with a fixed seed.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from _helpers.references import huber
from _helpers.tester import sweep

from losscli.cli import run
from losscli.errors import InputError, UsageError
from losscli.recommend import (
    EXTREMELY_RARE_MINORITY,
    IMBALANCE_RATIO,
    OUTLIER_SHARE_LARGE,
    OUTLIER_SHARE_NOTABLE,
    RARE_MINORITY,
    Hints,
    Recommendation,
    recommend,
)

N = 200_000

# The README's constants, written out: robust scale = 1.4826 x MAD (the normal's sigma), Huber's
# delta = 1.345 x robust scale (95% efficiency at the normal).
MAD_TO_SIGMA = 1.4826
HUBER_K = 1.345


def exact_scale(e: np.ndarray) -> float:
    """1.4826 x the exact MAD (NumPy)."""
    return MAD_TO_SIGMA * float(np.median(np.abs(e - np.median(e))))


def regression_data(noise: np.ndarray, seed: int = 1) -> dict[str, np.ndarray]:
    y = np.random.default_rng(seed).normal(50.0, 10.0, noise.size)
    return {"y": y, "pred": y + noise}


def names(rec: Recommendation) -> list[str]:
    return [rec.recommended.name, *(a.name for a in rec.alternatives)]


# --- regression rules -------------------------------------------------------------------------


def test_gaussian_noise_recommends_mse_with_exact_candidate_values() -> None:
    noise = np.random.default_rng(10).normal(0.0, 2.0, N)
    data = regression_data(noise)
    rec = recommend(data)
    ev = rec.evidence
    assert ev is not None
    assert rec.task == "regression"
    assert rec.recommended.name == "mse" and rec.recommended.params == {}
    assert names(rec) == ["mse", "huber", "mae"]
    e = data["pred"] - data["y"]
    assert ev.robust_scale == pytest.approx(exact_scale(e), rel=0.005)  # the histogram
    assert ev.median == pytest.approx(float(np.median(e)), abs=0.01 * ev.robust_scale)
    assert ev.outlier_fraction < 0.002  # normal: 0.047%
    assert abs(ev.excess_kurtosis) < 0.1
    assert any(f"{100 * ev.outlier_fraction:.3g}%" in r for r in rec.reasons)
    # candidate values against formulas written out here
    delta = rec.alternatives[0].params["delta"]
    assert isinstance(delta, float)
    assert delta == pytest.approx(HUBER_K * exact_scale(e), rel=0.005)
    assert rec.recommended.value == pytest.approx(float(np.mean(e * e)), rel=1e-12)
    assert rec.alternatives[0].value == pytest.approx(float(np.mean(huber(e, delta))), rel=1e-12)
    assert rec.alternatives[1].value == pytest.approx(float(np.mean(np.abs(e))), rel=1e-12)
    assert rec.recommended.spec == "mse"
    assert rec.alternatives[0].spec == f"huber:delta={delta!r}"


def test_student_t_noise_recommends_huber_with_robust_delta() -> None:
    noise = np.random.default_rng(11).standard_t(3, N)
    data = regression_data(noise)
    rec = recommend(data)
    ev = rec.evidence
    assert ev is not None
    assert rec.recommended.name == "huber"
    assert names(rec) == ["huber", "mae", "mse"]
    e = data["pred"] - data["y"]
    delta = rec.recommended.params["delta"]
    assert isinstance(delta, float)
    assert delta == pytest.approx(HUBER_K * exact_scale(e), rel=0.005)
    # Student-t(3): MAD = t_0.75 = 0.7649, so the outlier cut 3.5 x 1.4826 x 0.7649 = 3.97
    # leaves P(|t3| > 3.97) = 2.9% outside.
    assert ev.outlier_fraction == pytest.approx(0.029, abs=0.003)
    assert ev.excess_kurtosis > 1.0
    assert any("kurtosis" in r and f"{ev.excess_kurtosis:.4g}" in r for r in rec.reasons)
    # symmetric noise: the quartile skewness, unlike the moment skewness, sees no asymmetry
    assert abs(ev.quartile_skewness) < 0.02
    assert not any("asymmetric" in r for r in rec.reasons)


def test_laplace_noise_recommends_huber_with_its_known_scale() -> None:
    b = 2.0
    noise = np.random.default_rng(12).laplace(0.0, b, N)
    rec = recommend(regression_data(noise))
    ev = rec.evidence
    assert ev is not None
    assert rec.recommended.name == "huber"
    # Laplace: MAD = b ln 2, excess kurtosis 3, P(|x| > 3.5 x 1.4826 b ln 2) = exp(-3.597)
    assert ev.mad == pytest.approx(b * math.log(2.0), rel=0.02)
    assert rec.recommended.params["delta"] == pytest.approx(
        HUBER_K * MAD_TO_SIGMA * b * math.log(2.0), rel=0.02)
    assert ev.excess_kurtosis == pytest.approx(3.0, abs=0.3)
    assert ev.outlier_fraction == pytest.approx(math.exp(-3.5 * MAD_TO_SIGMA * math.log(2.0)),
                                                abs=0.003)
    assert rec.alternatives[0].name == "mae"


@pytest.mark.parametrize(("rate", "expected"), [(0.05, "huber"), (0.25, "mae")])
def test_gross_outliers_at_a_known_rate(rate: float, expected: str) -> None:
    rng = np.random.default_rng(13)
    noise = rng.normal(0.0, 1.0, N)
    hit = rng.random(N) < rate
    noise[hit] = rng.choice([-1.0, 1.0], int(hit.sum())) * rng.uniform(20.0, 60.0, int(hit.sum()))
    rec = recommend(regression_data(noise))
    ev = rec.evidence
    assert ev is not None
    truth = float(hit.mean())
    assert abs(ev.outlier_fraction - truth) < 0.015
    assert rec.recommended.name == expected
    threshold = OUTLIER_SHARE_LARGE if expected == "mae" else OUTLIER_SHARE_NOTABLE
    assert ev.outlier_fraction > threshold
    pct = f"{100 * ev.outlier_fraction:.3g}%"
    assert any(pct in r and f"{100 * threshold:.3g}%" in r for r in rec.reasons)
    # the histogram shows them: the bins past the cut hold the outliers
    h = rec.histogram
    assert h is not None
    assert sum(b.count for b in h.bins) == ev.rows
    flagged = sum(b.count for b in h.bins if b.outlier)
    assert abs(flagged / ev.rows - ev.outlier_fraction) < 0.002


def test_skewed_target_only_gets_an_asymmetry_note() -> None:
    price = np.random.default_rng(14).lognormal(3.0, 1.0, N)
    rec = recommend({"price": price}, target="price")
    ev = rec.evidence
    assert ev is not None
    assert rec.mode == "target" and rec.columns is not None and rec.columns["pred"] is None
    assert ev.median == pytest.approx(float(np.median(price)), rel=0.005)
    assert ev.robust_scale == pytest.approx(exact_scale(price), rel=0.01)
    # lognormal(sigma = 1): Bowley skewness (e^0.674 + e^-0.674 - 2) / (e^0.674 - e^-0.674)
    q = math.exp(0.6745)
    assert ev.quartile_skewness == pytest.approx((q + 1 / q - 2) / (q - 1 / q), abs=0.02)
    assert any("asymmetric" in r for r in rec.reasons)
    assert rec.recommended.value is None
    assert any("need predictions" in n for n in rec.notes)


# --- robust scale accuracy --------------------------------------------------------------------


def test_mad_of_biased_residuals_matches_numpy() -> None:
    e = np.random.default_rng(15).normal(1000.0, 1.0, N)
    rec = recommend({"y": np.zeros(N) + 0.5, "pred": e + 0.5})
    ev = rec.evidence
    assert ev is not None
    exact_mad = float(np.median(np.abs(e - np.median(e))))
    assert ev.mad == pytest.approx(exact_mad, rel=0.01)
    assert ev.median == pytest.approx(float(np.median(e)), abs=0.01)
    assert ev.passes == 1
    assert ev.robust_scale_rel_error_bound < 0.006


def test_sorted_residuals_take_a_recentring_pass() -> None:
    e = np.sort(np.random.default_rng(16).normal(5.0, 3.0, N))
    y = np.random.default_rng(17).normal(0.0, 1.0, N)
    exact_mad = float(np.median(np.abs(e - np.median(e))))
    two = recommend({"y": y, "pred": y + e})
    one = recommend({"y": y, "pred": y + e}, second_pass=False)
    assert two.evidence is not None and one.evidence is not None
    # the first 65,536 rows of sorted data put the pilot far below the median
    assert two.evidence.passes >= 2 and one.evidence.passes == 1
    assert two.evidence.mad == pytest.approx(exact_mad, rel=0.006)
    bound = one.evidence.robust_scale_rel_error_bound
    assert bound > 0.006
    assert abs(one.evidence.mad / exact_mad - 1.0) <= bound
    assert any("within" in n for n in one.notes)
    assert one.recommended.value is not None  # mse: first pass
    huber = next(c for c in one.alternatives if c.name == "huber")
    assert huber.value is None and huber.value_note


# --- counts, binary, multiclass ---------------------------------------------------------------


def test_poisson_counts_recommend_poisson() -> None:
    rng = np.random.default_rng(18)
    rate = np.exp(rng.normal(1.0, 0.5, N))
    y = rng.poisson(rate)  # an integer column: counts
    rec = recommend({"y": y, "pred": rate})
    assert rec.task == "counts" and rec.recommended.name == "poisson"
    ylogy = np.where(y > 0, y * np.log(np.where(y > 0, y, 1.0) / rate), 0.0)
    assert rec.recommended.value == pytest.approx(float(np.mean(2 * (ylogy - y + rate))),
                                                  rel=1e-12)
    assert "non-negative integers" in rec.task_reason
    ev = rec.evidence
    assert ev is not None
    assert ev.target["dispersion"] == pytest.approx(float(np.var(y) / np.mean(y)), rel=1e-9)
    only = recommend({"y": y}, target_only=True)
    assert only.task == "counts" and only.recommended.name == "poisson"
    assert only.recommended.value is None


def binary(share: float, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random(N) < share).astype(float)
    p = np.clip(share + 0.4 * (y - share) + rng.normal(0.0, 0.05, N), 1e-4, 1 - 1e-4)
    return {"y": y, "p": p}


def test_balanced_binary_recommends_plain_bce() -> None:
    d = binary(0.5, 19)
    rec = recommend(d)
    assert rec.task == "binary"
    assert rec.recommended.name == "bce" and rec.recommended.params == {}
    y, p = d["y"], d["p"]
    assert rec.recommended.value == pytest.approx(
        float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))), rel=1e-12)
    ev = rec.evidence
    assert ev is not None and ev.class_balance is not None and ev.probabilities is not None
    assert ev.class_balance["fractions"]["1"] == float(y.mean())
    assert ev.probabilities["mean_abs_error"] == pytest.approx(float(np.mean(np.abs(p - y))),
                                                               rel=1e-12)
    assert ev.probabilities["brier"] == pytest.approx(float(np.mean((p - y) ** 2)), rel=1e-12)


def test_rare_positives_get_pos_weight() -> None:
    d = binary(0.04, 20)
    y, p = d["y"], d["p"]
    n_pos = int(y.sum())
    n_neg = N - n_pos
    assert EXTREMELY_RARE_MINORITY < n_pos / N < RARE_MINORITY
    rec = recommend(d)
    assert rec.recommended.name == "bce"
    pw = rec.recommended.params["pos_weight"]
    assert pw == pytest.approx(n_neg / n_pos, rel=5e-4)  # 4 significant digits
    assert isinstance(pw, float)
    assert rec.recommended.spec == f"bce:pos_weight={pw!r}"
    expected = -(pw * np.sum(y * np.log(p)) + np.sum((1 - y) * np.log(1 - p))) / N
    assert rec.recommended.value == pytest.approx(float(expected), rel=1e-12)
    assert any(f"{n_neg:,} / {n_pos:,}" in r for r in rec.reasons)
    assert [a.name for a in rec.alternatives] == ["bce", "focal"]


def test_extremely_rare_positives_get_focal() -> None:
    d = binary(0.004, 21)
    y, p = d["y"], d["p"]
    n_pos = int(y.sum())
    assert n_pos / N < EXTREMELY_RARE_MINORITY
    rec = recommend(d)
    assert rec.recommended.name == "focal"
    params = rec.recommended.params
    alpha = params["alpha"]
    assert params["gamma"] == 2.0
    assert alpha == pytest.approx((N - n_pos) / N, rel=5e-4)
    assert isinstance(alpha, float)
    pt = np.where(y == 1, p, 1 - p)
    at = np.where(y == 1, alpha, 1 - alpha)
    expected = float(np.mean(-at * (1 - pt) ** 2 * np.log(pt)))
    assert rec.recommended.value == pytest.approx(expected, rel=1e-11)
    assert rec.recommended.spec == f"focal:alpha={alpha!r}"
    assert rec.alternatives[0].name == "bce" and "pos_weight" in rec.alternatives[0].params


def multiclass(shares: list[float], seed: int) -> tuple[dict[str, np.ndarray], np.ndarray,
                                                         np.ndarray]:
    rng = np.random.default_rng(seed)
    k = len(shares)
    y = rng.choice(k, N, p=shares)
    z = rng.normal(0.0, 1.0, (N, k))
    z[np.arange(N), y] += 1.5
    probs = np.exp(z)
    probs /= probs.sum(axis=1, keepdims=True)
    return {"y": y.astype(float), **{f"prob_{c}": probs[:, c] for c in range(k)}}, y, probs


def test_balanced_multiclass_recommends_cce() -> None:
    d, y, probs = multiclass([0.25] * 4, 22)
    rec = recommend(d)
    assert rec.task == "multiclass" and rec.recommended.name == "cce"
    assert rec.recommended.params == {}
    py = probs[np.arange(N), y]
    assert rec.recommended.value == pytest.approx(float(-np.mean(np.log(py))), rel=1e-12)
    ev = rec.evidence
    assert ev is not None and ev.class_balance is not None and ev.probabilities is not None
    assert ev.class_balance["imbalance_ratio"] < IMBALANCE_RATIO
    assert ev.probabilities["accuracy"] == float(np.mean(probs.argmax(axis=1) == y))


def test_imbalanced_multiclass_gets_class_weights() -> None:
    d, y, probs = multiclass([0.7, 0.2, 0.08, 0.02], 23)
    rec = recommend(d)
    assert rec.recommended.name == "cce"
    counts = np.bincount(y, minlength=4)
    weights = rec.recommended.params["class_weights"]
    assert isinstance(weights, list)
    assert weights == pytest.approx(list(N / (4 * counts)), rel=5e-4)
    py = probs[np.arange(N), y]
    w = np.array(weights)[y]
    assert rec.recommended.value == pytest.approx(float(np.sum(w * -np.log(py)) / np.sum(w)),
                                                  rel=1e-12)
    ratio = counts.max() / counts.min()
    assert any(f"{ratio:.4g}x" in r for r in rec.reasons)
    assert rec.columns is not None and rec.columns["classes"] == ["0", "1", "2", "3"]


def test_task_override_and_target_only_classes() -> None:
    y = np.random.default_rng(24).choice(5, N, p=[0.5, 0.3, 0.1, 0.07, 0.03])
    detected = recommend({"label": y}, target="label")
    assert detected.task == "counts" and "--task multiclass" in detected.task_reason
    rec = recommend({"label": y}, target="label", task="multiclass")
    assert rec.task == "multiclass" and rec.task_reason == "--task multiclass was given."
    assert rec.evidence is not None and rec.evidence.class_balance is not None
    assert rec.evidence.class_balance["counts"] == {
        str(c): int(n) for c, n in enumerate(np.bincount(y.astype(int)))}
    assert "class_weights" in rec.recommended.params
    with pytest.raises(InputError, match="must be a binary target 0 or 1"):
        recommend({"label": y}, target="label", task="binary")


# --- invariance -------------------------------------------------------------------------------


def test_results_do_not_depend_on_chunking_threads_or_input(tmp_path: Path) -> None:
    rng = np.random.default_rng(25)
    data = regression_data(rng.standard_t(4, N // 10))
    runs = sweep("recommend", data, tmp_path, chunks=(1 << 17, 1000, 7777))
    assert runs.first().evidence is not None


# --- no data: the rules -----------------------------------------------------------------------


def test_rules_mode_applies_stated_properties() -> None:
    plain = recommend(task="regression")
    assert plain.mode == "rules" and plain.recommended.name == "mse" and plain.evidence is None
    assert [r.loss for r in plain.rules] == ["mae", "huber", "mse"]
    out = recommend(task="regression", hints=Hints(outliers=True))
    assert out.recommended.name == "huber"
    assert out.recommended.params == {"delta": None} and out.recommended.spec is None
    assert any(f"{HUBER_K}" in r for r in out.reasons)
    assert recommend(task="regression", hints=Hints(outlier_fraction=0.3)).recommended.name == "mae"
    rare = recommend(task="binary", hints=Hints(minority_share=0.05))
    assert rare.recommended.name == "bce" and rare.recommended.params == {"pos_weight": 19.0}
    extreme = recommend(task="binary", hints=Hints(minority_share=0.002))
    assert extreme.recommended.name == "focal" and extreme.recommended.params["alpha"] == 0.998
    weighted = recommend(task="multiclass", hints=Hints(imbalanced=True)).recommended
    # no data: eval measures the class weights itself
    assert weighted.params == {"class_weights": "balanced"}
    assert weighted.spec == "cce:class_weights=balanced"
    assert weighted.command == ("losscli eval FILE --pred PRED --target TARGET "
                                "--loss cce:class_weights=balanced")
    stated = recommend(task="binary", hints=Hints(imbalanced=True)).recommended
    assert stated.spec == "bce:pos_weight=balanced"
    assert recommend(task="counts").recommended.name == "poisson"
    with pytest.raises(UsageError, match="pass a SOURCE"):
        recommend()
    with pytest.raises(UsageError, match="describe data you do not have"):
        recommend({"y": [1.0, 2.0], "pred": [1.0, 2.5]}, hints=Hints(outliers=True))
    with pytest.raises(UsageError, match="describe classes"):
        recommend(task="regression", hints=Hints(imbalanced=True))


# --- command line -----------------------------------------------------------------------------


def cli(capfd: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    rc = run([str(a) for a in args])
    out, err = capfd.readouterr()
    return rc, out, err


@pytest.fixture(scope="module")
def t_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(26)
    y = rng.normal(0.0, 1.0, N)
    path = tmp_path_factory.mktemp("rec") / "preds.parquet"
    pq.write_table(pa.table({"y": y, "y_hat": y + rng.standard_t(3, N),
                             "price": rng.lognormal(3.0, 1.0, N)}), path)
    return path


def test_cli_json_document(capfd: pytest.CaptureFixture[str], t_file: Path) -> None:
    rc, out, err = cli(capfd, "recommend", t_file, "--pred", "y_hat", "--target", "y",
                       "--format", "json")
    assert rc == 0 and err == ""
    doc: dict[str, Any] = json.loads(out)
    assert doc["schema"] == "losscli.recommend/1"
    assert doc["task"] == "regression"
    assert doc["recommended"]["name"] == "huber"
    assert set(doc["recommended"]["params"]) == {"delta"}
    assert all({"name", "params", "reason"} <= set(a) for a in doc["alternatives"])
    assert {"rows", "median", "robust_scale", "outlier_fraction", "skewness", "excess_kurtosis",
            "class_balance"} <= set(doc["evidence"])
    assert doc["evidence"]["rows"] == N and doc["evidence"]["class_balance"] is None
    assert doc["reasons"] and all(isinstance(r, str) for r in doc["reasons"])
    assert doc["recommended"]["value"] > 0
    rc2, out2, _ = cli(capfd, "recommend", t_file, "--pred", "y_hat", "--target", "y",
                       "--format", "json", "--chunk-rows", "5000")
    assert rc2 == 0 and json.loads(out2)["recommended"] == doc["recommended"]


def test_cli_table_panel_evidence_and_histogram(capfd: pytest.CaptureFixture[str],
                                                t_file: Path) -> None:
    rc, out, err = cli(capfd, "recommend", t_file, "--pred", "y_hat", "--target", "y")
    assert rc == 0 and err == ""
    for text in ("losscli recommend: regression", "Recommended", "huber", "Evidence",
                 "outlier fraction", "log10(1 + count)", "outlier"):
        assert text in out
    assert "Selection rules" not in out  # behind --rules
    rc, out, _ = cli(capfd, "recommend", t_file, "--pred", "y_hat", "--target", "y", "--rules")
    assert rc == 0 and "Selection rules for regression" in out
    rc, out, _ = cli(capfd, "recommend", t_file, "--pred", "y_hat", "--target", "y", "--no-plot")
    assert rc == 0 and "log10(1 + count)" not in out and "Evidence" in out


def test_cli_rules_without_data(capfd: pytest.CaptureFixture[str]) -> None:
    rc, out, err = cli(capfd, "recommend", "--task", "regression", "--outliers")
    assert rc == 0 and err == ""
    assert "huber" in out and "delta = 1.345 x robust scale" in out
    rc, out, err = cli(capfd, "recommend")
    assert rc == 2 and out == ""
    assert err.startswith("losscli: error: ") and err.count("\n") == 1


def test_cli_bad_input_matches_eval(capfd: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("y,pred\n1,2\n2,\n3,4\n")
    results = [cli(capfd, cmd, path) for cmd in ("eval", "recommend")]
    for rc, out, err in results:
        assert rc == 2 and out == ""
        assert err.startswith("losscli: error: ") and err.count("\n") == 1
    assert results[0][2] == results[1][2]
    rc, out, err = cli(capfd, "recommend", path, "--pred", "nope")
    assert rc == 2 and out == "" and "'nope' not found" in err
    rc, out, err = cli(capfd, "recommend", path, "--task", "banana")
    assert rc == 2 and out == ""


def test_cli_stdin_single_pass(tmp_path: Path) -> None:
    rng = np.random.default_rng(27)
    y = rng.normal(0.0, 1.0, 20_000)
    e = rng.standard_t(3, y.size)
    text = "y,pred\n" + "".join(f"{a:.6f},{a + b:.6f}\n" for a, b in zip(y, e, strict=True))
    proc = subprocess.run([sys.executable, "-m", "losscli", "recommend", "-", "--format", "json"],
                          input=text.encode(), capture_output=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr.decode()
    doc = json.loads(proc.stdout)
    assert doc["source"]["path"] == "stdin" and doc["recommended"]["name"] == "huber"
    assert doc["recommended"]["value"] is None and doc["recommended"]["value_note"]
    assert any(a["value"] is not None for a in doc["alternatives"])  # mae, mse: first pass


def test_weights_enter_loss_values_only() -> None:
    rng = np.random.default_rng(28)
    d = binary(0.05, 29)
    w = rng.uniform(0.5, 2.0, N)
    rec = recommend({**d, "w": w}, weight="w")
    plain = recommend(d)
    y, p = d["y"], d["p"]
    pw = rec.recommended.params["pos_weight"]
    assert isinstance(pw, float)
    assert pw == plain.recommended.params["pos_weight"]  # class balance: row counts
    expected = -(pw * np.sum(w * y * np.log(p)) + np.sum(w * (1 - y) * np.log(1 - p))) / w.sum()
    assert rec.recommended.value == pytest.approx(float(expected), rel=1e-12)
    reg = regression_data(rng.normal(0, 1, N))
    mse = recommend({**reg, "w": w}, weight="w").recommended
    assert mse.name == "mse"
    e = reg["pred"] - reg["y"]
    assert mse.value == pytest.approx(float(np.sum(w * e * e) / w.sum()), rel=1e-12)
    with pytest.raises(InputError, match="must be a non-negative sample weight"):
        recommend({**d, "w": -w}, weight="w")
    with pytest.raises(InputError, match="sums to zero"):
        recommend({**d, "w": np.zeros(N)}, weight="w")


@pytest.mark.parametrize("task", [None, "regression"])
def test_recommend_every_row_dropped_is_one_error_without_a_warning(tmp_path: Path,
                                                                    task: str | None) -> None:
    """Found by fuzzing: with every row dropped (--nan drop), the pilot median of no values
    printed NumPy's "Mean of empty slice" RuntimeWarning before the error line."""
    import warnings

    path = tmp_path / "empty.csv"
    path.write_text("y,pred\n1,\n,2\n", encoding="utf-8")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(InputError, match="no rows left after dropping 2 row"):
            recommend(str(path), "pred", "y", None, task, nan="drop")
