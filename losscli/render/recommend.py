"""Rich output of a Recommendation: a panel (recommendation, reasons, alternatives), candidate
loss values, the evidence table, the rules, and a histogram with a log-scaled count axis."""

from __future__ import annotations

import math
from typing import Any

from rich import box
from rich.console import Console, Group, RenderableType
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from losscli.recommend import Choice, Evidence, Histogram, Recommendation
from losscli.render import fmt, pct
from losscli.spec import format_number

#: Characters of the longest histogram bar.
BAR_WIDTH = 40
#: The panel's width (narrower consoles clip it): readable when stdout is a 240-column file.
PANEL_WIDTH = 120


def _given(share: float) -> str:
    """A threshold (a constant, as written in thresholds.py) as a percentage: 1%, not 1.00%."""
    return f"{100 * share:g}%"


def _params(params: dict[str, Any]) -> str:
    shown = []
    for k, v in params.items():
        if v is None:
            continue
        if isinstance(v, list):
            items = ", ".join(fmt(x, 4) for x in v[:8]) + (", ..." if len(v) > 8 else "")
            shown.append(f"{k}=[{items}]")
        elif isinstance(v, str):
            shown.append(f"{k}={v}")
        else:
            shown.append(f"{k}={format_number(v)}")  # as in the spec
    return " ".join(shown)


def _choice_text(c: Choice) -> Text:
    text = Text(c.name, style="bold cyan")
    params = _params(c.params)
    if params:
        text.append("  " + params)
    missing = [k for k, v in c.params.items() if v is None and k not in ("alpha",)]
    if missing:
        whence = "a model's residuals" if missing == ["delta"] else "your data"
        text.append(f"  ({', '.join(missing)} from {whence})", style="dim")
    return text


def _items(marks: list[str], texts: list[Text]) -> Table:
    """A list with hanging indents: wrapped lines stay right of their mark."""
    grid = Table.grid(padding=(0, 1))
    grid.add_column(no_wrap=True, justify="right")
    grid.add_column(overflow="fold")
    for mark, text in zip(marks, texts, strict=True):
        grid.add_row(mark, text)
    return grid


def _panel(rec: Recommendation) -> Panel:
    head = Text()
    head.append("Recommended  ", style="dim")
    head.append_text(_choice_text(rec.recommended))
    parts: list[RenderableType] = [
        head, _items(["Task"], [Text.assemble((rec.task, "bold"), f"  {rec.task_reason}")]),
        Text("Why", style="bold"),
        _items(["-"] * len(rec.reasons), [Text(r) for r in rec.reasons])]
    if rec.alternatives:
        alts = []
        for a in rec.alternatives:
            text = _choice_text(a)
            text.append(f": {a.reason}")
            alts.append(text)
        parts += [Text("Alternatives, ranked", style="bold"),
                  _items([f"{i}." for i in range(1, len(alts) + 1)], alts)]
    return Panel(Group(*parts), title=f"losscli recommend: {rec.task}", title_align="left",
                 border_style="green", width=PANEL_WIDTH)


#: Said under the candidate values: each loss has its own scale.
NOT_COMPARABLE = ("Each value is on its own loss's scale: compare a value with the same loss on "
                  "another model, never with the other rows.")


def _values_table(rec: Recommendation) -> Group:
    table = Table(header_style="bold", box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    table.add_column("choice")
    table.add_column("loss", style="cyan", overflow="fold")
    table.add_column("value", justify="right", style="bold", no_wrap=True)
    notes = any(c.value_note for c in [rec.recommended, *rec.alternatives])
    if notes:
        table.add_column("note", style="dim")
    for i, c in enumerate([rec.recommended, *rec.alternatives]):
        name = c.name + (f" {_params(c.params)}" if _params(c.params) else "")
        row = ["recommended" if i == 0 else f"alternative {i}", escape(name), fmt(c.value)]
        if notes:
            row.append(escape(c.value_note or ""))
        table.add_row(*row)
    return Group(Text("Candidate losses of these predictions (sum w l / sum w)", style="italic"),
                 table, Text(NOT_COMPARABLE, style="dim"))


def _robust_rows(table: Table, ev: Evidence, rec: Recommendation) -> None:
    th = rec.thresholds
    table.add_row("median", fmt(ev.median), "")
    table.add_row("robust scale", fmt(ev.robust_scale),
                  f"{th['mad_to_sigma']} x MAD, within {pct(ev.robust_scale_rel_error_bound)}")
    table.add_row("outlier fraction", pct(ev.outlier_fraction),
                  f"past {th['outlier_z']:g} scales; > {_given(th['outlier_share_notable'])} "
                  f"notable, > {_given(th['outlier_share_large'])} large")
    table.add_row("excess kurtosis", fmt(ev.excess_kurtosis, 4),
                  f"heavy tails > {th['heavy_tail_kurtosis']:g} (normal 0)")
    table.add_row("skewness", fmt(ev.skewness, 4),
                  f"quartile skewness {fmt(ev.quartile_skewness, 4)}")
    table.add_row("mean / std", f"{fmt(ev.mean)} / {fmt(ev.std)}", "")
    table.add_row("min / max", f"{fmt(ev.min)} / {fmt(ev.max)}", "")


def _evidence_table(ev: Evidence, rec: Recommendation) -> Group:
    table = Table(header_style="bold", box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    table.add_column("measure", no_wrap=True)
    table.add_column("value", justify="right")
    table.add_column("how / threshold", style="dim")
    th = rec.thresholds
    table.add_row("rows", f"{ev.rows:,}", f"{ev.rows_dropped:,} dropped" if ev.rows_dropped
                  else "")
    classes = rec.task in ("binary", "multiclass")
    if not classes:  # for classes the probability rows below say more than residual scales
        _robust_rows(table, ev, rec)
    if ev.target and rec.mode == "residuals" and not classes:
        t = ev.target
        k = t.get("distinct")
        ends = (f"{t['min']:,.0f} .. {t['max']:,.0f}" if t.get("integer") else
                f"{fmt(t['min'])} .. {fmt(t['max'])}")
        table.add_row("target", ends,
                      f"{k if k is not None else 'many'} distinct, "
                      f"{'integers' if t.get('integer') else 'non-integers'}")
    if ev.target and "dispersion" in ev.target:
        table.add_row("target dispersion", fmt(ev.target["dispersion"], 4),
                      "variance / mean (Poisson: 1)")
    cb = ev.class_balance
    if cb is not None:
        shares = ", ".join(f"{lab}: {pct(f)}" for lab, f in list(cb["fractions"].items())[:10])
        more = ", ..." if len(cb["fractions"]) > 10 else ""
        table.add_row("class balance", escape(shares + more), "share of rows per class")
        table.add_row("minority share", pct(cb["minority_share"]),
                      f"class {escape(str(cb['minority_class']))}; rare < "
                      f"{_given(th['rare_minority'])}, "
                      f"extremely rare < {_given(th['extremely_rare_minority'])}")
        table.add_row("imbalance ratio", fmt(cb["imbalance_ratio"], 4),
                      f"largest / smallest class; multiclass imbalanced >= "
                      f"{th['imbalance_ratio']:g}")
    pr = ev.probabilities
    if pr is not None:
        table.add_row("mean |p - y|", fmt(pr["mean_abs_error"], 4),
                      "mean of 1 - p(true class)")
        table.add_row("brier", fmt(pr["brier"], 4), "mean squared probability error")
        table.add_row("confidently wrong", pct(pr["confidently_wrong_fraction"]),
                      f"p(true class) < {th['confident_wrong_p']:g}")
        table.add_row("accuracy", pct(pr["accuracy"]), "argmax / p >= 0.5")
        if "mean_pred" in pr:
            table.add_row("mean p / positive rate",
                          f"{fmt(pr['mean_pred'], 4)} / {fmt(pr['positive_rate'], 4)}",
                          "calibration in the large")
    return Group(Text(f"Evidence: {ev.basis}", style="italic"), table)


def _bin_label(lo: float, hi: float, label: str | None, unit: str) -> str:
    if label is not None:
        return label
    if unit == "class":
        return str(lo)
    return f"[{fmt(lo, 4)}, {fmt(hi, 4)})"


def histogram_renderable(h: Histogram) -> RenderableType:
    """Horizontal bars, length proportional to log10(1 + count): a handful of outliers stays
    visible next to the bulk."""
    table = Table(header_style="bold", box=None, pad_edge=False)
    table.add_column("bin" if h.unit != "class" else "class", justify="right", no_wrap=True)
    table.add_column("log10(1 + count)", no_wrap=True)
    table.add_column("count", justify="right")
    top = max((b.count for b in h.bins), default=0)
    scale = math.log10(1 + top) if top else 1.0
    for b in h.bins:
        width = round(BAR_WIDTH * math.log10(1 + b.count) / scale) if b.count else 0
        if b.count and width == 0:
            width = 1
        style = "red" if b.outlier else "green"
        bar = Text("#" * width, style=style)
        if b.outlier and b.count:
            bar.append("  outlier", style="red dim")
        table.add_row(escape(_bin_label(b.lo, b.hi, b.label, h.unit)), bar, f"{b.count:,}")
    return Group(Text(h.title, style="italic"), table)


def _rules_table(rec: Recommendation) -> Group:
    from losscli.render import titled

    table = Table(header_style="bold")
    table.add_column("when")
    table.add_column("loss", style="cyan")
    table.add_column("parameters")
    for r in rec.rules:
        table.add_row(escape(r.when), escape(r.loss), escape(r.params))
    return titled(f"Selection rules for {rec.task} (first match wins)", table)


def markdown(rec: Recommendation) -> str:
    """The recommendation as GitHub-flavoured markdown (a PR comment or a step summary)."""
    def item(c: Choice) -> str:
        params = _params(c.params)
        return f"`{c.spec or c.name}`" + (f" ({params})" if params and not c.spec else "")

    lines = [f"### losscli recommend: {rec.task}", "",
             f"**Recommended:** {item(rec.recommended)}", "", f"Task: {rec.task_reason}", ""]
    lines += [f"- {r}" for r in rec.reasons]
    if rec.alternatives:
        lines += ["", "**Alternatives, ranked**", ""]
        lines += [f"{i}. {item(a)}: {a.reason}" for i, a in enumerate(rec.alternatives, 1)]
    if rec.notes:
        lines += [""] + [f"_{n}_" for n in rec.notes]
    if rec.recommended.command:
        lines += ["", "Evaluate it:", "", "```bash", rec.recommended.command, "```"]
    return "\n".join(lines) + "\n"


def recommend_renderable(rec: Recommendation, plot: bool = True, rules: bool = False) -> Group:
    """The whole recommendation as Rich renderables: the evidence first and the recommendation
    last, so that it is what stays on the screen; the selection rules only with ``rules``
    (always without data)."""
    parts: list[RenderableType] = []
    if rec.source is not None:
        src, cols = rec.source, rec.columns or {}
        pred = cols.get("pred")
        pred_text = "none (target-only)" if not pred else (
            ", ".join(pred) if len(pred) <= 4 else f"{pred[0]} ... {pred[-1]} ({len(pred)})")
        if pred and cols.get("pred_from") == "recognised":
            pred_text += " (recognised)"
        parts.append(Text.assemble(
            ("source ", "dim"), (src["path"], "bold"), ("  format ", "dim"), src["format"],
            ("  rows ", "dim"), f"{src['rows']:,}", ("  pred ", "dim"), pred_text,
            ("  target ", "dim"), cols.get("target") or "-",
            *((("  weight ", "dim"), cols["weight"]) if cols.get("weight") else ())))
    if rec.evidence is not None:
        parts.append(_evidence_table(rec.evidence, rec))
    if plot and rec.histogram is not None:
        parts.append(histogram_renderable(rec.histogram))
    if rec.mode == "residuals":
        parts.append(_values_table(rec))
    if rules or rec.mode == "rules":
        parts.append(_rules_table(rec))
    for note in rec.notes:
        parts.append(Text("note: " + note, style="dim"))
    parts.append(_panel(rec))
    if rec.config is not None:
        from losscli.render.table import config_table

        parts.append(config_table(rec.config))
    return Group(*parts)


def command_renderable(rec: Recommendation) -> Text | None:
    """The ``losscli eval`` command of the recommendation, on a line of its own."""
    if not rec.recommended.command:
        return None
    what = ("Evaluate it (the same rows, the same value):" if rec.mode == "residuals" else
            "Evaluate it on predictions (replace the upper-case placeholders):")
    if rec.recommended.spec is None:  # huber's delta: measured on a model's residuals
        what = ("Measure its delta on a model's residuals (replace the upper-case "
                "placeholders):")
    return Text.assemble((what, "dim"), "\n  ", rec.recommended.command)


def print_recommend(rec: Recommendation, console: Console, plot: bool = True,
                    rules: bool = False) -> None:
    console.print(recommend_renderable(rec, plot, rules))
    command = command_renderable(rec)
    if command is not None:
        # never wrapped or cropped, so that it can be copied whole at any terminal width
        console.print(command, soft_wrap=True)
