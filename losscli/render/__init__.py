"""Renderers: a Report (plain data) to text. With cli.py, the only modules that use Rich."""

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
