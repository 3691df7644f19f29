"""The library's face: ``losscli.evaluate``, ``losscli.compare`` and ``losscli.recommend``.

Each takes a path (CSV, TSV, Parquet, a directory of Parquet files, Arrow IPC), a pandas
DataFrame, a pyarrow Table or RecordBatchReader, or a mapping of column names to arrays, and
keyword options named as the CLI's flags (``--chunk-rows`` is ``chunk_rows``; ``executor``
chooses how units of the input are folded, see :mod:`losscli.run`). Each returns the
result object whose ``to_dict()`` is the document ``--format json`` prints, with the same
numbers. Bad input raises a :class:`~losscli.errors.LossCliError` subclass, whose
``exit_code`` is the CLI's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from losscli.compare import DEFAULT_ALPHA, Comparison
from losscli.engine import Report
from losscli.errors import UsageError
from losscli.options import DEFAULT_CHUNK_ROWS, EXPLODE_TOL, VANISH_TOL
from losscli.recommend import Hints, Recommendation
from losscli.run import Executor
from losscli.sources import NanPolicy, PredArg
from losscli.spec import LossSpec
from losscli.uncertainty import DEFAULT_BOOTSTRAP_SAMPLES, DEFAULT_CONFIDENCE

#: A loss spec (``"huber:delta=2"``) or a list of them (``--loss``, repeatable).
LossArg = str | LossSpec | Sequence[str | LossSpec] | None


def _losses(loss: LossArg, losses: LossArg) -> list[str | LossSpec] | None:
    """``loss`` (the flag's name) or ``losses`` (the engine's), as a list of specs."""
    if loss is not None and losses is not None:
        raise UsageError("pass loss= or losses=, not both")
    given = loss if loss is not None else losses
    if given is None:
        return None
    if isinstance(given, (str, LossSpec)):
        return [given]
    return list(given)


def _plugins(plugin: str | Sequence[str] | None) -> None:
    """Load custom losses (``--plugin``): a .py file or a module name, or a list of them; as
    in the CLI, a loss name no loaded loss has may then load the installed entry points."""
    from losscli.registry import entry_points_on_demand, load_plugins

    entry_points_on_demand()
    if plugin:
        load_plugins([plugin] if isinstance(plugin, str) else list(plugin))


def evaluate(
    source: Any,
    pred: PredArg = None,
    target: str | None = None,
    weight: str | None = None,
    loss: LossArg = None,
    *,
    task: str | None = None,
    logits: bool = False,
    nan: NanPolicy = "error",
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    threads: int | None = None,
    executor: str | Executor | None = None,
    vanish_tol: float = VANISH_TOL,
    explode_tol: float = EXPLODE_TOL,
    grad_clip: float | None = None,
    ci: str = "johnson",
    confidence: float = DEFAULT_CONFIDENCE,
    bootstrap_samples: int = DEFAULT_BOOTSTRAP_SAMPLES,
    seed: int = 0,
    max: Mapping[str, float] | Sequence[str] | None = None,
    baseline: str | Path | Report | Mapping[str, float | None] | None = None,
    tolerance: str | float | None = None,
    plugin: str | Sequence[str] | None = None,
    progress: Callable[[int], None] | None = None,
    losses: LossArg = None,
    figures: bool = False,
    var: str | None = None,
    by: str | Sequence[str] | None = None,
    max_slices: int = 1000,
    min_rows: int = 30,
    top: int = 10,
    alpha: float = 0.05,
    max_slice: Mapping[str, float] | Sequence[str] | None = None,
    slices: Any = None,
) -> Report:
    """Loss values, intervals and gradient statistics of ``source`` (``losscli eval``).

    ``pred`` is a column name, a comma list, a glob (``"prob_*"``) or a list of names (one
    per class); ``loss`` a spec or a list of specs (default: the detected task's set).
    ``max`` (``{"mse": 0.25}``), ``baseline`` (an eval JSON file, a Report, or a mapping of
    spec to value) and ``tolerance`` (``"2%"`` or ``0.01``) are the gates; the verdict is
    ``report.passed``. They are checked before the pass, so that a bad one fails fast.
    ``figures`` also gathers the report's figures (``report.figures``, drawn by
    :mod:`losscli.render.plots`).
    ``var`` names the predicted-variance column of gaussian_nll (``--var``). ``by``
    (``"country"``, ``["country", "age:bins=5"]``) adds the losses per slice
    (``report.slices``), with ``max_slices``, ``min_rows``, ``top`` and ``alpha`` as the
    flags; ``max_slice`` (``{"mse": 2.0}``) gates every slice; ``slices`` takes a
    :class:`losscli.slices.SliceOptions` instead.
    """
    _plugins(plugin)
    slices = _slice_options(by, max_slices, min_rows, top, alpha, slices)
    gates = None
    if max or baseline is not None or tolerance is not None:
        from losscli.gates import Gates

        gates = Gates.parse(max, baseline, tolerance)
    from losscli.engine import evaluate as run

    report = run(source, pred, target, weight, _losses(loss, losses), task=task,
                 logits=logits, nan=nan, chunk_rows=chunk_rows, threads=threads,
                 executor=executor, vanish_tol=vanish_tol, explode_tol=explode_tol,
                 grad_clip=grad_clip, ci=ci,
                 confidence=confidence, bootstrap_samples=bootstrap_samples, seed=seed,
                 progress=progress, figures=figures, var=var, slices=slices)
    if gates is not None:
        report.gates = gates.check(report)
    if max_slice:
        from losscli.gates import check_slices, parse_max

        report.gates = [*report.gates, *check_slices(report, parse_max(max_slice,
                                                                       "--max-slice"))]
    return report


def _slice_options(by: str | Sequence[str] | None, max_slices: int, min_rows: int, top: int,
                   alpha: float, slices: Any) -> Any:
    """The slices asked for: ``slices`` as given, else ``by`` and the flags' values."""
    if slices is not None or not by:
        return slices
    from losscli.slices import SliceOptions

    return SliceOptions([by] if isinstance(by, str) else list(by), max_slices, min_rows, alpha,
                        top)


def compare(
    baseline: Any,
    candidate: Any = None,
    *,
    pred: PredArg = None,
    baseline_pred: PredArg = None,
    target: str | None = None,
    weight: str | None = None,
    loss: LossArg = None,
    key: str | None = None,
    unmatched: str = "error",
    task: str | None = None,
    logits: bool = False,
    nan: str = "error",
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    threads: int | None = None,
    executor: str | Executor | None = None,
    ci: str = "johnson",
    confidence: float = DEFAULT_CONFIDENCE,
    bootstrap_samples: int = DEFAULT_BOOTSTRAP_SAMPLES,
    seed: int = 0,
    alpha: float = DEFAULT_ALPHA,
    primary: str | None = None,
    fail_if_worse: bool = False,
    require_not_worse: bool = False,
    tolerance: str | float | None = None,
    plugin: str | Sequence[str] | None = None,
    losses: LossArg = None,
    figures: bool = False,
    by: str | Sequence[str] | None = None,
    max_slices: int = 1000,
    min_rows: int = 30,
    top: int = 10,
    slices: Any = None,
) -> Comparison:
    """A candidate's predictions against a baseline's on the same rows, paired
    (``losscli compare``).

    One input with both models' columns (``baseline_pred`` and ``pred``), or two inputs, the
    baseline first, whose rows correspond in order or by ``key``. ``fail_if_worse`` and
    ``require_not_worse`` (with the margin ``tolerance``) are the gates; the verdict is
    ``result.passed``. ``primary`` names the confirmatory loss (the only one gated). ``by``
    adds per-slice deltas (``result.slices``), as for evaluate.
    """
    from losscli.compare import compare as run
    from losscli.gates import Tolerance

    _plugins(plugin)
    tol = Tolerance.parse(tolerance)  # before the pass: a bad one fails fast
    result = run(baseline, candidate, pred=pred, baseline_pred=baseline_pred, target=target,
                 weight=weight, losses=_losses(loss, losses), key=key, unmatched=unmatched,
                 task=task, logits=logits, nan=nan, chunk_rows=chunk_rows, threads=threads,
                 executor=executor, ci=ci, confidence=confidence,
                 bootstrap_samples=bootstrap_samples, seed=seed, alpha=alpha,
                 primary=primary, figures=figures,
                 ratio=tol.relative and (fail_if_worse or require_not_worse),
                 slices=_slice_options(by, max_slices, min_rows, top, alpha, slices))
    result.check(fail_if_worse, require_not_worse, tol)
    return result


def recommend(
    source: Any = None,
    pred: PredArg = None,
    target: str | None = None,
    weight: str | None = None,
    *,
    task: str | None = None,
    logits: bool = False,
    nan: NanPolicy = "error",
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    threads: int | None = None,
    executor: str | Executor | None = None,
    target_only: bool = False,
    outliers: bool = False,
    heavy_tails: bool = False,
    outlier_fraction: float | None = None,
    imbalanced: bool = False,
    minority_share: float | None = None,
    progress: Callable[[int], None] | None = None,
    figures: bool = False,
    var: str | None = None,
) -> Recommendation:
    """A loss for ``source``, from the task and the measured outliers, tails or class
    imbalance (``losscli recommend``): ``rec.recommended.spec`` is the spec to pass to
    ``evaluate``; ``rec.alternatives``, ``rec.reasons`` and ``rec.evidence`` say why.

    Without a source, with ``task``: the selection rules applied to what you say of the data
    (``outliers``, ``heavy_tails``, ``outlier_fraction``, ``imbalanced``, ``minority_share``).
    ``target_only`` analyses the target alone, ignoring predictions; ``var`` names a
    predicted-variance column (gaussian_nll).
    """
    from losscli.recommend import recommend as run

    return run(source, pred, target, weight, task,  # type: ignore[arg-type]
               logits=logits, nan=nan, chunk_rows=chunk_rows, threads=threads,
               executor=executor, progress=progress, target_only=target_only, var=var,
               hints=Hints(outliers, heavy_tails, outlier_fraction, imbalanced, minority_share),
               figures=figures)


__all__ = ["compare", "evaluate", "recommend"]
