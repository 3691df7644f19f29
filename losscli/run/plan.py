"""Read plans: what to read, as work units, cut into blocks that depend on the row index only.

A block holds the rows [b * B, (b + 1) * B) of one file, B = BLOCK_VALUES // (prediction values
per row): the reader's batches (``--chunk-rows``) are joined or cut to block boundaries, so the
chunk size is an I/O setting that never shows in a result. Each block is keyed (file index,
block index) for :class:`~losscli.run.tree.TreeMerge`.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from losscli.errors import InputError
from losscli.sources import (
    Columns,
    RawChunk,
    Source,
    parquet_groups,
    raw_chunks,
    row_width,
)

if TYPE_CHECKING:
    import pyarrow as pa

#: Prediction values in a block: 2^17 (1 MiB a float64 column), the default --chunk-rows, so that
#: by default a batch read is a block and nothing is joined or cut.
BLOCK_VALUES = 1 << 17

#: (file index, block index in the file)
Key = tuple[int, int]
T = TypeVar("T")


class Plan(Protocol):
    """What an executor needs of a plan: the keyed items in order (read here), or the work
    units and each unit's items (read where the unit runs)."""

    @property
    def rereadable(self) -> bool: ...

    def items(self) -> Iterator[tuple[Key, Any]]: ...

    def units(self, unit_bytes: int | None = None) -> list[Unit]: ...

    def unit_items(self, unit: Unit) -> Iterator[tuple[Key, Any]]: ...


@dataclass(frozen=True)
class Unit:
    """A picklable piece of work: one file of the input (all of it for a single-file input),
    or the rows [start, stop) of one, opened where it is read."""

    index: int
    file: int
    path: str
    rows: tuple[int, int] | None = None
    #: the other input's file read in step with this one (compare's two inputs)
    pair: str | None = None


def split_rows(groups: list[tuple[int, int]], unit_bytes: int,
               block_rows: int) -> list[tuple[int, int]]:
    """Row ranges of one file for work units of about ``unit_bytes`` each, from its row groups'
    (rows, bytes). A range ends at a row group's end rounded down to a block boundary, so that
    every block lies in one unit (a block cut in two would fold as two); the row group around a
    boundary is then decoded by both units, in part. With row groups of a multiple of
    ``block_rows`` rows (pyarrow writes 2^20) nothing is read twice."""
    ranges: list[tuple[int, int]] = []
    start = end = size = 0
    for rows, nbytes in groups:
        end += rows
        size += nbytes
        cut = end // block_rows * block_rows
        if size >= unit_bytes and cut > start:
            ranges.append((start, cut))
            start, size = cut, nbytes * (end - cut) // max(rows, 1)
    if end > start or not ranges:
        ranges.append((start, end))
    return ranges


def _join(batches: list[pa.RecordBatch]) -> pa.RecordBatch:
    if len(batches) == 1:
        return batches[0]
    import pyarrow as pa

    return pa.Table.from_batches(batches).combine_chunks().to_batches()[0]


def recut(items: Iterator[T], block_rows: int, rows: Callable[[T], int],
          place: Callable[[T], tuple[int, int]], cut: Callable[[T, int, int], T],
          join: Callable[[list[T]], T]) -> Iterator[tuple[Key, T]]:
    """Items (consecutive rows of one file after another) joined and cut into blocks of
    ``block_rows`` rows aligned to the row index in their file; ``place`` is (file, first row)."""
    pending: list[T] = []
    key: Key | None = None
    for item in items:
        file, first = place(item)
        n = rows(item)
        if key is not None and file != key[0] and pending:
            yield key, join(pending)
            pending = []
        start = 0
        while start < n:
            block = (first + start) // block_rows
            end = min(n, (block + 1) * block_rows - first)
            if pending and key != (file, block):
                assert key is not None
                yield key, join(pending)
                pending = []
            key = (file, block)
            pending.append(item if start == 0 and end == n else cut(item, start, end))
            start = end
            if (first + end) % block_rows == 0:
                yield key, join(pending)
                pending = []
    if pending:
        assert key is not None
        yield key, join(pending)


@dataclass
class ReadPlan(Generic[T]):
    """An input and the columns to read from it, as keyed blocks.

    ``head()`` reads the first raw chunks (for detection) and keeps them, so that a stream that
    can be read once (stdin) still reaches the executor whole; ``blocks()`` reads the input
    (again, when it can be: ``rereadable``). The column layout (a list column's width) is fixed
    before the first block is handed on.
    """

    src: Source
    cols: Columns
    chunk_rows: int
    _live: Iterator[RawChunk] | None = field(default=None, repr=False)
    _head: list[RawChunk] = field(default_factory=list, repr=False)
    _started: bool = field(default=False, repr=False)
    _width: int = field(default=0, repr=False)

    def __getstate__(self) -> dict[str, Any]:
        if self.src.is_stream:
            raise TypeError(f"{self.src.where} is a stream read once, not a picklable plan")
        return {**self.__dict__, "_live": None, "_head": [], "_started": False}

    @property
    def rereadable(self) -> bool:
        return not self.src.is_stream

    @property
    def width(self) -> int:
        """Prediction values per row (the number of classes of a multiclass input)."""
        if not self._width:
            self._width = row_width(self.src, self.cols)
        return self._width

    @property
    def block_rows(self) -> int:
        return max(1, BLOCK_VALUES // self.width)

    def _stream(self) -> Iterator[RawChunk]:
        if self._live is None:
            self._live = raw_chunks(self.src, self.cols, self.chunk_rows)
        return self._live

    def peek(self) -> Iterator[RawChunk]:
        """The raw chunks from the start, for as long as the caller iterates (to detect the
        task); they are kept for the first ``blocks()``, so a stream is still read whole."""
        if self._started:
            raise RuntimeError("peek() after the blocks were read")
        yield from self._head
        for raw in self._stream():
            self._head.append(raw)
            yield raw

    def raw(self) -> Iterator[RawChunk]:
        """The raw chunks of the whole input: the kept head, then the rest."""
        if self._started:
            if not self.rereadable:
                raise RuntimeError(f"{self.src.where} can be read once")
            yield from raw_chunks(self.src, self.cols, self.chunk_rows)
            return
        self._started = True
        head, self._head = self._head, []
        yield from head
        yield from self._stream()
        self._live = None

    def blocks(self) -> Iterator[tuple[Key, RawChunk]]:
        """The whole input as keyed blocks, in order."""
        return recut(self.raw(), self.block_rows, lambda r: r.batch.num_rows,
                     lambda r: (r.file, r.first_row), _cut, _join_raw)

    def items(self) -> Iterator[tuple[Key, Any]]:
        """What the executor hands to the reduction's fold: the blocks (a paired plan pairs
        them)."""
        return self.blocks()

    # --- work units (process and distributed executors) ---

    def units(self, unit_bytes: int | None = None) -> list[Unit]:
        """One unit a file; with ``unit_bytes``, Parquet files larger than that split into row
        ranges of about that many bytes of the selected columns (from their footers)."""
        files = self.src.files or [self.src.path]
        units: list[Unit] = []
        for i, f in enumerate(files):
            size = self.src.sizes[i] if i < len(self.src.sizes) else 0
            if unit_bytes is None or size <= unit_bytes:
                units.append(Unit(len(units), i, f))
                continue
            groups = parquet_groups(f, self.cols.selected)
            units.extend(Unit(len(units) + k, i, f, span) for k, span in
                         enumerate(split_rows(groups, unit_bytes, self.block_rows)))
        return units

    def unit_items(self, unit: Unit) -> Iterator[tuple[Key, Any]]:
        """The keyed items of one unit, read where the unit runs."""
        src = self.src
        if len(src.files) > 1 or unit.rows is not None:
            src = replace(src, files=[unit.path] if src.files else [], rows=unit.rows)
        one = replace(self, src=src, _live=None, _head=[], _started=False)
        for (_, block), item in one.items():
            yield (unit.file, block), item


Pair = tuple[RawChunk, RawChunk]


def aligned(a: Iterator[RawChunk], b: Iterator[RawChunk], where_a: str,
            where_b: str) -> Iterator[Pair]:
    """Pairs of raw chunks over the same rows of two inputs read in step (zero-copy slices);
    raises InputError when one input has more rows than the other."""
    ra: RawChunk | None = None
    rb: RawChunk | None = None
    seen = 0
    while True:
        if ra is None:
            ra = next(a, None)
        if rb is None:
            rb = next(b, None)
        if ra is None or rb is None:
            if ra is not None or rb is not None:
                longer, more = (where_a, ra) if ra is not None else (where_b, rb)
                rest = sum(c.batch.num_rows for c in (a if ra is not None else b))
                assert more is not None
                raise InputError(
                    f"the two inputs have different row counts: {longer} has "
                    f"{seen + more.batch.num_rows + rest:,} rows, the other {seen:,}; rows are "
                    "compared in order (pass --key to match them by a key column)")
            return
        m = min(ra.batch.num_rows, rb.batch.num_rows)
        yield _cut(ra, 0, m), _cut(rb, 0, m)
        seen += m
        ra = None if m == ra.batch.num_rows else _cut(ra, m, ra.batch.num_rows)
        rb = None if m == rb.batch.num_rows else _cut(rb, m, rb.batch.num_rows)


def _cut(r: RawChunk, start: int, stop: int) -> RawChunk:
    if start == 0 and stop == r.batch.num_rows:
        return r
    return RawChunk(r.batch.slice(start, stop - start), r.where, r.first_row + start, r.file)


def _join_raw(rs: list[RawChunk]) -> RawChunk:
    return RawChunk(_join([r.batch for r in rs]), rs[0].where, rs[0].first_row, rs[0].file)


@dataclass
class PairedPlan:
    """Two inputs whose rows correspond in order, read in step: the items are pairs of raw
    chunks over the same rows, in blocks of the first (the baseline's) files and rows."""

    base: ReadPlan[RawChunk]
    cand: ReadPlan[RawChunk]
    _head: list[Pair] = field(default_factory=list, repr=False)
    _live: Iterator[Pair] | None = field(default=None, repr=False)
    _started: bool = field(default=False, repr=False)

    def __getstate__(self) -> dict[str, Any]:
        if not self.rereadable:
            raise TypeError("a stream read once is not a picklable plan")
        return {**self.__dict__, "_live": None, "_head": [], "_started": False}

    @property
    def rereadable(self) -> bool:
        return self.base.rereadable and self.cand.rereadable

    @property
    def block_rows(self) -> int:
        return self.base.block_rows

    def _pairs(self) -> Iterator[Pair]:
        return aligned(self.base.raw(), self.cand.raw(), self.base.src.where,
                       self.cand.src.where)

    def peek(self) -> Iterator[Pair]:
        """As ReadPlan.peek, of pairs."""
        if self._started:
            raise RuntimeError("peek() after the blocks were read")
        yield from self._head
        if self._live is None:
            self._live = self._pairs()
        for pair in self._live:
            self._head.append(pair)
            yield pair

    def items(self) -> Iterator[tuple[Key, Pair]]:
        if self._started:
            pairs = self._pairs()
        else:
            self._started = True
            head, self._head = self._head, []
            live = self._live if self._live is not None else self._pairs()
            pairs = itertools.chain(head, live)
        return recut(pairs, self.block_rows, lambda p: p[0].batch.num_rows,
                     lambda p: (p[0].file, p[0].first_row),
                     lambda p, a, b: (_cut(p[0], a, b), _cut(p[1], a, b)),
                     lambda ps: (_join_raw([p[0] for p in ps]), _join_raw([p[1] for p in ps])))

    def units(self, unit_bytes: int | None = None) -> list[Unit]:
        """One unit: two inputs are read in step, file boundaries need not agree. With
        ``unit_bytes`` (a distributed run), two Parquet inputs whose files pair up with the
        same row counts (from their footers) are a unit a pair of files."""
        one = [Unit(0, 0, self.base.src.path)]
        bsrc, csrc = self.base.src, self.cand.src
        if (unit_bytes is None or len(bsrc.files) < 2 or len(bsrc.files) != len(csrc.files)
                or {bsrc.format, csrc.format} != {"parquet-dir"}):
            return one
        for b, c in zip(bsrc.files, csrc.files, strict=True):
            rows = [sum(r for r, _ in parquet_groups(f, [])) for f in (b, c)]
            if rows[0] != rows[1]:
                return one
        return [Unit(i, i, b, pair=c)
                for i, (b, c) in enumerate(zip(bsrc.files, csrc.files, strict=True))]

    def unit_items(self, unit: Unit) -> Iterator[tuple[Key, Pair]]:
        def fresh(plan: ReadPlan[RawChunk], file: str | None) -> ReadPlan[RawChunk]:
            src = plan.src if file is None else replace(plan.src, files=[file])
            return replace(plan, src=src, _live=None, _head=[], _started=False)

        pairs = PairedPlan(fresh(self.base, unit.pair and unit.path),
                           fresh(self.cand, unit.pair))
        for (file, block), item in pairs.items():
            yield (file if unit.pair is None else unit.file, block), item
