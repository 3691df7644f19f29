"""What the passes accumulate: mergeable states (pilot-centred signed histograms, moments, the
candidate losses' sums) and the reduction that folds a block into one."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Literal, TypeVar

import numpy as np

from losscli.detect import TargetFacts
from losscli.engine import (
    TaskValidator,
    check_weights,
    domain_error,
)
from losscli.errors import DuplicateColumnError, InputError, UsageError
from losscli.losses import CATALOG, Batch, sigmoid
from losscli.recommend.thresholds import (
    CONFIDENT_WRONG_P,
    FOCAL_GAMMA,
    MAD_TO_SIGMA,
    MAX_CLASSES,
    OUTLIER_Z,
    RecTask,
)
from losscli.run import Executor, ReadPlan
from losscli.sources import Chunk, Columns, NanStats, PredArg, RawChunk, Source, to_chunk
from losscli.spec import parse_spec
from losscli.state import (
    HIST_ALPHA,
    EvalState,
    ExactSum,
    Moments,
    SignedHistogram,
    align_weight_exp,
    inverted_cdf,
    weight_exponent,
)

# --- streaming accumulators -------------------------------------------------------------------

#: the candidate losses whose values the first pass sums (values only, no gradient statistics)
_REG_SPECS = (parse_spec("mse"), parse_spec("mae"))
_POISSON_SPECS = (parse_spec("poisson"),)


def mid_order_stat(values: np.ndarray, counts: np.ndarray) -> float:
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


def robust_of(hist: SignedHistogram, pilot: float) -> Robust:
    values, counts = hist.signed_buckets()
    c = mid_order_stat(values, counts)
    dev = np.abs(values - c)
    order = np.argsort(dev, kind="stable")
    mad = mid_order_stat(dev[order], counts[order])
    scale = MAD_TO_SIGMA * mad
    if scale > 0.0:
        outliers = int(counts[dev > OUTLIER_Z * scale].sum())
    else:
        outliers = int(counts[dev > 0.0].sum())
    return Robust(pilot + c, mad, c, outliers, int(counts.sum()), values + pilot, counts)


class ClassSums:
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

    def empty(self) -> ClassSums:
        return ClassSums(self.names)

    def merge(self, other: ClassSums) -> None:
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


def softmax(z: np.ndarray) -> np.ndarray:
    m = z.max(axis=0)
    ex = np.exp(z - m)
    ex /= ex.sum(axis=0)
    return ex


Kind = Literal["residual", "target", "logit_residual", "multiclass"]


def values_of(chunk: Chunk, kind: Kind, logits: bool) -> np.ndarray:
    """The analysed values of a chunk: residuals, the target, or p_true - 1 for multiclass."""
    if kind == "target":
        return chunk.target
    if kind == "logit_residual":
        return sigmoid(chunk.pred) - chunk.target
    if kind == "multiclass":
        return true_class_prob(chunk, probs_of(chunk, logits)) - 1.0
    return chunk.pred - chunk.target


def probs_of(chunk: Chunk, logits: bool) -> np.ndarray:
    return softmax(chunk.pred) if logits else chunk.pred


def true_class_prob(chunk: Chunk, probs: np.ndarray | None = None) -> np.ndarray:
    p = chunk.pred if probs is None else probs
    y = chunk.target.astype(np.intp)
    return p[y, np.arange(y.size)]


@dataclass
class PassState:
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
    t_moments: Moments = field(default_factory=lambda: Moments(order=3))
    target_zeros: int = 0
    class_counts: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    # candidate losses (None once a chunk rules them out)
    reg: EvalState | None = None
    poisson: EvalState | None = None
    pred_nonpositive: int = 0
    target_negative: int = 0
    cls: ClassSums | None = None
    # probability evidence (classification with predictions)
    abs_err: ExactSum = field(default_factory=ExactSum)
    brier: ExactSum = field(default_factory=ExactSum)
    mean_p: ExactSum = field(default_factory=ExactSum)
    confident_wrong: int = 0
    correct: int = 0
    row_sum_off: int = 0
    #: the report's figure accumulators (a losscli.figures.FigureState), when asked for
    figures: Any = None

    def __post_init__(self) -> None:
        if not self.full or not self.has_pred:
            return
        if not self.multiclass and not self.logits:
            self.reg = EvalState(_REG_SPECS, gradients=False)
            self.poisson = EvalState(_POISSON_SPECS, gradients=False)
        if self.multiclass:
            self.cls = ClassSums((("cce", {}),))
        else:
            self.cls = ClassSums((("bce", {}), ("focal", {"gamma": FOCAL_GAMMA,
                                                           "alpha": None})))

    def empty(self) -> PassState:
        return PassState(self.kind, self.has_pred, self.multiclass, self.logits, self.pilot,
                     self.full, self.n_classes,
                     figures=None if self.figures is None else self.figures.empty())

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
        batch = Batch(chunk.pred, chunk.target, chunk.weight, self.logits)
        # the residual once: the histogram, the moments and the candidate losses share it
        x = batch.residual() if self.kind == "residual" else values_of(chunk, self.kind,
                                                                      self.logits)
        self.hist.update(x - self.pilot if self.pilot else x)
        if not self.full:
            return
        w = chunk.weight
        self.weight_sum.add(float(n) if w is None else float(np.sum(w)))
        self.moments.update(x)
        self.vmin = float(x.min())
        self.vmax = float(x.max())
        if self.figures is not None:
            self.figures.update(batch)
        if self.multiclass:
            self._update_multiclass(chunk)
        else:
            self._update_single(chunk, x, batch)

    def _update_single(self, chunk: Chunk, x: np.ndarray, batch: Batch) -> None:
        t, p = chunk.target, chunk.pred
        self.tfacts = facts = TargetFacts.of(t, p if self.has_pred else None)
        self.t_moments.update(t)
        self.target_negative = int(np.count_nonzero(t < 0.0))
        self.target_zeros = int(np.count_nonzero(t == 0.0))
        if not self.has_pred:
            if facts.binary:
                self.class_counts = np.bincount(t.astype(np.intp), minlength=2)
            return
        self.pred_nonpositive = int(np.count_nonzero(p <= 0.0))
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
        probs = probs_of(chunk, self.logits)
        py = true_class_prob(chunk, probs)
        self.abs_err.add(float(np.sum(1.0 - py)))
        self.brier.add(float(np.sum(np.einsum("ij,ij->j", probs, probs) - 2.0 * py + 1.0)))
        self.confident_wrong = int(np.count_nonzero(py < CONFIDENT_WRONG_P))
        self.correct = int(np.count_nonzero(np.argmax(probs, axis=0) == y))

    def merge(self, o: PassState) -> None:
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
        self.poisson = merged(self.poisson, o.poisson)
        self.cls = merged(self.cls, o.cls)
        self.pred_nonpositive += o.pred_nonpositive
        self.target_negative += o.target_negative
        self.target_zeros += o.target_zeros
        self.abs_err.merge(o.abs_err)
        self.brier.merge(o.brier)
        self.mean_p.merge(o.mean_p)
        self.confident_wrong += o.confident_wrong
        self.correct += o.correct
        self.row_sum_off += o.row_sum_off
        if self.figures is not None and o.figures is not None:
            self.figures.merge(o.figures)


def merged(a: Any, b: Any) -> Any:
    """Merge two optional states: None (ruled out by some chunk) wins."""
    if a is None or b is None:
        return None
    a.merge(b)
    return a


@dataclass
class PassFold:
    """A pass's state and the rows it dropped for NaN (merged like any state)."""

    state: PassState | EvalState
    nan: NanStats = field(default_factory=NanStats)


@dataclass
class PassReduction:
    """A recommend pass: validates a block (eval's checks and messages) and folds it into a
    fresh state of the template's kind (the evidence pass, a re-centring pass, a loss pass)."""

    template: PassState | EvalState
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
        check_chunk(chunk, self.cols, self.where, self.task)
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


S = TypeVar("S", PassState, EvalState)


@dataclass
class Passes:
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


def rec_columns(src: Source, pred: PredArg, target: str | None, weight: str | None,
             target_only: bool) -> tuple[Columns, bool, str]:
    """Resolve the columns; without --pred and no recognised prediction column (or with
    ``target_only``), the analysis is target-only: the target stands in as the prediction column
    so that chunks() reads, validates and NaN-filters it once."""
    from losscli.sources import (
        TARGET_NAMES,
        check_unique,
        find_column,
        float_column,
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
    return check_unique(src, Columns([tgt], tgt, w, float_target=float_column(src, tgt))), \
        False, "none"


def check_chunk(chunk: Chunk, cols: Columns, where: str, task: RecTask | None) -> None:
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
