"""The invariance matrix: one command run from every input kind x chunk size x executor, each
result checked against an independent reference and all of them against each other.

In the spirit of torchmetrics' ``MetricTester``: a test hands over its data, the command's options
and a ``check`` that compares one result with its reference; :func:`sweep` does the rest.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import losscli

from .data import INPUT_KINDS, as_input

#: chunk sizes: the default, a round one, one prime to the row-group size, and a tiny one
CHUNK_ROWS = (131072, 1000, 7777, 7)


@dataclass(frozen=True)
class Executor:
    """How a run is executed: a name and the keyword arguments that select it (a function
    that returns them, for an executor made on first use)."""

    name: str
    options: Mapping[str, Any] | Callable[[], Mapping[str, Any]] = field(default_factory=dict)

    def kwargs(self) -> Mapping[str, Any]:
        return self.options() if callable(self.options) else self.options


_POOL: list[Any] = []


def process_pool() -> Any:
    """One pool of two spawned processes for the whole test session (spawning costs ~1 s a
    process; every run on it still pickles its plan, reduction, units and states)."""
    if not _POOL:
        import atexit
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        pool = ProcessPoolExecutor(max_workers=2, mp_context=multiprocessing.get_context("spawn"))
        atexit.register(pool.shutdown)
        _POOL.append(pool)
    return _POOL[0]


def _processes() -> Mapping[str, Any]:
    from losscli.run import ProcessExecutor

    return {"executor": ProcessExecutor(2, pool=process_pool())}


#: every way a run can be executed; a new executor is one more entry here
EXECUTORS: list[Executor] = [
    Executor("serial", {"executor": "serial"}),
    Executor("threads-0", {"threads": 0}),
    Executor("threads-1", {"threads": 1}),
    Executor("threads-3", {"threads": 3}),
    Executor("processes-2", _processes),
]

#: results are the same bits for any chunk size, executor and input kind; False compares floats
#: at INVARIANCE_RTOL across chunk sizes and input kinds (runs of one input at one chunk size
#: stay exact), for a time when that does not hold
EXACT_INVARIANCE = True
INVARIANCE_RTOL = 1e-13

#: keys of a result's to_dict() that describe the run, not the data (timings, the chunk size
#: asked for, where the input came from)
RUN_KEYS = frozenset({"elapsed_seconds", "chunk_rows", "path", "format", "command"})

Doc = dict[str, Any]


def run(command: str, source: Any, **options: Any) -> Any:
    """One library call of ``command`` (eval, compare, recommend) on ``source``."""
    fn: Callable[..., Any] = {"eval": losscli.evaluate, "compare": losscli.compare,
                              "recommend": losscli.recommend}[command]
    return fn(source, **options)


def doc_of(result: Any) -> Doc:
    """The result's to_dict() without the keys that describe the run (RUN_KEYS)."""
    return strip_run_keys(result.to_dict())


def strip_run_keys(x: Any) -> Any:
    """A to_dict() or JSON document without the keys that describe the run (RUN_KEYS)."""
    if isinstance(x, dict):
        return {k: strip_run_keys(v) for k, v in x.items() if k not in RUN_KEYS}
    if isinstance(x, list):
        return [strip_run_keys(v) for v in x]
    return x


def assert_same(a: Any, b: Any, exact: bool, where: str = "") -> None:
    """``a`` and ``b`` equal bit for bit (exact), or every float within INVARIANCE_RTOL and
    everything else equal."""
    if exact:
        assert a == b, f"{where}: {_first_difference(a, b)}"
        return
    if isinstance(a, dict) and isinstance(b, dict):
        assert list(a) == list(b), (where, list(a), list(b))
        for k in a:
            assert_same(a[k], b[k], exact, f"{where}.{k}")
    elif isinstance(a, list) and isinstance(b, list):
        assert len(a) == len(b), (where, a, b)
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, exact, f"{where}[{i}]")
    elif isinstance(a, float) and isinstance(b, float):
        assert a == b or math.isclose(a, b, rel_tol=INVARIANCE_RTOL, abs_tol=1e-300), (where, a, b)
    else:
        assert a == b, (where, a, b)


def _first_difference(a: Any, b: Any, path: str = "") -> str:
    """Where two documents first differ, and the two values there."""
    if isinstance(a, dict) and isinstance(b, dict) and list(a) == list(b):
        return next((_first_difference(a[k], b[k], f"{path}.{k}") for k in a if a[k] != b[k]),
                    path)
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return next((_first_difference(x, y, f"{path}[{i}]")
                     for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y), path)
    return f"{path or 'the documents'}: {a!r} != {b!r}"


def assert_invariant(docs: Mapping[tuple[str, int, str], Doc]) -> None:
    """Documents keyed by (input kind, chunk size, executor) are the same: bit for bit within one
    input and chunk size; across them as EXACT_INVARIANCE says."""
    first = next(iter(docs.values()))
    by_chunk: dict[tuple[str, int], Doc] = {}
    for (kind, chunk, name), doc in docs.items():
        where = f"{kind} chunk {chunk} {name}"
        assert_same(by_chunk.setdefault((kind, chunk), doc), doc, True, where)
        assert_same(first, doc, EXACT_INVARIANCE, where)


@dataclass
class Sweep:
    """The results of one sweep, by (input kind, chunk size, executor name)."""

    results: dict[tuple[str, int, str], Any]

    def first(self) -> Any:
        return next(iter(self.results.values()))


Cell = tuple[int, Executor]


def executor(name: str) -> Executor:
    """The entry of EXECUTORS with this name."""
    return next(ex for ex in EXECUTORS if ex.name == name)


def run_matrix(call: Callable[..., Any], kind: str, cells: Iterable[Cell] | None = None,
               check: Callable[[Any], None] | None = None) -> dict[tuple[str, int, str], Any]:
    """``call(chunk_rows=..., **executor options)`` for every (chunk size, executor) cell (all
    of CHUNK_ROWS x EXECUTORS by default), keyed by (``kind``, chunk size, executor name);
    ``check`` (the comparison with an independent reference) sees the first result (every one
    unless EXACT_INVARIANCE: the others are the same bits); every result is the same
    (:func:`assert_invariant`)."""
    if cells is None:
        cells = [(chunk, ex) for chunk in CHUNK_ROWS for ex in EXECUTORS]
    results: dict[tuple[str, int, str], Any] = {}
    for chunk, ex in cells:
        result = call(chunk_rows=chunk, **ex.kwargs())
        if check is not None and (not EXACT_INVARIANCE or not results):
            check(result)
        results[(kind, chunk, ex.name)] = result
    assert_invariant({key: doc_of(r) for key, r in results.items()})
    return results


def sweep(command: str, columns: Mapping[str, Any], directory: Path | None,
          check: Callable[[Any], None] | None = None, *,
          kinds: Iterable[str] | None = None, chunks: Iterable[int] = CHUNK_ROWS,
          executors: Iterable[Executor] | None = None, **options: Any) -> Sweep:
    """Run ``command`` with ``options`` from every input kind (the columns written to
    ``directory``; None: in-memory kinds only) x chunk size x executor (:func:`run_matrix`),
    and assert that the results of every input kind are the same as well."""
    results: dict[tuple[str, int, str], Any] = {}
    chunks = list(chunks)
    cells = [(c, ex) for c in chunks for ex in (EXECUTORS if executors is None else executors)]
    for kind in INPUT_KINDS if kinds is None else kinds:
        sub = None
        if directory is not None:
            sub = directory / kind
            sub.mkdir(exist_ok=True)
        source = as_input(kind, columns, sub)
        results.update(run_matrix(lambda source=source, **o: run(command, source, **o, **options),
                                  f"{command} {kind}", cells,
                                  check if not (results and EXACT_INVARIANCE) else None))
    assert_invariant({key: doc_of(r) for key, r in results.items()})
    return Sweep(results)
