"""Hypothesis strategies for multiclass targets: prediction columns whose suffixes are integers,
names or both, targets written as suffixes, positions, floats or names, in CSV and Parquet. The
README's rule decides which class a target is, or that it must be refused; the test writes that
rule out itself."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

NAMES = ["cat", "dog", "bird", "x", "Fish", "b2"]


@dataclass
class LabelCase:
    suffixes: list[str]
    targets: list[str]  # as written in the CSV (Parquet: the value they stand for)
    probs: list[tuple[float, ...]]
    fmt: str  # "csv" or "parquet"
    parquet_type: str  # "text", "int", "float": the target column's type in Parquet
    #: the class (column position) of each target row, or None: the input must be refused
    classes: list[int] | None
    why: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def _number_spellings(v: int) -> list[str]:
    return [str(v), f"{v}.0", f"{v}e0", f"{float(v)!r}"]


@st.composite
def label_cases(draw: st.DrawFn) -> LabelCase:
    kind = draw(st.sampled_from(["ints", "ints", "names", "mixed"]))
    c = draw(st.integers(2, 4))
    if kind == "ints":
        suffixes = [str(v) for v in draw(st.lists(st.integers(0, 12), min_size=c, max_size=c,
                                                  unique=True))]
    elif kind == "names":
        suffixes = draw(st.lists(st.sampled_from(NAMES), min_size=c, max_size=c, unique=True))
    else:
        k = draw(st.integers(1, c - 1))
        ints = [str(v) for v in draw(st.lists(st.integers(0, 5), min_size=k, max_size=k,
                                              unique=True))]
        suffixes = draw(st.permutations(ints + NAMES[: c - k]))
    n = draw(st.integers(1, 12))
    fmt = draw(st.sampled_from(["csv", "csv", "parquet"]))
    parquet_type = draw(st.sampled_from(["text", "int", "float"])) if fmt == "parquet" else "text"
    targets: list[str] = []
    classes: list[int] | None = []
    why = ""
    for _ in range(n):
        k = draw(st.integers(0, c - 1))
        numeric_only = fmt == "parquet" and parquet_type != "text"
        if kind == "ints":
            if draw(st.integers(0, 14)) == 0:  # a number that is no suffix: refused
                others = [v for v in range(-1, 14) if str(v) not in suffixes]
                targets.append(str(draw(st.sampled_from(others))))
                why = why or "a number that is no suffix"
                continue
            if draw(st.integers(0, 19)) == 0:
                targets.append(f"{suffixes[k]}.5")
                why = why or "not an integer"
                continue
            spelled = draw(st.sampled_from(_number_spellings(int(suffixes[k]))))
            targets.append(spelled)
        elif kind == "names":
            if numeric_only or draw(st.booleans()):
                targets.append(draw(st.sampled_from(_number_spellings(k))))  # a position
            else:
                targets.append(suffixes[k])
            if draw(st.integers(0, 19)) == 0:
                targets[-1] = str(c) if numeric_only or draw(st.booleans()) else "zebra"
                why = why or "no such position or name"
                continue
        else:
            name_ks = [i for i, s in enumerate(suffixes) if not s.isdigit()]
            if numeric_only or draw(st.integers(0, 9)) == 0:
                targets.append(draw(st.sampled_from(_number_spellings(k))))
                why = why or "a number with mixed suffixes"
                continue
            k = draw(st.sampled_from(name_ks))
            targets.append(suffixes[k])
        assert classes is not None
        classes.append(k)
    if fmt == "parquet" and parquet_type == "int":
        targets = [str(int(float(t))) if _is_int(t) else t for t in targets]
        if any(not _is_int(t) for t in targets):
            parquet_type = "float"
    probs = []
    for _ in range(n):
        raw = [draw(st.floats(0.01, 1.0)) for _ in range(c)]
        total = math.fsum(raw)
        probs.append(tuple(v / total for v in raw))
    return LabelCase(suffixes, targets, probs, fmt, parquet_type, None if why else classes, why)


def _is_int(text: str) -> bool:
    try:
        v = float(text)
    except ValueError:
        return False
    return math.isfinite(v) and v == int(v)
