"""Fuzzing the Parquet and Arrow IPC readers: tables of every numeric type (and others), nulls,
dictionaries, list columns, empty files and row groups, read by losscli and checked against
math.fsum references on the values written, or refused with one error line."""

from __future__ import annotations

from pathlib import Path

from arrow_strategies import ArrowCase, multiclass_cases, regression_cases
from fuzzlib import assert_clean_error, assert_contract, check_report, fuzz_settings, run_cli
from hypothesis import event, given


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
