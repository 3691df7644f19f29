"""Odd and hostile inputs: no silent wrong value, no crash, no harm to the files around it.

Each test is the regression test of one defect class; values are checked against independent
references (scikit-learn, exact rational arithmetic with ``fractions.Fraction``, hand formulas).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import warnings
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from test_cli import Result, assert_input_error, cli

from losscli.cli import run
from losscli.state import ExactSum, bucket_value

# --- weights near the float64 limits (scale-invariant weighted means and norms) ---------------

W_ROWS = [(1.0, 2.0), (3.0, 5.0), (2.0, 2.5)]  # (y, pred)


def _weighted_reference(weights: list[float], loss: str) -> tuple[float, float]:
    """(sum w l / sum w, sqrt(sum (w g)^2) / sum w) in exact rational arithmetic; only the
    logarithm of poisson is taken in floats, row by row."""
    ws = [Fraction(w) for w in weights]
    ls: list[Fraction] = []
    gs: list[Fraction] = []
    for y, p in W_ROWS:
        fy, fp = Fraction(y), Fraction(p)
        if loss == "mse":
            ls.append((fp - fy) ** 2)
            gs.append(2 * (fp - fy))
        else:  # poisson deviance 2 (y log(y/mu) - y + mu), gradient 2 (1 - y/mu)
            ls.append(2 * (fy * Fraction(math.log(y / p)) - fy + fp))
            gs.append(2 * (1 - fy / fp))
    total = sum(ws)
    mean = sum(w * v for w, v in zip(ws, ls, strict=True)) / total
    norm2 = sum((w * g) ** 2 for w, g in zip(ws, gs, strict=True)) / total**2
    return float(mean), math.sqrt(float(norm2))


@pytest.mark.parametrize("weights", [
    [1e308, 1e308, 1e308],      # sum w overflows: poisson read 0.0, mse null
    [1e308, 5e307, 1.7e308],
    [1e-200, 3e-200, 2e-200],   # (w g)^2 underflows: the norm read 0.0
    [5e-324, 1e-323, 5e-324],   # subnormal weights
    [1e300, 1.0, 1e-300],       # a range wider than the float64 exponent
])
@pytest.mark.parametrize("loss", ["mse", "poisson"])
def test_extreme_weights_give_the_exact_weighted_mean_and_norm(
        capfd: pytest.CaptureFixture[str], tmp_path: Path, weights: list[float],
        loss: str) -> None:
    f = tmp_path / "w.csv"
    f.write_text("y,p,w\n" + "".join(f"{y!r},{p!r},{w!r}\n"
                                     for (y, p), w in zip(W_ROWS, weights, strict=True)))
    for chunk in ("1", "131072"):
        rc, out, err = cli(capfd, "eval", f, "--weight", "w", "--loss", loss, "-f", "json",
                           "--chunk-rows", chunk)
        assert rc == 0, err
        got = json.loads(out)["losses"][0]
        mean, norm = _weighted_reference(weights, loss)
        assert got["value"] == pytest.approx(mean, rel=1e-14)
        assert got["gradient"]["norm"] == pytest.approx(norm, rel=1e-14)


def test_extreme_weights_still_fail_a_gate(capfd: pytest.CaptureFixture[str],
                                           tmp_path: Path) -> None:
    f = tmp_path / "w.csv"
    f.write_text("y,p,w\n1,2,1e308\n3,5,1e308\n")
    rc, _, err = cli(capfd, "eval", f, "--weight", "w", "--loss", "poisson",
                     "--max", "poisson=0.1")
    assert rc == 1, err
    assert "poisson = 0.77437" in err


def test_exact_sum_survives_overflow_and_infinities() -> None:
    s = ExactSum()
    for _ in range(3):
        s.add(1.7e308)
    assert s.value == math.inf  # 5.1e308 is beyond float64: +inf, not an exception
    n = ExactSum()
    n.add(3.0)
    assert s.ratio(n) == float(Fraction(1.7e308) * 3 / 3)
    s.add(-1.7e308)
    s.add(-1.7e308)
    assert s.value == 1.7e308
    s.add(math.inf)
    s.add(-math.inf)
    assert math.isnan(s.value)


# --- logits of +-1e308 -------------------------------------------------------------------------

LOGIT_ROWS = [(0, 1e308), (1, -1e308), (0, -3.0), (1, 2.0)]


def _bce_logits_reference() -> float:
    """mean of softplus(z) - y z = max(z, 0) - y z + log1p(exp(-|z|)), summed exactly."""
    total = sum(Fraction(max(z, 0.0)) - y * Fraction(z) + Fraction(math.log1p(math.exp(-abs(z))))
                for y, z in LOGIT_ROWS)
    return float(total / len(LOGIT_ROWS))


def test_recommend_and_eval_on_logits_of_1e308(capfd: pytest.CaptureFixture[str],
                                               tmp_path: Path) -> None:
    f = tmp_path / "logits.csv"
    f.write_text("y,logit\n" + "".join(f"{y},{z!r}\n" for y, z in LOGIT_ROWS))
    ref = _bce_logits_reference()  # 5e307: finite although sum l is not
    rc, out, err = cli(capfd, "recommend", f, "--logits", "-f", "json")
    assert rc == 0, err
    assert json.loads(out)["recommended"]["value"] == pytest.approx(ref, rel=1e-15)
    rc, out, err = cli(capfd, "eval", f, "--logits", "--loss", "bce", "-f", "json")
    assert rc == 0, err
    assert json.loads(out)["losses"][0]["value"] == pytest.approx(ref, rel=1e-15)


# --- no RuntimeWarning on stderr ---------------------------------------------------------------


def test_infinite_residuals_warn_nothing_under_quiet(tmp_path: Path) -> None:
    f = tmp_path / "inf.csv"
    f.write_text("y,p\n" + "".join("1e308,-1e308\n-1e308,1e308\n" for _ in range(50)))
    for command in ("eval", "recommend"):
        proc = subprocess.run([sys.executable, "-W", "error::RuntimeWarning", "-m", "losscli",
                               command, str(f), "--quiet"],
                              capture_output=True, text=True, timeout=60, check=False)
        assert proc.returncode == 0, proc.stderr
        assert proc.stderr == ""


def test_histogram_bucket_of_infinity_is_infinity() -> None:
    keys = np.right_shift(np.array([np.inf, np.finfo(np.float64).max]).view(np.int64), 45)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        values = bucket_value(keys)
    assert values[0] == math.inf
    assert math.isfinite(values[1]) and values[1] <= np.finfo(np.float64).max


_ = (Result, assert_input_error, run)
