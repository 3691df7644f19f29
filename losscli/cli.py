"""The command line: parse flags, call the library, render, map errors to exit codes.

No math lives here. Exit codes: 0 ok, 1 a gate failed, 2 bad input / usage / config, 3 a bug.
"""

from __future__ import annotations

import functools
import io
import os
import sys
import tempfile
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from losscli import __version__
from losscli.errors import LossCliError, UsageError

if TYPE_CHECKING:
    from rich.console import Console

    from losscli.engine import Report

app = typer.Typer(
    name="losscli",
    help="Loss values and gradient statistics for model predictions in CSV / Parquet files.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


class OutputFormat(str, Enum):
    table = "table"
    json = "json"


class NanChoice(str, Enum):
    error = "error"
    drop = "drop"


def boundary(func: Callable[..., None]) -> Callable[..., None]:
    """The one error boundary of a command: user errors become one line on stderr and their
    exit code (2); anything unexpected is a bug: ``internal error`` and exit code 3."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        try:
            func(*args, **kwargs)
        except (typer.Exit, typer.Abort):
            raise
        except LossCliError as exc:
            print(f"losscli: error: {exc}", file=sys.stderr)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            print("losscli: interrupted", file=sys.stderr)
            raise typer.Exit(130) from None
        except BrokenPipeError:
            # The reader went away (e.g. `| head`): nothing left to say.
            sys.stderr.close()
            raise typer.Exit(0) from None
        except Exception as exc:
            if os.environ.get("LOSSCLI_DEBUG"):
                import traceback

                traceback.print_exc()
            print(f"losscli: internal error: {type(exc).__name__}: {exc}\n"
                  "This is a bug in losscli; please report it with the command line "
                  "(LOSSCLI_DEBUG=1 shows the traceback).", file=sys.stderr)
            raise typer.Exit(3) from None

    return wrapper


def _version(value: bool) -> None:
    if value:
        typer.echo(f"losscli {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """Evaluate losses and their gradients over prediction files; recommend a loss."""


def stdout_console() -> Console:
    """A console on stdout: colour only on a terminal and never with NO_COLOR; wide when
    redirected so tables are not wrapped at 80 columns."""
    from rich.console import Console

    terminal = sys.stdout.isatty()
    return Console(file=sys.stdout, width=None if terminal else 240, soft_wrap=False,
                   no_color="NO_COLOR" in os.environ or not terminal,
                   highlight=False)


def stderr_console() -> Console:
    from rich.console import Console

    return Console(file=sys.stderr, highlight=False,
                   no_color="NO_COLOR" in os.environ or not sys.stderr.isatty())


def plain_text(render: Any) -> str:
    """Render Rich output to uncoloured text (for --output files)."""
    from rich.console import Console

    buf = io.StringIO()
    console = Console(file=buf, width=240, no_color=True, color_system=None, soft_wrap=False,
                      highlight=False)
    render(console)
    return buf.getvalue()


def write_output(text: str, path: Path) -> None:
    """Write a whole file or nothing: a temporary file beside it, then an atomic rename."""
    target = path.resolve()
    if target.is_dir():
        raise UsageError(f"--output {path} is a directory")
    if not target.parent.is_dir():
        raise UsageError(f"--output {path}: directory {target.parent} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _input_bytes(source: str) -> int:
    if source == "-":
        return 0
    p = Path(source)
    try:
        if p.is_dir():
            return sum(f.stat().st_size for f in p.rglob("*") if f.is_file())
        return p.stat().st_size
    except OSError:
        return 0


class _Progress:
    """A transient progress line on stderr, for long inputs on a terminal only."""

    def __init__(self, enabled: bool) -> None:
        self.bar: Any = None
        self.task: Any = None
        if enabled:
            from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

            self.bar = Progress(SpinnerColumn(), TextColumn("{task.description}"),
                                TextColumn("{task.completed:,} rows"), TimeElapsedColumn(),
                                console=stderr_console(), transient=True)
            self.task = self.bar.add_task("reading")

    def __enter__(self) -> _Progress:
        if self.bar is not None:
            self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()

    def update(self, rows: int) -> None:
        if self.bar is not None:
            self.bar.update(self.task, completed=rows)


def _emit(text: str, output: Path | None) -> None:
    if output is None:
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        write_output(text, output)


def _warn(report: Report, quiet: bool) -> None:
    if quiet:
        return
    for w in report.warnings:
        print(f"losscli: warning: {w}", file=sys.stderr)


Source = Annotated[str, typer.Argument(metavar="SOURCE",
    help="CSV (.csv, .csv.gz, .tsv), Parquet file or directory, Arrow IPC / Feather, "
         "or - for CSV on stdin.", show_default=False)]
PredOpt = Annotated[str | None, typer.Option(
    "--pred", "-p", help="Prediction column; for multiclass a comma list, a glob such as "
    "'prob_*' (quote it) or a list column. Default: a recognised name.")]
TargetOpt = Annotated[str | None, typer.Option(
    "--target", "-t", help="Target column. Default: a recognised name (y, target, label, ...).")]
WeightOpt = Annotated[str | None, typer.Option("--weight", "-w", help="Sample-weight column.")]
NanOpt = Annotated[NanChoice, typer.Option(
    "--nan", help="Rows with NaN, inf or empty cells: error (default) or drop and report.")]
ChunkOpt = Annotated[int | None, typer.Option(
    "--chunk-rows", help="Rows per chunk (speed and memory only; results do not change).")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q",
                                        help="Print nothing but the result.")]
OutputOpt = Annotated[Path | None, typer.Option(
    "--output", "-o", help="Write the result to this file (whole, atomically) "
    "instead of stdout.", dir_okay=False)]


@app.command("eval")
@boundary
def eval_cmd(
    source: Source,
    pred: PredOpt = None,
    target: TargetOpt = None,
    weight: WeightOpt = None,
    loss: Annotated[list[str] | None, typer.Option(
        "--loss", "-l", help="Loss spec, repeatable: huber, 'huber:delta=2', 'quantile:q=0.9', "
        "'0.7*mse+0.3*mae'. Default: every loss of the detected task. See `losscli losses`.",
    )] = None,
    logits: Annotated[bool, typer.Option(
        "--logits", help="Predictions are logits (bce, focal, cce use log-sigmoid / "
        "log-sum-exp and never clip).")] = False,
    nan: NanOpt = NanChoice.error,
    chunk_rows: ChunkOpt = None,
    vanish_tol: Annotated[float, typer.Option(
        "--vanish-tol", help="|g| at or below this counts as vanishing.")] = 1e-6,
    explode_tol: Annotated[float, typer.Option(
        "--explode-tol", help="|g| at or above this counts as exploding.")] = 1e3,
    grad_clip: Annotated[float | None, typer.Option(
        "--grad-clip", help="Report the fraction of |g| above this clip value.")] = None,
    fmt: Annotated[OutputFormat, typer.Option("--format", "-f", help="Output format.")
                   ] = OutputFormat.table,
    output: OutputOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Evaluate losses and gradient statistics over a prediction file, in one streaming pass."""
    from losscli.engine import DEFAULT_CHUNK_ROWS, evaluate

    show_progress = (not quiet and sys.stderr.isatty() and _input_bytes(source) > 64 << 20)
    with _Progress(show_progress) as progress:
        report = evaluate(
            source, pred, target, weight, loss or None, logits=logits, nan=nan.value,
            chunk_rows=DEFAULT_CHUNK_ROWS if chunk_rows is None else chunk_rows,
            vanish_tol=vanish_tol, explode_tol=explode_tol, grad_clip=grad_clip,
            progress=progress.update if show_progress else None)
    _warn(report, quiet)
    if fmt is OutputFormat.json:
        from losscli.render.json import dumps

        _emit(dumps(report.to_dict()), output)
        return
    from losscli.render.table import print_eval

    if output is not None:
        _emit(plain_text(lambda c: print_eval(report, c)), output)
    else:
        print_eval(report, stdout_console())


@app.command("losses")
@boundary
def losses_cmd(
    fmt: Annotated[OutputFormat, typer.Option("--format", "-f", help="Output format.")
                   ] = OutputFormat.table,
) -> None:
    """The loss catalog: formulas, parameters, gradients and pinned conventions."""
    from losscli.losses import CATALOG, EPS

    if fmt is OutputFormat.json:
        from losscli.render.json import dumps

        doc = {"schema": "losscli.losses/1", "eps": EPS, "losses": [
            {"name": d.name, "task": d.task, "summary": d.summary, "formula": d.formula,
             "gradient": d.gradient, "aliases": list(d.aliases),
             "params": [{"name": p.name, "default": p.default, "valid": p.valid_text,
                         "doc": p.doc} for p in d.params]} for d in CATALOG.values()]}
        sys.stdout.write(dumps(doc))
        return
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="losscli losses", title_justify="left", show_lines=True,
                  header_style="bold")
    for name in ("loss", "task", "parameters", "per-sample loss l", "gradient g = dl/dpred"):
        table.add_column(name)
    for d in CATALOG.values():
        params = "\n".join(f"{p.name}={p.default} ({p.valid_text})" for p in d.params) or "-"
        names = d.name + (f"\n({', '.join(d.aliases)})" if d.aliases else "")
        table.add_row(names, d.task, params, escape(d.formula), escape(d.gradient))
    console = stdout_console()
    console.print(table)
    console.print(
        f"e = prediction - target. Reported value: sum(w l) / sum(w) (rmse: its square root). "
        f"Probabilities are clipped to [eps, 1 - eps], eps = {EPS:.6g} (float64 machine epsilon, "
        "as scikit-learn's log_loss); logits are never clipped. Weighted sums: "
        "'0.7*mse+0.3*mae'. Gradient statistics are over rows (row L2 norm for multiclass); "
        "norm is the L2 norm of the gradient of the reduced, weighted loss.")


def run(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code instead of exiting (for tests and embedding)."""
    try:
        app(args=argv, prog_name="losscli")
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    return 0


def main() -> None:
    app(prog_name="losscli")
