"""Executors on this machine: serial, a thread pipeline, a process pool.

Each runs a plan's items through a reduction and merges the block states in the fixed tree of
:mod:`losscli.run.tree`, so all of them give the same bits.
"""

from __future__ import annotations

import itertools
import os
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from losscli.errors import UsageError
from losscli.run.plan import Key, Plan
from losscli.run.reduction import Reduction
from losscli.run.tree import TreeMerge
from losscli.run.units import Progress, finish, fold_one, merge_units, rows_of, run_unit

if TYPE_CHECKING:
    from concurrent.futures import Future

S = TypeVar("S")
T = TypeVar("T")
R = TypeVar("R")

class Executor(Protocol):
    def run(self, plan: Plan, red: Reduction[S],
            progress: Progress | None = None) -> S: ...


@dataclass
class SerialExecutor:
    """Everything in the caller's thread."""

    def run(self, plan: Plan, red: Reduction[S],
            progress: Progress | None = None) -> S:
        tree: TreeMerge[S] = TreeMerge(red.merge)
        rows = 0
        for (file, block), item in plan.items():
            tree.add(file, block, fold_one(red, item))
            rows += rows_of(item)
            if progress is not None:
                progress(rows)
        return finish(tree, red)


def default_threads() -> int:
    """Compute threads beside the reading thread: one per remaining core, at most 4 (measured
    on 2 cores, 5e7 rows: reader + 1 worker 0.65 s, reader + 2 workers 0.80 s)."""
    return max(0, min(4, (os.cpu_count() or 1) - 1))


def resolve_threads(threads: int | bool | None) -> int:
    """The number of compute threads: None is the default, False none, True the default."""
    if isinstance(threads, bool):
        return default_threads() if threads else 0
    if threads is None:
        return default_threads()
    if threads < 0:
        raise UsageError(f"--threads must be 0 or more, got {threads}")
    return threads


def ordered_map(fn: Callable[[T], R], items: Iterable[T], workers: int) -> Iterator[R]:
    """``map(fn, items)`` on ``workers`` threads, results in input order, a bounded number in
    flight; ``workers == 0`` runs everything in the caller's thread.

    The caller's thread iterates ``items`` (decoding the next chunk) while the workers compute:
    pyarrow and NumPy release the GIL. A worker's exception is raised here, the earliest
    item's first, so the error a run reports does not depend on the number of workers.
    """
    it = iter(items)
    head = list(itertools.islice(it, 2))
    if workers < 1 or len(head) < 2:  # one chunk: no pool to start
        for item in itertools.chain(head, it):
            yield fn(item)
        return
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="losscli")
    pending: deque[Future[R]] = deque()
    try:
        for item in itertools.chain(head, it):
            pending.append(pool.submit(fn, item))
            if len(pending) > 2 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


@dataclass
class ThreadExecutor:
    """The reading thread decodes; ``threads`` workers fold blocks and merge them into the tree
    (under a lock: the tree's shape does not depend on the order of arrival)."""

    threads: int | None = None

    def run(self, plan: Plan, red: Reduction[S],
            progress: Progress | None = None) -> S:
        workers = resolve_threads(self.threads)
        if workers == 0:
            return SerialExecutor().run(plan, red, progress)
        tree: TreeMerge[S] = TreeMerge(red.merge)
        lock = threading.Lock()

        def work(keyed: tuple[Key, Any]) -> int:
            (file, block), item = keyed
            state = fold_one(red, item)
            with lock:
                tree.add(file, block, state)
            return rows_of(item)

        rows = 0
        for n in ordered_map(work, plan.items(), workers):
            rows += n
            if progress is not None:
                progress(rows)
        return finish(tree, red)


@dataclass
class ProcessExecutor:
    """Work units on a pool of ``workers`` processes (spawned: nothing is inherited): the plan,
    the reduction, the units and the states cross process boundaries as pickles, as they do on a
    cluster. Streams (stdin) cannot be shipped and run serially."""

    workers: int = 2
    #: a process pool to run on and keep (a ``concurrent.futures.ProcessPoolExecutor``), for
    #: many runs in one session; None starts ``workers`` spawned processes for each run (each
    #: imports losscli afresh: about 1 s)
    pool: Any = field(default=None, repr=False, compare=False)

    def run(self, plan: Plan, red: Reduction[S],
            progress: Progress | None = None) -> S:
        if not plan.rereadable:
            return SerialExecutor().run(plan, red, progress)
        if self.pool is not None:
            return self._run_on(self.pool, plan, red, progress)
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=self.workers, mp_context=ctx) as pool:
            return self._run_on(pool, plan, red, progress)

    @staticmethod
    def _run_on(pool: Any, plan: Plan, red: Reduction[S], progress: Progress | None) -> S:
        futures = [pool.submit(run_unit, plan, red, u) for u in plan.units()]
        # in unit order: the first failing unit's error is the one raised
        return merge_units(red, (f.result() for f in futures), progress)


def resolve_executor(executor: str | Executor | None, threads: int | bool | None) -> Executor:
    """An executor from a name ('serial', 'threads', 'processes[:N]', or a Dask scheduler:
    'local[:N]', 'tcp://...', 'dask'; see :mod:`losscli.run.dask`), or the thread pipeline with
    ``threads`` workers by default."""
    if executor is None or executor == "threads":
        return ThreadExecutor(resolve_threads(threads))
    if isinstance(executor, str):
        name, _, count = executor.partition(":")
        if name == "serial":
            return SerialExecutor()
        if name == "processes":
            try:
                n = int(count) if count else 2
            except ValueError:
                n = 0
            if n < 1:
                raise UsageError(f"executor '{executor}': processes:N needs N >= 1")
            return ProcessExecutor(n)
        from losscli.run.dask import SCHEDULERS, DaskExecutor, is_scheduler

        if is_scheduler(executor):
            return DaskExecutor(executor)
        raise UsageError(f"unknown executor '{executor}' (serial, threads, processes[:N], or "
                         f"a Dask scheduler: {SCHEDULERS})")
    return executor


def run(plan: Plan, red: Reduction[S], executor: Executor | None = None,
        progress: Progress | None = None) -> S:
    """Run ``red`` over ``plan`` on ``executor`` (the thread pipeline by default)."""
    return (executor or ThreadExecutor()).run(plan, red, progress)
