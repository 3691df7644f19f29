"""Slices in every format: a Rich table per grouping and loss (80 columns), markdown tables,
the lines that say how the slices were made and tested, and slice gates collapsed for tables."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from losscli.render import ci_text, fmt, pct

#: one-line description of the flag, for notes
TEST = ("WORSE: a one-sided Welch t-test against the other rows, at a Benjamini-Hochberg "
        "false-discovery rate of {alpha:g} over the {tested} slice(s) tested")
PAIRED_TEST = ("REGRESSED: a one-sided paired t-test of delta > 0 in the slice, at a "
               "Benjamini-Hochberg false-discovery rate of {alpha:g} over the {tested} "
               "slice(s) tested")


def _status_text(status: str) -> str:
    return {"too small": "small", "heavy-tailed": "heavy", "not tested": "-",
            "no variance": "-"}.get(status, "")


def flag_cell(x: Any) -> str:
    """'WORSE' (or 'REGRESSED'), '' (tested, not flagged), 'small', 'heavy' or '-'."""
    return x.flag.upper() if x.flag else _status_text(x.status)


def group_notes(group: Any, spec: str | None = None, paired: bool = False) -> list[str]:
    """What the reader needs to read a grouping's slices: bins, (other), the test, the slices
    not tested."""
    lines = []
    for col, b in group.bins.items():
        edges = ", ".join(f"{e:.6g}" for e in b["edges"]) or "none (one bin)"
        lines.append(f"{col}: bin edges {edges} (from {b['from']})")
    if group.merged:
        lines.append(f"(other): the {group.merged:,} rarest value(s) past --max-slices "
                     f"{group.max_slices:,}")
    if group.sampled:
        lines.append("(other) also holds values past the memory limit of distinct values, "
                     "kept by a hash of their text (see README: Slices)")
    specs = [spec] if spec else ([x.spec for x in group.slices[0].losses] if group.slices
                                 else [])
    for s in specs:
        small = sum(1 for sl in group.slices for x in sl.losses
                    if x.spec == s and x.status == "too small")
        heavy = sum(1 for sl in group.slices for x in sl.losses
                    if x.spec == s and x.status == "heavy-tailed")
        text = (PAIRED_TEST if paired else TEST).format(alpha=group.alpha,
                                                         tested=group.tested(s))
        if small:
            text += f"; {small} small (under --min-rows {group.min_rows})"
        if heavy:
            text += (f"; {heavy} heavy-tailed, not tested (tail index below 2, the rule of "
                     "the overall warning)")
        lines.append(text if len(specs) == 1 else f"{s}: {text}")
    if group.unsliced:
        lines.append("no slices for " + ", ".join(group.unsliced) + " (balanced class weights "
                     "are measured over the whole input)")
    return lines


def slice_tables(report: Any, width: int, paired: bool = False) -> list[Any]:
    """A table per grouping and loss, the worst slices first, with its notes; ``paired``
    (compare): the values are deltas, candidate - baseline."""
    from rich.markup import escape
    from rich.table import Table
    from rich.text import Text

    from losscli.render import titled

    parts: list[Any] = []
    level = next((x.ci.level for g in report.slices for s in g.slices for x in s.losses
                  if x.ci is not None), None)
    overall = {r.spec: r.delta if paired else r.value for r in report.losses}
    value = "delta" if paired else "value"
    for group in report.slices:
        specs = [x.spec for x in group.slices[0].losses] if group.slices else []
        shown = group.shown()
        for spec in specs:
            title = (f"Slices by {group.text}: {spec}, overall "
                     f"{fmt(overall.get(spec), sign=paired)}; "
                     f"worst {len(shown)} of {len(group.slices)}")
            table = Table(header_style="bold", box=None, padding=(0, 1), pad_edge=False)
            table.add_column(escape(group.text), overflow="fold")
            for name in ("rows", "share", value):
                table.add_column(name, justify="right", no_wrap=True)
            if level is not None:
                table.add_column(f"{100 * level:g}% CI", justify="right", no_wrap=True)
            for name in ("gap", "contrib."):
                table.add_column(name, justify="right", no_wrap=True)
            table.add_column("flag", no_wrap=True)
            for s in shown:
                x = s.loss(spec)
                if x is None:
                    continue
                cells = [escape(s.values), f"{s.rows:,}", pct(s.weight),
                         fmt(x.value, 4, sign=paired)]
                if level is not None:
                    cells.append("-" if x.ci is None else ci_text(x.ci.low, x.ci.high, 4,
                                                                  sign=paired))
                cells += [fmt(x.gap, 3, sign=True), fmt(x.contribution, 3, sign=True)]
                flag = flag_cell(x)
                table.add_row(*cells, Text(flag, "bold red") if x.flag else flag)
            parts.append(titled(title, table))
            for line in group_notes(group, spec, paired):
                parts.append(Text(line, "dim"))
    return parts


def markdown_lines(report: Any, paired: bool = False) -> list[str]:
    """The slices as markdown: a table per grouping and loss, then the notes."""
    from losscli.render import md_cell

    value = "delta" if paired else "value"
    out: list[str] = []
    for group in report.slices:
        specs = [x.spec for x in group.slices[0].losses] if group.slices else []
        shown = group.shown()
        for spec in specs:
            out += ["", f"**Slices by {md_cell(group.text)}: `{md_cell(spec)}`** "
                    f"({len(shown)} of {len(group.slices)}, worst contribution first)", "",
                    f"| {md_cell(group.text)} | rows | share | {value} | CI | gap | contribution "
                    "| flag |", "|---|---:|---:|---:|---:|---:|---:|---|"]
            for s in shown:
                x = s.loss(spec)
                if x is None:
                    continue
                ci = "-" if x.ci is None else ci_text(x.ci.low, x.ci.high, 4, sign=paired)
                flag = f"**{x.flag}**" if x.flag else _status_text(x.status)
                out.append(f"| {md_cell(s.values)} | {s.rows:,} | {pct(s.weight)} | "
                           f"{fmt(x.value, 6, sign=paired)} | {ci} | {fmt(x.gap, 4, sign=True)} | "
                           f"{fmt(x.contribution, 4, sign=True)} | {flag} |")
        out += [""] + [f"{md_cell(line)}  " for line in group_notes(group, None, paired)]
    return out


def shown_gates(gates: Sequence[Any]) -> list[tuple[Any, str | None]]:
    """Gates for a table: every gate but the passing slice gates, which collapse into one
    row per loss and limit, with the text of that row's result ((gate, None) otherwise)."""
    rows: list[tuple[Any, str | None]] = []
    passed: dict[tuple[str, float], list[Any]] = {}
    for g in gates:
        if g.kind == "slice" and g.passed:
            passed.setdefault((g.loss, g.limit), []).append(g)
        else:
            rows.append((g, None))
    for group in passed.values():
        top = max(group, key=lambda g: g.value)
        rows.append((top, f"pass: {len(group)} slice(s), the highest {top.detail}"))
    return rows


def github_lines(slices: Any, escape: Any, prop: Any) -> list[str]:
    """A ::warning per flagged slice and loss."""
    lines = []
    for group in slices or []:
        for s in group.slices:
            for x in s.losses:
                if not x.flag:
                    continue
                what = "delta" if x.baseline is not None else x.spec
                text = (f"{x.spec}: {what} = {x.value:.6g} in slice {s.label} ({s.rows:,} rows), "
                        f"overall {x.value - x.gap:.6g}: {x.flag} (one-sided p = {x.p:.3g}, "
                        f"Benjamini-Hochberg q = {x.q:.3g})")
                lines.append(f"::warning title={prop(f'losscli slice {s.label}')}::"
                             f"{escape(text)}")
    return lines


#: the columns a csv adds for slices, after its own
CSV_COLUMNS = ["grouping", "slice", "rows", "weight", "gap", "contribution", "flag", "status",
               "p", "q"]


def csv_cells(group: Any, s: Any, x: Any) -> list[Any]:
    """A slice and loss's cells under CSV_COLUMNS."""
    return [group.text, s.label, s.rows, repr(s.weight), repr(x.gap), repr(x.contribution),
            x.flag or "", x.status, "" if x.p is None else repr(x.p),
            "" if x.q is None else repr(x.q)]


def csv_rows(slices: Any) -> list[tuple[Any, Any, Any]]:
    """(group, slice, loss) of every slice and loss, in order."""
    return [(g, s, x) for g in slices or [] for s in g.slices for x in s.losses]
