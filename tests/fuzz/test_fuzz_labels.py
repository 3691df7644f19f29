"""Fuzzing the multiclass target rule: prediction columns named by integer, name or mixed
suffixes, targets written as suffixes, positions, floats or names, in CSV and Parquet. Each
target must select the class the README's rule gives (cce checked against a math.fsum
reference), or the input must be refused with one error line."""

from __future__ import annotations

import math
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from fuzzlib import EPS, assert_clean_error, assert_contract, close, fuzz_settings, run_cli
from hypothesis import event, given
from label_strategies import LabelCase, label_cases


def _write(case: LabelCase, directory: Path) -> Path:
    names = [f"prob_{s}" for s in case.suffixes]
    if case.fmt == "csv":
        path = directory / "labels.csv"
        lines = [",".join(["label", *names])]
        lines += [",".join([t, *(repr(p) for p in probs)])
                  for t, probs in zip(case.targets, case.probs, strict=True)]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return path
    path = directory / "labels.parquet"
    if case.parquet_type == "text":
        target = pa.array(case.targets, pa.string())
    elif case.parquet_type == "int":
        target = pa.array([int(t) for t in case.targets], pa.int64())
    else:
        target = pa.array([float(t) for t in case.targets], pa.float64())
    cols = {"label": target, **{name: pa.array([p[k] for p in case.probs], pa.float64())
                                for k, name in enumerate(names)}}
    pq.write_table(pa.table(cols), path)
    return path


@fuzz_settings(100)
@given(case=label_cases())
def test_multiclass_targets_follow_the_rule_or_are_refused(case: LabelCase,
                                                           fuzz_dir: Path) -> None:
    event(case.why or "values")
    path = _write(case, fuzz_dir)
    r = run_cli(["eval", str(path), "--target=label", "--pred=prob_*", "--loss=cce", "-f",
                 "json"])
    assert_contract(r)
    if case.classes is None:
        assert_clean_error(r)
        return
    assert r.rc == 0, (case.why, r.err)
    doc = r.json()
    assert doc["columns"]["classes"] == case.suffixes
    want = math.fsum(-math.log(min(max(p[k], EPS), 1.0 - EPS))
                     for p, k in zip(case.probs, case.classes, strict=True)) / len(case.probs)
    got = doc["losses"][0]["value"]
    assert close(got, want, 1e-12 * want), (got, want)
