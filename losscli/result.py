"""What the result of every command shares: its JSON document, its renderings and its repr.

``to_dict()`` is the document ``--format json`` prints; ``render(fmt)`` any output format of
the command as text; the repr is the table at 80 columns, and Jupyter shows the markdown.
Renderers (and Rich) are imported when a result is shown, never at import.
"""

from __future__ import annotations

from typing import Any, ClassVar


class Result:
    """Base of :class:`~losscli.engine.Report`, :class:`~losscli.compare.Comparison` and
    :class:`~losscli.recommend.Recommendation` (dataclasses declared with ``repr=False``)."""

    #: the command whose result this is, the key of its renderers in render/formats.py
    command: ClassVar[str]

    def to_dict(self) -> dict[str, Any]:  # pragma: no cover - every result defines it
        raise NotImplementedError

    def to_json(self) -> str:
        """The versioned JSON document as text (what ``--format json`` prints)."""
        return self.render("json")

    def render(self, fmt: str = "table", width: int = 80, **options: Any) -> str:
        """The result as text in any output format of its command (table, json, markdown,
        ...); the table without colour at ``width`` columns."""
        from losscli.errors import UsageError
        from losscli.render.formats import formats, render_text

        if fmt not in formats(self.command):
            raise UsageError(f"{self.command} has no format '{fmt}' (formats: "
                             f"{', '.join(formats(self.command))})")
        return render_text(self.command, fmt, self, width, **options)

    def __repr__(self) -> str:
        try:
            return self.render("table").rstrip("\n")
        except Exception as exc:  # a repr must not raise, even for a half-built result
            return f"<{type(self).__name__}: cannot be rendered ({type(exc).__name__}: {exc})>"

    def _repr_markdown_(self) -> str:
        """Jupyter's rendering."""
        return self.render("markdown")


__all__ = ["Result"]
