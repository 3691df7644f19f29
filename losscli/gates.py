"""Gates: limits and baselines that decide the exit code (0 pass, 1 a gate failed)."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from losscli.errors import InputError, UsageError
from losscli.spec import parse_spec

if TYPE_CHECKING:  # the result types only: no engine at import
    from losscli.engine import Report


@dataclass(frozen=True)
class Tolerance:
    """How much worse than the baseline a loss may get: relative (``2%``) or absolute."""

    amount: float
    relative: bool

    @classmethod
    def parse(cls, text: str | float | None) -> Tolerance:
        if text is None:
            return cls(0.0, False)
        raw = str(text).strip()
        relative = raw.endswith("%")
        try:
            amount = float(raw[:-1] if relative else raw)
        except ValueError:
            raise UsageError(f"--tolerance must be a number (0.01) or a percentage (2%), "
                             f"got '{raw}'") from None
        if not (amount >= 0 and math.isfinite(amount)):
            raise UsageError(f"--tolerance must be >= 0, got '{raw}'")
        return cls(amount / 100.0 if relative else amount, relative)

    def limit(self, base: float) -> float:
        return base + (abs(base) * self.amount if self.relative else self.amount)

    def __str__(self) -> str:
        return f"{self.amount * 100:g}%" if self.relative else f"{self.amount:g}"


@dataclass(frozen=True)
class Gate:
    """One check of one loss: its kind, limit, measured value and verdict."""

    loss: str
    kind: Literal["max", "baseline", "slice"]
    limit: float | None
    value: float
    passed: bool
    detail: str = ""

    def message(self) -> str:
        """One line that explains the verdict with enough digits to see the difference."""
        if self.limit is None:
            return f"{self.loss} = {self.value:.6g}: {self.detail}"
        v, lim = distinct(self.value, self.limit)
        op = "<=" if self.passed else ">"
        if self.kind == "slice":
            return f"{self.loss} = {v} {op} max {lim} in slice {self.detail}"
        what = "max" if self.kind == "max" else f"baseline limit ({self.detail})"
        return f"{self.loss} = {v} {op} {what} {lim}"

    def to_dict(self) -> dict[str, Any]:
        return {"loss": self.loss, "kind": self.kind, "limit": self.limit, "value": self.value,
                "passed": self.passed, "detail": self.detail}


def distinct(a: float, b: float) -> tuple[str, str]:
    """Both numbers with the fewest significant digits (at least 6) that tell them apart."""
    for digits in range(6, 18):
        sa, sb = f"{a:.{digits}g}", f"{b:.{digits}g}"
        if sa != sb or a == b:
            return sa, sb
    return repr(a), repr(b)


def parse_max(items: Iterable[str] | Mapping[str, float],
              flag: str = "--max") -> dict[str, float]:
    """``LOSS=VALUE`` items (the value follows the last '=') -> canonical spec -> limit."""
    pairs: list[tuple[str, Any]]
    if isinstance(items, Mapping):
        pairs = list(items.items())
    else:
        pairs = []
        for item in items:
            spec, sep, raw = item.rpartition("=")
            if not sep or not spec.strip():
                raise UsageError(f"{flag} expects LOSS=VALUE (e.g. mse=0.25), got '{item}'")
            pairs.append((spec, raw))
    limits: dict[str, float] = {}
    for spec, raw in pairs:
        try:
            value = float(raw)
        except (TypeError, ValueError):
            raise UsageError(f"{flag} {spec}: limit must be a number, got '{raw}'") from None
        if math.isnan(value):
            raise UsageError(f"{flag} {spec}: limit must be a number, got '{raw}'")
        limits[parse_spec(spec).spec] = value
    return limits


def load_baseline(path: str | Path) -> dict[str, float | None]:
    """spec -> value from an earlier ``--format json`` output; None where it recorded null (a
    NaN value)."""
    p = Path(path)
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"baseline {p}: no such file; record one with --write-baseline "
                         f"{p}") from None
    except (OSError, ValueError) as exc:  # ValueError: bad JSON, bad UTF-8, a 5000-digit number
        text = " ".join(str(exc).split())
        raise InputError(f"baseline {p}: not a losscli JSON report ({text})") from None
    except RecursionError:  # json's decoder recurses once per level of nesting
        raise InputError(f"baseline {p}: not a losscli JSON report (nested too deeply)") from None
    if not isinstance(doc, dict) or not str(doc.get("schema", "")).startswith("losscli.eval/"):
        raise InputError(f"baseline {p}: not a losscli eval JSON report (no schema "
                         "'losscli.eval/1'); record one with losscli eval --write-baseline FILE")
    losses = doc.get("losses", [])
    if not isinstance(losses, list):
        raise InputError(f"baseline {p}: 'losses' must be a list of loss entries, got "
                         f"{json.dumps(losses)[:40]}")
    out: dict[str, float | None] = {}
    for entry in losses:
        try:
            spec, value = str(entry["spec"]), entry["value"]
        except (KeyError, TypeError):
            raise InputError(f"baseline {p}: a loss entry lacks 'spec' or 'value'") from None
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise InputError(f"baseline {p}: the value of '{spec}' must be a number or null, "
                             f"got {json.dumps(value)[:40]}")
        try:
            number = None if value is None else float(value)
        except OverflowError:
            raise InputError(f"baseline {p}: the value of '{spec}' is a number beyond the "
                             "float64 range") from None
        out[parse_spec(spec).spec] = None if number is None or math.isnan(number) else number
    return out


def baseline_values(baseline: str | Path | Report | Mapping[str, float | None]
                    ) -> dict[str, float | None]:
    """spec -> value of a baseline: an eval JSON file, a Report, or a mapping (spec texts are
    canonicalised; None or NaN is a value that cannot be compared)."""
    if isinstance(baseline, (str, Path)):
        return load_baseline(baseline)
    if isinstance(baseline, Mapping):
        pairs = list(baseline.items())
    elif hasattr(baseline, "losses"):
        pairs = [(r.spec, r.value) for r in baseline.losses]
    else:
        raise UsageError(f"baseline must be an eval JSON file, a Report or a mapping of loss "
                         f"to value, got {type(baseline).__name__}")
    out: dict[str, float | None] = {}
    for spec, value in pairs:
        number = None if value is None else float(value)
        out[parse_spec(str(spec)).spec] = None if number is None or math.isnan(number) else number
    return out


@dataclass(frozen=True)
class Gates:
    """eval's gates, parsed (before a pass, so that a bad one fails fast): limits by loss, the
    baseline's values and the tolerance."""

    limits: dict[str, float]
    baseline: dict[str, float | None] | None
    tolerance: Tolerance

    @classmethod
    def parse(cls, max: Iterable[str] | Mapping[str, float] | None = None,
              baseline: str | Path | Report | Mapping[str, float | None] | None = None,
              tolerance: str | float | None = None) -> Gates:
        """From the values of --max (``LOSS=V`` items or a mapping), --baseline and
        --tolerance."""
        return cls(parse_max(max or {}),
                   None if baseline is None else baseline_values(baseline),
                   Tolerance.parse(tolerance))

    def check(self, report: Report) -> list[Gate]:
        """Every gate's verdict on ``report``."""
        return check(report, self.limits, self.baseline, self.tolerance)


def check(report: Report, limits: Mapping[str, float],
          baseline: Mapping[str, float | None] | None, tolerance: Tolerance) -> list[Gate]:
    """Every gate's verdict; a limit on a loss that was not evaluated is a usage error."""
    evaluated = {r.spec: r.value for r in report.losses}
    gates: list[Gate] = []
    for spec, limit in limits.items():
        if spec not in evaluated:
            raise UsageError(f"--max {spec}: that loss is not evaluated (evaluated: "
                             f"{', '.join(evaluated)}); add --loss {spec}")
        value = evaluated[spec]
        gates.append(Gate(spec, "max", limit, value, bool(value <= limit)))
    if baseline is not None:
        for spec, value in evaluated.items():
            if spec not in baseline:
                gates.append(Gate(spec, "baseline", None, value, False,
                                  "missing from the baseline, so it cannot be compared "
                                  "(record the baseline again with --write-baseline)"))
                continue
            base = baseline[spec]
            if base is None:
                gates.append(Gate(spec, "baseline", None, value, False,
                                  "the baseline recorded no value (null) for it, so it cannot "
                                  "be compared"))
                continue
            limit = tolerance.limit(base)
            gates.append(Gate(spec, "baseline", limit, value, bool(value <= limit),
                              f"baseline {distinct(base, value)[0]} + {tolerance}"))
    return gates


def check_slices(report: Report, limits: Mapping[str, float]) -> list[Gate]:
    """A gate per slice and limited loss, for every slice of at least --min-rows rows ((other),
    a mixture of rare values, is not gated); a limit on a loss without slices is a usage
    error."""
    if limits and not report.slices:
        raise UsageError("--max-slice needs --by (the slices it limits)")
    gates: list[Gate] = []
    for spec, limit in limits.items():
        if report.loss(spec) is None or not any(
                s.loss(spec) is not None for g in report.slices or [] for s in g.slices):
            sliced = sorted({x.spec for g in report.slices or [] for s in g.slices
                             for x in s.losses})
            raise UsageError(f"--max-slice {spec}: that loss has no slices (sliced: "
                             f"{', '.join(sliced) or 'none'}); add --loss {spec}")
        for group in report.slices or []:
            for s in group.slices:
                x = s.loss(spec)
                if s.other or x is None or s.rows < group.min_rows:
                    continue
                gates.append(Gate(spec, "slice", limit, x.value, bool(x.value <= limit),
                                  s.label))
    return gates
