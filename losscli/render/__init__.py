"""Renderers: turn a Report (plain data) into text. The only modules besides cli.py that use Rich."""

from __future__ import annotations

import math


def fmt(v: float | None, digits: int = 6) -> str:
    """A number for humans: ``digits`` significant digits, '-' for missing or NaN."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{v:.{digits}g}"


def pct(v: float | None) -> str:
    """A fraction as a percentage with enough digits to see small shares."""
    if v is None or math.isnan(v):
        return "-"
    if v == 0:
        return "0%"
    return f"{100 * v:.3g}%"
