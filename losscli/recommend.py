"""Recommend a training loss from the task type and measured outlier / imbalance evidence.

``recommend(source, pred, target)`` streams the residuals e = pred - target (or, without
predictions, the target itself) through bounded-memory accumulators -- ``Moments`` (order 4) and
a pilot-centred pair of signed ``LogHistogram``s for the median and the MAD --, detects the task,
applies :data:`RULES` and returns a :class:`Recommendation` (plain data; ``to_dict()`` is the
``losscli.recommend/1`` JSON document). Without a source it explains the rules for a task,
optionally applied to properties the caller states (:class:`Hints`).

Robust scale: MAD is shift-invariant, so each value is centred on a pilot (the exact median of
the first :data:`PILOT_ROWS` rows, whatever the chunking) and (e - pilot) goes to a positive and a
negative log histogram. The median and the MAD are read from the bucket midpoints, each within
alpha = HIST_ALPHA (0.39%) of its values, so the MAD is within alpha (1 + 2 |median - pilot| / MAD).
When that bound exceeds alpha (1 + 2 PILOT_TOLERANCE) = 0.59% and the source can be read again (a
file, a directory, in-memory data; not stdin), another pass re-centres on the median found, which
brings the bound down to ~alpha.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, TypeVar

import numpy as np

from losscli import __version__
from losscli.detect import TASKS, TargetFacts, Task, check_task, detect
from losscli.engine import (
    DEFAULT_CHUNK_ROWS,
    ROW_SUM_RTOL,
    TaskValidator,
    check_weights,
    domain_error,
    json_safe,
)
from losscli.errors import DuplicateColumnError, InputError, UsageError
from losscli.losses import BALANCED, CATALOG, Batch, balanced_class_weights, sigmoid
from losscli.run import Executor, ReadPlan, resolve_executor
from losscli.sources import Chunk, Columns, NanPolicy, NanStats, RawChunk, Source, to_chunk
from losscli.spec import format_number, parse_spec
from losscli.state import (
    HIST_ALPHA,
    EvalState,
    ExactSum,
    LogHistogram,
    Moments,
    align_weight_exp,
    inverted_cdf,
    weight_exponent,
)

SCHEMA = "losscli.recommend/1"

RecTask = Task
REC_TASKS = TASKS

# --- thresholds: every rule reads one of these, and the output quotes them -----------------------

#: 1 / Phi^-1(3/4): makes the MAD a consistent estimate of sigma for normal data.
MAD_TO_SIGMA = 1.4826
#: Modified z-score cut (Iglewicz & Hoaglin 1993): |e - median| / robust scale above it is an
#: outlier. Normal residuals put 0.047% of rows past it.
OUTLIER_Z = 3.5
#: Huber's tuning constant: delta = 1.345 x robust scale gives 95% asymptotic efficiency at the
#: normal while bounding the influence of outliers (Huber 1981).
HUBER_K = 1.345
#: Outlier fraction above which outliers are "present" (about 20x the normal rate of 0.047%).
OUTLIER_SHARE_NOTABLE = 0.01
#: Outlier fraction above which outliers are a "large share": the median (mae) has the smallest
#: worst-case bias under heavy contamination (Huber 1964), so mae replaces huber.
OUTLIER_SHARE_LARGE = 0.10
#: Excess kurtosis above which tails are "heavy" (normal 0, logistic 1.2, Laplace 3, Student-t5 6;
#: the sampling error of the normal's is sqrt(24 / n), 0.015 at 1e5 rows).
HEAVY_TAIL_KURTOSIS = 1.0
#: |quartile skewness| (Bowley: (Q3 + Q1 - 2 Q2) / (Q3 - Q1), in [-1, 1]) above which the values
#: are called asymmetric: a note, it changes no rule. Normal and Student-t 0, exponential 0.26,
#: lognormal(sigma=1) 0.32. Quartiles, unlike the moment skewness, are not swayed by heavy tails.
QUARTILE_SKEW_NOTABLE = 0.1
#: Binary: a minority share below this is "rare": bce with pos_weight = n_neg / n_pos.
RARE_MINORITY = 0.10
#: Binary: a minority share below this is "extremely rare": focal loss.
EXTREMELY_RARE_MINORITY = 0.01
#: Multiclass: largest / smallest class count at or above this is "imbalanced": class weights.
IMBALANCE_RATIO = 3.0
#: Focal loss focusing exponent (Lin et al. 2017 found 2 best).
FOCAL_GAMMA = 2.0
#: A probability of the true class below this is "confidently wrong" (evidence only).
CONFIDENT_WRONG_P = 0.1
#: Rows whose exact median is the pilot centre of the robust-scale histograms.
PILOT_ROWS = 1 << 16
#: One pass suffices while |median - pilot| <= this x MAD (MAD bound alpha (1 + 2 x this)).
PILOT_TOLERANCE = 0.25
#: At most this many passes re-centre the histograms on the median found.
MAX_CENTRING_PASSES = 3
#: Classes of a target-only multiclass analysis (class indices 0..k-1).
MAX_CLASSES = 10_000

THRESHOLDS: dict[str, float] = {
    "outlier_z": OUTLIER_Z,
    "mad_to_sigma": MAD_TO_SIGMA,
    "huber_k": HUBER_K,
    "outlier_share_notable": OUTLIER_SHARE_NOTABLE,
    "outlier_share_large": OUTLIER_SHARE_LARGE,
    "heavy_tail_kurtosis": HEAVY_TAIL_KURTOSIS,
    "quartile_skew_notable": QUARTILE_SKEW_NOTABLE,
    "rare_minority": RARE_MINORITY,
    "extremely_rare_minority": EXTREMELY_RARE_MINORITY,
    "imbalance_ratio": IMBALANCE_RATIO,
    "focal_gamma": FOCAL_GAMMA,
    "confident_wrong_p": CONFIDENT_WRONG_P,
}


@dataclass(frozen=True)
class Rule:
    """One selection rule, as stated in the output and the README."""

    task: RecTask
    when: str
    loss: str
    params: str


RULES: tuple[Rule, ...] = (
    Rule("regression", f"outlier fraction > {OUTLIER_SHARE_LARGE:.0%} (a large share)", "mae",
         "-"),
    Rule("regression", f"outlier fraction > {OUTLIER_SHARE_NOTABLE:.0%} or excess kurtosis > "
         f"{HEAVY_TAIL_KURTOSIS:g} (outliers or heavy tails)", "huber",
         f"delta = {HUBER_K} x robust scale"),
    Rule("regression", "otherwise (Gaussian-like residuals)", "mse", "-"),
    Rule("counts", "non-negative integer targets", "poisson", "predictions are rates > 0"),
    Rule("binary", f"minority share < {EXTREMELY_RARE_MINORITY:.0%} (extremely rare)", "focal",
         f"gamma = {FOCAL_GAMMA:g}, alpha = n_neg / n"),
    Rule("binary", f"minority share < {RARE_MINORITY:.0%} (rare)", "bce",
         "pos_weight = n_neg / n_pos"),
    Rule("binary", "otherwise", "bce", "-"),
    Rule("multiclass", f"largest / smallest class >= {IMBALANCE_RATIO:g} (imbalanced)", "cce",
         "class weights n / (k n_c)"),
    Rule("multiclass", "otherwise", "cce", "-"),
)

DETECTION = (
    "several prediction columns (or a list column) -> multiclass; target values only 0 and 1 "
    "(and predictions in [0, 1], or --logits) -> binary; non-negative integer targets -> counts; "
    "anything else -> regression. --task overrides."
)


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
    #: placeholders where the input is not known: no data, or no prediction column)
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


@dataclass
class Recommendation:
    """The recommended loss, ranked alternatives, reasons and the evidence behind them."""

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


def _n(x: float) -> str:
    """A measured number in a sentence: 4 significant digits."""
    return "nan" if not math.isfinite(x) else f"{x:.4g}"


def _p(x: float) -> str:
    """A fraction in a sentence, as a percentage."""
    if not math.isfinite(x):
        return "nan"
    return "0%" if x == 0 else f"{100 * x:.3g}%"


def _sig(x: float, digits: int = 4) -> float:
    """A parameter rounded to the accuracy of its estimate."""
    return float(f"{x:.{digits}g}")


def _spec(name: str, params: Mapping[str, ParamValue]) -> str | None:
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

    def command(self, spec: str) -> str:
        """The shell command line (each argument quoted for a POSIX shell)."""
        import shlex

        args = ["losscli", "eval", self.source,
                "--pred", ",".join(self.pred) if self.pred else "PRED", "--target", self.target]
        if self.weight:
            args += ["--weight", self.weight]
        if self.logits:
            args.append("--logits")
        if self.nan != "error":
            args += ["--nan", self.nan]
        args += ["--loss", spec]
        return " ".join(a if a.isupper() and a.isalpha() else shlex.quote(a) for a in args)


def _add_commands(choices: Sequence[Choice], args: EvalArgs) -> None:
    for c in choices:
        if c.spec is not None:
            c.command = args.command(c.spec)


def _choice(name: str, params: dict[str, ParamValue] | None = None, reason: str = "") -> Choice:
    params = params or {}
    return Choice(name, params, reason, _spec(name, params))


# --- streaming accumulators -------------------------------------------------------------------


@dataclass
class SignedHistogram:
    """Values x - centre in two log histograms (positive side, negative side); exact zeros are
    counted in the positive side's zero bucket. Integer counts: merging is exact."""

    pos: LogHistogram = field(default_factory=LogHistogram)
    neg: LogHistogram = field(default_factory=LogHistogram)

    def update(self, d: np.ndarray) -> None:
        neg = d < 0.0
        if neg.any():
            self.neg.update(-d[neg])
            self.pos.update(d[~neg])
        else:
            self.pos.update(d)

    def merge(self, other: SignedHistogram) -> None:
        self.pos.merge(other.pos)
        self.neg.merge(other.neg)

    def signed_buckets(self) -> tuple[np.ndarray, np.ndarray]:
        """Ascending signed representative values and their counts (zero bucket included)."""
        pv, pc = self.pos.buckets()
        nv, nc = self.neg.buckets()
        # neg.buckets() includes its (always empty, or sub-1e-300) zero bucket first.
        values = np.concatenate((-nv[::-1], pv))
        counts = np.concatenate((nc[::-1], pc))
        keep = counts > 0
        return values[keep], counts[keep]


def _mid_order_stat(values: np.ndarray, counts: np.ndarray) -> float:
    """The median of sorted bucket values with counts, as numpy: the mean of the two middle
    order statistics."""
    n = int(counts.sum())
    cum = np.cumsum(counts)
    lo = values[int(np.searchsorted(cum, (n + 1) // 2))]
    hi = values[int(np.searchsorted(cum, n // 2 + 1))]
    return 0.5 * (float(lo) + float(hi))


@dataclass
class Robust:
    """Median, MAD and outlier count read from one signed histogram around ``pilot``."""

    median: float
    mad: float
    offset: float  # median - pilot
    outliers: int
    n: int
    values: np.ndarray  # signed bucket representatives, as absolute values (pilot added)
    counts: np.ndarray

    @property
    def scale(self) -> float:
        return MAD_TO_SIGMA * self.mad

    @property
    def quartile_skewness(self) -> float:
        """Bowley's (Q3 + Q1 - 2 median) / (Q3 - Q1); NaN when Q3 = Q1."""
        q1, q3 = (inverted_cdf(self.values, self.counts, q) for q in (0.25, 0.75))
        return (q3 + q1 - 2.0 * self.median) / (q3 - q1) if q3 > q1 else math.nan

    @property
    def bound(self) -> float:
        """Relative error bound of the MAD (see the module docstring)."""
        if self.mad <= 0.0:
            return math.inf if self.offset else HIST_ALPHA
        return HIST_ALPHA * (1.0 + 2.0 * abs(self.offset) / self.mad)


def _robust(hist: SignedHistogram, pilot: float) -> Robust:
    values, counts = hist.signed_buckets()
    c = _mid_order_stat(values, counts)
    dev = np.abs(values - c)
    order = np.argsort(dev, kind="stable")
    mad = _mid_order_stat(dev[order], counts[order])
    scale = MAD_TO_SIGMA * mad
    if scale > 0.0:
        outliers = int(counts[dev > OUTLIER_Z * scale].sum())
    else:
        outliers = int(counts[dev > 0.0].sum())
    return Robust(pilot + c, mad, c, outliers, int(counts.sum()), values + pilot, counts)


class _ClassSums:
    """Per-class sums of w l for parameter-free classification losses, so that class-weighted
    variants (pos_weight, focal alpha, cce class weights) are exact without another pass."""

    def __init__(self, names: tuple[tuple[str, dict[str, float | None]], ...]) -> None:
        self.names = names
        self.sums: list[list[ExactSum]] = [[] for _ in names]
        self.weights: list[ExactSum] = []
        #: the sums are of the weights times 2**-weight_exp (None: no weighted rows yet), as
        #: EvalState's: weights of any finite size neither overflow nor underflow
        self.weight_exp: int | None = None

    def _align(self, exp: int) -> int:
        """Rescale the sums to the common exponent of theirs and ``exp``; return it."""
        common, shift = align_weight_exp(self.weight_exp, exp)
        if shift:
            for s in (self.weights, *self.sums):
                for x in s:
                    x.scale(shift)
        self.weight_exp = common
        return common

    def _grow(self, k: int) -> None:
        while len(self.weights) < k:
            self.weights.append(ExactSum())
            for s in self.sums:
                s.append(ExactSum())

    def update(self, batch: Batch, y: np.ndarray, k: int) -> None:
        self._grow(k)
        w = batch.weight
        if w is not None:
            exp = weight_exponent(w)
            if self.weight_exp is not None and exp != self.weight_exp:
                part = self.empty()  # summed at its own scale, then merged: see EvalState
                part.update(batch, y, k)
                self.merge(part)
                return
            self.weight_exp = exp
            if exp:
                w = np.ldexp(w, -exp)
        wsum = np.bincount(y, weights=w, minlength=k) if w is not None else np.bincount(
            y, minlength=k)
        for c in range(k):
            if wsum[c]:
                self.weights[c].add(float(wsum[c]))
        for (name, params), sums in zip(self.names, self.sums, strict=True):
            values = CATALOG[name].compute(batch, params).values
            per = np.bincount(y, weights=values if w is None else values * w, minlength=k)
            for c in range(k):
                if per[c]:
                    sums[c].add(float(per[c]))

    def empty(self) -> _ClassSums:
        return _ClassSums(self.names)

    def merge(self, other: _ClassSums) -> None:
        self._grow(len(other.weights))
        shift = 0
        if other.weight_exp is not None:
            shift = other.weight_exp - self._align(other.weight_exp)
        for c, w in enumerate(other.weights):
            self.weights[c].merge(w, shift)
        for mine, theirs in zip(self.sums, other.sums, strict=True):
            for c, x in enumerate(theirs):
                mine[c].merge(x, shift)

    def value(self, loss: int, class_weights: list[float] | None = None,
              normalise: bool = False) -> float:
        """sum_c cw_c S_c / (sum_c cw_c W_c if normalise else sum_c W_c)."""
        k = len(self.weights)
        cw = class_weights or [1.0] * k
        num, den = ExactSum(), ExactSum()
        for c in range(k):
            num.add_scaled(self.sums[loss][c], cw[c])
            den.add_scaled(self.weights[c], cw[c] if normalise else 1.0)
        return num.ratio(den) if den.value > 0 else math.nan


def _softmax(z: np.ndarray) -> np.ndarray:
    m = z.max(axis=0)
    ex = np.exp(z - m)
    ex /= ex.sum(axis=0)
    return ex


Kind = Literal["residual", "target", "logit_residual", "multiclass"]


def _values(chunk: Chunk, kind: Kind, logits: bool) -> np.ndarray:
    """The analysed values of a chunk: residuals, the target, or p_true - 1 for multiclass."""
    if kind == "target":
        return chunk.target
    if kind == "logit_residual":
        return sigmoid(chunk.pred) - chunk.target
    if kind == "multiclass":
        return _true_class_prob(chunk, _probs(chunk, logits)) - 1.0
    return chunk.pred - chunk.target


def _probs(chunk: Chunk, logits: bool) -> np.ndarray:
    return _softmax(chunk.pred) if logits else chunk.pred


def _true_class_prob(chunk: Chunk, probs: np.ndarray | None = None) -> np.ndarray:
    p = chunk.pred if probs is None else probs
    y = chunk.target.astype(np.intp)
    return p[y, np.arange(y.size)]


@dataclass
class _Pass:
    """Everything one pass accumulates: a mergeable state (update a chunk, merge another in
    order), so chunks can be folded on the engine's thread pool. ``full=False`` keeps only the
    centred histogram (the re-centring passes)."""

    kind: Kind
    has_pred: bool
    multiclass: bool
    logits: bool
    pilot: float
    full: bool = True
    n_classes: int = 0
    rows: int = 0
    weight_sum: ExactSum = field(default_factory=ExactSum)
    moments: Moments = field(default_factory=lambda: Moments(order=4))
    hist: SignedHistogram = field(default_factory=SignedHistogram)
    vmin: float = math.inf
    vmax: float = -math.inf
    # target facts (task detection)
    tfacts: TargetFacts = field(default_factory=TargetFacts)
    t_moments: Moments = field(default_factory=Moments)
    class_counts: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    # candidate losses (None once a chunk rules them out)
    reg: EvalState | None = None
    poisson: EvalState | None = None
    pred_nonpositive: int = 0
    target_negative: int = 0
    cls: _ClassSums | None = None
    # probability evidence (classification with predictions)
    abs_err: ExactSum = field(default_factory=ExactSum)
    brier: ExactSum = field(default_factory=ExactSum)
    mean_p: ExactSum = field(default_factory=ExactSum)
    confident_wrong: int = 0
    correct: int = 0
    row_sum_off: int = 0

    def __post_init__(self) -> None:
        if not self.full or not self.has_pred:
            return
        if not self.multiclass and not self.logits:
            self.reg = EvalState([parse_spec("mse"), parse_spec("mae")])
            self.poisson = EvalState([parse_spec("poisson")])
        if self.multiclass:
            self.cls = _ClassSums((("cce", {}),))
        else:
            self.cls = _ClassSums((("bce", {}), ("focal", {"gamma": FOCAL_GAMMA,
                                                           "alpha": None})))

    def empty(self) -> _Pass:
        return _Pass(self.kind, self.has_pred, self.multiclass, self.logits, self.pilot,
                     self.full, self.n_classes)

    def update(self, chunk: Chunk) -> None:
        """Add one chunk: its own state is built, then merged in."""
        if chunk.target.size:
            part = self.empty()
            part._fill(chunk)
            self.merge(part)

    def _fill(self, chunk: Chunk) -> None:
        """The state of exactly one chunk (called on an empty state)."""
        n = chunk.target.size
        self.rows = n
        x = _values(chunk, self.kind, self.logits)
        self.hist.update(x - self.pilot)
        if not self.full:
            return
        w = chunk.weight
        self.weight_sum.add(float(n) if w is None else float(np.sum(w)))
        self.moments.update(x)
        self.vmin = float(x.min())
        self.vmax = float(x.max())
        if self.multiclass:
            self._update_multiclass(chunk)
        else:
            self._update_single(chunk, x)

    def _update_single(self, chunk: Chunk, x: np.ndarray) -> None:
        t, p = chunk.target, chunk.pred
        self.tfacts = facts = TargetFacts.of(t, p if self.has_pred else None)
        self.t_moments.update(t)
        self.target_negative = int(np.count_nonzero(t < 0.0))
        if not self.has_pred:
            if facts.binary:
                self.class_counts = np.bincount(t.astype(np.intp), minlength=2)
            return
        self.pred_nonpositive = int(np.count_nonzero(p <= 0.0))
        batch = Batch(p, t, chunk.weight, self.logits)
        if self.reg is not None:
            self.reg.update(batch)
        if self.poisson is not None:
            if self.target_negative or self.pred_nonpositive:
                self.poisson = None
            else:
                self.poisson.update(batch)
        if not (facts.binary and (self.logits or facts.unit_pred)):
            self.cls = None
            return
        y = t.astype(np.intp)
        self.class_counts = np.bincount(y, minlength=2)
        assert self.cls is not None
        self.cls.update(batch, y, 2)
        a = np.abs(x)  # |p - y| = 1 - p_true
        self.abs_err.add(float(np.sum(a)))
        self.brier.add(float(np.sum(x * x)))
        prob = sigmoid(p) if self.logits else p
        self.mean_p.add(float(np.sum(prob)))
        self.confident_wrong = int(np.count_nonzero(a > 1.0 - CONFIDENT_WRONG_P))
        self.correct = int(np.count_nonzero((prob >= 0.5) == (t == 1.0)))

    def _update_multiclass(self, chunk: Chunk) -> None:
        y = chunk.target.astype(np.intp)
        if not self.has_pred:
            self.n_classes = max(self.n_classes, int(y.max()) + 1)
        k = self.n_classes
        self.class_counts = np.bincount(y, minlength=k)
        if not self.has_pred:
            return
        assert self.cls is not None
        self.cls.update(Batch(chunk.pred, chunk.target, chunk.weight, self.logits), y, k)
        probs = _probs(chunk, self.logits)
        py = _true_class_prob(chunk, probs)
        self.abs_err.add(float(np.sum(1.0 - py)))
        self.brier.add(float(np.sum(np.einsum("ij,ij->j", probs, probs) - 2.0 * py + 1.0)))
        self.confident_wrong = int(np.count_nonzero(py < CONFIDENT_WRONG_P))
        self.correct = int(np.count_nonzero(np.argmax(probs, axis=0) == y))

    def merge(self, o: _Pass) -> None:
        """Fold in the state of the rows that follow (merging in row order keeps the bits the
        same for any number of threads)."""
        self.rows += o.rows
        self.hist.merge(o.hist)
        if not self.full:
            return
        self.weight_sum.merge(o.weight_sum)
        self.moments.merge(o.moments)
        self.vmin, self.vmax = min(self.vmin, o.vmin), max(self.vmax, o.vmax)
        self.n_classes = max(self.n_classes, o.n_classes)
        self.tfacts.merge(o.tfacts)
        self.t_moments.merge(o.t_moments)
        a, b = self.class_counts, o.class_counts
        if b.size > a.size:
            a, b = b, a
        self.class_counts = a.copy()
        self.class_counts[: b.size] += b
        if self.reg is not None and o.reg is not None:
            self.reg.merge(o.reg)
        self.poisson = _merged(self.poisson, o.poisson)
        self.cls = _merged(self.cls, o.cls)
        self.pred_nonpositive += o.pred_nonpositive
        self.target_negative += o.target_negative
        self.abs_err.merge(o.abs_err)
        self.brier.merge(o.brier)
        self.mean_p.merge(o.mean_p)
        self.confident_wrong += o.confident_wrong
        self.correct += o.correct
        self.row_sum_off += o.row_sum_off


def _merged(a: Any, b: Any) -> Any:
    """Merge two optional states: None (ruled out by some chunk) wins."""
    if a is None or b is None:
        return None
    a.merge(b)
    return a


@dataclass
class PassFold:
    """A pass's state and the rows it dropped for NaN (merged like any state)."""

    state: _Pass | EvalState
    nan: NanStats = field(default_factory=NanStats)


@dataclass
class PassReduction:
    """A recommend pass: validates a block (eval's checks and messages) and folds it into a
    fresh state of the template's kind (the evidence pass, a re-centring pass, a loss pass)."""

    template: _Pass | EvalState
    cols: Columns
    where: str
    task: RecTask | None
    validator: TaskValidator | None = None

    def empty(self) -> PassFold:
        return PassFold(self.template.empty())

    def merge(self, earlier: PassFold, later: PassFold) -> PassFold:
        earlier.state.merge(later.state)  # type: ignore[arg-type]
        earlier.nan.merge(later.nan)
        return earlier

    def fold(self, acc: PassFold, raw: RawChunk) -> PassFold:
        chunk = to_chunk(raw, self.cols, acc.nan)
        if chunk.target.shape[0] == 0:
            return acc
        off = self.validator.check(chunk) if self.validator is not None else 0
        _check_chunk(chunk, self.cols, self.where, self.task)
        state = acc.state
        if isinstance(state, EvalState):
            state.update(Batch(chunk.pred, chunk.target, chunk.weight, False))
        elif state.rows == 0:
            state._fill(chunk)
            state.row_sum_off = off
        else:
            state.update(chunk)
            state.row_sum_off += off
        return acc


S = TypeVar("S", _Pass, EvalState)


@dataclass
class _Passes:
    """The passes of one recommendation over the same plan, checks and executor."""

    plan: ReadPlan[RawChunk]
    reduction: PassReduction
    executor: Executor

    def scan(self, template: S, progress: Callable[[int], None] | None = None
             ) -> tuple[S, NanStats]:
        red = replace(self.reduction, template=template)
        with np.errstate(all="ignore"):
            folded = self.executor.run(self.plan, red, progress)
        return folded.state, folded.nan  # type: ignore[return-value]


def _open(source: Any) -> Source:
    from losscli.sources import open_source, open_table

    if isinstance(source, Source):
        return source
    if isinstance(source, (str, Path)):
        return open_source(str(source))
    return open_table(source)


def _columns(src: Source, pred: str | None, target: str | None, weight: str | None,
             target_only: bool) -> tuple[Columns, bool, str]:
    """Resolve the columns; without --pred and no recognised prediction column (or with
    ``target_only``), the analysis is target-only: the target stands in as the prediction column
    so that chunks() reads, validates and NaN-filters it once."""
    from losscli.sources import (
        TARGET_NAMES,
        check_unique,
        find_column,
        guess_column,
        resolve_columns,
    )

    if pred is not None and target_only:
        raise UsageError("--target-only and --pred exclude each other")
    if pred is not None:
        return resolve_columns(src, pred, target, weight), True, "given"
    tgt = find_column(src, target, "target") if target else guess_column(src, TARGET_NAMES, set())
    if tgt is None:
        raise InputError(f"{src.path}: no target column recognised; pass --target "
                         f"(columns: {', '.join(src.names[:30])})")
    w = find_column(src, weight, "weight") if weight else None
    if not target_only:
        try:
            return resolve_columns(src, None, tgt, weight), True, "recognised"
        except DuplicateColumnError:
            raise
        except InputError:
            pass
    return check_unique(src, Columns([tgt], tgt, w)), False, "none"


# --- the rules --------------------------------------------------------------------------------


@dataclass
class _Facts:
    """What the rules read: measured numbers, or properties the caller stated."""

    measured: bool
    outlier_fraction: float | None = None
    excess_kurtosis: float | None = None
    skewness: float | None = None
    quartile_skewness: float | None = None
    robust_scale: float | None = None
    outliers_stated: bool = False
    heavy_stated: bool = False
    minority_share: float | None = None
    imbalanced_stated: bool = False
    class_counts: list[int] | None = None
    labels: list[str] | None = None


def _regression_rules(f: _Facts) -> tuple[Choice, list[Choice], list[str]]:
    if f.robust_scale is not None and f.robust_scale > 0:
        delta: float | None = _sig(HUBER_K * f.robust_scale)
        dtext = (f"delta = {HUBER_K} x robust scale {_n(f.robust_scale)} = "
                 f"{_n(HUBER_K * f.robust_scale)}")
    else:
        delta = None
        dtext = f"delta = {HUBER_K} x the robust scale (1.4826 MAD) of your residuals"
    huber_params: dict[str, ParamValue] = {"delta": delta}
    frac, kurt = f.outlier_fraction, f.excess_kurtosis
    large = (frac is not None and frac > OUTLIER_SHARE_LARGE)
    some = f.outliers_stated or (frac is not None and frac > OUTLIER_SHARE_NOTABLE)
    heavy = f.heavy_stated or (kurt is not None and kurt > HEAVY_TAIL_KURTOSIS)
    reasons: list[str] = []
    if large:
        assert frac is not None
        reasons.append(f"The outlier fraction {_p(frac)} (|e - median| > {OUTLIER_Z:g} robust "
                       f"scales) is above the {_p(OUTLIER_SHARE_LARGE)} large-share threshold, "
                       "where mae (median regression, 50% breakdown point) has the smallest "
                       "worst-case bias.")
        rec = _choice("mae", {}, "")
        alts = [_choice("huber", huber_params, f"Robust with 95% efficiency on the clean part "
                        f"({dtext}), but the {_p(frac)} outliers still pull it more than mae."),
                _choice("mse", {}, f"Not advised: squared errors let the {_p(frac)} outliers "
                        "dominate the fit.")]
    elif some or heavy:
        if frac is not None and frac > OUTLIER_SHARE_NOTABLE:
            reasons.append(f"The outlier fraction {_p(frac)} (|e - median| > {OUTLIER_Z:g} "
                           f"robust scales) is above {_p(OUTLIER_SHARE_NOTABLE)} (normal "
                           "residuals: 0.047%), so squared errors would be dominated by them.")
        elif f.outliers_stated:
            reasons.append("You stated that outliers are present, so squared errors would be "
                           "dominated by them.")
        if kurt is not None and kurt > HEAVY_TAIL_KURTOSIS:
            reasons.append(f"The excess kurtosis {_n(kurt)} is above {_n(HEAVY_TAIL_KURTOSIS)} "
                           "(normal: 0): the tails are heavier than Gaussian.")
        elif f.heavy_stated:
            reasons.append("You stated that the tails are heavy.")
        reasons.append(f"Huber is quadratic near zero and linear in the tails; {dtext} keeps "
                       "95% efficiency at the normal while bounding each outlier's pull.")
        rec = _choice("huber", huber_params)
        share = _p(frac) if frac is not None else "the"
        alts = [_choice("mae", {}, f"More robust still (50% breakdown point), at 64% efficiency "
                        f"on Gaussian noise; prefer it if {share} outliers grow past "
                        f"{_p(OUTLIER_SHARE_LARGE)}."),
                _choice("mse", {}, "Not advised: the outliers / heavy tails would dominate the "
                        "squared errors.")]
    else:
        if f.measured:
            assert frac is not None and kurt is not None
            reasons.append(f"The outlier fraction {_p(frac)} is at most "
                           f"{_p(OUTLIER_SHARE_NOTABLE)} (normal residuals: 0.047%).")
            reasons.append(f"The excess kurtosis {_n(kurt)} is at most "
                           f"{_n(HEAVY_TAIL_KURTOSIS)} (normal: 0): the tails look Gaussian.")
        else:
            reasons.append("No outliers or heavy tails stated: residuals assumed Gaussian-like.")
        reasons.append("For Gaussian noise mse is the maximum-likelihood loss and the most "
                       "efficient.")
        rec = _choice("mse")
        alts = [_choice("huber", huber_params, f"A safe fallback if outliers appear later "
                        f"({dtext}): 95% as efficient as mse on Gaussian noise."),
                _choice("mae", {}, "Only 64% as efficient as mse on Gaussian noise; worth it "
                        "only with many outliers.")]
    qs = f.quartile_skewness
    if qs is not None and math.isfinite(qs) and abs(qs) > QUARTILE_SKEW_NOTABLE:
        reasons.append(f"Note: the quartile skewness {_n(qs)} (moment skewness "
                       f"{_n(f.skewness if f.skewness is not None else math.nan)}) exceeds "
                       f"{_n(QUARTILE_SKEW_NOTABLE)} in magnitude: the values are asymmetric; a "
                       "log transform of the target or a quantile loss may fit better.")
    return rec, alts, reasons


def _counts_rules(f: _Facts) -> tuple[Choice, list[Choice], list[str]]:
    reasons = ["Counts are modelled by a Poisson rate: the mean Poisson deviance is its "
               "log-likelihood, with variance growing with the mean."]
    rec = _choice("poisson")
    delta = None if not f.robust_scale else _sig(HUBER_K * f.robust_scale)
    alts = [_choice("mse", {}, "If predictions can be zero or negative (no log link): the "
                    "squared error of the counts."),
            _choice("huber", {"delta": delta}, f"If a few counts are extreme: delta = {HUBER_K} "
                    "x robust scale of the residuals."),
            _choice("mae", {}, "Predicts the median count, not the mean rate.")]
    return rec, alts, reasons


def _binary_rules(f: _Facts) -> tuple[Choice, list[Choice], list[str]]:
    counts = f.class_counts
    share = f.minority_share
    reasons: list[str] = []
    pos_weight: float | str | None = None
    alpha: float | str | None = None
    if counts is not None and counts[0] > 0 and counts[1] > 0:
        pos_weight = _sig(counts[0] / counts[1])
        alpha = _sig(counts[0] / (counts[0] + counts[1]))
    elif share is not None and 0 < share < 1:
        pos_weight = _sig((1.0 - share) / share)
        alpha = _sig(1.0 - share)
    elif not f.measured:  # no data: eval measures them (n_neg / n_pos, n_neg / n)
        pos_weight, alpha = BALANCED, BALANCED
    minority = "positive" if counts is None or counts[1] <= counts[0] else "negative"
    ratio = (f"pos_weight = n_neg / n_pos = {counts[0]:,} / {counts[1]:,} = {_n(pos_weight)}"
             if counts is not None and isinstance(pos_weight, float) else
             f"pos_weight = n_neg / n_pos = {_n(pos_weight)}" if isinstance(pos_weight, float)
             else "pos_weight = n_neg / n_pos")
    extreme = share is not None and share < EXTREMELY_RARE_MINORITY
    rare = f.imbalanced_stated or (share is not None and share < RARE_MINORITY)
    focal = _choice("focal", {"gamma": FOCAL_GAMMA, "alpha": alpha})
    weighted = _choice("bce", {"pos_weight": pos_weight})
    plain = _choice("bce")
    if extreme:
        assert share is not None
        reasons.append(f"The minority ({minority}) class is {_p(share)} of the rows, below the "
                       f"{_p(EXTREMELY_RARE_MINORITY)} extremely-rare threshold.")
        reasons.append(f"Focal loss (gamma = {FOCAL_GAMMA:g}) down-weights the many easy "
                       f"majority examples; alpha = n_neg / n = "
                       f"{_n(alpha) if isinstance(alpha, float) else '-'} "
                       "balances the classes as pos_weight would (tune it: Lin et al. used "
                       "0.25 with gamma = 2).")
        rec = focal
        weighted.reason = f"Simpler and often as good: bce with {ratio}."
        plain.reason = ("Keeps probabilities calibrated, but the rare class contributes "
                        f"only {_p(share)} of the gradient signal.")
        alts = [weighted, plain]
    elif rare:
        if share is not None:
            reasons.append(f"The minority ({minority}) class is {_p(share)} of the rows, below "
                           f"the {_p(RARE_MINORITY)} rare threshold.")
        else:
            reasons.append("You stated that the classes are imbalanced.")
        reasons.append(f"bce with {ratio} gives both classes equal total weight.")
        rec = weighted
        focal.reason = (f"If the weighted loss still under-fits the rare class: focal with "
                        f"gamma = {FOCAL_GAMMA:g}.")
        plain.reason = ("Unweighted bce keeps calibrated probabilities; reweight the decision "
                        "threshold instead.")
        alts = [plain, focal]
    else:
        if share is not None:
            reasons.append(f"The minority ({minority}) class is {_p(share)} of the rows, not "
                           f"below the {_p(RARE_MINORITY)} rare threshold: no reweighting.")
        else:
            reasons.append("No imbalance stated: the classes are assumed balanced enough.")
        reasons.append("bce (log loss) is the binary log-likelihood: calibrated probabilities.")
        rec = plain
        weighted.reason = f"If the minority class matters more than its share: bce with {ratio}."
        focal.reason = f"For many easy examples: focal with gamma = {FOCAL_GAMMA:g}."
        alts = [weighted, focal]
    return rec, alts, reasons


def _multiclass_rules(f: _Facts) -> tuple[Choice, list[Choice], list[str]]:
    counts = f.class_counts
    weights: list[float] | str | None = None
    ratio = math.nan
    if counts is not None and len(counts) > 0:
        present = [c for c in counts if c > 0]
        ratio = max(present) / min(present) if present else math.nan
        weights = list(balanced_class_weights(np.asarray(counts)))
    elif not f.measured:  # no data: eval measures them
        weights = BALANCED
    imbalanced = f.imbalanced_stated or (math.isfinite(ratio) and ratio >= IMBALANCE_RATIO)
    wtext = ("class weights n / (k n_c)" if not isinstance(weights, list) else
             "class weights n / (k n_c) = " + ", ".join(_n(w) for w in weights[:8])
             + (", ..." if len(weights) > 8 else ""))
    reasons: list[str] = []
    weighted = _choice("cce", {"class_weights": weights})
    plain = _choice("cce")
    if imbalanced:
        if math.isfinite(ratio):
            assert counts is not None
            labels = f.labels or [str(i) for i in range(len(counts))]
            big = labels[int(np.argmax(counts))]
            small = labels[min((c, i) for i, c in enumerate(counts) if c > 0)[1]]
            reasons.append(f"The largest class ({big}) has {_n(ratio)}x the rows of the "
                           f"smallest ({small}), at or above the {IMBALANCE_RATIO:g}x imbalance "
                           "threshold.")
        else:
            reasons.append("You stated that the classes are imbalanced.")
        reasons.append(f"cce with {wtext} gives every class the same total weight.")
        rec = weighted
        plain.reason = "Unweighted cce keeps calibrated probabilities for the true class mix."
        alts = [plain]
    else:
        if math.isfinite(ratio):
            reasons.append(f"The largest class has {_n(ratio)}x the rows of the smallest, below "
                           f"the {IMBALANCE_RATIO:g}x imbalance threshold: no class weights.")
        else:
            reasons.append("No imbalance stated: classes are assumed balanced enough.")
        reasons.append("cce is the multiclass log-likelihood: calibrated probabilities.")
        rec = plain
        weighted.reason = f"If the rarer classes matter more than their share: {wtext}."
        alts = [weighted]
    missing = [i for i, c in enumerate(counts or []) if c == 0]
    if missing:
        reasons.append(f"Note: {len(missing)} class(es) never occur as a target; their weight "
                       "is 0.")
    return rec, alts, reasons


_RULE_FNS: dict[RecTask, Callable[[_Facts], tuple[Choice, list[Choice], list[str]]]] = {
    "regression": _regression_rules,
    "counts": _counts_rules,
    "binary": _binary_rules,
    "multiclass": _multiclass_rules,
}


def rules_for(task: RecTask) -> list[Rule]:
    """The selection rules of one task, in the order they are tried."""
    return [r for r in RULES if r.task == task]


# --- the public entry -------------------------------------------------------------------------


def recommend(
    source: str | Path | Source | Mapping[str, Any] | Any | None = None,
    pred: str | None = None,
    target: str | None = None,
    weight: str | None = None,
    task: RecTask | None = None,
    *,
    logits: bool = False,
    nan: NanPolicy = "error",
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    threads: int | bool | None = None,
    progress: Callable[[int], None] | None = None,
    executor: str | Executor | None = None,
    second_pass: bool = True,
    target_only: bool = False,
    hints: Hints | None = None,
) -> Recommendation:
    """Recommend a loss for a file, directory, ``"-"`` (CSV on stdin) or in-memory columns.

    With predictions the evidence is the residuals e = pred - target; without, the target around
    its median. ``source=None`` explains the rules of ``task`` applied to ``hints``.
    ``second_pass=False`` forbids re-reading the source (as for stdin); ``target_only`` ignores
    recognised prediction columns. Raises
    :class:`~losscli.errors.LossCliError` subclasses for bad input.
    """
    task = check_task(task)
    hints = hints or Hints()
    for label, v in (("--outlier-fraction", hints.outlier_fraction),
                     ("--minority-share", hints.minority_share)):
        if v is not None and not 0.0 <= v <= 1.0:
            raise UsageError(f"{label} must be a fraction in [0, 1], got {v:g}")
    if source is None:
        if task is None:
            raise UsageError("pass a SOURCE to analyse, or --task to see the selection rules "
                             "for a task")
        if pred or target or weight:
            raise UsageError("--pred, --target and --weight need a SOURCE")
        return _rules_only(task, hints)
    if hints.any:
        raise UsageError("--outliers, --heavy-tails, --imbalanced, --outlier-fraction and "
                         "--minority-share describe data you do not have; with a SOURCE they "
                         "are measured")
    if chunk_rows < 1:
        raise UsageError(f"--chunk-rows must be a positive number of rows, got {chunk_rows}")
    if nan not in ("error", "drop"):
        raise UsageError(f"--nan must be 'error' or 'drop', got '{nan}'")
    src = _open(source)
    where = src.where
    cols, has_pred, pred_from = _columns(src, pred, target, weight, target_only)
    if not has_pred:
        import pyarrow as pa

        typ = src.arrow_types.get(cols.target)
        if typ is not None and (pa.types.is_string(typ) or pa.types.is_large_string(typ)
                                or pa.types.is_dictionary(typ)):
            raise InputError(f"{where}: target column '{cols.target}' holds text labels ({typ});"
                             " target-only analysis needs numeric targets: encode the classes "
                             "as 0..k-1, or pass the prediction columns with --pred")
        if logits:
            raise UsageError("--logits describes predictions, but no prediction column was "
                             "given or recognised")
    if cols.multiclass and task not in (None, "multiclass"):
        raise UsageError(f"{len(cols.pred)} prediction columns were selected, but --task {task} "
                         "needs a single column")
    if task == "multiclass" and has_pred and not cols.multiclass:
        raise UsageError("--task multiclass needs one prediction column per class: pass --pred "
                         "as a comma list, a glob such as 'prob_*', or a list column")
    multiclass = cols.multiclass or (task == "multiclass")
    if not has_pred:
        kind: Kind = "target"
    elif cols.multiclass:
        kind = "multiclass"
    elif logits:
        kind = "logit_residual"
    else:
        kind = "residual"
    rereadable = second_pass and not src.is_stream
    from losscli._alloc import keep_temporaries_in_heap

    keep_temporaries_in_heap()
    validator: TaskValidator | None = None
    if cols.multiclass or (task == "binary" and has_pred):
        validator = TaskValidator("multiclass" if cols.multiclass else "binary", cols, logits,
                                  where)
    plan: ReadPlan[RawChunk] = ReadPlan(src, cols, chunk_rows)
    passes_ = _Passes(plan, PassReduction(_Pass(kind, has_pred, multiclass, logits, 0.0), cols,
                                          where, task, validator),
                      resolve_executor(executor, threads))

    # pass 1: the pilot centre is the exact median of the first PILOT_ROWS values
    head = _pilot_rows(plan, cols, nan, where)
    n_classes = int(head[0].pred.shape[0]) if cols.multiclass else 0
    with np.errstate(all="ignore"):
        sample = np.concatenate([_values(c, kind, logits) for c in head])[:PILOT_ROWS]
        pilot = float(np.median(sample))  # NaN when +inf and -inf meet in the middle
    acc, stats = passes_.scan(_Pass(kind, has_pred, multiclass, logits, pilot, True, n_classes),
                              progress)
    if stats.count and nan == "error":
        raise stats.error()
    if acc.rows == 0:
        raise stats.all_dropped(where)
    warnings: list[str] = []
    if stats.count:
        warnings.append(f"dropped {stats.count} row(s) with NaN, inf or empty values (first at "
                        f"row {stats.first_row}, column '{stats.first_column}')")
    if acc.row_sum_off:
        warnings.append(f"{acc.row_sum_off} probability row(s) do not sum to 1 (tolerance "
                        f"{ROW_SUM_RTOL:g}); the probability of the true class is used as given")
    if cols.weight and has_pred and acc.weight_sum.value <= 0.0:
        raise InputError(f"{where}: weight column '{cols.weight}' sums to zero; the weighted "
                         "mean is undefined")

    detected, why = _detect(acc, cols, has_pred, logits, task, where)
    if logits and detected not in ("binary", "multiclass"):
        raise UsageError(f"--logits applies to binary and multiclass predictions, but the task "
                         f"is {detected}")
    if detected == "counts" and acc.target_negative:
        raise InputError(f"{where}: --task counts needs non-negative targets; column "
                         f"'{cols.target}' has {acc.target_negative} negative value(s)")
    if detected == "binary" and acc.class_counts.size == 2 and 0 in acc.class_counts:
        warnings.append("only one class occurs in the target: the class balance cannot be "
                        "estimated")

    # robust scale: re-centre on the median found while the pilot was too far from it
    robust = _robust(acc.hist, pilot)
    passes = 1
    while (rereadable and robust.mad > 0 and abs(robust.offset) > PILOT_TOLERANCE * robust.mad
           and passes < MAX_CENTRING_PASSES):
        again, _ = passes_.scan(_Pass(kind, has_pred, multiclass, logits, robust.median,
                                      False))
        robust, passes = _robust(again.hist, robust.median), passes + 1
    scale, fallback = robust.scale, False
    if scale <= 0.0:
        # More than half the values equal the median: the normal-consistent mean absolute
        # deviation (sqrt(pi/2) E|x - median|) stands in for the scale.
        dev = np.abs(robust.values - robust.median)
        mean_abs = float(np.sum(dev * robust.counts)) / robust.n
        scale, fallback = math.sqrt(math.pi / 2.0) * mean_abs, True
        if scale > 0.0:
            robust.outliers = int(robust.counts[dev > OUTLIER_Z * scale].sum())
        if scale > 0.0 and detected in ("regression", "counts"):
            warnings.append(f"the MAD is 0 (more than half the values equal the median "
                            f"{_n(robust.median)}); outliers are measured against the mean "
                            f"absolute deviation instead ({_n(scale)})")

    evidence = _evidence(acc, robust, scale, stats, passes, detected, cols)
    facts = _Facts(
        measured=True,
        outlier_fraction=evidence.outlier_fraction,
        excess_kurtosis=evidence.excess_kurtosis,
        skewness=evidence.skewness,
        quartile_skewness=evidence.quartile_skewness,
        robust_scale=scale if scale > 0 else None,
    )
    if evidence.class_balance is not None:
        cb = evidence.class_balance
        facts.class_counts = list(cb["counts"].values())
        facts.labels = list(cb["counts"].keys())
        facts.minority_share = cb["minority_share"]
    rec, alts, reasons = _RULE_FNS[detected](facts)
    notes: list[str] = []
    if fallback and detected in ("regression", "counts"):
        notes.append("The robust scale is the mean-absolute-deviation fallback (MAD = 0)."
                     if scale > 0 else f"All values equal {_n(robust.median)}: there is no "
                     "spread for the rules to measure.")
    if not has_pred:
        notes.append("Target-only analysis: the spread of the target stands in for the "
                     "residuals a model will leave; candidate loss values need predictions "
                     "(pass --pred) and are not shown.")
    else:
        notes.extend(_loss_values(acc, [rec, *alts], passes_ if rereadable else None))
    if robust.bound > HIST_ALPHA * (1 + 2 * PILOT_TOLERANCE):
        notes.append(f"The robust scale is within {_p(robust.bound)}: the pilot centre was "
                     f"{_n(abs(robust.offset) / robust.mad if robust.mad else math.inf)} MADs "
                     "from the median and the input could not be read again.")
    histogram = _histogram(acc, robust, scale, detected, has_pred, evidence)
    path = str(source) if isinstance(source, (str, Path)) else (
        src.path if isinstance(source, Source) else None)
    if path is not None:
        _add_commands([rec, *alts], EvalArgs(path, cols.pred if has_pred else None,
                                             cols.target, cols.weight, logits, nan))
    return Recommendation(
        task=detected, task_reason=why, recommended=rec, alternatives=alts, reasons=reasons,
        mode="residuals" if has_pred else "target", evidence=evidence, histogram=histogram,
        source={"path": where, "format": src.display_format, "rows": acc.rows + stats.count,
                "rows_used": acc.rows, "rows_dropped": stats.count},
        columns={"pred": cols.pred if has_pred else None, "pred_from": pred_from,
                 "target": cols.target, "weight": cols.weight,
                 **({"classes": _labels(cols, acc)} if multiclass else {})},
        notes=notes, warnings=warnings, rules=rules_for(detected))


def _pilot_rows(plan: ReadPlan[RawChunk], cols: Columns, nan: NanPolicy,
                where: str) -> list[Chunk]:
    """The first chunks, at least PILOT_ROWS kept rows when the input has them (the pass that
    follows counts the NaN rows and makes the checks)."""
    stats = NanStats()
    head: list[Chunk] = []
    kept = 0
    for raw in plan.peek():
        chunk = to_chunk(raw, cols, stats)
        if chunk.target.shape[0]:
            head.append(chunk)
            kept += chunk.target.shape[0]
        if kept >= PILOT_ROWS:
            break
    if not head:
        raise stats.error() if nan == "error" and stats.count else stats.all_dropped(where)
    return head


def _labels(cols: Columns, acc: _Pass) -> list[str]:
    k = max(acc.n_classes, acc.class_counts.size)
    if cols.multiclass and cols.labels and len(cols.labels) == k:
        return list(cols.labels)
    return [str(i) for i in range(k)]


def _check_chunk(chunk: Chunk, cols: Columns, where: str, task: RecTask | None) -> None:
    """Domain checks that eval would make, with eval's messages."""
    check_weights(chunk, cols, where)
    target_only = cols.pred == [cols.target]
    t = chunk.target
    if task == "multiclass" and target_only:
        bad = (t < 0) | (t != np.floor(t)) | (t >= MAX_CLASSES)
        if bad.any():
            raise domain_error(chunk, bad, cols.target, where,
                               f"must be a class index in 0..{MAX_CLASSES - 1}", t)
    if task == "binary" and target_only:
        bad = (t != 0.0) & (t != 1.0)
        if bad.any():
            raise domain_error(chunk, bad, cols.target, where, "must be a binary target 0 or 1", t)


def _detect(acc: _Pass, cols: Columns, has_pred: bool, logits: bool,
            task: RecTask | None, where: str) -> tuple[RecTask, str]:
    """The task (the one detector, over every row) and one sentence saying why."""
    how = "a list column" if cols.list_column else f"{len(cols.pred)} prediction columns"
    found = detect(acc.tfacts, target=cols.target, pred=cols.pred[0] if has_pred else None,
                   logits=logits, task=task,
                   classes=acc.n_classes if cols.multiclass else None, how=how, where=where)
    return found.task, found.reason


def _evidence(acc: _Pass, robust: Robust, scale: float, stats: NanStats, passes: int,
              task: RecTask, cols: Columns) -> Evidence:
    m = acc.moments
    basis = {"residual": "residuals e = pred - target",
             "logit_residual": "residuals e = sigmoid(logit) - target",
             "multiclass": "p_true - 1 (probability of the true class minus 1)",
             "target": "the target (no predictions)"}[acc.kind]
    method = ("pilot-centred log histogram, one pass" if passes == 1
              else f"log histogram re-centred on the median, {passes} passes")
    target: dict[str, Any] = {}
    if not acc.multiclass:
        f = acc.tfacts
        k = len(f.distinct) if f.distinct is not None else None
        target = {"distinct": k, "integer": f.integer, "min": f.minimum,
                  "max": f.maximum, "mean": acc.t_moments.mean,
                  "variance": acc.t_moments.variance}
        if task == "counts" and acc.t_moments.mean > 0:
            target["dispersion"] = acc.t_moments.variance / acc.t_moments.mean
    ev = Evidence(
        rows=acc.rows, rows_dropped=stats.count, basis=basis, median=robust.median,
        robust_scale=scale, mad=robust.mad, outlier_fraction=robust.outliers / robust.n,
        outlier_cut=OUTLIER_Z * scale, skewness=m.skewness,
        quartile_skewness=robust.quartile_skewness, excess_kurtosis=m.excess_kurtosis,
        mean=m.mean, std=m.std, min=acc.vmin, max=acc.vmax, robust_scale_method=method,
        robust_scale_rel_error_bound=robust.bound, passes=passes, target=target)
    if task in ("binary", "multiclass"):
        counts = [int(c) for c in acc.class_counts]
        if task == "multiclass":
            k = max(acc.n_classes, len(counts))
            counts += [0] * (k - len(counts))
        labels = _labels(cols, acc) if task == "multiclass" else ["0", "1"]
        n = sum(counts)
        present = [c for c in counts if c > 0]
        minority = min(range(len(counts)), key=lambda i: (counts[i], i))
        ev.class_balance = {
            "counts": dict(zip(labels, counts, strict=True)),
            "fractions": {lab: c / n for lab, c in zip(labels, counts, strict=True)},
            "minority_class": labels[minority],
            "minority_share": counts[minority] / n,
            "imbalance_ratio": (max(present) / min(present)) if present else math.nan,
        }
        if acc.has_pred and acc.cls is not None:
            probs: dict[str, Any] = {
                "mean_abs_error": acc.abs_err.value / acc.rows,
                "brier": acc.brier.value / acc.rows,
                "confidently_wrong_fraction": acc.confident_wrong / acc.rows,
                "accuracy": acc.correct / acc.rows,
            }
            if task == "binary":
                probs["mean_pred"] = acc.mean_p.value / acc.rows
                probs["positive_rate"] = counts[1] / n
            ev.probabilities = probs
    return ev


def _loss_values(acc: _Pass, choices: list[Choice], plan: _Passes | None) -> list[str]:
    """Fill ``value`` of each candidate (sum w l / sum w); returns notes on those that cannot be
    computed. Parameter-free losses and the class-weighted variants come from the first pass;
    huber's delta is known only after it, so huber takes another pass when ``plan`` allows."""
    notes: list[str] = []
    huber_deltas: dict[float, list[Choice]] = {}
    for c in choices:
        if c.name in ("mse", "mae"):
            if acc.reg is None:
                c.value_note = "not computed for logit predictions"
                continue
            i = 0 if c.name == "mse" else 1
            c.value = acc.reg.losses[i].value.value / acc.reg.weight_sum.value
        elif c.name == "poisson":
            if acc.poisson is not None and acc.poisson.rows:
                c.value = acc.poisson.losses[0].value.value / acc.poisson.weight_sum.value
            elif acc.pred_nonpositive:
                c.value_note = (f"poisson needs predictions > 0 (a mean rate); "
                                f"{acc.pred_nonpositive} row(s) are <= 0")
                notes.append(f"poisson: {c.value_note}.")
            else:
                c.value_note = "poisson cannot be used with negative targets"
        elif c.name == "huber":
            delta = c.params.get("delta")
            if not isinstance(delta, float):
                c.value_note = "needs a robust scale > 0"
            elif acc.reg is None:
                c.value_note = "not computed for logit predictions"
            else:
                huber_deltas.setdefault(delta, []).append(c)
        elif c.name in ("bce", "focal") and acc.cls is not None and not acc.multiclass:
            pw = c.params.get("pos_weight")
            if c.name == "bce":
                c.value = acc.cls.value(0, None if not isinstance(pw, float) else [1.0, pw])
            else:
                alpha = c.params.get("alpha")
                cw = None if not isinstance(alpha, float) else [1.0 - alpha, alpha]
                c.value = acc.cls.value(1, cw)
        elif c.name == "cce" and acc.cls is not None and acc.multiclass:
            weights = c.params.get("class_weights")
            c.value = acc.cls.value(0, weights if isinstance(weights, list) else None,
                                    normalise=isinstance(weights, list))
        else:
            c.value_note = "not computable for these predictions"
    if huber_deltas:
        if plan is not None:
            state, _ = plan.scan(EvalState([parse_spec(f"huber:delta={format_number(d)}")
                                            for d in huber_deltas]))
            for st, group in zip(state.losses, huber_deltas.values(), strict=True):
                for c in group:
                    c.value = st.value.value / state.weight_sum.value
        else:
            for group in huber_deltas.values():
                for c in group:
                    c.value_note = "needs a second pass (delta comes from the data)"
            notes.append("The huber value needs a second pass (its delta comes from the data) "
                         "and the input cannot be read again; run on a file to see it.")
    return notes


# --- histogram --------------------------------------------------------------------------------

#: Regression plots: bins one robust scale wide centred on median + k scales, |k| <= this.
PLOT_HALF_WIDTH = 5


def _histogram(acc: _Pass, robust: Robust, scale: float, task: RecTask, has_pred: bool,
               ev: Evidence) -> Histogram | None:
    if task in ("binary", "multiclass") and not has_pred:
        cb = ev.class_balance
        assert cb is not None
        return Histogram("Targets per class", "class", [
            HistogramBin(i, i + 1, int(c), label=lab)
            for i, (lab, c) in enumerate(cb["counts"].items())])
    values, counts = robust.values, robust.counts
    what = "residuals" if has_pred else "target"
    if task in ("binary", "multiclass"):
        lo = -1.0
        hi = 1.0 if task == "binary" else 0.0
        edges = np.linspace(lo, hi, 11 if task == "binary" else 6)
        idx = np.clip(np.searchsorted(edges, values, side="right") - 1, 0, edges.size - 2)
        binned = np.bincount(idx, weights=counts, minlength=edges.size - 1).astype(np.int64)
        title = ("p - y" if task == "binary" else "p_true - 1") + " (distance of the predicted "\
            "probability from the target)"
        return Histogram(title, "value", [HistogramBin(float(edges[i]), float(edges[i + 1]),
                                                       int(binned[i]))
                                          for i in range(edges.size - 1)])
    if scale <= 0.0:
        return Histogram(f"{what.capitalize()}: all values equal {_n(robust.median)}", "value",
                         [HistogramBin(robust.median, robust.median, robust.n)])
    k = PLOT_HALF_WIDTH
    inner = np.arange(-k, k + 1, dtype=np.float64)  # bin centres in robust scales
    edges = np.concatenate(([-math.inf], inner - 0.5, [k + 0.5], [math.inf]))
    m = robust.median
    # the histogram's values are bucket midpoints: clipped into [min, max], so that no count
    # lands in a bin the data does not reach
    z = (np.clip(values, acc.vmin, acc.vmax) - m) / scale
    idx = np.minimum(np.searchsorted(edges, z, side="right") - 1, edges.size - 2)
    binned = np.bincount(idx, weights=counts, minlength=edges.size - 1).astype(np.int64)
    # only the bins from the one holding the minimum to the one holding the maximum: a
    # positive target shows no empty negative bins
    used = np.flatnonzero(binned)
    first, last = int(used[0]), int(used[-1])
    bins: list[HistogramBin] = []
    for i in range(first, last + 1):
        lo_z, hi_z = edges[i], edges[i + 1]
        lo_v = max(acc.vmin, m + lo_z * scale)
        hi_v = min(acc.vmax, m + hi_z * scale)
        outlier = bool(lo_z >= OUTLIER_Z or hi_z <= -OUTLIER_Z)
        label = None
        if not math.isfinite(lo_z):
            label = f"< {format_number(_sig(m + edges[1] * scale))} (min {_n(acc.vmin)})"
        elif not math.isfinite(hi_z):
            label = f">= {format_number(_sig(m + lo_z * scale))} (max {_n(acc.vmax)})"
        elif i == first and lo_v == acc.vmin:
            label = f"[min {_n(lo_v)}, {_n(hi_v)})" if i != last else f"[{_n(lo_v)}, {_n(hi_v)}]"
        elif i == last and hi_v == acc.vmax:
            label = f"[{_n(lo_v)}, max {_n(hi_v)}]"
        bins.append(HistogramBin(float(lo_v), float(hi_v), int(binned[i]), outlier, label))
    return Histogram(f"{what.capitalize()}: bins of one robust scale ({_n(scale)}) around the "
                     f"median {_n(m)}; outliers past {OUTLIER_Z:g} scales", "value", bins,
                     cut=OUTLIER_Z * scale)


# --- no data: the rules -----------------------------------------------------------------------


def _rules_only(task: RecTask, hints: Hints) -> Recommendation:
    facts = _Facts(measured=False, outliers_stated=hints.outliers,
                   heavy_stated=hints.heavy_tails, outlier_fraction=hints.outlier_fraction,
                   minority_share=hints.minority_share, imbalanced_stated=hints.imbalanced)
    if task in ("regression", "counts") and (hints.imbalanced or hints.minority_share is not None):
        raise UsageError(f"--imbalanced and --minority-share describe classes; the task is {task}")
    if task in ("binary", "multiclass", "counts") and (
            hints.outliers or hints.heavy_tails or hints.outlier_fraction is not None):
        raise UsageError(f"--outliers, --heavy-tails and --outlier-fraction describe regression "
                         f"residuals; the task is {task}")
    if task == "multiclass" and hints.minority_share is not None:
        raise UsageError("--minority-share applies to binary tasks; for multiclass pass "
                         "--imbalanced")
    rec, alts, reasons = _RULE_FNS[task](facts)
    _add_commands([rec, *alts], EvalArgs())
    stated = [s for s, on in (
        ("outliers present", hints.outliers), ("heavy tails", hints.heavy_tails),
        (f"outlier fraction {_p(hints.outlier_fraction or 0)}",
         hints.outlier_fraction is not None),
        ("imbalanced classes", hints.imbalanced),
        (f"minority share {_p(hints.minority_share or 0)}", hints.minority_share is not None),
    ) if on]
    why = f"--task {task} was given" + (f"; stated: {', '.join(stated)}." if stated else
                                        "; no data, so no evidence was measured.")
    notes = [f"Task detection (with data): {DETECTION}",
             "With data, every number in these rules is measured: run losscli recommend "
             "FILE --pred COL --target COL."]
    return Recommendation(task=task, task_reason=why, recommended=rec, alternatives=alts,
                          reasons=reasons, mode="rules", notes=notes, rules=rules_for(task))


__all__ = ["RULES", "SCHEMA", "THRESHOLDS", "Choice", "Evidence", "Hints", "Recommendation",
           "Rule", "recommend", "rules_for"]
