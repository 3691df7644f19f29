"""Parse loss specifications: ``huber``, ``huber:delta=2.5``, ``'0.7*mse+0.3*mae'``.

A list value (``cce:class_weights=1,2,0.5``) is a comma list: a comma item without ``=`` continues
the list before it (parameter names never start with a digit, so ``cce:class_weights=1,2`` and
``focal:gamma=1,alpha=0.25`` are both unambiguous); ``[1,2,0.5]`` with brackets is accepted too.

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
from losscli.losses import BALANCED, LossDef, Param, ParamValue, Task
from losscli.registry import known_names, lookup

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


def message_number(v: float, *others: float) -> str:
    """A number in a message: 6 significant digits, or as many more as tell it apart from
    ``others`` (two values that differ never read alike)."""
    for digits in range(6, 18):
        text = f"{v:.{digits}g}"
        if all(f"{o:.{digits}g}" != text for o in others if o != v):
            return text
    return format_number(v)


def format_value(v: ParamValue) -> str:
    """A parameter value as spec text: a number, a comma list, or ``balanced``."""
    if isinstance(v, str):
        return v
    if isinstance(v, tuple):
        return ",".join(format_number(x) for x in v)
    return format_number(v)  # type: ignore[arg-type]


#: The words a true / false parameter reads (``poisson_nll:log_input=false``).
_BOOLS = {"true": 1.0, "false": 0.0, "1": 1.0, "0": 0.0, "yes": 1.0, "no": 0.0}


def format_param(param: Param, v: ParamValue) -> str:
    """A parameter value as spec text: ``true`` / ``false`` for a flag, else format_value."""
    if param.kind == "bool" and isinstance(v, float):
        return "true" if v else "false"
    return format_value(v)


@dataclass(frozen=True)
class Term:
    """One catalog loss with resolved parameters, scaled by a coefficient."""

    coef: float
    loss: LossDef
    params: Mapping[str, ParamValue]

    @property
    def spec(self) -> str:
        shown = [
            f"{p.name}={format_param(p, self.params[p.name])}"
            for p in self.loss.params
            if self.params[p.name] is not None and self.params[p.name] != p.default
        ]
        return self.loss.name + (":" + ",".join(shown) if shown else "")

    @property
    def balanced(self) -> bool:
        """A class-weight parameter is ``balanced``: measured from the input's class counts."""
        cw = self.loss.class_weighting
        return cw is not None and self.params.get(cw.param) == BALANCED


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
    def params(self) -> dict[str, ParamValue]:
        if not self.is_combination:
            return dict(self.terms[0].params)
        return {}

    @property
    def single(self) -> LossDef | None:
        """The catalog loss when this spec is one loss with coefficient 1."""
        return None if self.is_combination else self.terms[0].loss

    @property
    def non_negative(self) -> bool:
        """Every row's loss is >= 0 by the loss's definition (each term's, coefficients being
        > 0), whatever the data."""
        return all(t.loss.non_negative for t in self.terms)

    def residual_power(self, at: float) -> float:
        """The power p with which a loss of the residual grows in |e| near |e| = ``at``
        (|g| ~ |e|^(p - 1): 2 for mse, 1 for mae and huber's linear part), at least 1: the
        tail index of |e| over p is the loss's. Only for losses with
        ``abs_grad_of_abs_residual``."""
        single = self.single
        assert single is not None and single.abs_grad_of_abs_residual is not None
        f, params = single.abs_grad_of_abs_residual, self.terms[0].params
        g1, g2 = f(at, params), f(2.0 * at, params)
        growth = math.log2(g2 / g1) if g1 > 0 and g2 > 0 else 0.0
        return 1.0 + max(0.0, growth)


def _parse_value(loss: LossDef, key: str, raw: str, text: str) -> ParamValue:
    param = loss.param(key)
    if param is None:
        known = ", ".join(p.name for p in loss.params) or "none"
        raise UsageError(
            f"unknown parameter '{key}' for loss '{loss.name}' in '{text}' (parameters: {known})")
    raw = raw.strip()
    if raw.lower() in ("none", "") and param.default is None:
        return None
    if param.balanced and raw.lower() == BALANCED:
        return BALANCED
    if param.kind == "bool":
        flag = _BOOLS.get(raw.lower())
        if flag is None:
            raise UsageError(f"parameter '{key}' of loss '{loss.name}' must be true or false, "
                             f"got '{raw}'")
        return flag
    if param.kind == "list":
        items = raw[1:-1] if raw.startswith("[") and raw.endswith("]") else raw
        return tuple(_number(loss, key, x.strip(), param) for x in items.split(","))
    return _number(loss, key, raw, param)


def _number(loss: LossDef, key: str, raw: str, param: Param) -> float:
    expected = "a number" + (" or 'balanced'" if param.balanced else "")
    if param.kind == "list":
        expected = "a comma list of numbers" + (" or 'balanced'" if param.balanced else "")
    try:
        value = float(raw)
    except ValueError:
        raise UsageError(
            f"parameter '{key}' of loss '{loss.name}' must be {expected}, got '{raw}'") from None
    if not param.valid(value):
        raise UsageError(
            f"parameter '{key}' of loss '{loss.name}' must be {param.valid_text}, got {raw}")
    return value


def _param_items(params: str, loss: LossDef, text: str) -> list[tuple[str, str]]:
    """``a=1,b=2`` -> [(a, 1), (b, 2)]; an item without '=' continues the list value before it
    (``class_weights=1,2,3``)."""
    items: list[tuple[str, str]] = []
    parts = params.split(",")
    for k, item in enumerate(parts):
        if not item.strip():
            if k == len(parts) - 1:  # a trailing comma, or nothing after the colon
                continue
            raise UsageError(f"empty item in '{text}' (a comma without a value before it)")
        key, sep, raw = item.partition("=")
        if not sep:
            prev = loss.param(items[-1][0]) if items else None
            if prev is None or prev.kind != "list":
                raise UsageError(f"expected param=value in '{text}', got '{item.strip()}'")
            items[-1] = (items[-1][0], items[-1][1] + "," + item)
            continue
        if any(k == key.strip() for k, _ in items):
            raise UsageError(f"parameter '{key.strip()}' is given twice in '{text}'")
        items.append((key.strip(), raw))
    return items


def _parse_term(chunk: str, text: str) -> Term:
    m = _TERM.match(chunk)
    if not m:
        names = [n.strip() for n in text.split(",")]
        if len(names) > 1 and all(lookup(n) is not None for n in names):
            repeated = " ".join(f"--loss {n}" for n in names)
            raise UsageError(f"cannot parse loss spec '{text}': several losses are asked for "
                             f"one --loss each ({repeated})")
        raise UsageError(f"cannot parse loss spec '{text}': expected name[:param=value,...] "
                         "or a weighted sum such as '0.7*mse+0.3*mae'")
    loss = lookup(m["name"])
    if loss is None:
        raise UsageError(f"unknown loss '{m['name']}' (known: {', '.join(known_names())})")
    coef = float(m["coef"]) if m["coef"] else 1.0
    if not (coef > 0 and math.isfinite(coef)):
        raise UsageError(f"coefficient of '{m['name']}' in '{text}' must be > 0, got {m['coef']}")
    params: dict[str, ParamValue] = {p.name: p.default for p in loss.params}
    if m["params"] is not None:
        for key, raw in _param_items(m["params"], loss, text):
            params[key] = _parse_value(loss, key, raw, text)
    problem = None if loss.validate is None else loss.validate(params)
    if problem is not None:
        raise UsageError(f"{m['name']} in '{text}': {problem}")
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
            cw = t.loss.class_weighting
            if t.balanced or (cw is not None and cw.normalise and t.params[cw.param] is not None):
                raise UsageError(f"'{t.spec}' cannot be part of a weighted combination (its "
                                 "class weights are measured at the end of the pass or change "
                                 "the denominator); evaluate it as a loss of its own")
            if t.loss.reduce != "mean":
                raise UsageError(f"'{t.loss.name}' cannot be part of a weighted combination "
                                 f"(it is not a mean of per-sample losses); use "
                                 f"{'mse' if t.loss.name == 'rmse' else 'another loss'}")
    return spec
