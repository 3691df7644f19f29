"""What a recommendation is: the chosen loss, its alternatives and the evidence (plain data;
``Recommendation.to_dict()`` is the ``losscli.recommend/1`` JSON document)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from losscli._version import __version__
from losscli.engine import (
    json_safe,
)
from losscli.losses import BALANCED, CATALOG
from losscli.recommend.thresholds import SCHEMA, THRESHOLDS, RecTask
from losscli.result import Result
from losscli.spec import format_number, parse_spec


@dataclass(frozen=True)
class Rule:
    """One selection rule, as stated in the output and the README."""

    task: RecTask
    when: str
    loss: str
    params: str


# --- result -----------------------------------------------------------------------------------

ParamValue = float | list[float] | str | None


@dataclass
class Choice:
    """A loss with its parameters, why it is (or is not first) and its current value."""

    name: str
    params: dict[str, ParamValue] = field(default_factory=dict)
    reason: str = ""
    #: the ``losscli eval --loss`` text when the catalog can express it, else None
    spec: str | None = None
    #: mean of the loss over the rows (sum w l / sum w) with these parameters, when computable
    value: float | None = None
    value_note: str | None = None
    #: the ``losscli eval`` command line that evaluates ``spec`` on the same rows (upper-case
    #: placeholders where the input is not known: no data, or no prediction column); without
    #: a spec (huber's delta needs a model's residuals), the ``losscli recommend`` command that
    #: measures it
    command: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "params": self.params, "reason": self.reason,
                "spec": self.spec, "value": self.value, "value_note": self.value_note,
                "command": self.command}


@dataclass
class HistogramBin:
    lo: float
    hi: float
    count: int
    outlier: bool = False
    label: str | None = None


@dataclass
class Histogram:
    """Counts of the analysed values in bins (rendered with a log-scaled count axis)."""

    title: str
    unit: str
    bins: list[HistogramBin]
    cut: float | None = None  # the outlier cut in value units (+- around the median)

    def to_dict(self) -> dict[str, Any]:
        return {"title": self.title, "unit": self.unit, "cut": self.cut,
                "bins": [{"lo": b.lo, "hi": b.hi, "count": b.count, "outlier": b.outlier,
                          **({"label": b.label} if b.label is not None else {})}
                         for b in self.bins]}


@dataclass
class Evidence:
    """What was measured. Row statistics are unweighted; weights only enter loss values."""

    rows: int
    rows_dropped: int
    basis: str  # what the statistics describe
    median: float
    robust_scale: float
    mad: float
    outlier_fraction: float
    outlier_cut: float
    skewness: float
    quartile_skewness: float
    excess_kurtosis: float
    mean: float
    std: float
    min: float
    max: float
    robust_scale_method: str
    robust_scale_rel_error_bound: float
    passes: int
    class_balance: dict[str, Any] | None = None
    probabilities: dict[str, Any] | None = None
    target: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(repr=False)
class Recommendation(Result):
    """The recommended loss, ranked alternatives, reasons and the evidence behind them."""

    command: ClassVar[str] = "recommend"

    task: RecTask
    task_reason: str
    recommended: Choice
    alternatives: list[Choice]
    reasons: list[str]
    mode: Literal["residuals", "target", "rules"]
    evidence: Evidence | None = None
    histogram: Histogram | None = None
    source: dict[str, Any] | None = None
    columns: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    rules: list[Rule] = field(default_factory=list)
    thresholds: dict[str, float] = field(default_factory=lambda: dict(THRESHOLDS))
    version: str = __version__
    schema: str = SCHEMA
    #: resolved settings and where each came from, shown with --show-config
    config: dict[str, Any] | None = None
    #: the report's figures (a losscli.figures.FigureData), when asked for
    figures: Any = None

    def to_dict(self) -> dict[str, Any]:
        """The versioned JSON document (``losscli.recommend/1``); NaN becomes None."""
        rec = self.recommended.to_dict()
        del rec["reason"]
        d = {
            "schema": self.schema,
            "version": self.version,
            "mode": self.mode,
            "source": self.source,
            "columns": self.columns,
            "task": self.task,
            "task_reason": self.task_reason,
            "recommended": rec,
            "alternatives": [a.to_dict() for a in self.alternatives],
            "reasons": self.reasons,
            "notes": self.notes,
            "evidence": None if self.evidence is None else self.evidence.to_dict(),
            "histogram": None if self.histogram is None else self.histogram.to_dict(),
            "rules": [{"task": r.task, "when": r.when, "loss": r.loss, "params": r.params}
                      for r in self.rules],
            "thresholds": self.thresholds,
            "warnings": self.warnings,
        }
        if self.config is not None:
            d["config"] = self.config
        out: dict[str, Any] = json_safe(d)
        return out


@dataclass(frozen=True)
class Hints:
    """Properties of data the caller does not have at hand (the no-data mode)."""

    outliers: bool = False
    heavy_tails: bool = False
    outlier_fraction: float | None = None
    imbalanced: bool = False
    minority_share: float | None = None

    @property
    def any(self) -> bool:
        return (self.outliers or self.heavy_tails or self.imbalanced
                or self.outlier_fraction is not None or self.minority_share is not None)


# --- small helpers ----------------------------------------------------------------------------


def num(x: float) -> str:
    """A measured number in a sentence: 4 significant digits."""
    return "nan" if not math.isfinite(x) else f"{x:.4g}"


def pct(x: float) -> str:
    """A fraction in a sentence, as a percentage."""
    if not math.isfinite(x):
        return "nan"
    return "0%" if x == 0 else f"{100 * x:.3g}%"


def sig(x: float, digits: int = 4) -> float:
    """A parameter rounded to the accuracy of its estimate."""
    return float(f"{x:.{digits}g}")


def spec_text(name: str, params: Mapping[str, ParamValue]) -> str | None:
    """The catalog spec text of a choice, or None when the catalog cannot express it (a
    data-dependent parameter that is not known: huber's delta without data)."""
    loss = CATALOG.get(name)
    if loss is None or any(loss.param(k) is None for k in params):
        return None
    parts = []
    for k, v in params.items():
        if v is None:
            if loss.param(k).default is not None:  # type: ignore[union-attr]
                return None
            continue
        if isinstance(v, list):
            # class weights measured from the data: eval measures the same ones
            parts.append(f"{k}={BALANCED}")
        else:
            parts.append(f"{k}={v if isinstance(v, str) else format_number(v)}")
    text = name + (":" + ",".join(parts) if parts else "")
    return parse_spec(text).spec


@dataclass(frozen=True)
class EvalArgs:
    """What ``losscli eval`` needs to read the same rows as the recommendation did."""

    source: str = "FILE"
    pred: list[str] | None = None
    target: str = "TARGET"
    weight: str | None = None
    logits: bool = False
    nan: str = "error"
    positive: str | None = None

    def command(self, spec: str) -> str:
        """The shell command line (each argument quoted for a POSIX shell)."""
        return self._line("eval", ["--loss", spec], weight=True)

    def measure_command(self) -> str:
        """The ``losscli recommend`` command that measures a choice's parameters on a model's
        residuals (huber's delta), with PRED for the prediction column when it is not known."""
        return self._line("recommend", [])

    def _line(self, command: str, tail: list[str], weight: bool = False) -> str:
        import shlex

        args = ["losscli", command, self.source,
                "--pred", ",".join(self.pred) if self.pred else "PRED", "--target", self.target]
        if self.weight and weight:
            args += ["--weight", self.weight]
        if self.logits:
            args.append("--logits")
        if self.nan != "error":
            args += ["--nan", self.nan]
        if self.positive is not None:
            args += ["--positive", self.positive]
        args += tail
        return " ".join(a if a.isupper() and a.isalpha() else shlex.quote(a) for a in args)


def add_commands(choices: Sequence[Choice], args: EvalArgs) -> None:
    """Each choice's ``losscli eval`` command; a choice whose parameter must come from a model's
    residuals (huber's delta without them) gets the ``losscli recommend`` command that measures
    it instead."""
    for c in choices:
        if c.spec is not None:
            c.command = args.command(c.spec)
        elif c.name == "huber" and c.params.get("delta", 0.0) is None:
            c.command = args.measure_command()


def choice(name: str, params: dict[str, ParamValue] | None = None, reason: str = "") -> Choice:
    params = params or {}
    return Choice(name, params, reason, spec_text(name, params))
