"""Check a loss's declared per-row gradient against finite differences of its values.

The reference is the mean of the two one-sided differences, each of second order (exact for a
quadratic on its side, so a jump of the curvature alone, huber at |e| = delta, is no kink) and
Richardson-extrapolated over the steps h and h/2: its truncation error is O(h^3), so a step of
1e-5 keeps it below the rounding error even where the loss is steep. Points where the
one-sided differences disagree (a kink: e = 0 for mae and quantile) have no derivative to check
and are skipped and counted; so are grid points outside the loss's domain. The error of a row
is |g - fd| / max(|fd|, atol). For multiclass, a gradient given per class is compared per
class; a row statistic (the built-in cce's row L2 norm) with the norm of the finite-difference
row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from losscli.errors import UsageError
from losscli.losses import Batch, LossDef, Params

#: Relative step: h = STEP x max(1, |x|) (logits, regression), STEP x min(p, 1 - p) for
#: probabilities, so that x +- h stays inside (0, 1).
STEP = 1e-5
#: The two one-sided differences agree to O(h^2) for a smooth loss; further apart than this
#: (relative to the slope) means a kink within h of the point, which is then skipped (a kink
#: that is not flagged moves their mean by less than this).
KINK_RTOL = 1e-7
RTOL = 1e-6
#: Gradients smaller than this are compared absolutely (tolerance rtol x atol): a finite
#: difference of a loss near its minimum is only accurate to eps |l| / h.
ATOL = 1e-3


@dataclass
class Worst:
    """The largest error of one part (the grid or the data) and where it occurred."""

    label: str
    points: int = 0
    skipped_kinks: int = 0
    skipped_domain: int = 0
    error: float = 0.0
    where: str = "-"

    def offer(self, err: np.ndarray) -> int:
        """Take the worst of ``err`` (NaN where skipped); returns its index or -1."""
        if err.size == 0 or np.all(np.isnan(err)):
            return -1
        i = int(np.nanargmax(err))
        if float(err[i]) > self.error or self.where == "-":
            self.error = float(err[i])
            return i
        return -1


@dataclass
class CheckResult:
    loss: str
    origin: str
    logits: bool
    rtol: float
    atol: float
    parts: list[Worst] = field(default_factory=list)

    @property
    def worst(self) -> Worst:
        return max(self.parts, key=lambda w: w.error)

    @property
    def passed(self) -> bool:
        """Every error within rtol, and at least one point checked."""
        return (all(w.error <= self.rtol for w in self.parts)
                and any(w.points for w in self.parts))


def _values(loss: LossDef, params: Params, pred: np.ndarray, target: np.ndarray,
            logits: bool) -> np.ndarray:
    c = loss.compute(_batch(loss, pred, target, logits), params)
    return np.asarray(c.values, dtype=np.float64)


#: The predicted variance at which a loss of one (gaussian_nll) is checked: its gradient w.r.t.
#: the mean at a fixed variance.
CHECK_VAR = 1.7


def _batch(loss: LossDef, pred: np.ndarray, target: np.ndarray, logits: bool) -> Batch:
    var = np.full(target.shape[0], CHECK_VAR) if loss.uses_var else None
    return Batch(pred, target, None, logits, var=var)


def _steps(x: np.ndarray, probabilities: bool) -> np.ndarray:
    if probabilities:
        return STEP * np.minimum(x, 1.0 - x)
    return STEP * np.maximum(1.0, np.abs(x))


def _fd(loss: LossDef, params: Params, pred: np.ndarray, target: np.ndarray, logits: bool,
        probabilities: bool) -> tuple[np.ndarray, np.ndarray]:
    """(finite-difference gradient, kink mask): per row for (n,) predictions, per class and row
    for (C, n)."""
    rows: list[int | None] = [None] if pred.ndim == 1 else list(range(pred.shape[0]))
    base = _values(loss, params, pred, target, logits)
    grads, kinks = [], np.zeros(target.shape[0], dtype=bool)
    for k in rows:
        x = pred if k is None else pred[k]
        h = _steps(x, probabilities)

        def at(delta: np.ndarray, k: int | None = k) -> np.ndarray:
            moved = pred.copy()
            if k is None:
                moved += delta
            else:
                moved[k] += delta
            return _values(loss, params, moved, target, logits)

        up, down, up2, down2 = at(h), at(-h), at(h / 2), at(-h / 2)
        up4, down4 = at(h / 4), at(-h / 4)
        # second-order one-sided differences: exact for a quadratic on their side, so they
        # also agree where only the curvature jumps (huber at |e| = delta)
        right = (4.0 * up2 - 3.0 * base - up) / h
        left = (3.0 * base - 4.0 * down2 + down) / h
        # each side's Richardson step over h and h/2: O(h^3), still one-sided (their O(h^2)
        # error failed steep smooth losses at their minimum: tweedie:power=-3 at 10 read 1e-6
        # where the gradient is 0)
        right_half = (4.0 * up4 - 3.0 * base - up2) / (h / 2)
        left_half = (3.0 * base - 4.0 * down4 + down2) / (h / 2)
        grads.append(0.5 * ((4.0 * right_half - right) + (4.0 * left_half - left)) / 3.0)
        scale = np.maximum(1.0, np.maximum(np.abs(right), np.abs(left)))
        kinks |= ~(np.abs(right - left) <= KINK_RTOL * scale)
    return (grads[0] if pred.ndim == 1 else np.stack(grads)), kinks


def _declared(loss: LossDef, params: Params, pred: np.ndarray, target: np.ndarray,
              logits: bool) -> tuple[np.ndarray, bool]:
    """The loss's own gradient: (per row, or (C, n) per class) and whether it is a row norm."""
    fn = getattr(loss.compute, "fn", None)
    if fn is not None and pred.ndim == 2:  # a plugin: its own per-class gradient, if any
        kwargs = {k: float(params[k]) for k in loss.compute.params}  # type: ignore[attr-defined,arg-type]
        g = np.asarray(fn(pred.copy(), target.copy(), **kwargs)[1], dtype=np.float64)
        if g.shape == pred.shape:
            return g, False
    c = loss.compute(_batch(loss, pred, target, logits), params)
    g = np.asarray(c.grads, dtype=np.float64)
    if loss.reduce == "sqrt":
        # rmse: l_i = e_i^2 and the per-row g_i = e_i / rmse = (d l_i / d pred_i) / (2 rmse);
        # both sides are compared before the common 1 / rmse: dl/dpred against 2 x base g
        g = 2.0 * g
    return g, pred.ndim == 2


def check_points(loss: LossDef, params: Params, pred: np.ndarray, target: np.ndarray,
                 logits: bool, worst: Worst, atol: float = ATOL,
                 rows: np.ndarray | None = None) -> None:
    """Check the gradient at the given points (``rows``: their row numbers in a data file) and
    fold the worst error into ``worst``."""
    probabilities = loss.task != "regression" and not logits and not loss.decision_values
    with np.errstate(all="ignore"):
        base = _values(loss, params, pred, target, logits)
        inside = np.isfinite(base)
        if loss.check is not None:
            inside &= _in_domain(loss, params, pred, target, logits)
        fd, kinks = _fd(loss, params, pred, target, logits, probabilities)
        g, is_norm = _declared(loss, params, pred, target, logits)
        if is_norm:
            fd = np.sqrt(np.sum(fd * fd, axis=0))
        err = np.abs(g - fd) / np.maximum(np.abs(fd), atol)
    use = inside & ~kinks
    if err.ndim == 2:
        err = np.where(use, np.max(np.where(np.isfinite(err), err, np.inf), axis=0), np.nan)
    else:
        err = np.where(use, np.where(np.isfinite(err), err, np.inf), np.nan)
    worst.points += int(np.count_nonzero(use))
    worst.skipped_kinks += int(np.count_nonzero(inside & kinks))
    worst.skipped_domain += int(np.count_nonzero(~inside))
    i = worst.offer(err)
    if i >= 0:
        p = pred[i] if pred.ndim == 1 else pred[:, i]
        pred_text = (f"{float(p):.6g}" if pred.ndim == 1 else
                     "(" + ", ".join(f"{float(v):.4g}" for v in p) + ")")
        fd_i = fd[i] if fd.ndim == 1 else fd[:, i]
        g_i = g[i] if g.ndim == 1 else g[:, i]
        where = f"row {int(rows[i]):,}, " if rows is not None else ""
        worst.where = (f"{where}pred={pred_text}, target={float(target[i]):.6g}: gradient "
                       f"{_text(g_i)}, finite differences {_text(fd_i)}")


def _text(v: np.ndarray | float) -> str:
    a = np.atleast_1d(np.asarray(v, dtype=np.float64))
    return f"{float(a[0]):.10g}" if a.size == 1 else "(" + ", ".join(f"{x:.6g}" for x in a) + ")"


def _in_domain(loss: LossDef, params: Params, pred: np.ndarray, target: np.ndarray,
               logits: bool) -> np.ndarray:
    """Row by row: the loss's own domain check passes."""
    assert loss.check is not None
    ok = np.ones(target.shape[0], dtype=bool)
    for i in range(target.shape[0]):
        p = pred[i:i + 1] if pred.ndim == 1 else pred[:, i:i + 1]
        ok[i] = loss.check(_batch(loss, p, target[i:i + 1], logits), params) is None
    return ok


def grid(loss: LossDef, logits: bool) -> tuple[np.ndarray, np.ndarray]:
    """Points covering each task's inputs: residuals from 0.01 to 25 of either sign around
    several targets; probabilities in (0, 1) or logits (decision values) in [-8, 8] for both
    classes; three-class probability and logit rows for every true class."""
    if loss.task == "regression":
        targets = np.array([-3.0, -1.0, -0.25, 0.0, 0.5, 2.0, 10.0])
        e = np.array([0.01, 0.05, 0.3, 0.9, 1.7, 4.0, 25.0])
        errors = np.concatenate((-e[::-1], [0.0], e))
        t = np.repeat(targets, errors.size)
        return t + np.tile(errors, targets.size), t
    if loss.task == "binary":
        wide = logits or loss.decision_values
        x = np.linspace(-8.0, 8.0, 33) if wide else np.linspace(0.02, 0.98, 25)
        return np.concatenate((x, x)), np.repeat([0.0, 1.0], x.size)
    rng = np.random.default_rng(0)
    z = rng.normal(0.0, 2.0, (3, 40))
    if logits or loss.decision_values:
        pred = z
    else:
        pred = np.exp(z - z.max(axis=0))
        pred /= pred.sum(axis=0)
        pred = np.clip(pred, 0.01, None)
        pred /= pred.sum(axis=0)
    return np.tile(pred, 3), np.repeat([0.0, 1.0, 2.0], 40)


def check_gradient(loss: LossDef, params: Params, *, logits: bool = False,
                   data: str | None = None, pred: str | None = None, target: str | None = None,
                   rtol: float = RTOL, atol: float = ATOL) -> CheckResult:
    """Check on the grid, then on the rows of the prediction file ``data`` (its ``pred`` and
    ``target`` columns, NaN rows left out, refused as eval refuses rows outside the loss's
    task)."""
    result = CheckResult(loss.name, loss.origin or "built-in", logits, rtol, atol)
    g = Worst("grid")
    p, t = grid(loss, logits)
    check_points(loss, params, p, t, logits, g, atol)
    result.parts.append(g)
    if data is not None:
        result.parts.append(_check_data(loss, params, logits, atol, data, pred, target))
    return result


@dataclass
class DataCheck:
    """The check over a file's rows as a reduction: the worst error and the rows it saw."""

    loss: LossDef
    params: Params
    logits: bool
    atol: float
    label: str
    validator: Any  # engine.TaskValidator

    def empty(self) -> tuple[Worst, Any]:
        from losscli.sources import NanStats

        return Worst(self.label), NanStats()

    def fold(self, acc: tuple[Worst, Any], raw: Any) -> tuple[Worst, Any]:
        from losscli.sources import to_chunk

        chunk = to_chunk(raw, self.validator.cols, acc[1])
        self.validator.check(chunk)
        n = chunk.target.shape[0]
        if n:
            rows = (chunk.rows if chunk.rows is not None
                    else np.arange(chunk.first_row, chunk.first_row + n)) + 1
            check_points(self.loss, self.params, chunk.pred, chunk.target, self.logits, acc[0],
                         self.atol, rows)
        return acc

    def merge(self, earlier: tuple[Worst, Any],
              later: tuple[Worst, Any]) -> tuple[Worst, Any]:
        a, b = earlier[0], later[0]
        if b.where != "-" and (b.error > a.error or a.where == "-"):
            a.error, a.where = b.error, b.where
        a.points += b.points
        a.skipped_kinks += b.skipped_kinks
        a.skipped_domain += b.skipped_domain
        earlier[1].merge(later[1])
        return earlier


def _check_data(loss: LossDef, params: Params, logits: bool, atol: float, source: str,
                pred: str | None, target: str | None) -> Worst:
    from losscli.engine import TaskValidator
    from losscli.run import ReadPlan, run
    from losscli.sources import eval_only_columns, open_source, resolve_columns

    src = open_source(source)
    cols = eval_only_columns(resolve_columns(src, pred, target, None), "losses --check")
    task = loss.task
    if cols.multiclass != (task == "multiclass"):
        need = "several prediction columns" if task == "multiclass" else "one prediction column"
        raise UsageError(f"a {task} loss needs {need}; --data {source} gives "
                         f"{len(cols.pred)} ({', '.join(cols.pred)})")
    red = DataCheck(loss, params, logits, atol, source,
                    TaskValidator(task, cols, logits, src.where,
                                  probabilities=not loss.decision_values))
    worst, _ = run(ReadPlan(src, cols, 1 << 16), red)
    return worst


def describe(result: CheckResult, width: int = 80) -> list[str]:
    """The check as lines of plain text (the result of ``losscli losses --check``), each
    statement wrapped at ``width`` columns between words (numbers and paths stay whole)."""
    import textwrap

    return [wrapped for line in _statements(result) for wrapped in textwrap.wrap(
        line, width, subsequent_indent="    " if line.startswith("  ") else "  ",
        break_long_words=False, break_on_hyphens=False)]


def _statements(result: CheckResult) -> list[str]:
    lines = [f"{result.loss} ({result.origin}): declared gradient against central finite "
             f"differences (on {'logits' if result.logits else 'the predictions as given'}; rtol "
             f"{result.rtol:g}, atol {result.atol:g})"]
    for w in result.parts:
        skipped = []
        if w.skipped_kinks:
            skipped.append(f"{w.skipped_kinks:,} at kinks")
        if w.skipped_domain:
            skipped.append(f"{w.skipped_domain:,} outside the domain")
        lines.append(f"  {w.label}: {w.points:,} points, worst relative error "
                     f"{w.error:.3g}" + (f" at {w.where}" if w.points else "")
                     + (f" (skipped: {', '.join(skipped)})" if skipped else ""))
    worst = result.worst
    verdict = "PASS" if result.passed else "FAIL"
    lines.append(f"{verdict}: worst relative error {worst.error:.3g} "
                 f"{'<=' if result.passed else '>'} rtol {result.rtol:g}"
                 + ("" if result.passed else f" ({worst.label})"))
    if not any(w.points for w in result.parts):
        lines.append("no point could be checked")
    return lines


__all__ = ["ATOL", "RTOL", "CheckResult", "DataCheck", "check_gradient", "describe", "grid"]
