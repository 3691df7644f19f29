"""compare's one interval: a family of losses tested as a family (max-T checked against
SciPy's multivariate normal and t, and hand-worked cases), the verdict, interval, p-value and
gates in agreement, and seeded simulations of the type-I error and power of the default
losses."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import scipy.stats

from losscli.cli import run
from losscli.compare import Comparison, LossComparison, PairedState, _finish, check_gates
from losscli.gates import Tolerance
from losscli.losses import Batch, default_losses
from losscli.spec import LossSpec, parse_spec
from losscli.state import CoMoments
from losscli.uncertainty import FAMILY_DRAWS, Family, StepDown

DEFAULTS = [parse_spec(d.name) for d in default_losses("regression")]


def paired(eb: np.ndarray, ec: np.ndarray, specs: list[LossSpec], method: str = "johnson",
           alpha: float = 0.05, primary: int | None = None,
           w: np.ndarray | None = None) -> list[LossComparison]:
    """compare's finish on residuals eb (baseline) and ec (candidate), one chunk."""
    n = eb.size
    state = PairedState(specs, skew=method != "t")
    zero = np.zeros(n)
    state.update(Batch(eb, zero, w), Batch(ec, zero, w), None, 0)
    return _finish(specs, state, float(n if w is None else w.sum()), method, 0, 0, alpha,
                   primary)


def mc_tolerance(p: float, draws: int = FAMILY_DRAWS) -> float:
    """Four Monte Carlo standard errors of a probability p from the family's draws."""
    return 4.0 * math.sqrt(p * (1.0 - p) / draws) + 1e-4


# --- the family adjustment against independent computations -------------------------------


def test_identical_tests_count_once_and_one_test_is_the_t_test() -> None:
    fam = Family.of(np.ones((3, 3)), 50.0)
    assert fam.distinct == 1 and fam.groups == (0, 0, 0)
    for x in (0.3, 1.7, 2.5, 6.0):
        assert fam.p(x) == pytest.approx(2 * scipy.stats.t.sf(x, 50), rel=1e-10)
    assert fam.critical(0.05) == pytest.approx(scipy.stats.t.ppf(0.975, 50), rel=1e-10)
    # a loss and a multiple of it (quantile at 0.5 and mae): correlation 1 up to rounding
    assert Family.of(np.array([[1.0, 1.0 - 1e-15], [1.0 - 1e-15, 1.0]]), 9.0).distinct == 1


def test_two_independent_tests_are_sidak() -> None:
    """Independent normal statistics: P(max |Z| >= x) = 1 - (1 - p)^2, by hand."""
    fam = Family.of(np.eye(2), math.inf)
    for x in (1.0, 1.96, 2.24, 2.8):
        p1 = 2 * scipy.stats.norm.sf(x)
        ref = 1 - (1 - p1) ** 2
        assert fam.p(x) == pytest.approx(ref, abs=mc_tolerance(ref))
    sidak = scipy.stats.norm.ppf(1 - (1 - math.sqrt(0.95)) / 2)  # 2.2365
    assert fam.critical(0.05) == pytest.approx(sidak, abs=0.02)


@pytest.mark.parametrize("df", [math.inf, 20.0])
def test_correlated_family_matches_scipy_multivariate_distributions(df: float) -> None:
    corr = np.array([[1.0, 0.5, 0.8], [0.5, 1.0, 0.3], [0.8, 0.3, 1.0]])
    fam = Family.of(corr, df)
    dist = (scipy.stats.multivariate_normal(np.zeros(3), corr) if df == math.inf
            else scipy.stats.multivariate_t(np.zeros(3), corr, df=df))
    for x in (1.5, 2.0, 2.4, 2.9):
        inside = dist.cdf(np.full(3, x), lower_limit=np.full(3, -x))
        assert fam.p(x) == pytest.approx(1 - inside, abs=mc_tolerance(1 - inside) + 1e-3)
    c = fam.critical(0.05)
    assert 1 - dist.cdf(np.full(3, c), lower_limit=np.full(3, -c)) == pytest.approx(0.05,
                                                                                 abs=0.004)


def test_p_below_alpha_exactly_beyond_the_critical_value() -> None:
    fam = Family.of(np.array([[1.0, 0.9, 0.6], [0.9, 1.0, 0.7], [0.6, 0.7, 1.0]]), 120.0)
    for alpha in (0.01, 0.05, 0.1, 0.2):
        c = fam.critical(alpha)
        for x in np.concatenate([np.linspace(0.0, 5.0, 401), c * (1 + np.array(
                [-1e-9, 1e-9, -1e-6, 1e-6]))]):
            assert (fam.p(x) < alpha) == (x > c), (alpha, x, c)
        assert fam.p(c * (1 + 1e-9)) <= alpha < fam.p(c * (1 - 1e-9)) + 1e-12


def test_step_down_over_independent_tests_is_holm_sidak() -> None:
    """Independent normal statistics: the step-down max-T procedure is Holm's with Sidak's
    levels, by hand: the j-th smallest raw p is adjusted to the largest over i <= j of
    1 - (1 - p_(i))^(m - i + 1); a duplicate (correlation 1) shares its test's result."""
    fam = Family.of(np.eye(3), math.inf)
    stats = [2.6, -1.2, 2.2, 2.6]  # the last duplicates the first
    groups = (0, 1, 2, 0)
    steps = StepDown.of(stats, groups, lambda t: Family.of(np.eye(len(t)), math.inf), 0.05)
    raw = {i: 2 * scipy.stats.norm.sf(abs(stats[i])) for i in (0, 1, 2)}
    ref, running = {}, 0.0
    for j, i in enumerate(sorted(raw, key=raw.get)):
        running = max(running, 1 - (1 - raw[i]) ** (3 - j))
        ref[i] = running
    for i, r in enumerate(groups):
        assert steps.p[i] == pytest.approx(ref[r], abs=mc_tolerance(ref[r]))
    assert fam.distinct == 3
    # 2.6 beats the three tests' critical value (Sidak's 2.39), 2.2 then the two left's
    # (2.24) does not: the procedure stops, and the ones not rejected share that value
    assert steps.p[0] < 0.05 <= steps.p[2]
    sidak2 = scipy.stats.norm.ppf(1 - (1 - math.sqrt(0.95)) / 2)
    assert steps.critical[2] == steps.critical[1] == pytest.approx(sidak2, abs=0.02)
    assert steps.critical[0] == steps.critical[3] == pytest.approx(
        scipy.stats.norm.ppf(1 - (1 - 0.95 ** (1 / 3)) / 2), abs=0.02)


def test_step_down_rejects_exactly_where_its_intervals_exclude_zero() -> None:
    """Random correlated families and statistics: a test is rejected (adjusted p < alpha)
    exactly when |statistic| exceeds its critical value, adjusted p-values never fall below
    the raw ones nor rise above the single-step ones."""
    rng = np.random.default_rng(5)
    for _ in range(60):
        m = int(rng.integers(2, 5))
        a = rng.normal(size=(m, m + 2))
        cov = a @ a.T
        corr = cov / np.sqrt(np.outer(np.diag(cov), np.diag(cov)))
        stats = list(rng.normal(0.0, 2.5, m))
        fam = Family.of(corr, 200.0)
        steps = StepDown.of(stats, fam.groups,
                            lambda t, c=corr: Family.of(c[np.ix_(t, t)], 200.0), 0.05)
        for i, s in enumerate(stats):
            assert (steps.p[i] < 0.05) == (abs(s) > steps.critical[i])
            assert fam.single_p(s) - 1e-12 <= steps.p[i] <= fam.p(s) + 1e-12


def test_co_moments_merge_like_numpy_in_any_split(rng: np.random.Generator) -> None:
    x = rng.lognormal(size=(4, 900)) + np.array([[1e3], [0.0], [-5.0], [2.0]])
    for w in (None, rng.uniform(0.0, 1e5, 900)):
        whole = CoMoments.of(x, w)
        parts = [CoMoments.of(x[:, a:b], None if w is None else w[a:b])
                 for a, b in ((0, 7), (7, 500), (500, 501), (501, 900))]
        left = CoMoments()
        for p in parts:
            left.merge(p)
        right = CoMoments()
        tail = CoMoments()
        for p in parts[2:]:
            tail.merge(p)
        right.merge(parts[0])
        right.merge(parts[1])
        right.merge(tail)
        centre = x.mean(axis=1) if w is None else (x * w).sum(axis=1) / w.sum()
        v = np.ones(900) if w is None else w
        terms = v * (x - centre[:, None])
        cov = terms @ terms.T
        ref = cov / np.sqrt(np.outer(np.diag(cov), np.diag(cov)))
        for got in (whole, left, right):
            assert got.correlation(centre) == pytest.approx(ref, abs=1e-10)


# --- compare reads one interval -----------------------------------------------------------


def test_rmse_counts_with_mse_and_quantile_with_mae(rng: np.random.Generator) -> None:
    eb = rng.normal(size=400)
    ec = eb + 0.3 * rng.normal(size=400)
    r = {x.spec: x for x in paired(eb, ec, [*DEFAULTS, parse_spec("quantile")])}
    assert {x.family for x in r.values()} == {4}  # mse, mae, huber, log_cosh
    assert r["rmse"].p_adjusted == r["mse"].p_adjusted
    assert r["quantile"].p_adjusted == pytest.approx(r["mae"].p_adjusted, rel=1e-9)
    assert r["quantile"].verdict == r["mae"].verdict


def test_verdict_interval_p_and_gates_never_disagree() -> None:
    """300 seeded small datasets, skewed and not, every method: 'worse' exactly when the
    interval's lower end is above 0 and then the adjusted p is below alpha; each gate reads
    the printed interval."""
    rng = np.random.default_rng(16)
    seen = set()
    for i in range(300):
        n = int(rng.integers(8, 120))
        eb = rng.lognormal(0.0, 1.0, n) if i % 2 else rng.normal(size=n)
        ec = eb * rng.uniform(0.5, 1.6) + rng.normal(0.0, 0.4, n)
        alpha = (0.01, 0.05, 0.2)[i % 3]
        method = ("johnson", "t")[i % 2]
        results = paired(eb, ec, DEFAULTS, method, alpha)
        for r in results:
            worse, better = r.ci.low > 0, r.ci.high < 0
            assert r.verdict == ("worse" if worse else "better" if better
                                 else "no significant difference")
            assert (worse or better) == (r.p_adjusted < alpha)
            assert r.ci.low <= r.delta <= r.ci.high and r.p_value <= r.p_adjusted
            seen.add(r.verdict)
        for m in (0.0, 0.05):
            comp = Comparison({}, {}, "regression", n, results)
            gates = check_gates(comp, True, True, Tolerance(m, False))
            for g in gates:
                r = next(x for x in results if x.spec == g.loss)
                if g.kind == "fail_if_worse":
                    assert g.passed == (r.ci.low <= m) and g.bound == r.ci.low
                else:
                    assert g.passed == (r.ci.high < m) and g.bound == r.ci.high
    assert seen == {"worse", "better", "no significant difference"}


def test_fail_if_worse_with_the_default_losses_keeps_alpha_under_h0() -> None:
    """Both models' residuals drawn alike (normal, then skewed): --fail-if-worse fails in at
    most alpha of 400 seeded runs plus two binomial standard errors (the gate is one-sided
    on a two-sided interval: about alpha / 2 is expected)."""
    rng = np.random.default_rng(3)
    runs = 300
    for draw in (lambda n: rng.normal(size=n), lambda n: rng.standard_exponential(n) - 1):
        fails = 0
        for _ in range(runs):
            results = paired(draw(200), draw(200), DEFAULTS)
            comp = Comparison({}, {}, "regression", 200, results)
            fails += not all(g.passed for g in check_gates(comp, True, False,
                                                           Tolerance(0.0, False)))
        assert fails / runs <= 0.05 + 2 * math.sqrt(0.05 * 0.95 / runs)


def _step_down_power(corr: np.ndarray, shift: np.ndarray, draws: int = 200_000) -> float:
    """P(the first test is rejected) by the step-down max-T procedure, for normal statistics
    with correlation ``corr`` and means ``shift`` (one-sided: called worse), computed here with
    NumPy alone: critical values of every subset from their own simulated maxima."""
    rng = np.random.default_rng(2024)
    m = corr.shape[0]
    root = np.linalg.cholesky(corr)
    crit = {}
    for mask in range(1, 1 << m):
        sub = [i for i in range(m) if mask >> i & 1]
        z = rng.standard_normal((draws, len(sub))) @ np.linalg.cholesky(
            corr[np.ix_(sub, sub)]).T
        crit[mask] = np.quantile(np.max(np.abs(z), axis=1), 0.95)
    t = rng.standard_normal((draws, m)) @ root.T + shift
    order = np.argsort(-np.abs(t), axis=1)
    rejected = np.zeros(draws, dtype=bool)
    alive = np.ones(draws, dtype=bool)
    mask = np.full(draws, (1 << m) - 1)
    for j in range(m):
        k = order[:, j]
        c = np.array([crit[x] for x in range(1 << m) if x], dtype=float)[mask - 1]
        hit = alive & (np.abs(t[np.arange(draws), k]) > c)
        rejected |= hit & (k == 0) & (t[:, 0] > 0)
        alive &= hit
        mask = mask & ~(1 << k)
        mask[mask == 0] = 1  # finished rows: any index, they are no longer alive
    return float(rejected.mean())


def test_correlated_default_losses_do_not_dilute_a_regression() -> None:
    """A 5% mse regression at n = 1,000 (the two models' residuals correlate 0.9): the
    step-down max-T over the default losses' four distinct tests calls mse worse in at least
    35% of runs (36% in theory, by an independent computation over the losses' joint normal
    approximation; 42% for mse tested alone; the single-step max-T kept 34.5%, Holm over six
    counted tests 19%), and in 1,000 seeded runs within two standard errors of that."""
    rng = np.random.default_rng(41)
    big = 2_000_000
    eb = rng.normal(size=big)
    ec = math.sqrt(1.05) * (0.9 * eb + math.sqrt(1 - 0.81) * rng.normal(size=big))

    def huber(e: np.ndarray) -> np.ndarray:
        return np.where(np.abs(e) <= 1, 0.5 * e * e, np.abs(e) - 0.5)

    def log_cosh(e: np.ndarray) -> np.ndarray:
        return np.logaddexp(e, -e) - math.log(2)

    d = np.stack([ec**2 - eb**2, np.abs(ec) - np.abs(eb), huber(ec) - huber(eb),
                  log_cosh(ec) - log_cosh(eb)])
    theory = _step_down_power(np.corrcoef(d), d.mean(axis=1) / d.std(axis=1) * math.sqrt(1000))
    assert theory >= 0.35
    runs, alone, family = 1000, 0, 0
    for _ in range(runs):
        eb = rng.normal(size=1000)
        ec = math.sqrt(1.05) * (0.9 * eb + math.sqrt(1 - 0.81) * rng.normal(size=1000))
        family += paired(eb, ec, DEFAULTS)[0].verdict == "worse"
        alone += paired(eb, ec, DEFAULTS[:1])[0].verdict == "worse"
    assert alone / runs >= 0.38
    assert family / runs >= theory - 2 * math.sqrt(theory * (1 - theory) / runs)


def test_gates_over_the_default_losses_keep_alpha_at_a_relative_margin() -> None:
    """The candidate's mse exactly 5% above the baseline's (the other losses about 2.5%),
    n = 1,000, the default losses: --fail-if-worse --tolerance 5% fails, and
    --require-not-worse --tolerance 5% passes, each in at most alpha of 300 seeded runs plus
    two standard errors (the step-down critical values read by both gates)."""
    rng = np.random.default_rng(515)
    runs, failed, passed = 300, 0, 0
    tol = Tolerance(0.05, True)
    for _ in range(runs):
        eb = rng.normal(size=1000)
        ec = math.sqrt(1.05) * (0.9 * eb + math.sqrt(0.19) * rng.normal(size=1000))
        state = PairedState(DEFAULTS, ratio=True)
        zero = np.zeros(1000)
        state.update(Batch(eb, zero, None), Batch(ec, zero, None), None, 0)
        res = _finish(DEFAULTS, state, 1000.0, "johnson", 0, 0, 0.05)
        gates = check_gates(Comparison({}, {}, "regression", 1000, res), True, True, tol)
        failed += not all(g.passed for g in gates if g.kind == "fail_if_worse")
        passed += all(g.passed for g in gates if g.kind != "fail_if_worse")
    bound = 0.05 + 2 * math.sqrt(0.05 * 0.95 / runs)
    assert failed / runs <= bound and passed / runs <= bound


def test_primary_is_tested_alone_and_gated_alone(rng: np.random.Generator) -> None:
    eb = rng.normal(size=300)
    ec = eb + 0.5 * rng.normal(size=300)
    r = paired(eb, ec, DEFAULTS, primary=0)
    assert r[0].role == "primary" and r[0].family == 1 and r[0].p_adjusted == r[0].p_value
    assert all(x.role == "secondary" for x in r[1:])
    assert {x.family for x in r[1:]} == {4}  # rmse, mae, huber, log_cosh
    gates = check_gates(Comparison({}, {}, "regression", 300, r), True, True,
                        Tolerance(0.0, False))
    assert [g.loss for g in gates] == ["mse", "mse"]
    assert "(primary)" in r[0].sentence() and "secondary, adjusted over 4" in r[1].sentence()


@pytest.fixture
def models(tmp_path: Path) -> Path:
    rng = np.random.default_rng(8)
    n = 400
    y = rng.normal(size=n)
    old = y + rng.normal(size=n)
    path = tmp_path / "m.parquet"
    pq.write_table(pa.table({"y": y, "old": old, "new": old + 0.8 * rng.normal(size=n)}), path)
    return path


def test_cli_primary_and_its_config_key(models: Path, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    import json

    args = ["compare", str(models), "--baseline-pred", "old", "--pred", "new", "-t", "y"]
    assert run([*args, "--primary", "mae", "-f", "json", "--fail-if-worse"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert [g["loss"] for g in doc["gates"]] == ["mae"]
    assert doc["settings"]["primary"] == "mae"
    assert {x["spec"]: x["role"] for x in doc["losses"]}["mae"] == "primary"
    cfg = tmp_path / "losscli.toml"
    cfg.write_text('primary = "huber"\n')
    assert run([*args, "--config", str(cfg), "-f", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [x["spec"] for x in doc["losses"] if x["role"] == "primary"] == ["huber"]
    assert run([*args, "--primary", "bce"]) == 2
    assert "--primary bce is not one of the losses compared" in capsys.readouterr().err
    assert run([*args, "--confidence", "0.9", "--alpha", "0.01"]) == 2
    assert "disagree" in capsys.readouterr().err


def test_bootstrap_p_value_is_floored_at_one_over_b(models: Path) -> None:
    from losscli.compare import compare

    r = compare(models, baseline_pred="old", pred="new", target="y", losses=["mse"],
                ci="bootstrap", bootstrap_samples=100).losses[0]
    assert r.verdict == "worse" and r.p_below and r.p_adjusted == 0.01
    assert "p < 0.01" in r.sentence()
    few = compare(models, baseline_pred="old", pred="new", target="y", losses=["mse"],
                  ci="bootstrap", bootstrap_samples=15)
    assert few.losses[0].verdict == "no significant difference"
    assert "cannot resolve alpha" in few.warnings[0]


# --- a relative tolerance reads the ratio ------------------------------------------------------


def test_fieller_interval_of_the_ratio(rng: np.random.Generator) -> None:
    """candidate / baseline by Fieller's theorem, against the roots of the quadratic
    (L_c - rho L_b)^2 = t^2 Var(L_c - rho L_b) built with np.cov and solved by np.roots."""
    n = 600
    eb = rng.standard_exponential(n) - 1
    ec = 1.1 * (0.8 * eb + 0.6 * (rng.standard_exponential(n) - 1))
    state = PairedState([DEFAULTS[0], parse_spec("rmse"), parse_spec("mae")], skew=False,
                        ratio=True)
    zero = np.zeros(n)
    state.update(Batch(eb, zero, None), Batch(ec, zero, None), None, 0)
    r = _finish(state.specs, state, float(n), "t", 0, 0, 0.05)
    for got, lb, lc, root in ((r[0], eb**2, ec**2, False), (r[1], eb**2, ec**2, True),
                              (r[2], np.abs(eb), np.abs(ec), False)):
        crit = (got.ci.high - got.ci.low) / (2 * got.se)  # the loss's own (step-down) one
        cov = np.cov(np.stack([lb, lc])) / n
        mb, mc = lb.mean(), lc.mean()
        quad = [mb * mb - crit**2 * cov[0, 0], -2 * (mc * mb - crit**2 * cov[0, 1]),
                mc * mc - crit**2 * cov[1, 1]]
        lo, hi = np.sort(np.roots(quad).real)
        if root:
            lo, hi = math.sqrt(lo), math.sqrt(hi)
        assert got.ratio_ci is not None
        assert (got.ratio_ci.low, got.ratio_ci.high) == pytest.approx((lo, hi), rel=1e-9)
        assert got.ratio_ci.low < got.candidate / got.baseline < got.ratio_ci.high


def test_relative_tolerance_gates_keep_alpha_at_the_margin() -> None:
    """The candidate's mse is exactly 2% above the baseline's (skewed residuals, n = 400):
    --require-not-worse --tolerance 2% passes at most alpha of 300 seeded runs plus two
    standard errors (about alpha / 2 is expected; the fixed margin passed 9-11%), and each
    gate reads the ratio interval."""
    rng = np.random.default_rng(102)
    runs, passed = 300, 0
    tol = Tolerance(0.02, True)
    for _ in range(runs):
        eb = rng.standard_exponential(400) - 1
        ec = math.sqrt(1.02) * (0.9 * eb + math.sqrt(0.19) * (rng.standard_exponential(400) - 1))
        state = PairedState(DEFAULTS[:1], ratio=True)
        zero = np.zeros(400)
        state.update(Batch(eb, zero, None), Batch(ec, zero, None), None, 0)
        res = _finish(DEFAULTS[:1], state, 400.0, "johnson", 0, 0, 0.05)
        gates = check_gates(Comparison({}, {}, "regression", 400, res), True, True, tol)
        assert res[0].ratio_ci is not None
        assert gates[0].passed == (res[0].ratio_ci.low - 1 <= 0.02)
        assert gates[1].passed == (res[0].ratio_ci.high - 1 < 0.02) and gates[1].relative
        passed += gates[1].passed
    assert passed / runs <= 0.05 + 2 * math.sqrt(0.05 * 0.95 / runs)


def test_cli_relative_tolerance_reads_the_ratio(models: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    import json

    args = ["compare", str(models), "--baseline-pred", "old", "--pred", "new", "-t", "y",
            "-l", "mse", "--tolerance", "200%", "--fail-if-worse", "-f", "json"]
    assert run(args) == 0
    doc = json.loads(capsys.readouterr().out)
    gate, loss = doc["gates"][0], doc["losses"][0]
    assert gate["relative"] and gate["margin"] == 2.0
    assert gate["bound"] == pytest.approx(loss["ratio_ci"]["low"] - 1, rel=1e-12)
