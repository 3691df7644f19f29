"""Fuzzing the Parquet and Arrow IPC readers: tables of every numeric type (and others), nulls,
dictionaries, list columns, empty files and row groups, read by losscli and checked against
math.fsum references on the values written, or refused with one error line."""

from __future__ import annotations

from pathlib import Path

from arrow_strategies import ArrowCase, multiclass_cases, regression_cases
from fuzzlib import assert_clean_error, assert_contract, check_report, fuzz_settings, run_cli
from hypothesis import event, given
from hypothesis import strategies as st


def _run(case: ArrowCase, directory: Path) -> None:
    event(case.note)
    path = case.write(directory)
    r = run_cli(["eval", str(path), "-f", "json", *case.args])
    assert_contract(r)
    if case.rows is None:
        assert_clean_error(r)
        return
    assert r.rc == 0, (case.note, r.err)
    check_report(r.json(), case.rows, case.dropped, case.losses)


@fuzz_settings(120)
@given(case=regression_cases())
def test_arrow_columns_read_exactly_or_refused(case: ArrowCase, fuzz_dir: Path) -> None:
    _run(case, fuzz_dir)


@fuzz_settings(60)
@given(case=multiclass_cases())
def test_multiclass_columns_read_exactly_or_refused(case: ArrowCase, fuzz_dir: Path) -> None:
    _run(case, fuzz_dir)


@fuzz_settings(40)
@given(case=st.one_of(regression_cases(), multiclass_cases()))
def test_recommend_reads_the_same_tables(case: ArrowCase, fuzz_dir: Path) -> None:
    """recommend on the same files: the same rows, or one error line."""
    event(case.note)
    path = case.write(fuzz_dir)
    task = "multiclass" if "--loss=cce" in case.args else "regression"
    args = [a for a in case.args if not a.startswith(("--loss", "--weight"))]
    r = run_cli(["recommend", str(path), "-f", "json", f"--task={task}", *args])
    assert_contract(r)
    if r.rc == 0 and case.rows is not None and case.rows.weight is None:
        evidence = r.json()["evidence"]
        assert (evidence["rows"], evidence["rows_dropped"]) == (len(case.rows.target),
                                                                case.dropped)
