"""Measured coverage of losscli's confidence intervals, and compare's type-I error and power.

How to run (from the repository root; needs scipy for the true mae of the lognormal)::

    python benchmarks/coverage.py                       # the README's tables (a long profile)
    python benchmarks/coverage.py --datasets 300 --rows 30,100   # quicker, noisier
    python benchmarks/coverage.py --no-compare          # the coverage table alone
    python benchmarks/coverage.py --methods bootstrap --samples 500 --rows 100,500

Each dataset is a seeded draw of residuals e (prediction - target), with or without weights
(lognormal(0, 1), independent of e, so the weighted mean's target is the unweighted one); its
per-row losses go through the same accumulators and interval code as ``losscli eval`` (EvalState,
then the finishing step), and the interval "covers" when it contains the true mse or mae of the
residual distribution. A 95% interval should cover 95% of the time; the standard error of a
coverage estimate over D datasets is sqrt(0.95 * 0.05 / D) (0.49 points at 2,000, 0.69 at 1,000).

compare: both models' residuals share a normal or lognormal component (correlation 0.9); under H0
they are drawn alike, under the alternative the candidate's mse is 5% higher. Reported: the
share of runs in which ``--fail-if-worse`` fails with the six default losses (H0), and in which mse
is called worse with the defaults and alone (power). Prints markdown tables (the README's).
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

import numpy as np
from scipy import integrate, stats

from losscli.compare import Comparison, PairedState, _finish, check_gates
from losscli.engine import CiOptions, _finish_loss
from losscli.gates import Tolerance
from losscli.losses import Batch, default_losses
from losscli.spec import parse_spec
from losscli.state import EvalState

LOGNORMAL_MEAN = math.exp(0.5)
T3_MAE = 2 * math.sqrt(3) / math.pi


def _lognormal_mae() -> float:
    f = lambda x: abs(x - LOGNORMAL_MEAN) * stats.lognorm.pdf(x, 1.0)  # noqa: E731
    return float(integrate.quad(f, 0, LOGNORMAL_MEAN)[0] + integrate.quad(f, LOGNORMAL_MEAN,
                                                                          np.inf)[0])


#: name -> (sampler, true mse, true mae)
DISTRIBUTIONS: dict[str, tuple[Callable[[np.random.Generator, int], np.ndarray],
                               float, float]] = {
    "normal": (lambda g, n: g.normal(size=n), 1.0, math.sqrt(2 / math.pi)),
    "exponential": (lambda g, n: g.standard_exponential(n) - 1.0, 1.0, 2 / math.e),
    "t3": (lambda g, n: g.standard_t(3, n), 3.0, T3_MAE),
    "lognormal": (lambda g, n: g.lognormal(0.0, 1.0, n) - LOGNORMAL_MEAN,
                  math.e * (math.e - 1), math.nan),
}
METHODS = ("johnson", "t", "percentile")
SPECS = [parse_spec("mse"), parse_spec("mae")]


def coverage(draw: Callable[[np.random.Generator, int], np.ndarray], rows: int, datasets: int,
             truth: dict[str, float], weighted: bool, level: float, seed: int,
             methods: tuple[str, ...] = METHODS,
             samples: int = 200) -> dict[str, dict[str, float]]:
    """method -> loss -> share of datasets whose interval covers the truth."""
    rng = np.random.default_rng(seed)
    hits = {m: dict.fromkeys(truth, 0) for m in methods}
    index = np.arange(rows)
    zeros = np.zeros(rows)
    for i in range(datasets):
        e = draw(rng, rows)
        w = rng.lognormal(0.0, 1.0, rows) if weighted else None
        for method in methods:
            boot = samples if method in ("bootstrap", "percentile") else 0
            state = EvalState(SPECS, spread=True, skew=method != "t", boot_samples=boot,
                              boot_seed=i, boot_student=method == "bootstrap")
            state.update(Batch(e, zeros, w), rows=index)
            for spec, st in zip(SPECS, state.losses, strict=True):
                ci = _finish_loss(spec, st, state, False,
                                  ci=CiOptions(method, level, samples, i)).ci
                assert ci is not None
                hits[method][spec.spec] += ci.low <= truth[spec.spec] <= ci.high
    return {m: {k: v / datasets for k, v in h.items()} for m, h in hits.items()}


def compare_rates(rows: int, runs: int, skewed: bool, seed: int) -> tuple[float, float, float]:
    """(type-I error of --fail-if-worse with the defaults, power with the defaults, power of
    mse alone) over ``runs`` seeded comparisons."""
    rng = np.random.default_rng(seed)
    specs = [parse_spec(d.name) for d in default_losses("regression")]
    zeros = np.zeros(rows)

    def draw() -> np.ndarray:
        x = rng.normal(size=rows)
        return (np.exp(x) - LOGNORMAL_MEAN) / math.sqrt(math.e * (math.e - 1)) if skewed else x

    def finish(eb: np.ndarray, ec: np.ndarray, which: list) -> list:
        state = PairedState(which)
        state.update(Batch(eb, zeros, None), Batch(ec, zeros, None), None, 0)
        return _finish(which, state, float(rows), "johnson", 0, 0, 0.05)

    fails = called = alone = 0
    for _ in range(runs):
        base, shared = draw(), draw()
        eb = 0.9 * shared + math.sqrt(1 - 0.81) * base
        ec = 0.9 * shared + math.sqrt(1 - 0.81) * draw()
        res = finish(eb, ec, specs)
        gates = check_gates(Comparison({}, {}, "regression", rows, res), True, False,
                            Tolerance(0.0, False))
        fails += not all(g.passed for g in gates)
        worse = math.sqrt(1.05) * (0.9 * eb + math.sqrt(1 - 0.81) * draw())
        called += finish(eb, worse, specs)[0].verdict == "worse"
        alone += finish(eb, worse, specs[:1])[0].verdict == "worse"
    return fails / runs, called / runs, alone / runs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", type=int, default=2000)
    ap.add_argument("--rows", default="30,100,500,5000")
    ap.add_argument("--level", type=float, default=0.95)
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--samples", type=int, default=200, help="bootstrap replicates")
    ap.add_argument("--no-compare", action="store_true")
    args = ap.parse_args()
    sizes = [int(x) for x in args.rows.split(",")]
    methods = tuple(args.methods.split(","))
    print(f"Coverage of {100 * args.level:g}% intervals, {args.datasets:,} datasets per cell "
          "(mse / mae; weights lognormal(0, 1)):\n")
    head = " | ".join(f"{m}{', weighted' if w else ''}" for w in (False, True) for m in methods)
    print(f"| residuals | n | {head} |")
    print("|---|---:|" + "---|" * 2 * len(methods))
    for k, (name, (draw, mse, mae)) in enumerate(DISTRIBUTIONS.items()):
        if math.isnan(mae):
            mae = _lognormal_mae()
        for rows in sizes:
            cells = []
            for weighted in (False, True):
                c = coverage(draw, rows, args.datasets, {"mse": mse, "mae": mae}, weighted,
                             args.level, 1000 * k + rows + weighted, methods, args.samples)
                cells += [f"{100 * c[m]['mse']:.1f} / {100 * c[m]['mae']:.1f}" for m in methods]
            print(f"| {name} | {rows:,} | " + " | ".join(cells) + " |", flush=True)
    if args.no_compare:
        return
    print("\ncompare, default losses, johnson, alpha 0.05, correlation 0.9 "
          f"({args.datasets:,} runs per cell):\n")
    print("| residuals | n | --fail-if-worse fails under H0 | 5% mse regression called worse: "
          "defaults | mse alone |")
    print("|---|---:|---:|---:|---:|")
    for skewed in (False, True):
        for rows in (200, 1000):
            h0, power, alone = compare_rates(rows, args.datasets, skewed, 77 + rows + skewed)
            print(f"| {'lognormal' if skewed else 'normal'} | {rows:,} | {100 * h0:.1f}% | "
                  f"{100 * power:.1f}% | {100 * alone:.1f}% |", flush=True)


if __name__ == "__main__":
    main()
