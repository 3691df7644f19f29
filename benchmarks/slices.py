"""Benchmark ``eval --by``: the cost of slices against the same eval without them and against
DuckDB's and polars' GROUP BY computing the same per-group means.

How to run (from the repository root)::

    pip install '.[bench]'
    python benchmarks/slices.py                    # 5e7 rows, 3 interleaved repeats
    python benchmarks/slices.py --rows 5e6 --repeat 5

The data (written once into ``benchmarks/data/``, deterministic seeds): y ~ N(0, 1), y_hat = y +
N(0, 1), and ``country``, a string column of 100 values. Every command is a whole process
started by ``spawn.py`` (so its peak RSS is its own); the commands run round-robin, after the file
has been read once. Reported: median wall time, median CPU time (user + system of the child) and
median peak RSS, and the ratios losscli --by / peer. The load average of the machine is printed
before and after: the numbers are only as quiet as the machine was.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
LOSSES = ("-l", "mse", "-l", "mae", "-l", "huber")

DUCKDB = """
import sys, duckdb
src = "read_parquet('" + sys.argv[1].replace("'", "''") + "')"
rows = duckdb.connect().execute(
    "SELECT country, avg(e * e), avg(abs(e)), "
    "avg(CASE WHEN abs(e) <= 1 THEN 0.5 * e * e ELSE abs(e) - 0.5 END) "
    f"FROM (SELECT country, y_hat - y AS e FROM {src}) GROUP BY country").fetchall()
print(len(rows))
"""

POLARS = """
import sys, polars as pl
e = pl.col("y_hat") - pl.col("y")
a = e.abs()
q = pl.scan_parquet(sys.argv[1]).group_by("country").agg(
    (e * e).mean().alias("mse"), a.mean().alias("mae"),
    pl.when(a <= 1).then(0.5 * e * e).otherwise(a - 0.5).mean().alias("huber"))
print(q.collect(engine="streaming").height)
"""


def make_data(path: Path, rows: int) -> None:
    """The benchmark file, in pieces of 1e6 rows (row groups of that size)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    names = np.array([f"country_{i:03d}" for i in range(100)])
    schema = pa.schema([("y", pa.float64()), ("y_hat", pa.float64()),
                        ("country", pa.string())])
    tmp = path.with_suffix(".tmp")
    with pq.ParquetWriter(tmp, schema) as w:
        for i, start in enumerate(range(0, rows, 1_000_000)):
            rng = np.random.default_rng([2026, i])
            n = min(1_000_000, rows - start)
            y = rng.normal(size=n)
            w.write_table(pa.table({"y": y, "y_hat": y + rng.normal(size=n),
                                    "country": names[rng.integers(0, 100, n)]},
                                   schema=schema))
    tmp.rename(path)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=float, default=5e7)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--data-dir", type=Path, default=BENCH_DIR / "data")
    args = ap.parse_args(argv)
    rows = int(args.rows)
    args.data_dir.mkdir(parents=True, exist_ok=True)
    path = args.data_dir / f"slices_{rows:.0e}.parquet".replace("+", "")
    if not path.exists():
        print(f"writing {path} ...", file=sys.stderr)
        make_data(path, rows)
    py = sys.executable
    losscli = [py, "-m", "losscli", "eval", str(path), "-p", "y_hat", "-t", "y", *LOSSES,
               "--format", "json", "--quiet"]
    commands = {
        "losscli eval": losscli,
        "losscli eval --by country": [*losscli, "--by", "country"],
        "duckdb GROUP BY": [py, "-c", DUCKDB, str(path)],
        "polars GROUP BY": [py, "-c", POLARS, str(path)],
    }
    path.read_bytes()  # in the page cache for everybody
    spawn = subprocess.Popen([py, "-S", "-I", str(BENCH_DIR / "spawn.py")], cwd=REPO_ROOT,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert spawn.stdin is not None and spawn.stdout is not None
    results: dict[str, list[dict[str, float]]] = {k: [] for k in commands}
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeat):
            for name, argv_ in commands.items():
                out, err = Path(tmp) / "out", Path(tmp) / "err"
                spawn.stdin.write(json.dumps({"argv": argv_, "stdout": str(out),
                                              "stderr": str(err), "timeout": 3600}) + "\n")
                spawn.stdin.flush()
                reply = json.loads(spawn.stdout.readline())
                if reply.get("returncode") != 0:
                    print(f"{name} failed: {err.read_text()[-500:]}", file=sys.stderr)
                    return 1
                results[name].append(reply)
                print(f"repeat {r + 1} {name}: {reply['wall_s']:.2f} s", file=sys.stderr)
    spawn.stdin.close()
    spawn.wait()
    load_after = os.getloadavg()

    def med(name: str, key: str) -> float:
        return statistics.median(x[key] for x in results[name])

    def cpu(name: str) -> float:
        return statistics.median(x.get("user_s", 0.0) + x.get("sys_s", 0.0)
                                 for x in results[name])

    by = "losscli eval --by country"
    print(f"{rows:,} rows, mse + mae + huber, --by a 100-value string column; "
          f"{os.cpu_count()} cores, load average {load_before[0]:.1f} before, "
          f"{load_after[0]:.1f} after; median of {args.repeat}\n")
    print("| command | wall s | CPU s | peak RSS MiB | --by / this (wall) | (CPU) |")
    print("|---|---:|---:|---:|---:|---:|")
    for name in commands:
        print(f"| {name} | {med(name, 'wall_s'):.2f} | {cpu(name):.2f} | "
              f"{med(name, 'maxrss_kib') / 1024:.0f} | "
              f"{med(by, 'wall_s') / med(name, 'wall_s'):.2f} | "
              f"{cpu(by) / cpu(name) if cpu(name) else float('nan'):.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
