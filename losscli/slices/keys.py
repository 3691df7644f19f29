"""What a slice is: ``--by`` parsed, checked against the input's columns, and each block's rows
mapped to slice keys (a value per column; numeric columns through bin edges)."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from losscli.errors import UsageError

if TYPE_CHECKING:
    import pyarrow as pa

    from losscli.sources import Source

#: A slice's key: one value per column of its grouping (str, int, bool, a bin's label, or None).
Key = tuple[Any, ...]
NULL = "(null)"
OTHER = "(other)"


@dataclass(frozen=True)
class KeyColumn:
    """One column of a grouping: by value, or numeric into bins (``bins`` equal-frequency bins
    whose edges come from the first rows, or the given ``edges``)."""

    column: str
    bins: int | None = None
    edges: tuple[float, ...] | None = None

    @property
    def binned(self) -> bool:
        return self.bins is not None or self.edges is not None

    @property
    def text(self) -> str:
        if self.bins is not None:
            return f"{self.column}:bins={self.bins}"
        if self.edges is not None:
            return f"{self.column}:edges=" + ",".join(f"{e:g}" for e in self.edges)
        return self.column


@dataclass(frozen=True)
class Grouping:
    """One ``--by``: the columns whose crossing makes the slices."""

    columns: tuple[KeyColumn, ...]

    @property
    def names(self) -> list[str]:
        return [c.column for c in self.columns]

    @property
    def text(self) -> str:
        return ",".join(c.text for c in self.columns)


def _number(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise UsageError(f"--by {what}: '{text}' is not a number") from None
    if not math.isfinite(value):
        raise UsageError(f"--by {what}: edges must be finite numbers, got '{text}'")
    return value


def _column(part: str, whole: str) -> KeyColumn:
    name, sep, option = part.partition(":")
    name = name.strip()
    if not name:
        raise UsageError(f"--by '{whole}' names no column")
    if not sep:
        return KeyColumn(name)
    key, eq, value = option.partition("=")
    key = key.strip()
    if key == "bins" and eq:
        try:
            bins = int(value)
        except ValueError:
            bins = 0
        if bins < 1 or str(bins) != value.strip():
            raise UsageError(f"--by {part}: bins must be a whole number >= 1, got '{value}'")
        return KeyColumn(name, bins=bins)
    if key == "edges" and eq:
        edges = tuple(_number(v.strip(), part) for v in value.split(",") if v.strip())
        if not edges:
            raise UsageError(f"--by {part}: edges=a,b,c needs at least one number")
        if any(b <= a for a, b in itertools.pairwise(edges)):
            raise UsageError(f"--by {part}: edges must increase")
        return KeyColumn(name, edges=edges)
    raise UsageError(f"--by {part}: unknown option '{option}' (bins=N or edges=a,b,c)")


def parse_by(text: str) -> Grouping:
    """``country``, ``country,device``, ``age:bins=5``, ``age:edges=18,30,50,country``: the
    numbers after ``edges=`` are its edges up to the first part that is not a number."""
    parts: list[str] = []
    for raw in text.split(","):
        piece = raw.strip()
        if parts and ":edges=" in parts[-1] and _is_number(piece):
            parts[-1] += "," + piece
        else:
            parts.append(piece)
    columns = tuple(_column(p, text) for p in parts)
    names = [c.column for c in columns]
    if len(set(names)) != len(names):
        raise UsageError(f"--by '{text}' names a column twice")
    return Grouping(columns)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def resolve_groupings(src: Source, by: Sequence[str | Grouping]) -> list[Grouping]:
    """The groupings of ``--by`` checked against the input: the columns exist, a float column
    has bins or edges, bins are on numeric columns."""
    from losscli.sources import find_column

    out: list[Grouping] = []
    for item in by:
        g = parse_by(item) if isinstance(item, str) else item
        cols = []
        for c in g.columns:
            name = find_column(src, c.column, "--by")
            typ = src.arrow_types.get(name)
            if typ is not None:
                _check_type(c, typ)
            cols.append(KeyColumn(name, c.bins, c.edges))
        out.append(Grouping(tuple(cols)))
    texts = [g.text for g in out]
    if len(set(texts)) != len(texts):
        raise UsageError("--by: a grouping is given twice")
    return out


def _check_type(c: KeyColumn, typ: pa.DataType) -> None:
    import pyarrow as pa

    if pa.types.is_dictionary(typ):
        typ = typ.value_type
    numeric = pa.types.is_integer(typ) or pa.types.is_floating(typ) or pa.types.is_decimal(typ)
    if c.binned and not numeric:
        raise UsageError(f"--by {c.text}: column '{c.column}' is {typ}, not numeric; bins and "
                         "edges are for numeric columns")
    if not c.binned and (pa.types.is_floating(typ) or pa.types.is_decimal(typ)):
        raise UsageError(f"--by {c.column}: column '{c.column}' is {typ}; group a float column "
                         f"into bins: --by '{c.column}:bins=5' or '{c.column}:edges=a,b,c'")
    if not c.binned and not (numeric or pa.types.is_string(typ) or pa.types.is_large_string(typ)
                             or pa.types.is_boolean(typ) or pa.types.is_binary(typ)):
        raise UsageError(f"--by {c.column}: column '{c.column}' is {typ}; slices group string, "
                         "integer, boolean and dictionary columns by value")


def quantile_edges(values: np.ndarray, bins: int) -> tuple[float, ...]:
    """Equal-frequency edges: the (i / bins) quantiles (i = 1..bins-1, NumPy's default linear
    rule) of the finite values, duplicates removed (fewer bins when values repeat)."""
    v = values[np.isfinite(values)]
    if v.size == 0 or bins == 1:
        return ()
    qs = np.quantile(v, np.arange(1, bins) / bins)
    return tuple(float(x) for x in np.unique(qs))


def bin_labels(edges: Sequence[float]) -> list[str]:
    """'[-inf, a)', '[a, b)', ..., '[c, inf)' for edges a < b < ... < c."""
    ends = [-math.inf, *edges, math.inf]
    return [f"[{a:g}, {b:g})" for a, b in itertools.pairwise(ends)]


def numeric_values(arr: pa.Array) -> np.ndarray:
    """A numeric (or dictionary of numeric) column as float64, null as NaN."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    if arr.type != pa.float64():
        arr = pc.cast(arr, pa.float64())
    return np.asarray(arr.fill_null(math.nan).to_numpy(zero_copy_only=False), dtype=np.float64)


def _integers(arr: pa.Array) -> np.ndarray:
    """An integer array without nulls as int64, read from its data buffer (``to_numpy``
    takes a slow path, 20 ms for 131,072 dictionary indices, when a validity buffer exists)."""
    dtype = np.dtype(arr.type.to_pandas_dtype())
    data = np.frombuffer(arr.buffers()[1], dtype=dtype, count=len(arr), offset=arr.offset
                         * dtype.itemsize)
    return data.astype(np.int64)


@dataclass
class Encoder:
    """Maps a block's rows to slice keys: ``encode`` gives each row a group number in
    0..G-1 and the G keys (value tuples; None for null)."""

    grouping: Grouping
    #: the bin edges of each binned column (from --by, or the first rows for bins=N)
    edges: dict[str, tuple[float, ...]] = field(default_factory=dict)
    #: the bins' labels of each binned column
    labels: dict[str, list[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for c in self.grouping.columns:
            if c.edges is not None:
                self.edges.setdefault(c.column, c.edges)
        self.labels = {name: bin_labels(e) for name, e in self.edges.items()}

    def _codes(self, c: KeyColumn, arr: pa.Array) -> tuple[np.ndarray, list[Any]]:
        """Codes 0..k-1 of one column and the value of each code (the last: null, if any)."""
        import pyarrow as pa

        if c.binned:
            edges = np.asarray(self.edges[c.column], dtype=np.float64)
            v = numeric_values(arr)
            codes = np.searchsorted(edges, v, side="right")
            nan = np.isnan(v)
            values: list[Any] = list(self.labels[c.column])
            if nan.any():
                codes[nan] = len(values)
                values.append(None)
            return codes, values
        if pa.types.is_dictionary(arr.type):  # Parquet and CSV keys: no pyarrow.compute
            enc = arr  # (45 ms to import)
        else:
            import pyarrow.compute as pc

            enc = pc.dictionary_encode(arr)
        values = [v.decode("utf-8", "backslashreplace") if isinstance(v, bytes) else v
                  for v in enc.dictionary.to_pylist()]
        idx = enc.indices
        if len(set(values)) != len(values):  # a dictionary may repeat a value: one code each
            first: dict[Any, int] = {}
            remap = np.array([first.setdefault(v, len(first)) for v in values])
            values = list(first)
            idx = pa.array(remap[np.asarray(idx.fill_null(0).to_numpy(zero_copy_only=False))],
                           mask=np.asarray(idx.is_null().to_numpy(zero_copy_only=False)))
        if idx.null_count:
            idx = idx.fill_null(len(values))
            values.append(None)
        return _integers(idx), values

    def encode(self, batch: pa.RecordBatch,
               keep: np.ndarray | None) -> tuple[np.ndarray, list[Key]]:
        """(group of each kept row, the key of each group); ``keep`` are the rows kept (None:
        all)."""
        code: np.ndarray | None = None
        keys: list[Key] = [()]
        for c in self.grouping.columns:
            codes, values = self._codes(c, batch.column(c.column))
            if keep is not None:
                codes = codes[keep]
            k = len(values)
            if code is None:
                code = codes
                keys = [(v,) for v in values]
                continue
            combined = code * k + codes
            width = len(keys) * k
            if width > 4 * max(combined.size, 1):  # sparse: renumber the pairs present
                present, combined = np.unique(combined, return_inverse=True)
            else:
                present = np.arange(width)
            keys = [keys[int(p) // k] + (values[int(p) % k],) for p in present]
            code = combined.astype(np.int64, copy=False)
        assert code is not None
        return code, keys
