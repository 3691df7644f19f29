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
    #: "list": a comma list of numbers (``class_weights=1,2,3``)
    kind: Literal["number", "list"] = "number"
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

    column: Literal["pred", "target"]
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
    aliases: tuple[str, ...] = ()
    #: the class-weight parameter, when the loss has one
    class_weighting: ClassWeighting | None = None
    #: where a loss that is not in the built-in catalog came from (a plugin), for messages
    origin: str | None = None

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
    problems = [
        DomainProblem("target", *_first(b.target < 0.0),
                      "poisson cannot be used when targets contain negative values"),
        DomainProblem("pred", *_first(b.pred <= 0.0),
                      "poisson needs strictly positive predictions (a mean rate)"),
    ]
    found = [x for x in problems if x.count]
    # The earliest row, so that the message does not depend on how rows were chunked.
    return min(found, key=lambda x: x.first) if found else None


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


def _in_unit_interval(v: float) -> bool:
    return 0.0 < v < 1.0


def _in_closed_unit(v: float) -> bool:
    return 0.0 <= v <= 1.0


_DELTA = Param("delta", 1.0, "threshold between the quadratic and linear parts", _positive, "> 0")
_BETA = Param("beta", 1.0, "threshold between the quadratic and linear parts", _positive, "> 0")

CATALOG: dict[str, LossDef] = {
    d.name: d
    for d in (
        LossDef("mse", "regression", "mean squared error", "l = e^2, e = pred - target",
                "g = 2e", _mse, grad_form="linear", grad_coef=2.0, value_form="square",
                abs_grad_of_abs_residual=lambda a, p: 2.0 * a),
        LossDef("rmse", "regression", "root mean squared error",
                "L = sqrt(mean e^2)", "g_i = e_i / L (so dL/dpred_i = w_i g_i / sum w)", _rmse,
                reduce="sqrt", grad_form="linear", value_form="square",
                abs_grad_of_abs_residual=lambda a, p: a),
        LossDef("mae", "regression", "mean absolute error", "l = |e|",
                "g = sign(e), 0 at e = 0", _mae, grad_form="sign", value_form="abs",
                abs_grad_of_abs_residual=lambda a, p: 1.0 if a > 0 else 0.0),
        LossDef("huber", "regression", "Huber loss",
                "l = e^2/2 if |e| <= delta else delta (|e| - delta/2)",
                "g = clip(e, -delta, delta)", _huber, (_DELTA,), grad_form="clipped",
                clip_of=lambda p: (float(p["delta"]), 1.0),  # type: ignore[arg-type]
                abs_grad_of_abs_residual=lambda a, p: min(a, float(p["delta"]))),  # type: ignore[arg-type]
        LossDef("smooth_l1", "regression", "smooth L1 loss (huber(beta) / beta)",
                "l = e^2/(2 beta) if |e| < beta else |e| - beta/2",
                "g = clip(e / beta, -1, 1)", _smooth_l1, (_BETA,), grad_form="clipped",
                clip_of=lambda p: (float(p["beta"]), float(p["beta"])),  # type: ignore[arg-type]
                abs_grad_of_abs_residual=lambda a, p: min(a / float(p["beta"]), 1.0)),  # type: ignore[arg-type]
        LossDef("log_cosh", "regression", "log-cosh loss", "l = log(cosh(e))", "g = tanh(e)",
                _log_cosh, abs_grad_of_abs_residual=lambda a, p: math.tanh(a)),
        LossDef("quantile", "regression", "quantile (pinball) loss, as mean_pinball_loss",
                "l = q max(target - pred, 0) + (1 - q) max(pred - target, 0)",
                "g = -q if pred < target, 1 - q if pred > target, 0 if equal", _quantile,
                (Param("q", 0.5, "quantile level", _in_unit_interval, "in (0, 1)"),),
                aliases=("pinball",)),
        LossDef("poisson", "regression", "mean Poisson deviance, as mean_poisson_deviance",
                "l = 2 (y log(y / mu) - y + mu), mu = pred > 0, y = target >= 0",
                "g = 2 (1 - y / mu)", _poisson, check=_poisson_check),
        LossDef("bce", "binary", "binary cross-entropy (log loss)",
                "l = -(K y log p + (1 - y) log(1 - p)), K = pos_weight (p clipped to "
                "[eps, 1 - eps]; logits: log-sigmoid, never clipped)",
                "g = (p - y) / (p (1 - p)) w.r.t. p; sigmoid(z) - y w.r.t. the logit z "
                "(both times pos_weight when y = 1)", _bce,
                (Param("pos_weight", 1.0, "weight of the positive rows' loss, as PyTorch's "
                       "BCEWithLogitsLoss(pos_weight); balanced: n_neg / n_pos", _positive,
                       "> 0", balanced=True),),
                uses_probabilities=True, aliases=("log_loss", "logloss"),
                class_weighting=POS_WEIGHT),
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
                uses_probabilities=True, class_weighting=FOCAL_ALPHA),
        LossDef("cce", "multiclass", "categorical cross-entropy",
                "l = -c_y log p_y (p clipped to [eps, 1 - eps]); logits: c_y (logsumexp(z) - "
                "z_y); c = class_weights (1 without); value sum(w c_y l) / sum(w c_y)",
                "|g| = c_y / p_y w.r.t. p; c_y ||softmax(z) - onehot(y)||_2 w.r.t. z", _cce,
                (Param("class_weights", None, "per-class weights in prediction-column order, "
                       "as PyTorch's CrossEntropyLoss(weight); balanced: n / (k n_c)",
                       lambda v: v >= 0 and math.isfinite(v), ">= 0 each", kind="list",
                       balanced=True),),
                uses_probabilities=True, aliases=("cross_entropy", "ce"),
                class_weighting=CLASS_WEIGHTS),
    )
}

ALIASES: dict[str, str] = {a: d.name for d in CATALOG.values() for a in d.aliases}

def catalog_loss(name: str) -> LossDef:
    """The built-in loss of a pickled LossDef (plugins pickle through losscli.registry)."""
    return CATALOG[name]


def losses_for_task(task: Task) -> list[LossDef]:
    """Every loss of a task, in catalog order."""
    return [d for d in CATALOG.values() if d.task == task]


#: Left out of the default regression set: smooth_l1 at its default beta = 1 is huber at
#: delta = 1, the same numbers twice; poisson needs counts (the ``counts`` task adds it).
NOT_DEFAULT = ("smooth_l1", "poisson")


def default_losses(task: str) -> list[LossDef]:
    """The losses evaluated when no --loss is given, for a detected task (regression, counts,
    binary, multiclass): every loss that applies, none twice."""
    if task in ("regression", "counts"):
        chosen = [d for d in losses_for_task("regression") if d.name not in NOT_DEFAULT]
        return [*chosen, CATALOG["poisson"]] if task == "counts" else chosen
    return losses_for_task(task)  # type: ignore[arg-type]
