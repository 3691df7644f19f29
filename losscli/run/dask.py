"""The Dask distributed executor: the plan's work units as futures on a cluster, their states
merged here in the fixed tree of :mod:`losscli.run.tree`, so a cluster run has a local run's bits.

Dask is an optional extra (``pip install 'losscli[dask]'``), imported only when a run asks for a
scheduler: importing ``distributed`` costs about half a second. Units are files, or row ranges
of large Parquet files cut at block boundaries (:func:`losscli.run.plan.split_rows`); a worker
opens its files itself, building a remote filesystem from the URI and its own environment
(:mod:`losscli.remote`), so no credential passes through the scheduler. Plugin losses pickle by
module path or file (:meth:`losscli.losses.LossDef.__reduce__`): the workers must be able to
import them.
"""

from __future__ import annotations

import logging
import os
import pickle
import re
import uuid
import warnings
from dataclasses import dataclass, field
from typing import Any, TypeVar

from losscli.errors import LossCliError, PluginError, UsageError
from losscli.run.plan import Plan, Unit
from losscli.run.reduction import Reduction
from losscli.run.units import Progress, merge_units, run_unit

S = TypeVar("S")

#: Work units of about this many bytes of the selected columns (a file smaller than this is one
#: unit): large enough that a task's fixed cost (about 2 ms on the scheduler and a state of
#: 40-50 kB back) is small beside reading it, small enough to spread a file over workers.
UNIT_BYTES = 256 << 20
#: How long to wait for a scheduler to answer.
CONNECT_TIMEOUT = "20s"
INSTALL = "pip install 'losscli[dask]'"
SCHEDULERS = "local[:N], tcp://HOST:PORT, tls://HOST:PORT or dask"
_LOCAL = re.compile(r"local(?::(\d+))?")


def is_scheduler(name: str) -> bool:
    """Whether an executor name asks for Dask: a ``--scheduler`` value."""
    return bool(_LOCAL.fullmatch(name)) or name in ("dask", "sync") or name.startswith(
        ("tcp://", "tls://"))


def _sources(plan: Plan) -> list[Any]:
    """The sources a plan reads (one, or a compare's two)."""
    if hasattr(plan, "src"):
        return [plan.src]
    return [p.src for p in (getattr(plan, "base", None), getattr(plan, "cand", None)) if p]


def check_distributable(plan: Plan) -> None:
    """Refuse what a worker cannot open by itself: a stream, CSV, in-memory data."""
    for src in _sources(plan):
        if src.is_stream or src.path == "-":
            raise UsageError(f"--scheduler: {src.where} is a stream read once; distributed runs "
                             "read Parquet or Arrow files, which each worker opens itself")
        if src.format not in ("parquet", "parquet-dir", "arrow"):
            kind = "in-memory data" if src.format == "memory" else f"a {src.format} file"
            raise UsageError(f"--scheduler: {src.where} is {kind}; distributed runs read "
                             "Parquet or Arrow files (convert it, or run without --scheduler)")


def _worker_error(exc: BaseException) -> LossCliError | None:
    """A worker's failure in the user's terms, or None when it is not the user's."""
    if isinstance(exc, LossCliError):
        return exc
    if isinstance(exc, (ImportError, pickle.UnpicklingError)) or "PluginError" in repr(exc):
        return PluginError(f"a worker could not load the run ({' '.join(str(exc).split())}); "
                           "plugin losses are imported on each worker by module name or file "
                           "path: install the module (or place the file at the same path) on "
                           "every worker")
    return None


@dataclass
class DaskExecutor:
    """Work units as futures on a Dask cluster, merged in the fixed tree here.

    ``scheduler``: ``local[:N]`` (a cluster of N worker processes on this machine, one per core
    by default, bound to 127.0.0.1, no dashboard), ``tcp://`` / ``tls://`` addresses, ``dask``
    (``distributed.Client()``, which honours DASK_SCHEDULER_ADDRESS) or ``sync`` (dask's
    synchronous scheduler in this thread: for tests and debugging); or ``scheduler_file``; or
    an existing ``client``. Used as a context manager it keeps one connection for several runs
    (recommend's passes); otherwise each run connects and disconnects.
    """

    scheduler: str = "dask"
    scheduler_file: str | None = None
    unit_bytes: int = UNIT_BYTES
    client: Any = None
    _owned: list[Any] = field(default_factory=list, repr=False)
    _held: bool = field(default=False, repr=False)

    def __post_init__(self) -> None:
        if self.scheduler_file is None and not is_scheduler(self.scheduler):
            raise UsageError(f"--scheduler must be {SCHEDULERS}, got '{self.scheduler}'")
        m = _LOCAL.fullmatch(self.scheduler)
        if m and m[1] is not None and int(m[1]) < 1:
            raise UsageError(f"--scheduler {self.scheduler}: local:N needs N >= 1")

    @property
    def name(self) -> str:
        return f"--scheduler-file {self.scheduler_file}" if self.scheduler_file else (
            f"--scheduler {self.scheduler}")

    def __enter__(self) -> DaskExecutor:
        self._held = True
        return self

    def __exit__(self, *exc: object) -> None:
        self._held = False
        self.close()

    def close(self) -> None:
        """Disconnect, and stop a local cluster this executor started."""
        for thing in reversed(self._owned):
            thing.close()
        if self._owned:
            self.client = None
        self._owned.clear()

    def _connect(self) -> Any:
        if self.client is not None:
            return self.client
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise UsageError(f"{self.name} needs Dask distributed: {INSTALL}") from None
        local = _LOCAL.fullmatch(self.scheduler)
        try:
            if self.scheduler_file:
                client = Client(scheduler_file=self.scheduler_file, timeout=CONNECT_TIMEOUT)
            elif local:
                n = int(local[1]) if local[1] else (os.cpu_count() or 1)
                with warnings.catch_warnings():  # its HTTP server moves off a busy 8787
                    warnings.filterwarnings("ignore", "Port 8787 is already in use")
                    cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                           dashboard_address=None, host="127.0.0.1",
                                           silence_logs=logging.CRITICAL)
                self._owned.append(cluster)
                client = Client(cluster)
            elif self.scheduler == "dask":
                client = Client(timeout=CONNECT_TIMEOUT)
            else:
                client = Client(self.scheduler, timeout=CONNECT_TIMEOUT)
        except (OSError, TimeoutError, ValueError) as exc:
            self.close()
            raise UsageError(f"{self.name}: cannot reach the scheduler "
                             f"({' '.join(str(exc).split())})") from None
        self._owned.append(client)
        self.client = client
        return client

    def run(self, plan: Plan, red: Reduction[S], progress: Progress | None = None) -> S:
        check_distributable(plan)
        units = plan.units(self.unit_bytes)
        if self.scheduler == "sync" and self.client is None and not self.scheduler_file:
            return _run_sync(plan, red, units, progress)
        client = self._connect()
        try:
            return merge_units(red, _results(client, plan, red, units), progress)
        finally:
            if not self._held:
                self.close()


def _run_sync(plan: Plan, red: Reduction[S], units: list[Unit],
              progress: Progress | None) -> S:
    """The units through dask's synchronous scheduler, the plan and reduction shipped as
    pickles as they are to a cluster."""
    try:
        import dask
    except ImportError:
        raise UsageError(f"--scheduler sync needs Dask: {INSTALL}") from None
    plan, red = pickle.loads(pickle.dumps((plan, red)))
    tasks = [dask.delayed(run_unit, pure=False)(plan, red, u) for u in units]
    return merge_units(red, (t.compute(scheduler="sync") for t in tasks), progress)


def _results(client: Any, plan: Plan, red: Reduction[S],
             units: list[Unit]) -> Any:
    """Each unit's (tree nodes, rows) as its future finishes; a failure cancels the rest."""
    from distributed import as_completed

    run = uuid.uuid4().hex[:12]
    try:
        shipped = client.scatter([plan, red], hash=False)
    except Exception as exc:  # a plugin loss that cannot be pickled here or loaded there
        raise (_worker_error(exc) or PluginError(f"cannot ship the run to the cluster ({exc})")
               ) from None
    futures: dict[str, Any] = {}
    for u in units:
        key = f"losscli-{run}-{u.index}"
        futures[key] = client.submit(run_unit, *shipped, u, key=key, pure=False)
    try:
        for future in as_completed(list(futures.values())):
            try:
                result = future.result()
            except Exception as exc:
                known = _worker_error(exc)
                if known is None:
                    raise
                raise known from None
            del futures[future.key]  # the worker may forget it
            yield result
    finally:  # Ctrl-C, a failed unit or a closed generator: nothing left running
        client.cancel([*futures.values(), *shipped])
