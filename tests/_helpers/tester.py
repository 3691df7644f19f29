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
from losscli.compare import compare
from losscli.recommend import recommend

from .data import INPUT_KINDS, as_input

#: chunk sizes: the default, a round one, one prime to the row-group size, and a tiny one
CHUNK_ROWS = (131072, 1000, 7777, 7)


@dataclass(frozen=True)
class Executor:
    """How a run is executed: a name and the keyword arguments that select it."""

    name: str
    options: Mapping[str, Any] = field(default_factory=dict)


#: every way a run can be executed; a new executor is one more entry here
EXECUTORS: list[Executor] = [
    Executor("serial", {"threads": 0}),
    Executor("threads-1", {"threads": 1}),
    Executor("threads-3", {"threads": 3}),
]

#: results must be the same bits for any chunk size and executor; while False, runs that differ
#: in chunk size or input kind are compared float by float at INVARIANCE_RTOL (runs of one
#: input at one chunk size stay exact). Measured at 004a295: up to 4.3e-14 apart.
EXACT_INVARIANCE = False
INVARIANCE_RTOL = 1e-13

#: the input kinds each command takes today (compare reads files only)
COMMAND_INPUTS: dict[str, tuple[str, ...]] = {
    "eval": INPUT_KINDS,
    "compare": ("csv", "parquet"),
    "recommend": INPUT_KINDS,
}

#: keys of a result's to_dict() that describe the run, not the data (timings, the chunk size
#: asked for, where the input came from)
RUN_KEYS = frozenset({"elapsed_seconds", "chunk_rows", "path", "format", "command"})

Doc = dict[str, Any]


def run(command: str, source: Any, **options: Any) -> Any:
    """One library call of ``command`` (eval, compare, recommend) on ``source``."""
    fn: Callable[..., Any] = {"eval": losscli.evaluate, "compare": compare,
                              "recommend": recommend}[command]
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
        assert a == b, f"{where}: results differ"
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


def assert_invariant(docs: Mapping[tuple[str, int, str], Doc], what: str = "") -> None:
    """Documents keyed by (input kind, chunk size, executor) are the same: bit for bit within one
    input and chunk size; across them as EXACT_INVARIANCE says."""
    first = next(iter(docs.values()))
    by_chunk: dict[tuple[str, int], Doc] = {}
    for (kind, chunk, name), doc in docs.items():
        where = f"{what} {kind} chunk {chunk} {name}"
        assert_same(by_chunk.setdefault((kind, chunk), doc), doc, True, where)
        assert_same(first, doc, EXACT_INVARIANCE, where)


@dataclass
class Sweep:
    """The results of one sweep, by (input kind, chunk size, executor name)."""

    results: dict[tuple[str, int, str], Any]

    def first(self, kind: str | None = None) -> Any:
        return next(r for (k, _, _), r in self.results.items() if kind in (None, k))


def sweep(command: str, columns: Mapping[str, Any], directory: Path | None,
          check: Callable[[Any], None] | None = None, *,
          kinds: Iterable[str] | None = None, chunks: Iterable[int] = CHUNK_ROWS,
          executors: Iterable[Executor] | None = None, **options: Any) -> Sweep:
    """Run ``command`` with ``options`` from every input kind x chunk size x executor; apply
    ``check`` (the comparison with an independent reference) to every result; assert that every
    result is the same (exact across executors at one chunk size; across chunk sizes and input
    kinds as EXACT_INVARIANCE says). ``directory`` holds the files (None: in-memory kinds only)."""
    results: dict[tuple[str, int, str], Any] = {}
    for kind in COMMAND_INPUTS[command] if kinds is None else kinds:
        sub = None
        if directory is not None:
            sub = directory / kind
            sub.mkdir(exist_ok=True)
        source = as_input(kind, columns, sub)
        for chunk in chunks:
            for ex in EXECUTORS if executors is None else executors:
                result = run(command, source, chunk_rows=chunk, **ex.options, **options)
                if check is not None:
                    check(result)
                results[(kind, chunk, ex.name)] = result
    assert_invariant({key: doc_of(r) for key, r in results.items()}, command)
    return Sweep(results)
