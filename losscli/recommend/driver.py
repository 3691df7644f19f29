"""recommend(): the passes of a recommendation over one read plan (pilot, evidence,
re-centring, loss values), then the rules."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from losscli.detect import check_task
from losscli.engine import (
    DEFAULT_CHUNK_ROWS,
    ROW_SUM_RTOL,
    TaskValidator,
    head_rows,
)
from losscli.errors import InputError, UsageError
from losscli.recommend.accumulate import (
    Kind,
    Passes,
    PassReduction,
    PassState,
    rec_columns,
    robust_of,
    values_of,
)
from losscli.recommend.evidence import (
    class_labels,
    detect_task,
    evidence_of,
    histogram_of,
    loss_values,
    ruled_out,
    usable_first,
)
from losscli.recommend.model import (
    EvalArgs,
    Hints,
    Recommendation,
    add_commands,
    choice,
    num,
    pct,
)
from losscli.recommend.rules import RULE_FNS, Facts, rules_for, rules_only
from losscli.recommend.thresholds import (
    HUBER_K,
    MAX_CENTRING_PASSES,
    OUTLIER_Z,
    PILOT_ROWS,
    PILOT_TOLERANCE,
    RecTask,
)
from losscli.run import Executor, ReadPlan, resolve_executor
from losscli.sources import (
    Columns,
    NanPolicy,
    PredArg,
    RawChunk,
    Source,
    open_input,
    set_positive,
)
from losscli.state import (
    HIST_ALPHA,
)

# --- the public entry -------------------------------------------------------------------------


def recommend(
    source: str | Path | Source | Mapping[str, Any] | Any | None = None,
    pred: PredArg = None,
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
    figures: bool = False,
    var: str | None = None,
    positive: str | None = None,
) -> Recommendation:
    """Recommend a loss for a file, directory, ``"-"`` (CSV on stdin) or in-memory columns.

    With predictions the evidence is the residuals e = pred - target; without, the target around
    its median. ``source=None`` explains the rules of ``task`` applied to ``hints``.
    ``second_pass=False`` forbids re-reading the source (as for stdin); ``target_only`` ignores
    recognised prediction columns; ``figures`` also gathers the report's figures
    (``Recommendation.figures``); ``var`` names a predicted-variance column (gaussian_nll);
    ``positive`` names the label of a binary target of two labels that is 1. Raises
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
        return rules_only(task, hints)
    if hints.any:
        raise UsageError("--outliers, --heavy-tails, --imbalanced, --outlier-fraction and "
                         "--minority-share describe data you do not have; with a SOURCE they "
                         "are measured")
    if chunk_rows < 1:
        raise UsageError(f"--chunk-rows must be a positive number of rows, got {chunk_rows}")
    if nan not in ("error", "drop"):
        raise UsageError(f"--nan must be 'error' or 'drop', got '{nan}'")
    src = open_input(source)
    where = src.where
    cols, has_pred, pred_from = rec_columns(src, pred, target, weight, target_only)
    set_positive(cols, positive)
    if cols.soft:
        return soft_target_recommendation(source, src, cols, logits, nan, chunk_rows, threads,
                                          executor)
    if var is not None:
        if not has_pred or cols.multiclass:
            raise UsageError("--var is the predicted variance of a regression: pass --pred, the "
                             "predicted mean")
        return variance_recommendation(source, src, cols, var, nan, chunk_rows, threads,
                                       executor)
    if not has_pred and positive is None:
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
    passes_ = Passes(plan, PassReduction(PassState(kind, has_pred, multiclass, logits, 0.0), cols,
                                          where, task, validator),
                      resolve_executor(executor, threads))

    # pass 1: the pilot centre is the exact median of the first PILOT_ROWS values
    head, _ = head_rows(plan, cols, nan, where, PILOT_ROWS)
    n_classes = int(head[0].pred.shape[0]) if cols.multiclass else 0
    with np.errstate(all="ignore"):
        sample = np.concatenate([values_of(c, kind, logits) for c in head])[:PILOT_ROWS]
        pilot = float(np.median(sample))  # NaN when +inf and -inf meet in the middle
    acc, stats = passes_.scan(PassState(kind, has_pred, multiclass, logits, pilot, True, n_classes,
                                        figures=_figure_state(has_pred, cols.multiclass,
                                                              n_classes, logits)
                                        if figures else None),
                              progress)
    if stats.count and nan == "error":
        raise stats.error()
    if acc.rows == 0:
        raise stats.all_dropped(where)
    warnings: list[str] = []
    if stats.count:
        warnings.append(stats.dropped())
    if acc.row_sum_off:
        warnings.append(f"{acc.row_sum_off} probability row(s) do not sum to 1 (tolerance "
                        f"{ROW_SUM_RTOL:g}); the probability of the true class is used as given")
    if cols.weight and has_pred and acc.weight_sum.value <= 0.0:
        raise InputError(f"{where}: weight column '{cols.weight}' sums to zero; the weighted "
                         "mean is undefined")

    detected, why = detect_task(acc, cols, has_pred, logits, task, where)
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
    robust = robust_of(acc.hist, pilot)
    passes = 1
    while (rereadable and robust.mad > 0 and abs(robust.offset) > PILOT_TOLERANCE * robust.mad
           and passes < MAX_CENTRING_PASSES):
        again, _ = passes_.scan(PassState(kind, has_pred, multiclass, logits, robust.median,
                                      False))
        robust, passes = robust_of(again.hist, robust.median), passes + 1
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
                            f"{num(robust.median)}); outliers are measured against the mean "
                            f"absolute deviation instead ({num(scale)})")

    evidence = evidence_of(acc, robust, scale, stats, passes, detected, cols)
    facts = Facts(
        measured=True,
        outlier_fraction=evidence.outlier_fraction,
        excess_kurtosis=evidence.excess_kurtosis,
        skewness=evidence.skewness,
        quartile_skewness=evidence.quartile_skewness,
        robust_scale=scale if scale > 0 else None,
        residuals=has_pred,
    )
    if not multiclass and detected == "regression":
        tgt = evidence.target
        facts.target_min, facts.target_skewness = tgt.get("min"), tgt.get("skewness")
        facts.zero_fraction, facts.target_integer = tgt.get("zero_fraction"), acc.tfacts.integer
        facts.pred_min = acc.tfacts.pred_min if has_pred else None
    if evidence.class_balance is not None:
        cb = evidence.class_balance
        facts.class_counts = list(cb["counts"].values())
        facts.labels = list(cb["counts"].keys())
        facts.minority_share = cb["minority_share"]
    rec, alts, reasons = RULE_FNS[detected](facts)
    notes: list[str] = []
    if fallback and detected in ("regression", "counts"):
        notes.append("The robust scale is the mean-absolute-deviation fallback (MAD = 0)."
                     if scale > 0 else f"All values equal {num(robust.median)}: there is no "
                     "spread for the rules to measure.")
    if not has_pred:
        notes.append("Target-only analysis: the spread of the target stands in for the "
                     "residuals a model will leave in the outlier and tail rules, but not for "
                     f"huber's delta, which is {HUBER_K} x the robust scale of a model's "
                     "residuals (recommend with --pred measures it); candidate loss values "
                     "need predictions and are not shown.")
    else:
        notes.extend(loss_values(acc, [rec, *alts], passes_ if rereadable else None))
        rec, alts, reasons = usable_first(rec, alts, reasons, acc)
    if robust.bound > HIST_ALPHA * (1 + 2 * PILOT_TOLERANCE):
        notes.append(f"The robust scale is within {pct(robust.bound)}: the pilot centre was "
                     f"{num(abs(robust.offset) / robust.mad if robust.mad else math.inf)} MADs "
                     "from the median and the input could not be read again.")
    histogram = histogram_of(acc, robust, scale, detected, has_pred, evidence)
    path = str(source) if isinstance(source, (str, Path)) else (
        src.path if isinstance(source, Source) else None)
    if path is not None:
        add_commands([c for c in [rec, *alts] if not ruled_out(c, acc)],
                     EvalArgs(path, cols.pred if has_pred else None, cols.target, cols.weight,
                              logits, nan, positive))
    return Recommendation(
        figures=None if acc.figures is None else _figure_data(acc, detected, cols),
        task=detected, task_reason=why, recommended=rec, alternatives=alts, reasons=reasons,
        mode="residuals" if has_pred else "target", evidence=evidence, histogram=histogram,
        source={"path": where, "format": src.display_format, "rows": acc.rows + stats.count,
                "rows_used": acc.rows, "rows_dropped": stats.count},
        columns={"pred": cols.pred if has_pred else None, "pred_from": pred_from,
                 "target": cols.target, "weight": cols.weight,
                 **({"classes": class_labels(cols, acc)} if multiclass else {})},
        notes=notes, warnings=warnings, rules=rules_for(detected, measured=True))


def _figure_state(has_pred: bool, multiclass: bool, classes: int, logits: bool) -> Any:
    """The figures of the evidence pass: none without predictions; before the task is known,
    the residual ones and, while every row is binary, the calibration ones."""
    from losscli.figures import FigureState

    if not has_pred:
        return None
    return FigureState("multiclass" if multiclass else "auto", classes, 0, logits)


def _figure_data(acc: PassState, task: str, cols: Columns) -> Any:
    from losscli.figures import finish

    data = finish(acc.figures, [], class_labels(cols, acc) if acc.multiclass else [])
    if task == "binary":
        data.residual = data.pred_actual = None
    else:
        data.calibration = data.prob_counts = None
    data.task = task
    return data


def _source_of(src: Source, report: Any) -> dict[str, Any]:
    """The recommendation's source block from the eval report of its rows."""
    rows = report.source
    return {"path": src.where, "format": src.display_format, "rows": rows.rows,
            "rows_used": rows.rows_used, "rows_dropped": rows.rows_dropped}


def soft_target_recommendation(source: Any, src: Source, cols: Columns, logits: bool,
                               nan: NanPolicy, chunk_rows: int, threads: int | bool | None,
                               executor: str | Executor | None) -> Recommendation:
    """Soft targets (a teacher's probabilities, ``--target 'q_*'``): kl_div, whose minimum is 0
    at a perfect match, unless every row is one-hot (zero entropy), where cce is the same loss.
    One eval pass gives both values, and their difference the targets' mean entropy."""
    from losscli.engine import evaluate

    report = evaluate(src, ",".join(cols.pred), ",".join(cols.soft), cols.weight,
                      ["kl_div", "cce"], logits=logits, nan=nan, chunk_rows=chunk_rows,
                      threads=threads, executor=executor, ci="none")
    kl, ce = report.losses[0].value, report.losses[1].value
    entropy = max(ce - kl, 0.0)
    kl_choice, ce_choice = choice("kl_div"), choice("cce")
    kl_choice.value, ce_choice.value = kl, ce
    if entropy > 0.0:
        reasons = [f"The targets are soft: their mean entropy is {num(entropy)} nats (0 for "
                   "one-hot labels), a distribution to match (distillation, label noise).",
                   "kl_div measures the distance to it and is 0 at a perfect match; cce has "
                   "the same gradient and exceeds it by the targets' entropy."]
        ce_choice.reason = (f"The same gradient; its value includes the targets' entropy "
                            f"{num(entropy)}, so it never reaches 0.")
        rec, alts = kl_choice, [ce_choice]
    else:
        reasons = ["Every soft target is one-hot (entropy 0): they are class labels, for which "
                   "cce is the log-likelihood and kl_div the same number."]
        kl_choice.reason = "Equal to cce on one-hot targets."
        rec, alts = ce_choice, [kl_choice]
    path = str(source) if isinstance(source, (str, Path)) else None
    if path is not None:
        add_commands([rec, *alts], EvalArgs(path, cols.pred, ",".join(cols.soft), cols.weight,
                                             logits, nan))
    return Recommendation(
        task="multiclass", task_reason=f"Several target columns ({', '.join(cols.soft)}) hold "
        "one probability per class: soft targets.", recommended=rec, alternatives=alts,
        reasons=reasons, mode="residuals", source=_source_of(src, report),
        columns={"pred": cols.pred, "pred_from": "given", "target": ",".join(cols.soft),
                 "weight": cols.weight}, warnings=list(report.warnings),
        notes=["The evidence is the targets' mean entropy, cce - kl_div over the same rows."])


def variance_recommendation(source: Any, src: Source, cols: Columns, var: str, nan: NanPolicy,
                            chunk_rows: int, threads: int | bool | None,
                            executor: str | Executor | None) -> Recommendation:
    """A predicted variance beside the mean: gaussian_nll, the log-likelihood of N(mean, var),
    scores both; the mean gradient w.r.t. the variance says whether the variances are too
    large (> 0) or too small (< 0) on average."""
    from losscli.engine import evaluate

    report = evaluate(src, cols.pred[0], cols.target, cols.weight, ["gaussian_nll", "mse"],
                      nan=nan, chunk_rows=chunk_rows, threads=threads, executor=executor,
                      ci="none", var=var)
    nll, mse = report.losses
    g = nll.var_gradient
    assert g is not None
    rec, alt = choice("gaussian_nll"), choice("mse")
    rec.value, alt.value = nll.value, mse.value
    alt.reason = "Scores the mean alone: the predicted variance is left unchecked."
    se = g.std / math.sqrt(max(report.source.rows_used, 1))
    lean = ("consistent with calibrated variances (within 2 standard errors)"
            if abs(g.mean) <= 2.0 * se else
            "the predicted variances are too large on average" if g.mean > 0 else
            "the predicted variances are too small on average")
    reasons = [f"A predicted variance is given (column '{var}'): gaussian_nll scores the mean "
               "and the variance together, as the log-likelihood of N(mean, var) (torch's "
               "GaussianNLLLoss).",
               f"Its gradient w.r.t. the variance, (1 - e^2 / v) / (2 v), averages "
               f"{num(g.mean)} (standard error {num(se)}) over the rows, 0 when the variances "
               f"are calibrated: {lean}."]
    path = str(source) if isinstance(source, (str, Path)) else None
    if path is not None:
        add_commands([rec, alt], EvalArgs(path, cols.pred, cols.target, cols.weight, False,
                                          nan))
        for c in (rec, alt):
            if c.name == "gaussian_nll" and c.command is not None:
                c.command += f" --var {var}"
    return Recommendation(
        task="regression", task_reason=f"A predicted-variance column ('{var}') is given beside "
        "the predicted mean.", recommended=rec, alternatives=[alt], reasons=reasons,
        mode="residuals", source=_source_of(src, report),
        columns={"pred": cols.pred, "pred_from": "given", "target": cols.target,
                 "weight": cols.weight, "var": var}, warnings=list(report.warnings))
