"""The command line: parse flags, call the library, render, map errors to exit codes.

No math lives here. Exit codes: 0 ok, 1 a gate failed, 2 bad input / usage / config, 3 a bug.
"""

from __future__ import annotations

import functools
import io
import math
import os
import stat
import sys
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import IO, TYPE_CHECKING, Annotated, Any, cast

import typer

from losscli._version import __version__
from losscli.errors import LossCliError, UsageError

if TYPE_CHECKING:
    from rich.console import Console

    from losscli.engine import Report
    from losscli.settings import Settings

app = typer.Typer(
    name="losscli",
    help="Loss values and gradient statistics for model predictions in CSV / Parquet files.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog="Examples:\n  losscli eval sample_data/regression.parquet\n  losscli recommend "
           "preds.parquet\n  losscli compare base.parquet cand.parquet\n\nEach command: "
           "losscli COMMAND --help",
)


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
            say(f"losscli: error: {exc}")
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            say("losscli: interrupted")
            raise typer.Exit(130) from None
        except BrokenPipeError:
            # The reader went away (e.g. `| head`): nothing left to say.
            stdout_gone()
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


def stdout_gone() -> None:
    """The reader of stdout went away: point it at /dev/null, so that later writes and the
    final flush neither fail nor print a second error."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # no file descriptor (an in-process capture)
        pass


def say(text: str) -> None:
    """One message on stderr. On a terminal it is wrapped at the terminal's width ($COLUMNS
    when set) between words, later lines indented, so that the terminal never breaks it inside
    a word or a number; in a pipe or a file it stays one line (a log greps it whole)."""
    stream = sys.stderr
    try:
        tty = stream.isatty()
    except (AttributeError, ValueError):
        tty = False
    if tty:
        import textwrap

        columns = os.environ.get("COLUMNS", "")
        try:
            width = int(columns) if columns.isdigit() else os.get_terminal_size(
                stream.fileno()).columns
        except (OSError, ValueError):
            width = 80
        text = "\n".join(textwrap.wrap(text, max(width - 1, 20), subsequent_indent="  ",
                                       break_long_words=False, break_on_hyphens=False))
    print(text, file=stream)


def _broken_pipe() -> None:
    """Rich's reaction to a closed stdout, instead of its own (exit 1, which means that a gate
    failed): the error the command's caller handles."""
    raise BrokenPipeError


def _plain(stream: Any) -> bool:
    """No ANSI codes at all: NO_COLOR is set (no-color.org) or the stream is not a terminal."""
    return bool(os.environ.get("NO_COLOR")) or not stream.isatty()


def stdout_console() -> Console:
    """A console on stdout: styled only on a terminal without NO_COLOR; wide when redirected so
    tables are not wrapped at 80 columns."""
    from rich.console import Console

    from losscli.render import RStripWriter

    plain = _plain(sys.stdout)
    tty = sys.stdout.isatty()
    # a terminal's width, else $COLUMNS when set (a pipe to less -S, a CI log), else 240
    width = None if tty or os.environ.get("COLUMNS", "").isdigit() else 240
    # in a pipe or a file, no line ends in the spaces Rich pads titles and wrapped lines with
    stream = sys.stdout if tty else cast("IO[str]", RStripWriter(sys.stdout))
    console = Console(file=stream, width=width,
                      soft_wrap=False, no_color=plain, color_system=None if plain else "auto",
                      highlight=False)
    console.on_broken_pipe = _broken_pipe  # type: ignore[method-assign]
    return console


def stderr_console() -> Console:
    from rich.console import Console

    plain = _plain(sys.stderr)
    return Console(file=sys.stderr, highlight=False, no_color=plain,
                   color_system=None if plain else "auto")


def plain_text(render: Callable[[Console], None]) -> str:
    """Render Rich output to uncoloured text (for --output files)."""
    from rich.console import Console

    buf = io.StringIO()
    console = Console(file=buf, width=240, no_color=True, color_system=None, soft_wrap=False,
                      highlight=False)
    render(console)
    from losscli.render import rstrip_lines

    return rstrip_lines(buf.getvalue())


def _regular_or_new(path: Path) -> bool:
    """True for a regular file or a path that does not exist yet (written through a temporary
    file and a rename); False for a device, pipe or terminal (written straight through)."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except FileNotFoundError:
        return True


def check_output(path: Path | None, flag: str = "--output") -> None:
    """Refuse an --output that cannot be written before a long pass, not after it: for a file,
    a temporary file is created beside it (and removed) as the rename will need."""
    if path is None:
        return
    try:
        if Path(path).is_dir():
            raise UsageError(f"{flag} {path} is a directory")
        if not _regular_or_new(path):
            if not os.access(path, os.W_OK):
                raise UsageError(f"{flag} {path}: not writable")
            return
    except OSError as exc:
        raise UsageError(f"{flag} {path}: {exc.strerror}") from None
    target = Path(os.path.realpath(path))
    if not target.parent.is_dir():
        raise UsageError(f"{flag} {path}: directory {target.parent} does not exist")
    import tempfile

    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise UsageError(f"{flag} {path}: cannot create a file in {target.parent} "
                         f"({exc.strerror})") from None
    os.close(fd)
    os.unlink(tmp)


def _check_baseline_path(path: Path | None) -> None:
    """--write-baseline: as --output, except that a missing directory is made when the
    evaluation succeeds (recording ci/baseline.json in a fresh checkout)."""
    if path is None:
        return
    try:
        parent = Path(os.path.realpath(path)).parent
        while not parent.exists() and parent != parent.parent:
            parent = parent.parent
    except OSError as exc:  # a name too long, a loop of links
        raise UsageError(f"--write-baseline {path}: {exc.strerror}") from None
    if not parent.is_dir() or not os.access(parent, os.W_OK):
        raise UsageError(f"--write-baseline {path}: cannot make a file under {parent}")
    if Path(os.path.realpath(path)).parent.is_dir():
        check_output(path, "--write-baseline")


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_output(text: str | bytes, path: Path) -> None:
    """Write a whole file or nothing (text as UTF-8, or bytes): a temporary file beside it,
    then an atomic rename. A device, pipe or terminal is written straight through (a rename
    would replace it). A new file gets the permissions the umask allows; a replaced one keeps
    its own."""
    check_output(path)
    data = text.encode("utf-8") if isinstance(text, str) else text
    if not _regular_or_new(path):
        with open(path, "wb") as out:
            out.write(data)
        return
    target = Path(os.path.realpath(path))
    try:
        mode = stat.S_IMODE(os.stat(target).st_mode)
    except FileNotFoundError:
        mode = 0o666 & ~_umask()
    import tempfile

    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
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

    def __init__(self, source: str | None, quiet: bool, distributed: bool = False) -> None:
        self.bar: Any = None
        self.task: Any = None
        if (source is not None and not quiet and sys.stderr.isatty()
                and (distributed or _input_bytes(source) > 64 << 20)):
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
        self.bar.update(self.task, completed=rows)

    @property
    def callback(self) -> Callable[[int], None] | None:
        """What the library calls with the rows read so far, or None without a bar."""
        return None if self.bar is None else self.update


def _emit(text: str, output: Path | None) -> None:
    if output is None:
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        write_output(text, output)


def _emit_rich(render: Callable[[Console], None], output: Path | None) -> None:
    """Rich output on stdout, or as plain text into --output."""
    if output is not None:
        write_output(plain_text(render), output)
    else:
        render(stdout_console())


def _emit_result(command: str, result: Any, out_fmt: str, output: Path | None,
                 **options: Any) -> None:
    """A command's result on stdout or into --output, in any format of the registry."""
    from losscli.render.formats import CONSOLE, renderer

    if out_fmt != CONSOLE:
        _emit(_render(command, result, out_fmt), output)
        return
    draw = renderer(command, out_fmt)
    _emit_rich(lambda c: draw(result, c, **options), output)


#: The command line of this run, for the report's provenance.
_ARGV: list[str] = []


def _check_report(report: Path | None, figures: Path | None) -> bool:
    """Whether figures are asked for; before the pass, that matplotlib is there and the
    outputs can be written."""
    if report is None and figures is None:
        return False
    from losscli.render.plots import require_matplotlib

    require_matplotlib()
    check_output(report, "--report")
    if figures is not None and figures.exists() and not figures.is_dir():
        raise UsageError(f"--figures {figures}: not a directory")
    return True


def _write_report(command: str, result: Any, report: Path | None,
                  figures: Path | None) -> None:
    """Draw the figures once; write the HTML report and / or one PNG per figure of the
    result of ``command`` (eval, compare or recommend)."""
    if report is None and figures is None:
        return
    import shlex
    from datetime import datetime, timezone

    from losscli.render import html, plots

    # by the command, not isinstance: importing recommend and compare to ask cost 35 ms
    cmp = result if command == "compare" else None
    rec = result if command == "recommend" else None
    drawn = plots.draw(result.figures, cmp, rec)
    if report is not None:
        prov = html.Provenance(shlex.join(["losscli", *_ARGV]), __version__,
                               datetime.now(timezone.utc).isoformat(timespec="seconds"),
                               getattr(result, "elapsed_seconds", None))
        page = (html.compare_html if cmp is not None else html.recommend_html
                if rec is not None else html.eval_html)(result, drawn, prov)
        write_output(page, report)
    if figures is not None:
        try:
            figures.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"--figures {figures}: cannot make the directory "
                             f"({exc.strerror})") from None
        for p in drawn:
            write_output(plots.png(p), figures / f"{p.name}.png")


def _warn(warnings: list[str], quiet: bool) -> None:
    if quiet:
        return
    for w in warnings:
        say(f"losscli: warning: {w}")


# --- options shared by every command that reads data (one text each) --------------------------


def _help_all(ctx: typer.Context, value: bool) -> None:
    """--help-all: the help with every option, also those that --help leaves out."""
    if not value or ctx.resilient_parsing:
        return
    for param in ctx.command.params:
        if hasattr(param, "hidden"):  # options (arguments are never hidden)
            param.hidden = False
    text = ctx.get_help()  # Typer's rich help prints itself and returns ""
    if text:
        typer.echo(text)
    raise typer.Exit()


HelpAllOpt = Annotated[bool, typer.Option(
    "--help-all", is_eager=True, callback=_help_all, help="Show every option.")]

INPUT, TASK, LOSSES, GRADIENTS, INTERVALS, SLICES, GATES, OUTPUT, SETTINGS = (
    "Input", "Task", "Losses", "Gradients", "Intervals", "Slices", "Gates", "Output",
    "Settings")


Source = Annotated[str, typer.Argument(
    metavar="SOURCE", show_default=False,
    help="CSV, TSV, Parquet (file, directory, URI), Arrow IPC, - for stdin.")]
PredOpt = Annotated[str | None, typer.Option(
    "--pred", "-p", rich_help_panel=INPUT, metavar="COL", show_default=False,
    help="Column(s): name, a,b or 'prob_*'.")]
TargetOpt = Annotated[str | None, typer.Option(
    "--target", "-t", rich_help_panel=INPUT, metavar="COL", show_default=False,
    help="Target column.")]
WeightOpt = Annotated[str | None, typer.Option(
    "--weight", "-w", rich_help_panel=INPUT, metavar="COL", show_default=False,
    help="Sample-weight column.")]
VarOpt = Annotated[str | None, typer.Option(
    "--var", hidden=True, rich_help_panel=INPUT, metavar="COL", show_default=False,
    help="Variance column (gaussian_nll).")]
NanOpt = Annotated[NanChoice | None, typer.Option(
    "--nan", rich_help_panel=INPUT, show_default=False,
    help="NaN, inf, empty: error or drop.")]
ChunkOpt = Annotated[int | None, typer.Option(
    "--chunk-rows", hidden=True, rich_help_panel=INPUT, metavar="N", show_default=False,
    help="Rows per chunk: speed and memory only.")]
ThreadsOpt = Annotated[int | None, typer.Option(
    "--threads", hidden=True, rich_help_panel=INPUT, metavar="N", show_default=False,
    help="Compute threads (results never change).")]
SchedulerOpt = Annotated[str | None, typer.Option(
    "--scheduler", hidden=True, rich_help_panel=INPUT, metavar="WHERE", show_default=False,
    help="Dask: local[:N], tcp://H:P or dask.")]
SchedulerFileOpt = Annotated[Path | None, typer.Option(
    "--scheduler-file", rich_help_panel=INPUT, dir_okay=False, metavar="FILE",
    show_default=False, hidden=True,  # under --help-all
    help="Dask scheduler file.")]
TaskOpt = Annotated[str | None, typer.Option(
    "--task", rich_help_panel=TASK, metavar="TASK", show_default=False,
    help="The task (default: detected).")]
PositiveOpt = Annotated[str | None, typer.Option(
    "--positive", hidden=True, rich_help_panel=TASK, metavar="LABEL", show_default=False,
    help="Label of a binary target that is 1.")]
LogitsOpt = Annotated[bool | None, typer.Option(
    "--logits/--probabilities", rich_help_panel=TASK, show_default=False,
    help="Logits, or probabilities (default).")]
FormatOpt = Annotated[str | None, typer.Option(
    "--format", "-f", rich_help_panel=OUTPUT, metavar="FORMAT", show_default=False,
    help="table, json, markdown, csv, junit or github.")]
RecFormatOpt = Annotated[str | None, typer.Option(
    "--format", "-f", rich_help_panel=OUTPUT, metavar="FORMAT", show_default=False,
    help="table, json or markdown.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", hidden=True, rich_help_panel=OUTPUT,
                                        help="Print nothing but the result.")]
OutputOpt = Annotated[Path | None, typer.Option(
    "--output", "-o", rich_help_panel=OUTPUT, dir_okay=False, metavar="FILE",
    show_default=False, help="Write the result to FILE (whole, atomically).")]
ReportOpt = Annotated[Path | None, typer.Option(
    "--report", rich_help_panel=OUTPUT, dir_okay=False, metavar="FILE.html",
    show_default=False, help="An HTML report too (needs losscli\\[report]).")]
FiguresOpt = Annotated[Path | None, typer.Option(
    "--figures", hidden=True, rich_help_panel=OUTPUT, file_okay=False, metavar="DIR",
    show_default=False, help="Also write each figure as a PNG into DIR (needs "
    "losscli\\[report]).")]
ConfigOpt = Annotated[Path | None, typer.Option(
    "--config", hidden=True, rich_help_panel=SETTINGS, dir_okay=False, metavar="FILE",
    show_default=False,
    help="Settings file (default: \\[tool.losscli] in ./pyproject.toml, or ./losscli.toml).")]
NoConfigOpt = Annotated[bool, typer.Option(
    "--no-config", hidden=True, rich_help_panel=SETTINGS, help="Read no settings file.")]
ShowConfigOpt = Annotated[bool, typer.Option(
    "--show-config", hidden=True, rich_help_panel=SETTINGS,
    help="Show each setting and where it came from.")]


PluginOpt = Annotated[list[str] | None, typer.Option(
    "--plugin", hidden=True, rich_help_panel=LOSSES, metavar="FILE_OR_MODULE",
    help="Load custom losses from a Python file or module (repeatable); see docs/plugins.md.")]


def _load_plugins(refs: tuple[str, ...] | list[str] | None) -> None:
    """Load --plugin files and modules; a loss name no loaded loss has may then load the
    installed entry points."""
    from losscli.registry import entry_points_on_demand, load_plugins

    entry_points_on_demand()
    if refs:
        load_plugins(list(refs))


def _executor(scheduler: str | None, scheduler_file: Path | None) -> Any:
    """A Dask executor (a context manager: one connection for the whole command) when a
    scheduler is asked for, else a context of None (the local executor)."""
    if scheduler is None and scheduler_file is None:
        from contextlib import nullcontext

        return nullcontext(None)
    from losscli.run.dask import DaskExecutor

    return DaskExecutor(scheduler or "dask",
                        None if scheduler_file is None else str(scheduler_file))


def _settings(command: str, flags: dict[str, Any], config: Path | None,
              no_config: bool) -> Settings:
    """Flags over the settings file over defaults: the one settings model of every command."""
    from losscli.config import find_config
    from losscli.settings import resolve

    flags = {k: (v.value if isinstance(v, Enum) else v) for k, v in flags.items()}
    return resolve(command, flags, find_config(config, use=not no_config))

CiOpt = Annotated[str | None, typer.Option(
    "--ci", hidden=True, rich_help_panel=INTERVALS, metavar="METHOD", show_default=False,
    help="johnson (default; skew-corrected t), t, bootstrap, percentile or none.")]
CompareCiOpt = Annotated[str | None, typer.Option(
    "--ci", hidden=True, rich_help_panel=INTERVALS, metavar="METHOD", show_default=False,
    help="johnson (default; skew-corrected t), t or bootstrap.")]
ConfidenceOpt = Annotated[float | None, typer.Option(
    "--confidence", hidden=True, rich_help_panel=INTERVALS, metavar="LEVEL", show_default=False,
    help="Confidence level (default 0.95).")]
BootstrapOpt = Annotated[int | None, typer.Option(
    "--bootstrap-samples", hidden=True, rich_help_panel=INTERVALS, metavar="B",
    show_default=False, help="Bootstrap replicates (default 2000).")]
SeedOpt = Annotated[int | None, typer.Option(
    "--seed", hidden=True, rich_help_panel=INTERVALS, metavar="N", show_default=False,
    help="Bootstrap seed (default 0).")]


ByOpt = Annotated[list[str] | None, typer.Option(
    "--by", rich_help_panel=LOSSES, metavar="COL", show_default=False,
    help="Per-slice losses: COL, a,b or 'x:bins=5'.")]
MaxSlicesOpt = Annotated[int | None, typer.Option(
    "--max-slices", hidden=True, rich_help_panel=SLICES, metavar="N", show_default=False,
    help="Rarest past N into (other) (default 1000).")]
TopOpt = Annotated[int | None, typer.Option(
    "--top", hidden=True, rich_help_panel=SLICES, metavar="K", show_default=False,
    help="Slices shown (default 10; 0 all).")]
MinRowsOpt = Annotated[int | None, typer.Option(
    "--min-rows", hidden=True, rich_help_panel=SLICES, metavar="N", show_default=False,
    help="Smaller: never flagged or gated (default 30).")]


def slice_options(st: Settings) -> Any:
    """The slices asked for (None without --by)."""
    if not st.by:
        return None
    from losscli.slices import SliceOptions

    return SliceOptions(list(st.by), st.max_slices, st.min_rows, st.alpha, st.top)



#: The help pages' texts: paragraphs without line breaks (Rich wraps them to the terminal) and
#: examples one per line; --help shows the common options, --help-all every one.
EXIT_CODES = "Exit codes: 0 ok, 1 a gate failed, 2 bad input or usage, 3 internal error."
MORE = "Every option: losscli {} --help-all"


def _examples(command: str, *lines: str, exit_codes: str = EXIT_CODES) -> str:
    return ("Examples:\n" + "\n".join(f"  {x}" for x in lines) + "\n\n" + MORE.format(command)
            + "\n" + exit_codes)


EVAL_HELP = "Evaluate losses and gradient statistics over a prediction file, in one pass."
EVAL_EXAMPLES = _examples(
    "eval",
    "losscli eval preds.parquet",
    "losscli eval preds.csv --pred y_hat --target y --loss mse --loss mae",
    "losscli eval preds.parquet --baseline ci/baseline.json --tolerance 2%")
COMPARE_HELP = "Compare two models on the same rows, paired: each loss's delta and verdict."
COMPARE_EXAMPLES = _examples(
    "compare",
    "losscli compare base.parquet cand.parquet",
    "losscli compare preds.parquet --baseline-pred old_score --pred new_score",
    "losscli compare baseline.parquet candidate.parquet --key id --fail-if-worse")
RECOMMEND_HELP = ("Recommend a loss from the task and the measured outliers or class "
                  "imbalance.")
RECOMMEND_EXAMPLES = _examples(
    "recommend",
    "losscli recommend preds.parquet",
    "losscli recommend train.csv --target price --target-only",
    "losscli recommend --task binary --imbalanced",
    exit_codes="Exit codes: 0 ok, 2 bad input or usage, 3 internal error.")
LOSSES_HELP = "The loss catalog: formulas, parameters, gradients; --check tests a gradient."
LOSSES_EXAMPLES = _examples(
    "losses",
    "losscli losses",
    "losscli losses --check huber:delta=2",
    "losscli losses --check bce --data sample_data/binary.csv --pred prob",
    exit_codes="Exit codes: 0 ok (the check passed), 1 the check failed, 2 bad input or usage.")


@app.command("eval", help=EVAL_HELP, epilog=EVAL_EXAMPLES)
@boundary
def eval_cmd(
    source: Source,
    pred: PredOpt = None,
    target: TargetOpt = None,
    weight: WeightOpt = None,
    var: VarOpt = None,
    task: TaskOpt = None,
    positive: PositiveOpt = None,
    logits: LogitsOpt = None,
    nan: NanOpt = None,
    chunk_rows: ChunkOpt = None,
    threads: ThreadsOpt = None,
    scheduler: SchedulerOpt = None,
    scheduler_file: SchedulerFileOpt = None,
    loss: Annotated[list[str] | None, typer.Option(
        "--loss", "-l", rich_help_panel=LOSSES, metavar="SPEC", show_default=False,
        help="Repeatable: mse, 'huber:delta=2', '0.7*mse+0.3*mae'. Default: the task's "
        "default set. See losscli losses.",
    )] = None,
    plugin: PluginOpt = None,
    vanish_tol: Annotated[float | None, typer.Option(
        "--vanish-tol", hidden=True, rich_help_panel=GRADIENTS, metavar="X", show_default=False,
        help="|g| <= X is vanishing (default 1e-6).")] = None,
    explode_tol: Annotated[float | None, typer.Option(
        "--explode-tol", hidden=True, rich_help_panel=GRADIENTS, metavar="X", show_default=False,
        help="|g| >= X is exploding (default 1e3).")] = None,
    grad_clip: Annotated[float | None, typer.Option(
        "--grad-clip", hidden=True, rich_help_panel=GRADIENTS, metavar="X", show_default=False,
        help="Report the share of |g| > X.")] = None,
    max_: Annotated[list[str] | None, typer.Option(
        "--max", rich_help_panel=GATES, metavar="LOSS=V", show_default=False,
        help="Exit 1 if LOSS > V. Repeatable.")] = None,
    baseline: Annotated[Path | None, typer.Option(
        "--baseline", rich_help_panel=GATES, dir_okay=False, metavar="FILE",
        show_default=False, help="Exit 1 if a loss got worse than in FILE.")] = None,
    tolerance: Annotated[str | None, typer.Option(
        "--tolerance", rich_help_panel=GATES, metavar="T", show_default=False,
        help="Allowed worsening: 2% or 0.01 (default 0).")] = None,
    write_baseline: Annotated[Path | None, typer.Option(
        "--write-baseline", rich_help_panel=GATES, dir_okay=False, metavar="FILE",
        show_default=False, help="Record a baseline in FILE (no comparison).")] = None,
    max_slice: Annotated[list[str] | None, typer.Option(
        "--max-slice", hidden=True, rich_help_panel=GATES, metavar="LOSS=V", show_default=False,
        help="Exit 1 if LOSS > V in a slice. Repeatable.")] = None,
    by: ByOpt = None,
    max_slices: MaxSlicesOpt = None,
    top: TopOpt = None,
    min_rows: MinRowsOpt = None,
    alpha: Annotated[float | None, typer.Option(
        "--alpha", hidden=True, rich_help_panel=SLICES, metavar="A", show_default=False,
        help="Slices' false-discovery rate (default 0.05).")] = None,
    fmt: FormatOpt = None,
    ci: CiOpt = None,
    confidence: ConfidenceOpt = None,
    bootstrap_samples: BootstrapOpt = None,
    seed: SeedOpt = None,
    output: OutputOpt = None,
    report_file: ReportOpt = None,
    figures: FiguresOpt = None,
    quiet: QuietOpt = False,
    config: ConfigOpt = None,
    no_config: NoConfigOpt = False,
    show_config: ShowConfigOpt = False,
    help_all: HelpAllOpt = False,
) -> None:
    """Evaluate losses and gradient statistics over a prediction file, in one pass.

    Exit codes: 0 ok, 1 a gate failed, 2 bad input or usage, 3 internal error.
    """
    from losscli.engine import evaluate

    check_output(output)
    drawing = _check_report(report_file, figures)
    _check_baseline_path(write_baseline)
    if write_baseline is not None and (baseline is not None or tolerance is not None):
        raise UsageError("--write-baseline records a baseline and --baseline / --tolerance "
                         "compare with one: pass one of them")
    st = _settings("eval", {
        "pred": pred, "target": target, "weight": weight, "task": task, "logits": logits,
        "nan": nan, "chunk_rows": chunk_rows, "threads": threads, "losses": loss,
        "vanish_tol": vanish_tol, "explode_tol": explode_tol, "grad_clip": grad_clip,
        "max": max_, "baseline": None if baseline is None else str(baseline),
        "tolerance": tolerance, "format": fmt, "ci": ci, "confidence": confidence,
        "bootstrap_samples": bootstrap_samples, "seed": seed, "plugins": plugin, "by": by,
        "max_slices": max_slices, "top": top, "min_rows": min_rows, "alpha": alpha,
        "max_slice": max_slice, "positive": positive,
        "scheduler": scheduler}, config, no_config)
    _load_plugins(st.plugins)  # before the specs and gates that name their losses
    compare = write_baseline is None  # recording a baseline skips the configured comparison
    if tolerance is not None and not st.baseline:
        from losscli.gates import Tolerance

        Tolerance.parse(tolerance)  # a bad value is named first
        raise UsageError("--tolerance is the allowed worsening against a baseline: pass "
                         "--baseline FILE too (or set baseline in the settings file)")
    gated = bool(st.max or st.max_slice
                 or (compare and (st.baseline or st.tolerance is not None)))
    if gated:  # parsed before the pass, so that a bad gate fails fast
        from losscli.gates import Gates, parse_max

        gates = Gates.parse(st.max, st.baseline if compare and st.baseline else None,
                            st.tolerance if compare else None)
        slice_limits = parse_max(st.max_slice, "--max-slice")
        if slice_limits and not st.by:
            raise UsageError("--max-slice needs --by (the slices it limits)")

    with _executor(st.scheduler, scheduler_file) as executor, \
            _Progress(source, quiet, executor is not None) as progress:
        report = evaluate(
            source, st.pred, st.target, st.weight, list(st.losses) or None,
            logits=st.logits, nan=st.nan, chunk_rows=st.chunk_rows,  # type: ignore[arg-type]
            vanish_tol=st.vanish_tol, explode_tol=st.explode_tol, grad_clip=st.grad_clip,
            threads=st.threads, progress=progress.callback, task=st.task, ci=st.ci,
            confidence=st.confidence, bootstrap_samples=st.bootstrap_samples, seed=st.seed,
            figures=drawing, var=var, slices=slice_options(st), positive=st.positive,
            executor=executor)
    if gated:
        from losscli.gates import check_slices

        report.gates = gates.check(report) + check_slices(report, slice_limits)
    if show_config:
        report.config = st.shown()
    _warn(report.warnings, quiet)
    if write_baseline is not None:
        try:
            Path(os.path.realpath(write_baseline)).parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # e.g. under /proc, writable by root but not a place for files
            raise UsageError(f"--write-baseline {write_baseline}: cannot make its directory "
                             f"({exc.strerror})") from None
        write_output(_render("eval", report, "json"), write_baseline)
        if not quiet:
            say(f"losscli: wrote baseline {write_baseline} ({len(report.losses)} loss(es)); "
                f"compare with it: --baseline {write_baseline}")
    _write_report("eval", report, report_file, figures)
    try:
        _emit_result("eval", report, st.format, output)
    except BrokenPipeError:  # stdout closed (`| head`): the gates still decide the exit code
        stdout_gone()
    _step_summary(report)
    _exit_on_failed_gates(report.gates, quiet, st.format)


def _exit_on_failed_gates(gates: list[Any], quiet: bool, out_fmt: str) -> None:
    """Exit 1 when a gate failed, after one 'gate failed' line each on stderr (which the
    github format's own ::error lines make redundant under --quiet)."""
    if all(g.passed for g in gates):
        return
    if not quiet or out_fmt != "github":
        for gate in gates:
            if not gate.passed:
                say(f"losscli: gate failed: {gate.message()}")
    raise typer.Exit(1)


def _render(command: str, result: Any, out_fmt: str) -> str:
    """A result as text in a machine or CI format (the registry in render/formats.py)."""
    from losscli.render.formats import renderer

    text: str = renderer(command, out_fmt)(result)
    return text


def _step_summary(report: Report) -> None:
    """Append a markdown summary to $GITHUB_STEP_SUMMARY when GitHub Actions sets it."""
    if not os.environ.get("GITHUB_STEP_SUMMARY"):
        return
    _append_summary(_render("eval", report, "markdown"))


def _append_summary(text: str) -> None:
    """Append markdown to $GITHUB_STEP_SUMMARY (when GitHub Actions sets it)."""
    path = os.environ.get("GITHUB_STEP_SUMMARY")
    if not path:
        return
    try:
        with open(path, "a", encoding="utf-8") as f:
            f.write(text + "\n")
    except OSError as exc:
        say(f"losscli: warning: cannot write GITHUB_STEP_SUMMARY {path}: {exc.strerror}")


@app.command("compare", help=COMPARE_HELP, epilog=COMPARE_EXAMPLES)
@boundary
def compare_cmd(
    baseline: Annotated[str, typer.Argument(
        metavar="BASELINE", show_default=False,
        help="Baseline predictions (or both models').")],
    candidate: Annotated[str | None, typer.Argument(
        metavar="[CANDIDATE]", show_default=False,
        help="The candidate's, on the same rows.")] = None,
    pred: PredOpt = None,
    baseline_pred: Annotated[str | None, typer.Option(
        "--baseline-pred", rich_help_panel=INPUT, metavar="COL", show_default=False,
        help="The baseline's column.")] = None,
    target: TargetOpt = None,
    weight: WeightOpt = None,
    key: Annotated[str | None, typer.Option(
        "--key", rich_help_panel=INPUT, metavar="COL", show_default=False,
        help="Match the rows by this id column.")] = None,
    unmatched: Annotated[str, typer.Option(
        "--unmatched", hidden=True, rich_help_panel=INPUT, metavar="<error|drop>",
        show_default=False,
        help="Rows of one side without a match: error (default), or drop and count them.")
    ] = "error",
    task: TaskOpt = None,
    positive: PositiveOpt = None,
    logits: LogitsOpt = None,
    nan: NanOpt = None,
    chunk_rows: ChunkOpt = None,
    threads: ThreadsOpt = None,
    scheduler: SchedulerOpt = None,
    scheduler_file: SchedulerFileOpt = None,
    loss: Annotated[list[str] | None, typer.Option(
        "--loss", "-l", rich_help_panel=LOSSES, metavar="SPEC", show_default=False,
        help="Repeatable: mse, 'huber:delta=2'.")] = None,
    plugin: PluginOpt = None,
    ci: CompareCiOpt = None,
    confidence: ConfidenceOpt = None,
    bootstrap_samples: BootstrapOpt = None,
    seed: SeedOpt = None,
    alpha: Annotated[float | None, typer.Option(
        "--alpha", hidden=True, rich_help_panel=GATES, metavar="A", show_default=False,
        help="Significance level of the verdicts and gates: the interval is two-sided "
        "(1 - alpha), simultaneous over the losses (default 0.05).")] = None,
    primary: Annotated[str | None, typer.Option(
        "--primary", hidden=True, rich_help_panel=GATES, metavar="SPEC", show_default=False,
        help="The confirmatory loss: tested alone and the only one gated; the others are "
        "secondary, adjusted among themselves.")] = None,
    fail_if_worse: Annotated[bool, typer.Option(
        "--fail-if-worse", rich_help_panel=GATES,
        help="Exit 1 on evidence it is worse.")] = False,
    require_not_worse: Annotated[bool, typer.Option(
        "--require-not-worse", rich_help_panel=GATES,
        help="Exit 1 without evidence that it is not worse.")] = False,
    tolerance: Annotated[str | None, typer.Option(
        "--tolerance", rich_help_panel=GATES, metavar="T", show_default=False,
        help="The gates' margin: 1% or 0.01 (default 0).")] = None,
    by: ByOpt = None,
    max_slices: MaxSlicesOpt = None,
    top: TopOpt = None,
    min_rows: MinRowsOpt = None,
    fmt: FormatOpt = None,
    output: OutputOpt = None,
    report_file: ReportOpt = None,
    figures: FiguresOpt = None,
    quiet: QuietOpt = False,
    config: ConfigOpt = None,
    no_config: NoConfigOpt = False,
    show_config: ShowConfigOpt = False,
    help_all: HelpAllOpt = False,
) -> None:
    """Compare two models on the same rows, paired: each loss's difference and verdict.

    Per loss: the difference, its interval (two-sided 1 - alpha, simultaneous over the
    losses), the p-value of the same method (adjusted over the losses) and a verdict.

    Exit codes: 0 ok, 1 a gate failed, 2 bad input or usage, 3 internal error.
    """
    from losscli.compare import compare

    check_output(output)
    drawing = _check_report(report_file, figures)
    st = _settings("compare", {
        "pred": pred, "target": target, "weight": weight, "task": task, "logits": logits,
        "nan": nan, "chunk_rows": chunk_rows, "threads": threads, "losses": loss,
        "tolerance": tolerance, "format": fmt, "ci": ci, "confidence": confidence,
        "bootstrap_samples": bootstrap_samples, "seed": seed, "plugins": plugin,
        "alpha": alpha, "primary": primary, "by": by, "max_slices": max_slices, "top": top,
        "min_rows": min_rows, "positive": positive,
        "scheduler": scheduler}, config, no_config)
    _load_plugins(st.plugins)
    from losscli.gates import Tolerance
    from losscli.uncertainty import DEFAULT_CONFIDENCE

    tol = Tolerance.parse(st.tolerance)
    if tolerance is not None and not (fail_if_worse or require_not_worse):
        raise UsageError("--tolerance is the margin of a gate: pass --fail-if-worse or "
                         "--require-not-worse too")
    with _executor(st.scheduler, scheduler_file) as executor, _Progress(baseline, quiet):
        result = compare(
            baseline, candidate, pred=st.pred, baseline_pred=baseline_pred, target=st.target,
            weight=st.weight, losses=list(st.losses) or None, key=key, unmatched=unmatched,
            task=st.task, logits=st.logits, nan=st.nan, chunk_rows=st.chunk_rows,
            threads=st.threads, ci=st.ci,
            # compare's level is 1 - alpha: a --confidence typed here says the same thing;
            # an eval setting from the configuration file does not
            confidence=(st.confidence if st.origins.get("confidence") == "flag"
                        else DEFAULT_CONFIDENCE),
            bootstrap_samples=st.bootstrap_samples, seed=st.seed, alpha=st.alpha,
            primary=st.primary, ratio=tol.relative and (fail_if_worse or require_not_worse),
            figures=drawing, slices=slice_options(st), positive=st.positive,
            executor=executor)
    result.check(fail_if_worse, require_not_worse, tol)
    if show_config:
        result.config = st.shown()
    _warn(result.warnings, quiet)
    _write_report("compare", result, report_file, figures)
    try:
        _emit_result("compare", result, st.format, output)
    except BrokenPipeError:
        stdout_gone()
    if os.environ.get("GITHUB_STEP_SUMMARY"):
        _append_summary(_render("compare", result, "markdown"))
    _exit_on_failed_gates(result.gates, quiet, st.format)


@app.command("losses", help=LOSSES_HELP, epilog=LOSSES_EXAMPLES)
@boundary
def losses_cmd(
    fmt: Annotated[str, typer.Option(
        "--format", "-f", metavar="FORMAT", show_default=False,
        help="table (default) or json.")] = "table",
    plugin: PluginOpt = None,
    check: Annotated[str | None, typer.Option(
        "--check", metavar="SPEC", rich_help_panel="Gradient check",
        help="Check a loss's declared gradient against central finite differences on a grid "
        "(and on --data); exit 1 if the worst relative error is above --rtol.")] = None,
    data: Annotated[str | None, typer.Option(
        "--data", metavar="FILE", rich_help_panel="Gradient check",
        help="Also check at every row of this prediction file (--pred, --target as for eval).")
    ] = None,
    pred: PredOpt = None,
    target: TargetOpt = None,
    logits: Annotated[bool, typer.Option(
        "--logits", rich_help_panel="Gradient check",
        help="Check binary / multiclass losses on logits instead of probabilities.")] = False,
    rtol: Annotated[float, typer.Option(
        "--rtol", rich_help_panel="Gradient check", metavar="R", show_default=False,
        help="Largest relative error that passes (default 1e-6).")] = 1e-6,
    atol: Annotated[float, typer.Option(
        "--atol", rich_help_panel="Gradient check", metavar="A", show_default=False,
        help="Gradients smaller than A are compared absolutely, to R x A (default 1e-3).")
    ] = 1e-3,
    config: ConfigOpt = None,
    no_config: NoConfigOpt = False,
    help_all: HelpAllOpt = False,
) -> None:
    """The loss catalog: formulas, parameters, gradients; --check tests a gradient.

    Built-in and plugin losses, with the pinned conventions.

    Exit codes: 0 ok (the check passed), 1 the check failed, 2 bad input / usage.
    """
    from losscli.config import find_config
    from losscli.render.formats import formats

    if fmt not in formats("losses"):  # worded as eval's, compare's and recommend's
        raise UsageError(f"--format must be one of {', '.join(formats('losses'))} for losses, "
                         f"got '{fmt}'")
    cfg = find_config(config, use=not no_config)
    _load_plugins([*cfg.values.get("plugins", []), *(plugin or [])])
    if check is not None:
        _check_cmd(check, data, pred, target, logits, rtol, atol)
        return
    if data is not None or pred is not None or target is not None or logits:
        raise UsageError("--data, --pred, --target and --logits go with --check")
    from losscli.losses import CATALOG
    from losscli.registry import PLUGINS

    _emit_result("losses", [*CATALOG.values(), *PLUGINS.values()], fmt, None)


def _check_cmd(check: str, data: str | None, pred: str | None, target: str | None,
               logits: bool, rtol: float, atol: float) -> None:
    """``losses --check``: the gradient check, as plain lines on stdout; exit 1 if it fails."""
    from losscli.gradcheck import check_gradient, describe
    from losscli.spec import parse_spec

    for label, v in (("--rtol", rtol), ("--atol", atol)):
        if not (v > 0 and math.isfinite(v)):
            raise UsageError(f"{label} must be a finite number > 0, got {v}")
    spec = parse_spec(check)
    if spec.is_combination:
        raise UsageError(f"--check takes one loss, got the combination '{check}'")
    term = spec.terms[0]
    if term.balanced:
        raise UsageError(f"--check {check}: balanced class weights are measured from data; "
                         "check with a number instead")
    if logits and term.loss.task == "regression":
        raise UsageError("--logits applies to binary and multiclass losses")
    if data is None and (pred is not None or target is not None):
        raise UsageError("--pred and --target select columns of --data")
    result = check_gradient(term.loss, term.params, logits=logits, data=data, pred=pred,
                            target=target, rtol=rtol, atol=atol)
    sys.stdout.write("\n".join(describe(result)) + "\n")
    if not result.passed:
        raise typer.Exit(1)


NO_DATA = "Without data"


@app.command("recommend", help=RECOMMEND_HELP, epilog=RECOMMEND_EXAMPLES)
@boundary
def recommend_cmd(
    source: Annotated[str | None, typer.Argument(
        metavar="[SOURCE]", show_default=False,
        help="As for eval. Without it, with --task: the selection rules.")] = None,
    pred: PredOpt = None,
    target: TargetOpt = None,
    weight: WeightOpt = None,
    var: VarOpt = None,
    task: TaskOpt = None,
    positive: PositiveOpt = None,
    logits: LogitsOpt = None,
    nan: NanOpt = None,
    chunk_rows: ChunkOpt = None,
    threads: ThreadsOpt = None,
    scheduler: SchedulerOpt = None,
    scheduler_file: SchedulerFileOpt = None,
    target_only: Annotated[bool, typer.Option(
        "--target-only", rich_help_panel=TASK,
        help="Analyse the target alone, ignoring predictions.")] = False,
    outliers: Annotated[bool, typer.Option(
        "--outliers", hidden=True, rich_help_panel=NO_DATA,
        help="The residuals have outliers.")] = False,
    heavy_tails: Annotated[bool, typer.Option(
        "--heavy-tails", hidden=True, rich_help_panel=NO_DATA,
        help="The residuals have heavy tails.")] = False,
    outlier_fraction: Annotated[float | None, typer.Option(
        "--outlier-fraction", hidden=True, rich_help_panel=NO_DATA, metavar="F", show_default=False,
        help="The share of outlying residuals, in [0, 1].")] = None,
    imbalanced: Annotated[bool, typer.Option(
        "--imbalanced", hidden=True, rich_help_panel=NO_DATA,
        help="The classes are imbalanced.")] = False,
    minority_share: Annotated[float | None, typer.Option(
        "--minority-share", hidden=True, rich_help_panel=NO_DATA, metavar="S", show_default=False,
        help="The binary minority class's share, in [0, 1].")] = None,
    plot: Annotated[bool, typer.Option(
        "--plot/--no-plot", hidden=True, rich_help_panel=OUTPUT, show_default=False,
        help="Show the histogram (default: shown).")] = True,
    rules: Annotated[bool, typer.Option(
        "--rules", hidden=True, rich_help_panel=OUTPUT,
        help="Also show the selection rules of the task.")] = False,
    fmt: RecFormatOpt = None,
    output: OutputOpt = None,
    report_file: ReportOpt = None,
    figures: FiguresOpt = None,
    quiet: QuietOpt = False,
    config: ConfigOpt = None,
    no_config: NoConfigOpt = False,
    show_config: ShowConfigOpt = False,
    help_all: HelpAllOpt = False,
) -> None:
    """Recommend a loss from the task and the measured outliers or class imbalance.

    Exit codes: 0 ok, 2 bad input / usage / config, 3 internal error.
    """
    from losscli.recommend import Hints, recommend

    check_output(output)
    drawing = _check_report(report_file, figures)
    st = _settings("recommend", {
        "pred": pred, "target": target, "weight": weight, "task": task, "logits": logits,
        "nan": nan, "chunk_rows": chunk_rows, "threads": threads, "format": fmt,
        "positive": positive,
        "scheduler": scheduler}, config, no_config)
    if source is None:  # the rules need no columns: only what was given as flags counts
        st_pred, st_target, st_weight = pred, target, weight
    else:
        st_pred, st_target, st_weight = st.pred, st.target, st.weight
    with _executor(st.scheduler, scheduler_file) as executor, \
            _Progress(source, quiet, executor is not None) as progress:
        rec = recommend(
            source, st_pred, st_target, st_weight, st.task,  # type: ignore[arg-type]
            logits=st.logits, nan=st.nan, chunk_rows=st.chunk_rows,  # type: ignore[arg-type]
            threads=st.threads, progress=progress.callback, executor=executor,
            target_only=target_only, var=var, positive=st.positive,
            hints=Hints(outliers, heavy_tails, outlier_fraction, imbalanced, minority_share),
            figures=drawing)
    if show_config:
        rec.config = st.shown()
    _warn(rec.warnings, quiet)
    _write_report("recommend", rec, report_file, figures)
    _emit_result("recommend", rec, st.format, output, plot=plot, rules=rules)


def run(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code instead of exiting (for tests and embedding).

    Option-parsing errors (a bad value, an unknown option) are one ``losscli: error:`` line and
    exit code 2, as every other usage error, instead of click's usage panel.
    """
    try:  # typer >= 0.28 carries its own copy of click
        from typer._click import exceptions as click_errors
    except ImportError:  # pragma: no cover - older typer
        from click import exceptions as click_errors  # type: ignore[no-redef]

    _ARGV[:] = sys.argv[1:] if argv is None else list(argv)
    command = typer.main.get_command(app)
    try:
        code = command.main(args=argv, prog_name="losscli", standalone_mode=False)
    except getattr(click_errors, "NoArgsIsHelpError", ()) as exc:  # `losscli` alone: the help
        from typer import rich_utils

        rich_utils.rich_format_error(exc)
        return int(exc.exit_code)
    except click_errors.ClickException as exc:
        message = " ".join(exc.format_message().split())
        ctx = getattr(exc, "ctx", None)
        hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
        say(f"losscli: error: {message}{hint}")
        return 2
    except (getattr(click_errors, "Abort", typer.Abort), typer.Abort):
        say("losscli: interrupted")
        return 130
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    return code if isinstance(code, int) else 0


def main() -> None:
    """The console script: run, flush, and leave without the interpreter's teardown.

    When the interpreter's final teardown races with pyarrow's threads the process can abort
    ("terminate called without an active exception", apache/arrow#34314; measured about 1 run
    in 300 while pyarrow read stdin through a Python file object). Everything losscli writes is
    flushed or closed by then, so ending the process directly is safe, and faster.
    """
    # Both are read when NumPy and pyarrow load, which has not happened yet here; measured on
    # 5e7 rows (0.9 s of CPU in all):
    # - losscli runs its own threads and makes no BLAS calls, so OpenBLAS's thread pool would
    #   only spin: 0.1 s of CPU after NumPy's import.
    # - pyarrow's allocator (mimalloc 3) backs its arena with transparent huge pages, and the
    #   kernel zeroes each 2 MiB page on first touch, used or not: 8-10% of the CPU time. With
    #   4 KiB pages that falls to 0.5%, and peak RSS from 120 to 105 MiB.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    os.environ.setdefault("MIMALLOC_ALLOW_THP", "0")
    code = run()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (BrokenPipeError, ValueError):  # reader gone, or the stream was closed
        pass
    os._exit(code)
