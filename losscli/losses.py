"""The loss catalog: each loss is a declarative :class:`LossDef` with vectorised value and gradient.

The engine never special-cases a loss by name: it calls ``compute`` on a :class:`Batch` and gets
the per-sample loss l_i and the per-sample gradient g_i = d l_i / d prediction_i (with respect to
the logit for logit input, and the L2 norm of the gradient row for multiclass predictions).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

Task = Literal["regression", "binary", "multiclass"]
#: A parameter's value: a number, a list of numbers (class weights), "balanced" (measured from
#: the class counts of the input), or None (unset).
ParamValue = float | tuple[float, ...] | str | None
Params = Mapping[str, ParamValue]
#: The value of a class-weight parameter that is measured from the input's class counts.
BALANCED = "balanced"
TASKS: tuple[Task, ...] = ("regression", "binary", "multiclass")

#: Probabilities are clipped to [EPS, 1 - EPS] before taking logs (scikit-learn's ``log_loss``).
EPS = sys.float_info.epsilon  # 2.220446049250313e-16, np.finfo(np.float64).eps
_LOG2 = math.log(2.0)


@dataclass
class Batch:
    """One chunk of validated rows. ``pred`` is (n,) or, for multiclass, (C, n) class-major."""

    pred: np.ndarray
    target: np.ndarray
    weight: np.ndarray | None
    logits: bool = False
    _cache: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    #: the predicted variance (``--var``), for the losses that read one (gaussian_nll)
    var: np.ndarray | None = None
    #: soft targets (C, n), class-major like ``pred`` (``--target 'q_*'``); ``target`` then
    #: holds each row's most probable class
    soft: np.ndarray | None = None
    #: multilabel targets (L, n) of 0 and 1, one row per label of ``pred`` (L, n)
    labels: np.ndarray | None = None

    @property
    def n(self) -> int:
        return int(self.target.shape[0])

    def residual(self) -> np.ndarray:
        """e = prediction - target, computed once per chunk and shared by the regression losses."""
        e = self._cache.get("e")
        if e is None:
            e = self._cache["e"] = np.subtract(self.pred, self.target)
        return e

    def abs_residual(self) -> np.ndarray:
        a = self._cache.get("abs_e")
        if a is None:
            a = self._cache["abs_e"] = np.abs(self.residual())
        return a


@dataclass(frozen=True)
class Param:
    """A loss parameter with its default and its valid range (of each item, for a list)."""

    name: str
    default: float | None
    doc: str
    valid: Callable[[float], bool]
    valid_text: str
    #: "list": a comma list of numbers (``class_weights=1,2,3``); "bool": true or false (held
    #: as 1.0 or 0.0)
    kind: Literal["number", "list", "bool"] = "number"
    #: also accepts ``balanced``: measured from the class counts in the same pass
    balanced: bool = False


@dataclass(frozen=True)
class Computed:
    """Per-sample values and gradients of one chunk, and how many probabilities were clipped."""

    values: np.ndarray
    grads: np.ndarray
    clipped: int = 0
    #: |grads|, when the loss has it at hand anyway (saves the engine a pass)
    abs_grads: np.ndarray | None = None
    #: d l_i / d var_i, for a loss of a predicted variance (gaussian_nll)
    var_grads: np.ndarray | None = None
    #: multilabel: each label's loss (L, n), whose mean over labels is ``values``
    label_values: np.ndarray | None = None


ComputeFn = Callable[[Batch, Params], Computed]
CheckFn = Callable[[Batch, Params], "DomainProblem | None"]


@dataclass(frozen=True)
class ClassWeighting:
    """How a class-weight parameter scales a loss: row i's loss and gradient are multiplied by
    a_{y_i}, the multiplier of its class. ``normalise`` reduces by sum(w a_y) instead of sum(w)
    (PyTorch's CrossEntropyLoss(weight=...); BCEWithLogitsLoss(pos_weight=...) does not)."""

    param: str
    #: the parameter value that leaves every row unscaled (the loss without class weights)
    neutral: ParamValue
    #: (parameter value, number of classes) -> the per-class multipliers a_c
    multipliers: Callable[[ParamValue, int], np.ndarray]
    #: class counts n_c -> the parameter's ``balanced`` value
    balanced: Callable[[np.ndarray], ParamValue]
    #: the rule of ``balanced``, for reports
    balanced_rule: str
    normalise: bool = False


def _binary_multipliers(neg: float, pos: float) -> np.ndarray:
    return np.array([neg, pos], dtype=np.float64)


def balanced_class_weights(counts: np.ndarray) -> tuple[float, ...]:
    """n / (k n_c) over the k classes present (scikit-learn's compute_class_weight("balanced")
    with the classes found in y); an absent class gets 0 (it has no rows to weight)."""
    counts = np.asarray(counts, dtype=np.float64)
    present = counts > 0
    k = int(np.count_nonzero(present))
    n = float(counts.sum())
    return tuple(float(n / (k * c)) if c > 0 else 0.0 for c in counts)


def _pos_weight_balanced(counts: np.ndarray) -> float:
    return float(counts[0]) / float(counts[1]) if counts[1] > 0 else math.inf


def _alpha_balanced(counts: np.ndarray) -> float:
    return float(counts[0]) / float(counts[0] + counts[1])


POS_WEIGHT = ClassWeighting(
    "pos_weight", 1.0, lambda v, k: _binary_multipliers(1.0, float(v)),  # type: ignore[arg-type]
    _pos_weight_balanced, "n_neg / n_pos")
FOCAL_ALPHA = ClassWeighting(
    "alpha", None,
    lambda v, k: _binary_multipliers(1.0, 1.0) if v is None else _binary_multipliers(
        1.0 - float(v), float(v)),  # type: ignore[arg-type]
    _alpha_balanced, "n_neg / n")
CLASS_WEIGHTS = ClassWeighting(
    "class_weights", None,
    lambda v, k: np.ones(k) if v is None else np.asarray(v, dtype=np.float64),
    balanced_class_weights, "n / (k n_c), k = classes present", normalise=True)


def row_multipliers(a: np.ndarray, target: np.ndarray) -> np.ndarray:
    """a_{y_i} for every row: the class multiplier of each row's target."""
    return a[target.astype(np.intp, copy=False)]


@dataclass(frozen=True)
class DomainProblem:
    """Rows of a chunk outside a loss's domain: which column, how many, the first, and why."""

    column: Literal["pred", "target", "var"]
    count: int
    first: int
    message: str


@dataclass(frozen=True)
class LossDef:
    """One loss of the catalog."""

    name: str
    task: Task
    summary: str
    formula: str
    gradient: str
    compute: ComputeFn
    params: tuple[Param, ...] = ()
    #: ``sqrt`` for rmse: the reported value is sqrt(mean l_i) and g_i is scaled by 1/value.
    reduce: Literal["mean", "sqrt"] = "mean"
    #: g = coef * e ("linear"), sign(e) ("sign") or clip(e, -d, d) / s ("clipped"): the gradient
    #: statistics then follow from the residual's, computed once per chunk for all such losses.
    grad_form: Literal["linear", "sign", "clipped"] | None = None
    grad_coef: float = 1.0
    #: l = e^2 ("square") or |e| ("abs"); required with "linear" and "sign", so that the engine
    #: can take both from the residual summary without calling ``compute``. "clipped" implies
    #: l = m (|e| - m/2) / s with m = min(|e|, d).
    value_form: Literal["square", "abs"] | None = None
    #: (d, s) of a "clipped" loss from its parameters.
    clip_of: Callable[[Params], tuple[float, float]] | None = None
    #: |g| as a non-decreasing function of |e|: lets one residual histogram serve all quantiles.
    abs_grad_of_abs_residual: Callable[[float, Params], float] | None = None
    check: CheckFn | None = None
    uses_probabilities: bool = False
    #: takes soft targets (one probability column per class) as well as class labels
    soft_targets: bool = False
    #: reads a second prediction column, the predicted variance (``--var COL``, gaussian_nll)
    uses_var: bool = False
    #: reads the predictions as decision values (margins) of any size, with or without --logits
    #: (hinge losses): no [0, 1] check
    decision_values: bool = False
    aliases: tuple[str, ...] = ()
    #: the class-weight parameter, when the loss has one
    class_weighting: ClassWeighting | None = None
    #: where a loss that is not in the built-in catalog came from (a plugin), for messages
    origin: str | None = None
    #: the library function whose semantics the loss pins (``losses`` and the README say it)
    reference: str = ""
    #: parameters -> why they do not go together (None: they do); checked when a spec is parsed
    validate: Callable[[Params], str | None] | None = None
    #: every row's loss is >= 0 whatever the data (a distance, a deviance, a cross-entropy): an
    #: interval of its mean never goes below 0. False when the loss can be negative
    #: (likelihoods with their constants, KL against predictions that do not sum to 1) or is
    #: not known to be (plugins)
    non_negative: bool = False

    def param(self, name: str) -> Param | None:
        return next((p for p in self.params if p.name == name), None)

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        """Pickled by name (its functions are looked up again where it is unpickled), so that
        states cross processes; a plugin's loss pickles by origin too (losscli.registry)."""
        return catalog_loss, (self.name,)


def _positive(v: float) -> bool:
    return v > 0.0 and math.isfinite(v)


def _first(mask: np.ndarray) -> tuple[int, int]:
    count = int(np.count_nonzero(mask))
    return count, (int(np.argmax(mask)) if count else -1)


#: (column, rows outside the domain, message)
_Outside = tuple[Literal["pred", "target", "var"], np.ndarray, str]


def _earliest(*problems: _Outside) -> DomainProblem | None:
    """The problem of (column, rows outside the domain, message) at the earliest row, so that
    the message does not depend on how rows were chunked; None when every row is inside."""
    found = [DomainProblem(col, *_first(mask), message) for col, mask, message in problems]
    found = [x for x in found if x.count]
    return min(found, key=lambda x: x.first) if found else None


# --- regression -------------------------------------------------------------------------------


def _mse(b: Batch, p: Params) -> Computed:
    e = b.residual()
    return Computed(e * e, 2.0 * e)


def _rmse(b: Batch, p: Params) -> Computed:
    # Per-sample squared error; the engine takes sqrt of the mean and scales e by 1/rmse.
    e = b.residual()
    return Computed(e * e, e)


def _mae(b: Batch, p: Params) -> Computed:
    return Computed(b.abs_residual(), np.sign(b.residual()))


def _huber(b: Batch, p: Params) -> Computed:
    d = float(p["delta"])  # type: ignore[arg-type]
    e, a = b.residual(), b.abs_residual()
    # With m = min(|e|, delta): l = m (|e| - m/2) is e^2/2 inside and delta (|e| - delta/2) out.
    m = np.clip(a, 0.0, d)  # np.clip has a faster loop than np.minimum here
    values = m * 0.5
    np.subtract(a, values, out=values)
    values *= m
    return Computed(values, np.clip(e, -d, d), abs_grads=m)


def _smooth_l1(b: Batch, p: Params) -> Computed:
    beta = float(p["beta"])  # type: ignore[arg-type]
    e, a = b.residual(), b.abs_residual()
    values = np.where(a < beta, 0.5 * e * e / beta, a - 0.5 * beta)
    return Computed(values, np.clip(e / beta, -1.0, 1.0))


def _log_cosh(b: Batch, p: Params) -> Computed:
    # log(cosh(e)) = |e| + log1p(exp(-2|e|)) - log 2, finite for any |e|.
    e, a = b.residual(), b.abs_residual()
    values = a + np.log1p(np.exp(-2.0 * a)) - _LOG2
    return Computed(values, np.tanh(e))


def _quantile(b: Batch, p: Params) -> Computed:
    q = float(p["q"])  # type: ignore[arg-type]
    e = b.residual()  # pred - target: under-prediction is e < 0 and costs q per unit
    values = np.where(e < 0.0, -q * e, (1.0 - q) * e)
    grads = np.where(e < 0.0, -q, np.where(e > 0.0, 1.0 - q, 0.0))
    return Computed(values, grads)


def _poisson(b: Batch, p: Params) -> Computed:
    y, mu = b.target, b.pred
    ratio = y / mu
    ylogy = np.zeros_like(y)
    pos = y > 0.0
    ylogy[pos] = y[pos] * np.log(ratio[pos])
    return Computed(2.0 * (ylogy - y + mu), 2.0 * (1.0 - ratio))


def _poisson_check(b: Batch, p: Params) -> DomainProblem | None:
    return _earliest(
        ("target", b.target < 0.0, "poisson cannot be used when targets contain negative values"),
        ("pred", b.pred <= 0.0, "poisson needs strictly positive predictions (a mean rate)"))


def _log1p_parts(b: Batch) -> tuple[np.ndarray, np.ndarray]:
    """(d, 1 + pred) with d = log1p(pred) - log1p(target), the residual of msle and rmsle."""
    d = np.log1p(b.pred)
    d -= np.log1p(b.target)
    return d, 1.0 + b.pred


def _msle(b: Batch, p: Params) -> Computed:
    d, one_p = _log1p_parts(b)
    return Computed(d * d, 2.0 * d / one_p)


def _rmsle(b: Batch, p: Params) -> Computed:
    # Per-sample squared log error; the engine takes sqrt of the mean and scales by 1/rmsle.
    d, one_p = _log1p_parts(b)
    return Computed(d * d, d / one_p)


def _log1p_check(b: Batch, p: Params) -> DomainProblem | None:
    return _earliest(
        ("target", b.target <= -1.0, "msle and rmsle need targets > -1 (log1p of the target)"),
        ("pred", b.pred <= -1.0, "msle and rmsle need predictions > -1 (log1p of the "
                                 "prediction)"))


#: mape divides by max(|target|, MAPE_EPS) (scikit-learn's mean_absolute_percentage_error).
MAPE_EPS = EPS


def _mape(b: Batch, p: Params) -> Computed:
    scale = np.maximum(np.abs(b.target), MAPE_EPS)
    return Computed(b.abs_residual() / scale, np.sign(b.residual()) / scale)


def _gamma(b: Batch, p: Params) -> Computed:
    y, mu = b.target, b.pred
    # scikit-learn's mean_gamma_deviance term by term: 2 (log(mu / y) + y / mu - 1)
    values = 2.0 * (np.log(mu / y) + y / mu - 1.0)
    return Computed(values, 2.0 * (mu - y) / (mu * mu))


def _gamma_check(b: Batch, p: Params) -> DomainProblem | None:
    return _earliest(
        ("target", b.target <= 0.0, "gamma needs strictly positive targets"),
        ("pred", b.pred <= 0.0, "gamma needs strictly positive predictions (a mean)"))


def _tweedie(b: Batch, p: Params) -> Computed:
    power = float(p["power"])  # type: ignore[arg-type]
    y, mu = b.target, b.pred
    # scikit-learn's _mean_tweedie_deviance, case by case and term by term: powers 0, 1 and 2
    # are the squared error, the Poisson and the Gamma deviance
    special = {0.0: _mse, 1.0: _poisson, 2.0: _gamma}.get(power)
    if special is not None:
        return special(b, p)
    # y > 0: the three terms y^a / (a (a - 1)) - y mu^(a-1) / (a - 1) + mu^a / a, a = 2 - p,
    # as 2 mu^a (expm1(a t) - a expm1(t)) / (a (a - 1)), t = log(y / mu): the same deviance
    # without cancelling the terms' size near y = mu (where its gradient is checked); y <= 0
    # (p < 0 only): y^a is 0 there, as scikit-learn's max(y, 0)^a.
    a = 2.0 - power
    pos = y > 0.0
    values = 2.0 * (np.power(mu, a) / a - y * np.power(mu, 1.0 - power) / (1.0 - power))
    t = np.log(y[pos] / mu[pos])
    values[pos] = 2.0 * np.power(mu[pos], a) * (np.expm1(a * t) - a * np.expm1(t)) / (
        a * (a - 1.0))
    # d/dmu: 2 (mu^(1-p) - y mu^(-p)) = 2 (mu - y) / mu^p
    return Computed(values, 2.0 * (mu - y) * np.power(mu, -power))


def _tweedie_domain(power: float) -> str:
    """The domain of a Tweedie power, in scikit-learn's cases."""
    if power < 0.0:
        return "any target, prediction > 0"
    if power == 0.0:
        return "any target and prediction"
    if power < 2.0:
        return "target >= 0, prediction > 0"
    return "target > 0, prediction > 0"


def _tweedie_check(b: Batch, p: Params) -> DomainProblem | None:
    power = float(p["power"])  # type: ignore[arg-type]
    if power == 0.0:
        return None
    name = f"tweedie:power={power:g}"
    pred: _Outside = ("pred", b.pred <= 0.0, f"{name} needs strictly positive predictions (a mean)")
    if power < 0.0:
        return _earliest(pred)
    if power < 2.0:
        return _earliest(("target", b.target < 0.0,
                          f"{name} cannot be used when targets contain negative values"), pred)
    return _earliest(("target", b.target <= 0.0, f"{name} needs strictly positive targets"),
                     pred)


def _tweedie_power(v: float) -> bool:
    return math.isfinite(v) and (v <= 0.0 or v >= 1.0)


_TWO_PI = 2.0 * math.pi
_LOG_2PI = math.log(_TWO_PI)


def _poisson_nll(b: Batch, p: Params) -> Computed:
    y, x = b.target, b.pred
    if p["log_input"]:
        rate = np.exp(x)
        values, grads = rate - y * x, rate - y
    else:
        shifted = x + float(p["eps"])  # type: ignore[arg-type]
        values, grads = x - y * np.log(shifted), 1.0 - y / shifted
    if p["full"]:
        # Stirling's approximation of log(y!), for y > 1 (PoissonNLLLoss(full=True))
        big = y > 1.0
        yb = y[big]
        values = values.copy()
        values[big] += yb * np.log(yb) - yb + 0.5 * np.log(_TWO_PI * yb)
    return Computed(values, grads)


def _poisson_nll_check(b: Batch, p: Params) -> DomainProblem | None:
    target: _Outside = ("target", b.target < 0.0,
                        "poisson_nll cannot be used when targets contain negative values")
    if p["log_input"]:
        return _earliest(target)
    return _earliest(target, ("pred", b.pred < 0.0, "poisson_nll:log_input=false needs "
                                                    "non-negative predictions (a rate)"))


def _gaussian_nll(b: Batch, p: Params) -> Computed:
    assert b.var is not None  # the engine refuses gaussian_nll without --var
    # GaussianNLLLoss: the variance clamped at eps (its gradient as if unclamped, as torch's
    # clamp under no_grad)
    v = np.maximum(b.var, float(p["eps"]))  # type: ignore[arg-type]
    e = b.residual()
    ratio = e * e / v
    values = 0.5 * (np.log(v) + ratio)
    if p["full"]:
        values += 0.5 * _LOG_2PI
    return Computed(values, e / v, var_grads=0.5 * (1.0 - ratio) / v)


def _gaussian_nll_check(b: Batch, p: Params) -> DomainProblem | None:
    if b.var is None:
        return None
    return _earliest(("var", ~(b.var > 0.0), "gaussian_nll needs a strictly positive "
                                             "predicted variance"))


# --- binary -----------------------------------------------------------------------------------


def _sigmoid_halves(z: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(exp(-|z|), sigmoid(|z|), sigmoid(-|z|)): no overflow, no cancellation in either tail."""
    ez = np.exp(-np.abs(z))
    inv = 1.0 / (1.0 + ez)
    return ez, inv, ez * inv


def sigmoid(z: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-z)) without overflow."""
    _, inv, small = _sigmoid_halves(z)
    return np.where(z >= 0.0, inv, small)


def sigmoid_parts(z: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(sigmoid(z), sigmoid(-z), log sigmoid(z)) from one exp(-|z|)."""
    ez, inv, small = _sigmoid_halves(z)
    nonneg = z >= 0.0
    log_sig = np.minimum(z, 0.0) - np.log1p(ez)
    return np.where(nonneg, inv, small), np.where(nonneg, small, inv), log_sig


def _binary_parts(b: Batch) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """(s, p_t, 1 - p_t, log p_t, clipped) with s = 2y - 1 and p_t the probability of the truth."""
    y = b.target
    s = 2.0 * y - 1.0
    if b.logits:
        pt, qt, logpt = sigmoid_parts(s * b.pred)
        return s, pt, qt, logpt, 0
    p = b.pred
    pos = y == 1.0
    raw = np.where(pos, p, 1.0 - p)
    pt = np.clip(raw, EPS, 1.0 - EPS)
    clipped = int(np.count_nonzero(pt != raw))
    qt = np.where(pos, 1.0 - p, p)
    np.clip(qt, EPS, 1.0 - EPS, out=qt)
    return s, pt, qt, np.log(pt), clipped


def _bce(b: Batch, p: Params) -> Computed:
    smoothing = float(p.get("label_smoothing") or 0.0)  # type: ignore[arg-type]
    if smoothing:
        return _bce_smoothed(b, smoothing, float(p.get("pos_weight", 1.0)))  # type: ignore[arg-type]
    s, pt, qt, logpt, clipped = _binary_parts(b)
    # logits: sigmoid(z) - y = -s (1 - p_t); probabilities: -1/p for y = 1, 1/(1 - p) for y = 0
    abs_grads = qt if b.logits else 1.0 / pt
    values = -logpt
    k = p.get("pos_weight", 1.0)
    if k is not None and k != 1.0:
        # BCEWithLogitsLoss(pos_weight=K): the positive rows' loss and gradient times K.
        a = np.where(b.target == 1.0, float(k), 1.0)  # type: ignore[arg-type]
        values = values * a
        abs_grads = abs_grads * a
    return Computed(values, -s * abs_grads, clipped, abs_grads)


def _bce_smoothed(b: Batch, smoothing: float, k: float) -> Computed:
    """bce against the smoothed target t = y (1 - e) + e / 2 (Keras' label_smoothing), with the
    positive term times K: l = -(K t log p + (1 - t) log(1 - p))."""
    t = b.target * (1.0 - smoothing) + 0.5 * smoothing
    kt = k * t
    if b.logits:
        # log sigmoid(z) and log sigmoid(-z) = log sigmoid(z) - z, from one exp(-|z|)
        p1, _, log_p1 = sigmoid_parts(b.pred)
        log_p0 = log_p1 - b.pred
        values = -(kt * log_p1 + (1.0 - t) * log_p0)
        # d/dz: -K t (1 - p) + (1 - t) p = p (K t + 1 - t) - K t
        return Computed(values, p1 * (kt + 1.0 - t) - kt)
    p1 = np.clip(b.pred, EPS, 1.0 - EPS)
    clipped = int(np.count_nonzero(p1 != b.pred))
    p0 = 1.0 - p1
    values = -(kt * np.log(p1) + (1.0 - t) * np.log(p0))
    return Computed(values, (1.0 - t) / p0 - kt / p1, clipped)


def _no_balanced_smoothing(weight: str) -> Callable[[Params], str | None]:
    """Label smoothing with a class-weight parameter at ``balanced`` is refused: balanced
    weights are applied per class at the end of the pass, to a loss of the class alone."""
    def check(p: Params) -> str | None:
        if p.get("label_smoothing") and p.get(weight) == BALANCED:
            return (f"label_smoothing and {weight}=balanced do not go together (balanced "
                    f"weights scale each class's loss, a smoothed loss mixes the classes); "
                    f"give {weight} as numbers")
        return None
    return check


def _margins(b: Batch) -> tuple[np.ndarray, np.ndarray]:
    """(s, 1 - s z) with s = 2y - 1: the labels {0, 1} read as {-1, +1}, z the decision
    value."""
    s = 2.0 * b.target - 1.0
    return s, 1.0 - s * b.pred


def _hinge(b: Batch, p: Params) -> Computed:
    s, slack = _margins(b)
    values = np.maximum(slack, 0.0)
    return Computed(values, np.where(slack > 0.0, -s, 0.0))


def _squared_hinge(b: Batch, p: Params) -> Computed:
    s, slack = _margins(b)
    h = np.maximum(slack, 0.0)
    return Computed(h * h, -2.0 * s * h)


def _focal(b: Batch, p: Params) -> Computed:
    gamma = float(p["gamma"])  # type: ignore[arg-type]
    alpha = p.get("alpha")
    s, pt, qt, logpt, clipped = _binary_parts(b)
    at: np.ndarray | float = 1.0
    if alpha is not None:
        a = float(alpha)  # type: ignore[arg-type]
        at = np.where(b.target == 1.0, a, 1.0 - a)
    qg = qt**gamma
    values = -at * qg * logpt
    if b.logits:
        grads = s * at * (gamma * pt * qg * logpt - qg * qt)
    else:
        grads = s * at * (gamma * qt ** (gamma - 1.0) * logpt - qg / pt)
    return Computed(values, grads, clipped)


# --- multiclass -------------------------------------------------------------------------------


def _cce(b: Batch, p: Params) -> Computed:
    z = b.pred  # (C, n)
    n = b.n
    cols = np.arange(n)
    y = b.target.astype(np.intp, copy=False)
    cw = p.get("class_weights")
    smoothing = float(p.get("label_smoothing") or 0.0)  # type: ignore[arg-type]
    if smoothing or b.soft is not None:
        c = np.ones(z.shape[0]) if cw is None else np.asarray(cw, dtype=np.float64)
        return _cce_smoothed(b, y, cols, c, smoothing)
    # CrossEntropyLoss(weight=...): row i's loss and gradient times weight[y_i] (the engine
    # divides by sum w weight[y_i]).
    a = None if cw is None else np.asarray(cw, dtype=np.float64)[y]
    if not b.logits:
        raw = z[y, cols]
        py = np.clip(raw, EPS, 1.0 - EPS)
        clipped = int(np.count_nonzero(py != raw))
        # d(-log p_y)/dp has the single non-zero entry -1/p_y: its L2 norm is 1/p_y.
        values, grads = -np.log(py), 1.0 / py
        if a is not None:
            values, grads = values * a, grads * a
        return Computed(values, grads, clipped)
    m = z.max(axis=0)
    ex = np.subtract(z, m)
    np.exp(ex, out=ex)
    ex_y = ex[y, cols]
    # Summing the other classes apart from the true one keeps 1 - s_y and sum_{k != y} s_k^2
    # free of cancellation when s_y is close to 1.
    ex[y, cols] = 0.0
    rest = ex.sum(axis=0)
    rest_sq = np.einsum("ij,ij->j", ex, ex)
    total = rest + ex_y
    values = np.log(total) + m - z[y, cols]
    # ||softmax - onehot||^2 = (1 - s_y)^2 + sum_{k != y} s_k^2 = (rest^2 + rest_sq) / total^2
    grads = np.sqrt(rest * rest + rest_sq) / total
    if a is not None:
        values, grads = values * a, grads * a
    return Computed(values, grads)


def _cce_smoothed(b: Batch, y: np.ndarray, cols: np.ndarray, c: np.ndarray,
                  smoothing: float) -> Computed:
    """CrossEntropyLoss(weight=c, label_smoothing=e) per row: -sum_k c_k q_k log p_k with
    q = (1 - e) t + e / C, t = onehot(y) or the soft target; the engine divides by sum w c_y
    for class labels, as torch's mean does."""
    z = b.pred
    k = z.shape[0]
    # a_k = c_k q_k, the weight of each class's log-probability in the row's loss
    a = np.broadcast_to((c * (smoothing / k))[:, None], z.shape).copy()
    if b.soft is not None:
        a += (1.0 - smoothing) * c[:, None] * b.soft
    else:
        a[y, cols] += (1.0 - smoothing) * c[y]
    clipped = 0
    if b.logits:
        m = z.max(axis=0)
        shifted = z - m
        ex = np.exp(shifted)
        total = ex.sum(axis=0)
        log_p = shifted - np.log(total)
        soft = ex / total
        # d/dz_j of -sum_k a_k log softmax_k(z) = soft_j sum_k a_k - a_j
        g = soft * a.sum(axis=0) - a
    else:
        pk = np.clip(z, EPS, 1.0 - EPS)
        clipped = int(np.count_nonzero(pk != z))
        log_p = np.log(pk)
        g = a / pk  # d/dp_k = -a_k / p_k; only the norm is kept
    values = -np.einsum("ij,ij->j", a, log_p)
    return Computed(values, np.sqrt(np.einsum("ij,ij->j", g, g)), clipped)


def _kl_div(b: Batch, p: Params) -> Computed:
    """KLDivLoss per row: sum_k q_k (log q_k - log p_k), 0 log 0 = 0; the cross-entropy against
    q less q's entropy, so the same gradient."""
    c = _cce_smoothed(b, b.target.astype(np.intp, copy=False), np.arange(b.n),
                      np.ones(b.pred.shape[0]), 0.0)
    if b.soft is None:  # a class label: q is one-hot, of entropy 0
        return c
    q = b.soft
    qlogq = np.zeros_like(q)
    np.log(q, out=qlogq, where=q > 0.0)
    qlogq *= q
    return Computed(c.values + qlogq.sum(axis=0), c.grads, c.clipped)


def _multi_hinge(b: Batch, p: Params) -> Computed:
    z = b.pred  # (C, n) decision values
    cols = np.arange(b.n)
    y = b.target.astype(np.intp, copy=False)
    zy = z[y, cols]
    others = z.copy()
    others[y, cols] = -np.inf
    slack = 1.0 - zy + others.max(axis=0)
    values = np.maximum(slack, 0.0)
    # an active row's gradient is -1 at the true class and +1 at the runner-up: norm sqrt 2
    return Computed(values, np.where(slack > 0.0, math.sqrt(2.0), 0.0))


def _in_unit_interval(v: float) -> bool:
    return 0.0 < v < 1.0


def _in_closed_unit(v: float) -> bool:
    return 0.0 <= v <= 1.0


_DELTA = Param("delta", 1.0, "threshold between the quadratic and linear parts", _positive, "> 0")
_BETA = Param("beta", 1.0, "threshold between the quadratic and linear parts", _positive, "> 0")


def _smoothing(doc: str) -> Param:
    return Param("label_smoothing", 0.0, doc, lambda v: 0.0 <= v <= 1.0, "in [0, 1]")


def _flag(name: str, default: bool, doc: str) -> Param:
    return Param(name, 1.0 if default else 0.0, doc, lambda v: v in (0.0, 1.0), "true or false",
                 kind="bool")


CATALOG: dict[str, LossDef] = {
    d.name: d
    for d in (
        LossDef("mse", "regression", "mean squared error", "l = e^2, e = pred - target",
                "g = 2e", _mse, grad_form="linear", grad_coef=2.0, value_form="square",
                abs_grad_of_abs_residual=lambda a, p: 2.0 * a,
                non_negative=True, reference="scikit-learn mean_squared_error; torch MSELoss"),
        LossDef("rmse", "regression", "root mean squared error",
                "L = sqrt(mean e^2)", "g_i = e_i / L (so dL/dpred_i = w_i g_i / sum w)", _rmse,
                reduce="sqrt", grad_form="linear", value_form="square",
                abs_grad_of_abs_residual=lambda a, p: a,
                non_negative=True, reference="scikit-learn root_mean_squared_error"),
        LossDef("mae", "regression", "mean absolute error", "l = |e|",
                "g = sign(e), 0 at e = 0", _mae, grad_form="sign", value_form="abs",
                abs_grad_of_abs_residual=lambda a, p: 1.0 if a > 0 else 0.0,
                non_negative=True, reference="scikit-learn mean_absolute_error; torch L1Loss"),
        LossDef("huber", "regression", "Huber loss",
                "l = e^2/2 if |e| <= delta else delta (|e| - delta/2)",
                "g = clip(e, -delta, delta)", _huber, (_DELTA,), grad_form="clipped",
                clip_of=lambda p: (float(p["delta"]), 1.0),  # type: ignore[arg-type]
                abs_grad_of_abs_residual=lambda a, p: min(a, float(p["delta"])),  # type: ignore[arg-type]
                non_negative=True, reference="torch HuberLoss"),
        LossDef("smooth_l1", "regression", "smooth L1 loss (huber(beta) / beta)",
                "l = e^2/(2 beta) if |e| < beta else |e| - beta/2",
                "g = clip(e / beta, -1, 1)", _smooth_l1, (_BETA,), grad_form="clipped",
                clip_of=lambda p: (float(p["beta"]), float(p["beta"])),  # type: ignore[arg-type]
                abs_grad_of_abs_residual=lambda a, p: min(a / float(p["beta"]), 1.0),  # type: ignore[arg-type]
                non_negative=True, reference="torch SmoothL1Loss"),
        LossDef("log_cosh", "regression", "log-cosh loss", "l = log(cosh(e))", "g = tanh(e)",
                _log_cosh, abs_grad_of_abs_residual=lambda a, p: math.tanh(a),
                non_negative=True, reference="Keras LogCosh"),
        LossDef("quantile", "regression", "quantile (pinball) loss, as mean_pinball_loss",
                "l = q max(target - pred, 0) + (1 - q) max(pred - target, 0)",
                "g = -q if pred < target, 1 - q if pred > target, 0 if equal", _quantile,
                (Param("q", 0.5, "quantile level", _in_unit_interval, "in (0, 1)"),),
                aliases=("pinball",), non_negative=True,
                reference="scikit-learn mean_pinball_loss(alpha=q)"),
        LossDef("poisson", "regression", "mean Poisson deviance, as mean_poisson_deviance",
                "l = 2 (y log(y / mu) - y + mu), mu = pred > 0, y = target >= 0",
                "g = 2 (1 - y / mu)", _poisson, check=_poisson_check,
                non_negative=True, reference="scikit-learn mean_poisson_deviance"),
        LossDef("msle", "regression", "mean squared log error",
                "l = (log1p(pred) - log1p(target))^2; pred, target > -1",
                "g = 2 (log1p(pred) - log1p(target)) / (1 + pred)", _msle, check=_log1p_check,
                non_negative=True, reference="scikit-learn mean_squared_log_error"),
        LossDef("rmsle", "regression", "root mean squared log error",
                "L = sqrt(mean (log1p(pred) - log1p(target))^2); pred, target > -1",
                "g_i = (log1p(pred_i) - log1p(target_i)) / ((1 + pred_i) L)", _rmsle,
                reduce="sqrt", check=_log1p_check,
                non_negative=True, reference="scikit-learn root_mean_squared_log_error"),
        LossDef("mape", "regression", "mean absolute percentage error (a fraction, not %)",
                "l = |e| / max(|target|, eps), eps = float64 machine epsilon",
                "g = sign(e) / max(|target|, eps), 0 at e = 0", _mape,
                non_negative=True, reference="scikit-learn mean_absolute_percentage_error"),
        LossDef("gamma", "regression", "mean Gamma deviance",
                "l = 2 (log(mu / y) + y / mu - 1), mu = pred > 0, y = target > 0",
                "g = 2 (mu - y) / mu^2", _gamma, check=_gamma_check,
                non_negative=True, reference="scikit-learn mean_gamma_deviance"),
        LossDef("tweedie", "regression", "mean Tweedie deviance",
                "l = 2 (max(y, 0)^(2-p) / ((1-p)(2-p)) - y mu^(1-p) / (1-p) + mu^(2-p) / "
                "(2-p)), mu = pred; p = 0: e^2, p = 1: poisson, p = 2: gamma; domain: p < 0 "
                "mu > 0; 1 <= p < 2 y >= 0, mu > 0; p >= 2 y > 0, mu > 0",
                "g = 2 (mu - y) / mu^p", _tweedie,
                (Param("power", 1.5, "Tweedie power p (scikit-learn's default 0 is mse; 1 < p "
                       "< 2: compound Poisson-Gamma, zeros and positive amounts)",
                       _tweedie_power, "<= 0 or >= 1"),),
                check=_tweedie_check, non_negative=True,
                reference="scikit-learn mean_tweedie_deviance(power=p)"),
        LossDef("poisson_nll", "regression", "Poisson negative log-likelihood",
                "log_input=true: l = exp(x) - y x, x = pred the log rate; false: l = x - y "
                "log(x + eps), x = pred >= 0 the rate; full=true adds y log y - y + log(2 pi "
                "y)/2 for y > 1; y = target >= 0. Relation: poisson = 2 (poisson_nll:"
                "log_input=false + y log y - y) as eps -> 0: a term of the target only, so "
                "the same gradient up to the factor 2",
                "g = exp(x) - y (log_input=true); 1 - y / (x + eps) (false)", _poisson_nll,
                (_flag("log_input", True, "the prediction is the log of the rate"),
                 _flag("full", False, "add the Stirling term of log(y!)"),
                 Param("eps", 1e-8, "added to the rate before its log (log_input=false)",
                       lambda v: v >= 0.0 and math.isfinite(v), ">= 0")),
                check=_poisson_nll_check, reference="torch PoissonNLLLoss"),
        LossDef("gaussian_nll", "regression", "Gaussian negative log-likelihood",
                "l = (log v + e^2 / v) / 2, v = max(var, eps), var = the --var column > 0; "
                "full=true adds log(2 pi) / 2",
                "g = e / v w.r.t. the mean; (1 - e^2 / v) / (2 v) w.r.t. the variance, also "
                "reported", _gaussian_nll,
                (_flag("full", False, "add the constant log(2 pi) / 2"),
                 Param("eps", 1e-6, "the variance is clamped below at eps", _positive, "> 0")),
                check=_gaussian_nll_check, uses_var=True,
                reference="torch GaussianNLLLoss(full, eps)"),
        LossDef("bce", "binary", "binary cross-entropy (log loss)",
                "l = -(K t log p + (1 - t) log(1 - p)), K = pos_weight, t = y (1 - e) + e/2, "
                "e = label_smoothing (p clipped to [eps, 1 - eps]; logits: log-sigmoid, never "
                "clipped)",
                "g = (p - t) / (p (1 - p)) w.r.t. p; sigmoid(z) - t w.r.t. the logit z (at "
                "K = 1); in general (1 - t)/(1 - p) - K t/p and p (K t + 1 - t) - K t", _bce,
                (Param("pos_weight", 1.0, "weight of the positive rows' loss, as PyTorch's "
                       "BCEWithLogitsLoss(pos_weight); balanced: n_neg / n_pos", _positive,
                       "> 0", balanced=True),
                 _smoothing("the target y becomes y (1 - e) + e/2, as Keras' "
                            "BinaryCrossentropy(label_smoothing)")),
                uses_probabilities=True, aliases=("log_loss", "logloss"),
                class_weighting=POS_WEIGHT, validate=_no_balanced_smoothing("pos_weight"),
                non_negative=True,
                reference="scikit-learn log_loss; torch BCEWithLogitsLoss(pos_weight); Keras "
                          "BinaryCrossentropy(label_smoothing)"),
        LossDef("focal", "binary", "focal loss (Lin et al. 2017)",
                "l = -alpha_t (1 - p_t)^gamma log p_t, alpha_t = alpha if y = 1 else 1 - alpha "
                "(1 without alpha)",
                "g = s alpha_t [gamma (1-p_t)^(gamma-1) log p_t - (1-p_t)^gamma / p_t] w.r.t. p; "
                "s alpha_t [gamma p_t (1-p_t)^gamma log p_t - (1-p_t)^(gamma+1)] w.r.t. z; "
                "s = 2y - 1", _focal,
                (Param("gamma", 2.0, "focusing exponent", lambda v: v >= 0 and math.isfinite(v),
                       ">= 0"),
                 Param("alpha", None, "weight of the positive class (1 - alpha for the "
                       "negative); balanced: n_neg / n", _in_closed_unit, "in [0, 1]",
                       balanced=True)),
                uses_probabilities=True, class_weighting=FOCAL_ALPHA,
                non_negative=True, reference="torchvision sigmoid_focal_loss"),
        LossDef("hinge", "binary", "hinge loss on decision values (margins)",
                "l = max(0, 1 - s z), s = 2y - 1 (labels 0/1 read as -1/+1), z = pred, a "
                "decision value (with or without --logits)",
                "g = -s if s z < 1 else 0", _hinge, decision_values=True,
                non_negative=True, reference="scikit-learn hinge_loss; Keras Hinge"),
        LossDef("squared_hinge", "binary", "squared hinge loss on decision values",
                "l = max(0, 1 - s z)^2, s = 2y - 1, z = pred a decision value",
                "g = -2 s max(0, 1 - s z)", _squared_hinge, decision_values=True,
                non_negative=True, reference="Keras SquaredHinge"),
        LossDef("cce", "multiclass", "categorical cross-entropy",
                "l = -sum_k c_k q_k log p_k, q = (1 - e) t + e/C, t = onehot(y) or the soft "
                "targets, e = label_smoothing (e = 0: -c_y log p_y), p clipped to [eps, "
                "1 - eps]; logits: log softmax; c = class_weights (1 without); value sum(w l) "
                "/ sum(w c_y)",
                "|g| = ||c q / p||_2 w.r.t. p (c_y / p_y at e = 0); ||softmax(z) sum_k c_k q_k "
                "- c q||_2 w.r.t. z", _cce,
                (Param("class_weights", None, "per-class weights in prediction-column order, "
                       "as PyTorch's CrossEntropyLoss(weight); balanced: n / (k n_c)",
                       lambda v: v >= 0 and math.isfinite(v), ">= 0 each", kind="list",
                       balanced=True),
                 _smoothing("mixes the one-hot target with the uniform one, as PyTorch's "
                            "CrossEntropyLoss(label_smoothing)")),
                uses_probabilities=True, aliases=("cross_entropy", "ce"), soft_targets=True,
                class_weighting=CLASS_WEIGHTS, validate=_no_balanced_smoothing("class_weights"),
                non_negative=True,
                reference="scikit-learn log_loss; torch CrossEntropyLoss(weight, "
                          "label_smoothing)"),
        LossDef("kl_div", "multiclass", "Kullback-Leibler divergence from soft targets",
                "l = sum_k q_k (log q_k - log p_k), q = the soft targets (--target 'q_*'; a "
                "class label is one-hot: l = -log p_y), 0 log 0 = 0; p clipped to [eps, 1 - "
                "eps]; logits: log softmax",
                "as cce against q: |g| = ||q / p||_2 w.r.t. p; ||softmax(z) - q||_2 w.r.t. z",
                _kl_div, uses_probabilities=True, soft_targets=True,
                reference="torch KLDivLoss(reduction='batchmean') on log-probabilities"),
        LossDef("multi_hinge", "multiclass", "multiclass hinge loss (Crammer-Singer)",
                "l = max(0, 1 - z_y + max_{k != y} z_k), z = the row of decision values",
                "|g| = sqrt(2) (-1 at y, +1 at the runner-up) if l > 0 else 0", _multi_hinge,
                decision_values=True, non_negative=True,
                reference="scikit-learn hinge_loss (multiclass)"),
    )
}


ALIASES: dict[str, str] = {a: d.name for d in CATALOG.values() for a in d.aliases}

def catalog_loss(name: str) -> LossDef:
    """The built-in loss of a pickled LossDef (plugins pickle through losscli.registry)."""
    return CATALOG[name]


def losses_for_task(task: Task) -> list[LossDef]:
    """Every loss of a task, in catalog order."""
    return [d for d in CATALOG.values() if d.task == task]


#: The losses evaluated when no --loss is given, by detected task. Left out: smooth_l1 (at its
#: default beta = 1 it is huber at delta = 1, the same numbers twice), quantile (at its default
#: q = 0.5 it is exactly mae / 2: nothing new), poisson outside counts,
#: and the losses that need a domain or a kind of prediction that the data cannot show: log
#: errors, mape, the Gamma / Tweedie deviances, poisson_nll (a log rate?), hinge losses
#: (decision values, not probabilities).
DEFAULTS: dict[str, tuple[str, ...]] = {
    "regression": ("mse", "rmse", "mae", "huber", "log_cosh"),
    "counts": ("mse", "rmse", "mae", "huber", "log_cosh", "poisson"),
    "binary": ("bce", "focal"),
    "multiclass": ("cce",),
}


def default_losses(task: str) -> list[LossDef]:
    """The losses evaluated when no --loss is given, for a detected task (regression, counts,
    binary, multiclass): every general-purpose loss that applies, none twice."""
    return [CATALOG[name] for name in DEFAULTS[task]]
