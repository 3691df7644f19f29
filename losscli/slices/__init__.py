"""Slices: losses per segment of the rows (``--by``), in the same pass as the overall values.

A slice is a value of a column (or a crossing of several; numeric columns in bins). Each block's
rows are mapped to slices and every loss's per-row values folded into per-slice sums and
moments (:mod:`losscli.slices.state`), merged in the executor's fixed tree like any state, so
the slices have the same bits for any chunk size, thread count or executor. At the end each
slice gets its value, interval, gap and contribution, and a Welch test against the other rows
under a Benjamini-Hochberg false-discovery rate (:mod:`losscli.slices.result`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from losscli.errors import UsageError
from losscli.slices.fold import Slicer, sliceable
from losscli.slices.keys import Encoder, Grouping, parse_by, quantile_edges, resolve_groupings
from losscli.slices.result import (
    DEFAULT_MAX_SLICES,
    DEFAULT_MIN_ROWS,
    DEFAULT_TOP,
    Slice,
    SliceGroup,
    SliceLoss,
    SliceOptions,
    finish,
    memory_cap,
)

if TYPE_CHECKING:
    from losscli.sources import Columns, RawChunk, Source


def check_options(opts: SliceOptions) -> None:
    """--max-slices, --min-rows, --top and --alpha in range (exit 2 otherwise)."""
    if opts.max_slices < 1:
        raise UsageError(f"--max-slices must be 1 or more, got {opts.max_slices}")
    if opts.min_rows < 2:
        raise UsageError(f"--min-rows must be 2 or more (a test needs a variance), got "
                         f"{opts.min_rows}")
    if opts.top < 0:
        raise UsageError(f"--top must be 0 (all slices) or more, got {opts.top}")
    if not 0.0 < opts.alpha < 0.5:
        raise UsageError(f"--alpha must be between 0 and 0.5, got {opts.alpha:g}")


def add_key_columns(src: Source, cols: Columns, groupings: Sequence[Grouping]) -> None:
    """The key columns join the columns read (binned ones read as numbers)."""
    from losscli.sources import check_unique

    for g in groupings:
        for c in g.columns:
            if c.column not in cols.keys:
                cols.keys.append(c.column)
            if c.binned and c.column not in cols.numeric_keys:
                cols.numeric_keys.append(c.column)
            if not c.binned and c.column in cols.numeric_keys:
                raise UsageError(f"--by: column '{c.column}' is grouped both by value and in "
                                 "bins; give it once")
    check_unique(src, cols)


def encoders(groupings: Sequence[Grouping], head: Iterable[RawChunk], cols: Columns,
             src: Source, rows: int) -> tuple[list[Encoder], dict[str, str]]:
    """An encoder per grouping; ``bins=N`` edges from the first ``rows`` rows of the input
    (the ``head``), and what each binned column's edges came from."""
    from losscli.slices.keys import numeric_values

    wanted = {c.column for g in groupings for c in g.columns if c.bins is not None}
    bins_of = {(c.column, c.bins) for g in groupings for c in g.columns if c.bins is not None}
    edges: dict[tuple[str, int], tuple[float, ...]] = {}
    edges_from: dict[str, str] = {}
    text_keys = [c for c in cols.keys if c not in cols.numeric_keys
                 and c not in (*cols.pred, cols.target, cols.weight)]
    csv = src.format in ("csv", "tsv")
    if wanted or (csv and text_keys):
        seen: dict[str, list[np.ndarray]] = {c: [] for c in wanted}
        texts: dict[str, list[str]] = {c: [] for c in text_keys}
        count = 0
        for raw in head:
            for c in wanted:
                seen[c].append(numeric_values(raw.batch.column(c)))
            if csv:
                for c in text_keys:
                    texts[c].extend(v for v in raw.batch.column(c).to_pylist()[:rows - count]
                                    if v is not None)
            count += raw.batch.num_rows
            if count >= rows:
                break
        for c, bins in sorted(bins_of):
            values = np.concatenate(seen[c])[:rows] if seen[c] else np.zeros(0)
            edges[(c, bins)] = quantile_edges(values, bins)
            edges_from[c] = f"the first {min(count, rows):,} rows"
        for c in text_keys:
            _refuse_float_text(c, texts[c])
    return [Encoder(g, {c.column: edges[(c.column, c.bins)] for c in g.columns
                        if c.bins is not None}) for g in groupings], edges_from


def _refuse_float_text(column: str, values: list[str]) -> None:
    """A CSV key column whose first values are all numbers, some not whole, is a float column:
    it needs bins (as a Parquet float column does)."""
    if not values:
        return
    try:
        numbers = [float(v) for v in values]
    except ValueError:
        return
    if any(x != int(x) for x in numbers if np.isfinite(x)):
        raise UsageError(f"--by {column}: column '{column}' holds fractional numbers; group "
                         f"a float column into bins: --by '{column}:bins=5' or "
                         f"'{column}:edges=a,b,c'")


__all__ = ["DEFAULT_MAX_SLICES", "DEFAULT_MIN_ROWS", "DEFAULT_TOP", "Encoder", "Grouping",
           "Slice", "SliceGroup", "SliceLoss", "SliceOptions", "Slicer", "add_key_columns",
           "check_options", "encoders", "finish", "memory_cap", "parse_by",
           "resolve_groupings", "sliceable"]
