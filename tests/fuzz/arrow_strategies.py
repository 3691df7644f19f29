"""Hypothesis strategies for Parquet and Arrow IPC input: tables of many column types, written
in several layouts, with the rows losscli must use (or None when it must refuse)."""

from __future__ import annotations

import decimal
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.parquet as pq
from fuzzlib import Rows, pending
from hypothesis import strategies as st

INT_TYPES = [pa.int8(), pa.int16(), pa.int32(), pa.int64(), pa.uint8(), pa.uint16(), pa.uint32(),
             pa.uint64()]
FLOAT_TYPES = [pa.float16(), pa.float32(), pa.float64()]
#: types that are not numbers: a selected column of one of them is refused
OTHER_TYPES = ["string", "large_string", "binary", "timestamp", "date", "struct", "list"]


@dataclass
class Column:
    """An Arrow array and the float each of its rows stands for (NaN: missing or non-finite),
    or None when the column is not numeric."""

    array: pa.Array
    values: list[float] | None


@dataclass
class ArrowCase:
    table: pa.Table
    layout: str
    args: list[str]
    rows: Rows | None
    dropped: int = 0
    losses: list[str] = field(default_factory=list)
    note: str = ""
    row_group: int = 0
    parts: int = 1
    compression: str = "none"

    def __repr__(self) -> str:
        return (f"ArrowCase(layout={self.layout!r}, args={self.args!r}, note={self.note!r}, "
                f"row_group={self.row_group}, parts={self.parts}, "
                f"compression={self.compression!r}, schema={self.table.schema!r}, "
                f"table={self.table.to_pydict()!r})")

    def write(self, directory: Path) -> Path:
        """The table in this case's layout, under ``directory``; returns the path to read."""
        t = self.table
        if self.layout == "parquet":
            path = directory / "input.parquet"
            if t.num_rows == 0 and self.row_group == 0:  # a file with no row group at all
                pq.ParquetWriter(path, t.schema).close()
            else:
                pq.write_table(t, path, row_group_size=max(1, self.row_group),
                               compression=self.compression)
            return path
        if self.layout == "parquet-dir":
            path = directory / "parts"
            path.mkdir(exist_ok=True)
            for old in path.iterdir():
                old.unlink()
            step = max(1, math.ceil(t.num_rows / self.parts))
            for k in range(self.parts):
                pq.write_table(t.slice(k * step, step), path / f"part-{k:03d}.parquet")
            return path
        if self.layout == "feather":
            path = directory / "input.feather"
            compression = "uncompressed" if self.compression == "none" else self.compression
            feather.write_feather(t, path, compression=compression,
                                  chunksize=max(1, self.row_group))
            return path
        path = directory / "input.arrow"  # the IPC stream format
        with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_stream(sink, t.schema) as writer:
            for batch in t.to_batches(max_chunksize=max(1, self.row_group)):
                writer.write_batch(batch)
        return path


def _int_range(t: pa.DataType) -> tuple[int, int]:
    bits = t.bit_width
    if pa.types.is_signed_integer(t):
        return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return 0, (1 << bits) - 1


@st.composite
def numeric_column(draw: st.DrawFn, n: int, nulls: bool, nonneg: bool = False,
                   layout: str = "parquet") -> Column:
    """A column of a numeric Arrow type (integers, floats incl. float16, decimals, booleans,
    dictionary-encoded numbers) with its values as floats."""
    kinds = ["int", "float", "decimal", "bool", "dictionary", "null"]
    if layout in ("feather", "arrow") and pending("feather_dictionary"):
        kinds.remove("dictionary")
    kind = draw(st.sampled_from(kinds))
    mask = [nulls and draw(st.integers(0, 4)) == 0 for _ in range(n)]
    if kind == "null":
        return Column(pa.nulls(n), [math.nan] * n)
    if kind == "int" or kind == "dictionary":
        t = draw(st.sampled_from(INT_TYPES))
        lo, hi = _int_range(t)
        ints = [draw(st.integers(max(lo, 0) if nonneg else lo, hi)) for _ in range(n)]
        py: list[Any] = [None if m else v for v, m in zip(ints, mask, strict=True)]
        arr: pa.Array = pa.array(py, type=t)
        if kind == "dictionary":
            arr = arr.dictionary_encode()
            if draw(st.booleans()):  # a float dictionary, as pandas writes a Categorical
                arr = pa.DictionaryArray.from_arrays(
                    arr.indices, arr.dictionary.cast(pa.float64(), safe=False))
    elif kind == "float":
        t = draw(st.sampled_from(FLOAT_TYPES))
        width = {16: 16, 32: 32, 64: 64}[t.bit_width]
        # float64 columns reach 1e140 now and then: squares up to 1e280, so that a loss times a
        # weight below 2**64 stays finite (beyond that: FINDINGS.md, 9)
        top = draw(st.sampled_from([6e4, 6e4, 6e4, 1e140])) if width == 64 else 6e4
        floats = [draw(st.floats(0.0 if nonneg else -top, top, width=width,  # type: ignore[arg-type]
                                 allow_nan=False, allow_infinity=False))
                  for _ in range(n)]
        special = [draw(st.sampled_from([None, None, None, None, math.nan, math.inf, -math.inf]))
                   if nulls else None for _ in range(n)]
        floats = [v if s is None else s for v, s in zip(floats, special, strict=True)]
        dtype = {16: np.float16, 32: np.float32, 64: np.float64}[width]
        arr = pa.array(np.array(floats, dtype=dtype), mask=np.array(mask, dtype=bool), type=t)
        py = [None if m else float(v) for v, m in zip(np.array(floats, dtype=dtype), mask,
                                                         strict=True)]
    elif kind == "decimal":
        wide = draw(st.booleans())
        precision = draw(st.integers(1, 76 if wide else 38))
        scale = draw(st.integers(0, min(precision, 20)))
        digits = [draw(st.integers(0 if nonneg else -(10 ** precision - 1), 10 ** precision - 1))
                  for _ in range(n)]
        py = [None if m else decimal.Decimal(d).scaleb(-scale, decimal.Context(prec=80))
              for d, m in zip(digits, mask, strict=True)]
        t = pa.decimal256(precision, scale) if wide else pa.decimal128(precision, scale)
        arr = pa.array(py, type=t)
    else:
        py = [None if m else draw(st.booleans()) for m in mask]
        arr = pa.array(py, type=pa.bool_())
    values = [math.nan if v is None else float(v) for v in py]
    values = [v if math.isfinite(v) else math.nan for v in values]
    return Column(arr, values)


@st.composite
def other_column(draw: st.DrawFn, n: int) -> Column:
    """A column that is not numeric: text, bytes, dates, structs, lists."""
    kind = draw(st.sampled_from(OTHER_TYPES))
    makers: dict[str, Callable[[], pa.Array]] = {
        "string": lambda: pa.array([draw(st.text(max_size=5)) for _ in range(n)]),
        "large_string": lambda: pa.array([str(i) for i in range(n)], type=pa.large_string()),
        "binary": lambda: pa.array([draw(st.binary(max_size=4)) for _ in range(n)]),
        "timestamp": lambda: pa.array(list(range(n)), type=pa.timestamp("ms")),
        "date": lambda: pa.array(list(range(n)), type=pa.date32()),
        "struct": lambda: pa.array([{"a": i, "b": float(i)} for i in range(n)]),
        "list": lambda: pa.array([[float(i)] * draw(st.integers(0, 3)) for i in range(n)]),
    }
    return Column(makers[kind](), None)


def _nonneg(col: Column) -> bool:
    return col.values is not None and all(not (v < 0) for v in col.values)


@st.composite
def regression_cases(draw: st.DrawFn) -> ArrowCase:
    """y / pred (/ w) of any numeric type beside other columns, in any layout."""
    n = draw(st.sampled_from([0, 1, 2, 3, 5, 8, 13, 30]))
    layout = draw(st.sampled_from(["parquet", "parquet", "parquet-dir", "feather", "arrow"]))
    nulls = draw(st.booleans())
    nan = draw(st.sampled_from(["error", "drop"]))
    weighted = draw(st.booleans())
    non_numeric = draw(st.integers(0, 9)) == 0
    cols: dict[str, Column] = {}
    for name in ("y", "pred"):
        cols[name] = draw(numeric_column(n, nulls, layout=layout))
    if non_numeric:
        cols[draw(st.sampled_from(["y", "pred"]))] = draw(other_column(n))
    if weighted:
        cols["w"] = draw(numeric_column(n, nulls, nonneg=True, layout=layout))
    for k in range(draw(st.sampled_from([0, 0, 1, 3]))):
        cols[f"extra_{k}"] = draw(other_column(n)) if draw(st.booleans()) else draw(
            numeric_column(n, True, layout=layout))
    order = draw(st.permutations(list(cols)))
    names = list(order)
    duplicate_selected = False
    if not pending("duplicate_names") and draw(st.integers(0, 9)) == 0:
        # a second column of the same name: refused when losscli is to read it
        twin = draw(st.sampled_from(names))
        cols["\x00twin"] = draw(numeric_column(n, False, layout=layout))
        order = [*order, "\x00twin"]
        names.append(twin)
        duplicate_selected = twin in ("y", "pred") or (twin == "w" and weighted)
    table = pa.Table.from_arrays([cols[name].array for name in order], names=names)
    losses = ["mse", "mae"] + (["huber"] if draw(st.booleans()) else [])
    args = ["--target=y", "--pred=pred", f"--nan={nan}", *(f"--loss={x}" for x in losses),
            f"--threads={draw(st.sampled_from([0, 1]))}"]
    if weighted:
        args.append("--weight=w")
    chunk = draw(st.sampled_from([None, 1, 4]))
    if chunk:
        args.append(f"--chunk-rows={chunk}")
    case = ArrowCase(table, layout, args, None, losses=losses,
                     row_group=draw(st.sampled_from([0, 1, 2, 7, 64])),
                     parts=draw(st.integers(1, 3)),
                     compression=draw(st.sampled_from(["none", "zstd", "lz4"])))
    if layout == "parquet" and case.compression == "lz4":
        case.compression = "snappy"
    selected = ["y", "pred"] + (["w"] if weighted else [])
    if any(cols[c].values is None for c in selected):
        case.note = "refuse: a selected column is not numeric"
        return case
    if duplicate_selected:
        case.note = "refuse: two columns of a name to read"
        return case
    return _expect(case, n, nan, [cols["pred"].values, cols["y"].values],  # type: ignore[list-item]
                   cols["w"].values if weighted else None)


def _expect(case: ArrowCase, n: int, nan: str, pred_target: list[list[Any]],
            weight: list[float] | None) -> ArrowCase:
    """Fill in the rows to use (or why the input is refused) from the values of the columns."""
    pred, target = pred_target

    def finite(v: Any) -> bool:
        return all(math.isfinite(x) for x in v) if isinstance(v, tuple) else math.isfinite(v)

    keep = [i for i in range(n) if finite(pred[i]) and finite(target[i])
            and (weight is None or finite(weight[i]))]
    if n == 0:
        case.note = "refuse: no rows"
    elif len(keep) < n and nan == "error":
        case.note = "refuse: missing values"
    elif not keep:
        case.note = "refuse: no rows left"
    elif weight is not None and not any(weight[i] > 0 for i in keep):
        case.note = "refuse: zero total weight"
    else:
        case.rows = Rows([pred[i] for i in keep], [target[i] for i in keep],
                         None if weight is None else [weight[i] for i in keep])
        case.dropped = n - len(keep)
        case.note = "values"
    return case


@st.composite
def multiclass_cases(draw: st.DrawFn) -> ArrowCase:
    """Class probabilities as a list column (list, large_list, fixed_size_list) or as one
    column per class of mixed numeric types, and integer class indices."""
    n = draw(st.sampled_from([1, 2, 4, 9, 20]))
    c = draw(st.integers(2, 5))
    layout = draw(st.sampled_from(["parquet", "feather", "arrow"]))
    nan = draw(st.sampled_from(["error", "drop"]))
    as_list = draw(st.booleans())
    probs = []
    for _ in range(n):
        raw = [draw(st.floats(0.0, 1.0)) for _ in range(c)]
        total = math.fsum(raw)
        probs.append(tuple(v / total for v in raw) if total > 0 else tuple([1.0 / c] * c))
    target = [draw(st.integers(0, c - 1)) for _ in range(n)]
    ttype = draw(st.sampled_from([pa.int8(), pa.uint8(), pa.int64(), pa.float64()]))
    cols: dict[str, pa.Array] = {"label": pa.array(target, type=ttype)}
    bad = False
    if as_list:
        kind = draw(st.sampled_from(["list", "large_list", "fixed"]))
        vtype = draw(st.sampled_from([pa.float32(), pa.float64()]))
        items: list[Any] = [list(p) for p in probs]
        null_row = draw(st.integers(-1, n - 1)) if nan == "drop" else -1
        if null_row >= 0:
            items[null_row] = None
            probs[null_row] = tuple([math.nan] * c)
        if kind != "fixed" and n > 1 and draw(st.integers(0, 5)) == 0:
            odd = draw(st.integers(0, n - 1))
            items[odd], probs[odd] = [0.5] * (c + 1), tuple([0.5] * (c + 1))
            bad = len({len(x) for x in items if x is not None}) > 1  # another length: refused
        if vtype == pa.float32():
            probs = [tuple(float(np.float32(v)) for v in p) for p in probs]
        t = {"list": pa.list_(vtype), "large_list": pa.large_list(vtype),
             "fixed": pa.list_(vtype, c)}[kind]
        cols["prob"] = pa.array(items, type=t)
        pred_arg = "--pred=prob"
    else:
        for k in range(c):
            t = draw(st.sampled_from([pa.float16(), pa.float32(), pa.float64(),
                                      pa.decimal128(20, 18)]))
            column = [p[k] for p in probs]
            if t == pa.decimal128(20, 18):
                py: list[Any] = [decimal.Decimal(repr(v)).quantize(decimal.Decimal(1).scaleb(-18))
                                 for v in column]
            else:
                dtype = {16: np.float16, 32: np.float32, 64: np.float64}[t.bit_width]
                py = [float(dtype(v)) for v in column]
            arr = pa.array(py, type=t)
            if layout == "parquet" and draw(st.integers(0, 3)) == 0:
                arr = arr.dictionary_encode()
            cols[f"prob_{k}"] = arr
            for i in range(n):
                probs[i] = (*probs[i][:k], float(py[i]), *probs[i][k + 1:])
        pred_arg = "--pred=prob_*"
    table = pa.table(cols)
    args = ["--target=label", pred_arg, f"--nan={nan}", "--loss=cce",
            f"--threads={draw(st.sampled_from([0, 1]))}"]
    case = ArrowCase(table, layout, args, None, losses=["cce"],
                     row_group=draw(st.sampled_from([1, 3, 64])))
    if bad:
        case.note = "refuse: list rows of different lengths"
        return case
    return _expect(case, n, nan, [probs, [float(t) for t in target]], None)
