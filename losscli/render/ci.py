"""Formats for CI systems: markdown (PR comments, step summaries), csv, JUnit XML, GitHub
annotations."""

from __future__ import annotations

import csv
import io
import re
import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING

from losscli.gates import distinct
from losscli.render import (
    ci_header,
    ci_text,
    fmt,
    gates_verdict,
    md_cell,
    md_notes,
    pct,
    with_defaults,
)
from losscli.uncertainty import Interval

if TYPE_CHECKING:  # the result types only: no engine at import
    from losscli.engine import LossResult, Report

GRADIENT_FIELDS = ("mean", "std", "abs_mean", "abs_max", "rms", "norm", "p50", "p90", "p99",
                   "vanishing_fraction", "exploding_fraction", "clipped_fraction")


def _ends(ci: Interval | None) -> tuple[float | None, float | None]:
    return (None, None) if ci is None else (ci.low, ci.high)


def _ci_note(r: LossResult) -> str:
    """', se 0.01, 95% CI [a, b] (johnson)' for a loss with an interval, else ''."""
    if r.ci is None:
        return ""
    return (f", se {fmt(r.se, 4)}, {100 * r.ci.level:g}% CI {ci_text(r.ci.low, r.ci.high)} "
            f"({r.ci.method})")



def markdown(report: Report) -> str:
    """A markdown report: header, loss table, gate table and verdict."""
    src = report.source
    out = [
        f"### losscli: {md_cell(src.path)}",
        "",
        f"{src.rows_used:,} rows used of {src.rows:,} ({src.format}), task **{report.task}**, "
        f"input {report.input}. {gates_verdict(report.gates)}",
        "",
    ]
    header = ci_header(report)
    interval = "" if header is None else f" se | {header} |"
    out += [
        f"| loss | value |{interval} g mean | g std | \\|g\\| p50 | \\|g\\| p99 | vanishing "
        "| exploding |",
        "|---|---:|" + ("---:|---:|" if header else "") + "---:|---:|---:|---:|---:|---:|",
    ]
    for r in report.losses:
        g = r.gradient
        cells = "" if header is None else (
            f" {fmt(r.se, 4)} | {ci_text(*_ends(r.ci))} |")
        out.append(f"| `{md_cell(with_defaults(r.spec))}` | {fmt(r.value)} |{cells} "
                   f"{fmt(g.mean, 4)} | {fmt(g.std, 4)} | {fmt(g.p50, 4)} | {fmt(g.p99, 4)} | "
                   f"{pct(g.vanishing_fraction)} | {pct(g.exploding_fraction)} |")
    if report.slices:
        from losscli.render.slices import markdown_lines

        out += markdown_lines(report)
    if report.gates:
        from losscli.render.slices import shown_gates

        out += ["", "| gate | loss | value | limit | result |", "|---|---|---:|---:|---|"]
        for gate, collapsed in shown_gates(report.gates):
            # as the table: the fewest digits (at least 6) that tell value and limit apart
            value, limit = distinct(gate.value, gate.limit) if gate.limit is not None else (
                fmt(gate.value), "-")
            result = (collapsed if collapsed is not None else "pass" if gate.passed
                      else f"**FAIL**: {md_cell(gate.message())}")
            out.append(f"| {gate.kind} | `{md_cell(gate.loss)}` | {value} | "
                       f"{limit} | {result} |")
    balanced = [r.balanced["text"] for r in report.losses if r.balanced is not None]
    if balanced:  # the class weights measured in the pass
        out += [""] + [f"balanced: {md_cell(t)}  " for t in balanced]
    out += md_notes(report.notes)
    for w in report.warnings:
        out += ["", f"> warning: {md_cell(w)}"]
    return "\n".join(out) + "\n"


def csv_text(report: Report) -> str:
    """One row per loss: value, gradient statistics and the verdict of its gates; with
    slices, then one row per slice and loss (its gates' verdict in 'passed')."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    from losscli.render.slices import CSV_COLUMNS, csv_cells, csv_rows

    sliced = CSV_COLUMNS if report.slices else []
    writer.writerow(["loss", "spec", "value", "se", "ci_low", "ci_high", "ci_level", "ci_method",
                     *(f"gradient_{f}" for f in GRADIENT_FIELDS), "gates", "passed", *sliced])
    for r in report.losses:
        gates = [g for g in report.gates if g.loss == r.spec and g.kind != "slice"]
        g = r.gradient
        ci = r.ci
        writer.writerow([r.name, r.spec, repr(r.value), "" if r.se is None else repr(r.se),
                         *(("", "", "", "") if ci is None else
                           (repr(ci.low), repr(ci.high), repr(ci.level), ci.method)),
                         *("" if getattr(g, f) is None else repr(getattr(g, f))
                           for f in GRADIENT_FIELDS),
                         ";".join(g.kind for g in gates),
                         "" if not gates else str(all(x.passed for x in gates)).lower(),
                         *([""] * len(sliced))])
    blank = [""] * len(GRADIENT_FIELDS)
    for group, s, x in csv_rows(report.slices):
        gates = [g for g in report.gates if g.kind == "slice" and g.loss == x.spec
                 and g.detail == s.label]
        ci = x.ci
        writer.writerow([
            x.spec.split(":")[0], x.spec, repr(x.value), "" if x.se is None else repr(x.se),
            *(("", "", "", "") if ci is None else
              (repr(ci.low), repr(ci.high), repr(ci.level), ci.method)),
            *blank, ";".join(g.kind for g in gates),
            "" if not gates else str(all(g.passed for g in gates)).lower(),
            *csv_cells(group, s, x)])
    return buf.getvalue()


#: Characters XML 1.0 cannot carry, even escaped: control characters other than tab, newline
#: and carriage return, lone surrogates (from undecodable file names) and U+FFFE / U+FFFF.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _xml_chars(text: str) -> str:
    """Text that any XML parser accepts: characters XML cannot carry become ``\\xNN`` /
    ``\\uNNNN`` escapes (ElementTree would write them as they are: not well-formed)."""
    return _NOT_XML.sub(lambda m: ascii(m[0])[1:-1], text)


def junit(report: Report) -> str:
    """JUnit XML: a testcase per gate (failure when it failed) and one per loss value."""
    failures = sum(not g.passed for g in report.gates)
    tests = len(report.gates) + len(report.losses)
    suites = ET.Element("testsuites", name="losscli", tests=str(tests), failures=str(failures),
                        errors="0", time=f"{report.elapsed_seconds:.3f}")
    suite = ET.SubElement(suites, "testsuite", name=f"losscli eval {report.source.path}",
                          tests=str(tests), failures=str(failures), errors="0", skipped="0",
                          time=f"{report.elapsed_seconds:.3f}")
    for gate in report.gates:
        limit = "" if gate.limit is None else f" <= {gate.limit!r}"
        where = f" in slice {gate.detail}" if gate.kind == "slice" else ""
        case = ET.SubElement(suite, "testcase", classname=f"losscli.gates.{gate.kind}",
                             name=f"{gate.kind} {gate.loss}{where}{limit}", time="0")
        if not gate.passed:
            failure = ET.SubElement(case, "failure", message=gate.message(), type=gate.kind)
            failure.text = gate.message()
    for r in report.losses:
        case = ET.SubElement(suite, "testcase", classname="losscli.losses", name=r.spec,
                             time="0")
        ET.SubElement(case, "system-out").text = f"{r.spec} = {r.value!r}{_ci_note(r)}"
    return xml_document(suites)


def xml_document(root: ET.Element) -> str:
    """The XML text of a tree, well-formed whatever its texts hold (see _xml_chars)."""
    for element in root.iter():
        element.attrib = {k: _xml_chars(v) for k, v in element.attrib.items()}
        if element.text:
            element.text = _xml_chars(element.text)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, "unicode") + "\n"


def _gh_escape(text: str) -> str:
    """A workflow command's message (GitHub's toolkit escapeData)."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _gh_property(text: str) -> str:
    """A workflow command's property value (escapeProperty): ':' and ',' too."""
    return _gh_escape(text).replace(":", "%3A").replace(",", "%2C")


def github(report: Report) -> str:
    """GitHub Actions workflow commands: an ::error per failed gate, a ::notice per loss."""
    lines = [f"::error title={_gh_property(f'losscli gate failed: {g.loss}')}::"
             f"{_gh_escape(g.message())}" for g in report.gates if not g.passed]
    lines += [f"::warning title=losscli::{_gh_escape(w)}" for w in report.warnings]
    lines += [f"::notice title={_gh_property(f'losscli {r.spec}')}::"
              f"{_gh_escape(f'{r.spec} = {r.value:.10g}{_ci_note(r)}')}" for r in report.losses]
    from losscli.render.slices import github_lines

    lines += github_lines(report.slices, _gh_escape, _gh_property)
    return "\n".join(lines) + "\n"
