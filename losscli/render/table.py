"""Rich tables of an eval Report: a header, loss values, gradient statistics."""

from __future__ import annotations

from typing import Any

from rich.console import Console, Group
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from losscli.engine import Report
from losscli.gates import distinct
from losscli.render import fmt, pct


def eval_renderable(report: Report) -> Group:
    """The whole eval report as Rich renderables."""
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
    )
    show_clip = report.settings.get("grad_clip") is not None
    show_inputs = any(r.clipped_inputs is not None for r in report.losses)
    table = Table(title="Losses and gradient statistics (g = d loss / d prediction)",
                  title_justify="left", header_style="bold")
    table.add_column("loss", style="cyan", no_wrap=True)
    table.add_column("value", justify="right", style="bold")
    for name in ("g mean", "g std", "|g| mean", "|g| max", "rms", "norm", "|g| p50", "|g| p90",
                 "|g| p99", "vanish", "explode"):
        table.add_column(name, justify="right")
    if show_clip:
        table.add_column("clipped", justify="right")
    if show_inputs:
        table.add_column("p clipped", justify="right")
    for r in report.losses:
        g = r.gradient
        row = [escape(r.spec), fmt(r.value), fmt(g.mean, 4), fmt(g.std, 4), fmt(g.abs_mean, 4),
               fmt(g.abs_max, 4), fmt(g.rms, 4), fmt(g.norm, 4), fmt(g.p50, 4), fmt(g.p90, 4),
               fmt(g.p99, 4), pct(g.vanishing_fraction), pct(g.exploding_fraction)]
        if show_clip:
            row.append(pct(g.clipped_fraction))
        if show_inputs:
            row.append("-" if r.clipped_inputs is None else f"{r.clipped_inputs:,}")
        table.add_row(*row)
    parts: list[Any] = [head, table]
    for r in report.losses:
        if r.balanced is not None:  # the class weights measured in the pass
            parts.append(Text(f"balanced: {r.balanced['text']}", "dim"))
    if report.gates:
        gates = Table(title="Gates", title_justify="left", header_style="bold")
        for name in ("gate", "loss", "value", "limit", "result"):
            gates.add_column(name, justify="right" if name in ("value", "limit") else "left")
        for g in report.gates:
            value, limit = distinct(g.value, g.limit) if g.limit is not None else (
                fmt(g.value, 10), "-")
            result = Text("pass", "green") if g.passed else Text(
                "FAIL" + (f": {g.detail}" if g.limit is None else ""), "bold red")
            gates.add_row(g.kind, g.loss, value, limit, result)
        parts.append(gates)
        failed = sum(not g.passed for g in report.gates)
        parts.append(Text(f"FAILED: {failed} of {len(report.gates)} gates" if failed
                          else f"passed: {len(report.gates)} gates",
                          "bold red" if failed else "bold green"))
    for note in report.notes:
        parts.append(Text("note: " + note, style="dim"))
    if report.config is not None:
        parts.append(config_table(report.config))
    return Group(*parts)


def config_table(config: dict[str, Any]) -> Table:
    """``--show-config``: each setting as it would be written, and where it came from."""
    from losscli.settings import plain

    conf = Table(title="Configuration", title_justify="left", header_style="bold")
    for name in ("setting", "value", "from"):
        conf.add_column(name)
    for key, entry in config.items():
        conf.add_row(key, escape(plain(entry["value"])), escape(entry["source"]))
    return conf


def print_eval(report: Report, console: Console) -> None:
    console.print(eval_renderable(report))
