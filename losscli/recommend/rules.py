"""The rules: from measured (or stated) facts to a loss, per task."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from losscli.errors import UsageError
from losscli.losses import BALANCED, balanced_class_weights
from losscli.recommend.model import (
    Choice,
    EvalArgs,
    Hints,
    ParamValue,
    Recommendation,
    Rule,
    add_commands,
    choice,
    num,
    pct,
    sig,
)
from losscli.recommend.thresholds import (
    EXTREMELY_RARE_MINORITY,
    FOCAL_GAMMA,
    HEAVY_TAIL_KURTOSIS,
    HUBER_K,
    IMBALANCE_RATIO,
    OUTLIER_SHARE_LARGE,
    OUTLIER_SHARE_NOTABLE,
    OUTLIER_Z,
    POSITIVE_SKEW,
    QUARTILE_SKEW_NOTABLE,
    RARE_MINORITY,
    TWEEDIE_POWER,
    ZERO_MASS,
    RecTask,
)

#: Rules on the measured shape of the target, tried before RULES (with data only).
TARGET_RULES: tuple[Rule, ...] = (
    Rule("regression", f"targets >= 0 with >= {ZERO_MASS:.0%} exact zeros and non-integer "
         "positive values (zero-inflated amounts)", "tweedie",
         f"power = {TWEEDIE_POWER:g}, predictions > 0"),
    Rule("regression", f"targets > 0 with skewness > {POSITIVE_SKEW:g} (positive, "
         "right-skewed)", "gamma", "predictions > 0 (else msle, predictions > -1)"),
)

RULES: tuple[Rule, ...] = (
    Rule("regression", f"outlier fraction > {OUTLIER_SHARE_LARGE:.0%} (a large share)", "mae",
         "-"),
    Rule("regression", f"outlier fraction > {OUTLIER_SHARE_NOTABLE:.0%} or excess kurtosis > "
         f"{HEAVY_TAIL_KURTOSIS:g} (outliers or heavy tails)", "huber",
         f"delta = {HUBER_K} x robust scale"),
    Rule("regression", "otherwise (Gaussian-like residuals)", "mse", "-"),
    Rule("counts", "non-negative integer targets", "poisson", "predictions are rates > 0"),
    Rule("binary", f"minority share < {EXTREMELY_RARE_MINORITY:.0%} (extremely rare)", "focal",
         f"gamma = {FOCAL_GAMMA:g}, alpha = n_neg / n"),
    Rule("binary", f"minority share < {RARE_MINORITY:.0%} (rare)", "bce",
         "pos_weight = n_neg / n_pos"),
    Rule("binary", "otherwise", "bce", "-"),
    Rule("multiclass", f"largest / smallest class >= {IMBALANCE_RATIO:g} (imbalanced)", "cce",
         "class weights n / (k n_c)"),
    Rule("multiclass", "otherwise", "cce", "-"),
)

DETECTION = (
    "several prediction columns (or a list column) -> multiclass; target values only 0 and 1 "
    "(and predictions in [0, 1], or --logits) -> binary; non-negative integer targets -> counts; "
    "anything else -> regression. --task overrides."
)


# --- the rules --------------------------------------------------------------------------------


@dataclass
class Facts:
    """What the rules read: measured numbers, or properties the caller stated."""

    measured: bool
    outlier_fraction: float | None = None
    excess_kurtosis: float | None = None
    skewness: float | None = None
    quartile_skewness: float | None = None
    robust_scale: float | None = None
    outliers_stated: bool = False
    heavy_stated: bool = False
    minority_share: float | None = None
    imbalanced_stated: bool = False
    class_counts: list[int] | None = None
    labels: list[str] | None = None
    # the target's shape (regression, measured)
    target_min: float | None = None
    target_skewness: float | None = None
    zero_fraction: float | None = None
    target_integer: bool = False
    #: the smallest prediction (None without predictions)
    pred_min: float | None = None
    #: the measured spread is a model's residuals (False in a target-only analysis: the
    #: target's own spread says nothing of the residuals that huber's delta is scaled to)
    residuals: bool = True


#: huber's delta when the residuals are not measured (no data, or the target only).
DELTA_FROM_RESIDUALS = f"delta = {HUBER_K} x the robust scale (1.4826 x MAD) of a model's residuals"


def huber_delta(f: Facts) -> tuple[float | None, str]:
    """huber's delta and how it was set: measured from the residuals, else None (a target's
    spread is not a residual's: delta=104900 for house prices fits no model)."""
    if f.residuals and f.robust_scale is not None and f.robust_scale > 0:
        return (sig(HUBER_K * f.robust_scale), f"delta = {HUBER_K} x robust scale "
                f"{num(f.robust_scale)} = {num(HUBER_K * f.robust_scale)}")
    return None, DELTA_FROM_RESIDUALS


def regression_rules(f: Facts) -> tuple[Choice, list[Choice], list[str]]:
    """The target's shape first (zero-inflated amounts, positive right-skewed values), then the
    residuals' (outliers, heavy tails)."""
    rec, alts, reasons = residual_rules(f)
    shaped = target_shape_rules(f, rec)
    if shaped is None:
        return rec, alts, reasons
    # the residual rules' notes (the asymmetry of the values) still hold
    return shaped[0], shaped[1], shaped[2] + [r for r in reasons if r.startswith("Note:")]


def target_shape_rules(f: Facts, robust: Choice) -> tuple[Choice, list[Choice],
                                                          list[str]] | None:
    """Losses on the target's own scale: Tweedie for zero-inflated amounts, Gamma / squared
    log error for positive right-skewed ones; None when neither applies (or the predictions
    leave their domain). ``robust`` is the residual rules' choice, kept as an alternative."""
    lo, skew, zeros = f.target_min, f.target_skewness, f.zero_fraction
    if lo is None or skew is None or zeros is None or not math.isfinite(skew):
        return None
    positive_preds = f.pred_min is None or f.pred_min > 0.0
    kept = ("If the errors should count in the target's own units (no relative scale): the "
            "residual rules' choice.")
    if lo == 0.0 and zeros >= ZERO_MASS and not f.target_integer and positive_preds:
        reasons = [f"{pct(zeros)} of the targets are exactly 0 (at or above the "
                   f"{pct(ZERO_MASS)} zero-mass threshold) and the rest are positive "
                   "non-integer amounts: zero-inflated amounts.",
                   f"Tweedie deviance with power {TWEEDIE_POWER:g} (compound Poisson-Gamma, "
                   "1 < p < 2) gives the zeros a probability mass and a Gamma-like spread to "
                   "the positive part; tune the power on held-out data."]
        rec = choice("tweedie", {"power": TWEEDIE_POWER})
        alts = [choice("poisson", {}, "Tweedie at power 1: the same mean model, with the "
                       "variance growing as the mean instead of mean^1.5."), robust]
        robust.reason = kept
        return rec, alts, reasons
    if lo > 0.0 and skew > POSITIVE_SKEW and (f.pred_min is None or f.pred_min > -1.0):
        reasons = [f"Every target is > 0 (min {num(lo)}) and their skewness {num(skew)} is "
                   f"above the {num(POSITIVE_SKEW)} threshold (normal 0, exponential 2): "
                   "positive, right-skewed amounts whose errors grow with their level."]
        msle = choice("msle", {}, "The squared error of log(1 + value): relative errors, "
                      "robust to the largest values, and defined down to -1.")
        robust.reason = kept
        if positive_preds:
            reasons.append("The Gamma deviance measures errors relative to the prediction "
                           "(its variance grows as the mean squared), so large and small "
                           "amounts count alike.")
            return choice("gamma"), [msle, robust], reasons
        reasons.append(f"Some predictions are <= 0 (min {num(f.pred_min or 0.0)}), outside "
                       "the Gamma deviance's domain: the squared log error takes them.")
        return msle, [robust], reasons
    return None


def residual_rules(f: Facts) -> tuple[Choice, list[Choice], list[str]]:
    delta, dtext = huber_delta(f)
    huber_params: dict[str, ParamValue] = {"delta": delta}
    frac, kurt = f.outlier_fraction, f.excess_kurtosis
    large = (frac is not None and frac > OUTLIER_SHARE_LARGE)
    some = f.outliers_stated or (frac is not None and frac > OUTLIER_SHARE_NOTABLE)
    heavy = f.heavy_stated or (kurt is not None and kurt > HEAVY_TAIL_KURTOSIS)
    reasons: list[str] = []
    if large:
        assert frac is not None
        reasons.append(f"The outlier fraction {pct(frac)} (|e - median| > {OUTLIER_Z:g} robust "
                       f"scales) is above the {pct(OUTLIER_SHARE_LARGE)} large-share threshold, "
                       "where mae (median regression, 50% breakdown point) has the smallest "
                       "worst-case bias.")
        rec = choice("mae", {}, "")
        alts = [choice("huber", huber_params, f"Robust with 95% efficiency on the clean part "
                        f"({dtext}), but the {pct(frac)} outliers still pull it more than mae."),
                choice("mse", {}, f"Not advised: squared errors let the {pct(frac)} outliers "
                        "dominate the fit.")]
    elif some or heavy:
        if frac is not None and frac > OUTLIER_SHARE_NOTABLE:
            reasons.append(f"The outlier fraction {pct(frac)} (|e - median| > {OUTLIER_Z:g} "
                           f"robust scales) is above {pct(OUTLIER_SHARE_NOTABLE)} (normal "
                           "residuals: 0.047%), so squared errors would be dominated by them.")
        elif f.outliers_stated:
            reasons.append("You stated that outliers are present, so squared errors would be "
                           "dominated by them.")
        if kurt is not None and kurt > HEAVY_TAIL_KURTOSIS:
            reasons.append(f"The excess kurtosis {num(kurt)} is above {num(HEAVY_TAIL_KURTOSIS)} "
                           "(normal: 0): the tails are heavier than Gaussian.")
        elif f.heavy_stated:
            reasons.append("You stated that the tails are heavy.")
        reasons.append(f"Huber is quadratic near zero and linear in the tails; {dtext} keeps "
                       "95% efficiency at the normal while bounding each outlier's pull.")
        rec = choice("huber", huber_params)
        share = pct(frac) if frac is not None else "the"
        alts = [choice("mae", {}, f"More robust still (50% breakdown point), at 64% efficiency "
                        f"on Gaussian noise; prefer it if {share} outliers grow past "
                        f"{pct(OUTLIER_SHARE_LARGE)}."),
                choice("mse", {}, "Not advised: the outliers / heavy tails would dominate the "
                        "squared errors.")]
    else:
        if f.measured:
            assert frac is not None and kurt is not None
            reasons.append(f"The outlier fraction {pct(frac)} is at most "
                           f"{pct(OUTLIER_SHARE_NOTABLE)} (normal residuals: 0.047%).")
            reasons.append(f"The excess kurtosis {num(kurt)} is at most "
                           f"{num(HEAVY_TAIL_KURTOSIS)} (normal: 0): the tails look Gaussian.")
        else:
            reasons.append("No outliers or heavy tails stated: residuals assumed Gaussian-like.")
        reasons.append("For Gaussian noise mse is the maximum-likelihood loss and the most "
                       "efficient.")
        rec = choice("mse")
        alts = [choice("huber", huber_params, f"A safe fallback if outliers appear later "
                        f"({dtext}): 95% as efficient as mse on Gaussian noise."),
                choice("mae", {}, "Only 64% as efficient as mse on Gaussian noise; worth it "
                        "only with many outliers.")]
    qs = f.quartile_skewness
    if qs is not None and math.isfinite(qs) and abs(qs) > QUARTILE_SKEW_NOTABLE:
        reasons.append(f"Note: the quartile skewness {num(qs)} (moment skewness "
                       f"{num(f.skewness if f.skewness is not None else math.nan)}) exceeds "
                       f"{num(QUARTILE_SKEW_NOTABLE)} in magnitude: the values are asymmetric; a "
                       "log transform of the target or a quantile loss may fit better.")
    return rec, alts, reasons


def counts_rules(f: Facts) -> tuple[Choice, list[Choice], list[str]]:
    reasons = ["Counts are modelled by a Poisson rate: the mean Poisson deviance is its "
               "log-likelihood, with variance growing with the mean."]
    rec = choice("poisson")
    delta, dtext = huber_delta(f)
    alts = [choice("mse", {}, "If predictions can be zero or negative (no log link): the "
                    "squared error of the counts."),
            choice("huber", {"delta": delta}, f"If a few counts are extreme: {dtext}."),
            choice("mae", {}, "Predicts the median count, not the mean rate.")]
    return rec, alts, reasons


def binary_rules(f: Facts) -> tuple[Choice, list[Choice], list[str]]:
    counts = f.class_counts
    share = f.minority_share
    reasons: list[str] = []
    pos_weight: float | str | None = None
    alpha: float | str | None = None
    if counts is not None and counts[0] > 0 and counts[1] > 0:
        pos_weight = sig(counts[0] / counts[1])
        alpha = sig(counts[0] / (counts[0] + counts[1]))
    elif share is not None and 0 < share < 1:
        pos_weight = sig((1.0 - share) / share)
        alpha = sig(1.0 - share)
    elif not f.measured:  # no data: eval measures them (n_neg / n_pos, n_neg / n)
        pos_weight, alpha = BALANCED, BALANCED
    minority = "positive" if counts is None or counts[1] <= counts[0] else "negative"
    ratio = (f"pos_weight = n_neg / n_pos = {counts[0]:,} / {counts[1]:,} = {num(pos_weight)}"
             if counts is not None and isinstance(pos_weight, float) else
             f"pos_weight = n_neg / n_pos = {num(pos_weight)}" if isinstance(pos_weight, float)
             else "pos_weight = n_neg / n_pos")
    extreme = share is not None and share < EXTREMELY_RARE_MINORITY
    rare = f.imbalanced_stated or (share is not None and share < RARE_MINORITY)
    focal = choice("focal", {"gamma": FOCAL_GAMMA, "alpha": alpha})
    weighted = choice("bce", {"pos_weight": pos_weight})
    plain = choice("bce")
    if extreme:
        assert share is not None
        reasons.append(f"The minority ({minority}) class is {pct(share)} of the rows, below the "
                       f"{pct(EXTREMELY_RARE_MINORITY)} extremely-rare threshold.")
        reasons.append(f"Focal loss (gamma = {FOCAL_GAMMA:g}) down-weights the many easy "
                       f"majority examples; alpha = n_neg / n = "
                       f"{num(alpha) if isinstance(alpha, float) else '-'} "
                       "balances the classes as pos_weight would (tune it: Lin et al. used "
                       "0.25 with gamma = 2).")
        rec = focal
        weighted.reason = f"Simpler and often as good: bce with {ratio}."
        plain.reason = ("Keeps probabilities calibrated, but the rare class contributes "
                        f"only {pct(share)} of the gradient signal.")
        alts = [weighted, plain]
    elif rare:
        if share is not None:
            reasons.append(f"The minority ({minority}) class is {pct(share)} of the rows, below "
                           f"the {pct(RARE_MINORITY)} rare threshold.")
        else:
            reasons.append("You stated that the classes are imbalanced.")
        reasons.append(f"bce with {ratio} gives both classes equal total weight.")
        rec = weighted
        focal.reason = (f"If the weighted loss still under-fits the rare class: focal with "
                        f"gamma = {FOCAL_GAMMA:g}.")
        plain.reason = ("Unweighted bce keeps calibrated probabilities; reweight the decision "
                        "threshold instead.")
        alts = [plain, focal]
    else:
        if share is not None:
            reasons.append(f"The minority ({minority}) class is {pct(share)} of the rows, not "
                           f"below the {pct(RARE_MINORITY)} rare threshold: no reweighting.")
        else:
            reasons.append("No imbalance stated: the classes are assumed balanced enough.")
        reasons.append("bce (log loss) is the binary log-likelihood: calibrated probabilities.")
        rec = plain
        weighted.reason = f"If the minority class matters more than its share: bce with {ratio}."
        focal.reason = f"For many easy examples: focal with gamma = {FOCAL_GAMMA:g}."
        alts = [weighted, focal]
    return rec, alts, reasons


def multiclass_rules(f: Facts) -> tuple[Choice, list[Choice], list[str]]:
    counts = f.class_counts
    weights: list[float] | str | None = None
    ratio = math.nan
    if counts is not None and len(counts) > 0:
        present = [c for c in counts if c > 0]
        ratio = max(present) / min(present) if present else math.nan
        weights = list(balanced_class_weights(np.asarray(counts)))
    elif not f.measured:  # no data: eval measures them
        weights = BALANCED
    imbalanced = f.imbalanced_stated or (math.isfinite(ratio) and ratio >= IMBALANCE_RATIO)
    wtext = ("class weights n / (k n_c)" if not isinstance(weights, list) else
             "class weights n / (k n_c) = " + ", ".join(num(w) for w in weights[:8])
             + (", ..." if len(weights) > 8 else ""))
    reasons: list[str] = []
    weighted = choice("cce", {"class_weights": weights})
    plain = choice("cce")
    if imbalanced:
        if math.isfinite(ratio):
            assert counts is not None
            labels = f.labels or [str(i) for i in range(len(counts))]
            big = labels[int(np.argmax(counts))]
            small = labels[min((c, i) for i, c in enumerate(counts) if c > 0)[1]]
            reasons.append(f"The largest class ({big}) has {num(ratio)}x the rows of the "
                           f"smallest ({small}), at or above the {IMBALANCE_RATIO:g}x imbalance "
                           "threshold.")
        else:
            reasons.append("You stated that the classes are imbalanced.")
        reasons.append(f"cce with {wtext} gives every class the same total weight.")
        rec = weighted
        plain.reason = "Unweighted cce keeps calibrated probabilities for the true class mix."
        alts = [plain]
    else:
        if math.isfinite(ratio):
            reasons.append(f"The largest class has {num(ratio)}x the rows of the smallest, below "
                           f"the {IMBALANCE_RATIO:g}x imbalance threshold: no class weights.")
        else:
            reasons.append("No imbalance stated: classes are assumed balanced enough.")
        reasons.append("cce is the multiclass log-likelihood: calibrated probabilities.")
        rec = plain
        weighted.reason = f"If the rarer classes matter more than their share: {wtext}."
        alts = [weighted]
    missing = [i for i, c in enumerate(counts or []) if c == 0]
    if missing:
        reasons.append(f"Note: {len(missing)} class(es) never occur as a target; their weight "
                       "is 0.")
    return rec, alts, reasons


RULE_FNS: dict[RecTask, Callable[[Facts], tuple[Choice, list[Choice], list[str]]]] = {
    "regression": regression_rules,
    "counts": counts_rules,
    "binary": binary_rules,
    "multiclass": multiclass_rules,
}


def rules_for(task: RecTask, measured: bool = False) -> list[Rule]:
    """The selection rules of one task, in the order they are tried (those on the target's
    measured shape first, with data)."""
    return [r for r in (*(TARGET_RULES if measured else ()), *RULES) if r.task == task]


# --- no data: the rules -----------------------------------------------------------------------


def rules_only(task: RecTask, hints: Hints) -> Recommendation:
    facts = Facts(measured=False, outliers_stated=hints.outliers,
                   heavy_stated=hints.heavy_tails, outlier_fraction=hints.outlier_fraction,
                   minority_share=hints.minority_share, imbalanced_stated=hints.imbalanced)
    if task in ("regression", "counts") and (hints.imbalanced or hints.minority_share is not None):
        raise UsageError(f"--imbalanced and --minority-share describe classes; the task is {task}")
    if task in ("binary", "multiclass", "counts") and (
            hints.outliers or hints.heavy_tails or hints.outlier_fraction is not None):
        raise UsageError(f"--outliers, --heavy-tails and --outlier-fraction describe regression "
                         f"residuals; the task is {task}")
    if task == "multiclass" and hints.minority_share is not None:
        raise UsageError("--minority-share applies to binary tasks; for multiclass pass "
                         "--imbalanced")
    rec, alts, reasons = RULE_FNS[task](facts)
    add_commands([rec, *alts], EvalArgs())
    stated = [s for s, on in (
        ("outliers present", hints.outliers), ("heavy tails", hints.heavy_tails),
        (f"outlier fraction {pct(hints.outlier_fraction or 0)}",
         hints.outlier_fraction is not None),
        ("imbalanced classes", hints.imbalanced),
        (f"minority share {pct(hints.minority_share or 0)}", hints.minority_share is not None),
    ) if on]
    why = f"--task {task} was given" + (f"; stated: {', '.join(stated)}." if stated else
                                        "; no data, so no evidence was measured.")
    notes = [f"Task detection (with data): {DETECTION}",
             "With data, every number in these rules is measured: run losscli recommend "
             "FILE --pred COL --target COL."]
    return Recommendation(task=task, task_reason=why, recommended=rec, alternatives=alts,
                          reasons=reasons, mode="rules", notes=notes, rules=rules_for(task))
