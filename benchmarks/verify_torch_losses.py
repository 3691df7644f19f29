"""The catalog's torch-pinned losses against PyTorch itself: ``poisson_nll`` against
``poisson_nll_loss(log_input, full)``, ``gaussian_nll`` against ``gaussian_nll_loss(full)``
(the variance column through ``var``), soft targets (``--target 'q_*'``) in ``cce`` and
``kl_div`` against ``cross_entropy`` with probability targets and ``kl_div(reduction=
"batchmean")``, ``--task multilabel`` bce against ``binary_cross_entropy_with_logits`` on
(n, L), ``bce:label_smoothing`` (with ``pos_weight``) against
``binary_cross_entropy_with_logits`` / ``binary_cross_entropy`` on the smoothed target, and
``cce:label_smoothing`` (with ``class_weights``) against ``cross_entropy(weight,
label_smoothing)``; on logits and probabilities, with and without sample weights (torch's
per-row losses, reduction="none", reduced as losscli reduces: sum w l / sum w, cce with class
weights sum w l / sum w c_y); per-row gradients against torch.autograd.

    pip install torch  # CPU build
    python benchmarks/verify_torch_losses.py

Prints the worst relative difference of each case; exits 1 if any exceeds 1e-12. The tests run
the same cases when torch is installed (tests/test_loss_catalog_torch.py).
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

import losscli
from losscli.losses import Batch
from losscli.spec import parse_spec

RTOL = 1e-12
N = 4000


def rel(a: float, b: float) -> float:
    return abs(a - b) / max(abs(a), abs(b), 1e-300)


def t(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float64))


def ours(spec: str, pred: np.ndarray, y: np.ndarray, w: np.ndarray | None,
         logits: bool = False, var: np.ndarray | None = None, task: str | None = None) -> float:
    """losscli's value through the public API; pred (n,) or (n, C); y (n,), or (n, C) soft
    targets."""
    data: dict[str, np.ndarray] = {"y": y} if y.ndim == 1 else {
        f"q_{k}": y[:, k] for k in range(y.shape[1])}
    if var is not None:
        data["v"] = var
    if pred.ndim == 2:
        data.update({f"p_{k}": pred[:, k] for k in range(pred.shape[1])})
    else:
        data["pred"] = pred
    if w is not None:
        data["w"] = w
    return losscli.evaluate(data, pred="p_*" if pred.ndim == 2 else "pred",
                            target="y" if y.ndim == 1 else "q_*",
                            weight=None if w is None else "w", losses=[spec],
                            logits=logits, var=None if var is None else "v",
                            task=task).losses[0].value


def reduce(per_row: torch.Tensor, w: np.ndarray | None, denom: np.ndarray | None = None) -> float:
    """sum w l / sum w (denom: the per-row multiplier of the weight in the denominator)."""
    rows = per_row.detach().numpy()
    ww = np.ones(rows.size) if w is None else w
    d = ww if denom is None else ww * denom
    return float(np.sum(ww * rows) / np.sum(d))


def _data(rng: np.random.Generator) -> dict[str, np.ndarray]:
    x = rng.normal(size=N)
    rate = np.exp(0.4 + 0.5 * x)
    z = rng.normal(0.0, 2.5, N)
    zc = rng.normal(0.0, 2.0, (N, 4))
    return {
        "rate": rate * np.exp(rng.normal(0.0, 0.2, N)), "count": rng.poisson(rate).astype(float),
        "z": z, "y": (rng.random(N) < 1.0 / (1.0 + np.exp(-z))).astype(float),
        "zc": zc, "yc": rng.integers(0, 4, N).astype(float), "w": rng.uniform(0.1, 3.0, N),
        # a mean, a predicted variance (some below the 1e-6 clamp) and a target drawn from them
        "mu": x, "var": np.concatenate((rng.uniform(1e-9, 1e-6, 20), rng.uniform(0.2, 4.0,
                                                                               N - 20))),
        "yg": x + rng.normal(0.0, 1.5, N),
        "q": np.concatenate((rng.dirichlet(np.full(4, 0.8), N - 30),
                             np.eye(4)[rng.integers(0, 4, 30)])),
    }


def value_cases(rng: np.random.Generator) -> list[tuple[str, float, float]]:
    """(case, losscli, torch) for every torch-pinned loss and form."""
    d = _data(rng)
    out: list[tuple[str, float, float]] = []
    for weighted in (False, True):
        w = d["w"] if weighted else None
        tag = " weighted" if weighted else ""
        for log_input in (True, False):
            for full in (False, True):
                x = np.log(d["rate"]) if log_input else d["rate"]
                spec = (f"poisson_nll:log_input={'true' if log_input else 'false'},"
                        f"full={'true' if full else 'false'}")
                ref = F.poisson_nll_loss(t(x), t(d["count"]), log_input=log_input, full=full,
                                         reduction="none")
                out.append((spec + tag, ours(spec, x, d["count"], w), reduce(ref, w)))
        labels = (d["zc"] + rng.normal(0.0, 1.0, d["zc"].shape) > 0).astype(float)
        for k in (1.0, 2.5):
            ref = F.binary_cross_entropy_with_logits(
                t(d["zc"]), t(labels), pos_weight=torch.tensor(k, dtype=torch.float64),
                reduction="none").mean(dim=1)
            out.append((f"bce:pos_weight={k:g} multilabel logits" + tag,
                        ours(f"bce:pos_weight={k:g}", d["zc"], labels, w, True,
                             task="multilabel"), reduce(ref, w)))
        log_p = F.log_softmax(t(d["zc"]), dim=1)
        ref = F.kl_div(log_p, t(d["q"]), reduction="none").sum(dim=1)
        out.append(("kl_div soft logits" + tag, ours("kl_div", d["zc"], d["q"], w, True),
                    reduce(ref, w)))
        if not weighted:
            out.append(("kl_div soft logits torch batchmean",
                        ours("kl_div", d["zc"], d["q"], None, True),
                        float(F.kl_div(log_p, t(d["q"]), reduction="batchmean"))))
        for full in (False, True):
            spec = f"gaussian_nll:full={'true' if full else 'false'}"
            ref = F.gaussian_nll_loss(t(d["mu"]), t(d["yg"]), t(d["var"]), full=full,
                                      reduction="none")
            out.append((spec + tag, ours(spec, d["mu"], d["yg"], w, var=d["var"]),
                        reduce(ref, w)))
        for e, k in ((0.1, 1.0), (0.3, 2.5)):
            spec = f"bce:label_smoothing={e:g},pos_weight={k:g}"
            soft = d["y"] * (1 - e) + e / 2
            ref = F.binary_cross_entropy_with_logits(
                t(d["z"]), t(soft), pos_weight=torch.tensor(k, dtype=torch.float64),
                reduction="none")
            out.append((spec + " logits" + tag, ours(spec, d["z"], d["y"], w, True),
                        reduce(ref, w)))
            if k == 1.0:  # binary_cross_entropy has no pos_weight
                p = 1.0 / (1.0 + np.exp(-d["z"]))
                ref = F.binary_cross_entropy(t(p), t(soft), reduction="none")
                out.append((spec + " probabilities" + tag, ours(spec, p, d["y"], w),
                            reduce(ref, w)))
        for e, c in ((0.1, None), (0.25, np.array([1.0, 2.0, 0.5, 4.0]))):
            spec = f"cce:label_smoothing={e:g}" + (
                "" if c is None else ",class_weights=" + ",".join(f"{v:g}" for v in c))
            yt = torch.from_numpy(d["yc"].astype(np.int64))
            ref = F.cross_entropy(t(d["zc"]), yt, weight=None if c is None else t(c),
                                  label_smoothing=e, reduction="none")
            denom = None if c is None else c[d["yc"].astype(int)]
            out.append((spec + " logits" + tag, ours(spec, d["zc"], d["yc"], w, True),
                        reduce(ref, w, denom)))
            if not weighted:  # torch's own mean reduction: sum l / sum c_y
                mean = float(F.cross_entropy(t(d["zc"]), yt, weight=None if c is None else t(c),
                                             label_smoothing=e))
                out.append((spec + " logits torch mean", ours(spec, d["zc"], d["yc"], None,
                                                               True), mean))
            if c is None:  # soft targets: torch's probability-target cross_entropy
                ref = F.cross_entropy(t(d["zc"]), t(d["q"]), label_smoothing=e,
                                      reduction="none")
                out.append((spec + " soft logits" + tag, ours(spec, d["zc"], d["q"], w, True),
                            reduce(ref, w)))
            zc = d["zc"] - d["zc"].max(axis=1, keepdims=True)
            probs = np.exp(zc) / np.exp(zc).sum(axis=1, keepdims=True)
            # probabilities: torch takes log-probabilities as logits (log_softmax leaves them)
            ref = F.cross_entropy(t(np.log(probs)), yt, weight=None if c is None else t(c),
                                  label_smoothing=e, reduction="none")
            out.append((spec + " probabilities" + tag, ours(spec, probs, d["yc"], w),
                        reduce(ref, w, denom)))
    return out


def _grad(spec: str, pred: np.ndarray, y: np.ndarray, logits: bool) -> np.ndarray:
    term = parse_spec(spec).terms[0]
    return np.asarray(term.loss.compute(Batch(pred, y, None, logits), term.params).grads)


def gradient_cases(rng: np.random.Generator) -> list[tuple[str, float]]:
    """(case, worst relative difference) of per-row gradients against torch.autograd of the
    sum of torch's per-row losses (cce: the row L2 norm)."""
    d = _data(rng)
    out: list[tuple[str, float]] = []

    def signed(spec: str, pred: np.ndarray, y: np.ndarray, logits: bool,
               fn: Callable[[torch.Tensor], torch.Tensor]) -> None:
        xt = t(pred).requires_grad_(True)
        fn(xt).sum().backward()
        assert xt.grad is not None
        ref = xt.grad.numpy()
        got = _grad(spec, pred, y, logits)
        out.append((spec, float(np.max(np.abs(got - ref) / np.maximum(np.abs(ref), 1e-12)))))

    mu, var = t(d["mu"]).requires_grad_(True), t(d["var"]).requires_grad_(True)
    F.gaussian_nll_loss(mu, t(d["yg"]), var, reduction="sum").backward()
    assert mu.grad is not None and var.grad is not None
    term = parse_spec("gaussian_nll").terms[0]
    c = term.loss.compute(Batch(d["mu"], d["yg"], None, False, var=d["var"]), term.params)
    assert c.var_grads is not None
    for name, got, ref in (("mean", c.grads, mu.grad.numpy()),
                           ("variance", c.var_grads, var.grad.numpy())):
        out.append((f"gaussian_nll w.r.t. the {name}",
                    float(np.max(np.abs(got - ref) / np.maximum(np.abs(ref), 1e-12)))))
    count = t(d["count"])
    signed("poisson_nll", np.log(d["rate"]), d["count"], False,
           lambda x: F.poisson_nll_loss(x, count, reduction="none"))
    signed("poisson_nll:log_input=false", d["rate"], d["count"], False,
           lambda x: F.poisson_nll_loss(x, count, log_input=False, reduction="none"))
    soft = t(d["y"] * 0.8 + 0.1)
    signed("bce:label_smoothing=0.2,pos_weight=3", d["z"], d["y"], True,
           lambda x: F.binary_cross_entropy_with_logits(
               x, soft, pos_weight=torch.tensor(3.0, dtype=torch.float64), reduction="none"))
    c = np.array([1.0, 2.0, 0.5, 4.0])
    zt = t(d["zc"]).requires_grad_(True)
    F.cross_entropy(zt, torch.from_numpy(d["yc"].astype(np.int64)), weight=t(c),
                    label_smoothing=0.2, reduction="sum").backward()
    assert zt.grad is not None
    ref = np.sqrt((zt.grad.numpy() ** 2).sum(axis=1))
    got = _grad("cce:label_smoothing=0.2,class_weights=1,2,0.5,4", d["zc"].T.copy(), d["yc"],
                True)
    out.append(("cce:label_smoothing=0.2,class_weights=1,2,0.5,4 (row norm)",
                float(np.max(np.abs(got - ref) / ref))))
    return out


def main() -> int:
    rng = np.random.default_rng(2026)
    worst = 0.0
    for case, a, b in value_cases(rng):
        r = rel(a, b)
        worst = max(worst, r)
        print(f"{case:60s} {a:.17g}  torch {b:.17g}  rel {r:.2e}")
    for case, r in gradient_cases(rng):
        worst = max(worst, r)
        print(f"gradient {case:51s} worst rel {r:.2e}")
    print(f"worst relative difference {worst:.2e} (limit {RTOL:g})")
    return 0 if worst <= RTOL else 1


if __name__ == "__main__":
    sys.exit(main())
