"""Reading: open a file, directory or stdin, resolve the columns, stream validated float64 chunks.

Only the selected columns are decoded; nothing is concatenated, so memory is bounded by the chunk
size. Parquet is opened with ``pre_buffer=False`` (pyarrow's default pre-buffering holds the whole
file), CSV with explicit column types, in pieces cut at line breaks that pyarrow parses on its
thread pool.
"""

from __future__ import annotations

import fnmatch
import io
import math
import os
import re
import stat
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Literal

import numpy as np

from losscli.errors import DuplicateColumnError, InputError, UsageError
from losscli.remote import is_uri, open_file, shown

if TYPE_CHECKING:
    import pyarrow as pa

Format = Literal["csv", "tsv", "parquet", "parquet-dir", "arrow", "memory"]
NanPolicy = Literal["error", "drop"]

#: CSV is read in pieces of about this many bytes, cut at line breaks, and each piece is parsed
#: by pyarrow's thread pool in CSV_BLOCK_SIZE blocks: its streaming reader parses on one thread.
#: Measured on 5e6 rows, 182 MB, 2 cores: parsing alone 0.34 s streaming, 0.21 s in pieces.
#: Peak RSS grows with the piece: 108 MiB at 4 MiB, 120 at 6, 150 at 8, 198 at 16.
CSV_PIECE_SIZE = 6 << 20
CSV_BLOCK_SIZE = 3 << 20
#: Parquet column chunks are read through a buffer of this size instead of whole: measured on a
#: 1e6 x 100 file, 417 -> 294 MiB peak; on 5e7 x 2, 124 -> 90 MiB and no slower.
PARQUET_BUFFER_SIZE = 1 << 16
#: ... and from object storage through a buffer of this size: each buffer fill is a ranged GET.
#: Counted on moto's S3 (a 9 MB file, 3 columns in 15 column chunks of 0.5 MB): 83 GETs at
#: 64 KiB, 17 (one a column chunk, and the footer) at 8 MiB.
REMOTE_BUFFER_SIZE = 8 << 20
#: No chunk holds more rows than this (16 GiB a float64 column): a larger --chunk-rows is read
#: as this many, since pyarrow takes batch sizes as C integers.
MAX_CHUNK_ROWS = (1 << 31) - 1
TARGET_NAMES = ("y", "target", "label", "y_true", "labels", "truth", "actual", "y_test")
PRED_NAMES = ("pred", "prediction", "y_pred", "y_hat", "yhat", "score", "y_score", "p", "prob",
              "probs", "proba", "y_prob", "y_proba", "probability", "probabilities",
              "predictions", "preds", "scores", "output", "logit", "logits")
MULTI_PRED_GLOBS = ("prob_*", "proba_*", "p_*", "logit_*", "logits_*", "score_*", "pred_*")


@dataclass
class Columns:
    """The columns to read; for multiclass, ``pred`` has one column per class (or a list column)."""

    pred: list[str]
    target: str
    weight: str | None = None
    list_column: bool = False
    #: class labels of the prediction columns (the text the glob matched, or the name suffix)
    labels: list[str] = field(default_factory=list)
    #: a list column's number of classes: the length of its first non-null row in the input,
    #: which every later row, in any chunk, row group or file, must have too
    width: int | None = None
    #: the predicted variance (``--var``), for gaussian_nll
    var: str | None = None
    #: soft targets (``--target 'q_*'``): one probability column per class, in the order of
    #: the prediction columns; ``target`` is then the first of them
    soft: list[str] = field(default_factory=list)
    #: slice key columns (``--by``), read beside the others; those in ``numeric_keys`` are
    #: binned, read from CSV as numbers (the others as text)
    keys: list[str] = field(default_factory=list)
    numeric_keys: list[str] = field(default_factory=list)
    #: the target is stored as floating point (whole numbers there are amounts, not counts)
    float_target: bool = False
    #: the positive label of a binary target of two labels (text or numbers): 1, the other 0
    positive: str | None = None

    @property
    def multiclass(self) -> bool:
        return self.list_column or len(self.pred) > 1

    @property
    def selected(self) -> list[str]:
        cols = [*self.pred, self.target, *self.soft]
        if self.weight:
            cols.append(self.weight)
        if self.var:
            cols.append(self.var)
        return list(dict.fromkeys([*cols, *self.keys]))


@dataclass
class Chunk:
    """Validated rows: finite float64 ``pred`` ((n,) or (C, n)), ``target``, optional ``weight``.

    ``rows`` maps each row back to its 0-based data row in the source, for error messages.
    """

    pred: np.ndarray
    target: np.ndarray
    weight: np.ndarray | None
    first_row: int
    rows: np.ndarray | None = None  # None: the rows are first_row, first_row + 1, ...
    #: the predicted variance (``--var``), when read
    var: np.ndarray | None = None
    #: soft targets (C, n), when read; ``target`` then holds each row's most probable class
    soft: np.ndarray | None = None

    def row_number(self, i: int) -> int:
        """1-based data row (header excluded) of chunk row i."""
        return (int(self.rows[i]) if self.rows is not None else self.first_row + i) + 1


@dataclass
class NanStats:
    """Rows with NaN, inf or empty cells: how many, the first, and in which column."""

    count: int = 0
    first_row: int = -1
    first_column: str = ""
    first_file: str = ""

    def merge(self, later: NanStats) -> None:
        """Add the counts of rows that come after these."""
        if later.count and not self.count:
            self.first_row, self.first_column, self.first_file = (
                later.first_row, later.first_column, later.first_file)
        self.count += later.count

    def error(self) -> InputError:
        """The error of ``--nan error`` once the whole input is read."""
        return InputError(
            f"{self.first_file}: {self.count} row(s) with NaN, inf or empty values, first at "
            f"row {self.first_row} in column '{self.first_column}'; pass --nan drop to skip them")

    def dropped(self) -> str:
        """The warning of ``--nan drop``."""
        return (f"dropped {self.count:,} row(s) with NaN, inf or empty values (first at row "
                f"{self.first_row}, column '{self.first_column}')")

    @classmethod
    def of_pair(cls, base: NanStats, cand: NanStats, rows: int) -> NanStats:
        """The rows of two sides read in step that either side dropped: ``rows`` of them (a
        row with a bad cell on both sides counts once), the first where the earlier side's."""
        first = base if not cand.count or (base.count and base.first_row <= cand.first_row) \
            else cand
        return cls(rows, first.first_row, first.first_column, first.first_file) if rows \
            else cls()

    def all_dropped(self, where: str) -> InputError:
        """The error of ``--nan drop`` when no row is left to evaluate."""
        return InputError(f"{where}: no rows left after dropping {self.count} row(s) with NaN, "
                          "inf or empty values")


@dataclass
class RawChunk:
    """A record batch of the selected columns and where it sits in the input, not yet
    converted to float64 nor checked: :func:`to_chunk` does that, on any thread."""

    batch: pa.RecordBatch
    where: str
    first_row: int
    #: the file's position in the input (0 for a single file): blocks are numbered per file
    file: int = 0


def _arrow_error(exc: Exception, where: str) -> InputError:
    text = " ".join(str(exc).split())
    return InputError(f"{where}: {text}")


class ChainedReader(io.RawIOBase):
    """Bytes already read (the header) followed by the rest of a stream: lets stdin be peeked."""

    def __init__(self, head: bytes, rest: BinaryIO) -> None:
        self._head = head
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buf: Any) -> int:
        if self._head:
            n = min(len(buf), len(self._head))
            buf[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._rest.read(len(buf))
        n = len(data)
        buf[:n] = data
        return n


@dataclass
class Source:
    """An opened input: its path for messages, its format, and its column names in file order."""

    path: str
    format: Format
    names: list[str]
    files: list[str] = field(default_factory=list)
    delimiter: str = ","
    arrow_types: dict[str, Any] = field(default_factory=dict)
    _stdin: BinaryIO | None = None  # CSV read once, as a stream: stdin, a pipe, a FIFO
    table: Any = None  # a pyarrow Table for in-memory input
    reader: Any = None  # a pyarrow RecordBatchReader: in-memory input read once
    reader_used: bool = field(default=False, repr=False)
    #: the CSV line break: b"\n" (also for \r\n), or b"\r" for old Mac / Excel exports
    newline: bytes = b"\n"
    #: the first bytes of a CSV input (the header and the rows of the first read, up to 64 KiB
    #: or one line): the types its columns would be read as
    head: bytes = b""
    #: Parquet: each file's size in bytes, from the listing (sizes the distributed work units)
    sizes: list[int] = field(default_factory=list)
    #: read only the rows [start, stop) of the one file (a work unit of a large file)
    rows: tuple[int, int] | None = None

    @property
    def where(self) -> str:
        """How messages name this input."""
        return "stdin" if self.path == "-" else self.path

    @property
    def is_stream(self) -> bool:
        """Read once, front to back: no second pass, no seeking."""
        return self._stdin is not None or self.reader is not None

    @property
    def display_format(self) -> str:
        if self.path == "-":
            return "csv (stdin)"
        return f"{self.format} (stream)" if self.is_stream else self.format


def _sniff_name(path: Path) -> Format | None:
    """The format a file name says, or None."""
    name = path.name.lower()
    for suffix in (".gz", ".bz2", ".zst", ".lz4"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    if name.endswith((".parquet", ".pq", ".parq")):
        return "parquet"
    if name.endswith((".arrow", ".feather", ".ipc")):
        return "arrow"
    if name.endswith((".tsv", ".tab")):
        return "tsv"
    if name.endswith((".csv", ".txt")):
        return "csv"
    return None


def _sniff(path: Path) -> Format:
    named = _sniff_name(path)
    if named is not None:
        return named
    with open(path, "rb") as f:
        head = f.read(8)
    if head.startswith(b"PAR1"):
        return "parquet"
    if head.startswith(b"ARROW1"):
        return "arrow"
    return "csv"


#: What losscli reads, as messages name it.
FORMATS_READ = "CSV, TSV, Parquet (files or directories) and Arrow IPC / Feather"

#: Leading bytes of formats that are not read, and their names: refused by content, never
#: parsed as CSV (a JSON file's first line read as a header of 500 characters).
_FOREIGN_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"PK\x03\x04", "a ZIP archive (an Excel .xlsx workbook?)"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an Excel .xls workbook"),
    (b"SQLite format 3\x00", "an SQLite database"),
    (b"%PDF", "a PDF document"),
    (b"\x89HDF", "an HDF5 file"),
    (b"\x93NUMPY", "a NumPy .npy array"),
    (b"\x80", "a Python pickle"),
    (b"Obj\x01", "an Avro file"),
    (b"ORC", "an ORC file"),
)


def refuse_foreign(head: bytes, where: str) -> None:
    """Raise InputError when the first bytes of an input are not CSV or TSV text: JSON, an
    Excel workbook, another binary format; one line naming the formats that are read."""
    import re

    what = next((name for magic, name in _FOREIGN_MAGIC if head.startswith(magic)), None)
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if what is None and re.match(rb'(\{\s*("|\})|\[\s*[\[{"\]\d-])', text):
        what = "JSON (or JSON lines)"
    if what is None:
        return
    reader = "read_json" if what.startswith("JSON") else "read_excel" if "Excel" in what else ""
    hint = f" (convert it with pandas: pd.{reader}(...).to_parquet(...))" if reader else ""
    raise InputError(f"{where}: this is {what}; losscli reads {FORMATS_READ}{hint}")


#: A CSV header longer than this is taken for a file that is not CSV (such as /dev/zero).
MAX_HEADER_BYTES = 64 << 20


def _first_line(stream: Any, where: str) -> bytes:
    """The bytes of a stream up to and including its first line break (\\n, \\r\\n or a lone
    \\r), of any length up to MAX_HEADER_BYTES, and possibly a little more; everything when
    there is none."""
    parts: list[bytes] = []
    size = 0
    while True:
        block = stream.read(1 << 16)
        if not block:
            break
        parts.append(block)
        size += len(block)
        if size > MAX_HEADER_BYTES:
            raise InputError(f"{where}: no line break in the first {MAX_HEADER_BYTES >> 20} MiB; "
                             "is this a CSV file?")
        cr = block.find(b"\r")
        if block.find(b"\n") >= 0 or 0 <= cr < len(block) - 1:
            break  # a \r at the very end may be the first half of \r\n: read on
    return b"".join(parts)


def _line_break(head: bytes) -> bytes:
    """b"\\r" when the first line ends with a lone carriage return, else b"\\n"."""
    nl, cr = head.find(b"\n"), head.find(b"\r")
    if cr >= 0 and (nl < 0 or nl > cr + 1):
        return b"\r"
    return b"\n"


def _csv_header(raw: bytes, where: str, delimiter: str) -> list[str]:
    import csv

    line = raw.split(_line_break(raw), 1)[0].rstrip(b"\r")
    try:
        text = line.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(f"{where}: the header is not UTF-8 text; is this a CSV file?") from None
    names = next(csv.reader([text], delimiter=delimiter), [])
    if not names or not any(n.strip() for n in names):
        raise InputError(f"{where}: empty header line")
    return names


def open_source(path: str) -> Source:
    """Open an input and read its column names; raises InputError for missing or broken files."""
    if path == "-":
        return _open_stream("-", sys.stdin.buffer, "csv")
    if is_uri(path):
        return _open_uri(path)
    p = Path(path)
    if not p.exists():
        raise InputError(f"{path}: no such file or directory")
    if not p.is_dir() and not stat.S_ISREG(p.stat().st_mode):
        # A FIFO, /dev/stdin on a pipe, a process substitution <(...): one read, front to back.
        try:
            stream = open(p, "rb")  # noqa: SIM115 - read by the batches, closed at exit
        except OSError as exc:
            raise InputError(f"{path}: cannot read ({exc.strerror})") from None
        return _open_stream(path, stream, "tsv" if _sniff_name(p) == "tsv" else "csv")
    if p.is_dir():
        files = sorted(str(f) for f in p.rglob("*") if f.is_file()
                       and f.suffix.lower() in (".parquet", ".pq", ".parq")
                       and not f.name.startswith((".", "_")))
        if not files:
            raise InputError(f"{path}: directory contains no Parquet files (*.parquet)")
        src = _open_parquet(files[0], path)
        src.format, src.files = "parquet-dir", files
        src.sizes = [os.path.getsize(f) for f in files]
        return src
    if p.stat().st_size == 0:
        raise InputError(f"{path}: file is empty")
    fmt = _sniff(p)
    if fmt == "parquet":
        src = _open_parquet(path, path)
        src.sizes = [p.stat().st_size]
        return src
    if fmt == "arrow":
        return _open_arrow(path)
    import pyarrow as pa

    delimiter = "\t" if fmt == "tsv" else ","
    try:
        with pa.input_stream(path, compression="detect") as f:
            head = _first_line(f, path)
    except (OSError, pa.ArrowException) as exc:
        raise _arrow_error(exc, path) from None
    if not head.strip():
        raise InputError(f"{path}: file is empty")
    refuse_foreign(head, path)
    return Source(path, fmt, _csv_header(head, path, delimiter), delimiter=delimiter,
                  newline=_line_break(head), head=head)


def _open_uri(uri: str) -> Source:
    """A file or a directory / prefix of Parquet files named by a URI (:mod:`losscli.remote`)."""
    from losscli.remote import listing

    directory, files, sizes = listing(uri)
    if directory and not files:
        raise InputError(f"{shown(uri)}: no Parquet files (*.parquet) under this prefix")
    if not directory and _sniff_name(Path(uri.split("?", 1)[0])) not in ("parquet", None):
        raise InputError(f"{shown(uri)}: a URI is read as Parquet (a file or a prefix of "
                         "*.parquet files); copy CSV and Arrow files to a local path")
    src = _open_parquet(files[0], shown(uri))
    src.files, src.sizes = files, sizes
    if directory:
        src.format = "parquet-dir"
    return src


def _open_stream(path: str, stream: BinaryIO, fmt: Format) -> Source:
    """CSV from a stream that can be read only once: its header now, the rest later."""
    where = "stdin" if path == "-" else path
    head = _first_line(stream, where)
    if head.startswith((b"PAR1", b"ARROW1")):
        raise InputError(f"{where}: Parquet and Arrow data need a file (they are read from "
                         "the end); only CSV can be read from a pipe")
    if not head.strip():
        raise InputError(f"{where}: no CSV data (empty input)")
    refuse_foreign(head, where)
    delimiter = "\t" if fmt == "tsv" else ","
    names = _csv_header(head, where, delimiter)
    return Source(path, fmt, names, delimiter=delimiter, newline=_line_break(head),
                  _stdin=io.BufferedReader(ChainedReader(head, stream)), head=head)


def open_input(data: Any) -> Source:
    """Open any input the library takes: a path (``str`` or ``os.PathLike``; ``"-"`` is CSV on
    stdin), an opened :class:`Source`, or in-memory data (see :func:`open_table`). The one
    place that eval, compare and recommend open their inputs."""
    if isinstance(data, Source):
        return data
    if isinstance(data, (str, os.PathLike)):
        return open_source(os.fspath(data))
    return open_table(data)


def open_table(data: Any) -> Source:
    """An in-memory source: a pandas DataFrame, a pyarrow Table or RecordBatchReader (read once,
    batch by batch), an object with the Arrow stream interface (``__arrow_c_stream__``: polars,
    DuckDB results) or a mapping of column names to arrays (a 2-D array of shape (n, C) is a
    list column of C class probabilities)."""
    import pyarrow as pa

    what = type(data).__name__
    try:
        if isinstance(data, pa.RecordBatchReader):
            schema = data.schema
            return Source("<memory>", "memory", list(schema.names), reader=data,
                          arrow_types={f.name: f.type for f in schema})
        if isinstance(data, pa.RecordBatch):
            table = pa.Table.from_batches([data])
        elif isinstance(data, pa.Table):
            table = data
        elif type(data).__module__.split(".")[0] == "pandas" and hasattr(data, "columns"):
            table = pa.Table.from_pandas(data, preserve_index=False)
        elif hasattr(data, "__arrow_c_stream__"):
            table = pa.table(data)
        elif isinstance(data, Mapping):
            table = pa.table({str(k): _column_array(pa, v) for k, v in data.items()})
        else:
            raise UsageError(f"cannot read a {what}: pass a path, a pandas DataFrame, a pyarrow "
                             "Table or RecordBatchReader, or a mapping of column names to arrays")
    except (pa.ArrowException, ValueError, TypeError) as exc:
        raise InputError(f"<memory>: cannot read the {what} as columns "
                         f"({' '.join(str(exc).split())})") from None
    return Source("<memory>", "memory", list(table.column_names), table=table,
                  arrow_types={f.name: f.type for f in table.schema})


def _column_array(pa: Any, values: Any) -> Any:
    """One column of a mapping: Arrow arrays as they are, 1-D arrays as NumPy reads them, and
    a 2-D (n, C) array as a list column of C values a row."""
    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        return values
    arr = np.asarray(values)
    if arr.ndim == 2:
        flat = np.ascontiguousarray(arr, dtype=np.float64).ravel()
        return pa.FixedSizeListArray.from_arrays(pa.array(flat), arr.shape[1])
    if arr.ndim != 1:
        raise ValueError(f"a column must be a 1-D array (or 2-D: one row of class values a "
                         f"row), got shape {arr.shape}")
    return arr


def _open_parquet(path: str, name: str) -> Source:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(open_file(path), pre_buffer=False)
    except (OSError, pa.ArrowException) as exc:
        raise InputError(f"{shown(path)}: not a readable Parquet file "
                         f"({' '.join(str(exc).split())})") from None
    schema = pf.schema_arrow
    return Source(name, "parquet", list(schema.names), files=[path],
                  arrow_types={f.name: f.type for f in schema})


def _open_arrow(path: str) -> Source:
    import pyarrow as pa

    try:
        with pa.memory_map(path) as mm:
            try:
                schema = pa.ipc.open_file(mm).schema
            except pa.ArrowInvalid:
                mm.seek(0)
                schema = pa.ipc.open_stream(mm).schema
    except (OSError, pa.ArrowException) as exc:
        raise InputError(f"{path}: not a readable Arrow IPC / Feather file "
                         f"({' '.join(str(exc).split())})") from None
    return Source(path, "arrow", list(schema.names), arrow_types={f.name: f.type for f in schema})


# --- column resolution ------------------------------------------------------------------------


def _available(src: Source) -> str:
    shown = src.names[:30]
    more = f", ... ({len(src.names)} in all)" if len(src.names) > 30 else ""
    return ", ".join(shown) + more


def find_column(src: Source, name: str, role: str) -> str:
    if name in src.names:
        return name
    folded = [n for n in src.names if n.lower() == name.lower()]
    if len(folded) == 1:
        return folded[0]
    raise InputError(f"{src.path}: {role} column '{name}' not found (columns: {_available(src)})")


def guess_column(src: Source, candidates: Sequence[str], exclude: set[str]) -> str | None:
    lower = {n.lower(): n for n in src.names if n not in exclude}
    return next((lower[c] for c in candidates if c in lower), None)


def _common_prefix_labels(names: list[str]) -> list[str]:
    """Class labels of listed columns: the names without their common prefix, cut back to its
    last separator when it has one (prob_cat, prob_cow are cat, cow; prob_[a], prob_[b] are
    [a], [b], as the glob prob_* reads them)."""
    prefix = os.path.commonprefix(names)  # noqa: RUF071 - a text prefix, not a path
    cut = max(prefix.rfind(sep) for sep in "_-. :")
    if cut >= 0:
        prefix = prefix[:cut + 1]
    labels = [n[len(prefix):] for n in names]
    return labels if all(labels) else list(names)


def _glob_labels(pattern: str, names: list[str]) -> list[str]:
    head, tail = pattern.split("*", 1)[0], pattern.rsplit("*", 1)[-1]
    if "*" not in pattern:
        return _common_prefix_labels(names)
    return [n[len(head):len(n) - len(tail)] for n in names]


def _all_names(src: Source, pred: str) -> bool:
    """``pred`` is a comma list of exact column names (``p_[a],p_[b]`` is not a glob)."""
    parts = [p.strip() for p in pred.split(",") if p.strip()]
    return "," in pred and bool(parts) and all(p in src.names for p in parts)


#: --pred: a column name, a comma list, a glob, or (from Python) a list or tuple of names.
PredArg = str | Sequence[str] | None


def _listed(src: Source, names: Sequence[str], shown: str) -> tuple[list[str], list[str]]:
    """(columns, class labels) of prediction columns named one by one."""
    found = [find_column(src, n, "prediction") for n in names]
    if not found:
        raise UsageError(f"--pred '{shown}' names no column")
    if len(set(found)) != len(found):
        raise UsageError(f"--pred lists a column twice: {shown}")
    return found, _common_prefix_labels(found)


def _soft_targets(src: Source, target: str) -> list[str]:
    """The columns of a soft target given as a glob or a comma list ('q_*', 'q_a,q_b'); []
    for the name of one column."""
    if target in src.names:
        return []
    if any(ch in target for ch in "*?[") and not _all_names(src, target):
        matched = [n for n in src.names if fnmatch.fnmatchcase(n, target)]
        if not matched:
            raise InputError(f"{src.path}: no column matches --target '{target}' "
                             f"(columns: {_available(src)})")
        return matched
    if "," in target:
        return [find_column(src, t.strip(), "target") for t in target.split(",") if t.strip()]
    return []


def _pair_soft_targets(cols: Columns, soft: list[str], given: str) -> None:
    """Soft target columns, one per prediction column, in the predictions' class order (by
    their labels when both name them)."""
    if cols.list_column or len(cols.pred) < 2:
        raise UsageError(f"soft targets (--target '{given}') go with one prediction column per "
                         "class (--pred as a comma list or a glob such as 'p_*')")
    if len(soft) != len(cols.pred):
        raise UsageError(f"--target '{given}' selects {len(soft)} soft-target column(s), but "
                         f"--pred selects {len(cols.pred)}: give one target column per class")
    if overlap := set(soft) & set(cols.pred):
        raise UsageError(f"column '{sorted(overlap)[0]}' is both a target and a prediction "
                         "column")
    labels = (_glob_labels(given, soft) if any(ch in given for ch in "*?[")
              else _common_prefix_labels(soft))
    if cols.labels and sorted(labels) == sorted(cols.labels) and labels != cols.labels:
        soft = [soft[labels.index(k)] for k in cols.labels]
    cols.soft, cols.target = soft, soft[0]


def eval_only_columns(cols: Columns, command: str) -> Columns:
    """Soft targets are read by eval alone: other commands refuse them rather than read each
    row's most probable class as its label."""
    if cols.soft:
        raise UsageError(f"soft targets (several --target columns) are read by eval, not by "
                         f"{command}")
    return cols


def resolve_columns(src: Source, pred: PredArg, target: str | None,
                    weight: str | None, var: str | None = None) -> Columns:
    """Map --pred/--target/--weight/--var (or the recognised names) to the source's columns."""
    names: list[str] | None = None
    if pred is not None and not isinstance(pred, str):
        names = list(pred)
        if not all(isinstance(n, str) for n in names):
            raise UsageError(f"pred must be a column name or a list of column names, got "
                             f"{pred!r}")
        pred = names[0] if len(names) == 1 else ",".join(names)  # one name in a list is it
        names = None if len(names) == 1 else names
    assert pred is None or isinstance(pred, str)
    soft = _soft_targets(src, target) if target else []
    tgt = soft[0] if soft else (find_column(src, target, "target") if target
                                else guess_column(src, TARGET_NAMES, set()))
    if tgt is None:
        raise InputError(f"{src.path}: no target column recognised; pass --target "
                         f"(columns: {_available(src)})")
    cols = Columns([], tgt, find_column(src, weight, "weight") if weight else None)
    if pred is None:
        single = guess_column(src, PRED_NAMES, {tgt})
        if single is not None:
            cols.pred = [single]
        else:
            for pattern in MULTI_PRED_GLOBS:
                matched = [n for n in src.names if fnmatch.fnmatchcase(n.lower(), pattern)
                           and n != tgt]
                if len(matched) >= 2:
                    cols.pred, cols.labels = matched, _glob_labels(pattern, matched)
                    break
        if not cols.pred:
            raise InputError(f"{src.path}: no prediction column recognised; pass --pred "
                             f"(columns: {_available(src)})")
    elif names is not None:
        cols.pred, cols.labels = _listed(src, names, ",".join(names))
    elif pred in src.names:  # an exact name wins, even one that holds glob characters
        cols.pred = [pred]
    elif any(ch in pred for ch in "*?[") and not _all_names(src, pred):
        matched = [n for n in src.names if fnmatch.fnmatchcase(n, pred) and n != tgt]
        if not matched:
            raise InputError(f"{src.path}: no column matches --pred '{pred}' "
                             f"(columns: {_available(src)})")
        cols.pred = matched
        cols.labels = _glob_labels(pred, matched) if len(matched) > 1 else []
    elif "," in pred:
        cols.pred, cols.labels = _listed(
            src, [p.strip() for p in pred.split(",") if p.strip()], pred)
    else:
        cols.pred = [find_column(src, pred, "prediction")]
    if soft:
        _pair_soft_targets(cols, soft, target or "")
    if tgt in cols.pred:
        raise UsageError(f"column '{tgt}' is both the target and a prediction column")
    if var is not None:
        cols.var = find_column(src, var, "variance")
        if cols.var in (*cols.pred, tgt):
            raise UsageError(f"column '{cols.var}' is both the variance and a "
                             f"{'target' if cols.var == tgt else 'prediction'} column")
    cols.float_target = float_column(src, tgt)
    check_unique(src, cols)
    if len(cols.pred) == 1:
        import pyarrow as pa

        typ = src.arrow_types.get(cols.pred[0])
        if typ is not None and (pa.types.is_list(typ) or pa.types.is_large_list(typ)
                                or pa.types.is_fixed_size_list(typ)):
            cols.list_column = True
    return cols  # a list column has no labels: its classes are the indices 0..C-1


def float_column(src: Source, name: str) -> bool:
    """The column is stored as floating point: its Arrow type, or for CSV the type pyarrow
    infers from the first rows (``151.0`` is a float, ``151`` an integer)."""
    import pyarrow as pa

    typ = src.arrow_types.get(name)
    if typ is None and src.format in ("csv", "tsv") and src.head:
        import pyarrow.csv as pcsv

        end = src.head.rfind(src.newline)
        try:
            sample = pcsv.read_csv(
                pa.BufferReader(src.head[:end + 1] if end >= 0 else src.head),
                read_options=pcsv.ReadOptions(column_names=src.names, skip_rows=1,
                                              use_threads=False),
                parse_options=pcsv.ParseOptions(delimiter=src.delimiter),
                convert_options=pcsv.ConvertOptions(include_columns=[name]))
        except (pa.ArrowException, OSError):
            return False  # a sample cut inside a quoted cell, a ragged row: the values decide
        typ = sample.schema.field(name).type if sample.num_rows else None
    return typ is not None and pa.types.is_floating(typ)


def check_unique(src: Source, cols: Columns) -> Columns:
    """Refuse a column to read whose name the source has more than once (which one is meant?)."""
    repeated = [c for c in cols.selected if src.names.count(c) > 1]
    if repeated:
        raise DuplicateColumnError(
            f"{src.where}: {src.names.count(repeated[0])} columns are named '{repeated[0]}'; "
            "rename them so that the name means one column")
    return cols


# --- batch streams ----------------------------------------------------------------------------


def _slice(batch: pa.RecordBatch, rows: int) -> Iterator[pa.RecordBatch]:
    if batch.num_rows <= rows:
        yield batch
        return
    for start in range(0, batch.num_rows, rows):
        yield batch.slice(start, rows)


def _parquet_batches(path: str, columns: list[str], rows: int,
                     dictionary: Sequence[str] = (),
                     span: tuple[int, int] | None = None) -> Iterator[pa.RecordBatch]:
    """The columns' batches, of rows [start, stop) only when ``span`` is given; ``dictionary``
    columns (slice keys) read as dictionary arrays (their values are not materialised per
    row)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        buffer = REMOTE_BUFFER_SIZE if is_uri(path) else PARQUET_BUFFER_SIZE
        with pq.ParquetFile(open_file(path), pre_buffer=False, buffer_size=buffer,
                            read_dictionary=list(dictionary) or None) as pf:
            missing = [c for c in columns if c not in pf.schema_arrow.names]
            if missing:
                raise InputError(f"{shown(path)}: column '{missing[0]}' not found "
                                 f"(columns: {', '.join(pf.schema_arrow.names)})")
            if span is None:
                # Across row groups: every batch holds ``rows`` rows of the file from a multiple
                # of ``rows`` on, so that with the default size a batch is a block of the read
                # plan (a batch cut at each row group's end made every later block a joined
                # copy: +5% CPU on 1e6-row groups). Measured no slower than row group by row
                # group.
                yield from pf.iter_batches(batch_size=rows, columns=columns, use_threads=False)
                return
            # rows [start, stop): the row groups that hold them, less the rows around
            start, stop = span
            groups: list[int] = []
            first = skip = 0
            for group in range(pf.num_row_groups):
                n = pf.metadata.row_group(group).num_rows
                if first < stop and first + n > start:
                    skip = skip if groups else start - first
                    groups.append(group)
                first += n
            at = -skip  # the next batch's first row, counted from ``start``
            for batch in pf.iter_batches(batch_size=rows, row_groups=groups, columns=columns,
                                         use_threads=False):
                a, b = max(-at, 0), min(stop - start - at, batch.num_rows)
                at += batch.num_rows
                if b > a:
                    yield batch if b - a == batch.num_rows else batch.slice(a, b - a)
                if at >= stop - start:
                    break
    except (OSError, pa.ArrowException) as exc:
        raise InputError(f"{shown(path)}: cannot read Parquet data "
                         f"({' '.join(str(exc).split())}); is the file truncated or corrupt?"
                         ) from None


def parquet_groups(path: str, columns: list[str]) -> list[tuple[int, int]]:
    """(rows, compressed bytes of ``columns``) of each row group of a Parquet file, from its
    footer: what sizes the work units of a distributed run."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    wanted = set(columns)
    try:
        meta = pq.ParquetFile(open_file(path), pre_buffer=False).metadata
    except (OSError, pa.ArrowException) as exc:
        raise InputError(f"{shown(path)}: not a readable Parquet file "
                         f"({' '.join(str(exc).split())})") from None
    groups = []
    for g in range(meta.num_row_groups):
        group = meta.row_group(g)
        size = sum(group.column(c).total_compressed_size for c in range(group.num_columns)
                   if group.column(c).path_in_schema.split(".")[0] in wanted)
        groups.append((group.num_rows, size))
    return groups


def _arrow_batches(path: str, columns: list[str], rows: int) -> Iterator[pa.RecordBatch]:
    import pyarrow as pa

    try:
        with pa.memory_map(path) as mm:
            try:
                reader: Any = pa.ipc.open_file(mm)
                batches: Iterator[pa.RecordBatch] = (
                    reader.get_batch(i) for i in range(reader.num_record_batches))
            except pa.ArrowInvalid:
                mm.seek(0)
                batches = iter(pa.ipc.open_stream(mm))
            for batch in batches:
                yield from _slice(batch.select(columns), rows)
    except (OSError, pa.ArrowException) as exc:
        raise _arrow_error(exc, path) from None


def _csv_pieces(stream: Any, size: int, newline: bytes = b"\n"
                ) -> Iterator[tuple[memoryview, bool]]:
    """The data lines of a CSV stream (the header line left out) in pieces of about ``size``
    bytes that end at a line break, the last one at the end of the data.

    A piece is cut at its last newline, as pyarrow cuts blocks (its default ParseOptions do not
    allow newlines inside quoted values either); a line longer than ``size`` grows the piece.
    Each piece is a fresh buffer that the bytes are read into once. A piece with a double quote
    is cut at its last line break outside quotes instead, and comes with True when a quoted
    value in it holds a line break (pyarrow must then parse it minding quotes, which is slower).
    """
    tail = b""
    header = True
    while True:
        buf = np.empty(len(tail) + size, dtype=np.uint8)
        buf[:len(tail)] = np.frombuffer(tail, dtype=np.uint8)
        view = memoryview(buf)  # type: ignore[arg-type]
        got = 0
        while got < size:  # a pipe or a decompressor may return fewer bytes than asked for
            n = stream.readinto(view[len(tail) + got:])
            if not n:
                break
            got += n
        end = len(tail) + got
        start = 0
        if header:
            nl = bytes(view[:end]).find(newline) if got else -1
            if nl < 0:
                if not got:
                    return
                tail = bytes(view[:end])
                continue
            start, header = nl + 1, False
        last = got < size  # the end of the data
        if bytes(view[start:end]).find(b'"') >= 0:
            cut, quoted = _row_end_outside_quotes(view, start, end, newline, last)
        else:
            cut, quoted = (end - 1 if last else _last_newline(view, start, end, newline)), False
        if last:
            if end > start:
                yield view[start:end], quoted
            return
        if cut < 0:
            tail = bytes(view[start:end])
            continue
        yield view[start:cut + 1], quoted
        tail = bytes(view[cut + 1:end])


def _row_end_outside_quotes(view: memoryview, start: int, end: int, newline: bytes,
                            last: bool) -> tuple[int, bool]:
    """(index of the last ``newline`` in view[start:end] outside double quotes or -1 (end - 1
    when ``last``), whether a line break before it lies inside quotes). The piece starts
    outside quotes; an escaped quote ("") keeps the parity of the count."""
    data = np.frombuffer(view, dtype=np.uint8, count=end - start, offset=start)
    quotes = np.flatnonzero(data == ord('"'))
    breaks = np.flatnonzero((data == 10) | (data == 13))
    inside = np.searchsorted(quotes, breaks) % 2 == 1
    if last:
        return end - 1, bool(inside.any())
    ends = breaks[~inside & (data[breaks] == newline[0])]
    if not ends.size:
        return -1, False
    cut = int(ends[-1])
    return start + cut, bool(inside[breaks < cut].any())


def _last_newline(view: memoryview, start: int, end: int, newline: bytes = b"\n") -> int:
    """Index of the last ``newline`` in view[start:end], or -1; looks back 64 KiB at a time."""
    hi = end
    while hi > start:
        lo = max(start, hi - (1 << 16))
        i = bytes(view[lo:hi]).rfind(newline)
        if i >= 0:
            return lo + i
        hi = lo
    return -1


def _csv_batches(src: Source, columns: list[str], types: dict[str, Any],
                 rows: int) -> Iterator[pa.RecordBatch]:
    import pyarrow as pa
    import pyarrow.csv as pcsv

    where = src.where
    read = pcsv.ReadOptions(column_names=src.names, block_size=CSV_BLOCK_SIZE, use_threads=True)
    # No invalid_row_handler: a Python callback held by pyarrow's reader is released on one of
    # its threads, which aborts the process about 1 run in 100 when that happens during the
    # interpreter's shutdown. Ragged rows are an error; _csv_error locates them afterwards.
    plain = pcsv.ParseOptions(delimiter=src.delimiter)
    quoted = pcsv.ParseOptions(delimiter=src.delimiter, newlines_in_values=True)
    convert = pcsv.ConvertOptions(include_columns=columns, column_types=types,
                                  strings_can_be_null=True)
    seen = 0
    try:
        with (nullcontext(src._stdin) if src.is_stream
              else pa.input_stream(src.path, compression="detect")) as stream:
            for piece, quoted_breaks in _csv_pieces(stream, CSV_PIECE_SIZE, src.newline):
                parse = quoted if quoted_breaks else plain
                try:
                    table = pcsv.read_csv(pa.BufferReader(pa.py_buffer(piece)),
                                          read_options=read, parse_options=parse,
                                          convert_options=convert)
                except pa.ArrowInvalid as exc:
                    if "straddl" not in str(exc):
                        raise _piece_error(src, piece, exc, seen, parse, convert) from None
                    # A line longer than a parse block (pieces grow to hold any line): the
                    # piece as one block.
                    table = _one_block(src, piece, seen, parse, convert)
                for batch in table.to_batches():
                    yield from _slice(batch, rows)
                seen += table.num_rows
    except (OSError, pa.ArrowException) as exc:
        raise _arrow_error(exc, where) from None


def _one_block(src: Source, piece: memoryview, seen: int, parse: Any, convert: Any) -> Any:
    """A piece parsed as one block, on one thread: for lines longer than CSV_BLOCK_SIZE."""
    import pyarrow as pa
    import pyarrow.csv as pcsv

    read = pcsv.ReadOptions(column_names=src.names, block_size=len(piece) + 1, use_threads=False)
    try:
        return pcsv.read_csv(pa.BufferReader(pa.py_buffer(piece)), read_options=read,
                             parse_options=parse, convert_options=convert)
    except pa.ArrowInvalid as exc:
        raise _csv_error(src, exc, seen) from None


def _piece_error(src: Source, piece: memoryview, exc: Exception, seen: int, parse: Any,
                 convert: Any) -> InputError:
    """The first error of a piece: its blocks were parsed in parallel, so ``exc`` may come from
    any of them, with a row number counted from that block. Parsed again as one block on one
    thread, the piece fails at its first bad row, counted from the piece's start."""
    import pyarrow as pa
    import pyarrow.csv as pcsv

    read = pcsv.ReadOptions(column_names=src.names, block_size=len(piece) + 1, use_threads=False)
    try:
        pcsv.read_csv(pa.BufferReader(pa.py_buffer(piece)), read_options=read,
                      parse_options=parse, convert_options=convert)
    except pa.ArrowInvalid as first:
        return _csv_error(src, first, seen)
    return _csv_error(src, exc, seen)


def _csv_ragged(src: Source) -> tuple[int, int, int, int] | None:
    """(count, first line, expected fields, fields there) of rows whose field count differs
    from the header's: a second pass with the csv module, for files only."""
    import bz2
    import csv
    import gzip

    opener: Any = {".gz": gzip.open, ".bz2": bz2.open}.get(Path(src.path).suffix.lower(), open)
    try:
        with opener(src.path, "rt", encoding="utf-8-sig", newline="") as f:
            reader = csv.reader(f, delimiter=src.delimiter)
            expected = len(next(reader, []))
            count, first, got = 0, 0, 0
            for row in reader:
                if row and len(row) != expected:
                    if not count:
                        first, got = reader.line_num, len(row)
                    count += 1
    except (OSError, UnicodeDecodeError, csv.Error):
        return None
    return (count, first, expected, got) if count else None


def _csv_error(src: Source, exc: Exception, seen: int) -> InputError:
    """pyarrow's CSV errors as one line that says what and where: a non-numeric cell's column
    and row, a ragged row's line, a header without data. ``seen`` is the number of data rows
    before the piece that failed."""
    import re

    where = src.where
    text = " ".join(str(exc).split())
    if "Empty CSV file" in text:
        return InputError(f"{where}: no data rows (empty or header only)")
    ragged = re.search(r"Expected (\d+) columns, got (\d+): (.*)", text)
    if ragged:
        found = _csv_ragged(src) if not src.is_stream else None
        if found:
            count, line, expected, got = found
            return InputError(f"{where}: {count} ragged row(s): expected {expected} fields, "
                              f"got {got} at line {line}")
        return InputError(f"{where}: ragged row: expected {ragged[1]} fields, got "
                          f"{ragged[2]} in '{ragged[3][:60]}'")
    m = re.search(r"column #(\d+): (?:Row #(\d+): )?CSV conversion error to \w+: "
                  r"invalid value '(.*)'", text)
    if not m:
        return InputError(f"{where}: {text}")
    index, value = int(m[1]), m[3]
    # pyarrow numbers columns by their position in the file and rows by line of the piece.
    name = src.names[index] if index < len(src.names) else f"#{index}"
    row = seen + int(m[2]) if m[2] else None
    if row is None and not src.is_stream:
        row = _locate_csv_value(src, name, value)
    at = f" at row {row}" if row is not None else ""
    return InputError(f"{where}: column '{name}' has a non-numeric value '{value}'{at}")


def _locate_csv_value(src: Source, column: str, value: str) -> int | None:
    """1-based data row of the first cell of ``column`` equal to ``value`` (a second, rare pass)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pcsv

    try:
        with pcsv.open_csv(
            src.path,
            read_options=pcsv.ReadOptions(block_size=CSV_BLOCK_SIZE, use_threads=False),
            parse_options=pcsv.ParseOptions(delimiter=src.delimiter),
            convert_options=pcsv.ConvertOptions(include_columns=[column],
                                                column_types={column: pa.string()})) as reader:
            seen = 0
            for batch in reader:
                hit = np.flatnonzero(_int_view(pc.equal(batch.column(0), value), 0))
                if hit.size:
                    return seen + int(hit[0]) + 1
                seen += batch.num_rows
    except (OSError, pa.ArrowException):
        return None
    return None


def record_batches(src: Source, cols: Columns, rows: int,
                   string_target: bool) -> Iterator[tuple[str, pa.RecordBatch]]:
    """(file, batch) pairs with the selected columns, in file order, at most ``rows`` each."""
    import pyarrow as pa

    columns = cols.selected
    if src.format in ("csv", "tsv"):
        types: dict[str, Any] = {c: pa.dictionary(pa.int32(), pa.string()) for c in cols.keys}
        types.update({c: pa.float64() for c in cols.numeric_keys})
        types.update({c: pa.float64() for c in columns if c not in cols.keys})
        types.update({c: pa.float64() for c in (*cols.pred, cols.target, cols.weight) if c})
        if string_target or cols.positive is not None:
            types[cols.target] = pa.string()
        where = src.where
        try:
            for batch in _csv_batches(src, columns, types, rows):
                yield where, batch.select(columns)
        except InputError as exc:
            if f"column '{cols.target}' has a non-numeric value" in str(exc) and \
                    not cols.multiclass and cols.positive is None:
                raise InputError(f"{exc}{_TEXT_TARGET_HINT}") from None
            raise
    elif src.reader is not None:
        if src.reader_used:
            raise InputError("<memory>: the RecordBatchReader was read already (a reader "
                             "is read once; pass a pyarrow Table to read the data again)")
        src.reader_used = True
        for batch in src.reader:
            yield src.path, batch.select(columns)
    elif src.format == "memory":
        for batch in src.table.select(columns).to_batches(max_chunksize=rows):
            yield src.path, batch
    elif src.format == "arrow":
        for batch in _arrow_batches(src.path, columns, rows):
            yield src.path, batch
    else:
        for path in src.files:
            for batch in _parquet_batches(path, columns, rows, [
                    c for c in cols.keys if c not in cols.numeric_keys
                    and c not in (*cols.pred, cols.target, cols.weight)
                    and src.arrow_types.get(c) is not None
                    and _is_text(src.arrow_types[c])], src.rows):
                yield shown(path), batch.select(columns)


# --- chunks -----------------------------------------------------------------------------------


def _numeric(arr: pa.Array, column: str, where: str, binary_hint: bool = False) -> np.ndarray:
    import pyarrow as pa

    if pa.types.is_dictionary(arr.type):  # a pandas Categorical in Feather / Arrow IPC
        arr = arr.dictionary_decode()
    t = arr.type
    if not (pa.types.is_floating(t) or pa.types.is_integer(t) or pa.types.is_boolean(t)
            or pa.types.is_null(t) or pa.types.is_decimal(t)):
        hint = _TEXT_TARGET_HINT if binary_hint and _is_text(t) else ""
        raise InputError(f"{where}: column '{column}' is not numeric (type {t}){hint}")
    return float64_view(arr)


#: What to do with a text target of one prediction column.
_TEXT_TARGET_HINT = ("; a binary target of two labels needs --positive LABEL (the label that is "
                     "1), classes one prediction column per class")


def set_positive(cols: Columns, positive: str | None) -> Columns:
    """``--positive LABEL``: the target's label that is 1 (scikit-learn's ``pos_label``)."""
    if positive is None:
        return cols
    if not positive.strip():
        raise UsageError("--positive needs a label (the target value that is the positive "
                         "class)")
    if cols.multiclass:
        raise UsageError("--positive applies to a binary target (one prediction column); "
                         "this input has one per class")
    cols.positive = positive
    return cols


def _positive_target(arr: pa.Array, cols: Columns, where: str) -> np.ndarray:
    """A target of two labels as 1.0 (``cols.positive``) and 0.0 (the other), NaN where
    missing. Text compares as text, numbers as numbers (``--positive 1`` matches 1.0); a third
    label, or two labels of which none is the positive one, is an InputError."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from losscli.spec import format_number

    label = cols.positive
    assert label is not None
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    if _is_text(arr.type):
        stripped = pc.utf8_trim_whitespace(arr)
        try:
            as_numbers = pc.cast(stripped, pa.float64())
            float(label)
        except (pa.ArrowInvalid, ValueError):
            as_numbers = None
        if as_numbers is not None:
            arr = as_numbers
        else:
            arr = pc.if_else(pc.equal(stripped, ""), pa.scalar(None, pa.string()), stripped)
    if _is_text(arr.type):
        values = [v for v in pc.unique(arr).to_pylist() if v is not None]
        hit = pc.fill_null(pc.equal(arr, label), False)
        out = float64_view(pc.cast(hit, pa.float64()))
        if arr.null_count:
            out = out.copy()
            out[float64_view(pc.cast(pc.is_null(arr), pa.float64())) == 1.0] = math.nan
        shown = [repr(v) for v in values]
    else:
        x = _numeric(arr, cols.target, where)
        try:
            wanted = float(label)
        except ValueError:
            raise InputError(f"{where}: --positive {label!r} is not a value of the numeric "
                             f"target column '{cols.target}'") from None
        values = np.unique(x[~np.isnan(x)]).tolist()
        out = (x == wanted).astype(np.float64)
        out[np.isnan(x)] = math.nan
        shown = [format_number(v) for v in values]
        values = [wanted if v == wanted else v for v in values]
        label = wanted  # type: ignore[assignment]
    if len(values) > 2:
        raise InputError(f"{where}: column '{cols.target}' holds more than two labels "
                         f"({', '.join(shown[:4])}{', ...' if len(shown) > 4 else ''}); "
                         "--positive needs a binary target of two labels")
    if len(values) == 2 and label not in values:
        raise InputError(f"{where}: --positive {cols.positive!r} is neither of the target's "
                         f"labels ({', '.join(shown)})")
    return out


#: pyarrow's names of the fixed-width numeric types whose buffer NumPy reads as is.
_PLAIN_DTYPES: dict[str, type] = {
    "double": np.float64, "float": np.float32, "int8": np.int8, "int16": np.int16,
    "int32": np.int32, "int64": np.int64, "uint8": np.uint8, "uint16": np.uint16,
    "uint32": np.uint32, "uint64": np.uint64,
}


def float64_view(arr: pa.Array) -> np.ndarray:
    """The values as a float64 NumPy array, NaN for nulls; zero-copy for null-free float64.

    Reads pyarrow's buffer directly: ``Array.to_numpy`` imports pandas (0.2 s) in pyarrow 26.
    """
    import pyarrow as pa

    plain = _PLAIN_DTYPES.get(str(arr.type)) if not arr.null_count else None
    if plain is not None and plain != np.float64:
        # Null-free integers and float32 (an int64 label column, say) convert in NumPy: no
        # 45 ms import of pyarrow.compute.
        width = np.dtype(plain).itemsize
        return np.frombuffer(arr.buffers()[1], dtype=plain, count=len(arr),
                             offset=arr.offset * width).astype(np.float64)
    if plain is None:
        import pyarrow.compute as pc  # 45 ms to import: only when there is work for it

        if arr.type != pa.float64():
            arr = pc.cast(arr, pa.float64(), safe=False)
        if arr.null_count:
            arr = pc.fill_null(arr, float("nan"))
    return np.frombuffer(arr.buffers()[1], dtype=np.float64, count=len(arr),
                         offset=arr.offset * 8)


def _int_view(arr: pa.Array, fill: int) -> np.ndarray:
    """Integer (or boolean) values as int64, ``fill`` for nulls, without pandas."""
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = pc.fill_null(pc.cast(arr, pa.int64()), fill)
    return np.frombuffer(arr.buffers()[1], dtype=np.int64, count=len(arr),
                         offset=arr.offset * 8)


#: Text that reads as a number: "2", "2.0" (what pandas writes for a float column), "+1e0".
_NUMBER_TEXT = r"^[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?$"
_INTEGER_LABEL = re.compile(r"[-+]?[0-9]+")


def integer_labels(labels: Sequence[str]) -> list[int] | None:
    """The class labels as integers when every one is a distinct integer (prob_1..prob_3 for
    1-based ratings, prob_1,prob_0 in another order), else None."""
    if not labels or not all(_INTEGER_LABEL.fullmatch(label.strip()) for label in labels):
        return None
    values = [int(label) for label in labels]
    return values if len(set(values)) == len(values) else None


def _numeric_classes(values: np.ndarray, cols: Columns, where: str, first_row: int,
                     n_classes: int) -> np.ndarray:
    """Numeric targets as class positions, by the one rule for every format: when the class
    labels (the prediction columns' suffixes) are all integers, a number is the label it
    equals; when no label is a number, it is the position 0..C-1; when the labels mix numbers
    and names, a number is ambiguous and refused. NaN stays NaN."""
    ints = integer_labels(cols.labels)
    if ints is None:
        numbered = [x for x in cols.labels if re.fullmatch(_NUMBER_TEXT, x.strip())]
        if numbered and np.isfinite(values).any():
            i = int(np.argmax(np.isfinite(values)))
            raise InputError(
                f"{where}: column '{cols.target}' row {first_row + i + 1} holds the number "
                f"{values[i]:g}, but the class labels ({', '.join(cols.labels)}) include the "
                f"number '{numbered[0]}' and are not all integers, so it could be a label or a "
                f"position 0..{n_classes - 1}; give the targets as text labels, or select "
                "columns whose suffixes are all integers or all names")
        return values  # positions; TaskValidator checks them
    if ints == list(range(len(ints))):
        return values  # the labels are the positions
    order = np.argsort(ints)
    known = np.asarray(ints, dtype=np.float64)[order]
    pos = np.minimum(np.searchsorted(known, values), len(known) - 1)
    found = known[pos] == values
    bad = np.flatnonzero(~found & ~np.isnan(values))
    if bad.size:
        i = int(bad[0])
        raise InputError(
            f"{where}: column '{cols.target}' row {first_row + i + 1} has class {values[i]:g}, "
            f"which is not a class label ({', '.join(cols.labels)}, the prediction columns' "
            f"suffixes: numbers that match them are labels, not positions 0..{n_classes - 1})")
    return np.where(found, order[pos].astype(np.float64), np.nan)


def _class_index(arr: pa.Array, cols: Columns, where: str, first_row: int,
                 n_classes: int) -> np.ndarray:
    """Targets of a multiclass input as float class positions (NaN where missing).

    Text that reads as a number ("2", "2.0") is that number, and numbers follow
    :func:`_numeric_classes` whatever the format; other text is looked up among the class
    labels (the prediction columns' suffixes).
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_dictionary(arr.type) and not _is_text(arr.type.value_type):
        arr = arr.dictionary_decode()
    if not (_is_text(arr.type) or pa.types.is_dictionary(arr.type)):
        return _numeric_classes(_numeric(arr, cols.target, where), cols, where, first_row,
                                n_classes)
    if pa.types.is_dictionary(arr.type):
        arr = arr.cast(pa.string())
    arr = pc.utf8_trim_whitespace(arr)
    out = np.full(len(arr), np.nan)
    numeric = _int_view(pc.match_substring_regex(arr, _NUMBER_TEXT), 0).astype(bool)
    if numeric.any():
        out[numeric] = float64_view(pc.cast(pc.filter(arr, pa.array(numeric)), pa.float64()))
        out = _numeric_classes(out, cols, where, first_row, n_classes)
    label = _int_view(arr.is_valid(), 0).astype(bool) & ~numeric
    if label.any():
        rest = np.flatnonzero(label)
        index = np.full(rest.size, -1, dtype=np.int64)
        if cols.labels:
            index = _int_view(pc.index_in(arr.take(pa.array(rest)),
                                          value_set=pa.array(cols.labels, pa.string())), -1)
        missing = np.flatnonzero(index < 0)
        if missing.size:
            i = int(rest[missing[0]])
            classes = ", ".join(cols.labels) if cols.labels else f"0..{n_classes - 1}"
            raise InputError(f"{where}: column '{cols.target}' row {first_row + i + 1} has "
                             f"label '{arr[i].as_py()}', which is not a class "
                             f"(classes: {classes})")
        out[rest] = index
    return out


def _is_text(t: Any) -> bool:
    import pyarrow as pa

    return bool(pa.types.is_string(t) or pa.types.is_large_string(t)
                or pa.types.is_string_view(t))


def _multiclass_pred(batch: pa.RecordBatch, cols: Columns, where: str) -> np.ndarray:
    import pyarrow as pa
    import pyarrow.compute as pc

    n = batch.num_rows
    if not cols.list_column:
        part = batch.select(cols.pred)
        if all(t == pa.float64() for t in part.schema.types):
            # One copy, in C++, into a column-major (n, C) tensor, whose transpose is the
            # class-major array. Column by column, 1e6 x 100 values took 0.4 s more CPU.
            return np.asarray(memoryview(part.to_tensor(null_to_nan=True, row_major=False))).T
        out = np.empty((len(cols.pred), n))
        for k, name in enumerate(cols.pred):
            out[k] = _numeric(batch.column(name), name, where)
        return out
    name = cols.pred[0]
    arr = batch.column(name)
    width = cols.width if cols.width is not None else list_width(arr)
    if width is None:  # every row so far is missing: NaN rows, which to_chunk leaves out
        return np.full((2, n), np.nan)
    if pa.types.is_fixed_size_list(arr.type):
        if arr.type.list_size != width:
            raise InputError(f"{where}: list column '{name}' has rows of different lengths "
                             f"({width} and {arr.type.list_size})")
    else:
        lens = _int_view(pc.list_value_length(arr).drop_null(), 0)
        bad = np.flatnonzero(lens != width)
        if bad.size:
            raise InputError(f"{where}: list column '{name}' has rows of different lengths "
                             f"({width} and {int(lens[bad[0]])})")
    if arr.null_count:
        arr = pc.if_else(arr.is_valid(), arr, pa.scalar([float("nan")] * width, arr.type))
    values = _numeric(arr.flatten(), name, where)
    if width < 2 or values.size != n * width:
        raise InputError(f"{where}: list column '{name}' must hold one probability or logit "
                         "per class (at least 2)")
    return np.ascontiguousarray(values.reshape(n, width).T)


def list_width(arr: pa.Array) -> int | None:
    """The length of a list column's rows: its fixed size, or its first non-null row's length
    (None when every row is null)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_fixed_size_list(arr.type):
        return int(arr.type.list_size)
    lens = pc.list_value_length(arr).drop_null()
    return int(lens[0].as_py()) if len(lens) else None


def raw_chunks(src: Source, cols: Columns, rows: int) -> Iterator[RawChunk]:
    """The input's non-empty record batches of about ``rows`` prediction values each, in order;
    raises InputError after the last when there were no data rows at all."""
    seen: dict[str, int] = {}
    # A chunk holds about ``rows`` prediction values: fewer rows when a row has C classes.
    rows_per_chunk = max(1, min(rows, MAX_CHUNK_ROWS) // row_width(src, cols))
    # class labels may be text; soft targets are numbers
    text = cols.multiclass and not cols.soft
    for where, whole in record_batches(src, cols, rows_per_chunk, string_target=text):
        for batch in _slice(whole, rows_per_chunk):
            if cols.list_column and cols.width is None:
                # Fixed on this thread before the first chunk with a row is handed on, so every
                # chunk's rows are checked against the same number of classes.
                cols.width = list_width(batch.column(cols.pred[0]))
            first = seen.setdefault(where, src.rows[0] if src.rows else 0)
            seen[where] = first + batch.num_rows
            if batch.num_rows:
                yield RawChunk(batch, where, first, len(seen) - 1)
    if not any(seen.values()):
        raise InputError(f"{src.where}: no data rows (empty or header only)")


def chunks(src: Source, cols: Columns, rows: int, nan: NanPolicy,
           stats: NanStats) -> Iterator[Chunk]:
    """Validated float64 chunks; rows with NaN, inf or empty cells are counted and dropped.

    With ``nan == "error"`` the stream still reads to the end, so that the error can report how
    many rows are affected and the first one; it raises InputError after the last chunk.
    """
    for raw in raw_chunks(src, cols, rows):
        yield to_chunk(raw, cols, stats)
    if stats.count and nan == "error":
        raise stats.error()


def row_width(src: Source, cols: Columns) -> int:
    """Prediction values per row: the number of class columns, or a list column's length
    (from the type or the Parquet metadata; 1 when unknown)."""
    if not cols.list_column:
        return len(cols.pred)
    import pyarrow as pa

    typ = src.arrow_types.get(cols.pred[0])
    if typ is not None and pa.types.is_fixed_size_list(typ):
        return max(1, int(typ.list_size))
    if src.format in ("parquet", "parquet-dir"):
        import pyarrow.parquet as pq

        meta = pq.ParquetFile(open_file(src.files[0]), pre_buffer=False).metadata
        for g in range(meta.num_row_groups):
            group = meta.row_group(g)
            if group.num_rows == 0:
                continue
            for c in range(group.num_columns):
                column = group.column(c)
                if column.path_in_schema.split(".")[0] == cols.pred[0]:
                    return max(1, column.num_values // group.num_rows)
    return 1


def _all_finite(*arrays: np.ndarray | None) -> bool:
    """True when no value is NaN or infinite: a sum is finite unless one is (or it overflows,
    which only sends the chunk to the exact mask below). One pass, no temporaries."""
    with np.errstate(all="ignore"):
        return all(a is None or math.isfinite(float(np.sum(a))) for a in arrays)


def to_chunk(raw: RawChunk, cols: Columns, stats: NanStats) -> Chunk:
    """A record batch as a validated Chunk: rows with NaN, inf or empty cells are left out and
    counted in ``stats``."""
    batch, where, first = raw.batch, raw.where, raw.first_row
    n = batch.num_rows
    soft = None
    if cols.soft:
        pred = _multiclass_pred(batch, cols, where)
        soft = np.empty((len(cols.soft), n))
        for k, name in enumerate(cols.soft):
            soft[k] = _numeric(batch.column(name), name, where)
        # each row's most probable class: the class-index checks and counts read it
        target = np.argmax(soft, axis=0).astype(np.float64)
    elif cols.multiclass:
        pred = _multiclass_pred(batch, cols, where)
        target = _class_index(batch.column(cols.target), cols, where, first, pred.shape[0])
    else:
        target = (_numeric(batch.column(cols.target), cols.target, where, binary_hint=True)
                  if cols.positive is None else
                  _positive_target(batch.column(cols.target), cols, where))
        pred = target if cols.pred[0] == cols.target else _numeric(  # target-only: the same
            batch.column(cols.pred[0]), cols.pred[0], where)
    weight = _numeric(batch.column(cols.weight), cols.weight, where) if cols.weight else None
    var = _numeric(batch.column(cols.var), cols.var, where) if cols.var else None
    if _all_finite(pred, target, weight, var, soft):
        return Chunk(pred, target, weight, first, var=var, soft=soft)
    ok = np.isfinite(target)
    named = [(cols.target, ok.copy())]
    if soft is not None:
        sfin = np.isfinite(soft.max(axis=0)) & np.isfinite(soft.min(axis=0))
        named = [(",".join(cols.soft), sfin)]
        ok = sfin.copy()
    if pred.ndim == 2:
        # max propagates NaN and +inf, min -inf: two reductions instead of a C x n mask.
        pfin = np.isfinite(pred.max(axis=0)) & np.isfinite(pred.min(axis=0))
    else:
        pfin = np.isfinite(pred)
    named.append((",".join(cols.pred) if len(cols.pred) > 1 else cols.pred[0], pfin))
    ok &= pfin
    if weight is not None:
        wfin = np.isfinite(weight)
        named.append((cols.weight, wfin))  # type: ignore[arg-type]
        ok &= wfin
    if var is not None:
        vfin = np.isfinite(var)
        named.append((cols.var, vfin))  # type: ignore[arg-type]
        ok &= vfin
    bad = n - int(np.count_nonzero(ok))
    if bad == 0:
        return Chunk(pred, target, weight, first, var=var, soft=soft)
    if stats.count == 0:
        i = int(np.argmin(ok))
        stats.first_row = first + i + 1
        stats.first_column = next(name for name, m in named if not m[i])
        stats.first_file = where
    stats.count += bad
    keep = np.flatnonzero(ok)
    return Chunk(pred[..., keep], target[keep], None if weight is None else weight[keep],
                 first, rows=keep + first, var=None if var is None else var[keep],
                 soft=None if soft is None else soft[:, keep])
