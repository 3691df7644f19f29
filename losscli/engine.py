"""The engine: plan -> chunk stream -> mergeable state -> Report (plain data, no formatting)."""

from __future__ import annotations

import math
import time
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from losscli._version import __version__
from losscli.detect import Detection, TargetFacts, Task, check_task, detect, margin_hint
from losscli.errors import InputError, UsageError
from losscli.losses import Batch, LossDef, ParamValue, default_losses
from losscli.options import DEFAULT_CHUNK_ROWS, EXPLODE_TOL, VANISH_TOL
from losscli.result import Result
from losscli.run import Executor, ReadPlan, resolve_executor
from losscli.sources import (
    Chunk,
    Columns,
    NanPolicy,
    NanStats,
    PredArg,
    RawChunk,
    Source,
    to_chunk,
)
from losscli.spec import LossSpec, Term, message_number, parse_spec
from losscli.state import (
    BootSums,
    EvalState,
    GradientOptions,
    GradState,
    LossState,
    RowMoments,
    effective_rows,
    linearised_spread,
    variance_df,
)
from losscli.uncertainty import (
    BOOTSTRAP_MIN_ROWS,
    DEFAULT_BOOTSTRAP_SAMPLES,
    DEFAULT_CONFIDENCE,
    Interval,
    check_ci_options,
    heavy_tail,
    hill_tail_index,
    interval_note,
    mean_interval,
    percentile_interval,
    sqrt_interval,
    studentized_interval,
    tail_order,
)

if TYPE_CHECKING:
    pass

SCHEMA = "losscli.eval/1"
QUANTILES = (("p50", 0.5), ("p90", 0.9), ("p99", 0.99))
#: Rows looked at to detect the task when no --loss is given (whatever the chunk size).
DETECT_ROWS = 1 << 16
#: Relative tolerance on multiclass probability rows summing to one (as scikit-learn warns).
ROW_SUM_RTOL = 1e-6


# --- report -----------------------------------------------------------------------------------


@dataclass
class GradientStats:
    mean: float
    std: float
    abs_mean: float
    abs_max: float
    rms: float
    norm: float
    p50: float
    p90: float
    p99: float
    vanishing_fraction: float
    exploding_fraction: float
    clipped_fraction: float | None


@dataclass
class LossResult:
    name: str
    spec: str
    params: dict[str, ParamValue]
    value: float
    gradient: GradientStats
    clipped_inputs: int | None = None
    terms: list[dict[str, Any]] | None = None
    #: a ``balanced`` class weight: the rule, the numbers used and the class counts
    balanced: dict[str, Any] | None = None
    #: standard error of ``value`` (None with --ci none)
    se: float | None = None
    ci: Interval | None = None
    #: Hill's tail index of the per-row loss (regression losses of the residual, 1,000+ rows)
    tail_index: float | None = None
    #: the gradient w.r.t. the predicted variance (gaussian_nll, --var)
    var_gradient: GradientStats | None = None
    #: multilabel: each label's loss, by label
    per_label: dict[str, float] | None = None


@dataclass
class SourceInfo:
    path: str
    format: str
    rows: int
    rows_used: int
    rows_dropped: int


@dataclass(repr=False)
class Report(Result):
    """What an evaluation found: plain data that every renderer and gate reads."""

    command: ClassVar[str] = "eval"

    source: SourceInfo
    task: Task
    input: str
    columns: dict[str, Any]
    losses: list[LossResult]
    settings: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    #: footnotes: default losses left out for this data (not warnings: nobody asked for them)
    notes: list[str] = field(default_factory=list)
    elapsed_seconds: float = 0.0
    version: str = __version__
    schema: str = SCHEMA
    #: gates.Gate verdicts, set by the CLI (or a caller) after evaluation
    gates: list[Any] = field(default_factory=list)
    #: resolved settings and where each came from, shown with --show-config
    config: dict[str, Any] | None = None
    #: what the report's figures show (a losscli.figures.FigureData), when asked for
    figures: Any = None
    #: slices.SliceGroup per --by (None: no --by)
    slices: list[Any] | None = None

    @property
    def passed(self) -> bool:
        return all(g.passed for g in self.gates)

    def check(self, max: Mapping[str, float] | Sequence[str] | None = None,
              baseline: str | Path | Report | Mapping[str, float | None] | None = None,
              tolerance: str | float | None = None) -> list[Any]:
        """Apply eval's gates (``--max``, ``--baseline``, ``--tolerance``): ``max`` maps a
        loss spec to its limit, ``baseline`` is an eval JSON file, a Report or a mapping of
        spec to value. Sets and returns :attr:`gates`; :attr:`passed` is the verdict."""
        from losscli.gates import Gates

        self.gates = Gates.parse(max, baseline, tolerance).check(self)
        return self.gates

    def loss(self, spec: str) -> LossResult | None:
        """The result for a spec text (canonicalised), or None when it was not evaluated."""
        key = parse_spec(spec).spec
        return next((r for r in self.losses if r.spec == key), None)

    def to_dict(self) -> dict[str, Any]:
        """The versioned JSON document (``losscli.eval/1``); NaN becomes None."""
        d = {
            "schema": self.schema,
            "version": self.version,
            "source": asdict(self.source),
            "task": self.task,
            "input": self.input,
            "columns": self.columns,
            "settings": self.settings,
            "losses": [_loss_dict(r) for r in self.losses],
            "gates": [g.to_dict() for g in self.gates],
            "passed": self.passed,
            "warnings": self.warnings,
            "notes": self.notes,
            "elapsed_seconds": round(self.elapsed_seconds, 6),
        }
        if self.config is not None:
            d["config"] = self.config
        if self.figures is not None and self.figures.calibration is not None:
            d["calibration"] = self.figures.calibration
        if self.slices is not None:
            d["slicing"] = [g.to_dict() for g in self.slices]
            d["slices"] = [{"grouping": g.text, "other": s.other, **s.to_dict()}
                           for g in self.slices for s in g.slices]
        return json_safe(d)


def _loss_dict(r: LossResult) -> dict[str, Any]:
    d: dict[str, Any] = {"name": r.name, "spec": r.spec, "params": r.params, "value": r.value,
                         "gradient": asdict(r.gradient)}
    if r.clipped_inputs is not None:
        d["clipped_inputs"] = r.clipped_inputs
    if r.terms is not None:
        d["terms"] = r.terms
    if r.balanced is not None:
        d["balanced"] = r.balanced
    if r.se is not None:
        d["se"] = r.se
    if r.ci is not None:
        d["ci"] = r.ci.to_dict()
    if r.tail_index is not None:
        d["tail_index"] = r.tail_index
    if r.var_gradient is not None:
        d["var_gradient"] = asdict(r.var_gradient)
    if r.per_label is not None:
        d["per_label"] = r.per_label
    return d


def json_safe(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [json_safe(v) for v in obj]
    return obj


def _resolve_balanced(spec: LossSpec, st: LossState, where: str) -> tuple[np.ndarray,
                                                                          dict[str, Any]]:
    """The class multipliers of a ``balanced`` loss from the counts of the pass, and what the
    report states about them."""
    term = spec.terms[0]
    cw = term.loss.class_weighting
    assert cw is not None and st.classes is not None
    counts = np.asarray(st.classes.counts, dtype=np.int64)
    value = cw.balanced(counts)
    if isinstance(value, float) and not math.isfinite(value):
        raise InputError(f"{where}: {spec.spec} needs rows of both classes (n_neg / n_pos), "
                         "but the target has no positive row")
    used = list(value) if isinstance(value, tuple) else value
    text = (f"{cw.param} = {cw.balanced_rule} = "
            + (", ".join(f"{x:.6g}" for x in value) if isinstance(value, tuple)
               else f"{value:.6g}")
            + f" (class counts {', '.join(f'{int(c):,}' for c in counts)})")
    info = {"param": cw.param, "rule": cw.balanced_rule, "value": used,
            "class_counts": [int(c) for c in counts], "text": f"{spec.spec}: {text}"}
    return cw.multipliers(value, len(counts)), info


@dataclass(frozen=True)
class CiOptions:
    """How intervals are computed: the method, the confidence level, bootstrap settings."""

    method: str = "johnson"
    level: float = DEFAULT_CONFIDENCE
    samples: int = DEFAULT_BOOTSTRAP_SAMPLES
    seed: int = 0

    @property
    def enabled(self) -> bool:
        return self.method != "none"


def _spread_parts(spec: LossSpec, st: LossState,
                  a: np.ndarray | None) -> list[tuple[RowMoments, float, float]] | None:
    """The per-row moments behind a loss's interval as linearised_spread's parts: one, or one
    per class for ``balanced`` class weights a (a multiplier of the weight when the loss is
    reduced by sum(w a), else of the loss)."""
    if st.classes is not None and st.classes.spread and a is not None:
        cw = spec.terms[0].loss.class_weighting
        normalise = cw is not None and cw.normalise
        return [(m, 1.0, float(ac)) if normalise else (m, float(ac), 1.0)
                for m, ac in zip(st.classes.spreads, a, strict=False)]
    if st.spread is None:
        return None
    return [(st.spread, 1.0, 1.0)]


def _uncertainty(parts: list[tuple[RowMoments, float, float]] | None, rows: int,
                 weight_total: float, weight_exp: int, mean: float, sqrt: bool,
                 ci: CiOptions, boot: BootSums | None = None) -> tuple[float | None,
                                                                     Interval | None]:
    """The standard error and interval of a loss whose weighted per-row mean is ``mean``; for
    rmse (``sqrt``) the SE by the delta method, SE(mse) / (2 rmse), and the mse interval's
    ends mapped through sqrt. The bootstrap interval is the percentile one of the replicates
    (a loss without replicates, ``balanced`` class weights, falls back to johnson). With
    weights the degrees of freedom are those of the weighted variance estimate (Satterthwaite's,
    :func:`variance_df`); a loss whose every row is >= 0 has an interval >= 0."""
    if parts is None:
        return None, None
    s2, m3, k = linearised_spread(parts, mean, weight_total, weight_exp)
    se = math.ldexp(math.sqrt(s2 / rows), k) if rows > 1 else math.nan
    weighted = any(m.weighted for m, _, _ in parts) or any(a != 1.0 for _, _, a in parts)
    n_eff = effective_rows(parts, weight_total, weight_exp)
    df = variance_df(parts, n_eff) if weighted else None
    floor = 0.0 if all(m.low >= 0.0 and c >= 0.0 for m, c, _ in parts if m.n) else -math.inf
    note = interval_note(rows, n_eff if weighted else None, s2)
    resampled = ci.method in ("bootstrap", "percentile")
    if resampled and boot is not None and boot.num is not None:
        low = high = math.nan
        mc: float | None = None
        if rows < BOOTSTRAP_MIN_ROWS:
            note = (f"{rows} row(s): the bootstrap needs {BOOTSTRAP_MIN_ROWS} or more "
                    "(--ci johnson gives an interval)")
        elif ci.method == "percentile":
            reps = boot.replicates()
            low, high = percentile_interval(np.sqrt(np.maximum(reps, 0.0)) if sqrt else reps,
                                            ci.level)
        else:
            low, high, mc = studentized_interval(mean, se, boot.replicates(),
                                                 boot.standard_errors(rows), ci.level)
            low = max(low, floor) if low == low else low
            if sqrt:
                mc = _sqrt_se(mc, mean)
                low, high = sqrt_interval(low, high)
        if sqrt:
            se = _sqrt_se(se, mean)
        return se, Interval(low, high, ci.level, ci.method, ci.samples, ci.seed, note=note,
                            mc_error=mc)
    method = "johnson" if resampled else ci.method
    low, high = mean_interval(math.ldexp(mean, -k), s2, m3, rows, ci.level, method,
                              df=df)
    low, high = math.ldexp(low, k), math.ldexp(high, k)
    low = max(low, floor) if low == low else low
    if sqrt:
        se = _sqrt_se(se, mean)
        low, high = sqrt_interval(low, high)
    return se, Interval(low, high, ci.level, method,
                        effective_n=n_eff if weighted else None, df=df, note=note)


def _sqrt_se(se: float, mean: float) -> float:
    """SE(sqrt(mean)) = SE(mean) / (2 sqrt(mean)) by the delta method; 0 when the mean's is
    (every row's loss equal: rmse = 0 has SE 0, not 0 / 0)."""
    if se == 0.0:
        return 0.0
    value = math.sqrt(mean)
    return se / (2.0 * value) if value > 0 else math.nan


def interval_notes(results: Sequence[LossResult]) -> list[str]:
    """One note per reason an interval is missing or degenerate, naming its losses."""
    why: dict[str, list[str]] = {}
    for r in results:
        if r.ci is not None and r.ci.note is not None:
            why.setdefault(r.ci.note, []).append(r.spec)
    return [f"{', '.join(specs)}: {note}" for note, specs in why.items()]


def _finish_loss(spec: LossSpec, st: LossState, state: EvalState, logits: bool,
                 where: str = "", ci: CiOptions = CiOptions()) -> LossResult:
    total_w = state.weight_sum.value
    opts = state.opts
    balanced = None
    value_sum, total = st.value, state.weight_sum
    a = None
    if st.classes is not None:
        a, balanced = _resolve_balanced(spec, st, where)
        value_sum, class_w = st.classes.value_sums(a)
        cw = spec.terms[0].loss.class_weighting
        if cw is not None and cw.normalise:
            total = class_w
        g, qs = st.classes.gradient(a, opts, [q for _, q in QUANTILES])
        class_q: dict[str, float] | None = {k: v for (k, _), v in zip(QUANTILES, qs,
                                                                        strict=True)}
    else:
        if st.denom is not None:
            total = st.denom
        g, class_q = st.grad, None
    total_w = total.value
    if total_w <= 0.0:
        raise InputError(f"{where}: the class-weighted total weight of {spec.spec} is zero; "
                         "its weighted mean is undefined")
    mean = value_sum.ratio(total)
    single = spec.single
    value = math.sqrt(mean) if single is not None and single.reduce == "sqrt" else mean
    se, interval = _uncertainty(_spread_parts(spec, st, a), state.rows, total_w,
                                state.weight_exp, mean,
                                single is not None and single.reduce == "sqrt", ci, st.boot)
    scale = 1.0
    if single is not None and single.reduce == "sqrt":
        scale = 1.0 / value if value > 0 else 0.0
    n = g.moments.n
    hist = g.hist
    if class_q is not None:
        hist_q = class_q
    elif hist is None:
        assert single is not None and single.abs_grad_of_abs_residual is not None
        assert state.residual_hist is not None
        f, params = single.abs_grad_of_abs_residual, spec.terms[0].params
        hist_q = {k: f(state.residual_hist.quantile(q), params) for k, q in QUANTILES}
    else:
        hist_q = {k: hist.quantile(q) for k, q in QUANTILES}
    if scale == 1.0:
        vanishing, exploding, clipped = _counted_fractions(g, opts)
    else:
        # Thresholds on g = scale * base are only known after the pass: read them off the
        # histogram of |base| (within its bucket accuracy).
        h = hist if hist is not None else state.residual_hist
        assert h is not None
        # counts, not 1 - fraction: (n - k) / n is the fraction itself, 1 - k / n off by an ulp
        at_most = (lambda t: h.count_at_most(t / scale)) if scale > 0 else (lambda t: n)
        vanishing = at_most(opts.vanish_tol) / n
        exploding = (n - at_most(opts.explode_tol * (1 - 1e-12))) / n
        clipped = None if opts.grad_clip is None else (n - at_most(opts.grad_clip)) / n
    stats = _gradient_stats(g, total_w, scale, hist_q, (vanishing, exploding, clipped))
    var_stats = None
    if st.var_grad is not None and st.var_grad.hist is not None and st.var_grad.moments.n:
        vh = st.var_grad.hist
        var_stats = _gradient_stats(st.var_grad, total_w, 1.0,
                                    {k: vh.quantile(q) for k, q in QUANTILES},
                                    _counted_fractions(st.var_grad, opts))
    uses_p = any(t.loss.uses_probabilities for t in spec.terms) and not logits
    terms = None
    if spec.is_combination:
        terms = [{"coef": t.coef, "name": t.loss.name, "spec": t.spec, "params": dict(t.params)}
                 for t in spec.terms]
    return LossResult(spec.name, spec.spec, spec.params, value, stats,
                      st.clipped_inputs if uses_p else None, terms, balanced, se, interval,
                      _tail_index(spec, state) if ci.enabled else None,
                      var_gradient=var_stats)


def _tail_index(spec: LossSpec, state: EvalState) -> float | None:
    """The tail index of a loss of the residual: Hill's on the |e| histogram (the larger of
    its estimates from the sqrt(n) and sqrt(n) / 2 largest) over the power p with which the
    loss grows in |e| (|g| ~ |e|^(p - 1): 2 for mse, 1 for mae or huber)."""
    single = spec.single
    h = state.residual_hist
    if single is None or single.abs_grad_of_abs_residual is None or h is None:
        return None
    buckets = h.buckets()
    alpha, k = hill_tail_index(*buckets)
    if k == 0:
        return None
    # the larger of the estimates from the k and k / 2 largest: a cluster of outliers as
    # many as k (a contamination, not a tail) makes the first alone look heavy-tailed
    alpha = max(alpha, hill_tail_index(*buckets, max(5, k // 2))[0])
    return alpha / spec.residual_power(h.quantile(1.0))


def tail_warnings(results: Sequence[LossResult], rows: int) -> list[str]:
    """A warning naming the losses whose per-row values likely have infinite variance."""
    heavy = [r for r in results if r.tail_index is not None and heavy_tail(
        r.tail_index, tail_order(rows))]
    if not heavy:
        return []
    names = ", ".join(f"{r.spec} (tail index {r.tail_index:.2g})" for r in heavy)
    return [f"{names}: the per-row loss looks heavy-tailed (tail index below 2: its variance "
            "is likely infinite), so no variance-based interval of it is reliable; a robust "
            "loss (mae, huber) summarises these rows better"]


def _counted_fractions(g: GradState, opts: GradientOptions) -> tuple[float, float, float | None]:
    """The vanishing, exploding and clipped fractions of a gradient counted row by row."""
    n = g.moments.n
    return (g.vanishing / n, g.exploding / n,
            None if opts.grad_clip is None else g.clipped / n)


def _gradient_stats(g: GradState, total_w: float, scale: float, hist_q: dict[str, float],
                    fractions: tuple[float, float, float | None]) -> GradientStats:
    """The statistics of scale x g from its accumulated state, |g| quantiles and fractions."""
    # A bucket's midpoint can lie past the extreme value in it: the exact min and max bound
    # every quantile (every |g| of the quantile loss is 0.5, its bucket's midpoint 0.502).
    hist_q = {k: min(max(v, g.abs_min), g.abs_max) for k, v in hist_q.items()}
    n = g.moments.n
    mean_g, var_g = g.moments.mean, g.moments.variance
    return GradientStats(
        mean=scale * mean_g,
        std=scale * math.sqrt(max(var_g, 0.0)),
        abs_mean=scale * g.abs_sum.value / n,
        abs_max=scale * g.abs_max,
        rms=scale * math.sqrt(max(var_g, 0.0) + mean_g * mean_g),
        norm=scale * math.sqrt(g.sq_weighted.value) / total_w,
        vanishing_fraction=fractions[0],
        exploding_fraction=fractions[1],
        clipped_fraction=fractions[2],
        **{k: scale * v for k, v in hist_q.items()},
    )


# --- planning and the loop --------------------------------------------------------------------


def _task_of(specs: Sequence[LossSpec]) -> Task:
    tasks = {s.task for s in specs}
    if "multiclass" in tasks:
        if len(tasks) > 1:
            raise UsageError("multiclass losses (cce) cannot be mixed with other tasks' losses")
        return "multiclass"
    return "binary" if "binary" in tasks else "regression"


#: eval's --task for several binary targets, each scored against its own prediction column
MULTILABEL: Task = "multilabel"


def _label_names(cols: Columns) -> list[str]:
    """The labels of a multilabel input: the prediction columns' suffixes, or their names."""
    return cols.labels or list(cols.pred)


def check_var_losses(specs: Sequence[LossSpec], var: str | None) -> None:
    """A loss of a predicted variance needs --var, and --var needs such a loss."""
    named = [t.loss.name for s in specs for t in s.terms if t.loss.uses_var]
    if named and var is None:
        raise UsageError(f"{named[0]} needs the predicted variance: pass --var COL")
    if var is not None and not named:
        raise UsageError("--var names the predicted variance of gaussian_nll: pass --loss "
                         "gaussian_nll")


def reads_probabilities(specs: Sequence[LossSpec]) -> bool:
    """Some loss reads the predictions as probabilities: not every one reads decision values."""
    return not all(t.loss.decision_values for s in specs for t in s.terms)


def check_prediction_shape(specs: Sequence[LossSpec], loss_task: str, cols: Columns) -> None:
    """Multiclass losses need one prediction column per class, the others a single column
    (eval and compare say it in the same words)."""
    if cols.multiclass and loss_task != "multiclass":
        are = "is a loss" if len(specs) == 1 else "are losses"
        raise UsageError(f"{len(cols.pred)} prediction columns were selected, but "
                         f"{', '.join(s.spec for s in specs)} {are} of a single column: pass "
                         "--pred one column")
    if loss_task == "multiclass" and not cols.multiclass:
        raise UsageError("cce needs one prediction column per class: pass --pred as a comma "
                         "list, a glob such as 'prob_*', or a list column")


def check_class_weights(specs: Sequence[LossSpec], n_classes: int) -> None:
    """A list of class weights has one weight per class (prediction column)."""
    for spec in specs:
        for t in spec.terms:
            cw = t.loss.class_weighting
            value = None if cw is None else t.params.get(cw.param)
            if isinstance(value, tuple) and len(value) != n_classes:
                raise UsageError(f"{t.spec}: {len(value)} class weight(s) given, but the "
                                 f"predictions have {n_classes} classes (one weight per "
                                 "prediction column, in column order)")


def domain_error(chunk: Chunk, mask: np.ndarray, column: str, where: str, what: str,
             values: np.ndarray, hint: str = "") -> InputError:
    i = int(np.argmax(mask))
    v = float(values[i])
    # 6 digits, more when they would make the value read as a bound or an integer it is not
    shown = message_number(v, 0.0, 1.0, float(round(v))) if math.isfinite(v) else str(v)
    return InputError(f"{where}: column '{column}' row {chunk.row_number(i)} {what}, got "
                      f"{shown}{hint}")


def check_weights(chunk: Chunk, cols: Columns, where: str) -> None:
    """Sample weights must be non-negative (their finiteness is the NaN policy's)."""
    if chunk.weight is not None:
        neg = chunk.weight < 0
        if neg.any():
            raise domain_error(chunk, neg, cols.weight or "", where,
                               "must be a non-negative sample weight", chunk.weight)


@dataclass
class TaskValidator:
    """Task-level domain checks of each chunk."""

    task: str
    cols: Columns
    logits: bool
    where: str
    detected: bool = False  # the task was inferred from the data, not from --loss
    #: a loss reads the predictions as probabilities (bce, focal, cce), so without --logits
    #: they must lie in [0, 1]; hinge losses read decision values of any size
    probabilities: bool = True

    def _check_labels(self, chunk: Chunk) -> None:
        """Multilabel targets are 0 or 1."""
        y = chunk.soft
        assert y is not None
        bad = (y != 0.0) & (y != 1.0)
        if bad.any():
            rows = np.asarray(bad.any(axis=0))
            k = int(np.argmax(bad[:, int(np.argmax(rows))]))
            raise domain_error(chunk, rows, self.cols.soft[k], self.where,
                               "must be a multilabel target 0 or 1", y[k])

    def _check_soft(self, chunk: Chunk) -> None:
        """Soft targets are probabilities in [0, 1] whose row sums to one (ROW_SUM_RTOL)."""
        q = chunk.soft
        assert q is not None
        out = (q < 0.0) | (q > 1.0)
        if out.any():
            rows = np.asarray(out.any(axis=0))
            k = int(np.argmax(out[:, int(np.argmax(rows))]))
            raise domain_error(chunk, rows, self.cols.soft[k], self.where,
                               "is a soft target outside [0, 1]", q[k])
        sums = q.sum(axis=0)
        off = np.abs(sums - 1.0) > ROW_SUM_RTOL
        if off.any():
            raise domain_error(chunk, off, ",".join(self.cols.soft), self.where,
                               "are soft targets that must sum to 1 in each row (tolerance "
                               f"{ROW_SUM_RTOL:g}), sum", sums)

    def check(self, chunk: Chunk) -> int:
        """Raise InputError for rows outside the task's domain; return how many probability
        rows do not sum to one (a warning, not an error)."""
        t, p = chunk.target, chunk.pred
        tname = self.cols.target
        pname = self.cols.pred[0] if len(self.cols.pred) == 1 else ",".join(self.cols.pred)
        if self.task == "counts":
            bad = (t < 0.0) | (t != np.floor(t))
            if bad.any():
                hint = (f"; the task was detected as counts from the first {DETECT_ROWS:,} rows, "
                        "pass --task regression") if self.detected else ""
                raise domain_error(chunk, bad, tname, self.where,
                                   "must be a non-negative integer count", t, hint)
        if self.task == "binary":
            bad = (t != 0.0) & (t != 1.0)
            if bad.any():
                hint = (f"; the task was detected as binary from the first {DETECT_ROWS:,} rows "
                        "(targets 0 and 1): pass --task regression to score the targets as "
                        "values, or one prediction column per class for classes"
                        ) if self.detected else ""
                raise domain_error(chunk, bad, tname, self.where,
                                   "must be a binary target 0 or 1", t, hint)
        if chunk.soft is not None and self.task == "multilabel":
            self._check_labels(chunk)
        elif chunk.soft is not None:
            self._check_soft(chunk)
        elif self.task == "multiclass":
            c = p.shape[0]
            bad = (t < 0) | (t >= c) | (t != np.floor(t))
            if bad.any():
                raise domain_error(chunk, bad, tname, self.where,
                                   f"must be a class index in 0..{c - 1} or a class label", t)
        if self.task in ("binary", "multiclass", "multilabel") and not self.logits and \
                self.probabilities:
            bad = (p < 0.0) | (p > 1.0)
            if bad.any():
                what = ("is a probability outside [0, 1] (pass --logits if the predictions are "
                        "logits)")
                if p.ndim == 2:
                    rows_bad = np.asarray(bad.any(axis=0))
                    k = int(np.argmax(bad[:, int(np.argmax(rows_bad))]))
                    column = pname if self.cols.list_column else self.cols.pred[k]
                    raise domain_error(chunk, rows_bad, column, self.where,
                                       what, p[k], margin_hint(p[k][rows_bad], "multi_hinge"))
                raise domain_error(chunk, bad, pname, self.where, what, p,
                                   margin_hint(p[bad], "hinge"))
            if p.ndim == 2 and self.task == "multiclass":
                sums = p.sum(axis=0)
                return int(np.count_nonzero(np.abs(sums - 1.0) > ROW_SUM_RTOL))
        return 0


def check_multilabel(specs: Sequence[LossSpec], cols: Columns) -> list[LossSpec]:
    """--task multilabel: one 0/1 target column per prediction column, binary losses (each
    averaged over the labels), no balanced class weights; the losses, bce and focal without
    --loss."""
    if not cols.soft:
        raise UsageError("--task multilabel needs one target column per label: pass --pred "
                         "and --target as globs such as 'p_*' and 'y_*' (or comma lists)")
    for s in specs:
        for t in s.terms:
            if t.loss.task != "binary":
                raise UsageError(f"--task multilabel scores binary losses per label; "
                                 f"{t.loss.name} is a {t.loss.task} loss")
            if t.balanced:
                raise UsageError(f"{t.spec}: balanced class weights are not measured per "
                                 "label; give the weight as a number")
    return list(specs) or [parse_spec(d.name) for d in default_losses("binary")]


def check_soft_targets(specs: Sequence[LossSpec], cols: Columns) -> None:
    """Soft targets go with the losses that take them, without per-class weights (torch
    reduces those by the batch size for soft targets, by sum c_y for labels)."""
    if not cols.soft:
        return
    if not specs:
        raise UsageError("soft targets (several --target columns) need --loss cce or kl_div")
    for s in specs:
        for t in s.terms:
            if not t.loss.soft_targets:
                raise UsageError(f"{t.loss.name} needs class labels; soft targets (several "
                                 "--target columns) go with cce and kl_div")
            cw = t.loss.class_weighting
            if cw is not None and t.params.get(cw.param) is not None:
                raise UsageError(f"{t.spec}: class weights do not go with soft targets")


def _check_losses(specs: Sequence[LossSpec], optional: Sequence[bool], skip: set[int],
                  batch: Batch, chunk: Chunk, cols: Columns, where: str) -> dict[int, str]:
    """Run each loss's domain check: raise for a loss that was asked for, and return
    index -> warning for the default losses that must be dropped."""
    drop: dict[int, str] = {}
    for i, spec in enumerate(specs):
        if i in skip:
            continue
        for term in spec.terms:
            if term.loss.check is None:
                continue
            prob = term.loss.check(batch, term.params)
            if prob is None:
                continue
            column = {"target": cols.target, "var": cols.var}.get(prob.column) or cols.pred[0]
            row = chunk.row_number(prob.first)
            if optional[i]:
                drop[i] = (f"{term.loss.name} skipped: {prob.message} (column '{column}' "
                           f"row {row})")
                break
            raise InputError(f"{where}: {prob.message}: column '{column}' row {row}")
    return drop


@dataclass
class EvalFold:
    """The state of an evaluation and its side facts: the rows dropped for NaN, the default
    losses the data ruled out (by index, the earliest row's message) and the probability rows
    that do not sum to one. Merges like any state."""

    state: EvalState
    nan: NanStats = field(default_factory=NanStats)
    drops: dict[int, str] = field(default_factory=dict)
    row_sum_off: int = 0
    #: the slices' states, one per --by (None: no rows yet, or no --by)
    slices: list[Any] | None = None


def stream_of(path: str, root: str) -> int:
    """A file's bootstrap stream: a hash of its path below the input's root."""
    below = path[len(root):] if path.startswith(root) else path
    return zlib.crc32(below.lstrip("/").encode())


@dataclass
class EvalReduction:
    """eval's reduction: converts and validates a block and folds it into a fresh state."""

    template: EvalState
    validator: TaskValidator
    optional: list[bool]
    logits: bool
    #: the directory (or prefix) of an input of several files: each file is a bootstrap
    #: stream of its own, keyed by its path below it, so that a copy elsewhere (another
    #: directory, object storage) draws the same replicates; None for a single file
    root: str | None = None
    #: the slices' fold (slices.Slicer), with --by
    slicer: Any = None

    def empty(self) -> EvalFold:
        return EvalFold(self.template.empty())

    def fold(self, acc: EvalFold, raw: RawChunk) -> EvalFold:
        cols, where = self.validator.cols, self.validator.where
        chunk = to_chunk(raw, cols, acc.nan)
        if chunk.target.shape[0] == 0:
            return acc
        acc.row_sum_off += self.validator.check(chunk)
        check_weights(chunk, cols, where)
        multilabel = self.validator.task == "multilabel"
        batch = Batch(chunk.pred, chunk.target, chunk.weight, self.logits, var=chunk.var,
                      soft=None if multilabel else chunk.soft,
                      labels=chunk.soft if multilabel else None)
        acc.drops.update(_check_losses(self.template.specs, self.optional, set(), batch, chunk,
                                       cols, where))
        rows = None
        if acc.state.boot_samples:
            rows = chunk.rows if chunk.rows is not None else np.arange(
                chunk.first_row, chunk.first_row + chunk.target.shape[0])
        acc.state.update(batch, acc.drops.keys(), rows,
                         0 if self.root is None else stream_of(raw.where, self.root))
        if self.slicer is not None:
            from losscli.slices.fold import sorted_measures

            acc.slices = self.slicer.fold(
                raw, chunk, sorted_measures(self.template.specs, batch, acc.drops.keys()),
                residual=batch.abs_residual() if -1 in self.slicer.tail_inputs else None)
        return acc

    def merge(self, earlier: EvalFold, later: EvalFold) -> EvalFold:
        earlier.state.merge(later.state)
        earlier.nan.merge(later.nan)
        for i, message in later.drops.items():
            earlier.drops.setdefault(i, message)
        earlier.row_sum_off += later.row_sum_off
        if later.slices is not None:
            earlier.slices = (later.slices if earlier.slices is None
                              else self.slicer.merge(earlier.slices, later.slices))
        return earlier


def evaluate(
    source: str | Path | Source | Mapping[str, Any] | Any,
    pred: PredArg = None,
    target: str | None = None,
    weight: str | None = None,
    losses: Sequence[str | LossSpec] | None = None,
    *,
    logits: bool = False,
    nan: NanPolicy = "error",
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    vanish_tol: float = VANISH_TOL,
    explode_tol: float = EXPLODE_TOL,
    grad_clip: float | None = None,
    threads: int | bool | None = None,
    progress: Callable[[int], None] | None = None,
    task: str | None = None,
    executor: str | Executor | None = None,
    ci: str = "johnson",
    confidence: float = DEFAULT_CONFIDENCE,
    bootstrap_samples: int = DEFAULT_BOOTSTRAP_SAMPLES,
    seed: int = 0,
    figures: bool = False,
    var: str | None = None,
    slices: Any = None,
    positive: str | None = None,
) -> Report:
    """Evaluate losses over a file, directory, ``"-"`` (CSV on stdin) or in-memory columns.

    Returns the same :class:`Report` that ``losscli eval`` prints. Raises
    :class:`~losscli.errors.LossCliError` subclasses for bad input. ``threads`` is the number of
    compute threads beside the reading one (None: one per remaining core, 0: none); results are
    identical for any number, and for any ``executor`` ('serial', 'threads' (the default),
    'processes[:N]' or an :class:`~losscli.run.Executor`). ``task`` overrides the detected
    task (regression, counts, binary, multiclass; see :mod:`losscli.detect`). ``ci``
    (johnson, t, bootstrap or none) and ``confidence`` choose each loss's standard error and
    interval. ``figures`` also gathers the report's figures (``Report.figures``; the
    calibration bins go into the JSON). ``var`` names the predicted-variance column of
    gaussian_nll. ``positive`` names the label of a binary target of two
    labels that is 1 (scikit-learn's ``pos_label``). ``slices`` (a
    :class:`losscli.slices.SliceOptions`, or a list of ``--by`` texts) adds the losses per slice
    of the rows to the report, from the same pass.
    """
    from losscli._alloc import keep_temporaries_in_heap
    from losscli.sources import open_input, resolve_columns, set_positive

    started = time.perf_counter()
    keep_temporaries_in_heap()
    if chunk_rows < 1:
        raise UsageError(f"--chunk-rows must be a positive number of rows, got {chunk_rows}")
    check_ci_options(ci, confidence, bootstrap_samples, seed=seed)
    ci_opts = CiOptions(ci, confidence, bootstrap_samples, seed)
    if nan not in ("error", "drop"):
        raise UsageError(f"--nan must be 'error' or 'drop', got '{nan}'")
    for label, v in (("--vanish-tol", vanish_tol), ("--explode-tol", explode_tol),
                     ("--grad-clip", grad_clip)):
        if v is not None and not (v >= 0 and math.isfinite(v)):
            raise UsageError(f"{label} must be a finite number >= 0, got {v}")
    multilabel = task == "multilabel"
    asked_task = None if multilabel else check_task(task, also=(MULTILABEL,))
    specs = [s if isinstance(s, LossSpec) else parse_spec(s) for s in (losses or [])]
    seen: set[str] = set()
    for s in specs:
        if s.spec in seen:
            raise UsageError(f"loss '{s.spec}' is asked for twice")
        seen.add(s.spec)

    src = open_input(source)
    check_var_losses(specs, var)
    cols = set_positive(resolve_columns(src, pred, target, weight, var), positive)
    where = src.where
    slice_opts, groupings = _slice_groupings(slices, src, cols)

    if multilabel:
        specs = check_multilabel(specs, cols)
    elif specs:
        check_soft_targets(specs, cols)
        loss_task = _task_of(specs)
        if asked_task is not None and loss_task != (
                "regression" if asked_task == "counts" else asked_task):
            raise UsageError(f"--task {asked_task} does not fit the losses asked for "
                             f"({', '.join(s.spec for s in specs)}: {loss_task})")
        check_prediction_shape(specs, loss_task, cols)
        if logits and loss_task == "regression":
            raise UsageError("--logits applies to bce, focal and cce (logit predictions)")
    elif cols.soft:
        check_soft_targets(specs, cols)
    elif asked_task == "multiclass" and not cols.multiclass:
        raise UsageError("--task multiclass needs one prediction column per class: pass --pred "
                         "as a comma list, a glob such as 'prob_*', or a list column")
    elif cols.multiclass and asked_task not in (None, "multiclass"):
        raise UsageError(f"{len(cols.pred)} prediction columns were selected, but --task "
                         f"{asked_task} needs a single column")
    runner = resolve_executor(executor, threads)
    plan: ReadPlan[RawChunk] = ReadPlan(src, cols, chunk_rows)
    head, head_nan = head_rows(plan, cols, nan, where)
    optional = [False] * len(specs)
    specs_given = bool(specs)
    facts = _head_facts(head, cols)
    if multilabel:
        task = MULTILABEL
    elif specs:
        # the losses decide; the report says counts when the first rows are counts
        task = ("counts" if loss_task == "regression" and (asked_task == "counts" or (
            asked_task is None and facts.counts and not cols.float_target)) else loss_task)
    else:
        try:
            found = _detect(facts, head, cols, logits, asked_task, where)
        except UsageError:
            if not (nan == "error" and head_nan):
                raise
            # the pass ends in the NaN error, with its count over the whole input
            found = Detection("regression", "")
        task = found.task
        if logits and task not in ("binary", "multiclass"):
            raise UsageError("--logits applies to binary and multiclass predictions, but "
                             + found.reason[0].lower() + found.reason[1:])
        specs = [parse_spec(d.name) for d in default_losses(task)]
        optional = [True] * len(specs)

    if task == "multiclass":
        check_class_weights(specs, int(head[0].pred.shape[0]))
    template = EvalState(specs, GradientOptions(vanish_tol, explode_tol, grad_clip),
                      spread=ci_opts.enabled, skew=ci_opts.method != "t",
                      boot_samples=(ci_opts.samples
                                    if ci_opts.method in ("bootstrap", "percentile") else 0),
                      boot_seed=ci_opts.seed, boot_student=ci_opts.method == "bootstrap",
                      figures=_figure_state(task, specs, head, logits) if figures else None)
    slicer = edges_from = None
    if groupings:
        from losscli.slices import DEFAULT_MAX_SLICES, Slicer, encoders, memory_cap
        from losscli.slices.fold import tail_sources
        from losscli.slices.result import slicer_skew
        from losscli.state import _normalised_weights

        coders, edges_from = encoders(groupings, plan.peek(), cols, src, DETECT_ROWS)
        weighted = cols.weight is not None or any(
            _normalised_weights(s) is not None for s in specs)
        tail_of, tail_inputs = tail_sources(specs)
        slicer = Slicer(coders, len(specs), weighted, cols.weight is not None,
                        memory_cap(getattr(slice_opts, "max_slices", DEFAULT_MAX_SLICES)),
                        tail_of, tail_inputs, slicer_skew(ci_opts.method))
    reduction = EvalReduction(template, TaskValidator(task, cols, logits, where,
                                                   not specs_given and asked_task is None,
                                                   reads_probabilities(specs)),
                              optional, logits, src.path if len(src.files) > 1 else None,
                              slicer)
    with np.errstate(all="ignore"):
        folded = runner.run(plan, reduction, progress)
    state, stats, dropped, row_sum_off = (folded.state, folded.nan, folded.drops,
                                          folded.row_sum_off)
    if stats.count and nan == "error":
        raise stats.error()
    notes = [dropped[i] for i in sorted(dropped)]
    warnings: list[str] = []
    if state.rows == 0:
        raise stats.all_dropped(where)
    if state.weight_sum.value <= 0.0:
        raise InputError(f"{where}: weight column '{cols.weight}' sums to zero; the weighted "
                         "mean is undefined")
    if row_sum_off:
        warnings.append(f"{row_sum_off} probability row(s) do not sum to 1 (tolerance "
                        f"{ROW_SUM_RTOL:g}); cce uses the probability of the true class as given")
    if stats.count:
        warnings.append(stats.dropped())

    results = [_finish_loss(s, st, state, logits, where, ci_opts)
               for i, (s, st) in enumerate(zip(state.specs, state.losses, strict=True))
               if i not in dropped]
    if multilabel:
        for r, st in zip(results, state.losses, strict=True):
            assert st.labels is not None
            r.per_label = {name: sums.ratio(state.weight_sum)
                           for name, sums in zip(_label_names(cols), st.labels, strict=True)}
    notes += interval_notes(results)
    if ci in ("bootstrap", "percentile") and bootstrap_samples * (1 - confidence) < 2:
        warnings.append(f"--bootstrap-samples {bootstrap_samples:,} cannot resolve a "
                        f"{100 * confidence:g}% interval: its ends are the replicates' "
                        f"extremes; pass {math.ceil(20 / (1 - confidence)):,} or more")
    warnings += tail_warnings(results, state.rows)
    sliced = None
    if slicer is not None:
        from losscli.slices import finish, sliceable

        overall = {r.spec: r.value for r in results}
        reported = [(i, s) for i, s in enumerate(state.specs) if i not in dropped]
        unsliced = [s.spec for _, s in reported if not sliceable(s)]
        sliced = []
        for enc, st in zip(slicer.encoders, folded.slices or [], strict=True):
            group = finish(st, enc.grouping, enc, [(i, s) for i, s in reported if sliceable(s)],
                           overall, ci_opts, slice_opts, edges_from or {},
                           slicer.input_weighted, uncertainty=_uncertainty,
                           tail_of=slicer.tail_of, tail_inputs=slicer.tail_inputs)
            group.unsliced = unsliced
            sliced.append(group)
    total_rows = state.rows + stats.count
    input_kind = ("values" if task in ("regression", "counts")
                  else "logits" if logits else "probabilities")
    columns: dict[str, Any] = {"pred": cols.pred, "target": cols.target, "weight": cols.weight}
    if cols.var is not None:
        columns["var"] = cols.var
    if cols.soft:  # several target columns: soft targets, or one per label
        columns["target"] = ",".join(cols.soft)
    if multilabel:
        columns["labels"] = _label_names(cols)
    elif cols.multiclass:
        columns["classes"] = cols.labels or [str(i) for i in range(head[0].pred.shape[0])]
    figure_data = None
    if state.figures is not None:
        figure_data = _figure_data(state, dropped, results, columns.get("classes", ()))
    return Report(
        source=SourceInfo(where, src.display_format, total_rows, state.rows, stats.count),
        task=task,
        input=input_kind,
        columns=columns,
        losses=results,
        settings={"chunk_rows": chunk_rows, "nan": nan, "vanish_tol": vanish_tol,
                  "explode_tol": explode_tol, "grad_clip": grad_clip, "ci": ci,
                  "confidence": confidence},
        warnings=warnings,
        notes=notes,
        elapsed_seconds=time.perf_counter() - started,
        figures=figure_data,
        slices=sliced,
    )


def _figure_state(task: str, specs: Sequence[LossSpec], head: list[Chunk],
                  logits: bool) -> Any:
    from losscli.figures import FigureState

    classes = int(head[0].pred.shape[0]) if task == "multiclass" else 0
    return FigureState(task, classes, len(specs), logits)


def _figure_data(state: EvalState, dropped: Mapping[int, str], results: list[LossResult],
                 labels: Sequence[str]) -> Any:
    """The figures' data: the figure state's, and the |g| buckets of each loss from the
    gradient histograms the pass keeps anyway."""
    from losscli.figures import finish, gradient_buckets

    kept = [i for i in range(len(state.specs)) if i not in dropped]
    data = finish(state.figures, [s.spec for s in state.specs], labels)
    data.class_loss = [c for i, c in enumerate(data.class_loss) if i in kept]
    for i, r in zip(kept, results, strict=True):
        spec, st = state.specs[i], state.losses[i]
        single = spec.single
        if st.classes is not None:
            continue
        qs = (r.gradient.p50, r.gradient.p90, r.gradient.p99)
        scale = 1.0
        if single is not None and single.reduce == "sqrt":
            scale = 1.0 / r.value if r.value > 0 else 0.0
        if st.grad.hist is not None:
            data.gradients.append(gradient_buckets(spec.spec, st.grad.hist, qs, scale=scale))
        elif state.residual_hist is not None and single is not None and \
                single.abs_grad_of_abs_residual is not None:
            f, params = single.abs_grad_of_abs_residual, spec.terms[0].params
            data.gradients.append(gradient_buckets(
                spec.spec, state.residual_hist, qs,
                lambda v, f=f, params=params: f(v, params), scale))
    return data


def _slice_groupings(slices: Any, src: Source, cols: Columns) -> tuple[Any, list[Any]]:
    """The slice options (from SliceOptions or a list of --by texts) and the groupings checked
    against the input, their columns added to those read."""
    if not slices:
        return None, []
    from losscli.slices import SliceOptions, add_key_columns, check_options, resolve_groupings

    opts = slices if isinstance(slices, SliceOptions) else SliceOptions(
        [slices] if isinstance(slices, str) else list(slices))
    check_options(opts)
    groupings = resolve_groupings(src, opts.by)
    add_key_columns(src, cols, groupings)
    return opts, groupings


def head_rows(plan: ReadPlan[RawChunk], cols: Columns, nan: NanPolicy, where: str,
              rows: int = DETECT_ROWS) -> tuple[list[Chunk], int]:
    """The validated rows of the first raw chunks (at least ``rows`` when the input has them),
    to detect the task or take a pilot, and how many of their rows had NaN. The plan keeps the
    raw chunks for the run, whose folds count their NaN rows; raises when the input ends with
    every row dropped."""
    head: list[Chunk] = []
    stats = NanStats()
    valid = 0
    for item in plan.peek():
        chunk = to_chunk(item, cols, stats)
        if chunk.target.shape[0]:
            head.append(chunk)
            valid += chunk.target.shape[0]
        if valid >= rows:
            break
    if not head:
        raise stats.error() if nan == "error" else stats.all_dropped(where)
    return head, stats.count


def _head_facts(head: list[Chunk], cols: Columns) -> TargetFacts:
    """What exactly the first DETECT_ROWS rows say about the task, whatever the chunk size
    (nothing for multiclass columns)."""
    facts = TargetFacts()
    left = DETECT_ROWS
    for c in head:
        if cols.multiclass or left <= 0:
            break
        facts.merge(TargetFacts.of(c.target[:left], c.pred[:left]))
        left -= c.target.shape[0]
    return facts


def _detect(facts: TargetFacts, head: list[Chunk], cols: Columns, logits: bool,
            task: Task | None, where: str = "") -> Detection:
    """The task of the first rows (the one detector of :mod:`losscli.detect`)."""
    if cols.multiclass:
        how = "a list column" if cols.list_column else f"{len(cols.pred)} prediction columns"
        return detect(facts, target=cols.target, pred=None, logits=logits, task=task,
                      classes=int(head[0].pred.shape[0]), how=how, where=where)
    return detect(facts, target=cols.target, pred=cols.pred[0], logits=logits, task=task,
                  where=where, float_target=cols.float_target)


__all__ = ["DEFAULT_CHUNK_ROWS", "EvalState", "LossDef", "Report", "Term", "evaluate"]
