"""The loss catalog (``losscli losses``) as Rich renderables: a table on wide terminals, one
block per loss on narrow ones, so that no formula is cut into an ellipsis at 80 columns. Every
text is a Text, never markup: formulas hold brackets ([eps, 1 - eps])."""

from __future__ import annotations

import os
from collections.abc import Sequence

from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from losscli.losses import EPS, LossDef

#: Narrower than this, the five-column table would wrap formulas into slivers: blocks instead.
WIDE = 140


def _params(d: LossDef) -> str:
    """One line a parameter, in spec syntax ('delta=1'), or 'not set' without a default (the
    catalog printed Python's 'None')."""
    lines = []
    for p in d.params:
        valid = p.valid_text + (", or balanced" if p.balanced else "")
        if p.default is None:
            lines.append(f"{p.name}: not set ({valid})")
        else:
            value = (("true" if p.default else "false") if p.kind == "bool"
                     else f"{p.default:g}" if isinstance(p.default, float) else str(p.default))
            lines.append(f"{p.name}={value} ({valid})")
    return "\n".join(lines) or "-"


def _short_path(origin: str) -> str:
    """A plugin file relative to the working directory when that is shorter."""
    try:
        rel = os.path.relpath(origin)
    except ValueError:  # another drive (Windows)
        return origin
    return rel if len(rel) < len(origin) else origin


def footnote(eps: float) -> Text:
    """The pinned conventions below the catalog."""
    return Text(
        f"e = prediction - target. Reported value: sum(w l) / sum(w) (rmse: its square root; "
        f"cce with class_weights: sum(w c_y l) / sum(w c_y)). Probabilities are clipped to "
        f"[eps, 1 - eps], eps = {eps:.6g} (float64 machine epsilon, as scikit-learn's "
        "log_loss); logits are never clipped. Class weights follow PyTorch: bce pos_weight as "
        "BCEWithLogitsLoss(pos_weight), cce class_weights as CrossEntropyLoss(weight); "
        "'balanced' measures them in the same pass (n_neg / n_pos, n_neg / n, n / (k n_c)). "
        "'as' names the library function whose numbers the loss gives. "
        "Weighted sums: '0.7*mse+0.3*mae'. Gradient statistics are over rows (row L2 norm for "
        "multiclass); norm is the L2 norm of the gradient of the reduced, weighted loss.")


def wide_table(losses: Sequence[LossDef]) -> Table:
    table = Table(title="losscli losses", title_justify="left", show_lines=True,
                  header_style="bold")
    for name in ("loss", "task", "parameters", "per-sample loss l", "gradient g = dl/dpred"):
        table.add_column(name, overflow="fold")
    for d in losses:
        names = d.name + (f"\n({', '.join(d.aliases)})" if d.aliases else "")
        if d.origin:
            names += f"\nplugin {_short_path(d.origin)}"
        formula = d.formula + (f"\nas {d.reference}" if d.reference else "")
        table.add_row(Text(names), d.task, Text(_params(d)), Text(formula), Text(d.gradient))
    return table


def narrow_blocks(losses: Sequence[LossDef]) -> Group:
    """One block per loss: its name and task on a line, then loss, gradient and parameters."""
    parts: list[RenderableType] = [Text("losscli losses", style="bold")]
    for d in losses:
        head = Text.assemble("\n", (d.name, "bold cyan"), "  ", d.task, "  ", (d.summary, "dim"))
        if d.aliases:
            head.append(f"  (also {', '.join(d.aliases)})", style="dim")
        grid = Table.grid(padding=(0, 2))
        grid.add_column(no_wrap=True, style="dim")
        grid.add_column(overflow="fold")
        grid.add_row("  loss", Text(d.formula))
        grid.add_row("  gradient", Text(d.gradient))
        grid.add_row("  params", Text(_params(d)))
        if d.reference:
            grid.add_row("  as", Text(d.reference))
        if d.origin:
            grid.add_row("  plugin", Text(_short_path(d.origin)))
        parts += [head, grid]
    return Group(*parts)


def print_catalog(losses: Sequence[LossDef], eps: float, console: Console) -> None:
    """The catalog in the layout that fits the console, then the pinned conventions."""
    console.print(wide_table(losses) if console.width >= WIDE else narrow_blocks(losses))
    console.print(footnote(eps))


def print_losses(losses: Sequence[LossDef], console: Console) -> None:
    """``losscli losses``: the catalog and the pinned conventions (EPS)."""
    print_catalog(losses, EPS, console)


def losses_json(losses: Sequence[LossDef]) -> str:
    """``losscli losses --format json``: the versioned document of the catalog."""
    from losscli.render.json import dumps

    return dumps({"schema": "losscli.losses/1", "eps": EPS, "losses": [
        {"name": d.name, "task": d.task, "summary": d.summary, "formula": d.formula,
         "gradient": d.gradient, "aliases": list(d.aliases),
         **({"reference": d.reference} if d.reference else {}),
         **({"origin": d.origin} if d.origin else {}),
         "params": [{"name": p.name, "default": p.default, "valid": p.valid_text,
                     "doc": p.doc} for p in d.params]} for d in losses]})
