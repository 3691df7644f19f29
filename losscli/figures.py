"""The accumulators behind the report's figures: bounded, mergeable, no rows kept.

Each has ``empty()``, ``update(...)`` and ``merge(later)`` (associative, a fresh instance its
identity). Counts are Python or int64 integers, so they are exact and do not depend on how the
rows were cut; the float sums (probabilities, per-class losses) are :class:`ExactSum`, rounded
only inside a chunk. Figures count rows: sample weights do not enter them.

``finish`` turns a state into :class:`FigureData`, plain arrays that render/plots.py draws.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from losscli.losses import Batch, sigmoid
from losscli.state import (
    _SHIFT,
    ExactSum,
    LogHistogram,
    SignedHistogram,
    bucket_value,
    inverted_cdf,
)

#: Bins of the reliability diagram: scikit-learn's calibration_curve default (uniform).
CALIBRATION_BINS = 10
#: Bins of the predicted-probability histogram on [0, 1].
PROB_BINS = 20
#: At most this many cells per axis in the predicted-vs-actual histogram.
GRID_CELLS = 64
#: Display bins per octave of the symmetric-log histograms (an edge every 2**(1/4)).
SYMLOG_PER_OCTAVE = 4
#: The outlier cut of the residual figure: |e - median| > OUTLIER_Z x 1.4826 MAD (Iglewicz &
#: Hoaglin's modified z-score, as recommend uses).
OUTLIER_Z = 3.5
MAD_TO_SIGMA = 1.4826


# --- accumulators -------------------------------------------------------------------------------


def on_grid(x: np.ndarray) -> np.ndarray:
    """The largest log-bucket boundary <= x (x > 0): edges on it split no bucket."""
    bits = np.ascontiguousarray(x, dtype=np.float64).view(np.int64)
    return ((bits >> _SHIFT) << _SHIFT).view(np.float64)


def log_counts(hist: LogHistogram, edges: np.ndarray) -> np.ndarray:
    """Exact counts of the values in [edges[i], edges[i+1]) for ascending positive edges on the
    bucket grid (:func:`on_grid`); values below edges[0] or past edges[-1] are not counted."""
    nz = np.nonzero(hist.counts)[0]
    lows = ((nz + hist.offset).astype(np.int64) << _SHIFT).view(np.float64)
    idx = np.searchsorted(edges, lows, side="right") - 1
    keep = (idx >= 0) & (idx < edges.size - 1)
    out = np.zeros(edges.size - 1, dtype=np.int64)
    np.add.at(out, idx[keep], hist.counts[nz][keep])
    return out


def _pow2_floor(x: np.ndarray, exp: int) -> np.ndarray:
    """floor(x / 2**exp), integers as floats (exact: a product by a power of two, or ldexp
    where 2**-exp is not a normal float)."""
    scaled = x * math.ldexp(1.0, -exp) if -1000 <= exp <= 1000 else np.ldexp(x, -exp)
    return np.floor(scaled, out=scaled)


def _pow2_key(v: float, exp: int) -> int:
    return math.floor(math.ldexp(v, -exp))


def _span_fits(lo: float, hi: float, exp: int, cells: int) -> bool:
    return math.floor(math.ldexp(hi, -exp)) - math.floor(math.ldexp(lo, -exp)) < cells


def _floor_exp(top: float) -> int:
    """The smallest cell exponent allowed for values up to ``top`` in size: keys stay below
    2**53, so they are exact integers."""
    return max(math.frexp(top)[1] - 52, -1074) if top > 0 else -1074


@dataclass
class GridHistogram2D:
    """Counts of (x, y) pairs in square cells of side 2**exp aligned on multiples of it.

    The side is the smallest power of two that fits every pair seen in ``cells`` cells per axis
    (and keeps keys exact): a function of the data's range alone, so any chunking reaches the
    same side; coarsening halves keys (floor(floor(x/w)/2) = floor(x/2w)), so counts stay exact.
    """

    cells: int = GRID_CELLS
    exp: int | None = None
    x0: int = 0
    y0: int = 0
    counts: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.int64))

    def empty(self) -> GridHistogram2D:
        return GridHistogram2D(self.cells)

    def update(self, x: np.ndarray, y: np.ndarray) -> None:
        """Add pairs of finite values."""
        if x.size == 0:
            return
        xlo, xhi, ylo, yhi = float(x.min()), float(x.max()), float(y.min()), float(y.max())
        lowest = _floor_exp(max(-xlo, xhi, -ylo, yhi))

        def fits(e: int) -> bool:
            return (_span_fits(xlo, xhi, e, self.cells)
                    and _span_fits(ylo, yhi, e, self.cells))

        spread = max(xhi - xlo, yhi - ylo)
        exp = max(lowest, math.frexp(spread / (self.cells - 1))[1] - 1 if spread > 0 else lowest)
        while not fits(exp):
            exp += 1
        while exp > lowest and fits(exp - 1):  # the smallest side that fits
            exp -= 1
        x0, y0 = _pow2_key(xlo, exp), _pow2_key(ylo, exp)
        ny = _pow2_key(yhi, exp) - y0 + 1
        nx = _pow2_key(xhi, exp) - x0 + 1
        # the cell index (kx - x0) ny + (ky - y0), in floats (exact integers below 2**53)
        fx, fy = _pow2_floor(x, exp), _pow2_floor(y, exp)
        fx -= x0
        fx *= ny
        fy -= y0
        fx += fy
        flat = np.bincount(fx.astype(np.intp), minlength=nx * ny)
        self.merge(GridHistogram2D(self.cells, exp, x0, y0, flat.reshape(nx, ny)))

    def _coarsen(self, exp: int) -> None:
        assert self.exp is not None
        d = exp - self.exp
        if d <= 0:
            return
        nx, ny = self.counts.shape
        kx = (np.arange(nx) + self.x0) >> d
        ky = (np.arange(ny) + self.y0) >> d
        x0, y0 = int(kx[0]), int(ky[0])
        out = np.zeros((int(kx[-1]) - x0 + 1, int(ky[-1]) - y0 + 1), dtype=np.int64)
        np.add.at(out, (np.repeat(kx - x0, ny), np.tile(ky - y0, nx)), self.counts.ravel())
        self.exp, self.x0, self.y0, self.counts = exp, x0, y0, out

    def merge(self, later: GridHistogram2D) -> None:
        if later.exp is None:
            return
        if self.exp is None:
            self.exp, self.x0, self.y0 = later.exp, later.x0, later.y0
            self.counts = later.counts.copy()
            return
        other = GridHistogram2D(later.cells, later.exp, later.x0, later.y0, later.counts)
        exp: int = max(self.exp, later.exp)
        while True:
            self._coarsen(exp)
            other._coarsen(exp)
            x0, y0 = min(self.x0, other.x0), min(self.y0, other.y0)
            x1 = max(self.x0 + self.counts.shape[0], other.x0 + other.counts.shape[0])
            y1 = max(self.y0 + self.counts.shape[1], other.y0 + other.counts.shape[1])
            if x1 - x0 <= self.cells and y1 - y0 <= self.cells:
                break
            exp += 1
        out = np.zeros((x1 - x0, y1 - y0), dtype=np.int64)
        for h in (self, other):
            out[h.x0 - x0:h.x0 - x0 + h.counts.shape[0],
                h.y0 - y0:h.y0 - y0 + h.counts.shape[1]] += h.counts
        self.x0, self.y0, self.counts = x0, y0, out

    def edges(self) -> tuple[np.ndarray, np.ndarray]:
        """The cell edges along x and y (exact multiples of the side)."""
        assert self.exp is not None
        nx, ny = self.counts.shape
        return (np.ldexp(np.arange(self.x0, self.x0 + nx + 1, dtype=np.float64), self.exp),
                np.ldexp(np.arange(self.y0, self.y0 + ny + 1, dtype=np.float64), self.exp))


@dataclass
class CalibrationBins:
    """Reliability-diagram sums: per bin of predicted probability the row count, the count of
    positives and the sum of p. Bins as scikit-learn's ``calibration_curve`` (uniform, a value
    on an inner edge in the lower bin)."""

    bins: int = CALIBRATION_BINS
    count: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    positive: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    prob: list[ExactSum] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.count.size:
            self.count = np.zeros(self.bins, dtype=np.int64)
            self.positive = np.zeros(self.bins, dtype=np.int64)
            self.prob = [ExactSum() for _ in range(self.bins)]

    def empty(self) -> CalibrationBins:
        return CalibrationBins(self.bins)

    def update(self, p: np.ndarray, y: np.ndarray) -> None:
        """Add probabilities p in [0, 1] of rows with target y in {0, 1}."""
        edges = np.linspace(0.0, 1.0, self.bins + 1)
        ids = np.searchsorted(edges[1:-1], p)
        self.count += np.bincount(ids, minlength=self.bins)
        self.positive += np.bincount(ids[y == 1.0], minlength=self.bins)
        sums = np.bincount(ids, weights=p, minlength=self.bins)
        for s, v in zip(self.prob, sums, strict=True):
            s.add(float(v))

    def merge(self, later: CalibrationBins) -> None:
        self.count += later.count
        self.positive += later.positive
        for a, b in zip(self.prob, later.prob, strict=True):
            a.merge(b)

    def result(self) -> dict[str, Any]:
        """Mean p and observed rate of the non-empty bins, and the expected calibration error
        sum_b n_b / n |rate_b - mean p_b| (with the maximum one)."""
        keep = self.count > 0
        n = int(self.count.sum())
        mean_p = np.array([s.value for s in self.prob])[keep] / self.count[keep]
        rate = self.positive[keep] / self.count[keep]
        gap = np.abs(rate - mean_p)
        ece = math.fsum(c * g for c, g in zip(self.count[keep], gap, strict=True)) / n if n \
            else math.nan
        return {"bins": self.bins, "strategy": "uniform",
                "edges": np.linspace(0.0, 1.0, self.bins + 1).tolist(),
                "count": self.count.tolist(), "positive": self.positive.tolist(),
                "mean_predicted": mean_p.tolist(), "observed_rate": rate.tolist(),
                "ece": ece, "max_error": float(gap.max()) if gap.size else math.nan}


@dataclass
class ClassHistograms:
    """Counts of a value in uniform bins on [lo, hi] (np.histogram's: the last bin closed), one
    row per class of the target."""

    classes: int = 2
    bins: int = PROB_BINS
    lo: float = 0.0
    hi: float = 1.0
    counts: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.int64))

    def __post_init__(self) -> None:
        if not self.counts.size:
            self.counts = np.zeros((self.classes, self.bins), dtype=np.int64)

    def empty(self) -> ClassHistograms:
        return ClassHistograms(self.classes, self.bins, self.lo, self.hi)

    @property
    def edges(self) -> np.ndarray:
        return np.linspace(self.lo, self.hi, self.bins + 1)

    def update(self, v: np.ndarray, y: np.ndarray) -> None:
        """Add values v in [lo, hi] of rows of class y (0..classes-1)."""
        ids = np.searchsorted(self.edges, v, side="right") - 1
        np.minimum(ids, self.bins - 1, out=ids)
        flat = np.bincount(y.astype(np.intp) * self.bins + ids,
                           minlength=self.classes * self.bins)
        self.counts += flat.reshape(self.classes, self.bins)

    def merge(self, later: ClassHistograms) -> None:
        self.counts += later.counts


@dataclass
class Confusion:
    """Counts of (true class, predicted class = the argmax of the row)."""

    classes: int
    counts: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.int64))

    def __post_init__(self) -> None:
        if not self.counts.size:
            self.counts = np.zeros((self.classes, self.classes), dtype=np.int64)

    def empty(self) -> Confusion:
        return Confusion(self.classes)

    def update(self, scores: np.ndarray, y: np.ndarray) -> None:
        """Add rows of class-major scores (k, n), probabilities or logits alike."""
        k = self.classes
        flat = np.bincount(y.astype(np.intp) * k + np.argmax(scores, axis=0), minlength=k * k)
        self.counts += flat.reshape(k, k)

    def merge(self, later: Confusion) -> None:
        self.counts += later.counts


@dataclass
class ClassLoss:
    """Per class of the target: rows and the sum of a per-row loss."""

    classes: int
    rows: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    sums: list[ExactSum] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.rows.size:
            self.rows = np.zeros(self.classes, dtype=np.int64)
            self.sums = [ExactSum() for _ in range(self.classes)]

    def empty(self) -> ClassLoss:
        return ClassLoss(self.classes)

    def update(self, y: np.ndarray, values: np.ndarray) -> None:
        ids = y.astype(np.intp)
        self.rows += np.bincount(ids, minlength=self.classes)
        for s, v in zip(self.sums, np.bincount(ids, weights=values, minlength=self.classes),
                        strict=True):
            s.add(float(v))

    def merge(self, later: ClassLoss) -> None:
        self.rows += later.rows
        for a, b in zip(self.sums, later.sums, strict=True):
            a.merge(b)

    def means(self) -> np.ndarray:
        """The mean loss of each class (NaN for a class without rows)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.array([s.value for s in self.sums]) / self.rows


def _signed_copy(h: SignedHistogram) -> SignedHistogram:
    out = SignedHistogram()
    out.merge(h)
    return out


# --- the state of a command ---------------------------------------------------------------------


@dataclass
class FigureState:
    """The figure accumulators of one run, chosen by the task: a member of the command's state
    (EvalState, PairedState, recommend's pass), created only when figures are asked for.

    ``task`` is regression, counts, binary, multiclass, or ``auto`` (recommend's pass, before
    the task is known: the residual figures always, the binary ones unless a row rules them
    out). ``losses`` is how many per-loss accumulators (per-class loss, compare's per-row
    differences) to keep.
    """

    task: str
    classes: int = 0
    losses: int = 0
    logits: bool = False
    #: compare: per-row loss differences, one histogram per loss (no other figure)
    paired: bool = False
    residual: SignedHistogram | None = None
    pred_actual: GridHistogram2D | None = None
    calibration: CalibrationBins | None = None
    prob: ClassHistograms | None = None
    confusion: Confusion | None = None
    class_loss: list[ClassLoss] | None = None
    diffs: list[SignedHistogram] | None = None
    #: a row was not binary (recommend's ``auto``): the binary figures are left out
    not_binary: bool = False

    def __post_init__(self) -> None:
        if self.paired:
            if self.diffs is None:
                self.diffs = [SignedHistogram() for _ in range(self.losses)]
            return
        regression = self.task in ("regression", "counts", "auto")
        if regression and self.residual is None:
            self.residual = SignedHistogram()
            self.pred_actual = GridHistogram2D()
        if self.task in ("binary", "auto") and self.calibration is None:
            self.calibration = CalibrationBins()
            self.prob = ClassHistograms(2)
        if self.task == "multiclass" and self.confusion is None:
            self.confusion = Confusion(self.classes)
            self.class_loss = [ClassLoss(self.classes) for _ in range(self.losses)]

    def empty(self) -> FigureState:
        return FigureState(self.task, self.classes, self.losses, self.logits, self.paired)

    def update(self, batch: Batch, abs_residuals: LogHistogram | None = None) -> bool:
        """Add one chunk of validated rows (sample weights are not used). ``abs_residuals``,
        a histogram of |e|, is filled with the residual figure's keys (one pass for both);
        returns whether it was."""
        if batch.n == 0 or self.paired:
            return False
        p, y = batch.pred, batch.target
        shared = False
        if self.residual is not None and self.pred_actual is not None and p.ndim == 1:
            self.residual.update(batch.residual(), batch.abs_residual(), abs_residuals)
            shared = abs_residuals is not None
            self.pred_actual.update(p, y)
        if self.calibration is not None and self.prob is not None and not self.not_binary:
            prob = sigmoid(p) if self.logits else p
            if self.task == "auto" and not (
                    np.all((y == 0.0) | (y == 1.0)) and (
                        self.logits or np.all((prob >= 0.0) & (prob <= 1.0)))):
                self.not_binary = True
            else:
                self.calibration.update(prob, y)
                self.prob.update(prob, y)
        if self.confusion is not None:
            self.confusion.update(p, y)
        return shared

    def update_loss(self, index: int, y: np.ndarray, values: np.ndarray) -> None:
        """The per-row values of loss ``index`` (per-class loss)."""
        if self.class_loss is not None:
            self.class_loss[index].update(y, values)

    def update_diff(self, index: int, d: np.ndarray) -> None:
        """compare: the per-row loss differences (candidate - baseline) of loss ``index``."""
        if self.diffs is not None:
            self.diffs[index].update(d)

    def merge(self, later: FigureState) -> None:
        for name in ("residual", "pred_actual", "calibration", "prob", "confusion"):
            mine, theirs = getattr(self, name), getattr(later, name)
            if mine is not None and theirs is not None:
                mine.merge(theirs)
        if self.class_loss is not None and later.class_loss is not None:
            for a, b in zip(self.class_loss, later.class_loss, strict=True):
                a.merge(b)
        if self.diffs is not None and later.diffs is not None:
            for d, e in zip(self.diffs, later.diffs, strict=True):
                d.merge(e)
        self.not_binary = self.not_binary or later.not_binary


# --- finished data -----------------------------------------------------------------------------


@dataclass
class SymlogBins:
    """A signed histogram re-binned for a symmetric-log axis: exact counts of values in
    (-edges[i+1], -edges[i]] (``negative``), [edges[i], edges[i+1]) (``positive``) and of
    |x| < edges[0] (``centre``, which is also the linear threshold of the axis)."""

    edges: np.ndarray
    negative: np.ndarray
    positive: np.ndarray
    centre: int
    median: float
    #: outlier cut lines: median -+ OUTLIER_Z x 1.4826 MAD (NaN when the MAD is 0)
    cuts: tuple[float, float]
    n: int

    def to_dict(self) -> dict[str, Any]:
        return {"edges": self.edges.tolist(), "negative": self.negative.tolist(),
                "positive": self.positive.tolist(), "centre": self.centre,
                "median": self.median, "cuts": list(self.cuts), "n": self.n}


def symlog_bins(h: SignedHistogram, per_octave: int | None = None) -> SymlogBins:
    """Display bins of a signed histogram: edges every 2**(1/per_octave) (moved onto the
    bucket grid) from about the 2nd percentile of |x| to past the largest |x|; by default
    SYMLOG_PER_OCTAVE, half as many below 10,000 rows."""
    values, counts = h.signed_buckets()
    n = int(counts.sum())
    if per_octave is None:
        per_octave = SYMLOG_PER_OCTAVE if n >= 10_000 else SYMLOG_PER_OCTAVE // 2
    mags = np.abs(values)
    order = np.argsort(mags, kind="stable")
    top = float(mags.max()) if n else 0.0
    low = inverted_cdf(mags[order], counts[order], 0.02) if n else 0.0
    if not low > 0.0:
        positive = mags[mags > 0.0]
        low = float(positive.min()) if positive.size else 1.0
    top = max(top, low)
    j0 = math.floor(math.log2(low) * per_octave)
    j1 = math.ceil(math.log2(top * (1 + 2.0 ** -6)) * per_octave) + 1
    edges = np.unique(on_grid(np.exp2(np.arange(j0, j1 + 1) / per_octave)))
    pos = log_counts(h.pos, edges)
    neg = log_counts(h.neg, edges)
    centre = n - int(pos.sum()) - int(neg.sum())
    med, cuts = _median_cuts(values, counts)
    return SymlogBins(edges, neg, pos, centre, med, cuts, n)


def _median_cuts(values: np.ndarray, counts: np.ndarray) -> tuple[float, tuple[float, float]]:
    """The median and the outlier cuts of bucketed values (within the buckets' 0.4%)."""
    if not counts.size or counts.sum() == 0:
        return math.nan, (math.nan, math.nan)
    med = inverted_cdf(values, counts, 0.5)
    dev = np.abs(values - med)
    order = np.argsort(dev, kind="stable")
    mad = inverted_cdf(dev[order], counts[order], 0.5)
    if not mad > 0.0:
        return med, (math.nan, math.nan)
    cut = OUTLIER_Z * MAD_TO_SIGMA * mad
    return med, (med - cut, med + cut)


@dataclass
class GradientBuckets:
    """|g| of one loss: log-bucket values and counts, with the reported quantiles."""

    spec: str
    values: np.ndarray
    counts: np.ndarray
    p50: float
    p90: float
    p99: float


@dataclass
class FigureData:
    """Everything the figures show, as plain arrays (no state, no drawing)."""

    task: str
    rows: int = 0
    residual: SymlogBins | None = None
    pred_actual: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
    gradients: list[GradientBuckets] = field(default_factory=list)
    calibration: dict[str, Any] | None = None
    prob_edges: np.ndarray | None = None
    prob_counts: np.ndarray | None = None
    labels: list[str] = field(default_factory=list)
    confusion: np.ndarray | None = None
    class_loss: list[tuple[str, np.ndarray, np.ndarray]] = field(default_factory=list)
    diffs: list[tuple[str, SymlogBins]] = field(default_factory=list)


def finish(state: FigureState, specs: Sequence[str], labels: Sequence[str] = ()) -> FigureData:
    """The figures' data from a state; ``specs`` name the losses (per-class loss, diffs)."""
    data = FigureData(state.task, labels=list(labels))
    if state.residual is not None and state.residual.pos.n + state.residual.neg.n:
        data.residual = symlog_bins(state.residual)
        data.rows = data.residual.n
    pa = state.pred_actual
    if pa is not None and pa.exp is not None:
        ex, ey = pa.edges()
        data.pred_actual = (ex, ey, pa.counts)
    cal = state.calibration
    if cal is not None and not state.not_binary and int(cal.count.sum()):
        data.calibration = cal.result()
        assert state.prob is not None
        data.prob_edges, data.prob_counts = state.prob.edges, state.prob.counts
        data.rows = int(cal.count.sum())
    if state.confusion is not None:
        data.confusion = state.confusion.counts
        data.rows = int(state.confusion.counts.sum())
        if not data.labels:
            data.labels = [str(i) for i in range(state.classes)]
    if state.class_loss is not None:
        data.class_loss = [(s, cl.means(), cl.rows)
                           for s, cl in zip(specs, state.class_loss, strict=False)]
    if state.diffs is not None:
        data.diffs = [(s, symlog_bins(h)) for s, h in zip(specs, state.diffs, strict=False)
                      if h.pos.n + h.neg.n]
    return data


def gradient_buckets(spec: str, hist: LogHistogram, quantiles: tuple[float, float, float],
                     fn: Any = None, scale: float = 1.0) -> GradientBuckets:
    """|g| buckets of a loss from its histogram: of |g| itself, or of |e| mapped through the
    loss's |g| = fn(|e|) (the shared residual histogram), times ``scale``."""
    values, counts = hist.buckets()
    if fn is not None:
        values = np.array([fn(float(v)) for v in values], dtype=np.float64)
    return GradientBuckets(spec, values * scale, counts, *quantiles)


__all__ = ["CalibrationBins", "ClassHistograms", "ClassLoss", "Confusion", "FigureData",
           "FigureState", "GridHistogram2D", "bucket_value", "finish", "symlog_bins"]
