"""The reduction protocol every command's computation follows."""

from __future__ import annotations

from typing import Any, Protocol, TypeVar

S = TypeVar("S")


class Reduction(Protocol[S]):
    """What a command computes over its blocks (torchmetrics' update / merge_state, DuckDB's
    update / combine): an empty state, the state of one block, and the merge of two states of
    consecutive rows, earlier first. A fold returns the block's state together with its side
    facts (rows dropped, notes, losses the data ruled out): no side channel leaves a worker.

    A reduction and its states pickle (the process and distributed executors ship them).
    """

    def empty(self) -> S: ...

    def fold(self, state: S, block: Any) -> S:
        """``state`` (always empty when an executor calls it) with ``block`` folded in."""
        ...

    def merge(self, earlier: S, later: S) -> S:
        """Both states as one; may reuse ``earlier``."""
        ...
