"""The one registry of output formats: ``{(command, format): renderer}``.

Adding a format to a command is one entry here (and its function). A renderer is named as
``"module:function"`` so that reading this registry imports neither Rich nor the engine. The
``table`` renderers draw on a Rich console: ``fn(result, console, **options)``; every other
format is text: ``fn(result) -> str``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

_EVAL_CI = "losscli.render.ci"
_COMPARE = "losscli.render.compare"
_JSON = "losscli.render.json:document"

RENDERERS: dict[tuple[str, str], str] = {
    ("eval", "table"): "losscli.render.table:print_eval",
    ("eval", "json"): _JSON,
    ("eval", "markdown"): f"{_EVAL_CI}:markdown",
    ("eval", "csv"): f"{_EVAL_CI}:csv_text",
    ("eval", "junit"): f"{_EVAL_CI}:junit",
    ("eval", "github"): f"{_EVAL_CI}:github",
    ("compare", "table"): f"{_COMPARE}:print_compare",
    ("compare", "json"): _JSON,
    ("compare", "markdown"): f"{_COMPARE}:markdown",
    ("compare", "csv"): f"{_COMPARE}:csv_text",
    ("compare", "junit"): f"{_COMPARE}:junit",
    ("compare", "github"): f"{_COMPARE}:github",
    ("recommend", "table"): "losscli.render.recommend:print_recommend",
    ("recommend", "json"): _JSON,
    ("recommend", "markdown"): "losscli.render.recommend:markdown",
    ("losses", "table"): "losscli.render.catalog:print_losses",
    ("losses", "json"): "losscli.render.catalog:losses_json",
}

#: The format drawn on a console (with colour on a terminal); the others are text.
CONSOLE = "table"


def formats(command: str) -> tuple[str, ...]:
    """The output formats of ``command``, in the order the help lists them."""
    return tuple(f for c, f in RENDERERS if c == command)


def renderer(command: str, fmt: str) -> Callable[..., Any]:
    """The function that renders ``command``'s result as ``fmt``."""
    module, _, name = RENDERERS[(command, fmt)].partition(":")
    fn: Callable[..., Any] = getattr(importlib.import_module(module), name)
    return fn


def render_text(command: str, fmt: str, result: Any, width: int = 240,
                **options: Any) -> str:
    """The result as text in ``fmt``; the table drawn without colour at ``width`` columns."""
    fn = renderer(command, fmt)
    if fmt != CONSOLE:
        text: str = fn(result)
        return text
    import io

    from rich.console import Console

    buf = io.StringIO()
    fn(result, Console(file=buf, width=width, no_color=True, color_system=None, soft_wrap=False,
                       highlight=False), **options)
    from losscli.render import rstrip_lines

    return rstrip_lines(buf.getvalue())


__all__ = ["CONSOLE", "RENDERERS", "formats", "render_text", "renderer"]
