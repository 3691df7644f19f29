"""recommend's rules on the target's shape: zero-inflated amounts -> tweedie, positive
right-skewed targets -> gamma (msle when predictions reach below 0), each with the measured
evidence, and candidate values equal to eval's; the residual rules are untouched elsewhere."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from conftest import rel_close
from scipy import stats

import losscli
from losscli.recommend import Hints, recommend
from losscli.recommend.thresholds import POSITIVE_SKEW, TWEEDIE_POWER, ZERO_MASS

N = 4000


def eval_value(spec: str, y: np.ndarray, pred: np.ndarray) -> float:
    return losscli.evaluate({"y": y, "pred": pred}, pred="pred", target="y",
                            losses=[spec]).losses[0].value


def claim_sizes(seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Gamma(shape 2) amounts around a log-linear mean (skewness about 2.6), and the mean."""
    rng = np.random.default_rng(seed)
    mu = np.exp(1.0 + 0.5 * rng.normal(size=N))
    return rng.gamma(2.0, mu / 2.0), mu


def test_positive_skewed_targets_get_gamma_with_evidence() -> None:
    y, mu = claim_sizes()
    rec = recommend({"y": y, "pred": mu}, pred="pred", target="y")
    assert rec.task == "regression"
    assert rec.recommended.name == "gamma"
    names = [a.name for a in rec.alternatives]
    assert names[0] == "msle" and names[1] in ("huber", "mae", "mse")
    ev = rec.evidence
    assert ev is not None
    assert rel_close(ev.target["skewness"], float(stats.skew(y)), 1e-9)
    assert ev.target["skewness"] > POSITIVE_SKEW and ev.target["min"] == float(y.min()) > 0
    assert any(f"skewness {ev.target['skewness']:.4g}" in r for r in rec.reasons), rec.reasons
    # the values are eval's, to the bit of a second pass
    assert rel_close(rec.recommended.value, eval_value("gamma", y, mu), 1e-12)
    assert rel_close(rec.alternatives[0].value, eval_value("msle", y, mu), 1e-12)
    assert [r.loss for r in rec.rules][:2] == ["tweedie", "gamma"]


def test_recommend_command_evaluates_the_new_loss(tmp_path: Path) -> None:
    import pandas as pd

    y, mu = claim_sizes(7)
    path = f"{tmp_path}/claims.csv"
    pd.DataFrame({"y": y, "pred": mu}).to_csv(path, index=False)
    rec = recommend(path, pred="pred", target="y")
    assert rec.recommended.command is not None and "--loss gamma" in rec.recommended.command
    assert rel_close(rec.recommended.value, losscli.evaluate(
        path, pred="pred", target="y", losses=["gamma"]).losses[0].value, 1e-12)


def test_positive_skewed_targets_with_negative_predictions_get_msle() -> None:
    y, mu = claim_sizes(2)
    pred = mu.copy()
    pred[:10] = -0.5  # outside gamma's domain, inside msle's
    rec = recommend({"y": y, "pred": pred}, pred="pred", target="y")
    assert rec.recommended.name == "msle"
    assert rel_close(rec.recommended.value, eval_value("msle", y, pred), 1e-12)
    assert any("min -0.5" in r for r in rec.reasons), rec.reasons


def test_zero_inflated_amounts_get_tweedie() -> None:
    rng = np.random.default_rng(3)
    k = rng.poisson(0.6, N)
    y = np.array([rng.gamma(2.0, 3.0, c).sum() for c in k])
    pred = np.full(N, y.mean()) * np.exp(rng.normal(0.0, 0.2, N))
    zeros = float(np.mean(y == 0))
    assert zeros > ZERO_MASS
    rec = recommend({"y": y, "pred": pred}, pred="pred", target="y")
    assert rec.recommended.name == "tweedie"
    assert rec.recommended.params == {"power": TWEEDIE_POWER}
    assert rec.recommended.spec == "tweedie"  # 1.5 is the default power
    ev = rec.evidence
    assert ev is not None and ev.target["zero_fraction"] == zeros
    assert rel_close(rec.recommended.value, eval_value(f"tweedie:power={TWEEDIE_POWER}", y,
                                                         pred), 1e-12)
    assert rec.alternatives[0].name == "poisson"
    assert rel_close(rec.alternatives[0].value, eval_value("poisson", y, pred), 1e-12)


def test_target_only_skewed_amounts() -> None:
    y, _ = claim_sizes(4)
    rec = recommend({"y": y}, target="y")
    assert rec.mode == "target" and rec.recommended.name == "gamma"
    assert rec.recommended.value is None and rec.recommended.spec == "gamma"


@pytest.mark.parametrize("case", ["symmetric", "negative", "counts", "few_zeros"])
def test_other_targets_keep_the_residual_rules(case: str) -> None:
    """Positive but symmetric targets, targets of both signs, counts with zeros and amounts
    with a zero share below the threshold are not sent to the target-shape rules."""
    rng = np.random.default_rng(5)
    if case == "symmetric":
        y = rng.normal(100.0, 5.0, N)
    elif case == "negative":
        y = rng.gamma(2.0, 3.0, N) - 1.0
    elif case == "counts":
        y = rng.poisson(0.8, N)  # an integer column: counts (whole floats are amounts)
    else:
        y = rng.gamma(8.0, 1.0, N)  # skewness 0.71 < 1, no zeros
        y[: int(N * ZERO_MASS / 2)] = 0.0
    pred = y + rng.normal(0.0, 1.0, N)
    if case == "counts":
        pred = np.full(N, y.mean())
    rec = recommend({"y": y, "pred": pred}, pred="pred", target="y")
    assert rec.recommended.name in ("mse", "huber", "mae", "poisson"), (case, rec.recommended)
    assert rec.recommended.name not in ("gamma", "tweedie", "msle")
    if case == "counts":
        assert rec.task == "counts" and rec.recommended.name == "poisson"


def test_rules_without_data_are_unchanged() -> None:
    rec = recommend(task="regression", hints=Hints())
    assert [r.loss for r in rec.rules] == ["mae", "huber", "mse"]
    assert rec.recommended.name == "mse"


def test_skewness_threshold_separates_shapes_by_seeded_simulation() -> None:
    """At 2,000 rows the target skewness falls on the documented side of POSITIVE_SKEW for
    exponential (2) and lognormal(0.5) (1.75) amounts, and for normal (0) and Gamma(shape 16)
    (0.5) ones, in every one of 20 seeded draws."""
    rng = np.random.default_rng(6)
    for _ in range(20):
        above = [rng.exponential(1.0, 2000), rng.lognormal(0.0, 0.5, 2000)]
        below = [rng.normal(10.0, 1.0, 2000), rng.gamma(16.0, 1.0, 2000)]
        assert all(stats.skew(x) > POSITIVE_SKEW for x in above)
        assert all(stats.skew(x) < POSITIVE_SKEW for x in below)
    assert math.isclose(2.0 / math.sqrt(4.0), POSITIVE_SKEW)  # Gamma(shape 4) sits on it


# --- soft targets and a predicted variance ---------------------------------------------------


def soft_frame(q: np.ndarray, z: np.ndarray) -> dict[str, np.ndarray]:
    data = {f"p_{k}": z[:, i] for i, k in enumerate("abc")}
    data.update({f"q_{k}": q[:, i] for i, k in enumerate("abc")})
    return data


def test_soft_targets_get_kl_div_with_their_entropy() -> None:
    rng = np.random.default_rng(8)
    z = rng.normal(0.0, 2.0, (N, 3))
    q = rng.dirichlet(np.ones(3), N)
    rec = recommend(soft_frame(q, z), pred="p_*", target="q_*", logits=True)
    assert rec.task == "multiclass" and rec.recommended.name == "kl_div"
    assert rec.alternatives[0].name == "cce"
    ref = losscli.evaluate(soft_frame(q, z), pred="p_*", target="q_*", logits=True,
                           losses=["kl_div", "cce"]).losses
    assert rec.recommended.value == ref[0].value and rec.alternatives[0].value == ref[1].value
    entropy = math.fsum(-a * math.log(a) for a in q.ravel().tolist()) / N
    assert any(f"mean entropy is {entropy:.4g} nats" in r for r in rec.reasons), rec.reasons
    onehot = np.eye(3)[rng.integers(0, 3, N)]
    labels = recommend(soft_frame(onehot, z), pred="p_*", target="q_*", logits=True)
    assert labels.recommended.name == "cce"


def gaussian_frame(scale_var: float, seed: int = 9) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    mu = rng.normal(0.0, 3.0, N)
    var = rng.uniform(0.5, 4.0, N)
    return {"y": mu + rng.normal(0.0, 1.0, N) * np.sqrt(var), "mu": mu, "v": var * scale_var}


@pytest.mark.parametrize(("scale", "verdict"), [(1.0, "consistent with calibrated"),
                                                (4.0, "too large"), (0.25, "too small")])
def test_a_variance_column_gets_gaussian_nll(scale: float, verdict: str) -> None:
    data = gaussian_frame(scale)
    rec = recommend(data, pred="mu", target="y", var="v")
    assert rec.recommended.name == "gaussian_nll" and rec.alternatives[0].name == "mse"
    ref = losscli.evaluate(data, pred="mu", target="y", var="v",
                           losses=["gaussian_nll", "mse"]).losses
    assert rec.recommended.value == ref[0].value and rec.alternatives[0].value == ref[1].value
    assert any(verdict in r for r in rec.reasons), rec.reasons


def test_variance_recommendation_command(tmp_path: Path) -> None:
    import pandas as pd

    path = tmp_path / "g.csv"
    pd.DataFrame(gaussian_frame(1.0)).to_csv(path, index=False)
    rec = recommend(str(path), pred="mu", target="y", var="v")
    assert rec.recommended.command is not None
    assert rec.recommended.command.endswith("--loss gaussian_nll --var v")
    from losscli.errors import UsageError

    with pytest.raises(UsageError, match="--pred"):
        recommend(str(path), target="y", var="v", target_only=True)
