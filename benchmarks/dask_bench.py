"""The Dask executor against the default path, and what a task costs.

How to run (from the repository root, with ``pip install '.[dask]'``)::

    python benchmarks/dask_bench.py               # 5e7 rows in 16 files, 2 repeats
    python benchmarks/dask_bench.py --rows 4e6    # a quick check

It writes ``--rows`` rows (y, pred: float64) in 16 Parquet files under ``benchmarks/data/``
(deterministic; reused when present), then measures, interleaved, as whole processes:
``losscli eval DIR`` (the thread pipeline) and ``losscli eval DIR --scheduler local:2`` (a
LocalCluster of two worker processes, started by the command). In this process, with one
cluster already running: the same eval through the executor (no cluster start-up), the
scheduler's cost of a task (1,000 trivial futures) and the bytes a unit's result carries back
(its pickled tree nodes). The load average before and after says how busy the machine was.
"""

from __future__ import annotations

import argparse
import logging
import os
import pickle
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent
LOSSES = ["--loss", "mse", "--loss", "mae", "--loss", "huber"]


def write(rows: int, files: int, out: Path) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    out.mkdir(parents=True, exist_ok=True)
    per = rows // files
    rng = np.random.default_rng(21)
    for i in range(files):
        path = out / f"part-{i:02d}.parquet"
        if path.exists() and pq.ParquetFile(path).metadata.num_rows == per:
            continue
        y = rng.normal(size=per)
        pq.write_table(pa.table({"y": y, "pred": y + 0.3 * rng.normal(size=per)}), path)
    return out


def timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=float, default=5e7)
    ap.add_argument("--files", type=int, default=16)
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    rows = int(args.rows)
    data = write(rows, args.files, ROOT / "data" / f"dask-{rows:.0e}-{args.files}")
    load = os.getloadavg()
    base = [sys.executable, "-m", "losscli", "eval", str(data), *LOSSES, "--format", "json",
            "--no-config"]
    local: list[float] = []
    dask: list[float] = []
    for _ in range(args.repeat):
        local.append(timed(base))
        dask.append(timed([*base, "--scheduler", "local:2"]))
    print(f"{rows:,} rows in {args.files} files, {os.cpu_count()} cores, load average "
          f"{load[0]:.1f} before")
    ratio = statistics.median(dask) / statistics.median(local)
    print(f"  whole processes: default {statistics.median(local):.2f} s, --scheduler local:2 "
          f"{statistics.median(dask):.2f} s (ratio {ratio:.2f})")

    from distributed import Client, LocalCluster

    import losscli
    from losscli.run.dask import DaskExecutor
    from losscli.run.plan import ReadPlan
    from losscli.run.units import run_unit
    from losscli.sources import open_source, resolve_columns

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                      host="127.0.0.1", silence_logs=logging.CRITICAL) as lc, Client(lc) as c:
        ex = DaskExecutor(client=c)
        losses = ["mse", "mae", "huber"]
        inproc = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            losscli.evaluate(str(data), losses=losses, executor=ex)
            inproc.append(time.perf_counter() - start)
        here = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            losscli.evaluate(str(data), losses=losses)
            here.append(time.perf_counter() - start)
        print(f"  in process, cluster running: default {statistics.median(here):.2f} s, "
              f"dask {statistics.median(inproc):.2f} s")
        c.submit(int, 0).result()
        n = 1000
        start = time.perf_counter()
        c.gather(c.map(int, range(n), pure=False))
        per_task = (time.perf_counter() - start) / n
        print(f"  a trivial task: {per_task * 1e3:.2f} ms of scheduler and round trip")

    src = open_source(str(data))
    # the unit's result as a worker sends it: its tree nodes and row count
    plan = ReadPlan(src, resolve_columns(src, "pred", "y", None), 1 << 17)
    red = _reduction(str(data), losses)
    nodes = run_unit(plan, red, plan.units()[0])
    size = len(pickle.dumps(nodes))
    state = pickle.dumps(nodes[0][0][3])
    merges = [(pickle.loads(state), pickle.loads(state)) for _ in range(50)]
    start = time.perf_counter()
    for a, b in merges:
        red.merge(a, b)  # type: ignore[attr-defined]
    merge_ms = (time.perf_counter() - start) / len(merges) * 1e3
    print(f"  a merge of two states on the client: {merge_ms:.2f} ms")
    print(f"  a unit's result ({rows // args.files:,} rows, {len(nodes[0])} tree nodes): "
          f"{size:,} bytes pickled")
    print(f"  load average after: {os.getloadavg()[0]:.1f}")


def _reduction(source: str, losses: list[str]) -> object:
    """eval's reduction for ``losses``, caught from the executor evaluate hands it to."""
    import losscli

    caught: list[object] = []

    class Catch:
        def run(self, plan: object, red: object, progress: object = None) -> object:
            caught.append(red)
            from losscli.run.local import SerialExecutor

            return SerialExecutor().run(plan, red)  # type: ignore[arg-type]

    losscli.evaluate(source + "/part-00.parquet", losses=losses, executor=Catch())
    return caught[0]


if __name__ == "__main__":
    main()
