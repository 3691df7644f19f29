"""One-off check that losscli's class weights equal PyTorch's (not part of the test suite, which
must not depend on torch): ``bce:pos_weight`` against ``binary_cross_entropy_with_logits(
pos_weight=K)`` and ``cce:class_weights`` against ``cross_entropy(weight=...)``, on logits and
probabilities, with and without sample weights, and the ``balanced`` forms.

    pip install torch  # CPU build
    python benchmarks/verify_torch_class_weights.py

Prints the worst relative difference of each case; exits 1 if any exceeds 1e-12.
"""

from __future__ import annotations

import sys

import numpy as np
import torch
import torch.nn.functional as F

import losscli

RTOL = 1e-12


def rel(a: float, b: float) -> float:
    return abs(a - b) / max(abs(a), abs(b))


def torch_bce(z: np.ndarray, y: np.ndarray, k: float, w: np.ndarray | None) -> float:
    """BCEWithLogitsLoss(pos_weight=k), per row, reduced as losscli: sum w l / sum w."""
    per_row = F.binary_cross_entropy_with_logits(
        torch.from_numpy(z), torch.from_numpy(y), pos_weight=torch.tensor(k, dtype=torch.float64),
        reduction="none").numpy()
    return float(np.sum(per_row * w) / np.sum(w)) if w is not None else float(np.mean(per_row))


def torch_cce(logp: np.ndarray, y: np.ndarray, c: np.ndarray, w: np.ndarray | None) -> float:
    """cross_entropy(weight=c): sum c_y l / sum c_y; with sample weights w, sum w c_y l /
    sum w c_y (reduction="none" gives c_y l per row)."""
    yt = torch.from_numpy(y.astype(np.int64))
    per_row = F.cross_entropy(torch.from_numpy(logp), yt, weight=torch.from_numpy(c),
                              reduction="none").numpy()
    if w is None:
        mean = float(F.cross_entropy(torch.from_numpy(logp), yt, weight=torch.from_numpy(c)))
        assert rel(mean, float(per_row.sum() / c[y.astype(int)].sum())) < 1e-14
        return mean
    return float(np.sum(w * per_row) / np.sum(w * c[y.astype(int)]))


def gradients(rng: np.random.Generator) -> float:
    """Per-row gradients w.r.t. the logits: losscli's g_i against torch.autograd of the sum of
    the per-row losses (bce: the signed g_i; cce: the row L2 norm of the gradient)."""
    from losscli.losses import CATALOG, Batch

    n, k = 5000, 4.0
    z = rng.normal(-1.0, 3.0, n)
    y = (rng.random(n) < 0.2).astype(np.float64)
    zt = torch.from_numpy(z.copy()).requires_grad_(True)
    F.binary_cross_entropy_with_logits(zt, torch.from_numpy(y), reduction="sum",
                                       pos_weight=torch.tensor(k, dtype=torch.float64)).backward()
    assert zt.grad is not None
    ours = CATALOG["bce"].compute(Batch(z, y, None, True), {"pos_weight": k}).grads
    ref = zt.grad.numpy()
    d_bce = float(np.max(np.abs(ours - ref) / np.maximum(np.abs(ref), 1e-300)))
    C = 5
    Z = rng.normal(0.0, 2.0, (n, C))
    yc = rng.integers(0, C, n).astype(np.float64)
    c = np.array([0.5, 1, 2, 4, 8.0])
    Zt = torch.from_numpy(Z.copy()).requires_grad_(True)
    per_row = F.cross_entropy(Zt, torch.from_numpy(yc.astype(np.int64)),
                              weight=torch.from_numpy(c), reduction="none")
    per_row.sum().backward()  # d (c_y l_i) / d z_i, row by row
    assert Zt.grad is not None
    ref_c = np.sqrt((Zt.grad.numpy() ** 2).sum(axis=1))
    ours_c = CATALOG["cce"].compute(Batch(np.ascontiguousarray(Z.T), yc, None, True),
                                    {"class_weights": tuple(c)}).grads
    d_cce = float(np.max(np.abs(ours_c - ref_c) / ref_c))
    print(f"gradients: bce pos_weight={k:g} rel {d_bce:.2e}; cce class_weights row norm "
          f"rel {d_cce:.2e}")
    return max(d_bce, d_cce)


def main() -> int:
    rng = np.random.default_rng(7)
    n = 20_000
    worst = 0.0
    # binary: logits and their probabilities, 8% positives
    y = (rng.random(n) < 0.08).astype(np.float64)
    z = rng.normal(-2.0, 2.0, n) + 2.5 * y
    p = 1.0 / (1.0 + np.exp(-z))
    # probabilities: torch's logit input recovers losscli's log p, log(1 - p) from logit(p)
    z_of_p = np.log(p) - np.log1p(-p)
    w = rng.uniform(0.1, 3.0, n)
    n_neg, n_pos = int((y == 0).sum()), int((y == 1).sum())
    for k_text, k in (("0.3", 0.3), ("9", 9.0), ("balanced", n_neg / n_pos)):
        for weighted in (False, True):
            ww = w if weighted else None
            for logits, pred, tz in ((True, z, z), (False, p, z_of_p)):
                ours = losscli.evaluate({"pred": pred, "target": y, **({"w": w} if weighted
                                                                       else {})},
                                        pred="pred", target="target",
                                        weight="w" if weighted else None,
                                        losses=[f"bce:pos_weight={k_text}"],
                                        logits=logits).losses[0].value
                ref = torch_bce(tz, y, k, ww)
                d = rel(ours, ref)
                worst = max(worst, d)
                print(f"bce pos_weight={k_text:8s} logits={logits!s:5s} weighted={weighted!s:5s}"
                      f" losscli {ours:.17g} torch {ref:.17g} rel {d:.2e}")
    # multiclass: 5 classes, imbalanced
    C = 5
    y = rng.choice(C, size=n, p=[0.5, 0.25, 0.15, 0.07, 0.03]).astype(np.float64)
    Z = rng.normal(0.0, 2.0, (n, C))
    Z[np.arange(n), y.astype(int)] += 1.5
    P = np.exp(Z - Z.max(axis=1, keepdims=True))
    P /= P.sum(axis=1, keepdims=True)
    counts = np.bincount(y.astype(int), minlength=C)
    balanced = n / (C * counts)
    for c_text, c in (("0.5,1,2,4,8", np.array([0.5, 1, 2, 4, 8.0])),
                      ("balanced", balanced)):
        for weighted in (False, True):
            ww = w if weighted else None
            for logits, pred, tz in ((True, Z, Z), (False, P, np.log(P))):
                cols = {f"s{j}": pred[:, j] for j in range(C)}
                cols["target"] = y
                if weighted:
                    cols["w"] = w
                ours = losscli.evaluate(cols, pred="s*", target="target",
                                        weight="w" if weighted else None,
                                        losses=[f"cce:class_weights={c_text}"],
                                        logits=logits).losses[0].value
                ref = torch_cce(tz, y, c, ww)
                d = rel(ours, ref)
                worst = max(worst, d)
                print(f"cce class_weights={c_text:11s} logits={logits!s:5s} "
                      f"weighted={weighted!s:5s} losscli {ours:.17g} torch {ref:.17g} "
                      f"rel {d:.2e}")
    worst = max(worst, gradients(rng))
    print(f"torch {torch.__version__}: worst relative difference {worst:.2e} (limit {RTOL:g})")
    return 0 if worst <= RTOL else 1


if __name__ == "__main__":
    sys.exit(main())
