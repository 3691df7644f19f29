"""Reading: column resolution, format sniffing, stdin header peeking, and lazy heavy imports."""

from __future__ import annotations

import gzip
import io
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
from hypothesis import given, settings
from hypothesis import strategies as st

from losscli import sources
from losscli.errors import InputError, UsageError
from losscli.sources import (
    ChainedReader,
    Columns,
    NanStats,
    Source,
    _csv_pieces,
    chunks,
    open_source,
    resolve_columns,
)


def src_of(*names: str, arrow_types: dict[str, pa.DataType] | None = None) -> Source:
    return Source("data.csv", "csv", list(names), arrow_types=arrow_types or {})


# --- column resolution -----------------------------------------------------------------------


@pytest.mark.parametrize(("names", "pred", "target"), [
    (("y", "pred"), "pred", "y"),
    (("id", "label", "y_pred", "extra"), "y_pred", "label"),
    (("target", "prediction"), "prediction", "target"),
    (("y_true", "yhat"), "yhat", "y_true"),
    (("truth", "score"), "score", "truth"),
    (("actual", "p"), "p", "actual"),
    (("Target", "Prediction"), "Prediction", "Target"),  # recognised names ignore case
    (("LABEL", "LOGITS"), "LOGITS", "LABEL"),
])
def test_recognised_names(names: tuple[str, ...], pred: str, target: str) -> None:
    cols = resolve_columns(src_of(*names), None, None, None)
    assert cols.pred == [pred]
    assert cols.target == target
    assert cols.weight is None
    assert not cols.multiclass


def test_recognised_target_priority() -> None:
    # 'y' comes before 'target' and 'label' in the recognised list, whatever the file order.
    cols = resolve_columns(src_of("label", "target", "y", "pred"), None, None, None)
    assert cols.target == "y"


def test_weight_is_never_guessed() -> None:
    cols = resolve_columns(src_of("y", "pred", "w", "weight", "sample_weight"), None, None, None)
    assert cols.weight is None
    cols = resolve_columns(src_of("y", "pred", "w"), None, None, "w")
    assert cols.weight == "w"
    assert cols.selected == ["pred", "y", "w"]


def test_no_target_recognised_lists_columns() -> None:
    with pytest.raises(InputError, match=r"no target column recognised; pass --target "
                                         r"\(columns: a, b\)"):
        resolve_columns(src_of("a", "b"), None, None, None)


def test_no_pred_recognised_lists_columns() -> None:
    with pytest.raises(InputError, match=r"no prediction column recognised; pass --pred "
                                         r"\(columns: y, b\)"):
        resolve_columns(src_of("y", "b"), None, None, None)


def test_missing_column_lists_available() -> None:
    with pytest.raises(InputError) as exc:
        resolve_columns(src_of("y", "pred", "other"), "nope", None, None)
    assert str(exc.value) == ("data.csv: prediction column 'nope' not found "
                              "(columns: y, pred, other)")


def test_many_columns_are_abbreviated() -> None:
    names = [f"c{i}" for i in range(50)]
    with pytest.raises(InputError) as exc:
        resolve_columns(src_of("y", "pred", *names), "nope", None, None)
    text = str(exc.value)
    assert "(52 in all)" in text
    assert "c49" not in text


def test_explicit_names_case_insensitive() -> None:
    cols = resolve_columns(src_of("Y", "Pred", "Weight"), "pred", "y", "WEIGHT")
    assert (cols.pred, cols.target, cols.weight) == (["Pred"], "Y", "Weight")


def test_exact_case_wins_over_folded() -> None:
    cols = resolve_columns(src_of("y", "Y", "pred"), None, "Y", None)
    assert cols.target == "Y"


def test_ambiguous_case_folded_name_is_an_error() -> None:
    with pytest.raises(InputError, match="target column 'label' not found"):
        resolve_columns(src_of("Label", "LABEL", "pred"), None, "label", None)


def test_glob_keeps_file_column_order_and_labels() -> None:
    cols = resolve_columns(src_of("prob_b", "y", "prob_a", "prob_c"), "prob_*", None, None)
    assert cols.pred == ["prob_b", "prob_a", "prob_c"]
    assert cols.labels == ["b", "a", "c"]
    assert cols.multiclass
    assert cols.selected == ["prob_b", "prob_a", "prob_c", "y"]


def test_glob_labels_strip_prefix_and_suffix() -> None:
    cols = resolve_columns(src_of("label", "p_cat_v2", "p_dog_v2", "p_cow_v1"), "p_*_v2", None,
                           None)
    assert cols.pred == ["p_cat_v2", "p_dog_v2"]
    assert cols.labels == ["cat", "dog"]


def test_glob_never_selects_the_target() -> None:
    cols = resolve_columns(src_of("c0", "c1", "c2"), "c*", "c1", None)
    assert cols.pred == ["c0", "c2"]
    assert cols.target == "c1"


def test_glob_without_match() -> None:
    with pytest.raises(InputError, match=r"no column matches --pred 'q_\*' \(columns: y, p_a"):
        resolve_columns(src_of("y", "p_a", "p_b"), "q_*", None, None)


def test_auto_multiclass_glob() -> None:
    cols = resolve_columns(src_of("logit_0", "label", "logit_1", "logit_2"), None, None, None)
    assert cols.pred == ["logit_0", "logit_1", "logit_2"]
    assert cols.labels == ["0", "1", "2"]
    assert cols.target == "label"


def test_comma_list_labels_from_suffixes() -> None:
    cols = resolve_columns(src_of("y", "score_cat", "score_dog", "score_cow"),
                           "score_dog, score_cat", None, None)
    assert cols.pred == ["score_dog", "score_cat"]  # the order given, not the file order
    assert cols.labels == ["dog", "cat"]


def test_comma_list_labels_fall_back_to_names() -> None:
    # The common prefix 'a' would leave an empty label: use the whole names instead.
    cols = resolve_columns(src_of("y", "a", "ab"), "a,ab", None, None)
    assert cols.labels == ["a", "ab"]


def test_comma_list_case_insensitive_and_missing() -> None:
    cols = resolve_columns(src_of("y", "P_A", "P_B"), "p_a,p_b", None, None)
    assert cols.pred == ["P_A", "P_B"]
    with pytest.raises(InputError, match="prediction column 'p_c' not found"):
        resolve_columns(src_of("y", "p_a", "p_b"), "p_a,p_c", None, None)


def test_comma_list_twice() -> None:
    with pytest.raises(UsageError, match="twice"):
        resolve_columns(src_of("y", "a", "b"), "a,b,a", None, None)


def test_target_is_also_pred() -> None:
    with pytest.raises(UsageError, match="both the target and a prediction"):
        resolve_columns(src_of("y", "pred"), "y", "y", None)


def test_list_column_is_multiclass() -> None:
    src = src_of("y", "probs", arrow_types={"probs": pa.list_(pa.float64()), "y": pa.int64()})
    cols = resolve_columns(src, "probs", None, None)
    assert cols.list_column
    assert cols.multiclass
    assert cols.labels == []


def test_list_column_rows_of_different_lengths_in_different_row_groups(tmp_path: Path) -> None:
    """Found by fuzzing: each row group was checked on its own, so 3 classes in one and 2 in
    the next gave a value (and 3 class names) instead of an error."""
    from losscli import evaluate

    path = tmp_path / "ragged.parquet"
    pq.write_table(pa.table({"label": [0, 0], "prob": [[0.5, 0.5, 0.0], [0.5, 0.5]]}), path,
                   row_group_size=1)
    with pytest.raises(InputError, match=r"list column 'prob' has rows of different lengths "
                                         r"\(3 and 2\)"):
        evaluate(str(path), "prob", "label", losses=["cce"], chunk_rows=1)
    fixed = tmp_path / "fixed.arrow"
    with pa.OSFile(str(fixed), "wb") as sink, pa.ipc.new_stream(
            sink, pa.schema([("label", pa.int64()), ("prob", pa.list_(pa.float64(), 2))])) as w:
        w.write_batch(pa.record_batch([pa.array([0]), pa.array([[0.5, 0.5]],
                                                              pa.list_(pa.float64(), 2))],
                                      names=["label", "prob"]))
        w.write_batch(pa.record_batch([pa.array([1]), pa.array([[0.25, 0.75]],
                                                              pa.list_(pa.float64(), 2))],
                                      names=["label", "prob"]))
    report = evaluate(str(fixed), "prob", "label", losses=["cce"])
    assert report.losses[0].value == pytest.approx(-(np.log(0.5) + np.log(0.75)) / 2, rel=1e-15)


def test_list_column_null_rows_before_the_first_list_are_dropped(tmp_path: Path) -> None:
    """Found by fuzzing: a row group whose list rows were all null had no width, and was refused
    as "must hold one probability or logit per class" even under --nan drop."""
    from losscli import evaluate

    path = tmp_path / "nulls.parquet"
    pq.write_table(pa.table({"label": [0, 1, 0],
                             "prob": pa.array([None, [0.2, 0.8], [0.9, 0.1]],
                                              pa.list_(pa.float64()))}), path, row_group_size=1)
    report = evaluate(str(path), "prob", "label", losses=["cce"], nan="drop", chunk_rows=1)
    assert report.source.rows_dropped == 1
    assert report.losses[0].value == pytest.approx(-(np.log(0.8) + np.log(0.9)) / 2, rel=1e-15)


def test_columns_selected_dedupes() -> None:
    assert Columns(["p"], "y", "p").selected == ["p", "y"]


# --- format sniffing -------------------------------------------------------------------------


def _table() -> pa.Table:
    return pa.table({"y": [1.0, 2.0], "pred": [1.5, 2.5]})


def _write_csv(p: Path) -> None:
    p.write_text("y,pred\n1,1.5\n2,2.5\n")


def _write_gz(p: Path) -> None:
    p.write_bytes(gzip.compress(b"y,pred\n1,1.5\n2,2.5\n"))


def _write_tsv(p: Path) -> None:
    p.write_text("y\tpred\n1\t1.5\n2\t2.5\n")


def _write_parquet(p: Path) -> None:
    pq.write_table(_table(), p)


def _write_feather(p: Path) -> None:
    feather.write_feather(_table(), p)


def _write_ipc_stream(p: Path) -> None:
    t = _table()
    with pa.OSFile(str(p), "wb") as sink, pa.ipc.new_stream(sink, t.schema) as w:
        w.write_table(t)


@pytest.mark.parametrize(("name", "writer", "fmt", "delimiter"), [
    ("a.csv", _write_csv, "csv", ","),
    ("A.CSV", _write_csv, "csv", ","),
    ("a.txt", _write_csv, "csv", ","),
    ("a.csv.gz", _write_gz, "csv", ","),
    ("a.tsv", _write_tsv, "tsv", "\t"),
    ("a.tab", _write_tsv, "tsv", "\t"),
    ("a.parquet", _write_parquet, "parquet", ","),
    ("a.pq", _write_parquet, "parquet", ","),
    ("a.feather", _write_feather, "arrow", ","),
    ("a.arrow", _write_ipc_stream, "arrow", ","),
    ("a.ipc", _write_feather, "arrow", ","),
    ("parquet_no_ext", _write_parquet, "parquet", ","),  # PAR1 magic
    ("arrow_no_ext", _write_feather, "arrow", ","),  # ARROW1 magic
    ("csv_no_ext", _write_csv, "csv", ","),
])
def test_format_sniffing(tmp_path: Path, name: str, writer: Callable[[Path], None], fmt: str,
                         delimiter: str) -> None:
    p = tmp_path / name
    writer(p)
    src = open_source(str(p))
    assert src.format == fmt
    assert src.names == ["y", "pred"]
    assert src.delimiter == delimiter
    assert src.path == str(p)


def test_parquet_directory(tmp_path: Path) -> None:
    d = tmp_path / "ds"
    (d / "year=2024").mkdir(parents=True)
    pq.write_table(_table(), d / "b.parquet")
    pq.write_table(_table(), d / "year=2024" / "a.parquet")
    (d / "_SUCCESS").write_text("")
    (d / "_metadata.parquet").write_bytes(b"junk")
    (d / ".hidden.parquet").write_bytes(b"junk")
    (d / "readme.txt").write_text("x")
    src = open_source(str(d))
    assert src.format == "parquet-dir"
    assert src.names == ["y", "pred"]
    assert [Path(f).relative_to(d).as_posix() for f in src.files] == ["b.parquet",
                                                                      "year=2024/a.parquet"]


def test_parquet_arrow_types_recorded(tmp_path: Path) -> None:
    p = tmp_path / "l.parquet"
    pq.write_table(pa.table({"y": pa.array([0, 1]),
                             "probs": pa.array([[0.9, 0.1], [0.2, 0.8]])}), p)
    src = open_source(str(p))
    cols = resolve_columns(src, "probs", None, None)
    assert cols.list_column


def test_csv_header_bom_and_quotes(tmp_path: Path) -> None:
    p = tmp_path / "q.csv"
    p.write_bytes(b'\xef\xbb\xbf"y","pred, v2"\r\n1,2\r\n')
    src = open_source(str(p))
    assert src.names == ["y", "pred, v2"]


@pytest.mark.parametrize(("name", "data", "message"), [
    ("empty.csv", b"", "file is empty"),
    ("blank.csv", b"\n\n  \n", "file is empty"),
    ("bin.csv", b"\xff\xfe\xfa header\n1\n", "not UTF-8"),
    ("fake.parquet", b"y,pred\n1,2\n", "not a readable Parquet file"),
    ("fake.feather", b"y,pred\n1,2\n", "not a readable Arrow IPC / Feather file"),
])
def test_open_source_errors(tmp_path: Path, name: str, data: bytes, message: str) -> None:
    p = tmp_path / name
    p.write_bytes(data)
    with pytest.raises(InputError, match=message) as exc:
        open_source(str(p))
    assert str(exc.value).startswith(f"{p}: ")
    assert "\n" not in str(exc.value)


def test_open_source_missing(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file or directory"):
        open_source(str(tmp_path / "missing.csv"))


def test_open_source_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "x.csv").write_text("y,pred\n1,2\n")
    with pytest.raises(InputError, match="contains no Parquet files"):
        open_source(str(tmp_path))


# --- stdin -----------------------------------------------------------------------------------


class FakeStdin:
    """Stands in for sys.stdin: only ``.buffer`` is read."""

    def __init__(self, data: bytes) -> None:
        self.buffer = io.BytesIO(data)


def _read_all(src: Source, rows: int = 1 << 20) -> tuple[np.ndarray, np.ndarray, NanStats]:
    cols = resolve_columns(src, None, None, None)
    stats = NanStats()
    got = list(chunks(src, cols, rows, "drop", stats))
    return (np.concatenate([c.target for c in got]), np.concatenate([c.pred for c in got]),
            stats)


def test_stdin_header_peek_keeps_every_row(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", FakeStdin(b"y,pred\n1,1.5\n2,2.5\n3,3.5\n"))
    src = open_source("-")
    assert src.names == ["y", "pred"]
    assert src.format == "csv"
    assert src.display_format == "csv (stdin)"
    target, pred, stats = _read_all(src)
    assert target.tolist() == [1.0, 2.0, 3.0]
    assert pred.tolist() == [1.5, 2.5, 3.5]
    assert stats.count == 0


def test_stdin_large_input_across_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    n = 150_000  # well over the 1 MiB CSV block
    y = np.arange(n, dtype=np.float64)
    body = "\n".join(f"{v:.0f},{v + 0.5}" for v in y)
    monkeypatch.setattr(sys, "stdin", FakeStdin(("target,prediction\n" + body + "\n").encode()))
    target, pred, _ = _read_all(open_source("-"), rows=10_000)
    assert target.size == n
    np.testing.assert_array_equal(target, y)
    np.testing.assert_array_equal(pred, y + 0.5)


def test_stdin_nan_rows_numbered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", FakeStdin(b"y,pred\n1,1\n2,\n3,nan\n4,4\n"))
    target, _, stats = _read_all(open_source("-"))
    assert target.tolist() == [1.0, 4.0]
    assert (stats.count, stats.first_row, stats.first_column) == (2, 2, "pred")


@pytest.mark.parametrize("data", [b"", b"\n", b"   \n"])
def test_stdin_empty(monkeypatch: pytest.MonkeyPatch, data: bytes) -> None:
    monkeypatch.setattr(sys, "stdin", FakeStdin(data))
    with pytest.raises(InputError, match="stdin: no CSV data"):
        open_source("-")


def test_stdin_header_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", FakeStdin(b"y,pred"))
    src = open_source("-")
    assert src.names == ["y", "pred"]
    with pytest.raises(InputError, match="stdin: no data rows"):
        _read_all(src)


def test_chained_reader_small_reads() -> None:
    reader = io.BufferedReader(ChainedReader(b"head\n", io.BytesIO(b"rest of it")),
                               buffer_size=3)
    assert reader.read(2) == b"he"
    assert reader.read() == b"ad\nrest of it"
    assert reader.read() == b""


# --- CSV pieces ------------------------------------------------------------------------------


class Trickle(io.RawIOBase):
    """A stream that returns at most ``most`` bytes per read, as a pipe may."""

    def __init__(self, data: bytes, most: int) -> None:
        self.data, self.pos, self.most = data, 0, most

    def readable(self) -> bool:
        return True

    def readinto(self, buf: Any) -> int:
        n = min(len(buf), self.most, len(self.data) - self.pos)
        buf[:n] = self.data[self.pos:self.pos + n]
        self.pos += n
        return n


csv_lines = st.lists(st.text(alphabet="ab,1.\r", max_size=12), min_size=0, max_size=30)


@settings(max_examples=300, deadline=None)
@given(header=st.text(alphabet="xy,", min_size=1, max_size=20), lines=csv_lines,
       final_newline=st.booleans(), size=st.integers(1, 40), most=st.integers(1, 50))
def test_csv_pieces_cover_the_data_at_line_breaks(header: str, lines: list[str],
                                                   final_newline: bool, size: int,
                                                   most: int) -> None:
    body = "\n".join(lines) + ("\n" if final_newline and lines else "")
    data = (header + "\n" + body).encode()
    pieces = [bytes(p) for p, _ in _csv_pieces(Trickle(data, most), size)]
    assert b"".join(pieces) == body.encode()
    assert all(p for p in pieces)
    # every piece but the last ends at a line break
    assert all(p.endswith(b"\n") for p in pieces[:-1])


def test_csv_pieces_header_longer_than_a_piece() -> None:
    data = b"a" * 100 + b",b\n1,2\n3,4\n" + b"5,6\n" * 20
    pieces = [bytes(p) for p, _ in _csv_pieces(io.BytesIO(data), 8)]
    assert b"".join(pieces) == b"1,2\n3,4\n" + b"5,6\n" * 20
    assert len(pieces) > 5 and all(p.endswith(b"\n") for p in pieces)
    assert list(_csv_pieces(io.BytesIO(b"y,pred"), 4)) == []
    assert list(_csv_pieces(io.BytesIO(b""), 4)) == []


def _csv_rows(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, bytes]:
    y = rng.normal(size=n)
    p = y + rng.standard_t(3, size=n)
    body = "".join(f"{a!r},{b!r}\n" for a, b in zip(y.tolist(), p.tolist(), strict=True))
    return y, p, ("y,pred\n" + body).encode()


def _small_pieces_source(data: bytes, stdin: bool, block: int, tmp_path: Path,
                         monkeypatch: pytest.MonkeyPatch) -> Source:
    """CSV ``data`` from a file or stdin, read in 4 KiB pieces parsed in ``block``-byte blocks."""
    monkeypatch.setattr(sources, "CSV_PIECE_SIZE", 4096)
    monkeypatch.setattr(sources, "CSV_BLOCK_SIZE", block)
    if stdin:
        monkeypatch.setattr(sys, "stdin", FakeStdin(data))
        return open_source("-")
    (tmp_path / "d.csv").write_bytes(data)
    return open_source(str(tmp_path / "d.csv"))


@pytest.mark.parametrize("stdin", [False, True], ids=["file", "stdin"])
def test_csv_small_pieces_keep_every_row_in_order(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  rng: np.random.Generator, stdin: bool) -> None:
    y, p, data = _csv_rows(20_000, rng)
    src = _small_pieces_source(data, stdin, 1024, tmp_path, monkeypatch)
    target, pred, stats = _read_all(src, rows=3000)
    np.testing.assert_array_equal(target, y)
    np.testing.assert_array_equal(pred, p)
    assert stats.count == 0


@pytest.mark.parametrize("stdin", [False, True], ids=["file", "stdin"])
def test_csv_bad_value_row_counted_across_pieces(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 rng: np.random.Generator, stdin: bool) -> None:
    _, _, data = _csv_rows(5_000, rng)
    lines = data.split(b"\n")
    lines[3_001] = b"1.5,oops"  # data row 3001 (line 1 is the header)
    lines[4_500] = b"2.5,later"
    src = _small_pieces_source(b"\n".join(lines), stdin, 512, tmp_path, monkeypatch)
    with pytest.raises(InputError, match=r"column 'pred' has a non-numeric value 'oops' at row "
                                         r"3001$"):
        _read_all(src)


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz", ".tsv"])
def test_bad_value_without_a_row_number_is_located_by_a_second_pass(tmp_path: Path,
                                                                     suffix: str) -> None:
    """When pyarrow names a bad cell's column but not its row, a second pass over that column
    finds the first row holding the value (1-based data rows; the header is not one)."""
    sep = "\t" if suffix == ".tsv" else ","
    lines = ["y" + sep + "pred"] + [f"{i}{sep}{i}.5" for i in range(3000)]
    lines[2001] = f"7{sep}oops"  # data row 2001
    lines[2500] = f"oops{sep}1"  # the same text in another column comes later: not it
    text = ("\n".join(lines) + "\n").encode()
    path = tmp_path / f"bad{suffix}"
    path.write_bytes(gzip.compress(text) if suffix.endswith(".gz") else text)
    src = sources.open_source(str(path))
    assert sources._locate_csv_value(src, "pred", "oops") == 2001
    assert sources._locate_csv_value(src, "y", "oops") == 2500
    assert sources._locate_csv_value(src, "pred", "absent") is None
    err = sources._csv_error(src, pa.ArrowInvalid(
        "In CSV column #1: CSV conversion error to double: invalid value 'oops'"), 0)
    assert str(err) == f"{src.where}: column 'pred' has a non-numeric value 'oops' at row 2001"


# --- lazy imports ----------------------------------------------------------------------------


def _imported(*args: str) -> set[str]:
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "losscli", *args],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Usage" in proc.stdout
    return {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines()
            if line.startswith("import time:")}


@pytest.mark.parametrize("args", [("--help",), ("eval", "--help"), ("losses", "--help")])
def test_help_does_not_import_pandas_or_pyarrow(args: tuple[str, ...]) -> None:
    modules = _imported(*args)
    assert "typer" in modules  # the import log was read correctly
    heavy = sorted(m for m in modules if m.split(".")[0] in ("pandas", "pyarrow"))
    assert heavy == []


def test_cli_module_import_is_light() -> None:
    code = ("import sys; from losscli.cli import app, run; "
            "print('pandas' in sys.modules, 'pyarrow' in sys.modules, 'numpy' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=True)
    assert proc.stdout.split() == ["False", "False", "False"]


@pytest.mark.parametrize("types", ["float64", "mixed"])
def test_multiclass_columns_class_major_with_nulls(types: str, rng: np.random.Generator) -> None:
    # All-float64 columns take one C++ copy (RecordBatch.to_tensor); other types go column by
    # column. Both give the (C, n) class-major array, NaN where a cell is null.
    n = 50
    p = rng.random((n, 3))
    columns: dict[str, pa.Array] = {f"p_{k}": pa.array(p[:, k]) for k in range(3)}
    if types == "mixed":
        columns["p_1"] = pa.array(p[:, 1].astype(np.float32))
        columns["p_2"] = pa.array(np.arange(n, dtype=np.int64))
        p[:, 1] = p[:, 1].astype(np.float32)
        p[:, 2] = np.arange(n)
    columns["p_0"] = pa.array([None if i == 7 else v for i, v in enumerate(p[:, 0].tolist())],
                              pa.float64())
    columns["y"] = pa.array(rng.integers(0, 3, n).astype(np.float64))
    src = Source("<memory>", "memory", list(columns), table=pa.table(columns))
    cols = resolve_columns(src, "p_*", "y", None)
    stats = NanStats()
    got = list(chunks(src, cols, 3 * 20, "drop", stats))
    pred = np.concatenate([c.pred for c in got], axis=1)
    assert all(c.pred.shape[0] == 3 for c in got)
    np.testing.assert_array_equal(pred, np.delete(p, 7, axis=0).T)
    assert (stats.count, stats.first_row, stats.first_column) == (1, 8, "p_0,p_1,p_2")


@pytest.mark.parametrize("type_", [pa.int8(), pa.int16(), pa.int32(), pa.int64(), pa.uint8(),
                                   pa.uint16(), pa.uint32(), pa.uint64(), pa.float32(),
                                   pa.float64(), pa.bool_()])
@pytest.mark.parametrize("nulls", [False, True])
def test_float64_view_matches_arrow_cast(type_: pa.DataType, nulls: bool) -> None:
    import pyarrow.compute as pc

    from losscli.sources import float64_view

    values: list[Any] = [0, 1, 0, 1, 1, 0, 1] if pa.types.is_boolean(type_) else [
        0, 1, 2, 3, 100, 7, 42]
    if nulls:
        values[2] = None
    arr = pa.array(values).cast(type_).slice(1)  # an offset into the buffer, too
    expected = pc.fill_null(pc.cast(arr, pa.float64()), float("nan")).to_pylist()
    got = float64_view(arr)
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, np.array(expected, dtype=np.float64))


def test_integer_labels_do_not_import_arrow_compute(tmp_path: Path) -> None:
    path = tmp_path / "b.parquet"
    pq.write_table(pa.table({"label": pa.array([0, 1, 1, 0], pa.int64()),
                             "logit": [-1.0, 2.0, 0.5, -0.2]}), path)
    code = ("import sys; import losscli; "
            f"losscli.evaluate({str(path)!r}, losses=['bce'], logits=True, threads=0); "
            "print('pyarrow.compute' in sys.modules, 'pandas' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=True)
    assert proc.stdout.split() == ["False", "False"]
