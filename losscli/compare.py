"""Paired comparison of two models on the same rows: ``losscli compare``.

Per row i and loss, d_i = l_cand,i - l_base,i. The difference of the two (weighted) mean losses
is the weighted mean of d, so its standard error, interval and the paired t-test come from the
moments of d (:class:`~losscli.state.RowMoments`), which removes the between-row variance that
two separate intervals would carry. The same plan -> chunks -> fold -> merge-in-order loop as
eval; the Poisson bootstrap gives both models the same replicate counts.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from losscli._version import __version__
from losscli.engine import (
    DETECT_ROWS,
    TaskValidator,
    _check_losses,
    _detect,
    _head_facts,
    _slice_groupings,
    _task_of,
    check_class_weights,
    check_prediction_shape,
    check_weights,
    json_safe,
    reads_probabilities,
    stream_of,
)
from losscli.errors import InputError, UsageError
from losscli.losses import Batch, default_losses
from losscli.options import DEFAULT_CHUNK_ROWS
from losscli.result import Result
from losscli.run import Executor, ReadPlan, resolve_executor
from losscli.run.plan import PairedPlan
from losscli.sources import (
    Chunk,
    Columns,
    NanStats,
    PredArg,
    RawChunk,
    Source,
    _all_finite,
    _numeric,
    float64_view,
    to_chunk,
)
from losscli.spec import LossSpec, message_number, parse_spec
from losscli.state import (
    BootSums,
    CoMoments,
    ExactSum,
    RowMoments,
    effective_rows,
    linearised_spread,
    row_losses,
    variance_df,
)
from losscli.uncertainty import (
    DEFAULT_BOOTSTRAP_SAMPLES,
    DEFAULT_CONFIDENCE,
    Family,
    Interval,
    StepDown,
    bootstrap_sums,
    check_ci_options,
    estimator_skewness,
    skew_bounds,
    skew_statistic,
    stream_key,
)

if TYPE_CHECKING:
    from losscli.gates import Tolerance

#: 2: one interval (p_adjusted, family, p_below, role, ratio_ci; no p_holm, lower, upper)
SCHEMA = "losscli.compare/2"
DEFAULT_ALPHA = 0.05
VERDICTS = ("better", "worse", "no significant difference")


# --- the result -------------------------------------------------------------------------------


@dataclass
class LossComparison:
    """One loss of both models: values, the paired difference, its interval and the tests,
    which all read one interval: the verdict is 'worse' exactly when its lower end is above 0,
    'better' when its upper end is below 0, and then the adjusted p-value is below alpha."""

    name: str
    spec: str
    baseline: float
    candidate: float
    delta: float
    relative_delta: float
    se: float
    #: the two-sided (1 - alpha) interval of delta, simultaneous over the loss's family
    ci: Interval
    #: the p-value of this loss's test alone (the interval's method, inverted)
    p_value: float
    #: adjusted over the family (max-T from the correlation of the per-row differences)
    p_adjusted: float
    rows_better: int  # rows where the candidate's loss is lower (the table's 'rows better')
    rows_equal: int  # ... equal ('tied')
    rows_worse: int  # ... higher ('worse')
    verdict: str
    #: distinct tests in this loss's family (rmse counts with mse)
    family: int = 1
    #: no bootstrap replicate reached the statistic: the p-values are bounds, p < 1 / B
    p_below: bool = False
    #: 'primary' or 'secondary' with --primary
    role: str | None = None
    #: Fieller's interval of candidate / baseline at the same level and critical value (with
    #: a relative tolerance: its gates read it)
    ratio_ci: Interval | None = None

    def sentence(self, family: bool = True) -> str:
        """'mse: significantly worse, +3.10% [+1.90%, +4.30%], p = 0.00040 (adjusted over 4
        tests)' or the like; without ``family``, no '(adjusted over N tests)' (a report that
        says it once, under the lines: see render.compare.family_note)."""
        from losscli.render import ci_text, fmt, pct

        if math.isfinite(self.relative_delta) and self.baseline != 0:
            b = abs(self.baseline)
            change = (f"{pct(self.relative_delta, sign=True)} [{pct(self.ci.low / b, sign=True)}, "
                      f"{pct(self.ci.high / b, sign=True)}]")
        else:
            change = f"{fmt(self.delta, sign=True)} {ci_text(self.ci.low, self.ci.high, sign=True)}"
        what = ("no significant difference" if self.verdict == VERDICTS[2]
                else f"significantly {self.verdict}")
        if self.p_below:
            p = f"< {p_text(self.p_adjusted)}"
        else:
            p = (f"< {P_FLOOR:g}" if self.p_adjusted < P_FLOOR
                 else f"= {p_text(self.p_adjusted)}")
        notes = [self.role] if self.role is not None else []
        if self.family > 1 and family:
            notes.append(f"adjusted over {self.family} tests")
        tail = f" ({', '.join(notes)})" if notes else ""
        return f"{self.spec}: {what}, {change}, p {p}{tail}"


#: Below this a p-value is said as '< 1e-300': a float64 p-value of 0 is an underflow (the
#: t-test's tail past the smallest double), never a probability of exactly 0.
P_FLOOR = 1e-300


def p_text(p: float) -> str:
    """A p-value in two significant digits, '<1e-300' when it underflowed, '-' when NaN."""
    from losscli.render import fmt

    return f"<{P_FLOOR:g}" if p < P_FLOOR else fmt(p, 2)


@dataclass
class CompareGate:
    """A comparison gate and its verdict on one loss."""

    loss: str
    kind: str  # fail_if_worse | require_not_worse
    margin: float
    bound: float
    passed: bool
    #: bound and margin are of candidate / baseline - 1 (a relative tolerance)
    relative: bool = False

    def message(self) -> str:
        if self.relative:
            end = "lower" if self.kind == "fail_if_worse" else "upper"
            op = ((">" if not self.passed else "<=") if self.kind == "fail_if_worse"
                  else ("<" if self.passed else ">="))
            why = ("" if self.passed else " (a significant regression)"
                   if self.kind == "fail_if_worse" else " (not shown to be not worse)")
            return (f"{self.loss}: {end} end of candidate / baseline - 1 {self.bound:+.4%} "
                    f"{op} tolerance {self.margin:.4%}{why}")
        if self.kind == "fail_if_worse":
            op = "<=" if self.passed else ">"
            return (f"{self.loss}: lower bound of delta {self.bound:+.6g} {op} margin "
                    f"{self.margin:.6g}" + ("" if self.passed else " (a significant regression)"))
        op = "<" if self.passed else ">="
        return (f"{self.loss}: upper bound of delta {self.bound:+.6g} {op} margin "
                f"{self.margin:.6g}" + ("" if self.passed else " (not shown to be not worse)"))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(repr=False)
class Comparison(Result):
    """What ``losscli compare`` found: plain data that the renderers and gates read."""

    command: ClassVar[str] = "compare"

    baseline: dict[str, Any]
    candidate: dict[str, Any]
    task: str
    rows: int
    losses: list[LossComparison]
    settings: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    #: footnotes: default losses left out for this data (not warnings: nobody asked for them)
    notes: list[str] = field(default_factory=list)
    gates: list[CompareGate] = field(default_factory=list)
    elapsed_seconds: float = 0.0
    config: dict[str, Any] | None = None
    #: the report's figures (a losscli.figures.FigureData), when asked for
    figures: Any = None
    #: slices.SliceGroup per --by (None: no --by): per-slice deltas
    slices: list[Any] | None = None

    @property
    def passed(self) -> bool:
        return all(g.passed for g in self.gates)

    def check(self, fail_if_worse: bool = False, require_not_worse: bool = False,
              tolerance: str | float | Tolerance | None = None) -> list[CompareGate]:
        """Apply compare's gates (``--fail-if-worse``, ``--require-not-worse`` with the margin
        ``--tolerance``: 1% of the baseline value, or absolute 0.01; a relative one reads the
        ratio interval when the comparison kept it, ``compare(..., ratio=True)``). Sets and
        returns :attr:`gates`; :attr:`passed` is the verdict."""
        from losscli.gates import Tolerance as Tol

        tol = tolerance if isinstance(tolerance, Tol) else Tol.parse(tolerance)
        self.gates = check_gates(self, fail_if_worse, require_not_worse, tol)
        self.settings["tolerance"] = str(tol)
        return self.gates

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "schema": SCHEMA, "version": __version__, "baseline": self.baseline,
            "candidate": self.candidate, "task": self.task, "rows": self.rows,
            "settings": self.settings,
            "losses": [{**{k: v for k, v in asdict(r).items() if k not in ("ci", "ratio_ci")},
                        "ci": r.ci.to_dict(),
                        **({} if r.ratio_ci is None else {"ratio_ci": r.ratio_ci.to_dict()})}
                       for r in self.losses],
            "gates": [g.to_dict() for g in self.gates], "passed": self.passed,
            "warnings": self.warnings, "notes": self.notes,
            "elapsed_seconds": round(self.elapsed_seconds, 6)}
        if self.config is not None:
            d["config"] = self.config
        if self.slices is not None:
            d["slicing"] = [g.to_dict() for g in self.slices]
            d["slices"] = [{"grouping": g.text, "other": s.other, **s.to_dict()}
                           for g in self.slices for s in g.slices]
        return json_safe(d)


# --- mergeable state ----------------------------------------------------------------------------


@dataclass
class PairedLoss:
    """Sums of one loss over paired rows: both models' weighted sums, the moments of the
    per-row differences, the win / tie / loss counts and the bootstrap sums."""

    base: ExactSum = field(default_factory=ExactSum)
    cand: ExactSum = field(default_factory=ExactSum)
    diff: RowMoments = field(default_factory=RowMoments)
    rows_better: int = 0
    rows_equal: int = 0
    rows_worse: int = 0
    boot_base: BootSums | None = None
    boot_cand: BootSums | None = None
    #: both models' per-row moments, for the ratio candidate / baseline (relative tolerance)
    base_rows: RowMoments | None = None
    cand_rows: RowMoments | None = None

    def merge(self, other: PairedLoss) -> None:
        self.base.merge(other.base)
        self.cand.merge(other.cand)
        self.diff.merge(other.diff)
        self.rows_better += other.rows_better
        self.rows_equal += other.rows_equal
        self.rows_worse += other.rows_worse
        if self.boot_base is not None and other.boot_base is not None:
            self.boot_base.merge(other.boot_base)
        if self.boot_cand is not None and other.boot_cand is not None:
            self.boot_cand.merge(other.boot_cand)
        if self.base_rows is not None and other.base_rows is not None:
            self.base_rows.merge(other.base_rows)
        if self.cand_rows is not None and other.cand_rows is not None:
            self.cand_rows.merge(other.cand_rows)


@dataclass
class PairedState:
    """The mergeable state of a comparison (weights as given: no rescaling here)."""

    specs: Sequence[LossSpec]
    boot_samples: int = 0
    boot_seed: int = 0
    rows: int = 0
    weight_sum: ExactSum = field(default_factory=ExactSum)
    losses: list[PairedLoss] = field(default_factory=list)
    #: the third moments of the differences (Johnson's interval; the t interval does without)
    skew: bool = True
    #: the report's per-row difference histograms (a losscli.figures.FigureState), when asked
    figures: Any = None
    #: the co-moments of the losses' differences (the family's correlation), with 2+ losses
    joint: CoMoments | None = None
    #: both models' own moments too (the ratio interval of a relative tolerance)
    ratio: bool = False

    def __post_init__(self) -> None:
        if self.joint is None and len(self.specs) > 1:
            self.joint = CoMoments()
        if not self.losses:
            boot = self.boot_samples > 0
            self.losses = [PairedLoss(boot_base=BootSums() if boot else None,
                                      boot_cand=BootSums() if boot else None,
                                      base_rows=RowMoments(skew=False) if self.ratio else None,
                                      cand_rows=RowMoments(skew=False) if self.ratio else None)
                           for _ in self.specs]

    def empty(self) -> PairedState:
        return PairedState(self.specs, self.boot_samples, self.boot_seed, skew=self.skew,
                           figures=None if self.figures is None else self.figures.empty(),
                           joint=CoMoments() if self.joint is not None else None,
                           ratio=self.ratio)

    def update(self, base: Batch, cand: Batch, rows: np.ndarray | None,
               first_row: int = 0, stream: int = 0) -> None:
        """Add one chunk of paired rows; ``rows`` (their row numbers, from which the bootstrap
        draws its replicate counts) is needed with bootstrap samples; else the rows may be
        numbered from ``first_row`` on (the family's correlation reads some rows by number).
        ``stream`` tells the input's files apart (their rows are numbered from 0 in each)."""
        n = base.n
        if n == 0:
            return
        w = base.weight
        self.rows += n
        self.weight_sum.add(float(n) if w is None else float(np.sum(w)))
        vectors: list[np.ndarray] = []
        diffs: list[np.ndarray] = []  # the rows of each d that the correlation reads (copies)
        pick = joint_rows(rows, first_row, n) if self.joint is not None else None
        if self.boot_samples:
            vectors.append(np.ones(n) if w is None else w)
        for i, (spec, st) in enumerate(zip(self.specs, self.losses, strict=True)):
            lb, lc = row_losses(spec, base), row_losses(spec, cand)
            wb, wc = (lb, lc) if w is None else (lb * w, lc * w)
            st.base.add(float(np.sum(wb)))
            st.cand.add(float(np.sum(wc)))
            d = lc - lb
            if self.figures is not None:
                self.figures.update_diff(i, d)
            st.diff.merge(RowMoments.of(d, w, skew=self.skew, low=-math.inf))
            if st.base_rows is not None and st.cand_rows is not None:
                st.base_rows.merge(RowMoments.of(lb, w, skew=False))
                st.cand_rows.merge(RowMoments.of(lc, w, skew=False))
            if pick is not None:  # a copy: a view would keep all of d alive (slower by 10%)
                diffs.append(d[pick].copy() if isinstance(pick, slice) else d[pick])
            better = int(np.count_nonzero(d < 0.0))
            worse = int(np.count_nonzero(d > 0.0))
            st.rows_better += better
            st.rows_worse += worse
            st.rows_equal += n - better - worse
            if self.boot_samples:
                vectors += [wb, wc]
        if self.joint is not None and pick is not None:
            self.joint.merge(CoMoments.of(np.stack(diffs), None if w is None else w[pick]))
        if self.boot_samples:
            if rows is None:
                raise ValueError("bootstrap replicates need the chunk's row numbers")
            sums = bootstrap_sums(np.stack(vectors), rows, stream_key(self.boot_seed, stream),
                                  self.boot_samples)
            for i, st in enumerate(self.losses):
                assert st.boot_base is not None and st.boot_cand is not None
                st.boot_base.merge(BootSums(0, sums[1 + 2 * i], sums[0]))
                st.boot_cand.merge(BootSums(0, sums[2 + 2 * i], sums[0]))

    def merge(self, other: PairedState) -> None:
        self.rows += other.rows
        self.weight_sum.merge(other.weight_sum)
        for a, b in zip(self.losses, other.losses, strict=True):
            a.merge(b)
        if self.figures is not None and other.figures is not None:
            self.figures.merge(other.figures)
        if self.joint is not None and other.joint is not None:
            self.joint.merge(other.joint)


#: The family's correlation reads every row numbered below JOINT_ALL_ROWS and every
#: JOINT_STRIDE-th after: by number, so any chunking reads the same rows. A correlation from
#: 65,536 + n / 256 rows is ample for a critical value (its standard error is at most about
#: 1 / sqrt(65,536) = 0.004, which moves the max-T critical value in its third decimal), and
#: costs under 1% of compare's pass (every 16th row cost 2-3%).
JOINT_ALL_ROWS = 1 << 16
JOINT_STRIDE = 256


def joint_rows(rows: np.ndarray | None, first_row: int, n: int) -> np.ndarray | slice:
    """The positions in a chunk of the rows the family's correlation reads (a strided slice,
    a view, past the first JOINT_ALL_ROWS rows of a chunk numbered from ``first_row``)."""
    if rows is not None:
        return np.flatnonzero((rows < JOINT_ALL_ROWS) | (rows % JOINT_STRIDE == 0))
    head = min(n, max(0, JOINT_ALL_ROWS - first_row))
    start = head + (-(first_row + head)) % JOINT_STRIDE
    if head == 0:
        return slice(start, n, JOINT_STRIDE)
    return np.concatenate([np.arange(head), np.arange(start, n, JOINT_STRIDE)])




# --- reading both sides ------------------------------------------------------------------------


@dataclass
class _Both(Columns):
    """The columns read once for both sides of a one-file comparison: the baseline's and the
    candidate's prediction columns, the target and the weight."""

    extra: list[str] = field(default_factory=list)

    @property
    def selected(self) -> list[str]:
        return list(dict.fromkeys([*super().selected, *self.extra]))


#: How the columns of each side are named in the table of a keyed compare (messages show them).
_SIDE_NAMES = {"b:": " (baseline)", "c:": " (candidate)"}


def _side_name(prefix: str, column: str) -> str:
    return f"{column}{_SIDE_NAMES[prefix]}"


def _bare_name(column: str) -> str:
    """A column of a keyed compare's table as its side's file names it."""
    for suffix in _SIDE_NAMES.values():
        column = column.removesuffix(suffix)
    return column


def _has_column(src: Source, name: str) -> bool:
    return name in src.names or sum(n.lower() == name.lower() for n in src.names) == 1


def _keyed_table(base_src: Source, cand_src: Source, base_cols: Columns, cand_cols: Columns,
                 key: str, unmatched: str, target_of: str | None = None
                 ) -> tuple[Source, Columns, Columns, int]:
    """Both inputs matched by ``key`` into one in-memory table (in the baseline's row order):
    the key and the selected columns of both sides are held in memory. The two sides' targets
    must agree on every matched row, unless ``target_of`` ("b:" or "c:") names the one side
    that holds the target column (--target of one side only): both are scored against it."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from losscli.sources import find_column, open_table, record_batches

    def read(src: Source, cols: Columns, prefix: str) -> pa.Table:
        name = find_column(src, key, "key")
        has_target = target_of in (None, prefix)
        if name in (*cols.pred, cols.target if has_target else None, cols.weight):
            raise UsageError(f"{src.where}: --key {key} is also a prediction, target or weight "
                             "column; the key must be a column of its own (an id)")
        # without a target of its own, the side reads its predictions (a repeated name is read
        # once)
        both = _Both(cols.pred, cols.target if has_target else cols.pred[0], cols.weight,
                     cols.list_column, cols.labels, extra=[name])
        batches = [b for _, b in record_batches(src, both, 1 << 20,
                                                string_target=cols.multiclass)]
        table = pa.Table.from_batches(batches) if batches else None
        if table is None:
            raise InputError(f"{src.where}: no data rows (empty or header only)")
        if name != key:
            table = table.rename_columns([key if c == name else c for c in table.column_names])
        keys = table.column(key)
        if keys.null_count:
            raise InputError(f"{src.where}: key column '{key}' has {keys.null_count} empty "
                             "value(s)")
        counts = pc.value_counts(keys)
        dup = pc.filter(counts, pc.greater(counts.field("counts"), 1))
        if len(dup):
            first = dup[0]["values"].as_py()
            raise InputError(f"{src.where}: key column '{key}' has duplicate values (e.g. "
                             f"{first!r}, {dup[0]['counts'].as_py()} rows); --key must be "
                             "unique on each side")
        names = [_side_name(prefix, c) if c != key else key for c in table.column_names]
        table = table.rename_columns(names)
        return table.append_column(f"{prefix}#row", pa.array(np.arange(table.num_rows)))

    base = read(base_src, base_cols, "b:")
    cand = read(cand_src, cand_cols, "c:")
    try:
        joined = base.join(cand, keys=key, join_type="inner")
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise InputError(f"--key {key}: the two inputs' key columns cannot be matched "
                         f"({exc})") from None
    joined = joined.sort_by("b:#row")
    if target_of is None:
        _check_keyed_targets(joined, key, _side_name("b:", base_cols.target),
                             _side_name("c:", cand_cols.target))
    missing = base.num_rows + cand.num_rows - 2 * joined.num_rows
    if missing and unmatched == "error":
        lonely_b = base.num_rows - joined.num_rows
        lonely_c = cand.num_rows - joined.num_rows
        raise InputError(f"--key {key}: {lonely_b:,} baseline row(s) and {lonely_c:,} candidate "
                         "row(s) have no match on the other side; pass --unmatched drop to "
                         "compare the matched rows only")
    if joined.num_rows == 0:
        raise InputError(f"--key {key}: no key is on both sides")
    src = open_table(joined)
    src.path = f"{base_src.where} + {cand_src.where} (matched by {key})"
    btarget = _side_name("b:", base_cols.target) if target_of != "c:" else \
        _side_name("c:", cand_cols.target)
    ctarget = _side_name("c:", cand_cols.target) if target_of != "b:" else btarget
    bcols = Columns([_side_name("b:", c) for c in base_cols.pred], btarget,
                    None if base_cols.weight is None else _side_name("b:", base_cols.weight),
                    base_cols.list_column, base_cols.labels,
                    float_target=base_cols.float_target, positive=base_cols.positive)
    ccols = Columns([_side_name("c:", c) for c in cand_cols.pred], ctarget, None,
                    cand_cols.list_column, cand_cols.labels, positive=cand_cols.positive)
    return src, bcols, ccols, missing


def _check_keyed_targets(joined: Any, key: str, base: str, cand: str) -> None:
    """Rows matched by a key are the same examples: their targets must be equal (a missing
    target on either side is left to --nan). Raises InputError naming the first key whose
    targets differ and both values."""
    import pyarrow as pa
    import pyarrow.compute as pc

    a, b = joined.column(base), joined.column(cand)
    if pa.types.is_floating(a.type) or pa.types.is_floating(b.type) or (
            pa.types.is_integer(a.type) and pa.types.is_integer(b.type)):
        x = float64_view(a.combine_chunks()) if a.num_chunks != 1 else float64_view(a.chunk(0))
        y = float64_view(b.combine_chunks()) if b.num_chunks != 1 else float64_view(b.chunk(0))
        with np.errstate(invalid="ignore"):
            off = (x != y) & ~np.isnan(x) & ~np.isnan(y)
    else:
        try:
            neq = pc.not_equal(a, b)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise InputError(f"--key {key}: the targets of the two inputs have different "
                             f"types ({a.type} and {b.type})") from None
        off = np.asarray(pc.fill_null(neq, False).to_numpy(zero_copy_only=False), dtype=bool)
    if not off.any():
        return
    i = int(np.argmax(off))

    x, y = a[i].as_py(), b[i].as_py()

    def shown(v: Any, other: Any = None) -> str:
        if isinstance(v, float | int) and not isinstance(v, bool):
            return message_number(v, other) if isinstance(other, float | int) else str(v)
        return repr(v)

    raise InputError(
        f"--key {key}: the targets differ for {key} {shown(joined.column(key)[i].as_py())} "
        f"(baseline '{_bare_name(base)}' = {shown(x, y)}, candidate '{_bare_name(cand)}' = "
        f"{shown(y, x)}; {int(off.sum()):,} matched row(s) differ): the rows matched by a key "
        "must hold the same target")


# --- the pass ----------------------------------------------------------------------------------


@dataclass
class PairedFold:
    """A comparison's state and the rows it dropped for NaN (merged like any state)."""

    state: PairedState
    nan: NanStats = field(default_factory=NanStats)
    #: the slices' states, one per --by
    slices: list[Any] | None = None


@dataclass
class PairedReduction:
    """compare's reduction: converts, aligns and validates a block of paired rows (a raw chunk
    of one input, or a pair of two inputs' chunks over the same rows) and folds it."""

    template: PairedState
    base_cols: Columns
    cand_cols: Columns
    validator: TaskValidator
    cand_validator: TaskValidator
    logits: bool
    where: str
    check_targets: bool
    #: the slices' fold (slices.Slicer), with --by
    slicer: Any = None
    #: the baseline's directory when it has several files (bootstrap streams, as eval's)
    root: str | None = None

    def empty(self) -> PairedFold:
        return PairedFold(self.template.empty())

    def merge(self, earlier: PairedFold, later: PairedFold) -> PairedFold:
        earlier.state.merge(later.state)
        earlier.nan.merge(later.nan)
        if later.slices is not None:
            earlier.slices = (later.slices if earlier.slices is None
                              else self.slicer.merge(earlier.slices, later.slices))
        return earlier

    def fold(self, acc: PairedFold, item: RawChunk | tuple[RawChunk, RawChunk]) -> PairedFold:
        ra, rb = item if isinstance(item, tuple) else (item, item)
        base_nan, cand_nan = NanStats(), NanStats()
        base = to_chunk(ra, self.base_cols, base_nan)
        cand = _same_rows_chunk(rb, self.cand_cols, base) if rb is ra else None
        if cand is None:
            cand = to_chunk(rb, self.cand_cols, cand_nan)
        base, cand = _common_rows(base, cand)
        # a row either side dropped counts once
        acc.nan.merge(NanStats.of_pair(base_nan, cand_nan,
                                       ra.batch.num_rows - base.target.shape[0]))
        state = acc.state
        if base.target.shape[0] == 0:
            return acc
        if self.check_targets:
            off = base.target != cand.target
            if off.any():
                i = int(np.argmax(off))
                raise InputError(
                    f"row {base.row_number(i)}: the targets differ ({ra.where} "
                    f"'{self.base_cols.target}' = {base.target[i]:.10g}, {rb.where} "
                    f"'{self.cand_cols.target}' = {cand.target[i]:.10g}); rows are compared "
                    "in order (pass --key to match them by a key column)")
        self.validator.check(base)
        self.cand_validator.check(cand)
        check_weights(base, self.base_cols, self.where)
        bb = Batch(base.pred, base.target, base.weight, self.logits)
        cb = Batch(cand.pred, cand.target, base.weight, self.logits)
        specs = self.template.specs
        _check_losses(specs, [False] * len(specs), set(), bb, base, self.base_cols, ra.where)
        _check_losses(specs, [False] * len(specs), set(), cb, cand, self.cand_cols, rb.where)
        rows = base.rows
        if state.boot_samples and rows is None:
            rows = np.arange(base.first_row, base.first_row + base.target.shape[0])
        state.update(bb, cb, rows, base.first_row,
                     0 if self.root is None else stream_of(ra.where, self.root))
        if self.slicer is not None:
            losses = [(row_losses(sp, bb), row_losses(sp, cb)) for sp in specs]
            acc.slices = self.slicer.fold(ra, base, [(c - b, None) for b, c in losses],
                                          [[b] for b, _ in losses])
        return acc


def _same_rows_chunk(raw: RawChunk, cols: Columns, base: Chunk) -> Chunk | None:
    """The candidate's chunk of the record batch the baseline's came from (one input), when
    every row of both is finite: only its prediction column is converted and checked, the
    target is the baseline's (already checked). None: convert it as usual."""
    if cols.multiclass or cols.weight or base.rows is not None:
        return None
    pred = _numeric(raw.batch.column(cols.pred[0]), cols.pred[0], raw.where)
    if not _all_finite(pred):
        return None
    return Chunk(pred, base.target, None, base.first_row)


def _common_rows(a: Chunk, b: Chunk) -> tuple[Chunk, Chunk]:
    """Both chunks restricted to the rows that neither dropped (NaN policy)."""
    if a.rows is None and b.rows is None:
        return a, b
    ra = a.rows if a.rows is not None else np.arange(a.first_row, a.first_row + a.target.size)
    rb = b.rows if b.rows is not None else np.arange(b.first_row, b.first_row + b.target.size)
    # both sides number the same rows from the same first row
    common, ia, ib = np.intersect1d(ra - a.first_row, rb - b.first_row, assume_unique=True,
                                    return_indices=True)

    def take(c: Chunk, idx: np.ndarray) -> Chunk:
        return Chunk(c.pred[..., idx], c.target[idx],
                     None if c.weight is None else c.weight[idx], c.first_row,
                     rows=common + c.first_row)

    return take(a, ia), take(b, ib)


def _defaults_in_domain(specs: list[LossSpec], head: list[tuple[RawChunk, RawChunk]],
                        base_cols: Columns, cand_cols: Columns,
                        logits: bool) -> tuple[list[LossSpec], list[str]]:
    """The default losses whose domain holds on both sides' first rows, and a warning for each
    one left out (poisson with a negative target, say); a later row outside it is an error."""
    keep, notes = [], []
    for spec in specs:
        problem = None
        for ra, rb in head:
            for raw, cols in ((ra, base_cols), (rb, cand_cols)):
                chunk = to_chunk(raw, cols, NanStats())
                if chunk.target.shape[0] == 0:
                    continue
                batch = Batch(chunk.pred, chunk.target, chunk.weight, logits)
                for t in spec.terms:
                    found = None if t.loss.check is None else t.loss.check(batch, t.params)
                    if found is not None:
                        problem = f"{spec.spec} skipped: {found.message}"
                        break
                if problem:
                    break
            if problem:
                break
        if problem:
            notes.append(problem)
        else:
            keep.append(spec)
    if not keep:
        raise InputError("no default loss fits these rows: pass --loss")
    return keep, notes


def _one_level(confidence: float, alpha: float) -> float:
    """compare's alpha: its one interval is two-sided (1 - alpha), so --confidence C means
    alpha = 1 - C; both given and different is a usage error."""
    if confidence != DEFAULT_CONFIDENCE:
        if alpha != DEFAULT_ALPHA and not math.isclose(alpha, 1.0 - confidence, rel_tol=1e-9):
            raise UsageError(f"--confidence {confidence:g} and --alpha {alpha:g} disagree: "
                             "compare prints one two-sided (1 - alpha) interval; give one")
        alpha = 1.0 - confidence
    if not 0.0 < alpha < 0.5:
        raise UsageError(f"--alpha must be between 0 and 0.5 (--confidence above 0.5), got "
                         f"{alpha:g}")
    return alpha


def compare(
    baseline: str | Path | Source | Any,
    candidate: str | Path | Source | Any | None = None,
    *,
    pred: PredArg = None,
    baseline_pred: PredArg = None,
    target: str | None = None,
    weight: str | None = None,
    losses: Sequence[str | LossSpec] | None = None,
    key: str | None = None,
    unmatched: str = "error",
    task: str | None = None,
    logits: bool = False,
    nan: str = "error",
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    threads: int | bool | None = None,
    executor: str | Executor | None = None,
    ci: str = "johnson",
    confidence: float = DEFAULT_CONFIDENCE,
    bootstrap_samples: int = DEFAULT_BOOTSTRAP_SAMPLES,
    seed: int = 0,
    alpha: float = DEFAULT_ALPHA,
    figures: bool = False,
    primary: str | None = None,
    ratio: bool = False,
    slices: Any = None,
    positive: str | None = None,
) -> Comparison:
    """Compare a candidate's predictions with a baseline's on the same rows, paired.

    One input with two prediction columns (``baseline_pred`` and ``pred``), or two inputs
    (the baseline file first) whose rows correspond in order or by ``key``. ``figures`` also
    gathers the per-row differences for the report (``Comparison.figures``). ``ratio`` adds
    each loss's interval of candidate / baseline (what a relative tolerance's gates read).
    The interval of
    each delta is two-sided at 1 - ``alpha`` (``confidence`` is another name for it: give
    one) and simultaneous over the losses; ``primary`` names one loss as the confirmatory
    test (its own family, the only one gated), the others secondary. ``slices`` (a
    :class:`losscli.slices.SliceOptions` or ``--by`` texts) adds per-slice deltas with paired
    intervals; the slice columns are read from the baseline's input.
    """
    from losscli._alloc import keep_temporaries_in_heap
    from losscli.detect import check_task
    from losscli.sources import eval_only_columns, open_input, resolve_columns, set_positive

    started = time.perf_counter()
    keep_temporaries_in_heap()
    if chunk_rows < 1:
        raise UsageError(f"--chunk-rows must be a positive number of rows, got {chunk_rows}")
    check_ci_options(ci, confidence, bootstrap_samples, seed=seed)
    if ci in ("none", "percentile"):
        raise UsageError(f"compare reads one interval: --ci johnson, t or bootstrap (its "
                         f"bootstrap is studentized), got '{ci}'")
    alpha = _one_level(confidence, alpha)
    if unmatched not in ("error", "drop"):
        raise UsageError(f"--unmatched must be 'error' or 'drop', got '{unmatched}'")
    if nan not in ("error", "drop"):
        raise UsageError(f"--nan must be 'error' or 'drop', got '{nan}'")
    asked_task = check_task(task)

    stdin = ("-", "/dev/stdin")
    if isinstance(baseline, str | Path) and isinstance(candidate, str | Path) and \
            str(baseline) in stdin and str(candidate) in stdin:
        raise UsageError("both inputs are stdin, which can be read once: give one of them as "
                         "a file, or one input with --baseline-pred and --pred")
    base_src = open_input(baseline)
    one_file = candidate is None
    if one_file:
        if key is not None:
            raise UsageError("--key matches the rows of two inputs; one input compares two "
                             "columns of the same rows")
        if baseline_pred is None or pred is None:
            raise UsageError("compare of one input needs --baseline-pred COLUMN and --pred "
                             "COLUMN (or give two inputs: baseline then candidate)")
        cand_src = base_src
    else:
        assert candidate is not None
        cand_src = open_input(candidate)
    target_of = None  # keyed: the side that holds a --target the other side lacks
    if key is not None and target is not None and not one_file:
        in_base, in_cand = _has_column(base_src, target), _has_column(cand_src, target)
        if in_base != in_cand:
            target_of = "b:" if in_base else "c:"
            # the side without the column resolves its other columns as if it had it
            lacking = replace(base_src if in_cand else cand_src,
                              names=[*(base_src if in_cand else cand_src).names, target])
            base_src, cand_src = (lacking, cand_src) if in_cand else (base_src, lacking)
    base_cols = set_positive(eval_only_columns(
        resolve_columns(base_src, baseline_pred or pred, target, weight), "compare"), positive)
    cand_cols = set_positive(resolve_columns(cand_src, pred, target if target else
                                             base_cols.target, None), positive)
    if base_cols.multiclass != cand_cols.multiclass or (
            base_cols.multiclass and len(base_cols.pred) != len(cand_cols.pred)):
        raise UsageError(f"the two sides have different prediction shapes ("
                         f"{len(base_cols.pred)} and {len(cand_cols.pred)} column(s)): a "
                         "compare needs the same task on both sides")
    if one_file and base_cols.pred == cand_cols.pred:
        raise UsageError("--baseline-pred and --pred name the same column")
    missing = 0
    shown_sides = (base_src, cand_src)
    if key is not None:
        base_src, base_cols, cand_cols, missing = _keyed_table(
            base_src, cand_src, base_cols, cand_cols, key, unmatched, target_of)
        one_file = True
    where = base_src.where if one_file else f"{base_src.where} vs {cand_src.where}"
    if slices and key is not None:
        raise UsageError("compare --by reads the slice columns in row order; it does not "
                         "combine with --key yet")
    slice_opts, groupings = _slice_groupings(slices, base_src, base_cols)

    specs = [s if isinstance(s, LossSpec) else parse_spec(s) for s in (losses or [])]
    if len({s.spec for s in specs}) != len(specs):
        raise UsageError("a loss is asked for twice")
    for s in specs:
        if any(t.balanced or (t.loss.class_weighting is not None and
                              t.loss.class_weighting.normalise and
                              t.params.get(t.loss.class_weighting.param) is not None)
               for t in s.terms):
            raise UsageError(f"compare does not support {s.spec} yet (class weights measured "
                             "in the pass or reduced by sum(w a)); compare the unweighted loss")

    plan: ReadPlan[RawChunk] | PairedPlan
    if one_file:
        both = _Both(base_cols.pred, base_cols.target, base_cols.weight, base_cols.list_column,
                     base_cols.labels, keys=base_cols.keys,
                     numeric_keys=base_cols.numeric_keys,
                     extra=[*cand_cols.pred, cand_cols.target])
        plan = ReadPlan(base_src, both, chunk_rows)
    else:
        plan = PairedPlan(ReadPlan(base_src, base_cols, chunk_rows),
                          ReadPlan(cand_src, cand_cols, chunk_rows))
    notes: list[str] = []
    head: list[tuple[RawChunk, RawChunk]] = []
    head_chunks: list[Chunk] = []
    seen_rows = 0
    probe = NanStats()
    for item in plan.peek():
        pair = item if isinstance(item, tuple) else (item, item)
        head.append(pair)
        c = to_chunk(pair[0], base_cols, probe)
        if c.target.shape[0]:
            head_chunks.append(c)
            seen_rows += c.target.shape[0]
        if seen_rows >= DETECT_ROWS:
            break
    if specs:
        found_task = _task_of(specs)
        check_prediction_shape(specs, found_task, base_cols)
        if any(t.loss.uses_var for s in specs for t in s.terms):
            raise UsageError("gaussian_nll reads a predicted-variance column (eval --var), "
                             "which compare does not read; evaluate each file with eval")
    else:
        if not head_chunks:
            raise InputError(f"{where}: no rows to compare")
        found_task = _detect(_head_facts(head_chunks, base_cols), head_chunks, base_cols,
                             logits, asked_task, where).task
        specs = [parse_spec(d.name) for d in default_losses(found_task)]
        specs, skipped = _defaults_in_domain(specs, head, base_cols, cand_cols, logits)
        notes += skipped
    if found_task == "multiclass" and head_chunks:
        check_class_weights(specs, int(head_chunks[0].pred.shape[0]))
    task_name = "regression" if found_task == "counts" else found_task

    boot = bootstrap_samples if ci == "bootstrap" else 0
    state = PairedState(specs, boot, seed, skew=ci != "t", ratio=ratio,
                        figures=_figure_state(specs) if figures else None)
    slicer = edges_from = None
    if groupings:
        from losscli.slices import DEFAULT_MAX_SLICES, Slicer, encoders, memory_cap
        from losscli.slices.fold import tail_sources
        from losscli.slices.result import slicer_skew

        coders, edges_from = encoders(groupings, (p[0] for p in head), base_cols, base_src,
                                      DETECT_ROWS)
        tail_of, tail_inputs = tail_sources(specs, paired=True)
        slicer = Slicer(coders, len(specs), base_cols.weight is not None,
                        base_cols.weight is not None,
                        memory_cap(getattr(slice_opts, "max_slices", DEFAULT_MAX_SLICES)),
                        tail_of, tail_inputs, slicer_skew(ci))
    reduction = PairedReduction(state, base_cols, cand_cols,
                                TaskValidator(task_name, base_cols, logits, base_src.where,
                                              probabilities=reads_probabilities(specs)),
                                TaskValidator(task_name, cand_cols, logits, cand_src.where,
                                              probabilities=reads_probabilities(specs)),
                                logits, where, check_targets=not one_file, slicer=slicer,
                                root=base_src.path if len(base_src.files) > 1 else None)
    with np.errstate(all="ignore"):
        folded = resolve_executor(executor, threads).run(plan, reduction)
    state, stats = folded.state, folded.nan
    if stats.count and nan == "error":
        raise stats.error()
    if state.rows < 2:
        raise InputError(f"{where}: {state.rows} row(s) to compare; a comparison needs 2 or "
                         "more")
    total_w = state.weight_sum.value
    if total_w <= 0.0:
        raise InputError(f"{where}: the weights sum to zero; the weighted means are undefined")
    first = None
    if primary is not None:
        key_spec = parse_spec(primary).spec
        first = next((i for i, s in enumerate(specs) if s.spec == key_spec), None)
        if first is None:
            raise UsageError(f"--primary {primary} is not one of the losses compared "
                             f"({', '.join(s.spec for s in specs)})")
    results = _finish(specs, state, total_w, ci, bootstrap_samples, seed, alpha, first)
    sliced = None
    if slicer is not None:
        from losscli.engine import CiOptions, _uncertainty
        from losscli.slices import finish

        overall = {r.spec: r.delta for r in results}
        sliced = [finish(st, enc.grouping, enc, list(enumerate(specs)), overall,
                         CiOptions(ci, 1.0 - alpha), slice_opts, edges_from or {},
                         slicer.input_weighted, paired=True, uncertainty=_uncertainty,
                         tail_of=slicer.tail_of, tail_inputs=slicer.tail_inputs)
                  for enc, st in zip(slicer.encoders, folded.slices or [], strict=True)]
    warnings: list[str] = []
    if ci == "bootstrap" and alpha * bootstrap_samples <= 1.0:
        warnings.append(f"--bootstrap-samples {bootstrap_samples} cannot resolve alpha "
                        f"{alpha:g} (it needs more than {math.ceil(1 / alpha):,} replicates): "
                        "no difference can be called significant")
    if stats.count:
        warnings.append(stats.dropped())
    if missing:
        warnings.append(f"--unmatched drop: {missing:,} row(s) without a match were left out")

    def side(src: Source, cols: Columns) -> dict[str, Any]:
        return {"path": src.where, "format": src.display_format,
                "pred": [_bare_name(c) for c in cols.pred], "target": _bare_name(cols.target)}

    return Comparison(
        baseline=side(shown_sides[0], base_cols) | {
            "weight": None if base_cols.weight is None else _bare_name(base_cols.weight)},
        candidate=side(shown_sides[1], cand_cols),
        task=found_task, rows=state.rows, losses=results,
        settings={"ci": ci, "confidence": 1.0 - alpha, "alpha": alpha, "primary": primary,
                  "chunk_rows": chunk_rows,
                  "nan": nan, "key": key, "unmatched": unmatched, "positive": positive,
                  **({"bootstrap_samples": bootstrap_samples, "seed": seed}
                     if ci == "bootstrap" else {})},
        warnings=warnings, notes=notes, elapsed_seconds=time.perf_counter() - started,
        figures=None if state.figures is None else _figure_data(state.figures, specs),
        slices=sliced)


def _figure_state(specs: Sequence[LossSpec]) -> Any:
    from losscli.figures import FigureState

    return FigureState("paired", losses=len(specs), paired=True)


def _figure_data(figures: Any, specs: Sequence[LossSpec]) -> Any:
    from losscli.figures import finish

    return finish(figures, [s.spec for s in specs])


def _finish(specs: Sequence[LossSpec], state: PairedState, total_w: float, method: str,
            samples: int, seed: int, alpha: float,
            primary: int | None = None) -> list[LossComparison]:
    """Each loss's delta, its two-sided (1 - alpha) interval adjusted over its family (all the
    losses, or with ``primary`` that loss alone and the others as a second family) by the
    step-down max-T (:class:`StepDown`: each interval reads its own step's critical value),
    the p-values of the same method and the verdict read off the interval."""
    n = state.rows
    level = 1.0 - alpha
    facts = [_paired_facts(spec, st, total_w, n, method) for spec, st in
             zip(specs, state.losses, strict=True)]
    deltas = np.array([f.delta for f in facts])
    corr = (state.joint.correlation(deltas) if state.joint is not None
            and state.joint.mean is not None else np.eye(len(specs)))
    families = [list(range(len(specs)))]
    if primary is not None:
        families = [[primary], [i for i in range(len(specs)) if i != primary]]
    df = facts[0].df
    results: list[LossComparison | None] = [None] * len(specs)
    for members in families:
        if not members:
            continue
        sub = corr[np.ix_(members, members)]
        reps = None
        if method == "bootstrap":
            reps = np.stack([_replicates(facts[i]) for i in members], axis=1)
            reps = reps[np.all(np.isfinite(reps), axis=1)]
            fam = Family.of_replicates(reps, sub)
        else:
            fam = Family.of(sub, df)
        steps = StepDown.of([facts[i].statistic for i in members], fam.groups,
                            _subfamily(sub, df, reps), alpha)
        for j, i in enumerate(members):
            f, spec, st = facts[i], specs[i], state.losses[i]
            crit = steps.critical[j]
            low, high = skew_bounds(f.delta, f.se, f.skew, crit)
            if reps is not None:
                own = Family.of_replicates(reps[:, [j]], np.eye(1))
                p_single = own.p(f.statistic)
            else:
                p_single = fam.single_p(f.statistic)
            p_adj, below = steps.p[j], steps.below[j]
            interval = Interval(low, high, level, method,
                                samples if method == "bootstrap" else None,
                                seed if method == "bootstrap" else None,
                                effective_n=f.effective_n,
                                df=f.df if f.effective_n is not None else None)
            base, cand, delta, se = f.base, f.cand, f.delta, f.se
            single = spec.single
            if single is not None and single.reduce == "sqrt":
                # rmse_c - rmse_b = (mse_c - mse_b) / (rmse_c + rmse_b): the mse difference's
                # interval and SE over the (fixed) sum; at delta = 0 this is the delta method
                rb, rc = math.sqrt(base), math.sqrt(cand)
                k = 1.0 / (rb + rc) if rb + rc > 0 else math.nan
                base, cand, delta, se = rb, rc, rc - rb, se * k
                interval = replace(interval, low=interval.low * k, high=interval.high * k)
            verdict = VERDICTS[2]
            if interval.low > 0.0:
                verdict = VERDICTS[1]
            elif interval.high < 0.0:
                verdict = VERDICTS[0]
            ratio = _ratio_interval(st, f, total_w, n, crit, level, method,
                                    single is not None and single.reduce == "sqrt")
            results[i] = LossComparison(
                spec.name, spec.spec, base, cand, delta,
                delta / abs(base) if base != 0 else math.nan, se, interval, p_single, p_adj,
                st.rows_better, st.rows_equal, st.rows_worse, verdict, family=fam.distinct,
                p_below=bool(below),
                role=None if primary is None else ("primary" if i == primary
                                                   else "secondary"),
                ratio_ci=ratio)
    return [r for r in results if r is not None]


def _subfamily(corr: np.ndarray, df: float,
               replicates: np.ndarray | None) -> Callable[[list[int]], Family]:
    """The max-T family of a subset of a family's tests (for the step-down procedure), from
    the same joint normal approximation or the same bootstrap replicates."""
    def family(tests: list[int]) -> Family:
        sub = corr[np.ix_(tests, tests)]
        if replicates is None:
            return Family.of(sub, df)
        return Family.of_replicates(replicates[:, tests], sub)
    return family


@dataclass
class _Facts:
    """One loss's paired difference before the family is known."""

    base: float
    cand: float
    delta: float
    se: float
    skew: float  # the estimator's skewness (0: the symmetric interval)
    statistic: float  # the signed statistic of delta = 0 under the method
    df: float
    effective_n: float | None
    replicates: np.ndarray | None = None


def _mean_variance(m: RowMoments, value: float, total_w: float, n: int) -> float:
    """The squared standard error of one side's weighted mean."""
    s2, _, k = linearised_spread([(m, 1.0, 1.0)], value, total_w, 0)
    return math.ldexp(s2 / n, 2 * k)


def _ratio_interval(st: PairedLoss, f: _Facts, total_w: float, n: int, crit: float,
                    level: float, method: str, sqrt: bool) -> Interval | None:
    """Fieller's interval {rho : |L_c - rho L_b| <= c SE(L_c - rho L_b)} of the ratio of the
    candidate's value to the baseline's (the roots of a quadratic; unbounded when the
    baseline's value is not clearly above 0). rmse's is the square root of mse's."""
    if st.base_rows is None or st.cand_rows is None:
        return None
    vb = _mean_variance(st.base_rows, f.base, total_w, n)
    vc = _mean_variance(st.cand_rows, f.cand, total_w, n)
    vd = _mean_variance(st.diff, f.delta, total_w, n)
    cov = 0.5 * (vb + vc - vd)  # Var(d) = Var(c) + Var(b) - 2 Cov(c, b)
    c2 = crit * crit
    a = f.base * f.base - c2 * vb
    b = f.cand * f.base - c2 * cov
    disc = b * b - a * (f.cand * f.cand - c2 * vc)
    low, high = -math.inf, math.inf
    if a > 0.0 and disc >= 0.0:
        root = math.sqrt(disc)
        low, high = (b - root) / a, (b + root) / a
    if sqrt:
        low = math.sqrt(max(low, 0.0)) if low > -math.inf else 0.0
        high = math.sqrt(high) if high >= 0.0 else math.nan
    return Interval(low, high, level, f"fieller ({method})")


def _replicates(f: _Facts) -> np.ndarray:
    assert f.replicates is not None
    return f.replicates


def _paired_facts(spec: LossSpec, st: PairedLoss, total_w: float, n: int,
                  method: str) -> _Facts:
    base, cand = st.base.value / total_w, st.cand.value / total_w
    delta = cand - base
    parts = [(st.diff, 1.0, 1.0)]
    s2, m3, scale = linearised_spread(parts, delta, total_w, 0)
    n_eff = effective_rows(parts, total_w, 0)
    weighted = st.diff.weighted
    df = variance_df(parts, n_eff) if weighted else n - 1.0
    se = math.ldexp(math.sqrt(s2 / n), scale) if s2 >= 0 else math.nan
    if method == "bootstrap":
        assert st.boot_base is not None and st.boot_cand is not None
        reps = st.boot_cand.replicates() - st.boot_base.replicates()
        finite = reps[np.isfinite(reps)]
        se = float(np.std(finite, ddof=1)) if finite.size > 1 else math.nan
        u = (reps - delta) / se if se > 0 else np.zeros_like(reps)
        return _Facts(base, cand, delta, se, 0.0, skew_statistic(delta, se, 0.0), df,
                      n_eff if weighted else None, u)
    k = estimator_skewness(s2, m3, n) if method == "johnson" else 0.0
    return _Facts(base, cand, delta, se, k, skew_statistic(delta, se, k), df,
                  n_eff if weighted else None)


def check_gates(result: Comparison, fail_if_worse: bool, require_not_worse: bool,
                tolerance: Any) -> list[CompareGate]:
    """Both gates read the printed interval of delta, two-sided (1 - alpha) and simultaneous
    over the losses, so the family-wise error stays at alpha: --fail-if-worse fails when its
    lower end exceeds the margin m (evidence of a regression beyond m); --require-not-worse
    passes only when its upper end is below m (non-inferiority). With --primary only the
    primary loss is gated."""
    gates = []
    for r in result.losses:
        if r.role == "secondary":
            continue
        if tolerance.relative and r.ratio_ci is not None:
            m, low, high = tolerance.amount, r.ratio_ci.low - 1.0, r.ratio_ci.high - 1.0
            if fail_if_worse:
                gates.append(CompareGate(r.spec, "fail_if_worse", m, low, bool(low <= m),
                                         relative=True))
            if require_not_worse:
                gates.append(CompareGate(r.spec, "require_not_worse", m, high, bool(high < m),
                                         relative=True))
            continue
        m = tolerance.amount * abs(r.baseline) if tolerance.relative else tolerance.amount
        if fail_if_worse:
            gates.append(CompareGate(r.spec, "fail_if_worse", m, r.ci.low,
                                     bool(r.ci.low <= m)))
        if require_not_worse:
            gates.append(CompareGate(r.spec, "require_not_worse", m, r.ci.high,
                                     bool(r.ci.high < m)))
    return gates
