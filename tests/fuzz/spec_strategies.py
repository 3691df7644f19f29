"""Hypothesis strategies for loss specs: ``name:param=value,...`` and weighted sums, each built
from a model of what it means (or marked invalid by construction), and plain garbage."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from fuzzlib import pending
from hypothesis import strategies as st

#: name -> (task, aliases, {param: (valid values, invalid values)}): the documented catalog,
#: written out here so that the test does not learn it from losscli.
CATALOG: dict[str, tuple[str, tuple[str, ...], dict[str, tuple[list[str], list[str]]]]] = {
    "mse": ("regression", (), {}),
    "rmse": ("regression", (), {}),
    "mae": ("regression", (), {}),
    "huber": ("regression", (), {"delta": (["0.5", "1", "2.5", "1e-3", "1e3", " 3 "],
                                           ["0", "-1", "nan", "inf", "abc", "", "1e999"])}),
    "smooth_l1": ("regression", (), {"beta": (["0.25", "1", "4.0"], ["0", "-2", "NaN", "x"])}),
    "log_cosh": ("regression", (), {}),
    "quantile": ("regression", ("pinball",), {"q": (["0.1", "0.5", "0.9", ".75"],
                                                    ["0", "1", "1.5", "-0.1", "nan", "q"])}),
    "poisson": ("regression", (), {}),
    "bce": ("binary", ("log_loss", "logloss"), {"pos_weight": (["0.5", "1", "3"],
                                                               ["0", "-1", "inf", "nan"])}),
    "focal": ("binary", (), {"gamma": (["0", "1", "2", "0.5"], ["-1", "inf", "nan", "g"]),
                             "alpha": (["0", "0.25", "1", "none"], ["-0.5", "1.5", "nan"])}),
    "cce": ("multiclass", ("cross_entropy", "ce"),
            {"class_weights": (["1,2,3", "[0.5,1,1]", "1,1,1"], ["-1,1,1", "a,b,c", "1,nan,1"])}),
}
DEFAULTS = {"delta": 1.0, "beta": 1.0, "q": 0.5, "pos_weight": 1.0, "gamma": 2.0, "alpha": None,
            "class_weights": None}


@dataclass
class Term:
    coef: float
    name: str
    params: dict[str, Any]


@dataclass
class SpecCase:
    text: str
    task: str
    #: the weighted sum the text stands for; None: losscli must refuse it
    terms: list[Term] | None
    garbage: bool = False
    why: str = ""

    @property
    def key(self) -> tuple[Any, ...]:
        """What makes two specs the same loss: names, coefficients, non-default parameters."""
        assert self.terms is not None
        single = len(self.terms) == 1 and self.terms[0].coef == 1.0
        return tuple((1.0 if single else t.coef, t.name,
                      tuple(sorted((k, repr(v)) for k, v in t.params.items()
                                   if v != DEFAULTS[k]))) for t in self.terms)


def _param_value(text: str) -> Any:
    raw = text.strip()
    if raw.lower() == "none":
        return None
    if "," in raw:
        return tuple(float(x) for x in raw.strip("[]").split(","))
    return float(raw)


def _ws(draw: st.DrawFn) -> str:
    return draw(st.sampled_from(["", "", "", " ", "  "]))


@st.composite
def term(draw: st.DrawFn, task: str, combined: bool) -> tuple[str, Term | None, str]:
    """(text, model or None when invalid, why) of one term of a spec."""
    names = [n for n, (t, _, _) in CATALOG.items() if t == task]
    if combined:  # no rmse (not a mean) and no class weights in a weighted sum
        names = [n for n in names if n != "rmse"] + (["rmse"] if draw(st.integers(0, 9)) == 0
                                                      else [])
    name = draw(st.sampled_from(names))
    _, aliases, params = CATALOG[name]
    shown = draw(st.sampled_from([name, name, name.upper(), name.replace("_", "-"), *aliases]))
    why = ""
    if draw(st.integers(0, 19)) == 0:
        shown, why = shown + "x", "unknown loss"
    if combined and name == "rmse":
        why = "rmse in a weighted sum"
    coef_text, coef = "", 1.0
    if combined or draw(st.integers(0, 4)) == 0:
        good = draw(st.integers(0, 9)) > 0
        coef_text = draw(st.sampled_from(["0.7", "0.3", "2", "1e-3", ".5", "3.", "1"] if good
                                         else ["0", "-1", "1e999", "0.0"]))
        coef = float(coef_text)
        if not good:
            why = why or "coefficient not > 0"
        coef_text = coef_text + _ws(draw) + "*" + _ws(draw)
    if name == "rmse" and coef != 1.0:
        why = why or "rmse with a coefficient"
    chosen: dict[str, Any] = {}
    items: list[str] = []
    for pname in draw(st.permutations(list(params))):
        if name == "cce" and (combined or coef != 1.0):
            break  # class weights change the denominator: not in a weighted sum
        if not draw(st.booleans()):
            continue
        valid, invalid = params[pname]
        if draw(st.integers(0, 5)) == 0:
            value, why = draw(st.sampled_from(invalid)), why or f"invalid {pname}"
        else:
            value = draw(st.sampled_from(valid))
            chosen[pname] = _param_value(value)
        items.append(f"{pname}{_ws(draw)}={value}")
        if not pending("duplicate_param") and draw(st.integers(0, 9)) == 0:
            items.append(f"{pname}={draw(st.sampled_from(valid))}")
            why = why or "parameter given twice"
    if draw(st.integers(0, 19)) == 0:
        items.append("bogus=1")
        why = why or "unknown parameter"
    text = _ws(draw) + coef_text + shown + (":" + ",".join(items) if items else "") + _ws(draw)
    if why:
        return text, None, why
    full = {p: chosen.get(p, DEFAULTS[p]) for p in params}
    return text, Term(coef, name, full), ""


@st.composite
def spec_cases(draw: st.DrawFn) -> SpecCase:
    """A spec built from the catalog (valid or invalid by construction) or garbage text."""
    kind = draw(st.sampled_from(["single", "single", "sum", "sum", "mixed", "garbage"]))
    task = draw(st.sampled_from(["regression", "regression", "binary", "multiclass"]))
    if kind == "garbage":
        text = draw(st.one_of(
            st.text(max_size=30),
            st.text(alphabet="mseahubr_:=,+*.0123456789 -eE", max_size=30),
            st.sampled_from([":", "*mse", "mse*", "+", "mse+", "0.5*", "mse:", "mse:=1",
                             "huber:delta", "huber:delta=", "huber:=2", "mse++mae", "1e5",
                             "huber:delta=1,,", "mse:delta=1", "\x00", "mse\n", "é"])))
        return SpecCase(text, task, None, garbage=True)
    count = 1 if kind == "single" else draw(st.integers(2, 3))
    parts = [draw(term(task, count > 1)) for _ in range(count)]
    why = next((w for _, _, w in parts if w), "")
    if kind == "mixed":
        other = draw(st.sampled_from([t for t in ("regression", "binary", "multiclass")
                                      if t != task]))
        parts.append(draw(term(other, True)))
        why = why or "losses of different tasks"
    text = "+".join(t for t, _, _ in parts)
    if why:
        return SpecCase(text, task, None, why=why)
    return SpecCase(text, task, [m for _, m, _ in parts if m is not None])


@dataclass
class Dataset:
    """A small fixed input of one task, and its rows as floats."""

    path: str
    args: list[str]
    pred: list[Any]
    target: list[float]
    extra: dict[str, Any] = field(default_factory=dict)


def value_of(case: SpecCase, data: Dataset) -> tuple[float, float]:
    """The reference value of a valid spec on a dataset, from the test's own model of it."""
    from fuzzlib import Rows, reference

    assert case.terms is not None
    rows = Rows(data.pred, data.target)
    parts = [(t.coef, *reference(rows, t.name, t.params)) for t in case.terms]
    value = math.fsum(c * v for c, v, _ in parts)
    tol = math.fsum(c * e for c, _, e in parts) + 1e-12 * abs(value)
    return value, tol
