"""losscli compare: paired differences against scipy.stats.ttest_rel and direct formulas,
alignment by order and by key, the gates, formats and bad input."""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import scipy.special
import scipy.stats
from _helpers.references import paired, per_row
from _helpers.tester import EXACT_INVARIANCE, assert_same, doc_of, sweep
from rich.console import Console

from losscli.cli import run
from losscli.compare import compare
from losscli.render.compare import print_compare


@pytest.fixture
def pair(tmp_path: Path, rng: np.random.Generator) -> dict[str, object]:
    n = 3000
    y = rng.normal(size=n)
    old = y + rng.normal(size=n)
    new = y + rng.normal(size=n) * 1.06 + 0.02
    w = rng.uniform(0.3, 2.0, n)
    one = tmp_path / "both.parquet"
    pq.write_table(pa.table({"id": np.arange(n), "y": y, "old": old, "new": new, "w": w}), one)
    base, cand = tmp_path / "base.parquet", tmp_path / "cand.parquet"
    pq.write_table(pa.table({"id": np.arange(n), "y": y, "pred": old, "w": w}), base)
    order = rng.permutation(n)
    shuffled = tmp_path / "cand_shuffled.parquet"
    pq.write_table(pa.table({"id": np.arange(n)[order], "y": y[order], "pred": new[order]}),
                   shuffled)
    pq.write_table(pa.table({"id": np.arange(n), "y": y, "pred": new}), cand)
    return {"y": y, "old": old, "new": new, "w": w, "one": one, "base": base, "cand": cand,
            "shuffled": shuffled, "dir": tmp_path}


def test_p_values_equal_scipy_ttest_rel(pair: dict) -> None:
    r = compare(pair["one"], baseline_pred="old", pred="new", target="y",
                losses=["mse", "mae", "huber"], chunk_rows=500, ci="t")
    for res in r.losses:
        lb, lc = per_row(res.spec, pair["old"], pair["y"]), per_row(res.spec, pair["new"],
                                                                    pair["y"])
        ref = scipy.stats.ttest_rel(lc, lb)
        assert res.p_value == pytest.approx(ref.pvalue, rel=1e-8)
        d = lc - lb
        assert res.delta == pytest.approx(d.mean(), rel=1e-12)
        assert res.se == pytest.approx(scipy.stats.sem(d), rel=1e-10)
        assert res.relative_delta == pytest.approx(d.mean() / lb.mean(), rel=1e-12)
        assert (res.rows_better, res.rows_equal, res.rows_worse) == (
            np.sum(d < 0), np.sum(d == 0), np.sum(d > 0))
        # the family adjustment never lowers a p-value, and never raises it past Bonferroni
        assert res.p_value <= res.p_adjusted <= min(1.0, 3 * res.p_value) + 1e-12
    # step-down: the strongest test is judged among all three correlated (not identical) tests,
    # which raises its p-value; the adjusted p-values follow the order of the raw ones
    order = sorted(r.losses, key=lambda x: x.p_value)
    assert order[0].p_value < order[0].p_adjusted or order[0].p_adjusted == 1.0
    assert [x.p_adjusted for x in order] == sorted(x.p_adjusted for x in order)


def test_t_interval_of_delta_is_two_sided_one_minus_alpha(pair: dict) -> None:
    r = compare(pair["one"], baseline_pred="old", pred="new", target="y", losses=["mae"],
                ci="t", alpha=0.1).losses[0]
    d = per_row("mae", pair["new"], pair["y"]) - per_row("mae", pair["old"], pair["y"])
    lo, hi = scipy.stats.t.interval(0.9, d.size - 1, loc=d.mean(), scale=scipy.stats.sem(d))
    assert (r.ci.low, r.ci.high) == pytest.approx((lo, hi), rel=1e-10)
    assert r.ci.level == pytest.approx(0.9) and r.family == 1
    # --confidence is the same level under another name
    same = compare(pair["one"], baseline_pred="old", pred="new", target="y", losses=["mae"],
                   ci="t", confidence=0.9).losses[0]
    assert (same.ci.low, same.ci.high) == (r.ci.low, r.ci.high)


def test_weighted_delta_and_its_standard_error(pair: dict) -> None:
    r = compare(pair["one"], baseline_pred="old", pred="new", target="y", weight="w",
                losses=["mse"], chunk_rows=700).losses[0]
    w = pair["w"]
    d = per_row("mse", pair["new"], pair["y"]) - per_row("mse", pair["old"], pair["y"])
    n, delta = d.size, np.sum(w * d) / w.sum()
    se = math.sqrt(n / (n - 1) * np.sum(w**2 * (d - delta) ** 2) / w.sum() ** 2)
    assert r.delta == pytest.approx(delta, rel=1e-12)
    assert r.se == pytest.approx(se, rel=1e-10)
    n_eff = w.sum() ** 2 / np.sum(w**2)  # Kish's effective n, stated
    nu = np.sum(w**2) ** 2 / np.sum(w**4)  # the weighted variance's: df = nu - 1
    t = compare(pair["one"], baseline_pred="old", pred="new", target="y", weight="w",
                losses=["mse"], chunk_rows=700, ci="t").losses[0]
    assert t.p_value == pytest.approx(2 * scipy.stats.t.sf(abs(delta / se), nu - 1),
                                      rel=1e-8)
    assert t.ci.effective_n == pytest.approx(n_eff, rel=1e-12)
    assert t.ci.df == pytest.approx(nu - 1, rel=1e-12)


def test_rmse_delta_by_the_mse_difference(pair: dict) -> None:
    res = compare(pair["one"], baseline_pred="old", pred="new", target="y",
                  losses=["rmse", "mse"]).losses
    rmse, mse = res
    rb = math.sqrt(np.mean(per_row("mse", pair["old"], pair["y"])))
    rc = math.sqrt(np.mean(per_row("mse", pair["new"], pair["y"])))
    assert (rmse.baseline, rmse.candidate, rmse.delta) == pytest.approx((rb, rc, rc - rb),
                                                                        rel=1e-12)
    assert rmse.p_value == mse.p_value
    assert rmse.ci.low == pytest.approx(mse.ci.low / (rb + rc), rel=1e-12)
    assert rmse.se == pytest.approx(mse.se / (rb + rc), rel=1e-12)


def test_two_files_in_order_by_key_and_one_file_agree(pair: dict) -> None:
    specs = ["mse", "mae"]
    one = compare(pair["one"], baseline_pred="old", pred="new", target="y", losses=specs)
    two = compare(pair["base"], pair["cand"], target="y", losses=specs, chunk_rows=777)
    keyed = compare(pair["base"], pair["shuffled"], target="y", losses=specs, key="id")
    for a, b, c in zip(one.losses, two.losses, keyed.losses, strict=True):
        for x in (b, c):
            assert x.delta == pytest.approx(a.delta, rel=1e-12)
            assert x.p_value == pytest.approx(a.p_value, rel=1e-9)
            assert (x.ci.low, x.ci.high) == pytest.approx((a.ci.low, a.ci.high), rel=1e-10)


def test_chunks_threads_inputs_and_bootstrap_are_invariant(pair: dict, tmp_path: Path) -> None:
    cols = {k: pair[k][:1500] for k in ("y", "old", "new")}
    runs = sweep("compare", cols, tmp_path, chunks=(1 << 17, 1000, 311), baseline_pred="old",
                 pred="new", target="y", losses=["mse", "mae"], ci="bootstrap")
    assert all(x.ci.method == "bootstrap" for x in runs.first().losses)
    # two files: the same interval as one file with both columns
    base, cand = tmp_path / "b.parquet", tmp_path / "c.parquet"
    pq.write_table(pa.table({"y": cols["y"], "pred": cols["old"]}), base)
    pq.write_table(pa.table({"y": cols["y"], "pred": cols["new"]}), cand)
    two = compare(base, cand, target="y", losses=["mse", "mae"], ci="bootstrap", chunk_rows=311,
                  threads=2)
    assert_same(doc_of(two)["losses"], doc_of(runs.first())["losses"], EXACT_INVARIANCE)


def test_paired_bootstrap_uses_the_same_counts_for_both(pair: dict) -> None:
    from losscli.uncertainty import replicate_counts, stream_key

    r = compare(pair["one"], baseline_pred="old", pred="new", target="y", losses=["mae"],
                ci="bootstrap", bootstrap_samples=150, seed=9).losses[0]
    c = replicate_counts(stream_key(9), np.arange(pair["y"].size), 150).astype(float)
    d = per_row("mae", pair["new"], pair["y"]) - per_row("mae", pair["old"], pair["y"])
    reps = (c @ d) / c.sum(axis=1)
    # studentized by the replicates' spread; the critical value is the 8th largest |u| of
    # 150, the smallest that fewer than alpha B = 7.5 replicates reach
    se = np.std(reps, ddof=1)
    u = np.abs(reps - d.mean()) / se
    crit = np.sort(u)[-8]
    assert r.se == pytest.approx(se, rel=1e-10)
    assert (r.ci.low, r.ci.high) == pytest.approx((d.mean() - crit * se,
                                                   d.mean() + crit * se), rel=1e-10)
    above = int(np.sum(u >= abs(d.mean()) / se))
    assert r.p_value == pytest.approx(max(above, 1) / 150, rel=1e-12)
    assert r.p_below == (above == 0)


def test_binary_logits_and_multiclass(tmp_path: Path, rng: np.random.Generator) -> None:
    n = 2000
    y = (rng.uniform(size=n) < 0.4).astype(float)
    z1, z2 = rng.normal(size=n) + 2 * (y - 0.5), rng.normal(size=n) + 1.5 * (y - 0.5)
    path = tmp_path / "b.parquet"
    pq.write_table(pa.table({"y": y, "a": z1, "b": z2}), path)
    r = compare(path, baseline_pred="a", pred="b", target="y", losses=["bce"],
                logits=True, ci="t").losses[0]
    bce = lambda z: np.logaddexp(0, z) - y * z  # noqa: E731
    assert r.p_value == pytest.approx(scipy.stats.ttest_rel(bce(z2), bce(z1)).pvalue, rel=1e-8)
    probs_a, probs_b = rng.dirichlet(np.ones(3), n), rng.dirichlet(np.ones(3), n)
    cls = rng.integers(0, 3, n)
    cols = {"y": cls.astype(float)} | {f"a_{k}": probs_a[:, k] for k in range(3)} | {
        f"b_{k}": probs_b[:, k] for k in range(3)}
    path = tmp_path / "m.parquet"
    pq.write_table(pa.table(cols), path)
    r = compare(path, baseline_pred="a_*", pred="b_*", target="y", losses=["cce"],
                ci="t").losses[0]
    la, lb = -np.log(probs_a[np.arange(n), cls]), -np.log(probs_b[np.arange(n), cls])
    assert r.p_value == pytest.approx(scipy.stats.ttest_rel(lb, la).pvalue, rel=1e-8)


def test_gates(tmp_path: Path, rng: np.random.Generator,
               capsys: pytest.CaptureFixture[str]) -> None:
    n = 4000
    y = rng.normal(size=n)
    base = y + rng.normal(size=n)
    path = tmp_path / "g.parquet"
    worse = base + 0.3 * rng.normal(size=n) + 0.1 * np.sign(base - y)  # clearly worse
    same = base + 1e-3 * rng.normal(size=n)  # practically identical
    pq.write_table(pa.table({"y": y, "base": base, "worse": worse, "same": same,
                             "few_b": base, "few_c": same}), path)
    args = ["compare", str(path), "--baseline-pred", "base", "-t", "y", "-l", "mse", "-q"]
    assert run([*args, "--pred", "worse", "--fail-if-worse"]) == 1
    assert "significant regression" in capsys.readouterr().err
    assert run([*args, "--pred", "worse", "--fail-if-worse", "--tolerance", "50%"]) == 0
    assert run([*args, "--pred", "same", "--fail-if-worse"]) == 0
    assert run([*args, "--pred", "same", "--require-not-worse", "--tolerance", "1%"]) == 0
    assert run([*args, "--pred", "worse", "--require-not-worse", "--tolerance", "1%"]) == 1
    capsys.readouterr()
    # too few rows: not shown to be not worse
    small = tmp_path / "small.parquet"
    pq.write_table(pa.table({"y": y[:8], "base": base[:8], "c": base[:8] + rng.normal(size=8)
                             * 0.5}), small)
    assert run(["compare", str(small), "--baseline-pred", "base", "--pred", "c", "-t", "y",
                "-l", "mse", "--require-not-worse", "--tolerance", "5%", "-q"]) == 1
    assert run(["compare", str(small), "--baseline-pred", "base", "--pred", "c", "-t", "y",
                "-l", "mse", "--fail-if-worse", "-q"]) == 0


def test_formats(pair: dict, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["compare", str(pair["base"]), str(pair["cand"]), "-t", "y", "-l", "mse", "-l", "mae"]
    assert run([*base, "-f", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["schema"] == "losscli.compare/2" and doc["rows"] == pair["y"].size
    assert [x["spec"] for x in doc["losses"]] == ["mse", "mae"]
    assert set(doc["losses"][0]) >= {"baseline", "candidate", "delta", "relative_delta", "se",
                                     "ci", "p_value", "p_adjusted", "rows_better", "rows_equal",
                                     "rows_worse", "verdict"}
    # junit: --fail-if-worse fails a loss iff the lower end of the printed interval of delta is
    # above 0 (README); the exit code is 1 iff one fails. The family's interval lies between the
    # loss's own 95% t interval and the Bonferroni one (97.5% for two losses), by hand (scipy):
    # the step-down procedure's last step is the loss's own test.
    low = {x.spec: x.ci.low for x in compare(pair["base"], pair["cand"], target="y",
                                              losses=["mse", "mae"], ci="t").losses}
    for s in ("mse", "mae"):
        d = per_row(s, pair["new"], pair["y"]) - per_row(s, pair["old"], pair["y"])
        lo_b, lo_1 = paired(d, None, 0.975)["low"], paired(d, None, 0.95)["low"]
        assert lo_b - 1e-12 <= low[s] <= lo_1 + 1e-12, s
    worse = [s for s in ("mse", "mae") if low[s] > 0]
    assert run([*base, "-f", "junit", "--fail-if-worse", "--ci", "t", "-q"]) == (1 if worse else 0)
    root = ET.fromstring(capsys.readouterr().out)
    suite = root.find("testsuite")
    assert suite is not None and suite.get("failures") == str(len(worse))
    failures = {case.get("name"): case.find("failure") for case in suite.iter("testcase")}
    for s in ("mse", "mae"):
        failure = failures.get(f"fail_if_worse {s}")
        assert (failure is not None) == (s in worse), s
        if failure is not None:
            shown = float(failure.get("message", "").split("lower bound of delta ")[1].split()[0])
            assert shown == pytest.approx(low[s], rel=1e-5)
    assert run([*base, "-f", "markdown"]) == 0
    out = capsys.readouterr().out
    assert "| `mse` |" in out and "p (adj.)" in out
    assert run([*base, "-f", "github"]) == 0
    assert all(line.startswith("::") for line in capsys.readouterr().out.splitlines())
    assert run([*base, "-f", "csv"]) == 0
    assert capsys.readouterr().out.splitlines()[0].startswith("loss,spec,baseline")


@pytest.mark.parametrize("width", [80, 100])
def test_table_reads_at_width(pair: dict, width: int) -> None:
    import io

    r = compare(pair["one"], baseline_pred="old", pred="new", target="y",
                losses=["mse", "mae", "huber"])
    buf = io.StringIO()
    print_compare(r, Console(file=buf, width=width, no_color=True, color_system=None))
    text = buf.getvalue()
    assert "…" not in text and max(len(x) for x in text.splitlines()) <= width
    assert "[" in text and "rows better / tied / worse" in text


def test_bad_input_exits_2(pair: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]
                           ) -> None:
    n = pair["y"].size
    short = tmp_path / "short.parquet"
    pq.write_table(pa.table({"y": pair["y"][:-5], "pred": pair["new"][:-5]}), short)
    other_y = tmp_path / "other_y.parquet"
    y2 = pair["y"].copy()
    y2[41] += 1
    pq.write_table(pa.table({"y": y2, "pred": pair["new"]}), other_y)
    dup = tmp_path / "dup.parquet"
    ids = np.arange(n)
    ids[7] = 3
    pq.write_table(pa.table({"id": ids, "y": pair["y"], "pred": pair["new"]}), dup)
    part = tmp_path / "part.parquet"
    pq.write_table(pa.table({"id": np.arange(n - 10), "y": pair["y"][:-10],
                             "pred": pair["new"][:-10]}), part)
    b, c = str(pair["base"]), str(pair["cand"])
    cases = [
        ([b, str(short)], "different row counts"),
        ([b, str(other_y)], "row 42: the targets differ"),
        ([b, str(dup), "--key", "id"], "duplicate values (e.g. 3, 2 rows)"),
        ([b, c, "--key", "nope"], "key column 'nope' not found"),
        ([b, str(part), "--key", "id"], "--unmatched drop"),
        ([b, c, "--confidence", "1.5"], "--confidence must be between 0 and 1"),
        ([b, c, "--ci", "bootstrap", "--bootstrap-samples", "0"], "--bootstrap-samples"),
        ([b, c, "-l", "bce"], "must be a binary target 0 or 1"),
        ([str(pair["one"]), "--pred", "new"], "--baseline-pred"),
    ]
    for args, text in cases:
        code = run(["compare", *args, "-t", "y", "-l", "mse"] if "-l" not in args
                   else ["compare", *args, "-t", "y"])
        out, err = capsys.readouterr()
        assert code == 2, (args, err)
        assert out == "" and err.startswith("losscli: error: ") and err.count("\n") == 1, err
        assert text in err, (text, err)
    # --unmatched drop compares the matched rows and says how many were left out
    assert run(["compare", b, str(part), "--key", "id", "--unmatched", "drop", "-t", "y",
                "-l", "mse", "-f", "json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["rows"] == n - 10 and "10 row(s) without a match" in err


def test_compare_of_different_tasks_is_exit_2(tmp_path: Path, rng: np.random.Generator,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    n = 50
    y = rng.integers(0, 3, n).astype(float)
    pq.write_table(pa.table({"y": y, "p_0": np.full(n, 0.2), "p_1": np.full(n, 0.3),
                             "p_2": np.full(n, 0.5)}), tmp_path / "m.parquet")
    pq.write_table(pa.table({"y": y, "pred": rng.uniform(size=n)}), tmp_path / "r.parquet")
    assert run(["compare", str(tmp_path / "m.parquet"), str(tmp_path / "r.parquet"),
                "--baseline-pred", "p_*", "--pred", "pred", "-t", "y"]) == 2
    assert "same task" in capsys.readouterr().err


def test_settings_file_applies_to_compare(pair: dict, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "losscli.toml"
    cfg.write_text('alpha = 0.01\nconfidence = 0.9\nlosses = ["mae"]\nci = "t"\n')
    assert run(["compare", str(pair["base"]), str(pair["cand"]), "-t", "y", "--config",
                str(cfg), "-f", "json", "--show-config"]) == 0
    doc = json.loads(capsys.readouterr().out)
    # compare's one interval is two-sided (1 - alpha): eval's confidence in the file does
    # not change it
    assert doc["settings"]["alpha"] == 0.01 and doc["losses"][0]["ci"]["level"] == 0.99
    assert [x["spec"] for x in doc["losses"]] == ["mae"] and doc["losses"][0]["ci"]["method"] == "t"
    assert doc["config"]["alpha"]["source"] != "default"
    cfg.write_text("alpha = 0.7\n")
    assert run(["compare", str(pair["base"]), str(pair["cand"]), "-t", "y", "--config",
                str(cfg)]) == 2
    assert "alpha" in capsys.readouterr().err


def test_values_only_losses_match_the_catalog(pair: dict) -> None:
    """compare computes e^2, |e| and the Huber shape without gradients: same p as the
    textbook per-row losses (smooth_l1 with beta 2.5: huber(2.5) / 2.5)."""
    r = compare(pair["one"], baseline_pred="old", pred="new", target="y",
                losses=["smooth_l1:beta=2.5", "log_cosh"], ci="t").losses
    e_b, e_c = pair["old"] - pair["y"], pair["new"] - pair["y"]
    sl1 = lambda e: np.where(np.abs(e) < 2.5, 0.5 * e * e / 2.5, np.abs(e) - 1.25)  # noqa: E731
    assert r[0].p_value == pytest.approx(scipy.stats.ttest_rel(sl1(e_c), sl1(e_b)).pvalue,
                                         rel=1e-8)
    lc = lambda e: np.log(np.cosh(e))  # noqa: E731
    assert r[1].p_value == pytest.approx(scipy.stats.ttest_rel(lc(e_c), lc(e_b)).pvalue,
                                         rel=1e-8)


def test_step_summary_gets_the_markdown(pair: dict, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    assert run(["compare", str(pair["base"]), str(pair["cand"]), "-t", "y", "-l", "mae",
                "-f", "json"]) == 0
    capsys.readouterr()
    text = summary.read_text()
    assert text.startswith("### losscli compare: ") and "| `mae` |" in text


def test_counts_default_set_compares_poisson_deviance(tmp_path: Path,
                                                      rng: np.random.Generator) -> None:
    n = 3000
    y = rng.poisson(3, n)
    a = np.exp(rng.normal(np.log(3), 0.3, n))
    b = a * np.exp(rng.normal(0, 0.1, n))
    path = tmp_path / "counts.parquet"
    pq.write_table(pa.table({"y": y, "a": a, "b": b}), path)
    r = compare(path, baseline_pred="a", pred="b", target="y", ci="t")
    assert r.task == "counts" and "poisson" in [x.spec for x in r.losses]
    dev = lambda mu: 2 * (scipy.special.xlogy(y, y / mu) - y + mu)  # noqa: E731
    got = next(x for x in r.losses if x.spec == "poisson")
    assert got.p_value == pytest.approx(scipy.stats.ttest_rel(dev(b), dev(a)).pvalue, rel=1e-8)


def test_t_interval_of_the_differences(pair: dict[str, object]) -> None:
    """--ci t (no third moments kept): delta +- c times the SE of the per-row differences,
    against scipy, with each loss's step-down critical value c between the single test's t
    quantile and Bonferroni's over the three, the strongest test's the largest."""
    y, old, new = (np.asarray(pair[k]) for k in ("y", "old", "new"))
    r = compare(pair["one"], baseline_pred="old", pred="new", target="y",  # type: ignore[arg-type]
                losses=["mse", "mae", "huber"], ci="t", chunk_rows=211)
    refs = (np.square, np.abs, lambda e: np.where(np.abs(e) <= 1, 0.5 * e * e, np.abs(e) - 0.5))
    crits = []
    for got, f in zip(r.losses, refs, strict=True):
        d = f(new - y) - f(old - y)
        sem = scipy.stats.sem(d)
        assert got.ci.method == "t"
        assert got.ci.low + got.ci.high == pytest.approx(2 * d.mean(), rel=1e-9, abs=1e-12)
        crits.append((got.ci.high - got.ci.low) / (2 * sem))
        t1, t3 = scipy.stats.t.ppf([0.975, 1 - 0.025 / 3], d.size - 1)
        assert t1 * (1 - 1e-9) < crits[-1] < t3
        assert got.p_value == pytest.approx(scipy.stats.ttest_rel(f(new - y), f(old - y)).pvalue,
                                            rel=1e-8)
    by_strength = [c for _, c in sorted(zip([x.p_value for x in r.losses], crits,
                                            strict=True))]
    assert by_strength == sorted(by_strength, reverse=True)


def test_nan_drop_leaves_a_row_out_of_both_sides(tmp_path: Path,
                                                 rng: np.random.Generator) -> None:
    n = 2000
    y = rng.normal(size=n)
    a, b = y + rng.normal(size=n), y + rng.normal(size=n)
    a[[5, 700]] = np.nan
    b[[9, 700, 1999]] = np.nan
    pq.write_table(pa.table({"y": y, "pred": a}), tmp_path / "a.parquet")
    pq.write_table(pa.table({"y": y, "pred": b}), tmp_path / "b.parquet")
    r = compare(tmp_path / "a.parquet", tmp_path / "b.parquet", losses=["mse"], nan="drop",
                chunk_rows=300, ci="t")
    keep = np.isfinite(a) & np.isfinite(b)
    assert r.rows == keep.sum() == n - 4
    ref = scipy.stats.ttest_rel((b - y)[keep] ** 2, (a - y)[keep] ** 2).pvalue
    assert r.losses[0].p_value == pytest.approx(ref, rel=1e-8)
    from losscli.errors import InputError

    with pytest.raises(InputError, match="pass --nan drop"):
        compare(tmp_path / "a.parquet", tmp_path / "b.parquet", losses=["mse"])


@pytest.mark.parametrize("bad", ["candidate", "baseline", "target"])
def test_nan_drop_of_one_input_leaves_the_row_out_of_both_sides(
        tmp_path: Path, rng: np.random.Generator, bad: str) -> None:
    """One input with two prediction columns: chunks whose rows are all finite read the
    candidate's column alone; a NaN in either column or the target drops the row on both
    sides (chunks of 300 rows: some have a NaN, most not)."""
    n = 2000
    y = rng.normal(size=n)
    a, b = y + rng.normal(size=n), y + rng.normal(size=n)
    col = {"candidate": b, "baseline": a, "target": y}[bad]
    col[[7, 1001, 1999]] = np.nan
    pq.write_table(pa.table({"y": y, "old": a, "new": b}), tmp_path / "one.parquet")
    r = compare(tmp_path / "one.parquet", baseline_pred="old", pred="new", target="y",
                losses=["mse", "mae"], nan="drop", chunk_rows=300, ci="t")
    keep = np.isfinite(a) & np.isfinite(b) & np.isfinite(y)
    assert r.rows == keep.sum() == n - 3
    for got, ref in zip(r.losses, (np.square, np.abs), strict=True):
        lb, lc = ref((a - y)[keep]), ref((b - y)[keep])
        assert got.p_value == pytest.approx(scipy.stats.ttest_rel(lc, lb).pvalue, rel=1e-8)
        assert got.delta == pytest.approx(lc.mean() - lb.mean(), rel=1e-10)
