"""Renderers: a Report (plain data) to text. With cli.py, the only modules that use Rich."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from losscli.engine import Report


def fmt(v: float | None, digits: int = 6) -> str:
    """A number for humans: ``digits`` significant digits, '-' for missing or NaN."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{v:.{digits}g}"


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


def pct(v: float | None) -> str:
    """A fraction as a percentage with enough digits to see small shares."""
    if v is None or math.isnan(v):
        return "-"
    if v == 0:
        return "0%"
    return f"{100 * v:.3g}%"


def ci_text(low: float | None, high: float | None, digits: int = 5) -> str:
    """An interval as '[low, high]'."""
    return f"[{fmt(low, digits)}, {fmt(high, digits)}]"


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
