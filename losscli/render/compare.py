"""Output of ``losscli compare``: a Rich table (readable at 80 columns), markdown, csv, JUnit
XML and GitHub workflow commands."""

from __future__ import annotations

import csv
import io
import math
import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING, Any

from losscli.compare import Comparison, LossComparison, p_text
from losscli.render import (
    ci_text,
    fmt,
    gates_summary,
    gates_verdict,
    md_cell,
    md_notes,
    pct,
    with_defaults,
)
from losscli.render.ci import xml_document

if TYPE_CHECKING:
    from rich.console import Console, Group


def _ci_label(c: Comparison) -> str:
    ci = c.losses[0].ci
    return f"{100 * ci.level:g}% CI of delta ({ci.method})"


#: The candidate's rows whose loss is lower / equal / higher than the baseline's (JSON
#: rows_better, rows_equal, rows_worse): rows, not loss functions.
ROWS_HEADER = "rows better / tied / worse"


def _wtl(r: LossComparison) -> str:
    return f"{r.rows_better:,} / {r.rows_equal:,} / {r.rows_worse:,}"


def family_note(c: Comparison) -> str | None:
    """The line said once under the per-loss sentences instead of '(adjusted over N tests)' on
    each: which p-values are adjusted, over how many distinct tests."""
    sizes: dict[int, list[str]] = {}
    for r in c.losses:
        if r.family > 1:
            sizes.setdefault(r.family, []).append(r.spec)
    if not sizes:
        return None
    if len(sizes) == 1 and sum(map(len, sizes.values())) == len(c.losses):
        return (f"p: adjusted over {next(iter(sizes))} distinct tests (fully correlated losses "
                "count once)")
    return "; ".join(f"p of {', '.join(specs)}: adjusted over {n} distinct tests"
                     for n, specs in sizes.items())


def _columns(c: Comparison) -> tuple[list[tuple[str, list[str]]], list[tuple[str, list[str]]]]:
    rs = c.losses
    head = [("delta", [fmt(r.delta, sign=True) for r in rs]),
            ("rel.", [pct(r.relative_delta, sign=True) for r in rs]),
            (_ci_label(c), [ci_text(r.ci.low, r.ci.high, sign=True) for r in rs]),
            ("p (adj.)", [p_text(r.p_adjusted) for r in rs]), ("verdict", [r.verdict for r in rs])]
    rest = [("baseline", [fmt(r.baseline) for r in rs]),
            ("candidate", [fmt(r.candidate) for r in rs]), ("se", [fmt(r.se, 4) for r in rs]),
            ("p", [p_text(r.p_value) for r in rs]), (ROWS_HEADER, [_wtl(r) for r in rs])]
    return head, rest


def compare_renderable(c: Comparison, width: int = 240) -> Group:
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    from losscli.render import titled
    from losscli.render.table import config_table, packed_tables

    head = Text.assemble(
        ("baseline ", "dim"), (c.baseline["path"], "bold"), ("  pred ", "dim"),
        ", ".join(c.baseline["pred"]), "\n", ("candidate ", "dim"), (c.candidate["path"], "bold"),
        ("  pred ", "dim"), ", ".join(c.candidate["pred"]), "\n",
        ("task ", "dim"), (c.task, "bold"), ("  rows ", "dim"), f"{c.rows:,}",
        ("  target ", "dim"), c.baseline["target"],
        *((("  weight ", "dim"), c.baseline["weight"]) if c.baseline.get("weight") else ()),
        ("  alpha ", "dim"), f"{c.settings['alpha']:g}")
    first, rest = _columns(c)
    parts: list[Any] = [head, *packed_tables(
        [r.spec for r in c.losses], first, rest, width,
        ("Paired comparison: delta = candidate - baseline (lower is better)",
         "Paired comparison: delta = candidate - baseline (lower is better)",
         "Both models", "Both models, part {i}"))]
    for r in c.losses:
        style = "bold red" if r.verdict == "worse" else "bold green" if r.verdict == "better" \
            else ""
        parts.append(Text(r.sentence(family=False), style))
    adjusted = family_note(c)
    if adjusted is not None:
        parts.append(Text(adjusted, style="dim"))
    parts += [Text("note: " + note, style="dim") for note in c.notes]
    if c.slices:
        from losscli.render.slices import slice_tables

        parts += slice_tables(c, width, paired=True)
    if c.gates:
        gates = Table(header_style="bold")
        for name in ("gate", "loss", "bound", "margin", "result"):
            gates.add_column(name, justify="right" if name in ("bound", "margin") else "left")
        for g in c.gates:
            gates.add_row(g.kind.replace("_", "-"), g.loss, fmt(g.bound, sign=True),
                          f"{g.margin:g}",
                          Text("pass", "green") if g.passed else Text("FAIL", "bold red"))
        parts.append(titled("Gates", gates))
        line, ok = gates_summary(c.gates)
        parts.append(Text(line, "bold green" if ok else "bold red"))
    if c.config is not None:
        parts.append(config_table(c.config))
    return Group(*parts)


def print_compare(c: Comparison, console: Console) -> None:
    console.print(compare_renderable(c, console.width))


def sides_title(c: Comparison) -> str:
    """What is compared: two files, or two columns of one file ('f.parquet: old vs new')."""
    base, cand = c.baseline, c.candidate
    if base["path"] != cand["path"]:
        return f"{base['path']} vs {cand['path']}"
    return f"{base['path']}: {','.join(base['pred'])} vs {','.join(cand['pred'])}"


def markdown(c: Comparison) -> str:
    """PR comments and step summaries: the table, one sentence per loss, the gates."""
    out = [f"### losscli compare: {md_cell(sides_title(c))}", "",
           f"{c.rows:,} paired rows, task **{c.task}**, alpha {c.settings['alpha']:g}. "
           f"{gates_verdict(c.gates)}", "",
           f"| loss | baseline | candidate | delta | rel. | {_ci_label(c)} | p | p (adj.) | "
           f"{ROWS_HEADER} | verdict |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in c.losses:
        out.append(f"| `{md_cell(with_defaults(r.spec))}` | {fmt(r.baseline)} | "
                   f"{fmt(r.candidate)} | {fmt(r.delta, sign=True)} | "
                   f"{pct(r.relative_delta, sign=True)} | "
                   f"{ci_text(r.ci.low, r.ci.high, sign=True)} | "
                   f"{p_text(r.p_value)} | {p_text(r.p_adjusted)} | {_wtl(r)} | {r.verdict} |")
    out.append("")
    out += [f"- {md_cell(r.sentence(family=False))}" for r in c.losses]
    adjusted = family_note(c)
    if adjusted is not None:
        out += ["", md_cell(adjusted)]
    if c.slices:
        from losscli.render.slices import markdown_lines

        out += markdown_lines(c, paired=True)
    if c.gates:
        out += ["", "| gate | loss | bound | margin | result |", "|---|---|---:|---:|---|"]
        for g in c.gates:
            out.append(f"| {g.kind.replace('_', '-')} | `{md_cell(g.loss)}` | "
                       f"{fmt(g.bound, sign=True)} | "
                       f"{g.margin:g} | {'pass' if g.passed else '**FAIL**'} |")
    out += md_notes(c.notes)
    for w in c.warnings:
        out += ["", f"> warning: {md_cell(w)}"]
    return "\n".join(out) + "\n"


def csv_text(c: Comparison) -> str:
    """One row per loss; with slices, then one per slice and loss (its flag as the verdict,
    its one-sided p-value; no adjusted p-value nor rows better / tied / worse)."""
    from losscli.render.slices import CSV_COLUMNS, csv_cells, csv_rows

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    sliced = CSV_COLUMNS if c.slices else []
    w.writerow(["loss", "spec", "baseline", "candidate", "delta", "relative_delta", "se",
                "ci_low", "ci_high", "ci_level", "ci_method", "p_value", "p_adjusted",
                "rows_better", "rows_equal", "rows_worse", "verdict", *sliced])
    for r in c.losses:
        w.writerow([r.name, r.spec, repr(r.baseline), repr(r.candidate), repr(r.delta),
                    repr(r.relative_delta), repr(r.se), repr(r.ci.low), repr(r.ci.high),
                    repr(r.ci.level), r.ci.method, repr(r.p_value), repr(r.p_adjusted),
                    r.rows_better, r.rows_equal, r.rows_worse, r.verdict, *([""] * len(sliced))])
    for group, s, x in csv_rows(c.slices):
        ci = x.ci
        rel = x.value / abs(x.baseline) if x.baseline else math.nan
        w.writerow([x.spec.split(":")[0], x.spec, repr(x.baseline), repr(x.candidate),
                    repr(x.value), repr(rel), "" if x.se is None else repr(x.se),
                    *(("", "", "", "") if ci is None else
                      (repr(ci.low), repr(ci.high), repr(ci.level), ci.method)),
                    "" if x.p is None else repr(x.p), "", "", "", "", x.flag or "",
                    *csv_cells(group, s, x)])
    return buf.getvalue()


def junit(c: Comparison) -> str:
    """A testcase per gate (failure when it failed) and one per loss with its sentence."""
    failures = sum(not g.passed for g in c.gates)
    tests = len(c.gates) + len(c.losses)
    t = f"{c.elapsed_seconds:.3f}"
    suites = ET.Element("testsuites", name="losscli", tests=str(tests), failures=str(failures),
                        errors="0", time=t)
    suite = ET.SubElement(suites, "testsuite", name="losscli compare", tests=str(tests),
                          failures=str(failures), errors="0", skipped="0", time=t)
    for g in c.gates:
        case = ET.SubElement(suite, "testcase", classname=f"losscli.compare.{g.kind}",
                             name=f"{g.kind} {g.loss}", time="0")
        if not g.passed:
            ET.SubElement(case, "failure", message=g.message(), type=g.kind).text = g.message()
    for r in c.losses:
        case = ET.SubElement(suite, "testcase", classname="losscli.compare.losses",
                             name=r.spec, time="0")
        ET.SubElement(case, "system-out").text = r.sentence()
    return xml_document(suites)


def github(c: Comparison) -> str:
    """An ::error per failed gate, a ::warning per significantly worse loss, else ::notice."""
    from losscli.render.ci import _gh_escape, _gh_property

    lines = [f"::error title={_gh_property(f'losscli compare gate failed: {g.loss}')}::"
             f"{_gh_escape(g.message())}" for g in c.gates if not g.passed]
    lines += [f"::warning title=losscli::{_gh_escape(w)}" for w in c.warnings]
    for r in c.losses:
        kind = "warning" if r.verdict == "worse" else "notice"
        lines.append(f"::{kind} title={_gh_property(f'losscli compare {r.spec}')}::"
                     f"{_gh_escape(r.sentence())}")
    from losscli.render.slices import github_lines

    lines += github_lines(c.slices, _gh_escape, _gh_property)
    return "\n".join(lines) + "\n"
