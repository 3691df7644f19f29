"""Parse loss specifications: ``huber``, ``huber:delta=2.5``, ``'0.7*mse+0.3*mae'``.

A spec resolves to a :class:`LossSpec`: a weighted sum of catalog losses with validated,
defaulted parameters, and a canonical text (parameters at their default are omitted, numbers in
their shortest form) that identifies it in reports, gates and baselines.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

from losscli.errors import UsageError
from losscli.losses import CATALOG, LossDef, Task, lookup

# '+' that starts a new term: followed by an optional 'coef*' and a name (so '1e+3' is a number).
_TERM_SPLIT = re.compile(r"\+(?=\s*(?:[0-9.]+(?:[eE][-+]?\d+)?\s*\*\s*)?[A-Za-z_])")
_TERM = re.compile(
    r"^\s*(?:(?P<coef>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*\*\s*)?"
    r"(?P<name>[A-Za-z_][A-Za-z0-9_-]*)\s*(?::(?P<params>.*))?$"
)


def format_number(v: float) -> str:
    """Shortest text that reads back as the same float: 2.0 -> '2', 0.9 -> '0.9'."""
    text = repr(float(v))
    return text[:-2] if text.endswith(".0") else text


@dataclass(frozen=True)
class Term:
    """One catalog loss with resolved parameters, scaled by a coefficient."""

    coef: float
    loss: LossDef
    params: Mapping[str, float | None]

    @property
    def spec(self) -> str:
        shown = [
            f"{p.name}={format_number(self.params[p.name])}"  # type: ignore[arg-type]
            for p in self.loss.params
            if self.params[p.name] is not None and self.params[p.name] != p.default
        ]
        return self.loss.name + (":" + ",".join(shown) if shown else "")


@dataclass(frozen=True)
class LossSpec:
    """A requested loss: a single catalog loss or a weighted combination of several."""

    terms: tuple[Term, ...]
    text: str = ""

    @property
    def is_combination(self) -> bool:
        return len(self.terms) > 1 or self.terms[0].coef != 1.0

    @property
    def spec(self) -> str:
        if not self.is_combination:
            return self.terms[0].spec
        return "+".join(f"{format_number(t.coef)}*{t.spec}" for t in self.terms)

    @property
    def name(self) -> str:
        return self.spec if self.is_combination else self.terms[0].loss.name

    @property
    def task(self) -> Task:
        return self.terms[0].loss.task

    @property
    def params(self) -> dict[str, float | None]:
        if not self.is_combination:
            return dict(self.terms[0].params)
        return {}

    @property
    def single(self) -> LossDef | None:
        """The catalog loss when this spec is one loss with coefficient 1."""
        return None if self.is_combination else self.terms[0].loss


def _parse_value(loss: LossDef, key: str, raw: str, text: str) -> float | None:
    param = loss.param(key)
    if param is None:
        known = ", ".join(p.name for p in loss.params) or "none"
        raise UsageError(
            f"unknown parameter '{key}' for loss '{loss.name}' in '{text}' (parameters: {known})")
    raw = raw.strip()
    if raw.lower() in ("none", "") and param.default is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise UsageError(
            f"parameter '{key}' of loss '{loss.name}' must be a number, got '{raw}'") from None
    if not param.valid(value):
        raise UsageError(
            f"parameter '{key}' of loss '{loss.name}' must be {param.valid_text}, got {raw}")
    return value


def _parse_term(chunk: str, text: str) -> Term:
    m = _TERM.match(chunk)
    if not m:
        raise UsageError(f"cannot parse loss spec '{text}': expected name[:param=value,...] "
                         "or a weighted sum such as '0.7*mse+0.3*mae'")
    loss = lookup(m["name"])
    if loss is None:
        raise UsageError(f"unknown loss '{m['name']}' (known: {', '.join(CATALOG)})")
    coef = float(m["coef"]) if m["coef"] else 1.0
    if not (coef > 0 and math.isfinite(coef)):
        raise UsageError(f"coefficient of '{m['name']}' in '{text}' must be > 0, got {m['coef']}")
    params: dict[str, float | None] = {p.name: p.default for p in loss.params}
    if m["params"] is not None:
        for item in m["params"].split(","):
            if not item.strip():
                continue
            key, sep, raw = item.partition("=")
            if not sep:
                raise UsageError(f"expected param=value in '{text}', got '{item.strip()}'")
            params[key.strip()] = _parse_value(loss, key.strip(), raw, text)
    return Term(coef, loss, params)


def parse_spec(text: str) -> LossSpec:
    """Parse one ``--loss`` value; raises :class:`UsageError` with the reason."""
    if not text.strip():
        raise UsageError("empty loss spec")
    terms = tuple(_parse_term(chunk, text) for chunk in _TERM_SPLIT.split(text))
    spec = LossSpec(terms, text)
    if spec.is_combination:
        tasks = {t.loss.task for t in terms}
        if len(tasks) > 1:
            raise UsageError(f"'{text}' combines losses of different tasks ({', '.join(tasks)})")
        for t in terms:
            if t.loss.reduce != "mean":
                raise UsageError(f"'{t.loss.name}' cannot be part of a weighted combination "
                                 f"(it is not a mean of per-sample losses); use "
                                 f"{'mse' if t.loss.name == 'rmse' else 'another loss'}")
    return spec
