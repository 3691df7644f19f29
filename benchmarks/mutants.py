"""A mutation check of the test suite: small deliberate bugs, one at a time, and the tests that
should catch each.

How to run (from the repository root, in the dev environment; not part of CI, ~5-10 minutes)::

    python benchmarks/mutants.py                  # every mutant
    python benchmarks/mutants.py --only se-factor --only adjustment-none
    python benchmarks/mutants.py --list
    python benchmarks/mutants.py --ref main       # the code and tests of another commit

Each mutant replaces one exact piece of source text (it must occur exactly once in its file) in a
fresh copy of the repository, then runs the tests named for it there (``python -m pytest -x``,
the copy first on the import path). A mutant is *killed* when a test fails, *survives* when all
pass. The unmutated copy must pass the same tests first. Prints one line per mutant and a
markdown table; exits 1 if any mutant survives.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COPIED = ("losscli", "tests", "examples", "sample_data", "docs", "pyproject.toml", "README.md",
          "action.yml", "action")


@dataclass(frozen=True)
class Mutant:
    name: str
    path: str  # relative to the repository root
    old: str
    new: str
    tests: tuple[str, ...]
    what: str


MUTANTS = [
    Mutant("mse-gradient-sign", "losscli/losses.py",
           "return Computed(e * e, 2.0 * e)", "return Computed(e * e, -2.0 * e)",
           ("tests/test_losses.py", "tests/test_engine.py"),
           "mse's per-row gradient points the wrong way"),
    Mutant("mae-gradient-at-zero", "losscli/losses.py",
           "Computed(b.abs_residual(), np.sign(b.residual()))",
           "Computed(b.abs_residual(), np.where(b.residual() >= 0.0, 1.0, -1.0))",
           ("tests/test_losses.py", "tests/test_engine.py"),
           "mae's gradient at e = 0 is 1 (torch and the README say 0)"),
    Mutant("huber-linear-part", "losscli/losses.py",
           "    values = m * 0.5\n", "    values = m * 0.45\n",
           ("tests/test_losses.py", "tests/test_engine.py"),
           "huber's value uses delta (|e| - 0.45 delta)"),
    Mutant("poisson-factor", "losscli/losses.py",
           "return Computed(2.0 * (ylogy - y + mu), 2.0 * (1.0 - ratio))",
           "return Computed(ylogy - y + mu, 2.0 * (1.0 - ratio))",
           ("tests/test_losses.py", "tests/test_engine.py"),
           "poisson deviance loses its factor 2"),
    Mutant("focal-alpha-swap", "losscli/losses.py",
           "at = np.where(b.target == 1.0, a, 1.0 - a)",
           "at = np.where(b.target == 1.0, 1.0 - a, a)",
           ("tests/test_losses.py", "tests/test_engine.py"),
           "focal's alpha weighs the negative class"),
    Mutant("cce-logit-gradient", "losscli/losses.py",
           "grads = np.sqrt(rest * rest + rest_sq) / total",
           "grads = np.sqrt(rest_sq) / total",
           ("tests/test_losses.py", "tests/test_engine.py"),
           "cce's logit gradient norm forgets the true class's 1 - s_y"),
    Mutant("clip-epsilon", "losscli/losses.py",
           "EPS = sys.float_info.epsilon", "EPS = 1e-15",
           ("tests/test_losses.py",),
           "probabilities clipped at 1e-15 (not float64 epsilon, scikit-learn's)"),
    Mutant("weight-normalisation", "losscli/state.py",
           "self.weight_sum.add(float(n) if w is None else float(np.sum(w)))",
           "self.weight_sum.add(float(n))",
           ("tests/test_engine.py", "tests/test_losses.py"),
           "a weighted mean divided by the row count, not sum(w)"),
    Mutant("se-factor", "losscli/state.py",
           "return nr * nr * q2 / (n - 1), nr * nr * nr * q3 / n",
           "return nr * nr * q2 / n, nr * nr * nr * q3 / n",
           ("tests/test_uncertainty.py", "tests/test_compare.py", "tests/test_engine.py"),
           "the standard error without its n / (n - 1)"),
    Mutant("moments-merge", "losscli/state.py",
           "m2 = m2a + m2b + delta * dn * na * nb",
           "m2 = m2a + m2b + delta * dn * na",
           ("tests/test_state.py", "tests/test_engine.py"),
           "Chan's merge of second moments drops a factor"),
    Mutant("bucket-value", "losscli/state.py",
           "lo + 0.5 * (hi - lo)", "lo + 0.95 * (hi - lo)",
           ("tests/test_state.py", "tests/test_engine.py", "tests/test_invariance.py"),
           "a histogram bucket's value near its upper edge (up to 0.74% off)"),
    Mutant("vanishing-inclusive", "losscli/state.py",
           "return 0 if lo > t else n if amax <= t else int(np.count_nonzero(a <= t))",
           "return 0 if lo > t else n if amax <= t else int(np.count_nonzero(a < t))",
           ("tests/test_engine.py",),
           "|g| equal to --vanish-tol no longer counts as vanishing"),
    Mutant("rmse-se-delta-method", "losscli/engine.py",
           "    return se / (2.0 * value) if value > 0 else math.nan\n",
           "    return se / value if value > 0 else math.nan\n",
           ("tests/test_uncertainty.py", "tests/test_engine.py"),
           "SE(rmse) = SE(mse) / rmse, not / (2 rmse)"),
    Mutant("t-as-normal", "losscli/uncertainty.py",
           "    c = t_ppf(0.5 + 0.5 * level, df) if crit is None else crit\n",
           "    c = norm_ppf(0.5 + 0.5 * level) if crit is None else crit\n",
           ("tests/test_uncertainty.py", "tests/test_compare.py"),
           "intervals use the normal quantile, not Student's t"),
    Mutant("johnson-sign", "losscli/uncertainty.py",
           "    return t + k * t * t / 3.0 + k * k * t * t * t / 27.0 + k / 6.0\n",
           "    return t + k * t * t / 3.0 + k * k * t * t * t / 27.0 - k / 6.0\n",
           ("tests/test_uncertainty.py",),
           "Hall's transform with Johnson's bias term of the wrong sign"),
    Mutant("adjustment-none", "losscli/uncertainty.py",
           "            p = fam.p(statistics[r])\n",
           "            p = fam.single_p(statistics[r])\n",
           ("tests/test_compare.py", "tests/test_family.py"),
           "compare's adjusted p-values without the family adjustment"),
    Mutant("step-down-single-step", "losscli/uncertainty.py",
           "            fam = family_of(sorted(reps[j:]))\n",
           "            fam = family_of(sorted(reps))\n",
           ("tests/test_family.py",),
           "the family's later steps judged among all the tests (single-step max-T)"),
    Mutant("compare-delta-sign", "losscli/compare.py",
           "    delta = cand - base\n", "    delta = base - cand\n",
           ("tests/test_compare.py",),
           "compare's delta as baseline minus candidate"),
    Mutant("gate-boundary", "losscli/gates.py",
           'gates.append(Gate(spec, "max", limit, value, bool(value <= limit)))',
           'gates.append(Gate(spec, "max", limit, value, bool(value < limit)))',
           ("tests/test_gates.py",),
           "--max fails a value equal to its limit"),
    Mutant("label-mapping", "losscli/sources.py",
           "return np.where(found, order[pos].astype(np.float64), np.nan)",
           "return np.where(found, pos.astype(np.float64), np.nan)",
           ("tests/test_sources.py", "tests/test_detect.py", "tests/test_engine.py",
            "tests/test_class_weights.py"),
           "integer class labels in another order map to sorted positions, not columns"),
    Mutant("nan-row-number", "losscli/sources.py",
           "stats.first_row = first + i + 1", "stats.first_row = first + i",
           ("tests/test_cli.py", "tests/test_sources.py", "tests/test_engine.py"),
           "the --nan error names the row before the first NaN"),
    Mutant("huber-k", "losscli/recommend/thresholds.py",
           "HUBER_K = 1.345", "HUBER_K = 1.5",
           ("tests/test_recommend.py",),
           "recommend's Huber delta is 1.5 robust scales, not the documented 1.345"),
    Mutant("mad-to-sigma", "losscli/recommend/thresholds.py",
           "MAD_TO_SIGMA = 1.4826", "MAD_TO_SIGMA = 1.5",
           ("tests/test_recommend.py",),
           "the robust scale is 1.5 MAD, not 1.4826 MAD"),
    Mutant("outlier-z", "losscli/recommend/thresholds.py",
           "OUTLIER_Z = 3.5", "OUTLIER_Z = 3.0",
           ("tests/test_recommend.py",),
           "outliers past 3 robust scales, not the documented 3.5"),
]


def _copy(dest: Path, ref: str | None) -> None:
    """The repository's files (as committed at ``ref``, or as they are) into ``dest``."""
    if ref is not None:
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref, *COPIED],
                                 capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
        return
    for name in COPIED:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns(
                "__pycache__", ".hypothesis", "*.egg-info"))
        elif src.exists():
            shutil.copy2(src, dest / name)


def _pytest(copy: Path, tests: tuple[str, ...], timeout: float) -> tuple[str, str]:
    """("passed" | "failed" | "error", the last line of pytest's output) of those of the tests
    that exist in the copy."""
    tests = tuple(t for t in tests if (copy / t).exists())
    if not tests:
        return "error", "none of its tests exists here"
    env = {**os.environ, "PYTHONPATH": str(copy), "PYTHONDONTWRITEBYTECODE": "1"}
    try:
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
                               "-o", "addopts=", *tests], cwd=copy, env=env, capture_output=True,
                              text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return "error", f"timed out after {timeout:.0f} s"
    lines = [x for x in proc.stdout.splitlines() if x.strip()]
    outcome = {0: "passed", 1: "failed"}.get(proc.returncode, "error")
    return outcome, lines[-1] if lines else proc.stderr.strip()[-200:]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", action="append", default=[], help="run this mutant (repeatable)")
    ap.add_argument("--list", action="store_true", help="list the mutants and exit")
    ap.add_argument("--timeout", type=float, default=600.0, help="seconds per pytest run")
    ap.add_argument("--ref", help="mutate the code and tests of this git commit instead")
    args = ap.parse_args()
    chosen = [m for m in MUTANTS if not args.only or m.name in args.only]
    if args.list or not chosen:
        for m in MUTANTS:
            print(f"{m.name:24} {m.path:24} {m.what}")
        return 0 if args.list else 2
    with tempfile.TemporaryDirectory(prefix="losscli-mutants-") as tmp:
        copy = Path(tmp)
        _copy(copy, args.ref)
        probe = subprocess.run([sys.executable, "-c", "import losscli; print(losscli.__file__)"],
                               cwd=copy, env={**os.environ, "PYTHONPATH": str(copy)},
                               capture_output=True, text=True, check=True).stdout.strip()
        assert Path(probe).is_relative_to(copy), f"the tests would import {probe}"
        tests = tuple(sorted({t for m in chosen for t in m.tests}))
        outcome, last = _pytest(copy, tests, args.timeout)
        if outcome != "passed":
            print(f"the unmutated copy fails its tests: {last}")
            return 2
        rows = []
        for m in chosen:
            path = copy / m.path
            original = path.read_text(encoding="utf-8")
            if original.count(m.old) != 1:
                print(f"{m.name}: its text occurs {original.count(m.old)} times in {m.path}")
                return 2
            path.write_text(original.replace(m.old, m.new), encoding="utf-8")
            start = time.perf_counter()
            try:
                outcome, last = _pytest(copy, m.tests, args.timeout)
            finally:
                path.write_text(original, encoding="utf-8")
            verdict = {"passed": "SURVIVED", "failed": "killed"}.get(outcome, "ERROR")
            rows.append((m, verdict, last, time.perf_counter() - start))
            print(f"{verdict:8} {m.name:24} {time.perf_counter() - start:5.1f} s  {last}",
                  flush=True)
    killed = sum(v == "killed" for _, v, _, _ in rows)
    print(f"\n{killed} of {len(rows)} mutants killed\n")
    print("| mutant | bug | tests | result |\n|---|---|---|---|")
    for m, verdict, _, _ in rows:
        names = ", ".join(Path(t).stem for t in m.tests)
        print(f"| `{m.name}` | {m.what} | {names} | {verdict} |")
    return 0 if killed == len(rows) else 1 if all(v != "ERROR" for _, v, _, _ in rows) else 2


if __name__ == "__main__":
    sys.exit(main())
