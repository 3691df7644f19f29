"""Work units where they run and their results where they merge: what every executor that
ships units (a process pool, a Dask cluster) shares."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import numpy as np

from losscli.run.plan import Plan, Unit
from losscli.run.reduction import Reduction
from losscli.run.tree import TreeMerge

S = TypeVar("S")

#: progress callback: rows read so far
Progress = Callable[[int], None]


def rows_of(item: Any) -> int:
    """Rows of a plan item (a raw chunk, or a pair of them)."""
    first = item[0] if isinstance(item, tuple) else item
    return int(first.batch.num_rows)


def fold_one(red: Reduction[S], item: Any) -> S:
    # NumPy's error state is per thread: a worker does not inherit the caller's.
    with np.errstate(all="ignore"):
        return red.fold(red.empty(), item)


def finish(tree: TreeMerge[S], red: Reduction[S]) -> S:
    state = tree.result()
    return red.empty() if state is None else state


def run_unit(plan: Plan, red: Reduction[S],
             unit: Unit) -> tuple[list[tuple[int, int, int, S]], int]:
    """Fold one work unit where it runs: its subtree's nodes and its row count."""
    from losscli._alloc import keep_temporaries_in_heap

    keep_temporaries_in_heap()  # a worker process's too (Dask's nannies lower the trim threshold)
    tree: TreeMerge[S] = TreeMerge(red.merge)
    rows = 0
    for (file, block), item in plan.unit_items(unit):
        tree.add(file, block, fold_one(red, item))
        rows += rows_of(item)
    return tree.export(), rows


def merge_units(red: Reduction[S], results: Iterable[tuple[list[tuple[int, int, int, S]], int]],
                progress: Progress | None = None) -> S:
    """The units' results (:func:`run_unit`'s tree nodes and rows), in any order, merged in
    the fixed tree; ``progress`` is told the rows so far after each."""
    tree: TreeMerge[S] = TreeMerge(red.merge)
    rows = 0
    for nodes, n in results:
        tree.add_nodes(nodes)
        rows += n
        if progress is not None:
            progress(rows)
    return finish(tree, red)
