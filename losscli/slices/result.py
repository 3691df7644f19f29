"""Slices finished: per slice and loss the value, its standard error and interval, the gap to
the overall value, the contribution to it, and the flag of a Welch test against the other rows
under Benjamini-Hochberg's false-discovery rate. Plain data; no formatting."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from losscli.slices.keys import NULL, OTHER, Encoder, Grouping, Key
from losscli.slices.state import TAIL_BUCKETS, TAIL_WIDTH, GroupState, combine, tail_value
from losscli.slices.stats import benjamini_hochberg, welch_greater
from losscli.spec import LossSpec
from losscli.state import Moments, RowMoments, linearised_spread
from losscli.uncertainty import (
    TAIL_MIN_ROWS,
    Interval,
    grouped_hill_tail_index,
    heavy_tail,
    tail_order,
)

DEFAULT_MAX_SLICES = 1000
DEFAULT_MIN_ROWS = 30
DEFAULT_TOP = 10
#: slices a state keeps exactly, as a multiple of --max-slices (and at least MIN_CAP)
CAP_FACTOR = 16
MIN_CAP = 4096


def memory_cap(max_slices: int) -> int:
    return max(CAP_FACTOR * max_slices, MIN_CAP)


@dataclass
class SliceOptions:
    """How slices are reported: the groupings, the (other) limit, the smallest slice tested or
    gated, the false-discovery rate, and how many slices a table shows (0: all)."""

    by: Sequence[str | Grouping] = ()
    max_slices: int = DEFAULT_MAX_SLICES
    min_rows: int = DEFAULT_MIN_ROWS
    alpha: float = 0.05
    top: int = DEFAULT_TOP


@dataclass
class SliceLoss:
    spec: str
    value: float
    se: float | None
    ci: Interval | None
    gap: float
    contribution: float
    #: "worse" when the test flags the slice, else None
    flag: str | None
    #: tested, too small, heavy-tailed (tail index below 2: no valid t-test), not tested
    #: ((other))
    status: str
    #: one-sided Welch p-value against the other rows, and its Benjamini-Hochberg q-value
    p: float | None = None
    q: float | None = None
    #: compare: the two models' values in the slice (``value`` is their difference)
    baseline: float | None = None
    candidate: float | None = None

    def to_dict(self) -> dict[str, Any]:
        d = {"spec": self.spec, "value": self.value, "se": self.se,
             "ci": None if self.ci is None else self.ci.to_dict(), "gap": self.gap,
             "contribution": self.contribution, "flag": self.flag, "status": self.status,
             "p": self.p, "q": self.q}
        if self.baseline is not None:
            d |= {"baseline": self.baseline, "candidate": self.candidate}
        return d


def key_text(value: Any) -> str:
    if value is None:
        return NULL
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@dataclass
class Slice:
    #: column -> value (None for null; a bin's label for binned columns); {} for (other)
    by: dict[str, Any]
    rows: int
    #: the slice's share of the total weight (of the rows, unweighted)
    weight: float
    losses: list[SliceLoss]
    other: bool = False

    @property
    def label(self) -> str:
        if self.other:
            return OTHER
        return ", ".join(f"{k}={key_text(v)}" for k, v in self.by.items())

    @property
    def values(self) -> str:
        """The key without column names: 'DE', 'DE, mobile'."""
        if self.other:
            return OTHER
        return ", ".join(key_text(v) for v in self.by.values())

    def loss(self, spec: str) -> SliceLoss | None:
        return next((x for x in self.losses if x.spec == spec), None)

    def to_dict(self) -> dict[str, Any]:
        return {"by": {k: key_text(v) if v is None else v for k, v in self.by.items()}
                if not self.other else {"(other)": True},
                "label": self.label, "rows": self.rows, "weight": self.weight,
                "losses": [x.to_dict() for x in self.losses]}


@dataclass
class SliceGroup:
    """The slices of one ``--by``, ranked by their contribution to the first loss (largest
    harm first)."""

    by: list[str]
    text: str
    slices: list[Slice]
    #: distinct keys seen and reported on their own
    values: int
    #: keys merged into (other) at the end for being the rarest past --max-slices
    merged: int
    #: more distinct keys than a state holds: keys were kept by hash, the rest in (other)
    sampled: bool
    #: binned columns: {"edges": [...], "from": "--by" or "the first N rows"}
    bins: dict[str, dict[str, Any]]
    min_rows: int
    alpha: float
    max_slices: int
    top: int
    rank_by: str | None
    #: losses without per-slice values (balanced class weights)
    unsliced: list[str] = field(default_factory=list)

    def tested(self, spec: str) -> int:
        return sum(1 for s in self.slices for x in s.losses
                   if x.spec == spec and x.status == "tested")

    def flagged(self, spec: str) -> list[Slice]:
        return [s for s in self.slices for x in s.losses if x.spec == spec and x.flag]

    def shown(self) -> list[Slice]:
        """The slices a table shows: the first --top (all with 0)."""
        return self.slices if self.top == 0 else self.slices[:self.top]

    def to_dict(self) -> dict[str, Any]:
        specs = [x.spec for x in self.slices[0].losses] if self.slices else []
        return {"by": self.by, "text": self.text, "values": self.values, "merged": self.merged,
                "sampled": self.sampled, "bins": self.bins, "min_rows": self.min_rows,
                "alpha": self.alpha, "max_slices": self.max_slices, "rank_by": self.rank_by,
                "test": "one-sided Welch t-test against the other rows, Benjamini-Hochberg "
                        "false-discovery rate over the slices tested",
                "tested": {s: self.tested(s) for s in specs},
                "flagged": {s: [x.label for x in self.flagged(s)] for s in specs},
                "unsliced": self.unsliced}


def _order(state: GroupState) -> list[int]:
    """Real keys by rows (most first), ties by the key's text: the order the rarest are cut
    from."""
    real = [i for i, k in enumerate(state.keys) if k is not None]
    return sorted(real, key=lambda i: (-int(state.rows[i]), repr(state.keys[i])))


def _row_moments(d: np.ndarray, n: int, k: int, weighted: bool, scale: int,
                 low: float, skew: bool = True) -> RowMoments:
    """A slice's moments as the overall interval's code takes them; ``low`` is a lower bound of
    its per-row values (0 for a non-negative loss: the interval is then held >= 0); without
    ``skew`` the third moments were not summed."""
    if not weighted:
        return RowMoments(False, skew, n, Moments(3, n, float(d[2, k]), float(d[3, k]),
                                                  float(d[4, k])), low=low)
    return RowMoments(True, skew, n, Moments(3), scale,
                      Moments(2, float(d[2, k]), float(d[3, k]), float(d[4, k])),  # type: ignore[arg-type]
                      Moments(3, float(d[5, k]), float(d[6, k]), float(d[7, k]), float(d[8, k])),  # type: ignore[arg-type]
                      low=low, w4=float(d[9, k]))


def tail_indices(state: GroupState, hist: int, spec: LossSpec,
                 residual: bool) -> tuple[np.ndarray, np.ndarray, float, int]:
    """The tail index of a loss in each slice and over all rows, by the rule of the overall
    warning (engine._tail_index): Hill's estimate from the largest sqrt(n) values (10 to
    1,000), the larger of it and the estimate from half as many (a cluster of outliers is not
    a tail), from the slices' histogram ``hist``; for a histogram of the residual |e| divided
    by 1 + the power with which the loss's gradient grows in |e| at the largest |e| (1 for
    mse, 0 for mae). Returns (each slice's index, NaN where not estimated: under
    TAIL_MIN_ROWS rows, or no threshold inside the histogram's window; each slice's rows
    counted; the index over all rows; their count)."""
    counts = state.tails[hist]
    top = state.tops[hist]
    slices = counts.shape[1]
    if top is None:
        return np.full(slices, math.nan), np.zeros(slices, dtype=np.int64), math.nan, 0
    cols = np.concatenate([counts, counts.sum(axis=1, keepdims=True)], axis=1)
    n = cols.sum(axis=0)
    want = np.array([tail_order(int(x)) for x in n])
    desc = cols[::-1]
    alpha, _ = grouped_hill_tail_index(desc, TAIL_WIDTH, want)
    half, _ = grouped_hill_tail_index(desc, TAIL_WIDTH, np.maximum(5, want // 2))
    alpha = np.where(np.isnan(alpha) | np.isnan(half), alpha, np.maximum(alpha, half))
    alpha[n < TAIL_MIN_ROWS] = math.nan
    single = spec.single
    if residual and single is not None and single.abs_grad_of_abs_residual is not None:
        highest = TAIL_BUCKETS - 1 - np.argmax(desc > 0, axis=0)
        for j in np.flatnonzero(~np.isnan(alpha)):
            alpha[j] /= spec.residual_power(tail_value(top - TAIL_BUCKETS + 1 + int(highest[j])))
    return alpha[:-1], n[:-1], float(alpha[-1]), int(n[-1])


def heavy_slices(state: GroupState, hist: int, spec: LossSpec, residual: bool) -> np.ndarray:
    """Which slices are too heavy-tailed for a t-test: the rule of the overall warning
    (heavy_tail: a tail index below 2 beyond its sampling error) on the slice's own rows; a
    slice without an estimate of its own (fewer than TAIL_MIN_ROWS rows) takes the verdict on
    all the grouping's rows."""
    alpha, n, pooled, total = tail_indices(state, hist, spec, residual)
    everywhere = not math.isnan(pooled) and heavy_tail(pooled, tail_order(total))
    return np.array([heavy_tail(float(a), tail_order(int(m))) if not math.isnan(a)
                     else everywhere for a, m in zip(alpha, n, strict=True)], dtype=bool)


def slicer_skew(method: str) -> bool:
    """Whether the slices' intervals read their skewness under ``--ci method``: johnson, and
    the bootstrap methods (which fall back to johnson per slice); not t or none."""
    return method not in ("t", "none")


def finish(state: GroupState, grouping: Grouping, encoder: Encoder,
           specs: Sequence[tuple[int, LossSpec]], overall: Mapping[str, float],
           ci: Any, opts: SliceOptions, edges_from: Mapping[str, str],
           input_weighted: bool = False, paired: bool = False,
           uncertainty: Any = None, tail_of: Sequence[int] = (),
           tail_inputs: Sequence[int] = ()) -> SliceGroup:
    """A grouping's slices from its merged state. ``specs`` are (measure index, spec) of the
    losses reported; ``overall`` their overall values; ``ci`` the run's interval options
    (engine.CiOptions).

    ``paired`` (compare): each measure is the per-row difference d = l_cand - l_base with the
    baseline's sum kept beside it; a slice's value is its mean difference with the paired
    interval, and its flag ``regressed`` tests the mean d > 0 in the slice (a one-sample t-test,
    Benjamini-Hochberg over the slices) instead of the slice against the other rows.
    ``uncertainty`` is the engine's standard error and interval of a mean (engine._uncertainty:
    the slices use the overall figures' code). ``tail_of`` and ``tail_inputs`` say which tail
    histogram of the state each measure reads and what it counts (slices.fold.tail_sources): a
    slice is listed as heavy-tailed, not tested, by the rule of the overall heavy-tail warning
    (:func:`heavy_slices`)."""
    from dataclasses import replace

    order = _order(state)
    merged = max(0, len(order) - opts.max_slices)
    sampled = state.threshold is not None
    if merged:
        state.send_to_other(order[opts.max_slices:])
    keys = state.keys
    n = state.rows.astype(np.float64)
    total_rows = float(n.sum())
    weighted = state.weighted
    exp = state.scale if weighted else 0
    if input_weighted:
        wsum = state.data[-1][0]
        share = wsum / wsum.sum() if wsum.sum() > 0 else np.zeros_like(wsum)
    else:
        share = n / total_rows if total_rows else np.zeros_like(n)
    method = ci.method if ci.enabled and ci.method in ("johnson", "t") else "johnson"
    use_ci = replace(ci, method=method)
    skew = slicer_skew(ci.method)  # the slices' third moments were summed
    other = np.array([k is None for k in keys])
    per_loss: list[list[SliceLoss]] = []
    for index, spec in specs:
        d = state.data[index]
        w, s = d[0], d[1]
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(w > 0, s / np.where(w > 0, w, 1.0), math.nan)
        sqrt = spec.single is not None and spec.single.reduce == "sqrt" and not paired
        value = np.sqrt(mean) if sqrt else mean
        L = overall[spec.spec]
        tot = combine(d, weighted)
        if weighted:
            v2, mean2, m2 = d[2], d[3], d[4]
            v2_t, mean2_t, m2_t = tot[2], tot[3], tot[4]
        else:
            v2, mean2, m2 = d[0], d[2], d[3]
            v2_t, mean2_t, m2_t = tot[0], tot[2], tot[3]
        w_t, s_t = tot[0], tot[1]
        with np.errstate(invalid="ignore", divide="ignore"):
            w_r = w_t - w
            mean_r = (s_t - s) / w_r
            n_r = total_rows - n
            q_s = m2 + v2 * (mean2 - mean) ** 2
            q_r = np.maximum((m2_t + v2_t * (mean2_t - mean_r) ** 2)
                             - (m2 + v2 * (mean2 - mean_r) ** 2), 0.0)
            se2_s = n / (n - 1) * q_s / (w * w)
            se2_r = n_r / (n_r - 1) * q_r / (w_r * w_r)
            if weighted:  # the weighted variances' degrees of freedom (state.variance_df)
                v4, v4_t = d[9], tot[9]
                df_s = v2 * v2 / v4 - 1.0
                df_r = (v2_t - v2) ** 2 / (v4_t - v4) - 1.0
            else:
                df_s, df_r = n - 1.0, n_r - 1.0
        if paired:  # against zero: the slice's own mean difference
            mean_r, se2_r, df_r = (np.zeros_like(mean), np.zeros_like(mean),
                                   np.full_like(mean, math.inf))
        # the loss's own range: a non-negative loss's slices get intervals >= 0, as its overall
        # one (a difference of two models' losses, compare, has no such bound)
        low = 0.0 if spec.non_negative and not paired else -math.inf
        if index < len(tail_of) and state.tails:
            hist = tail_of[index]
            heavy = heavy_slices(state, hist, spec, tail_inputs[hist] < 0)
        else:
            heavy = np.zeros(len(keys), dtype=bool)
        results: list[SliceLoss] = []
        status: list[str] = []
        for k, key in enumerate(keys):
            rows = int(state.rows[k])
            rm = _row_moments(d, rows, k, weighted, state.scale, low, skew)
            parts = [(rm, 1.0, 1.0)]
            se, interval = uncertainty(parts, rows, float(w[k]), exp, float(mean[k]), sqrt,
                                       use_ci)
            # scaled by 2^-2j (j unused): the test below is scale-free
            s2, _, _ = linearised_spread(parts, float(mean[k]), float(w[k]), exp)
            if key is None:
                st = "not tested"
            elif rows < opts.min_rows:
                st = "too small"
            elif not (s2 > 0) or not math.isfinite(se2_r[k]) or (n_r[k] < 2 and not paired):
                st = "no variance"
            elif heavy[k]:
                st = "heavy-tailed"
            else:
                st = "tested"
            status.append(st)
            v = float(value[k])
            results.append(SliceLoss(spec.spec, v, se, interval if ci.enabled else None,
                                     v - L, float(share[k]) * (v - L), None, st))
        tested = np.array([x == "tested" for x in status])
        _, _, p = welch_greater(mean, se2_s, df_s, mean_r, se2_r, df_r)
        p = np.where(tested, p, math.nan)
        rejected, q = benjamini_hochberg(p, opts.alpha)
        for k, r in enumerate(results):
            if tested[k]:
                r.p, r.q = float(p[k]), float(q[k])
                r.flag = ("regressed" if paired else "worse") if rejected[k] else None
        if paired:
            _paired_values(results, d, w, spec, overall[spec.spec], share)
        per_loss.append(results)
    slices = []
    for k, key in enumerate(keys):
        by = {} if key is None else dict(zip(grouping.names, key, strict=True))
        slices.append(Slice(by, int(state.rows[k]), float(share[k]),
                            [losses[k] for losses in per_loss], bool(other[k])))
    rank_by = specs[0][1].spec if specs else None
    if rank_by is not None:
        def harm(s: Slice) -> tuple[float, int, str]:
            c = s.losses[0].contribution
            return (-c if math.isfinite(c) else math.inf, -s.rows, repr(s.by))
        slices.sort(key=harm)
    given = {c.column for c in grouping.columns if c.edges is not None}
    bins = {name: {"edges": list(e),
                   "from": "--by" if name in given else edges_from.get(name, "--by")}
            for name, e in encoder.edges.items()}
    return SliceGroup(grouping.names, grouping.text, slices,
                      sum(1 for k in keys if k is not None), merged, sampled, bins,
                      opts.min_rows, opts.alpha, opts.max_slices, opts.top, rank_by)


def _paired_values(results: list[SliceLoss], d: np.ndarray, w: np.ndarray, spec: LossSpec,
                   overall: float, share: np.ndarray) -> None:
    """Each slice's baseline and candidate values from the baseline's sum (the row after the
    moments) and the mean difference; rmse's difference is (mse_c - mse_b) / (rmse_c +
    rmse_b), its SE and interval scaled by the same factor (as compare's overall)."""
    from dataclasses import replace

    base_row = d.shape[0] - 1
    sqrt = spec.single is not None and spec.single.reduce == "sqrt"
    for k, r in enumerate(results):
        base = float(d[base_row, k] / w[k]) if w[k] > 0 else math.nan
        cand = base + r.value
        if sqrt:
            rb, rc = math.sqrt(max(base, 0.0)), math.sqrt(max(cand, 0.0))
            f = 1.0 / (rb + rc) if rb + rc > 0 else math.nan
            r.value, base, cand = rc - rb, rb, rc
            r.se = None if r.se is None else r.se * f
            if r.ci is not None:
                r.ci = replace(r.ci, low=r.ci.low * f, high=r.ci.high * f)
        r.baseline, r.candidate = base, cand
        r.gap = r.value - overall
        r.contribution = float(share[k]) * r.gap


def key_of(slice_: Slice) -> Key | None:
    return None if slice_.other else tuple(slice_.by.values())
