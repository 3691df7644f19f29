"""Fuzzing the settings file (``[tool.losscli]``, ``losscli.toml``, ``--config``) and the
``--baseline`` report: documents built valid or invalid by construction, then mutated. A valid
one must run with loss values and gate verdicts equal to the references; an invalid one must be
refused with one error line; a mutated one must at least keep the exit-code contract."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from config_strategies import (
    SPECS,
    BaselineCase,
    ConfigCase,
    baseline_cases,
    config_cases,
)
from fuzzlib import (
    Result,
    Rows,
    assert_clean_error,
    assert_contract,
    check_gates,
    check_report,
    close,
    fuzz_settings,
    reference,
    run_cli,
)
from hypothesis import event, given

N = 30


def _columns() -> dict[str, list[float]]:
    """A small regression input (y, pred, w), seeded."""
    rng = np.random.default_rng(90)
    cols = {"y": rng.normal(0, 2, N), "pred": rng.normal(0, 2, N), "w": rng.uniform(0, 3, N)}
    return {k: [float(x) for x in v] for k, v in cols.items()}


VALUES = _columns()
#: the baseline test's losses on that input (unweighted), by the references in fuzzlib
REFERENCES = {spec: reference(Rows(VALUES["pred"], VALUES["y"]), *SPECS[spec])[0]
              for spec in ("mse", "mae", "huber:delta=2")}


@pytest.fixture(scope="module")
def data(fuzz_dir: Path) -> tuple[Path, dict[str, list[float]]]:
    """The input as a CSV file, and its columns."""
    path = fuzz_dir / "data.csv"
    path.write_text("y,pred,w\n" + "".join(
        f"{VALUES['y'][i]!r},{VALUES['pred'][i]!r},{VALUES['w'][i]!r}\n" for i in range(N)))
    return path, VALUES


def _rows(doc: dict[str, Any], values: dict[str, list[float]]) -> Rows:
    cols = doc["columns"]
    assert isinstance(cols, dict)
    assert cols["target"] == "y" and cols["pred"] == ["pred"]
    return Rows(values["pred"], values["y"], values["w"] if cols["weight"] == "w" else None)


def _check_values(r: Result, values: dict[str, list[float]]) -> dict[str, Any]:
    doc = r.json()
    check_report(doc, _rows(doc, values), 0)
    check_gates(doc, r.rc)
    return doc


@fuzz_settings(120)
@given(case=config_cases())
def test_settings_files_apply_or_are_refused(case: ConfigCase, fuzz_dir: Path,
                                             data: tuple[Path, dict[str, list[float]]]) -> None:
    event(f"{case.verdict}: {case.why}" if case.why else case.verdict)
    path, values = data
    work = fuzz_dir / f"cwd-{case.place}"
    work.mkdir(exist_ok=True)
    for old in work.iterdir():
        old.unlink()
    args = ["eval", str(path), "-f", "json"]
    name = {"pyproject": "pyproject.toml", "losscli.toml": "losscli.toml",
            "--config": "settings.toml"}[case.place]
    (work / name).write_bytes(case.text)
    if case.place == "--config":
        args.append(f"--config={work / name}")
    if "losses" not in case.settings:
        args += ["--loss=mse", "--loss=mae"]  # the file's other settings still apply
    r = run_cli(args, cwd=str(work))
    assert_contract(r)
    if case.verdict == "bad":
        assert_clean_error(r)
        return
    if case.verdict == "ok":
        assert r.rc in (0, 1), (case.why, r.err)
    if r.rc in (0, 1):
        doc = _check_values(r, values)
        if case.verdict == "ok":
            asked = case.losses or ["mse", "mae"]
            assert [e["spec"] for e in doc["losses"]] == asked
            assert doc["settings"]["nan"] == case.settings.get("nan", "error")
            limits = case.settings.get("max", {})
            assert {g["loss"]: g["limit"] for g in doc["gates"]} == {
                k: float(v) for k, v in limits.items()}


def test_references_are_apart() -> None:
    """The baseline test's factors (0.99, 1.01) move a value past its limit by far more than
    the rounding of a sum."""
    assert all(v > 0.1 for v in REFERENCES.values())


@fuzz_settings(150)
@given(case=baseline_cases(REFERENCES))
def test_baselines_gate_or_are_refused(case: BaselineCase, fuzz_dir: Path,
                                       data: tuple[Path, dict[str, list[float]]]) -> None:
    event(f"{case.verdict}: {case.why}" if case.why else case.verdict)
    path, values = data
    base = fuzz_dir / "baseline.json"
    base.write_bytes(case.text)
    args = ["eval", str(path), "-f", "json", "--target=y", "--pred=pred", "--loss=mse",
            "--loss=mae", "--loss=huber:delta=2", f"--baseline={base}"]
    if case.tolerance is not None:
        args.append(f"--tolerance={case.tolerance}")
    r = run_cli(args)
    assert_contract(r)
    if case.verdict == "bad":
        assert_clean_error(r)
        return
    if case.verdict == "ok":
        assert r.rc in (0, 1), (case.why, r.err)
    if r.rc not in (0, 1):
        return
    doc = _check_values(r, values)
    if case.verdict != "ok":
        return
    amount, relative = case.tol
    gates = {g["loss"]: g for g in doc["gates"] if g["kind"] == "baseline"}
    assert set(gates) == {"mse", "mae", "huber:delta=2"}
    for spec, g in gates.items():
        b = case.values.get(spec)
        if b is None:  # missing, or recorded as null: cannot pass
            assert g["passed"] is False and g["limit"] is None, g
            continue
        limit = b + (abs(b) * amount if relative else amount)
        assert close(g["limit"], limit, 1e-12 * abs(limit)), (g, limit)
        assert g["passed"] == (g["value"] <= g["limit"])
