"""The eval table at 80, 100 and 240 columns: values and intervals whole, nothing cut."""

from __future__ import annotations

import io

import numpy as np
import pytest
from rich.console import Console

from losscli import evaluate
from losscli.engine import Report
from losscli.render import ci_text, fmt
from losscli.render.table import print_eval, with_defaults

SPECS = ["mse", "rmse", "mae", "huber", "smooth_l1", "log_cosh", "quantile", "0.7*mse+0.3*mae"]


@pytest.fixture(scope="module")
def report() -> Report:
    rng = np.random.default_rng(5)
    y = rng.normal(0, 3, 2000)
    pred = y + rng.standard_t(3, 2000) * 2.5 + 0.02
    return evaluate({"y_hat": pred, "y": y}, "y_hat", "y", losses=SPECS, grad_clip=1.0)


def render(report: Report, width: int) -> str:
    buf = io.StringIO()
    print_eval(report, Console(file=buf, width=width, no_color=True, color_system=None))
    return buf.getvalue()


@pytest.mark.parametrize("width", [80, 100, 240])
def test_every_number_is_whole_at_width(report: Report, width: int) -> None:
    text = render(report, width)
    assert "…" not in text
    assert max(len(line) for line in text.splitlines()) <= width
    for r in report.losses:
        assert r.ci is not None
        row = next(line for line in text.splitlines()
                   if line.startswith(f"│ {with_defaults(r.spec)} "))
        assert f" {fmt(r.value)} " in row
        assert ci_text(r.ci.low, r.ci.high) in row
        assert fmt(r.se, 4) in row
        # every gradient number appears in some row of this loss
        rows = [line for line in text.splitlines()
                if line.startswith(f"│ {with_defaults(r.spec)} ")]
        for v in (r.gradient.mean, r.gradient.p99, r.gradient.abs_max, r.gradient.norm):
            assert any(f" {fmt(v, 4)} " in x for x in rows), (r.spec, v)


def test_one_table_when_it_fits_and_several_when_not(report: Report) -> None:
    assert render(report, 240).count("┏") == 1
    narrow = render(report, 80)
    assert narrow.count("┏") >= 3
    titles = [line.strip() for line in narrow.splitlines()]
    assert "Losses" in titles and "Gradient statistics (g = d loss / d prediction)" in titles


def test_piped_output_keeps_the_full_width(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import subprocess
    import sys

    path = tmp_path / "d.csv"
    rng = np.random.default_rng(1)
    y = rng.normal(size=300)
    np.savetxt(path, np.c_[y + rng.normal(size=300), y], delimiter=",", header="pred,y",
               comments="")
    out = subprocess.run([sys.executable, "-m", "losscli", "eval", str(path)],
                         capture_output=True, text=True, env={"PATH": ""}, check=True).stdout
    assert out.count("┏") == 1 and max(len(x) for x in out.splitlines()) > 100
    # $COLUMNS, when set, is the width asked for (a CI log, less -S)
    out = subprocess.run([sys.executable, "-m", "losscli", "eval", str(path)],
                         capture_output=True, text=True, env={"COLUMNS": "80", "PATH": ""},
                         check=True).stdout
    assert max(len(x) for x in out.splitlines()) <= 80


def test_gradient_quantiles_stay_within_min_and_max() -> None:
    """Every |g| of the quantile loss is 0.5 (no zero residual): the histogram midpoint 0.502
    must not be reported."""
    rng = np.random.default_rng(2)
    y = rng.normal(size=5000)
    pred = y + np.where(rng.uniform(size=5000) < 0.5, -1.0, 1.0) * rng.uniform(0.1, 2, 5000)
    r = evaluate({"p": pred, "y": y}, "p", "y", losses=["quantile", "mae", "quantile:q=0.9"])
    q, mae, q9 = r.losses
    assert (q.gradient.p50, q.gradient.p90, q.gradient.p99) == (0.5, 0.5, 0.5)
    assert q.gradient.abs_max == 0.5
    assert (mae.gradient.p50, mae.gradient.p99) == (1.0, 1.0)
    assert q9.gradient.p99 == 0.9 and q9.gradient.p50 <= 0.9
    assert q9.gradient.p50 >= 0.1


def test_clipped_inputs_and_clipped_gradients_have_distinct_headers() -> None:
    """The count of probabilities clipped to [eps, 1 - eps] and the fraction of |g| beyond
    --grad-clip are different quantities: their headers say which is which."""
    y = np.array([0.0, 1.0, 1.0, 0.0, 1.0])
    p = np.array([0.0, 1.0, 0.7, 0.2, 0.9])  # two probabilities at the ends are clipped
    rep = evaluate({"p": p, "y": y}, "p", "y", losses=["bce"], grad_clip=1.05)
    text = render(rep, 240)
    header = next(line for line in text.splitlines() if "inputs clipped" in line)
    assert "|g| > clip" in header and "p clipped" not in text
    row = next(line for line in text.splitlines() if line.startswith("│ bce "))
    cells = [c.strip() for c in row.strip("│").split("│")]
    heads = [c.strip() for c in header.strip("┃").split("┃")]
    assert cells[heads.index("inputs clipped")] == "2"
    # |g| = 1/p (y = 1) or 1/(1 - p) (y = 0): 1, 1, 1.43, 1.25, 1.11; three beyond 1.05
    assert cells[heads.index("|g| > clip")] == "60.0%"
