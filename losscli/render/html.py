"""The self-contained HTML report: one file, styles and figures inline, no network.

It opens with the verdict (gates, compare verdicts, the recommendation), then the loss table
with intervals, then the figures with their captions, then the settings and provenance. Light
and dark schemes follow ``prefers-color-scheme``; it prints and reads on a phone.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

from losscli.render.plots import Plot, svg

CSS = """
:root{--bg:#ffffff;--ink:#1b1f24;--muted:#57606a;--grid:#8c959f;--line:#d0d7de;
--card:#f6f8fa;--ok:#1a7f37;--bad:#cf222e;--warn:#9a6700;color-scheme:light dark}
@media (prefers-color-scheme:dark){:root{--bg:#0d1117;--ink:#e6edf3;--muted:#9198a1;
--grid:#6e7681;--line:#30363d;--card:#161b22;--ok:#3fb950;--bad:#f85149;--warn:#d29922}}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);
font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
main{max-width:960px;margin:0 auto;padding:16px}
h1{font-size:1.4em;margin:.2em 0;overflow-wrap:anywhere}
h2{font-size:1.15em;margin:1.6em 0 .5em;border-bottom:1px solid var(--line);padding-bottom:.2em}
.sub,.muted,figcaption{color:var(--muted)}
.verdict{background:var(--card);border:1px solid var(--line);border-left:6px solid var(--muted);
border-radius:6px;padding:10px 14px}
.verdict.pass{border-left-color:var(--ok)}.verdict.fail{border-left-color:var(--bad)}
.verdict p{margin:.3em 0}.verdict .big{font-size:1.15em;font-weight:600}
.ok{color:var(--ok)}.bad{color:var(--bad)}.warn{color:var(--warn)}
ul{padding-left:1.2em;margin:.3em 0}
.scroll{overflow-x:auto;-webkit-overflow-scrolling:touch}
table{border-collapse:collapse;font-variant-numeric:tabular-nums;min-width:100%}
th,td{padding:4px 10px;border-bottom:1px solid var(--line);text-align:right;white-space:nowrap}
th:first-child,td:first-child{text-align:left}
td.wrap{white-space:normal;text-align:left;min-width:14em}
th{font-weight:600;background:var(--card)}
figure{margin:1.2em 0;break-inside:avoid;page-break-inside:avoid}
figure svg{display:block;width:100%;height:auto}
figcaption{font-size:.92em;margin-top:.2em}
details{margin-top:.4em;font-size:.9em}summary{cursor:pointer;color:var(--muted)}
figcaption b{color:var(--ink)}
dl{display:grid;grid-template-columns:max-content 1fr;gap:2px 14px;margin:0}
dt{color:var(--muted)}dd{margin:0;overflow-wrap:anywhere}
code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.9em}
@media (max-width:600px){body{font-size:14px}main{padding:10px}th,td{padding:3px 6px}}
@media print{:root{--bg:#fff;--ink:#000;--muted:#333;--line:#bbb;--card:#fff}
main{max-width:none;padding:0}h2{break-after:avoid}}
"""


@dataclass
class Provenance:
    """Where a report came from: the command line, the version and the time it was made."""

    command: str
    version: str
    created: str
    #: seconds the run took (None: not measured)
    elapsed: float | None = None


def _e(x: Any) -> str:
    return escape(str(x), quote=True)


def num(x: float | None, digits: int = 6) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    return f"{x:.{digits}g}"


_WRAP = '<span class="wrap">'


def _table(head: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    th = "".join(f"<th>{_e(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(
        f'<td class="wrap">{c[len(_WRAP):-7]}</td>' if c.startswith(_WRAP) else f"<td>{c}</td>"
        for c in r) + "</tr>" for r in rows)
    return f'<div class="scroll"><table><thead><tr>{th}</tr></thead><tbody>{body}</tbody>' \
           "</table></div>"


def _items(lines: Iterable[str], cls: str = "") -> str:
    out = "".join(f"<li{f' class={chr(34)}{cls}{chr(34)}' if cls else ''}>{_e(x)}</li>"
                  for x in lines)
    return f"<ul>{out}</ul>" if out else ""


def _figures(plots: Sequence[Plot]) -> str:
    if not plots:
        return ""
    parts = [f'<figure id="{_e(p.name)}">{svg(p)}<figcaption><b>{_e(p.title)}.</b> '
             f"{_e(p.caption)}</figcaption>{_counts(p)}</figure>" for p in plots]
    return "<h2>Figures</h2>" + "".join(parts)


def _counts(p: Plot) -> str:
    """The exact counts behind a figure, folded away (rows: true class, columns: predicted)."""
    if p.table is None:
        return ""
    rows, cols, cells = p.table
    body = [[_e(r), *(f"{int(v):,}" for v in line)] for r, line in zip(rows, cells,
                                                                      strict=True)]
    table = _table(["true class / predicted", *cols], body)
    return f"<details><summary>{_e(p.title)}: the counts</summary>{table}</details>"


def _settings(pairs: Sequence[tuple[str, Any]]) -> str:
    return "<dl>" + "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in pairs
                            if v is not None) + "</dl>"


def page(title: str, subtitle: str, verdict: str, table: str, plots: Sequence[Plot],
         settings: Sequence[tuple[str, Any]], prov: Provenance) -> str:
    """The whole document."""
    meta = [*settings, ("command", prov.command), ("losscli", prov.version),
            ("created", prov.created),
            ("run time", None if prov.elapsed is None else f"{prov.elapsed:.2f} s")]
    return ("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<meta name=\"generator\" content=\"losscli {_e(prov.version)}\">"
            f"<title>{_e(title)}</title><style>{CSS}</style></head><body><main>"
            f"<header><h1>{_e(title)}</h1><p class=\"sub\">{_e(subtitle)}</p></header>"
            f"{verdict}{table}{_figures(plots)}"
            f"<h2>Settings and provenance</h2>{_settings(meta)}</main></body></html>\n")


def _notes(warnings: Sequence[str], notes: Sequence[str]) -> str:
    return _items(warnings, "warn") + _items(notes, "muted")


# --- eval ----------------------------------------------------------------------------------------


def eval_html(report: Any, plots: Sequence[Plot], prov: Provenance) -> str:
    gates = report.gates
    if gates:
        ok = report.passed
        failed = sum(not g.passed for g in gates)
        head = ("All gates passed" if ok else f"{failed} of {len(gates)} gate(s) failed")
        lines = "".join(f'<li class="{"ok" if g.passed else "bad"}">'
                        f'{"pass" if g.passed else "FAIL"}: {_e(g.message())}</li>'
                        for g in gates)
        verdict = (f'<section class="verdict {"pass" if ok else "fail"}"><p class="big">'
                   f"{_e(head)}</p><ul>{lines}</ul>")
    else:
        verdict = ('<section class="verdict"><p class="big">No gates set</p><p>'
                   f"{len(report.losses)} loss(es) on {report.source.rows_used:,} rows; pass "
                   "<code>--max</code> or <code>--baseline</code> to gate.</p>")
    cal = report.figures.calibration if report.figures is not None else None
    if cal is not None:
        verdict += f"<p>Expected calibration error {num(cal['ece'], 4)}.</p>"
    verdict += _notes(report.warnings, report.notes) + "</section>"
    ci = next((r.ci for r in report.losses if r.ci is not None), None)
    level = f"{100 * ci.level:g}% interval" if ci is not None else "interval"
    rows = [[_e(r.spec), num(r.value), ("–" if r.ci is None else
                                        f"{num(r.ci.low)} – {num(r.ci.high)}"),
             num(r.se, 3), num(r.gradient.p50, 3), num(r.gradient.p90, 3),
             num(r.gradient.p99, 3)] for r in report.losses]
    table = "<h2>Losses</h2>" + _table(["loss", "value", level, "SE", "|g| p50", "|g| p90",
                                        "|g| p99"], rows)
    src = report.source
    settings = [("source", src.path), ("format", src.format),
                ("rows", f"{src.rows:,} ({src.rows_used:,} used, {src.rows_dropped:,} "
                         "dropped)"),
                ("task", f"{report.task} ({report.input})"),
                ("columns", ", ".join(f"{k} = {', '.join(v) if isinstance(v, list) else v}"
                                      for k, v in report.columns.items()
                                      if v is not None and k != "classes")),
                *[(k, v) for k, v in report.settings.items()]]
    if report.columns.get("weight"):
        settings.append(("figures", "count rows (the sample weights enter the loss values "
                                    "only)"))
    return page(f"losscli eval: {src.path}", f"{report.task} · {src.rows_used:,} rows",
                verdict, table, plots, settings, prov)


# --- compare -------------------------------------------------------------------------------------


def compare_html(result: Any, plots: Sequence[Plot], prov: Provenance) -> str:
    verdicts = [r.verdict for r in result.losses]
    better, worse = verdicts.count("better"), verdicts.count("worse")
    if worse:
        head, cls = f"The candidate is significantly worse on {worse} loss(es)", "fail"
    elif better:
        head, cls = f"The candidate is significantly better on {better} loss(es)", "pass"
    else:
        head, cls = "No significant difference", ""
    if result.gates:
        cls = "pass" if result.passed else "fail"
    tone = {"better": "ok", "worse": "bad"}
    lines = "".join(f'<li class="{tone.get(r.verdict, "")}">{_e(r.sentence())}</li>'
                    for r in result.losses)
    gates = "".join(f'<li class="{"ok" if g.passed else "bad"}">'
                    f'{"pass" if g.passed else "FAIL"}: {_e(g.message())}</li>'
                    for g in result.gates)
    verdict = (f'<section class="verdict {cls}"><p class="big">{_e(head)}</p><ul>{lines}</ul>'
               + (f"<p>Gates:</p><ul>{gates}</ul>" if gates else "")
               + _notes(result.warnings, result.notes) + "</section>")
    level = f"{100 * result.losses[0].ci.level:g}% interval" if result.losses else "interval"
    rows = [[_e(r.spec), num(r.baseline), num(r.candidate), f"{r.delta:+.4g}",
             f"{num(r.ci.low, 4)} – {num(r.ci.high, 4)}",
             (f"{100 * r.relative_delta:+.3g}%" if math.isfinite(r.relative_delta) else "–"),
             num(r.p_adjusted, 2), _e(r.verdict)] for r in result.losses]
    table = "<h2>Losses</h2>" + _table(["loss", "baseline", "candidate", "delta", level,
                                        "change", "p (adj.)", "verdict"], rows)
    settings = [("baseline", result.baseline.get("path")),
                ("candidate", result.candidate.get("path")),
                ("rows", f"{result.rows:,} paired"), ("task", result.task),
                *[(k, v) for k, v in result.settings.items()]]
    return page(f"losscli compare: {result.baseline.get('path')} vs "
                f"{result.candidate.get('path')}", f"{result.task} · {result.rows:,} paired rows",
                verdict, table, plots, settings, prov)


# --- recommend -----------------------------------------------------------------------------------


def recommend_html(rec: Any, plots: Sequence[Plot], prov: Provenance) -> str:
    choice = rec.recommended
    verdict = (f'<section class="verdict pass"><p class="big">Recommended: '
               f"<code>{_e(choice.spec or choice.name)}</code></p>"
               f"<p>{_e(rec.task_reason)}</p>{_items(rec.reasons)}"
               + _notes(rec.warnings, rec.notes) + "</section>")
    rows = [[f"<code>{_e(c.spec or c.name)}</code>", "recommended" if i == 0 else "alternative",
             num(c.value), f'<span class="wrap">{_e(c.reason if i else "")}</span>']
            for i, c in enumerate([choice, *rec.alternatives])]
    table = "<h2>Losses</h2>" + _table(["loss", "rank", "value", "why"], rows)
    ev = rec.evidence
    settings: list[tuple[str, Any]] = []
    if rec.source:
        settings += [("source", rec.source.get("path")), ("format", rec.source.get("format")),
                     ("rows", f"{rec.source.get('rows', 0):,}")]
    settings.append(("task", rec.task))
    if ev is not None:
        settings += [("median", num(ev.median)), ("robust scale", num(ev.robust_scale)),
                     ("outlier fraction", num(ev.outlier_fraction, 4)),
                     ("skewness", num(ev.skewness, 4)),
                     ("excess kurtosis", num(ev.excess_kurtosis, 4))]
    where = rec.source.get("path") if rec.source else rec.task
    return page(f"losscli recommend: {where}", f"{rec.task} · {rec.mode}", verdict, table,
                plots, settings, prov)
