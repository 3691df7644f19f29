"""Renderers: a Report (plain data) to text. With cli.py, the only modules that use Rich."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from losscli.engine import Report


#: Significant digits of a loss value, a change (delta) and a gate's bound.
DIGITS = 6
#: ... of what measures a spread or a slope: a standard error, an interval's ends, a gradient
#: statistic (an estimate good to a few digits).
SPREAD_DIGITS = 4
#: ... of a percentage.
PCT_DIGITS = 3


def fmt(v: float | None, digits: int = DIGITS, sign: bool = False) -> str:
    """A number for humans, the one rule of every table and markdown cell: ``digits``
    significant digits, trailing zeros kept so that a column reads alike (8.20940 beside
    8.35776, where %g wrote 8.2094; 1.000 beside 0.9485), an exact zero as '0'; with
    ``sign``, a '+' before a positive number (a change); '-' for missing or NaN. Numbers
    that a user typed (limits, margins) are shown as typed instead (``:g``)."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    plus = "+" if sign else ""
    v = float(v)
    if v == 0:
        return "0"
    if math.isinf(v):
        return f"{v:{plus}}"
    mantissa, e, exponent = f"{v:{plus}#.{digits}g}".partition("e")
    return mantissa.rstrip(".") + e + exponent


#: Parameters whose default changes nothing (a weight of 1, no class weights, no label
#: smoothing) or only guards the arithmetic (the eps of poisson_nll and gaussian_nll): not
#: shown.
_NEUTRAL = frozenset({"pos_weight", "class_weights", "alpha", "label_smoothing", "eps"})


def with_defaults(spec: str) -> str:
    """A one-loss spec with the defaults it ran with ('huber' ran as 'huber:delta=1'), so that
    a table shows the numbers behind each row; JSON and gates keep the spec as asked."""
    from losscli.errors import LossCliError
    from losscli.spec import format_param, parse_spec

    if ":" in spec:
        return spec
    try:
        parsed = parse_spec(spec)
    except LossCliError:
        return spec
    if len(parsed.terms) != 1 or parsed.terms[0].coef != 1.0:
        return spec
    term = parsed.terms[0]
    kinds = {p.name: p for p in term.loss.params}
    shown = [f"{k}={format_param(kinds[k], v)}" for k, v in term.params.items()
             if k not in _NEUTRAL and isinstance(v, float) and k in kinds]
    return f"{spec}:{','.join(shown)}" if shown else spec


def titled(title: str, table: Any) -> Any:
    """A Rich table under its title on a line of its own (a Group): a title never wraps to a
    narrow table's width (only, between words, to the console's), nor is it padded to it."""
    from rich.console import Group
    from rich.text import Text

    return Group(Text(title, style="table.title"), table)


def rstrip_lines(text: str) -> str:
    """Text without the spaces Rich pads lines with (table titles, wrapped lines): no trailing
    whitespace in a file or a pipe."""
    return "\n".join(line.rstrip() for line in text.split("\n"))


class RStripWriter:
    """A text stream that passes each complete line on without its trailing whitespace (Rich
    pads titles and wrapped lines to the console width); everything else is the stream's."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self._pending = ""

    def write(self, text: str) -> int:
        head, sep, self._pending = (self._pending + text).rpartition("\n")
        if sep:
            self._stream.write(rstrip_lines(head) + "\n")
        return len(text)

    def flush(self) -> None:
        if self._pending:  # Rich ends each print with a newline: seldom anything here
            self._stream.write(self._pending)
            self._pending = ""
        self._stream.flush()

    def __getattr__(self, name: str) -> Any:  # isatty, fileno, encoding, ...
        return getattr(self._stream, name)


def pct(v: float | None, sign: bool = False) -> str:
    """A fraction as a percentage of PCT_DIGITS significant digits (trailing zeros kept, as
    fmt: +0.900% beside +1.81%), enough to see small shares; with ``sign``, a change."""
    if v is None or math.isnan(v):
        return "-"
    return f"{fmt(100 * v, PCT_DIGITS, sign)}%"


def ci_text(low: float | None, high: float | None, digits: int = SPREAD_DIGITS,
            sign: bool = False) -> str:
    """An interval as '[low, high]' (with ``sign``, of a change)."""
    return f"[{fmt(low, digits, sign)}, {fmt(high, digits, sign)}]"


def ci_header(report: Report) -> str | None:
    """'95% CI (johnson)' for the report's intervals, or None when there are none."""
    ci = next((r.ci for r in report.losses if r.ci is not None), None)
    if ci is None:
        return None
    return f"{100 * ci.level:g}% CI ({ci.method})"


def md_cell(text: str) -> str:
    """Text for a markdown table cell or line: '|' escaped."""
    return text.replace("|", "\\|")


def gates_verdict(gates: Sequence[Any]) -> str:
    """The markdown line of eval's and compare's gates: 'Gates: none', 'Gates: **passed**' or
    'Gates: **FAILED (k of n gates)**' (a 'Verdict' would read as the losses' verdicts)."""
    if not gates:
        return "Gates: none"
    failed = sum(not g.passed for g in gates)
    return ("Gates: **passed**" if not failed
            else f"Gates: **FAILED ({failed} of {len(gates)} gates)**")


def gates_summary(gates: Sequence[Any]) -> tuple[str, bool]:
    """The line under a table of gates, and whether every gate passed."""
    failed = sum(not g.passed for g in gates)
    n = len(gates)
    return (f"FAILED: {failed} of {n} gate{'s' if n != 1 else ''}" if failed
            else "passed: the gate" if n == 1 else f"passed: all {n} gates"), not failed


def md_notes(notes: Sequence[str]) -> list[str]:
    """Markdown lines of the notes under a table (default losses the data ruled out)."""
    return [line for n in notes for line in ("", f"note: {md_cell(n)}")]
