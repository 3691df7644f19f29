"""The one task detector of eval and recommend: what the target (and predictions) say the task is.

Rules, first match wins (documented once, in docs/eval.md under "Task detection"):

1. ``--task`` given: that task.
2. Several prediction columns or a list column: multiclass.
3. Target values only 0 and 1: binary when there are no predictions, when ``--logits`` is given
   or when the predictions lie in [0, 1]. Predictions outside [0, 1] are ambiguous (logits of a
   binary model, or values of a regression on a 0/1 target): an error that names ``--logits``
   and ``--task regression`` instead of a guess. So is a target of two other values (-1/1)
   with predictions in [0, 1].
4. Non-negative integer targets of an integer column: counts. Whole numbers stored as floats
   (scikit-learn's diabetes target, a CSV written with ``151.0``) are amounts: regression,
   unless ``--task counts``.
5. Anything else: regression.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from losscli.errors import UsageError
from losscli.spec import format_number, message_number

#: "multilabel" is eval's alone (``--task multilabel``): TASKS lists the detected ones
Task = Literal["regression", "counts", "binary", "multiclass", "multilabel"]
TASKS: tuple[Task, ...] = ("regression", "counts", "binary", "multiclass")

#: Distinct target values remembered (beyond that the target is "many-valued").
DISTINCT_LIMIT = 64


@dataclass
class TargetFacts:
    """Mergeable facts about a target column and one prediction column that decide the task.

    ``of`` a chunk, then ``merge`` the facts of the rows that follow: chunking never changes them.
    """

    rows: int = 0
    integer: bool = True
    minimum: float = math.inf
    maximum: float = -math.inf
    distinct: set[float] | None = field(default_factory=set)
    binary: bool = True  # every target is 0 or 1
    pred_min: float = math.inf
    pred_max: float = -math.inf

    @classmethod
    def of(cls, target: np.ndarray, pred: np.ndarray | None = None) -> TargetFacts:
        """The facts of one chunk (``pred`` a single column, or None)."""
        facts = cls(rows=int(target.size))
        if not target.size:
            return facts
        facts.integer = bool(np.all(target == np.floor(target)))
        facts.minimum, facts.maximum = float(target.min()), float(target.max())
        distinct: set[float] = set()
        # a cheap look at a prefix first: continuous targets stop there
        for part in (target[:4096], target):
            distinct.update(np.unique(part).tolist())
            if len(distinct) > DISTINCT_LIMIT:
                break
        facts.distinct = distinct if len(distinct) <= DISTINCT_LIMIT else None
        facts.binary = facts.integer and facts.minimum >= 0.0 and facts.maximum <= 1.0
        if pred is not None and pred.ndim == 1 and pred.size:
            facts.pred_min, facts.pred_max = float(pred.min()), float(pred.max())
        return facts

    def merge(self, later: TargetFacts) -> None:
        """Fold in the facts of the rows that follow."""
        self.rows += later.rows
        self.integer = self.integer and later.integer
        self.minimum, self.maximum = min(self.minimum, later.minimum), max(self.maximum,
                                                                             later.maximum)
        if self.distinct is not None and later.distinct is not None:
            self.distinct |= later.distinct
            if len(self.distinct) > DISTINCT_LIMIT:
                self.distinct = None
        else:
            self.distinct = None
        self.binary = self.binary and later.binary
        self.pred_min = min(self.pred_min, later.pred_min)
        self.pred_max = max(self.pred_max, later.pred_max)

    @property
    def unit_pred(self) -> bool:
        """Every prediction lies in [0, 1] (true when there are none)."""
        return (self.pred_min >= 0.0 and self.pred_max <= 1.0) or self.pred_min > self.pred_max

    @property
    def counts(self) -> bool:
        """Non-negative integers."""
        return self.rows > 0 and self.integer and self.minimum >= 0.0


#: Predictions this far outside [0, 1] (below -MARGIN_REACH or above 1 + MARGIN_REACH) read
#: as SVM-style decision values rather than probabilities off by rounding: the messages then
#: name the hinge losses too.
MARGIN_REACH = 0.5


def margin_hint(outside: np.ndarray, loss: str) -> str:
    """The hinge suggestion for predictions outside [0, 1], when they reach far enough out to
    be margins; '' otherwise."""
    if not outside.size:
        return ""
    return _margin_text(float(outside.min()), float(outside.max()), loss)


def looks_like_margins(low: float, high: float) -> bool:
    """Predictions reaching this far outside [0, 1] read as margins (see MARGIN_REACH)."""
    return low < -MARGIN_REACH or high > 1.0 + MARGIN_REACH


def _margin_text(low: float, high: float, loss: str) -> str:
    if not looks_like_margins(low, high):
        return ""
    return (f"; if they are SVM-style margins, score them with --loss {loss} (log loss on "
            "margins needs them calibrated into probabilities first, e.g. Platt scaling)")


@dataclass(frozen=True)
class Detection:
    """A task and one sentence that says why."""

    task: Task
    reason: str


def detect(facts: TargetFacts, *, target: str, pred: str | None, logits: bool,
           task: Task | None = None, classes: int | None = None, how: str = "",
           where: str = "", float_target: bool = False) -> Detection:
    """The task of the data (see the module docstring for the rules).

    ``pred`` names the prediction column (None: target-only); ``classes`` is the number of
    classes when several prediction columns (or a list column) were selected, ``how`` says
    which. ``where`` names the input in the error raised when the data reads two ways.
    ``float_target``: the target column is stored as floating point (never counts).
    """
    if task is not None:
        return Detection(task, f"--task {task} was given.")
    if classes is not None:
        return Detection("multiclass", f"{how or 'several prediction columns'} "
                                       f"({classes} classes).")
    k = len(facts.distinct) if facts.distinct is not None else None
    ktext = (f"{k} distinct value(s)" if k is not None
             else f"more than {DISTINCT_LIMIT} distinct values")
    tname = f"target '{target}'"
    if facts.binary:
        if pred is None:
            return Detection("binary", f"The {tname} takes only the values 0 and 1.")
        if logits:
            return Detection("binary", f"The {tname} takes only the values 0 and 1 and --logits "
                                       "was given.")
        if facts.unit_pred:
            return Detection("binary", f"The {tname} takes only the values 0 and 1 and the "
                                       "predictions lie in [0, 1].")
        lo = message_number(facts.pred_min, 0.0, 1.0)
        hi = message_number(facts.pred_max, 0.0, 1.0)
        raise UsageError(
            f"{where + ': ' if where else ''}the {tname} takes only the values 0 and 1, but "
            f"prediction '{pred}' leaves [0, 1] (min {lo}, max {hi}): pass --logits if they "
            "are log-odds (logits) of a binary model; margins (an SVM's decision_function) "
            "are not: calibrate them into probabilities (scikit-learn's "
            "CalibratedClassifierCV)"
            + (", score them with --loss hinge"
               if looks_like_margins(facts.pred_min, facts.pred_max) else "")
            + ", or pass --task regression to score them as values")
    extra = ""
    if k == 2 and facts.distinct is not None:
        a, b = sorted(facts.distinct)
        pair = f"{format_number(a)}, {format_number(b)}"
        if pred is not None and not logits and facts.unit_pred:
            # two classes coded otherwise (-1/1, 1/2) with probabilities: binary or values?
            raise UsageError(
                f"{where + ': ' if where else ''}the {tname} takes two values ({pair}) and "
                f"prediction '{pred}' lies in [0, 1], as for a binary model: recode the target "
                f"as 0/1 to score it as binary, or pass --task regression to score the values")
        extra = f" It takes two values ({pair}); recode them as 0/1 to treat it as binary."
    if facts.counts and float_target:
        lo, hi = format_number(facts.minimum), format_number(facts.maximum)
        return Detection("regression", f"The {tname} is a float column of whole numbers "
                                       f"({ktext}, {lo}..{hi}): measured amounts. Pass --task "
                                       "counts if they are counts." + extra)
    if facts.counts:
        lo, hi = format_number(facts.minimum), format_number(facts.maximum)
        text = f"The {tname} holds non-negative integers ({ktext}, {lo}..{hi}): counts." + extra
        if k is not None and k > 2 and pred is None:
            text += " Pass --task multiclass if they are class labels."
        elif k is None:
            text += " Pass --task regression if they are measured amounts, not counts."
        return Detection("counts", text)
    what = ("non-integer values" if not facts.integer
            else f"negative integers (min {format_number(facts.minimum)})")
    return Detection("regression", f"The {tname} is continuous: {what}, {ktext}." + extra)


def check_task(name: str | None, also: tuple[str, ...] = ()) -> Task | None:
    """A ``--task`` value, checked; ``also`` names the command's own tasks for the message
    (eval's multilabel, which the caller handles)."""
    if name is None:
        return None
    for task in TASKS:
        if name == task:
            return task
    raise UsageError(f"--task must be one of {', '.join((*TASKS, *also))}, got '{name}'")
