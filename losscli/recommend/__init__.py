"""Recommend a training loss from the task type and measured outlier / imbalance evidence.

``recommend(source, pred, target)`` streams the residuals e = pred - target (or, without
predictions, the target itself) through bounded-memory accumulators -- ``Moments`` (order 4) and
a pilot-centred pair of signed ``LogHistogram``s for the median and the MAD --, detects the task,
applies :data:`RULES` and returns a :class:`Recommendation` (plain data; ``to_dict()`` is the
``losscli.recommend/1`` JSON document). Without a source it explains the rules for a task,
optionally applied to properties the caller states (:class:`Hints`).

Robust scale: MAD is shift-invariant, so each value is centred on a pilot (the exact median of
the first :data:`PILOT_ROWS` rows, whatever the chunking) and (e - pilot) goes to a positive and a
negative log histogram. The median and the MAD are read from the bucket midpoints, each within
alpha = HIST_ALPHA (0.39%) of its values, so the MAD is within alpha (1 + 2 |median - pilot| / MAD).
When that bound exceeds alpha (1 + 2 PILOT_TOLERANCE) = 0.59% and the source can be read again (a
file, a directory, in-memory data; not stdin), another pass re-centres on the median found, which
brings the bound down to ~alpha.

The package, by the parts of a recommendation: :mod:`~losscli.recommend.thresholds` (the numbers
the rules read), :mod:`~losscli.recommend.model` (the result), :mod:`~losscli.recommend.accumulate`
(the mergeable states of the passes and their reduction), :mod:`~losscli.recommend.evidence`
(state -> evidence, loss values, histogram), :mod:`~losscli.recommend.rules` (facts -> loss) and
:mod:`~losscli.recommend.driver` (the passes over one read plan).
"""

from losscli.recommend.driver import recommend
from losscli.recommend.model import (
    Choice,
    EvalArgs,
    Evidence,
    Hints,
    Histogram,
    HistogramBin,
    Recommendation,
    Rule,
)
from losscli.recommend.rules import DETECTION, RULES, rules_for
from losscli.recommend.thresholds import (
    CONFIDENT_WRONG_P,
    EXTREMELY_RARE_MINORITY,
    FOCAL_GAMMA,
    HEAVY_TAIL_KURTOSIS,
    HUBER_K,
    IMBALANCE_RATIO,
    MAD_TO_SIGMA,
    MAX_CENTRING_PASSES,
    MAX_CLASSES,
    OUTLIER_SHARE_LARGE,
    OUTLIER_SHARE_NOTABLE,
    OUTLIER_Z,
    PILOT_ROWS,
    PILOT_TOLERANCE,
    QUARTILE_SKEW_NOTABLE,
    RARE_MINORITY,
    REC_TASKS,
    SCHEMA,
    THRESHOLDS,
    RecTask,
)

__all__ = ["CONFIDENT_WRONG_P", "DETECTION", "EXTREMELY_RARE_MINORITY", "FOCAL_GAMMA",
           "HEAVY_TAIL_KURTOSIS", "HUBER_K", "IMBALANCE_RATIO", "MAD_TO_SIGMA",
           "MAX_CENTRING_PASSES", "MAX_CLASSES", "OUTLIER_SHARE_LARGE", "OUTLIER_SHARE_NOTABLE",
           "OUTLIER_Z", "PILOT_ROWS", "PILOT_TOLERANCE", "QUARTILE_SKEW_NOTABLE", "RARE_MINORITY",
           "REC_TASKS", "RULES", "SCHEMA", "THRESHOLDS", "Choice", "EvalArgs", "Evidence", "Hints",
           "Histogram", "HistogramBin", "RecTask", "Recommendation", "Rule", "recommend",
           "rules_for"]
