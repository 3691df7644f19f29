"""The command line end to end: exit codes, stdout (the result only) and stderr (one line).

Every command runs in-process through :func:`losscli.cli.run`; stdin cases run ``python -m
losscli`` in a subprocess. Inputs are written to ``tmp_path`` by the tests themselves.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest
from _helpers.cli import assert_input_error, cli, cli_stdin, write
from _helpers.tester import CHUNK_ROWS, assert_invariant, strip_run_keys

Y = [1.0, 2.0, 3.0, 4.0]
PRED = [1.5, 2.0, 2.0, 5.0]
MSE = float(np.mean((np.array(PRED) - np.array(Y)) ** 2))  # 0.5625
MAE = float(np.mean(np.abs(np.array(PRED) - np.array(Y))))  # 0.625
CSV_TEXT = "y,pred\n" + "".join(f"{a:g},{b:g}\n" for a, b in zip(Y, PRED, strict=True))

def table(**cols: list[Any]) -> pa.Table:
    return pa.table({k: pa.array(v) for k, v in cols.items()})


def loss_value(doc: dict[str, Any], name: str) -> float:
    return float(next(r["value"] for r in doc["losses"] if r["name"] == name))


# --- happy paths, one per input kind ---------------------------------------------------------


def _csv(d: Path) -> Path:
    return write(d / "preds.csv", CSV_TEXT)


def _csv_gz(d: Path) -> Path:
    p = d / "preds.csv.gz"
    p.write_bytes(gzip.compress(CSV_TEXT.encode()))
    return p


def _tsv(d: Path) -> Path:
    return write(d / "preds.tsv", CSV_TEXT.replace(",", "\t"))


def _parquet(d: Path) -> Path:
    p = d / "preds.parquet"
    pq.write_table(table(y=Y, pred=PRED), p)
    return p


def _parquet_dir(d: Path) -> Path:
    p = d / "parts"
    p.mkdir()
    pq.write_table(table(y=Y[:2], pred=PRED[:2]), p / "part-0.parquet")
    pq.write_table(table(y=Y[2:], pred=PRED[2:]), p / "part-1.parquet")
    return p


def _feather(d: Path) -> Path:
    p = d / "preds.feather"
    feather.write_feather(table(y=Y, pred=PRED), p)
    return p


def _arrow_stream(d: Path) -> Path:
    p = d / "preds.arrow"
    t = table(y=Y, pred=PRED)
    with pa.OSFile(str(p), "wb") as sink, pa.ipc.new_stream(sink, t.schema) as writer:
        for batch in t.to_batches(max_chunksize=3):
            writer.write_batch(batch)
    return p


@pytest.mark.parametrize(("maker", "fmt"), [
    (_csv, "csv"), (_csv_gz, "csv"), (_tsv, "tsv"), (_parquet, "parquet"),
    (_parquet_dir, "parquet-dir"), (_feather, "arrow"), (_arrow_stream, "arrow"),
], ids=["csv", "csv.gz", "tsv", "parquet", "parquet-dir", "feather", "arrow-stream"])
def test_eval_each_input_kind(capfd: pytest.CaptureFixture[str], tmp_path: Path,
                              maker: Callable[[Path], Path], fmt: str) -> None:
    src = maker(tmp_path)
    rc, out, err = cli(capfd, "eval", src, "--loss", "mse", "--loss", "mae", "--format", "json")
    assert (rc, err) == (0, "")
    doc = json.loads(out)
    assert doc["source"]["format"] == fmt
    assert doc["source"]["rows"] == 4
    assert [r["name"] for r in doc["losses"]] == ["mse", "mae"]
    assert loss_value(doc, "mse") == pytest.approx(MSE, rel=1e-12)
    assert loss_value(doc, "mae") == pytest.approx(MAE, rel=1e-12)


def test_eval_stdin_csv() -> None:
    rc, out, err = cli_stdin(CSV_TEXT.encode(), "eval", "-", "--loss", "mse", "--format", "json")
    assert (rc, err) == (0, "")
    doc = json.loads(out)
    assert doc["source"]["path"] == "stdin"
    assert doc["source"]["rows"] == 4  # the peeked header line is not lost, nor the first row
    assert loss_value(doc, "mse") == pytest.approx(MSE, rel=1e-12)


def test_eval_table_output(capfd: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    rc, out, err = cli(capfd, "eval", _csv(tmp_path), "--loss", "mse")
    assert (rc, err) == (0, "")
    assert "mse" in out
    assert "0.5625" in out
    assert "\x1b[" not in out  # no colour codes when not a terminal


def test_auto_detected_regression_columns(capfd: pytest.CaptureFixture[str],
                                          tmp_path: Path) -> None:
    src = write(tmp_path / "a.csv", "id,label,y_pred,extra\n1,1,1.5,9\n2,2,2,9\n3,3,2,9\n")
    rc, out, err = cli(capfd, "eval", src, "--format", "json")
    assert (rc, err) == (0, "")
    doc = json.loads(out)
    assert doc["columns"] == {"pred": ["y_pred"], "target": "label", "weight": None}
    assert doc["task"] == "counts"  # non-negative integer targets
    # no --loss: the default losses of counts, in catalog order
    assert [r["name"] for r in doc["losses"]] == ["mse", "rmse", "mae", "huber", "log_cosh",
                                                  "poisson"]


def test_auto_detected_binary_task(capfd: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    src = write(tmp_path / "b.csv", "target,prob\n0,0.2\n1,0.7\n1,0.9\n0,0.4\n")
    rc, out, err = cli(capfd, "eval", src, "--format", "json")
    assert (rc, err) == (0, "")
    doc = json.loads(out)
    assert doc["task"] == "binary"
    assert doc["input"] == "probabilities"
    p, y = np.array([0.2, 0.7, 0.9, 0.4]), np.array([0, 1, 1, 0])
    bce = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
    assert loss_value(doc, "bce") == pytest.approx(bce, rel=1e-12)


def test_auto_detected_multiclass_glob(capfd: pytest.CaptureFixture[str],
                                       tmp_path: Path) -> None:
    src = write(tmp_path / "m.csv",
                "prob_cat,label,prob_dog\n0.8,cat,0.2\n0.3,dog,0.7\n0.6,dog,0.4\n")
    rc, out, err = cli(capfd, "eval", src, "--format", "json")
    assert (rc, err) == (0, "")
    doc = json.loads(out)
    assert doc["task"] == "multiclass"
    assert doc["columns"]["pred"] == ["prob_cat", "prob_dog"]
    assert doc["columns"]["classes"] == ["cat", "dog"]
    assert loss_value(doc, "cce") == pytest.approx(-np.mean(np.log([0.8, 0.7, 0.4])), rel=1e-12)


def test_json_schema_and_loss_order(capfd: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    rc, out, err = cli(capfd, "eval", _csv(tmp_path), "-l", "mae", "-l", "huber:delta=0.5",
                       "-l", "0.7*mse+0.3*mae", "--format", "json")
    assert (rc, err) == (0, "")
    doc = json.loads(out)
    assert doc["schema"] == "losscli.eval/1"
    assert [r["spec"] for r in doc["losses"]] == ["mae", "huber:delta=0.5", "0.7*mse+0.3*mae"]
    assert loss_value(doc, "0.7*mse+0.3*mae") == pytest.approx(0.7 * MSE + 0.3 * MAE, rel=1e-12)
    assert out.endswith("}\n")


def test_output_file_json(capfd: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    dest = tmp_path / "out" / "report.json"
    dest.parent.mkdir()
    rc, out, err = cli(capfd, "eval", _csv(tmp_path), "-l", "mse", "-f", "json", "-o", dest)
    assert (rc, out, err) == (0, "", "")
    doc = json.loads(dest.read_text(encoding="utf-8"))
    assert doc["schema"] == "losscli.eval/1"
    assert loss_value(doc, "mse") == pytest.approx(MSE, rel=1e-12)
    assert sorted(p.name for p in dest.parent.iterdir()) == ["report.json"]  # no temp files


def test_output_file_table(capfd: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    dest = tmp_path / "report.txt"
    rc, out, err = cli(capfd, "eval", _csv(tmp_path), "-l", "mse", "--output", dest)
    assert (rc, out, err) == (0, "", "")
    text = dest.read_text(encoding="utf-8")
    assert "mse" in text and "0.5625" in text
    assert "\x1b[" not in text


def test_output_replaces_existing_file(capfd: pytest.CaptureFixture[str],
                                       tmp_path: Path) -> None:
    dest = write(tmp_path / "report.json", "x" * 100_000)
    rc, out, err = cli(capfd, "eval", _csv(tmp_path), "-l", "mse", "-f", "json", "-o", dest)
    assert (rc, out, err) == (0, "", "")
    assert json.loads(dest.read_text(encoding="utf-8"))["schema"] == "losscli.eval/1"


def test_quiet_silences_warnings(capfd: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    src = write(tmp_path / "n.csv", "y,pred\n1,1.5\n2,nan\n3,2\n")
    rc, out, err = cli(capfd, "eval", src, "-l", "mse", "--nan", "drop")
    assert rc == 0
    assert err.startswith("losscli: warning: dropped 1 row(s)")  # the warning exists ...
    rc, out_q, err_q = cli(capfd, "eval", src, "-l", "mse", "--nan", "drop", "--quiet")
    assert (rc, err_q) == (0, "")  # ... and --quiet removes it
    assert out_q == out


def test_nan_drop_reports_rows_dropped(capfd: pytest.CaptureFixture[str],
                                       tmp_path: Path) -> None:
    src = write(tmp_path / "n.csv", "y,pred\n1,1.5\n2,nan\n3,\n4,inf\n5,5\n")
    rc, out, err = cli(capfd, "eval", src, "-l", "mse", "--nan", "drop", "-f", "json", "-q")
    assert (rc, err) == (0, "")
    doc = json.loads(out)
    assert doc["source"]["rows"] == 5
    assert doc["source"]["rows_used"] == 2
    assert doc["source"]["rows_dropped"] == 3
    assert loss_value(doc, "mse") == pytest.approx(0.125, rel=1e-12)


def test_chunk_rows_does_not_change_results(capfd: pytest.CaptureFixture[str],
                                            tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    y = rng.normal(100.0, 3.0, 5000)
    src = tmp_path / "r.parquet"
    pq.write_table(table(y=y.tolist(), pred=(y + rng.normal(0, 1, 5000)).tolist()), src)
    docs = {}
    for chunk in CHUNK_ROWS:
        rc, out, err = cli(capfd, "eval", src, "-l", "mse", "-l", "huber", "-f", "json",
                           "--chunk-rows", chunk)
        assert (rc, err) == (0, "")
        docs[("eval parquet", chunk, "cli")] = strip_run_keys(json.loads(out))
    assert_invariant(docs)


def test_losses_command_lists_every_loss(capfd: pytest.CaptureFixture[str]) -> None:
    from losscli.losses import CATALOG

    expected = {"mse", "rmse", "mae", "huber", "smooth_l1", "log_cosh", "quantile", "poisson",
                "bce", "focal", "cce"}
    assert expected <= set(CATALOG)
    rc, out, err = cli(capfd, "losses")
    assert (rc, err) == (0, "")
    for name in CATALOG:
        assert name in out
    rc, out, err = cli(capfd, "losses", "--format", "json")
    assert (rc, err) == (0, "")
    doc = json.loads(out)
    assert doc["schema"] == "losscli.losses/1"
    assert [d["name"] for d in doc["losses"]] == list(CATALOG)


def test_help(capfd: pytest.CaptureFixture[str]) -> None:
    rc, out, err = cli(capfd, "--help")
    assert (rc, err) == (0, "")
    assert "eval" in out and "losses" in out
    rc, out, err = cli(capfd, "eval", "--help")
    assert (rc, err) == (0, "")
    for flag in ("--pred", "--target", "--weight", "--loss", "--logits", "--nan", "--format",
                 "--output", "--help-all"):
        assert flag in out
    rc, out, err = cli(capfd, "eval", "--help-all")
    assert (rc, err) == (0, "")
    for flag in ("--chunk-rows", "--threads", "--quiet", "--ci", "--config"):
        assert flag in out


def test_version(capfd: pytest.CaptureFixture[str]) -> None:
    from losscli import __version__

    assert cli(capfd, "--version") == (0, f"losscli {__version__}\n", "")


def test_unexpected_exception_is_internal_error(capfd: pytest.CaptureFixture[str],
                                                tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    import losscli.engine

    def boom(*args: object, **kwargs: object) -> None:
        raise ZeroDivisionError("oops")

    monkeypatch.setattr(losscli.engine, "evaluate", boom)
    rc, out, err = cli(capfd, "eval", _csv(tmp_path))
    assert rc == 3
    assert out == ""
    assert "internal error" in err and "ZeroDivisionError" in err
    assert "Traceback" not in err


# --- bad input: rc 2, one line on stderr, nothing on stdout ----------------------------------


def test_missing_file(capfd: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    missing = tmp_path / "nope.csv"
    assert_input_error(cli(capfd, "eval", missing), str(missing), "no such file")


def test_missing_column_lists_available(capfd: pytest.CaptureFixture[str],
                                        tmp_path: Path) -> None:
    src = _csv(tmp_path)
    assert_input_error(cli(capfd, "eval", src, "--pred", "score2"),
                       str(src), "'score2'", "not found", "y, pred")
    assert_input_error(cli(capfd, "eval", src, "--target", "truth2"), "'truth2'", "y, pred")
    assert_input_error(cli(capfd, "eval", src, "--weight", "w"), "weight column 'w'", "y, pred")


def test_missing_column_parquet(capfd: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    src = _parquet(tmp_path)
    assert_input_error(cli(capfd, "eval", src, "--pred", "score2"), "'score2'", "y, pred")


def test_no_recognised_columns(capfd: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    src = write(tmp_path / "c.csv", "a,b\n1,2\n")
    assert_input_error(cli(capfd, "eval", src), "--target", "a, b")
    assert_input_error(cli(capfd, "eval", src, "--target", "a"), "--pred", "a, b")


def test_unknown_loss(capfd: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert_input_error(cli(capfd, "eval", _csv(tmp_path), "--loss", "msee"), "'msee'", "mse")


def test_unknown_parameter(capfd: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert_input_error(cli(capfd, "eval", _csv(tmp_path), "--loss", "huber:gamma=2"),
                       "'gamma'", "huber", "delta")


@pytest.mark.parametrize(("spec", "needles"), [
    ("huber:delta=-1", ("'delta'", "huber", "> 0", "-1")),
    ("huber:delta=abc", ("'delta'", "number", "abc")),
    ("quantile:q=1.5", ("'q'", "quantile", "1.5")),
])
def test_invalid_parameter_value(capfd: pytest.CaptureFixture[str], tmp_path: Path, spec: str,
                                 needles: tuple[str, ...]) -> None:
    assert_input_error(cli(capfd, "eval", _csv(tmp_path), "--loss", spec), *needles)


def test_empty_file(capfd: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    src = write(tmp_path / "empty.csv", "")
    assert_input_error(cli(capfd, "eval", src), str(src), "empty")


@pytest.mark.parametrize("text", ["y,pred\n", "y,pred\r\n", "y,pred"],
                         ids=["lf", "crlf", "no-newline"])
def test_header_only(capfd: pytest.CaptureFixture[str], tmp_path: Path, text: str) -> None:
    src = write(tmp_path / "h.csv", text)
    assert_input_error(cli(capfd, "eval", src), str(src), "no data rows")


def test_header_only_parquet(capfd: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    src = tmp_path / "h.parquet"
    pq.write_table(pa.table({"y": pa.array([], pa.float64()),
                             "pred": pa.array([], pa.float64())}), src)
    assert_input_error(cli(capfd, "eval", src), str(src), "no data rows")


def test_non_numeric_cell_names_column_and_row(capfd: pytest.CaptureFixture[str],
                                               tmp_path: Path) -> None:
    # 'abc' is in column 'pred', data row 2 (file line 3).
    src = write(tmp_path / "x.csv", "y,pred\n1,1.5\n2,abc\n3,2\n")
    assert_input_error(cli(capfd, "eval", src), str(src), "column 'pred'", "'abc'", "row 2")


@pytest.mark.parametrize(("text", "column"), [
    ("y,pred\n1,1.5\nabc,2\n", "y"),  # file order differs from the selection (pred, y)
    ("extra,y,pred\n9,1,1.5\n9,2,abc\n", "pred"),  # an unselected column comes first
    ("pred,extra,y\n1.5,9,1\n2,9,abc\n", "y"),
], ids=["target-first", "extra-first", "extra-between"])
def test_non_numeric_cell_column_in_any_file_order(capfd: pytest.CaptureFixture[str],
                                                    tmp_path: Path, text: str,
                                                    column: str) -> None:
    src = write(tmp_path / "x.csv", text)
    assert_input_error(cli(capfd, "eval", src), f"column '{column}'", "'abc'", "row 2")


def test_non_numeric_cell_late_in_file(capfd: pytest.CaptureFixture[str],
                                       tmp_path: Path) -> None:
    rows = "".join(f"{i},{i}.5\n" for i in range(1, 3000))
    src = write(tmp_path / "x.csv", "pred,y\n" + rows + "oops,1\n")
    assert_input_error(cli(capfd, "eval", src, "--chunk-rows", "100"),
                       "column 'pred'", "'oops'", "row 3000")


def test_non_numeric_string_column_parquet(capfd: pytest.CaptureFixture[str],
                                           tmp_path: Path) -> None:
    src = tmp_path / "s.parquet"
    pq.write_table(table(y=Y, pred=["1", "2", "x", "4"]), src)
    assert_input_error(cli(capfd, "eval", src), str(src), "'pred'", "not numeric")


def test_ragged_csv_row(capfd: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    src = write(tmp_path / "r.csv", "y,pred\n1,1.5\n2,2,5\n3,2\n")
    assert_input_error(cli(capfd, "eval", src), str(src), "ragged", "expected 2", "got 3",
                       "line 3")


@pytest.mark.parametrize("cell", ["nan", "NaN", "inf", "-inf", ""])
def test_nan_inf_empty_cells_error(capfd: pytest.CaptureFixture[str], tmp_path: Path,
                                   cell: str) -> None:
    src = write(tmp_path / "n.csv", f"y,pred\n1,1.5\n2,{cell}\n3,2\n4,{cell}\n")
    assert_input_error(cli(capfd, "eval", src), str(src), "2 row(s)", "row 2", "'pred'",
                       "--nan drop")


def test_nan_row_number_across_chunks(capfd: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    src = write(tmp_path / "n.csv", "y,pred\n1,1\n2,2\n3,3\n4,4\nnan,5\n6,6\n")
    assert_input_error(cli(capfd, "eval", src, "--chunk-rows", "2"), "1 row(s)", "row 5",
                       "'y'")


def test_all_rows_nan_dropped(capfd: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    src = write(tmp_path / "n.csv", "y,pred\n1,nan\n2,\n")
    assert_input_error(cli(capfd, "eval", src, "--nan", "drop"), str(src), "no rows left",
                       "2 row(s)")


def test_bce_probability_out_of_range(capfd: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    src = write(tmp_path / "b.csv", "y,pred\n0,0.2\n1,1.7\n1,0.9\n")
    assert_input_error(cli(capfd, "eval", src, "--loss", "bce"), str(src), "'pred'", "row 2",
                       "[0, 1]", "--logits")
    rc, out, err = cli(capfd, "eval", src, "--loss", "bce", "--logits", "-f", "json")
    assert (rc, err) == (0, "")
    assert json.loads(out)["input"] == "logits"


def test_binary_target_not_zero_one(capfd: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    src = write(tmp_path / "b.csv", "y,pred\n0,0.2\n1,0.7\n2,0.9\n")
    assert_input_error(cli(capfd, "eval", src, "--loss", "bce"), str(src), "'y'", "row 3",
                       "0 or 1")


def test_cce_class_index_out_of_range(capfd: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    src = write(tmp_path / "m.csv", "y,p0,p1,p2\n0,0.7,0.2,0.1\n3,0.1,0.1,0.8\n")
    assert_input_error(cli(capfd, "eval", src, "--loss", "cce", "--pred", "p0,p1,p2"),
                       str(src), "'y'", "row 2", "0..2")


def test_cce_unknown_label(capfd: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    src = write(tmp_path / "m.csv", "y,prob_a,prob_b\na,0.7,0.3\nzebra,0.1,0.9\n")
    assert_input_error(cli(capfd, "eval", src, "--loss", "cce"), "'zebra'", "row 2", "a, b")


def test_poisson_negative_target(capfd: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    src = write(tmp_path / "p.csv", "y,pred\n1,1.5\n2,2\n-3,2\n")
    err = assert_input_error(cli(capfd, "eval", src, "--loss", "poisson"), str(src), "'y'",
                             "row 3")
    assert "negative" in err or ">= 0" in err


def test_negative_weight(capfd: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    src = write(tmp_path / "w.csv", "y,pred,w\n1,1.5,1\n2,2,-0.5\n3,2,1\n")
    assert_input_error(cli(capfd, "eval", src, "--weight", "w"), str(src), "'w'", "row 2",
                       "non-negative")


def test_all_zero_weights(capfd: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    src = write(tmp_path / "w.csv", "y,pred,w\n1,1.5,0\n2,2,0\n3,2,0\n")
    assert_input_error(cli(capfd, "eval", src, "--weight", "w"), str(src), "'w'", "zero")


def test_truncated_parquet(capfd: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    good = _parquet(tmp_path)
    src = tmp_path / "trunc.parquet"
    data = good.read_bytes()
    src.write_bytes(data[: len(data) // 2])
    assert_input_error(cli(capfd, "eval", src), str(src), "Parquet")


def test_truncated_csv_gz(capfd: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    text = "y,pred\n" + "".join(f"{a!r},{b!r}\n" for a, b in rng.normal(size=(5000, 2)))
    data = gzip.compress(text.encode())
    src = tmp_path / "t.csv.gz"
    src.write_bytes(data[: len(data) // 2])
    assert_input_error(cli(capfd, "eval", src), str(src), "runcated")


def test_corrupt_parquet_footer_intact(capfd: pytest.CaptureFixture[str],
                                       tmp_path: Path) -> None:
    """Page bytes overwritten but the footer readable: the error comes while streaming."""
    src = tmp_path / "bad.parquet"
    rng = np.random.default_rng(1)
    pq.write_table(table(y=rng.normal(size=2000).tolist(), pred=rng.normal(size=2000).tolist()),
                   src, compression="snappy", use_dictionary=False)
    data = bytearray(src.read_bytes())
    data[8:3000] = b"\xff" * (3000 - 8)
    src.write_bytes(bytes(data))
    assert_input_error(cli(capfd, "eval", src), str(src))


def test_non_parquet_bytes_named_parquet(capfd: pytest.CaptureFixture[str],
                                         tmp_path: Path) -> None:
    src = write(tmp_path / "fake.parquet", CSV_TEXT)
    assert_input_error(cli(capfd, "eval", src), str(src), "Parquet")


def test_non_arrow_bytes_named_feather(capfd: pytest.CaptureFixture[str],
                                       tmp_path: Path) -> None:
    src = write(tmp_path / "fake.feather", CSV_TEXT)
    assert_input_error(cli(capfd, "eval", src), str(src), "Arrow")


def test_empty_directory(capfd: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    d = tmp_path / "nothing"
    d.mkdir()
    (d / "notes.txt").write_text("not parquet")
    assert_input_error(cli(capfd, "eval", d), str(d), "no Parquet files")


def test_parquet_dir_schema_mismatch(capfd: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    d = _parquet_dir(tmp_path)
    pq.write_table(table(y=[1.0], score=[2.0]), d / "part-2.parquet")
    assert_input_error(cli(capfd, "eval", d), "part-2.parquet", "'pred'")


def test_chunk_rows_zero(capfd: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert_input_error(cli(capfd, "eval", _csv(tmp_path), "--chunk-rows", "0"), "--chunk-rows",
                       "0")


def test_not_utf8_header(capfd: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    src = tmp_path / "bin.csv"
    src.write_bytes(b"\xff\xfe\x00\x01garbage\n\x00\x00\n")
    assert_input_error(cli(capfd, "eval", src), str(src), "UTF-8")


def test_output_into_missing_directory(capfd: pytest.CaptureFixture[str],
                                       tmp_path: Path) -> None:
    src = _csv(tmp_path)
    dest = tmp_path / "no" / "such" / "report.json"
    assert_input_error(cli(capfd, "eval", src, "-f", "json", "-o", dest), "does not exist")
    assert not (tmp_path / "no").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["preds.csv"]


def test_output_kept_when_input_is_bad(capfd: pytest.CaptureFixture[str],
                                       tmp_path: Path) -> None:
    src = write(tmp_path / "x.csv", "y,pred\n1,1.5\n2,abc\n")
    dest = write(tmp_path / "report.json", '{"old": true}\n')
    assert_input_error(cli(capfd, "eval", src, "-f", "json", "-o", dest), "'abc'")
    assert dest.read_text(encoding="utf-8") == '{"old": true}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json", "x.csv"]


def test_output_kept_when_usage_is_bad(capfd: pytest.CaptureFixture[str],
                                       tmp_path: Path) -> None:
    dest = write(tmp_path / "report.txt", "old\n")
    assert_input_error(cli(capfd, "eval", _csv(tmp_path), "-l", "nope", "-o", dest), "'nope'")
    assert dest.read_text(encoding="utf-8") == "old\n"


def test_unknown_option_is_usage_error(capfd: pytest.CaptureFixture[str],
                                       tmp_path: Path) -> None:
    rc, out, err = cli(capfd, "eval", _csv(tmp_path), "--bogus")
    assert rc == 2
    assert out == ""
    assert "--bogus" in err
    assert "Traceback" not in err


# --- stdin -----------------------------------------------------------------------------------


def test_stdin_empty() -> None:
    assert_input_error(cli_stdin(b"", "eval", "-"), "stdin", "empty")


def test_stdin_header_only() -> None:
    assert_input_error(cli_stdin(b"y,pred\n", "eval", "-"), "stdin", "no data rows")


def test_stdin_nan_reports_row() -> None:
    assert_input_error(cli_stdin(b"y,pred\n1,1.5\n2,nan\n", "eval", "-"), "stdin", "1 row(s)",
                       "row 2", "'pred'")


def test_stdin_non_numeric_names_column() -> None:
    assert_input_error(cli_stdin(b"y,pred\n1,1.5\n2,abc\n", "eval", "-"), "stdin",
                       "column 'pred'", "'abc'")


def test_console_script_sets_blas_and_allocator_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    from losscli import cli

    for name in ("OPENBLAS_NUM_THREADS", "MIMALLOC_ALLOW_THP"):
        monkeypatch.setenv(name, "unset")  # recorded, so that the test's end restores it
        monkeypatch.delenv(name)
    monkeypatch.setenv("MIMALLOC_ALLOW_THP", "1")  # a user's own setting is kept
    exits: list[int] = []
    monkeypatch.setattr(cli, "run", lambda: 3)
    monkeypatch.setattr(os, "_exit", exits.append)
    cli.main()
    assert exits == [3]
    assert os.environ["OPENBLAS_NUM_THREADS"] == "1"
    assert os.environ["MIMALLOC_ALLOW_THP"] == "1"


def test_no_numpy_warnings_from_worker_threads(tmp_path: Path) -> None:
    # NumPy's error state is per thread; the worker threads must silence overflow themselves.
    rng = np.random.default_rng(3)
    n = 20_000
    z = rng.normal(0.0, 1e3, n)
    z[::50] = 1e308  # about 20 a chunk: their sum overflows
    y = (rng.random(n) < 0.5).astype(int)
    path = tmp_path / "extreme.csv"
    path.write_text("y,logit\n" + "".join(f"{a},{b!r}\n" for a, b in zip(y.tolist(), z.tolist(),
                                                                          strict=True)))
    proc = subprocess.run([sys.executable, "-m", "losscli", "eval", str(path), "--loss", "bce",
                           "--loss", "focal", "--logits", "--threads", "2", "--chunk-rows", "1000",
                           "--format", "json", "--quiet"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert json.loads(proc.stdout)["source"]["rows"] == n
