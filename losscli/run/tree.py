"""The merge tree whose shape is fixed by the data, not by how it was read.

Blocks are numbered by (file, block index in the file); a block's rows never depend on the
chunk size, the thread count or the executor (see :mod:`losscli.run.plan`). Within a file the
blocks merge as a complete binary tree over their indices: node (level L, k) is the merge of
its children (L-1, 2k) and (L-1, 2k+1), made as soon as both exist, in whatever order they
arrive. The nodes left when the file is complete (the binary decomposition of its block count)
fold from left to right, and the files' states merge in the same tree over file indices. The
result is the same bits for any arrival order and any way of grouping blocks into work units,
since every merge is of the same two states (pairwise summation's tree, applied to states).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Generic, TypeVar

S = TypeVar("S")


@dataclass
class _Level(Generic[S]):
    """The nodes of one tree (a file's blocks, or the files): (level, index) -> state."""

    nodes: dict[tuple[int, int], S] = field(default_factory=dict)
    leaves: int = 0  # how many leaves (blocks or files) it holds
    size: int | None = None  # how many leaves it has in all, once known

    def add(self, level: int, index: int, state: S, leaves: int,
            merge: Callable[[S, S], S]) -> None:
        self.leaves += leaves
        while True:
            sibling = (level, index ^ 1)
            other = self.nodes.pop(sibling, None)
            if other is None:
                self.nodes[(level, index)] = state
                return
            state = merge(other, state) if index & 1 else merge(state, other)
            level, index = level + 1, index >> 1

    @property
    def complete(self) -> bool:
        return self.size is not None and self.leaves == self.size

    def fold(self, merge: Callable[[S, S], S]) -> S | None:
        """The left-over nodes, folded from left to right (by first leaf)."""
        acc: S | None = None
        for key in sorted(self.nodes, key=lambda lk: lk[1] << lk[0]):
            acc = self.nodes[key] if acc is None else merge(acc, self.nodes[key])
        self.nodes.clear()
        return acc

    def export(self) -> Iterator[tuple[int, int, S]]:
        for (level, index), state in self.nodes.items():
            yield level, index, state


class TreeMerge(Generic[S]):
    """Merges keyed states in the fixed tree; ``add`` in any order, ``result`` at the end.

    Thread-safety is the caller's (the executors hold a lock around ``add``).
    """

    def __init__(self, merge: Callable[[S, S], S]) -> None:
        self._merge = merge
        self._files: dict[int, _Level[S]] = {}
        self._top: _Level[S] = _Level()

    def add(self, file: int, block: int, state: S, level: int = 0) -> None:
        """A block's state, or (``level`` > 0) a subtree's: the node (level, block)."""
        tree = self._files.setdefault(file, _Level())
        tree.add(level, block, state, 1 << level, self._merge)
        self._close_if_complete(file, tree)

    def add_nodes(self, nodes: list[tuple[int, int, int, S]]) -> None:
        """Nodes exported by another TreeMerge (a work unit's): (file, level, index, state)."""
        for file, level, index, state in nodes:
            self.add(file, index, state, level)

    def file_size(self, file: int, blocks: int) -> None:
        """Says that ``file`` has ``blocks`` blocks: once all are in, it folds to one leaf."""
        tree = self._files.setdefault(file, _Level())
        tree.size = blocks
        self._close_if_complete(file, tree)

    def _close_if_complete(self, file: int, tree: _Level[S]) -> None:
        if tree.complete:
            state = tree.fold(self._merge)
            del self._files[file]
            if state is not None:
                self._top.add(0, file, state, 1, self._merge)

    def export(self) -> list[tuple[int, int, int, S]]:
        """The nodes held so far (of files not closed), for the merging side to ``add_nodes``."""
        assert not self._top.nodes, "a work unit's tree never closes a file"
        return [(f, level, index, s) for f, tree in self._files.items()
                for level, index, s in tree.export()]

    def result(self) -> S | None:
        """Everything merged: open files fold as complete (the input ended), then the files."""
        for file in sorted(self._files):
            state = self._files[file].fold(self._merge)
            if state is not None:
                self._top.add(0, file, state, 1, self._merge)
        self._files.clear()
        return self._top.fold(self._merge)
