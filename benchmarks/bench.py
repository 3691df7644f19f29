"""Benchmark losscli against DuckDB, polars and pandas + scikit-learn.

How to run (from the repository root)::

    pip install '.[bench]'
    python benchmarks/bench.py                      # every case, 3 interleaved repeats
    python benchmarks/bench.py --sizes small        # leave out the 5e7-row (828 MB) file
    python benchmarks/bench.py --cases regression --sizes small --repeat 1   # quickest check
    python benchmarks/bench.py --cases regression,startup --repeat 5 --markdown
    python benchmarks/bench.py --cases uncertainty --sizes small   # intervals, compare, bootstrap

The first run writes the data sets (deterministic: NumPy ``default_rng`` with fixed seeds) into
``benchmarks/data/`` (git-ignored; ``--data-dir`` to move it; about 2.2 GB for everything) and
later runs reuse every file whose row count is right. pandas + scikit-learn needs about 7.5 GiB
of memory on the multiclass case and 4.5 GiB on the 5e7-row file.

Every measured command is a whole separate process, so each one pays its own interpreter start
and imports, as a user at a shell does. The children are started by ``spawn.py``, a lean helper
(see there why), which measures the wall time around each one and reads its peak RSS as the
``ru_maxrss`` of ``os.wait4``. The commands of a case run round-robin (losscli, duckdb, polars,
pandas, then again) ``--repeat`` times, after the input file has been read once so that it sits
in the page cache for everybody. Tables give the median wall time, the median peak RSS and the
ratio losscli / peer (above 1: losscli is slower or bigger), then a cross-check of the loss values.
Peers run with their defaults, so DuckDB and polars use every core.

The peers live in ``benchmarks/peers.py`` and import their tool only inside the child. losscli is
run as ``python -m losscli`` from the repository root; if it fails, its row says why and the peers
are still measured. Progress goes to stderr, the report to stdout.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.metadata
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
PEERS_SCRIPT = BENCH_DIR / "peers.py"
SPAWN_SCRIPT = BENCH_DIR / "spawn.py"
DEFAULT_DATA_DIR = BENCH_DIR / "data"

LOSSCLI = (sys.executable, "-m", "losscli")
PEER_TOOLS = ("duckdb", "polars", "pandas")
ALL_TOOLS = ("losscli", *PEER_TOOLS)
ALL_CASE_GROUPS = ("regression", "csv", "binary", "multiclass", "startup", "uncertainty")
REGRESSION_LOSSES = ("mse", "mae", "huber")
N_CLASSES = 100
AGREEMENT_RTOL = 1e-9  # loss values further apart than this are flagged MISMATCH
SLICE_ROWS = 1_000_000  # rows generated and written at a time (one row group for Parquet)
ENV_VARS_SHOWN = (
    "OPENBLAS_CORETYPE",
    "OPENBLAS_L2_SIZE",
    "OPENBLAS_NUM_THREADS",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "POLARS_MAX_THREADS",
)

# ---------------------------------------------------------------------------------------------
# Data sets
# ---------------------------------------------------------------------------------------------


def _regression_slices(rows: int, seed: int) -> Iterator[pa.Table]:
    """``y`` ~ 50 + 10 N(0, 1); ``y_hat`` = y + Student-t(df=3) noise (heavy tails, finite MSE)."""
    rng = np.random.default_rng(seed)
    for start in range(0, rows, SLICE_ROWS):
        n = min(SLICE_ROWS, rows - start)
        y = 50.0 + 10.0 * rng.standard_normal(n)
        y_hat = y + rng.standard_t(3.0, n)
        yield pa.table({"y": y, "y_hat": y_hat})


def _two_model_slices(rows: int, seed: int) -> Iterator[pa.Table]:
    """As the regression data, and a second model ``y_hat2`` = y_hat + 0.1 N(0, 1) (slightly
    worse, per row close to the first: the paired comparison's case)."""
    rng = np.random.default_rng(seed)
    for start in range(0, rows, SLICE_ROWS):
        n = min(SLICE_ROWS, rows - start)
        y = 50.0 + 10.0 * rng.standard_normal(n)
        y_hat = y + rng.standard_t(3.0, n)
        yield pa.table({"y": y, "y_hat": y_hat, "y_hat2": y_hat + 0.1 * rng.standard_normal(n)})


def _binary_slices(rows: int, seed: int) -> Iterator[pa.Table]:
    """``label`` 0/1 with ~10% positives; ``logit`` a noisy score that separates them somewhat."""
    rng = np.random.default_rng(seed)
    for start in range(0, rows, SLICE_ROWS):
        n = min(SLICE_ROWS, rows - start)
        label = (rng.random(n) < 0.1).astype(np.int64)
        logit = np.where(label == 1, 0.5, -3.0) + 1.5 * rng.standard_normal(n)
        yield pa.table({"label": label, "logit": logit})


def _multiclass_slices(rows: int, seed: int) -> Iterator[pa.Table]:
    """``logit_0..logit_99`` N(0, 1) with +3 on the true class; ``label`` the int64 class index."""
    rng = np.random.default_rng(seed)
    slice_rows = SLICE_ROWS // 10  # 1e5 x 101 float64 columns is already 80 MB
    for start in range(0, rows, slice_rows):
        n = min(slice_rows, rows - start)
        logits = rng.standard_normal((N_CLASSES, n))  # class-major: each column is contiguous
        label = rng.integers(0, N_CLASSES, n, dtype=np.int64)
        logits[label, np.arange(n)] += 3.0
        columns: dict[str, np.ndarray] = {f"logit_{k}": logits[k] for k in range(N_CLASSES)}
        columns["label"] = label
        yield pa.table(columns)


@dataclass(frozen=True)
class Dataset:
    """One generated input file."""

    filename: str
    rows: int
    seed: int
    slices: Callable[[int, int], Iterator[pa.Table]]

    @property
    def is_csv(self) -> bool:
        return self.filename.endswith(".csv")

    def path(self, data_dir: Path) -> Path:
        return data_dir / self.filename


REG_5E6 = Dataset("regression_5e6.parquet", 5_000_000, 1001, _regression_slices)
REG_5E7 = Dataset("regression_5e7.parquet", 50_000_000, 1002, _regression_slices)
BINARY_1E7 = Dataset("binary_1e7.parquet", 10_000_000, 1003, _binary_slices)
MULTI_1E6 = Dataset("multiclass_1e6x100.parquet", 1_000_000, 1004, _multiclass_slices)
REG_CSV_5E6 = Dataset("regression_5e6.csv", 5_000_000, 1005, _regression_slices)
REG_CSV_1E4 = Dataset("regression_1e4.csv", 10_000, 1006, _regression_slices)
TWO_5E6 = Dataset("two_models_5e6.parquet", 5_000_000, 1007, _two_model_slices)
TWO_5E7 = Dataset("two_models_5e7.parquet", 50_000_000, 1008, _two_model_slices)
#: Rows and replicates of the bootstrap throughput command (a row-replicate is one row's weight
#: in one replicate, for every loss).
BOOT_ROWS_DS = Dataset("two_models_5e5.parquet", 500_000, 1009, _two_model_slices)
BOOT_SAMPLES = 200


def _existing_rows(path: Path, is_csv: bool) -> int | None:
    """Row count of an existing data file, or None when it is missing or unreadable."""
    if not path.exists():
        return None
    if is_csv:
        newlines = 0
        with path.open("rb") as f:
            while chunk := f.read(1 << 24):
                newlines += chunk.count(b"\n")
        return newlines - 1  # header line
    try:
        return int(pq.ParquetFile(path).metadata.num_rows)
    except (OSError, pa.ArrowException):
        return None


def ensure_dataset(ds: Dataset, data_dir: Path) -> Path:
    """Write ``ds`` unless a file with the right row count is already there; return its path."""
    path = ds.path(data_dir)
    if _existing_rows(path, ds.is_csv) == ds.rows:
        return path
    data_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    _log(f"generating {path} ({ds.rows:,} rows) ...")
    t0 = time.perf_counter()
    slices = ds.slices(ds.rows, ds.seed)
    first = next(slices)
    if ds.is_csv:
        with pacsv.CSVWriter(tmp, first.schema) as csv_writer:
            csv_writer.write_table(first)
            for table in slices:
                csv_writer.write_table(table)
    else:
        with pq.ParquetWriter(tmp, first.schema) as pq_writer:
            pq_writer.write_table(first, row_group_size=first.num_rows)
            for table in slices:
                pq_writer.write_table(table, row_group_size=table.num_rows)
    os.replace(tmp, path)
    _log(f"  wrote {_human_size(path.stat().st_size)} in {time.perf_counter() - t0:.1f} s")
    return path


def _warm_page_cache(path: Path) -> None:
    """Read the file once so that no command pays for the first read from disk."""
    with path.open("rb") as f:
        while f.read(1 << 24):
            pass


# ---------------------------------------------------------------------------------------------
# Commands and cases
# ---------------------------------------------------------------------------------------------

Parser = Callable[[str], list[float]]


def _parse_losscli_json(stdout: str) -> list[float]:
    return [float(entry["value"]) for entry in json.loads(stdout)["losses"]]


def _parse_compare_json(stdout: str) -> list[float]:
    """The baseline values of a compare (they must equal eval's)."""
    return [float(entry["baseline"]) for entry in json.loads(stdout)["losses"]]


def _parse_json_list(stdout: str) -> list[float]:
    return [float(v) for v in json.loads(stdout)]


@dataclass(frozen=True)
class Command:
    """One measured child process. ``parse`` turns its stdout into loss values (None: unchecked)."""

    label: str
    tool: str  # "losscli", a peer name, or "python" for baselines
    argv: tuple[str, ...]
    parse: Parser | None = None
    max_runs: int | None = None


@dataclass(frozen=True)
class Case:
    """A group of commands that answer the same question on the same input."""

    key: str
    group: str
    title: str
    dataset: Dataset
    loss_names: tuple[str, ...]
    commands: tuple[Command, ...]
    subject: str  # label of the losscli command the ratios are computed against


def _losscli_eval(path: Path, *args: str) -> tuple[str, ...]:
    return (*LOSSCLI, "eval", str(path), *args, "--format", "json", "--quiet")


def _peer(tool: str, task: str, path: Path, max_runs: int | None = None) -> Command:
    argv = (sys.executable, str(PEERS_SCRIPT), tool, task, str(path), str(N_CLASSES))
    label = "pandas+sklearn" if tool == "pandas" else tool
    return Command(label, tool, argv, _parse_json_list, max_runs)


def _loss_flags(names: Sequence[str]) -> tuple[str, ...]:
    return tuple(arg for name in names for arg in ("--loss", name))


def _regression_case(
    key: str, group: str, title: str, ds: Dataset, data_dir: Path, pandas_runs: int | None
) -> Case:
    path = ds.path(data_dir)
    losscli = Command(
        "losscli",
        "losscli",
        _losscli_eval(path, *_loss_flags(REGRESSION_LOSSES)),
        _parse_losscli_json,
    )
    peers = tuple(
        _peer(t, "regression", path, pandas_runs if t == "pandas" else None) for t in PEER_TOOLS
    )
    return Case(key, group, title, ds, REGRESSION_LOSSES, (losscli, *peers), "losscli")


def _logit_case(key: str, group: str, title: str, ds: Dataset, d: Path, pred: str,
                loss: str) -> Case:
    """A classification case on logits: one loss, label as the target."""
    path = ds.path(d)
    argv = _losscli_eval(path, "--pred", pred, "--target", "label", "--loss", loss, "--logits")
    cmds = (
        Command("losscli", "losscli", argv, _parse_losscli_json),
        *(_peer(t, group, path) for t in PEER_TOOLS),
    )
    return Case(key, group, title, ds, (loss,), cmds, "losscli")


def build_cases(args: argparse.Namespace) -> list[Case]:
    """The cases selected by ``--cases`` and ``--sizes``, in a fixed order."""
    d: Path = args.data_dir
    groups: set[str] = set(args.cases)
    cases: list[Case] = []
    if "regression" in groups:
        cases.append(
            _regression_case(
                "regression-5e6",
                "regression",
                "Regression, 5e6 rows Parquet: mse + mae + huber",
                REG_5E6,
                d,
                None,
            )
        )
        if args.sizes == "all":
            cases.append(
                _regression_case(
                    "regression-5e7",
                    "regression",
                    "Regression, 5e7 rows Parquet: mse + mae + huber",
                    REG_5E7,
                    d,
                    args.pandas_big_repeat,
                )
            )
    if "csv" in groups:
        cases.append(
            _regression_case(
                "csv-5e6",
                "csv",
                "Regression, 5e6 rows CSV: mse + mae + huber",
                REG_CSV_5E6,
                d,
                None,
            )
        )
    if "binary" in groups:
        cases.append(_logit_case("binary-1e7", "binary",
                                 "Binary, 1e7 rows Parquet: BCE with logits",
                                 BINARY_1E7, d, "logit", "bce"))
    if "multiclass" in groups:
        cases.append(_logit_case("multiclass-1e6x100", "multiclass",
                                 "Multiclass, 1e6 rows x 100 logits Parquet: CCE with logits",
                                 MULTI_1E6, d, "logit_*", "cce"))
    if "startup" in groups:
        path = REG_CSV_1E4.path(d)
        eval_argv = _losscli_eval(path, *_loss_flags(REGRESSION_LOSSES))
        cmds = (
            Command("losscli --help", "losscli", (*LOSSCLI, "--help")),
            Command("losscli eval 1e4 CSV", "losscli", eval_argv, _parse_losscli_json),
            Command("python -c pass", "python", (sys.executable, "-c", "pass")),
            Command(
                "import numpy, pyarrow.csv",
                "python",
                (sys.executable, "-c", "import numpy, pyarrow.csv"),
            ),
            *(_peer(t, "regression", path) for t in PEER_TOOLS),
        )
        cases.append(
            Case(
                "startup",
                "startup",
                "Start-up: --help and a 1e4-row CSV",
                REG_CSV_1E4,
                REGRESSION_LOSSES,
                cmds,
                "losscli eval 1e4 CSV",
            )
        )
    if "uncertainty" in groups:
        sizes = [("5e6", TWO_5E6)] + ([("5e7", TWO_5E7)] if args.sizes == "all" else [])
        flags = _loss_flags(REGRESSION_LOSSES)
        for label, ds in sizes:
            path = ds.path(d)
            ev = (*LOSSCLI, "eval", str(path), "--pred", "y_hat", "--target", "y", *flags)
            cmp_argv = (*LOSSCLI, "compare", str(path), "--baseline-pred", "y_hat", "--pred",
                        "y_hat2", "--target", "y", *flags, "--format", "json", "--quiet")
            cmds = (
                Command("eval --ci none", "losscli", (*ev, "--ci", "none", "--format", "json",
                                                      "--quiet"), _parse_losscli_json),
                Command("eval (johnson CI)", "losscli", (*ev, "--format", "json", "--quiet"),
                        _parse_losscli_json),
                Command("compare 2 columns", "losscli", cmp_argv, _parse_compare_json),
                Command("recommend", "losscli", (*LOSSCLI, "recommend", str(path), "--pred",
                                                 "y_hat", "--target", "y", "--format", "json",
                                                 "--quiet")),
            )
            cases.append(Case(f"uncertainty-{label}", "uncertainty",
                              f"Intervals and compare, {label} rows Parquet: mse + mae + huber",
                              ds, REGRESSION_LOSSES, cmds, "eval --ci none"))
        path = BOOT_ROWS_DS.path(d)
        ev = (*LOSSCLI, "eval", str(path), "--pred", "y_hat", "--target", "y",
              *_loss_flags(REGRESSION_LOSSES), "--format", "json", "--quiet")
        cases.append(Case(
            "bootstrap-5e5", "uncertainty",
            f"Bootstrap, 5e5 rows Parquet, B = {BOOT_SAMPLES}: mse + mae + huber", BOOT_ROWS_DS,
            REGRESSION_LOSSES,
            (Command("eval --ci none", "losscli", (*ev, "--ci", "none"), _parse_losscli_json),
             Command("eval --ci bootstrap", "losscli",
                     (*ev, "--ci", "bootstrap", "--bootstrap-samples", str(BOOT_SAMPLES)),
                     _parse_losscli_json)),
            "eval --ci none"))
    tools = set(args.tools) | {"python"}
    return [
        dataclasses.replace(c, commands=tuple(cmd for cmd in c.commands if cmd.tool in tools))
        for c in cases
    ]


# ---------------------------------------------------------------------------------------------
# Running one child
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunResult:
    wall_s: float
    maxrss_kib: int
    returncode: int
    stdout: str
    stderr: str
    timed_out: bool


class Spawner:
    """Runs children through ``spawn.py``, a lean helper process, and returns their cost.

    A child forked from this process would report this process's ~100 MiB (NumPy, pyarrow) as
    part of its own peak RSS; see ``spawn.py``. Children run from the repository root with this
    process's environment; their stdout and stderr go through files, not pipes.
    """

    def __init__(self) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="losscli-bench-")
        self._proc = subprocess.Popen(
            [sys.executable, "-S", "-I", str(SPAWN_SCRIPT)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=REPO_ROOT,
            text=True,
        )

    def __enter__(self) -> Spawner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._proc.stdin is not None:
            self._proc.stdin.close()
        self._proc.wait(timeout=30)
        self._tmp.cleanup()

    def run(self, argv: Sequence[str], timeout_s: float) -> RunResult:
        out = Path(self._tmp.name, "stdout")
        err = Path(self._tmp.name, "stderr")
        request = {"argv": list(argv), "stdout": str(out), "stderr": str(err), "timeout": timeout_s}
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.write(json.dumps(request) + "\n")
        self._proc.stdin.flush()
        line = self._proc.stdout.readline()
        if not line:
            raise RuntimeError("the spawn.py helper died; see its traceback above")
        reply = json.loads(line)
        if "error" in reply:
            return RunResult(0.0, 0, -1, "", reply["error"], False)
        return RunResult(
            wall_s=reply["wall_s"],
            maxrss_kib=reply["maxrss_kib"],
            returncode=reply["returncode"],
            stdout=out.read_text(errors="replace"),
            stderr=err.read_text(errors="replace"),
            timed_out=reply["timed_out"],
        )


def _failure_line(result: RunResult, timeout_s: float) -> str:
    """One line that says why a child failed: the exception of a traceback, else stderr's first."""
    if result.timed_out:
        return f"timed out after {timeout_s:g} s"
    lines = [ln.strip() for ln in result.stderr.splitlines() if ln.strip()]
    if not lines:
        return f"exit code {result.returncode}, no stderr"
    line = lines[-1] if lines[0].startswith("Traceback") else lines[0]
    return f"exit {result.returncode}: {line}"


@dataclass
class CommandStats:
    """Everything measured for one command of a case."""

    command: Command
    walls: list[float] = field(default_factory=list)
    rss_mib: list[float] = field(default_factory=list)
    values: list[float] | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and bool(self.walls)

    def record(self, result: RunResult, n_losses: int, timeout_s: float) -> None:
        if result.returncode != 0:
            self.error = _failure_line(result, timeout_s)
            return
        if self.command.parse is not None:
            try:
                values = self.command.parse(result.stdout)
            except (ValueError, KeyError, TypeError) as exc:
                self.error = f"unparsable output ({exc!r}): {result.stdout[:80]!r}"
                return
            if len(values) != n_losses:
                self.error = f"expected {n_losses} loss values, got {values}"
                return
            if self.values is None:
                self.values = values
        self.walls.append(result.wall_s)
        self.rss_mib.append(result.maxrss_kib / 1024)


def run_case(
    spawner: Spawner, case: Case, data_dir: Path, repeat: int, timeout_s: float
) -> list[CommandStats]:
    """Round-robin over the case's commands ``repeat`` times; a failed command is not retried."""
    _warm_page_cache(case.dataset.path(data_dir))
    stats = [CommandStats(cmd) for cmd in case.commands]
    for rep in range(repeat):
        for st in stats:
            limit = st.command.max_runs
            if st.error is not None or (limit is not None and len(st.walls) >= limit):
                continue
            result = spawner.run(st.command.argv, timeout_s)
            st.record(result, len(case.loss_names), timeout_s)
            if st.error is None:
                msg = f"{result.wall_s:7.2f} s {result.maxrss_kib / 1024:8.0f} MiB"
            else:
                msg = f"FAILED {st.error}"
            _log(f"[{case.key}] {rep + 1}/{repeat} {st.command.label:<28} {msg}")
    return stats


def check_lazy_imports(spawner: Spawner, timeout_s: float) -> str:
    """Does ``import losscli.cli`` stay clear of pandas and pyarrow? (design: keep --help fast)"""
    code = "import sys, losscli.cli; print('pandas' in sys.modules, 'pyarrow' in sys.modules)"
    result = spawner.run((sys.executable, "-c", code), timeout_s)
    if result.returncode != 0:
        return f"failed ({_failure_line(result, timeout_s)})"
    words = result.stdout.split()
    if words == ["False", "False"]:
        return "ok: imports neither pandas nor pyarrow"
    if len(words) != 2:
        return f"unexpected output {result.stdout.strip()!r}"
    heavy = [name for name, hit in zip(("pandas", "pyarrow"), words, strict=True) if hit == "True"]
    return "NOT ok: imports " + " and ".join(heavy)


# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------


def render_table(headers: Sequence[str], rows: Sequence[Sequence[str]], markdown: bool) -> str:
    """A markdown table, or the same table as aligned plain text. Numeric-looking columns align
    right."""

    def is_number(cell: str) -> bool:
        try:
            float(cell.removesuffix("x").replace(",", ""))
        except ValueError:
            return False
        return True

    def numeric(col: int) -> bool:
        cells = [r[col] for r in rows if r[col] not in ("", "-", "failed")]
        return bool(cells) and all(is_number(c) for c in cells)

    right = [numeric(i) for i in range(len(headers))]
    if markdown:
        lines = [
            "| " + " | ".join(headers) + " |",
            "|" + "|".join("---:" if r else "---" for r in right) + "|",
        ]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        return "\n".join(lines)
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]

    def fmt(cells: Sequence[str]) -> str:
        return "  ".join(
            c.rjust(w) if r else c.ljust(w) for c, w, r in zip(cells, widths, right, strict=True)
        ).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([fmt(headers), rule, *(fmt(r) for r in rows)])


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b > 0 else "-"


def timing_table(case: Case, stats: list[CommandStats], markdown: bool) -> str:
    subject = next((s for s in stats if s.command.label == case.subject and s.ok), None)
    headers = [
        "tool",
        "median wall s",
        "min wall s",
        "peak RSS MiB",
        "runs",
        "losscli/tool time",
        "losscli/tool RSS",
    ]
    rows: list[list[str]] = []
    for st in stats:
        if not st.ok:
            rows.append([st.command.label, "failed", "-", "-", "-", "-", "-"])
            continue
        wall = statistics.median(st.walls)
        rss = statistics.median(st.rss_mib)
        ratio_t = ratio_r = "-"
        if subject is not None and st.command.tool != "losscli":
            ratio_t = _ratio(statistics.median(subject.walls), wall)
            ratio_r = _ratio(statistics.median(subject.rss_mib), rss)
        rows.append(
            [
                st.command.label,
                f"{wall:.2f}",
                f"{min(st.walls):.2f}",
                f"{rss:.0f}",
                str(len(st.walls)),
                ratio_t,
                ratio_r,
            ]
        )
    return render_table(headers, rows, markdown)


def cost_table(case: Case, stats: list[CommandStats], markdown: bool) -> str:
    """Each losscli variant's median time over the case's plain eval (the interval budget is
    +10%, compare's 1.6x), and for the bootstrap its throughput in row-replicates per second
    of extra time."""
    base = next((s for s in stats if s.command.label == case.subject and s.ok), None)
    if base is None:
        return "(no plain eval to compare with)"
    t0 = statistics.median(base.walls)
    rows = []
    for st in stats:
        if st is base or not st.ok:
            continue
        t = statistics.median(st.walls)
        extra = ""
        if "bootstrap" in st.command.label and t > t0:
            rate = case.dataset.rows * BOOT_SAMPLES / (t - t0)
            extra = f"{rate:.3g} row-replicates/s (all three losses)"
        rows.append([st.command.label, f"{t / t0:.2f}x", extra])
    return render_table([f"vs {case.subject}", "time ratio", "bootstrap throughput"], rows,
                        markdown)


def crosscheck_table(case: Case, stats: list[CommandStats], markdown: bool) -> str:
    """Loss values of every tool and each one's relative difference from the reference tool
    (losscli when it ran, else the first peer that did)."""
    valued = [s for s in stats if s.ok and s.values is not None]
    if not valued:
        return "(no loss values to compare)"
    ref = next((s for s in valued if s.command.label == case.subject), valued[0])
    headers = ["loss", *(s.command.label for s in valued), f"max rel diff vs {ref.command.label}"]
    rows: list[list[str]] = []
    for i, name in enumerate(case.loss_names):
        assert ref.values is not None
        r = ref.values[i]
        diffs = [abs(s.values[i] - r) / max(abs(r), 1e-300) for s in valued if s.values]
        worst = max(diffs)
        flag = "" if worst <= AGREEMENT_RTOL else " MISMATCH"
        rows.append(
            [name, *(f"{s.values[i]:.12g}" for s in valued if s.values), f"{worst:.1e}{flag}"]
        )
    return render_table(headers, rows, markdown)


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _mem_total_gib() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024**2:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def _git_commit() -> str:
    """HEAD's short hash, marked when losscli/ has uncommitted changes (they are what runs)."""

    def git(*args: str) -> str:
        out = subprocess.run(
            ["git", "-C", str(REPO_ROOT), *args],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        )
        return out.stdout.strip()

    try:
        commit = git("rev-parse", "--short", "HEAD")
        dirty = git("status", "--porcelain", "--", "losscli")
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{commit} + uncommitted changes in losscli/" if dirty else commit


def header_lines() -> list[str]:
    """What the numbers were measured on."""
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else "?"
    versions = ", ".join(
        f"{name} {_version(name)}"
        for name in ("numpy", "pyarrow", "duckdb", "polars", "pandas", "scikit-learn", "scipy")
    )
    env = ", ".join(f"{k}={os.environ.get(k, '(unset)')}" for k in ENV_VARS_SHOWN)
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return [
        f"python {platform.python_version()} ({sys.executable}) on {platform.platform()}",
        f"cpu: {_cpu_model()}; nproc {os.cpu_count()} (usable {affinity}); "
        f"memory {_mem_total_gib()}",
        f"versions: losscli commit {_git_commit()}, {versions}",
        f"environment: {env}",
        f"load average at start: {load}",
    ]


def _human_size(n_bytes: int) -> str:
    return f"{n_bytes / 1e6:,.0f} MB" if n_bytes >= 10**6 else f"{n_bytes / 1e3:,.0f} kB"


def print_case(case: Case, stats: list[CommandStats], data_dir: Path, markdown: bool) -> None:
    path = case.dataset.path(data_dir)
    size = _human_size(path.stat().st_size) if path.exists() else "?"
    title = f"{case.title} ({path.name}, {size})"
    print(f"### {title}" if markdown else f"== {title} ==")
    print()
    print(timing_table(case, stats, markdown))
    print()
    if case.group == "uncertainty":
        print(cost_table(case, stats, markdown))
        print()
    for st in stats:
        if st.error is not None:
            print(f"{st.command.label} failed: {st.error}")
            print(f"  command: {shlex.join(st.command.argv)}")
    if any(st.error is not None for st in stats):
        print()
    print("Loss values:" if not markdown else "Loss values:\n")
    print(crosscheck_table(case, stats, markdown))
    print()


# ---------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _csv_list(allowed: Sequence[str]) -> Callable[[str], list[str]]:
    def parse(text: str) -> list[str]:
        items = [t.strip() for t in text.split(",") if t.strip()]
        bad = [t for t in items if t not in allowed]
        if bad or not items:
            raise argparse.ArgumentTypeError(
                f"expected a comma-separated subset of {','.join(allowed)}, got {text!r}"
            )
        return items

    return parse


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Benchmark losscli against DuckDB, polars and pandas + scikit-learn.",
        epilog="Progress goes to stderr; the report to stdout.",
    )
    p.add_argument(
        "--cases",
        type=_csv_list(ALL_CASE_GROUPS),
        default=list(ALL_CASE_GROUPS),
        help="comma-separated subset of %(default)s",
    )
    p.add_argument(
        "--sizes",
        choices=("small", "all"),
        default="all",
        help="small: leave out the 5e7-row regression file (default: all)",
    )
    p.add_argument(
        "--tools",
        type=_csv_list(ALL_TOOLS),
        default=list(ALL_TOOLS),
        help="comma-separated subset of %(default)s",
    )
    p.add_argument("--repeat", type=int, default=3, help="interleaved runs per command (3)")
    p.add_argument(
        "--pandas-big-repeat",
        type=int,
        default=1,
        metavar="N",
        help="runs of pandas+sklearn on the 5e7-row file, which takes GiBs (1)",
    )
    p.add_argument(
        "--data-dir",
        type=Path,
        default=DEFAULT_DATA_DIR,
        help="where the generated files live (default: benchmarks/data)",
    )
    p.add_argument("--timeout", type=float, default=900.0, help="seconds per child (900)")
    p.add_argument("--markdown", action="store_true", help="print the tables as markdown")
    p.add_argument("--generate-only", action="store_true", help="write the data and stop")
    p.add_argument("--json-out", type=Path, help="also write every measurement to this file")
    args = p.parse_args(argv)
    if args.repeat < 1 or args.pandas_big_repeat < 1:
        p.error("--repeat and --pandas-big-repeat must be at least 1")
    return args


def compile_losscli() -> None:
    """Write losscli's bytecode first, as ``pip install`` does: an editable install run with
    PYTHONDONTWRITEBYTECODE set (as on this machine) would otherwise compile every module at
    every start, about 40 ms, which no installed user pays."""
    import compileall
    import importlib.util

    spec = importlib.util.find_spec("losscli")
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            compileall.compile_dir(location, quiet=1)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    args.data_dir = args.data_dir.resolve()
    cases = build_cases(args)
    for case in cases:
        ensure_dataset(case.dataset, args.data_dir)
    if args.generate_only:
        return 0
    compile_losscli()

    md = args.markdown
    print("## losscli benchmark" if md else "losscli benchmark")
    print()
    header = header_lines()
    for line in header:
        print(f"- {line}" if md else line)
    repeats = f"repeats: {args.repeat}, interleaved"
    print(f"- {repeats}" if md else repeats)
    print()

    results: dict[str, list[dict[str, object]]] = {}
    with Spawner() as spawner:
        for case in cases:
            stats = run_case(spawner, case, args.data_dir, args.repeat, args.timeout)
            print_case(case, stats, args.data_dir, md)
            if case.group == "startup" and "losscli" in args.tools:
                verdict = check_lazy_imports(spawner, args.timeout)
                print(f"`import losscli.cli` without pandas/pyarrow: {verdict}")
                print()
            sys.stdout.flush()
            results[case.key] = [
                {
                    "label": s.command.label,
                    "argv": shlex.join(s.command.argv),
                    "wall_s": s.walls,
                    "peak_rss_mib": s.rss_mib,
                    "values": s.values,
                    "error": s.error,
                }
                for s in stats
            ]
    if args.json_out is not None:
        report = {"header": header, "repeat": args.repeat, "cases": results}
        args.json_out.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
