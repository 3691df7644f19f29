"""From the accumulated state to the evidence, the candidate loss values and the histogram."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from losscli.detect import detect
from losscli.recommend.accumulate import Passes, PassState, Robust
from losscli.recommend.model import Choice, Evidence, Histogram, HistogramBin, num, sig
from losscli.recommend.thresholds import OUTLIER_Z, RecTask
from losscli.sources import Columns, NanStats
from losscli.spec import format_number, parse_spec
from losscli.state import (
    EvalState,
)


def class_labels(cols: Columns, acc: PassState) -> list[str]:
    k = max(acc.n_classes, acc.class_counts.size)
    if cols.multiclass and cols.labels and len(cols.labels) == k:
        return list(cols.labels)
    return [str(i) for i in range(k)]


def detect_task(acc: PassState, cols: Columns, has_pred: bool, logits: bool,
            task: RecTask | None, where: str) -> tuple[RecTask, str]:
    """The task (the one detector, over every row) and one sentence saying why."""
    how = "a list column" if cols.list_column else f"{len(cols.pred)} prediction columns"
    found = detect(acc.tfacts, target=cols.target, pred=cols.pred[0] if has_pred else None,
                   logits=logits, task=task, float_target=cols.float_target,
                   classes=acc.n_classes if cols.multiclass else None, how=how, where=where)
    return found.task, found.reason


def evidence_of(acc: PassState, robust: Robust, scale: float, stats: NanStats, passes: int,
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
                  "variance": acc.t_moments.variance, "skewness": acc.t_moments.skewness,
                  "zero_fraction": acc.target_zeros / acc.rows if acc.rows else math.nan}
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
        labels = class_labels(cols, acc) if task == "multiclass" else ["0", "1"]
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


#: Candidates evaluated in the second pass beside huber: losses on the target's scale.
SECOND_PASS = ("gamma", "tweedie", "msle", "rmsle")


def ruled_out(c: Choice, acc: PassState) -> bool:
    """The data rule the loss out: eval would refuse it on these rows (poisson with a
    prediction <= 0 or a negative target)."""
    return c.name == "poisson" and c.value is None and bool(acc.pred_nonpositive
                                                            or acc.target_negative)


def usable_first(rec: Choice, alts: list[Choice], reasons: list[str],
                 acc: PassState) -> tuple[Choice, list[Choice], list[str]]:
    """A recommendation the data rule out gives way to the first alternative they allow; it
    stays last among the alternatives, with its note and without a command."""
    if not ruled_out(rec, acc):
        return rec, alts, reasons
    usable = next((c for c in alts if not ruled_out(c, acc)), None)
    if usable is None:
        return rec, alts, reasons
    why = (f"needs predictions > 0 (a mean rate) and {acc.pred_nonpositive:,} prediction(s) "
           "are <= 0" if acc.pred_nonpositive else
           f"needs targets >= 0 and {acc.target_negative:,} target(s) are negative")
    reasons = [f"Counts call for {rec.name}, but it {why}: {usable.name} instead. "
               f"{usable.reason}", *reasons[1:]]
    rec.reason = f"Ruled out by the data: {why.split(' and ', 1)[1]}."
    return usable, [c for c in alts if c is not usable] + [rec], reasons


def loss_values(acc: PassState, choices: list[Choice], plan: Passes | None) -> list[str]:
    """Fill ``value`` of each candidate (sum w l / sum w); returns notes on those that cannot be
    computed. Parameter-free losses and the class-weighted variants come from the first pass;
    huber's delta is known only after it, so huber takes another pass when ``plan`` allows."""
    notes: list[str] = []
    huber_deltas: dict[float, list[Choice]] = {}
    #: the target-scale candidates (their domain checked by the rule that offers them), by spec
    others: dict[str, list[Choice]] = {}
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
        elif c.name in SECOND_PASS and c.spec is not None:
            if acc.reg is None:
                c.value_note = "not computed for logit predictions"
            else:
                others.setdefault(c.spec, []).append(c)
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
    if others and plan is None:
        for group in others.values():
            for c in group:
                c.value_note = "needs a second pass; run its command"
    if huber_deltas or (others and plan is not None):
        if plan is not None:
            specs = [f"huber:delta={format_number(d)}" for d in huber_deltas] + list(others)
            groups = [*huber_deltas.values(), *others.values()]
            state, _ = plan.scan(EvalState([parse_spec(s) for s in specs], gradients=False))
            for spec, st, group in zip(specs, state.losses, groups, strict=True):
                value = st.value.value / state.weight_sum.value
                single = parse_spec(spec).single
                for c in group:
                    c.value = math.sqrt(value) if single and single.reduce == "sqrt" else value
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


def histogram_of(acc: PassState, robust: Robust, scale: float, task: RecTask, has_pred: bool,
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
        return Histogram(f"{what.capitalize()}: all values equal {num(robust.median)}", "value",
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
            label = f"< {format_number(sig(m + edges[1] * scale))} (min {num(acc.vmin)})"
        elif not math.isfinite(hi_z):
            label = f">= {format_number(sig(m + lo_z * scale))} (max {num(acc.vmax)})"
        elif i == first and lo_v == acc.vmin:
            label = (f"[min {num(lo_v)}, {num(hi_v)})" if i != last
                     else f"[{num(lo_v)}, {num(hi_v)}]")
        elif i == last and hi_v == acc.vmax:
            label = f"[{num(lo_v)}, max {num(hi_v)}]"
        bins.append(HistogramBin(float(lo_v), float(hi_v), int(binned[i]), outlier, label))
    return Histogram(f"{what.capitalize()}: bins of one robust scale ({num(scale)}) around the "
                     f"median {num(m)}; outliers past {OUTLIER_Z:g} scales", "value", bins,
                     cut=OUTLIER_Z * scale)
