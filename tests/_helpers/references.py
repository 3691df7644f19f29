"""Independent references: each loss's value and per-sample gradient from the textbook formulas
in NumPy, weighted means with exactly rounded sums (math.fsum), the paired comparison by hand."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import scipy.stats


def wmean(values: Sequence[float] | np.ndarray, w: np.ndarray | None) -> float:
    """Weighted mean sum(w l) / sum(w) with exactly rounded sums (the plain mean without w)."""
    v = np.asarray(values, dtype=float)
    if w is None:
        return math.fsum(v.tolist()) / v.size
    return math.fsum((v * w).tolist()) / math.fsum(w.tolist())


def sigmoid(z: np.ndarray) -> np.ndarray:
    return np.exp(-np.logaddexp(0.0, -z))


def huber(e: np.ndarray | float, delta: float = 1.0) -> np.ndarray:
    """Per-sample Huber: 0.5 e^2 if |e| <= delta else delta (|e| - 0.5 delta)."""
    e = np.asarray(e, dtype=float)
    a = np.abs(e)
    return np.where(a <= delta, 0.5 * e * e, delta * (a - 0.5 * delta))


def _params(spec: str) -> tuple[str, dict[str, float]]:
    name, _, rest = spec.partition(":")
    words = {"true": 1.0, "false": 0.0}
    return name, {k: words[v] if v in words else float(v)
                  for k, v in (kv.split("=") for kv in rest.split(",") if kv)}


def per_row(spec: str, pred: np.ndarray, y: np.ndarray, logits: bool = False) -> np.ndarray:
    """Per-sample loss values l_i of one spec (rmse: the squared error)."""
    return _reference(spec, pred, y, logits)[0]


def reference(spec: str, pred: np.ndarray, y: np.ndarray, w: np.ndarray | None,
              logits: bool = False) -> tuple[float, np.ndarray]:
    """(reduced value, per-sample gradient) from the textbook formulas, in NumPy."""
    values, g = _reference(spec, pred, y, logits)
    if spec.partition(":")[0] in ("rmse", "rmsle"):
        value = math.sqrt(wmean(values, w))
        return value, g / value
    return wmean(values, w), g


def _reference(spec: str, pred: np.ndarray, y: np.ndarray,
               logits: bool) -> tuple[np.ndarray, np.ndarray]:
    """Per-sample (values, gradients); rmse: (e^2, e), to be scaled by 1 / rmse (rmsle
    likewise). gaussian_nll's y is (target, variance), kl_div's the soft targets (n, C)."""
    name, p = _params(spec)
    if name in ("bce", "focal", "cce"):
        return _classification(name, p, pred, y, logits)
    if name in ("hinge", "squared_hinge"):
        m = np.maximum(0.0, 1.0 - (2.0 * y - 1.0) * pred)
        s = 2.0 * y - 1.0
        return (m, np.where(m > 0, -s, 0.0)) if name == "hinge" else (m * m, -2.0 * s * m)
    if name == "multi_hinge":
        rows = np.arange(y.size)
        yi = y.astype(int)
        others = pred.copy()
        others[rows, yi] = -np.inf
        m = np.maximum(0.0, 1.0 - pred[rows, yi] + others.max(axis=1))
        return m, np.where(m > 0, math.sqrt(2.0), 0.0)
    if name == "kl_div":  # y: the soft targets (n, C); pred: probabilities
        q = y
        qlogq = np.where(q > 0, q * np.log(np.where(q > 0, q, 1.0)), 0.0)
        return (qlogq - q * np.log(pred)).sum(axis=1), np.sqrt(((q / pred) ** 2).sum(axis=1))
    if name == "gaussian_nll":  # y: (target, variance)
        t, v = y
        v = np.maximum(v, p.get("eps", 1e-6))
        e = pred - t
        return 0.5 * (np.log(v) + e * e / v), e / v
    e = pred - y
    if name == "rmse":
        return e * e, e
    if name == "mse":
        return e * e, 2.0 * e
    if name == "mae":
        return np.abs(e), np.sign(e)
    if name in ("huber", "smooth_l1"):
        d = p.get("delta", p.get("beta", 1.0))
        g = np.clip(e, -d, d)
        return (huber(e, d), g) if name == "huber" else (huber(e, d) / d, g / d)
    if name == "log_cosh":
        return np.logaddexp(e, -e) - math.log(2.0), np.tanh(e)
    if name == "quantile":
        q = p.get("q", 0.5)
        return (np.maximum(q * -e, (q - 1.0) * -e),
                np.where(e > 0, 1.0 - q, np.where(e < 0, -q, 0.0)))
    if name == "poisson":
        mu = pred
        ylogy = np.where(y > 0, y * np.log(np.where(y > 0, y, 1.0) / mu), 0.0)
        return 2.0 * (ylogy - y + mu), 2.0 - 2.0 * y / mu
    if name in ("msle", "rmsle"):
        d = np.log1p(pred) - np.log1p(y)
        return d * d, (2.0 if name == "msle" else 1.0) * d / (1.0 + pred)
    if name == "mape":
        den = np.maximum(np.abs(y), np.finfo(float).eps)
        return np.abs(e) / den, np.sign(e) / den
    if name == "gamma":
        mu = pred
        return 2.0 * (np.log(mu / y) + y / mu - 1.0), 2.0 * (mu - y) / mu**2
    if name == "tweedie":
        pw, mu = p.get("power", 1.5), pred
        dev = 2.0 * (np.maximum(y, 0.0) ** (2 - pw) / ((1 - pw) * (2 - pw))
                     - y * mu ** (1 - pw) / (1 - pw) + mu ** (2 - pw) / (2 - pw))
        return dev, 2.0 * (mu - y) / mu**pw
    if name == "poisson_nll":
        if p.get("log_input", 1.0):
            return np.exp(pred) - y * pred, np.exp(pred) - y
        eps = p.get("eps", 1e-8)
        return pred - y * np.log(pred + eps), 1.0 - y / (pred + eps)
    raise AssertionError(spec)


def _classification(name: str, p: dict[str, float], pred: np.ndarray, y: np.ndarray,
                    logits: bool) -> tuple[np.ndarray, np.ndarray]:
    if name == "cce":
        rows = np.arange(y.size)
        yi = y.astype(int)
        if logits:
            lse = np.logaddexp.reduce(pred, axis=1)
            soft = np.exp(pred - lse[:, None])
            soft[rows, yi] -= 1.0
            return lse - pred[rows, yi], np.sqrt((soft * soft).sum(axis=1))
        py = pred[rows, yi]
        return -np.log(py), 1.0 / py
    prob = sigmoid(pred) if logits else pred
    pt = np.where(y == 1.0, prob, 1.0 - prob)
    s = 2.0 * y - 1.0
    if name == "bce":
        g = prob - y if logits else (prob - y) / (prob * (1.0 - prob))
        return -np.log(pt), g
    gamma = p.get("gamma", 2.0)
    at = np.where(y == 1.0, p["alpha"], 1.0 - p["alpha"]) if "alpha" in p else 1.0
    value = -at * (1.0 - pt) ** gamma * np.log(pt)
    # d l / d p_t, then the chain rule: d p_t / d p = s, d p_t / d z = s p_t (1 - p_t)
    dpt = at * (gamma * (1.0 - pt) ** (gamma - 1.0) * np.log(pt) - (1.0 - pt) ** gamma / pt)
    return value, s * dpt * (pt * (1.0 - pt) if logits else 1.0)


def paired(d: np.ndarray, w: np.ndarray | None, confidence: float) -> dict[str, float]:
    """The paired comparison of per-row differences d = l_cand - l_base by hand: the weighted
    mean delta, SE^2 = n/(n-1) sum w^2 (d - delta)^2 / (sum w)^2 (scipy.stats.sem unweighted),
    the two-sided t p-value and t interval on the weighted variance's degrees of freedom
    (scipy): Satterthwaite's (sum w^2)^2 / sum w^4 - 1 (n - 1 unweighted)."""
    n = d.size
    ww = np.ones(n) if w is None else w
    delta = wmean(d, ww)
    sw = math.fsum(ww.tolist())
    se = math.sqrt(n / (n - 1) * math.fsum((ww**2 * (d - delta) ** 2).tolist()) / sw**2)
    df = math.fsum((ww**2).tolist()) ** 2 / math.fsum((ww**4).tolist()) - 1
    q = float(scipy.stats.t.ppf(0.5 + confidence / 2, df))
    return {"delta": delta, "se": se,
            "p_value": float(2 * scipy.stats.t.sf(abs(delta / se), df)),
            "low": delta - q * se, "high": delta + q * se}
