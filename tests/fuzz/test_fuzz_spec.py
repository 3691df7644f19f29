"""Fuzzing the loss-spec parser through the CLI: specs built from the documented catalog must
give the value of the weighted sum they stand for (math.fsum references) and gate on it; specs
invalid by construction, and garbage, must be refused with one error line."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fuzzlib import (
    Rows,
    assert_clean_error,
    assert_contract,
    check_gates,
    check_report,
    close,
    fuzz_settings,
    run_cli,
)
from hypothesis import event, given
from hypothesis import strategies as st
from spec_strategies import Dataset, SpecCase, spec_cases, value_of


@pytest.fixture(scope="module")
def datasets(fuzz_dir: Path) -> dict[str, Dataset]:
    """One small CSV per task (seeded), in the domain of every loss of the task."""
    rng = np.random.default_rng(9)
    n = 40
    out: dict[str, Dataset] = {}
    y = rng.poisson(3.0, n).astype(float)
    pred = np.round(rng.gamma(3.0, 1.0, n) + 0.05, 6)
    out["regression"] = _write(fuzz_dir / "reg.csv", {"y": y, "pred": pred}, ["--target=y",
                               "--pred=pred"], list(pred), list(y))
    yb = rng.integers(0, 2, n).astype(float)
    p = np.round(rng.uniform(0.01, 0.99, n), 6)
    out["binary"] = _write(fuzz_dir / "bin.csv", {"y": yb, "p": p}, ["--target=y", "--pred=p"],
                           list(p), list(yb))
    label = rng.integers(0, 3, n).astype(float)
    probs = rng.dirichlet([1.0, 1.0, 1.0], n)
    cols = {"label": label, **{f"prob_{k}": probs[:, k] for k in range(3)}}
    out["multiclass"] = _write(fuzz_dir / "multi.csv", cols, ["--target=label", "--pred=prob_*"],
                               [tuple(float(v) for v in row) for row in probs], list(label))
    return out


def _write(path: Path, cols: dict[str, np.ndarray], args: list[str], pred: list[Any],
           target: list[float]) -> Dataset:
    names = list(cols)
    lines = [",".join(names)] + [",".join(repr(float(cols[c][i])) for c in names)
                                 for i in range(len(target))]
    path.write_text("\n".join(lines) + "\n")
    return Dataset(str(path), args, [float(v) if not isinstance(v, tuple) else v for v in pred],
                   [float(v) for v in target])


@fuzz_settings(150)
@given(case=spec_cases(), gate=st.sampled_from([None, None, 0.5, 1.0, 2.0]))
def test_loss_specs_mean_what_they_say_or_are_refused(case: SpecCase, gate: float | None,
                                                       datasets: dict[str, Dataset]) -> None:
    event("garbage" if case.garbage else (case.why or "valid"))
    data = datasets[case.task]
    args = ["eval", data.path, *data.args, f"--loss={case.text}", "-f", "json"]
    if case.terms is not None and gate is not None:
        limit = value_of(case, data)[0] * gate
        args.append(f"--max={case.text}={limit!r}")
    r = run_cli(args)
    assert_contract(r)
    if case.garbage:
        if r.rc in (0, 1):  # garbage that happens to be a spec: its value is still right
            check_report(r.json(), Rows(data.pred, data.target), 0)
        return
    if case.terms is None:
        assert_clean_error(r)
        return
    assert r.rc in (0, 1), (case, r.err)
    doc = r.json()
    assert len(doc["losses"]) == 1
    want, tol = value_of(case, data)
    got = doc["losses"][0]["value"]
    assert close(got, want, tol), (case.text, got, want)
    assert math.isfinite(want)
    check_gates(doc, r.rc)
    assert len(doc["gates"]) == (gate is not None)
