"""Rich tables of an eval Report: a header, loss values with their intervals, gradient
statistics.

The value, its standard error and its interval come first and are never cut; the gradient
statistics follow in the same table when the console is wide enough, else in further tables of
the columns that fit (each repeating the loss column), so no number becomes an ellipsis.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rich.console import Console, Group
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from losscli.gates import distinct
from losscli.render import ci_header, ci_text, fmt, gates_summary, pct, titled, with_defaults

if TYPE_CHECKING:  # the result types only: no engine at import
    from losscli.engine import Report


def _columns(report: Report) -> tuple[list[tuple[str, list[str]]], list[tuple[str, list[str]]]]:
    """(the value columns, the gradient columns) as (header, cells) pairs, one cell a loss."""
    losses = report.losses
    head: list[tuple[str, list[str]]] = [("value", [fmt(r.value) for r in losses])]
    header = ci_header(report)
    if any(r.se is not None for r in losses):
        head.append(("se", [fmt(r.se, 4) for r in losses]))
    if header is not None:
        head.append((header, [ci_text(r.ci.low, r.ci.high) if r.ci is not None else "-"
                              for r in losses]))
    g = [r.gradient for r in losses]
    # multiclass and multilabel: g of a row is the L2 norm of its gradient row, never negative,
    # so |g| mean would repeat g mean
    norms = report.task in ("multiclass", "multilabel")
    grad: list[tuple[str, list[str]]] = [
        ("g mean", [fmt(x.mean, 4) for x in g]), ("g std", [fmt(x.std, 4) for x in g]),
        *([] if norms else [("|g| mean", [fmt(x.abs_mean, 4) for x in g])]),
        ("|g| max", [fmt(x.abs_max, 4) for x in g]),
        ("rms", [fmt(x.rms, 4) for x in g]), ("norm", [fmt(x.norm, 4) for x in g]),
        ("|g| p50", [fmt(x.p50, 4) for x in g]), ("|g| p90", [fmt(x.p90, 4) for x in g]),
        ("|g| p99", [fmt(x.p99, 4) for x in g]),
        ("vanish", [pct(x.vanishing_fraction) for x in g]),
        ("explode", [pct(x.exploding_fraction) for x in g])]
    if report.settings.get("grad_clip") is not None:
        grad.append(("|g| > clip", [pct(x.clipped_fraction) for x in g]))
    if any(r.clipped_inputs is not None for r in losses):
        # a count of probabilities moved to [eps, 1 - eps], not a fraction of gradients
        grad.append(("inputs clipped", ["-" if r.clipped_inputs is None
                                        else f"{r.clipped_inputs:,}" for r in losses]))
    return head, grad


def _width(column: tuple[str, Sequence[str]]) -> int:
    """Characters a column takes in a boxed table: its widest cell, padding and one rule."""
    header, cells = column
    return max(len(header), *(len(c) for c in cells)) + 3


def _pack(first: list[tuple[str, list[str]]], rest: list[tuple[str, list[str]]],
          room: int, first_room: int) -> list[list[tuple[str, list[str]]]]:
    """Columns in order, in as few tables as fit ``room`` characters beside the loss column:
    the first group together when it fits ``first_room`` (the room left when the loss column
    folds long specs), else as many of its columns as fit and the others first in the next
    table (Rich would squeeze them into ellipses); the rest added while they fit, then
    further tables. A continuation table never holds a lone column: the table before it gives
    up its last column when it keeps two and both fit, else the lone column joins an earlier
    continuation table with room for it."""
    together = sum(_width(c) for c in first) <= first_room
    tables: list[list[tuple[str, list[str]]]] = [list(first) if together else []]
    used = sum(_width(c) for c in tables[0])
    columns = [(c, room) for c in rest] if together else [
        *((c, first_room) for c in first), *((c, room) for c in rest)]
    for col, limit in columns:
        w = _width(col)
        if used + w > limit and tables[-1]:
            tables.append([])
            used = 0
        tables[-1].append(col)
        used += w
    tables = [t for t in tables if t]
    return _no_lone_column(tables, len(first) if together else 0, room)


def _no_lone_column(tables: list[list[tuple[str, list[str]]]], fixed: int,
                    room: int) -> list[list[tuple[str, list[str]]]]:
    """The packed tables with no continuation of one column (see _pack). ``fixed``: leading
    columns of the first table that stay there (the value group)."""
    if len(tables) < 2 or len(tables[-1]) != 1:
        return tables
    lone, before = tables[-1], tables[-2]
    keep = fixed if len(tables) == 2 else 0
    if len(before) - keep >= 1 and len(before) >= 3 and \
            _width(before[-1]) + _width(lone[0]) <= room:
        return [*tables[:-2], before[:-1], [before[-1], *lone]]
    for i in range(len(tables) - 2, 0, -1):  # an earlier continuation table with room
        if sum(_width(c) for c in tables[i]) + _width(lone[0]) <= room:
            return [*tables[:i], [*tables[i], *lone], *tables[i + 1:-1]]
    return tables


#: The narrowest loss column (text and padding) a table folds long specs into.
MIN_LOSS_WIDTH = 14
#: A weighted sum longer than this is shown one line per group of terms of at most this width.
SPEC_LINE = 28
#: A '+' between two terms of a weighted sum (not the sign of an exponent such as 1e+20).
_TERM_BREAK = re.compile(r"\+(?=[\d.]+(?:e-?\d+)?\*|[A-Za-z_])")


def spec_lines(spec: str, limit: int = SPEC_LINE) -> list[str]:
    """A loss spec as lines that break only between the terms of a weighted sum, never inside
    a term or a number ('quantile:q=0.2' / '5+...' read as q = 0.2)."""
    if len(spec) <= limit:
        return [spec]
    terms = _TERM_BREAK.split(spec)
    lines = [terms[0]]
    for term in terms[1:]:
        if len(lines[-1]) + 1 + len(term) <= limit:
            lines[-1] += "+" + term
        else:
            lines[-1] += "+"
            lines.append(term)
    return lines


def packed_tables(specs: Sequence[str], head: list[tuple[str, list[str]]],
                  rest: list[tuple[str, list[str]]], width: int,
                  titles: Sequence[str]) -> list[Group]:
    """Tables of one row per loss: the ``head`` columns always in the first, the ``rest``
    after them while ``width`` allows, then in further tables (each repeating the loss column).
    ``titles``: the title when everything fits, the first table's, the second's, and the
    further tables' (with '{i}' for the part number)."""
    specs = [with_defaults(s) for s in specs]
    lines = [spec_lines(s) for s in specs]
    names = [escape("\n".join(x)) for x in lines]
    loss_width = max(len("loss"), *(len(x) for ls in lines for x in ls)) + 3
    # a term is never folded: the loss column is at least as wide as the longest one
    term = max(len(t) for s in specs for t in _TERM_BREAK.split(s))
    groups = _pack(head, rest, max(width - loss_width - 1, 1),
                   max(width - min(loss_width, max(MIN_LOSS_WIDTH, term + 3)) - 1, 1))
    tables = []
    for i, group in enumerate(groups):
        title = (titles[0] if len(groups) == 1 else titles[1] if i == 0 else titles[2]
                 if i == 1 else titles[3].format(i=i))
        table = Table(header_style="bold")
        table.add_column("loss", style="cyan", overflow="fold", min_width=min(term, width // 2))
        for j, (header, _) in enumerate(group):
            table.add_column(header, justify="right", no_wrap=True,
                             style="bold" if i == 0 and j == 0 else "")
        for k, name in enumerate(names):
            table.add_row(name, *(cells[k] for _, cells in group))
        tables.append(titled(title, table))
    return tables


def loss_tables(report: Report, width: int) -> list[Group]:
    """The value table, with as many gradient columns as ``width`` allows, then tables of
    the remaining gradient statistics."""
    head, grad = _columns(report)
    return packed_tables([r.spec for r in report.losses], head, grad, width, (
        "Losses and gradient statistics (g = d loss / d prediction)", "Losses",
        "Gradient statistics (g = d loss / d prediction)", "Gradient statistics, part {i}"))


def eval_renderable(report: Report, width: int = 240) -> Group:
    """The whole eval report as Rich renderables, laid out for ``width`` columns."""
    src = report.source
    cols = report.columns
    pred = ", ".join(cols["pred"]) if len(cols["pred"]) <= 4 else (
        f"{cols['pred'][0]} ... {cols['pred'][-1]} ({len(cols['pred'])} columns)")
    head = Text.assemble(
        ("source ", "dim"), (src.path, "bold"), ("  format ", "dim"), src.format,
        ("  rows ", "dim"), f"{src.rows:,}",
        *((("  used ", "dim"), f"{src.rows_used:,}", ("  dropped ", "dim"),
           f"{src.rows_dropped:,}") if src.rows_dropped else ()),
        "\n",
        ("task ", "dim"), (report.task, "bold"), ("  input ", "dim"), report.input,
        ("  pred ", "dim"), pred, ("  target ", "dim"), cols["target"],
        *((("  weight ", "dim"), cols["weight"]) if cols.get("weight") else ()),
        *((("  var ", "dim"), cols["var"]) if cols.get("var") else ()),
    )
    parts: list[Any] = [head, *loss_tables(report, width)]
    for r in report.losses:
        if r.balanced is not None:  # the class weights measured in the pass
            parts.append(Text(f"balanced: {r.balanced['text']}", "dim"))
        if r.per_label is not None:  # multilabel: the loss of each label
            parts.append(Text(f"{r.spec} per label: " + ", ".join(
                f"{k} {fmt(v)}" for k, v in r.per_label.items()), "dim"))
        if r.var_gradient is not None:  # gaussian_nll: its gradient w.r.t. the variance too
            v = r.var_gradient
            parts.append(Text(
                f"{r.spec}: gradient w.r.t. the variance: mean {fmt(v.mean)}, std "
                f"{fmt(v.std)}, |g| mean {fmt(v.abs_mean)}, p50 {fmt(v.p50)}, p99 "
                f"{fmt(v.p99)}, max {fmt(v.abs_max)}", "dim"))
    if report.slices:
        from losscli.render.slices import slice_tables

        parts += slice_tables(report, width)
    if report.gates:
        from losscli.render.slices import shown_gates

        gates = Table(header_style="bold")
        for name in ("gate", "loss", "value", "limit", "result"):
            gates.add_column(name, justify="right" if name in ("value", "limit") else "left")
        for g, collapsed in shown_gates(report.gates):
            value, limit = distinct(g.value, g.limit) if g.limit is not None else (
                fmt(g.value), "-")
            if collapsed is not None:
                result = Text(collapsed, "green")
            else:
                result = Text("pass", "green") if g.passed else Text(
                    "FAIL" + (f": {g.detail}" if g.limit is None or g.kind == "slice" else ""),
                    "bold red")
            gates.add_row(g.kind, escape(g.loss), value, limit, result)
        parts.append(titled("Gates", gates))
        line, ok = gates_summary(report.gates)
        parts.append(Text(line, "bold green" if ok else "bold red"))
    for note in report.notes:
        parts.append(Text("note: " + note, style="dim"))
    if report.config is not None:
        parts.append(config_table(report.config))
    return Group(*parts)


def config_table(config: dict[str, Any]) -> Group:
    """``--show-config``: each setting as it would be written, and where it came from."""
    from losscli.settings import plain

    conf = Table(header_style="bold")
    for name in ("setting", "value", "from"):
        conf.add_column(name)
    for key, entry in config.items():
        conf.add_row(key, escape(plain(entry["value"])), escape(entry["source"]))
    return titled("Configuration", conf)


def print_eval(report: Report, console: Console) -> None:
    console.print(eval_renderable(report, console.width))
