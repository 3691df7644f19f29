"""Slices (--by): per-slice values against pandas groupby + scikit-learn, invariance to chunking,
threads and processes, the Welch / Benjamini-Hochberg flags against scipy and by simulation,
(other) merging, gates and bad input."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from scipy import stats as sps
from sklearn.metrics import log_loss, mean_absolute_error, mean_squared_error
from typer.testing import CliRunner

from losscli import evaluate
from losscli.cli import app
from losscli.slices import SliceOptions
from losscli.slices.stats import benjamini_hochberg, welch_greater

runner = CliRunner()


def huber(e: np.ndarray, delta: float = 1.0) -> np.ndarray:
    a = np.abs(e)
    return np.where(a <= delta, 0.5 * e * e, delta * (a - 0.5 * delta))


def regression_frame(n: int = 3000, seed: int = 1, nulls: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    y = rng.normal(3.0, 2.0, n)
    country = rng.choice(["DE", "FR", "US", "JP", "BR"], n, p=[0.4, 0.3, 0.15, 0.1, 0.05])
    df = pd.DataFrame({"y": y, "p": y + rng.standard_t(5, n), "w": rng.uniform(0.1, 3.0, n),
                       "country": country, "device": rng.choice(["m", "d"], n),
                       "age": rng.uniform(18, 90, n), "tier": rng.integers(0, 4, n),
                       "flag": rng.random(n) < 0.3})
    if nulls:
        df["country"] = df["country"].astype(object)
        df.loc[rng.random(n) < 0.1, "country"] = None
    return df


def slice_values(report: Any, spec: str, grouping: int = 0) -> dict[Any, float]:
    group = report.slices[grouping]
    return {(None if s.other else tuple(s.by.values())): s.loss(spec).value
            for s in group.slices}


def ref_groups(df: pd.DataFrame, cols: list[str], fn: Any) -> dict[Any, float]:
    out = {}
    for key, part in df.groupby(cols, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        key = tuple(None if (isinstance(k, float) and math.isnan(k)) else k for k in key)
        out[key] = fn(part)
    return out


def assert_close(got: dict[Any, float], want: dict[Any, float], rel: float = 1e-12) -> None:
    assert set(got) == set(want)
    for k, v in want.items():
        assert got[k] == pytest.approx(v, rel=rel, abs=1e-300), k


@pytest.mark.parametrize("weighted", [False, True])
def test_regression_slices_equal_pandas_sklearn(weighted: bool) -> None:
    df = regression_frame(nulls=True)
    r = evaluate(df, "p", "y", "w" if weighted else None, ["mse", "rmse", "mae", "huber"],
                 slices=["country", "country,device"])

    def w(part: pd.DataFrame) -> Any:
        return part.w.to_numpy() if weighted else None

    refs = {
        "mse": lambda d: mean_squared_error(d.y, d.p, sample_weight=w(d)),
        "rmse": lambda d: math.sqrt(mean_squared_error(d.y, d.p, sample_weight=w(d))),
        "mae": lambda d: mean_absolute_error(d.y, d.p, sample_weight=w(d)),
        "huber": lambda d: np.average(huber((d.p - d.y).to_numpy()), weights=w(d)),
    }
    for spec, fn in refs.items():
        assert_close(slice_values(r, spec, 0), ref_groups(df, ["country"], fn))
        assert_close(slice_values(r, spec, 1), ref_groups(df, ["country", "device"], fn))
    # (null) is a slice of its own; shares sum to one
    assert any(s.by == {"country": None} for s in r.slices[0].slices)
    assert sum(s.weight for s in r.slices[0].slices) == pytest.approx(1.0, rel=1e-12)
    if weighted:
        want = df.groupby("country", dropna=False).w.sum() / df.w.sum()
        got = {s.by["country"]: s.weight for s in r.slices[0].slices}
        assert got["DE"] == pytest.approx(want["DE"], rel=1e-12)


def test_standard_errors_and_intervals_match_scipy() -> None:
    df = regression_frame()
    r = evaluate(df, "p", "y", losses=["mse"], slices=["country"], ci="t")
    for s in r.slices[0].slices:
        part = df[df.country == s.by["country"]]
        loss = ((part.p - part.y) ** 2).to_numpy()
        x = s.loss("mse")
        assert x.se == pytest.approx(sps.sem(loss), rel=1e-10)
        low, high = sps.t.interval(0.95, loss.size - 1, loc=loss.mean(), scale=sps.sem(loss))
        assert (x.ci.low, x.ci.high) == pytest.approx((low, high), rel=1e-9)
        # gap and contribution, rows_s (L_s - L) / N
        assert x.gap == pytest.approx(x.value - r.loss("mse").value, rel=1e-12)
        assert x.contribution == pytest.approx(len(part) * x.gap / len(df), rel=1e-12)


def test_weighted_slice_intervals_take_the_weighted_variances_df() -> None:
    """Weighted, by hand with scipy: each slice's t interval is L +- t(nu - 1) SE with the
    linearised SE and Satterthwaite's nu = (sum w^2)^2 / sum w^4 of its rows (as eval's
    overall interval; Kish's (sum w)^2 / sum w^2 is stated beside it)."""
    df = regression_frame(n=3000, seed=7)
    r = evaluate(df, "p", "y", "w", ["mse"], slices=["country"], ci="t")
    for s in r.slices[0].slices:
        part = df[df.country == s.by["country"]]
        loss, w = ((part.p - part.y) ** 2).to_numpy(), part.w.to_numpy()
        n, value = loss.size, float(np.sum(w * loss) / np.sum(w))
        se = math.sqrt(n / (n - 1) * np.sum(w**2 * (loss - value) ** 2) / np.sum(w) ** 2)
        nu = np.sum(w**2) ** 2 / np.sum(w**4)
        x = s.loss("mse")
        assert x.se == pytest.approx(se, rel=1e-10)
        assert x.ci.df == pytest.approx(nu - 1, rel=1e-10)
        assert x.ci.effective_n == pytest.approx(np.sum(w) ** 2 / np.sum(w**2), rel=1e-10)
        q = sps.t.ppf(0.975, nu - 1)
        assert (x.ci.low, x.ci.high) == pytest.approx((max(value - q * se, 0.0), value + q * se),
                                                      rel=1e-9)


@pytest.mark.parametrize("ci", ["t", "johnson"])
def test_slice_intervals_of_non_negative_losses_stay_non_negative(ci: str) -> None:
    """Seeded: 300 slices of 2 to 6 rows with skewed residuals (a few large, most near 0),
    where mean - t se falls below 0 for many; a non-negative loss's slice intervals are held
    at 0 from below, as its overall one is."""
    rng = np.random.default_rng(20261205)
    n = 1200
    country = np.repeat(np.arange(300), rng.multinomial(n - 600, np.full(300, 1 / 300)) + 2)
    e = rng.lognormal(0.0, 2.0, country.size) * rng.choice([-1.0, 1.0], country.size)
    df = pd.DataFrame({"y": np.zeros(country.size), "p": e, "country": country})
    r = evaluate(df, "p", "y", losses=["mse", "mae", "huber", "quantile:q=0.9"],
                 slices=SliceOptions(["country"], top=0), ci=ci)
    below = 0
    for s in r.slices[0].slices:
        for x in s.losses:
            assert x.ci is not None
            if x.ci.low == x.ci.low:  # NaN for a slice without a spread
                assert x.ci.low >= 0.0, (s.label, x.spec, x.ci)
            if x.se is not None and s.rows > 1:
                below += x.value - sps.t.ppf(0.975, s.rows - 1) * x.se < 0.0
    assert below > 100  # the symmetric bound would have gone negative this often


@pytest.mark.parametrize("weighted", [False, True])
def test_t_intervals_sum_no_cubes_and_keep_the_standard_errors(weighted: bool) -> None:
    """--ci t needs no skewness: the slices' third moments are not summed, and values and
    standard errors are those of a johnson run (intervals symmetric about the value unless
    held at 0)."""
    df = regression_frame(n=4000, seed=12)
    w = "w" if weighted else None
    runs = {ci: evaluate(df, "p", "y", w, ["mse", "mae"], slices=["country"], ci=ci)
            for ci in ("t", "johnson")}
    for st, sj in zip(runs["t"].slices[0].slices, runs["johnson"].slices[0].slices,
                      strict=True):
        for xt, xj in zip(st.losses, sj.losses, strict=True):
            assert xt.value == xj.value and xt.se == pytest.approx(xj.se, rel=1e-12)
            assert xt.ci is not None
            if xt.ci.low > 0:
                assert xt.ci.high - xt.value == pytest.approx(xt.value - xt.ci.low, rel=1e-9)


def test_binary_and_multiclass_slices_equal_sklearn() -> None:
    rng = np.random.default_rng(3)
    n = 2000
    y = (rng.random(n) < 0.4).astype(float)
    p = np.clip(0.4 + 0.3 * (y - 0.4) + rng.normal(0, 0.15, n), 0.01, 0.99)
    seg = rng.choice(["a", "b", "c"], n)
    w = rng.uniform(0.5, 2, n)
    df = pd.DataFrame({"y": y, "p": p, "seg": seg, "w": w})
    r = evaluate(df, "p", "y", "w", ["bce"], slices=["seg"])
    want = ref_groups(df, ["seg"], lambda d: log_loss(d.y, d.p, sample_weight=d.w,
                                                      labels=[0, 1]))
    assert_close(slice_values(r, "bce"), want)

    probs = rng.dirichlet([2, 3, 4], n)
    label = np.array([rng.choice(3, p=row) for row in probs])
    mdf = pd.DataFrame({"p0": probs[:, 0], "p1": probs[:, 1], "p2": probs[:, 2],
                        "y": label.astype(float), "seg": seg})
    r = evaluate(mdf, "p0,p1,p2", "y", losses=["cce"], slices=["seg"])
    want = ref_groups(mdf, ["seg"], lambda d: log_loss(
        d.y, d[["p0", "p1", "p2"]].to_numpy(), labels=[0, 1, 2]))
    assert_close(slice_values(r, "cce"), want)
    # class weights reduced by sum(w c_y): torch's CrossEntropyLoss(weight=c)
    r = evaluate(mdf, "p0,p1,p2", "y", losses=["cce:class_weights=1,2,0.5"], slices=["seg"])
    c = np.array([1.0, 2.0, 0.5])

    def weighted_cce(d: pd.DataFrame) -> float:
        yy = d.y.to_numpy().astype(int)
        py = d[["p0", "p1", "p2"]].to_numpy()[np.arange(len(d)), yy]
        return float(np.sum(-c[yy] * np.log(py)) / np.sum(c[yy]))

    assert_close(slice_values(r, "cce:class_weights=1,2,0.5"),
                 ref_groups(mdf, ["seg"], weighted_cce))


def test_integer_boolean_dictionary_and_binned_keys(tmp_path: Path) -> None:
    df = regression_frame()
    table = pa.Table.from_pandas(df, preserve_index=False)
    table = table.set_column(table.schema.get_field_index("device"), "device",
                             pa.compute.dictionary_encode(table.column("device")))
    path = tmp_path / "d.parquet"
    pq.write_table(table, path)
    r = evaluate(str(path), "p", "y", losses=["mse"],
                 slices=["tier", "flag", "device", "age:edges=30,60", "age:bins=4"])
    mse = lambda d: mean_squared_error(d.y, d.p)  # noqa: E731
    assert_close(slice_values(r, "mse", 0), ref_groups(df, ["tier"], mse))
    assert_close(slice_values(r, "mse", 1), ref_groups(df, ["flag"], mse))
    assert_close(slice_values(r, "mse", 2), ref_groups(df, ["device"], mse))
    cut = pd.cut(df.age, [-np.inf, 30, 60, np.inf], right=False,
                 labels=["[-inf, 30)", "[30, 60)", "[60, inf)"])
    assert_close(slice_values(r, "mse", 3), ref_groups(df.assign(b=cut.astype(str)), ["b"], mse))
    # bins=4: equal-frequency edges of the first rows (all of them here), stated
    edges = np.quantile(df.age, [0.25, 0.5, 0.75])
    assert r.slices[4].bins["age"]["edges"] == pytest.approx(list(edges), rel=1e-15)
    assert sorted(s.rows for s in r.slices[4].slices) == [750, 750, 750, 750]


def test_other_merges_the_rarest_exactly() -> None:
    rng = np.random.default_rng(7)
    n = 5000
    k = rng.zipf(1.6, n) % 200
    df = pd.DataFrame({"y": rng.normal(size=n), "k": k.astype(np.int64)})
    df["p"] = df.y + rng.normal(size=n)
    r = evaluate(df, "p", "y", losses=["mse"], slices=SliceOptions(["k"], max_slices=5))
    group = r.slices[0]
    counts = df.k.value_counts()
    order = sorted(counts.index, key=lambda v: (-counts[v], repr((v,))))
    kept = order[:5]
    assert group.merged == counts.size - 5
    got = slice_values(r, "mse")
    sq = (df.p - df.y) ** 2
    for v in kept:
        assert got[(v,)] == pytest.approx(sq[df.k == v].mean(), rel=1e-12)
    assert got[None] == pytest.approx(sq[~df.k.isin(kept)].mean(), rel=1e-12)
    other = next(s for s in group.slices if s.other)
    assert other.rows == int((~df.k.isin(kept)).sum())
    assert other.loss("mse").flag is None and other.loss("mse").status == "not tested"


def test_memory_cap_keeps_keys_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past the cap, keys go to (other) by hash: every kept key is exact for all its rows and
    (other) holds exactly the rest, for any chunking."""
    import losscli.slices.result as result

    monkeypatch.setattr(result, "MIN_CAP", 20)
    monkeypatch.setattr(result, "CAP_FACTOR", 1)
    rng = np.random.default_rng(9)
    n = 40000
    df = pd.DataFrame({"y": rng.normal(size=n), "k": rng.integers(0, 300, n)})
    df["p"] = df.y + rng.normal(size=n)
    runs = [evaluate(df, "p", "y", losses=["mse"], chunk_rows=c, threads=t,
                     slices=SliceOptions(["k"], max_slices=10))
            for c, t in ((1 << 17, 0), (1000, 2))]
    sq = (df.p - df.y) ** 2
    for r in runs:
        group = r.slices[0]
        assert group.sampled
        got = slice_values(r, "mse")
        kept = [k[0] for k in got if k is not None]
        assert len(kept) == 10
        for v in kept:
            assert got[(v,)] == pytest.approx(sq[df.k == v].mean(), rel=1e-12)
        assert got[None] == pytest.approx(sq[~df.k.isin(kept)].mean(), rel=1e-12)
    assert json.dumps(runs[0].to_dict()["slices"]) == json.dumps(runs[1].to_dict()["slices"])


def test_same_bits_for_any_chunking_threads_and_processes(tmp_path: Path) -> None:
    df = regression_frame(n=200_000, seed=4, nulls=True)
    path = tmp_path / "d.parquet"
    df.to_parquet(path, row_group_size=70_000)
    by = ["country,device", "age:bins=3"]
    docs = []
    for kw in ({}, {"chunk_rows": 7777, "threads": 3}, {"executor": "serial"},
               {"executor": "processes:2"}):
        r = evaluate(str(path), "p", "y", "w", ["mse", "mae", "huber"], slices=by, **kw)
        docs.append(json.dumps(r.to_dict()["slices"]))
    assert all(d == docs[0] for d in docs[1:])


def planted(seed: int, n: int = 20_000, bad: str | None = "c07") -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    country = np.array([f"c{i:02d}" for i in range(50)])[rng.integers(0, 50, n)]
    y = rng.normal(size=n)
    noise = rng.normal(size=n) * np.where(country == bad, 2.0, 1.0)
    return pd.DataFrame({"y": y, "p": y + noise, "country": country})


def test_planted_bad_slice_ranked_first_and_flagged() -> None:
    r = evaluate(planted(11), "p", "y", losses=["mse", "mae"], slices=["country"])
    group = r.slices[0]
    first = group.slices[0]
    assert first.by == {"country": "c07"}
    assert first.loss("mse").flag == "worse" and first.loss("mae").flag == "worse"
    assert [s.values for s in group.flagged("mse")] == ["c07"]


def test_welch_and_bh_match_scipy_and_a_hand_rule() -> None:
    rng = np.random.default_rng(2)
    for _ in range(20):
        a = rng.exponential(1.0, rng.integers(5, 60)) + rng.normal(0, 0.3)
        b = rng.exponential(1.2, rng.integers(5, 60))
        t, df, p = welch_greater(a.mean(), a.var(ddof=1) / a.size, a.size - 1,
                                 b.mean(), b.var(ddof=1) / b.size, b.size - 1)
        ref = sps.ttest_ind(a, b, equal_var=False, alternative="greater")
        assert float(t) == pytest.approx(ref.statistic, rel=1e-12)
        assert float(df) == pytest.approx(ref.df, rel=1e-12)
        assert float(p) == pytest.approx(ref.pvalue, rel=1e-8, abs=1e-300)
    for _ in range(50):
        m = int(rng.integers(1, 40))
        pv = rng.beta(0.3, 1.0, m)
        pv[rng.random(m) < 0.1] = np.nan
        rejected, q = benjamini_hochberg(pv, 0.1)
        finite = [(v, i) for i, v in enumerate(pv) if not np.isnan(v)]
        finite.sort()
        k_max = max((k for k, (v, _) in enumerate(finite, 1) if v <= 0.1 * k / len(finite)),
                    default=0)
        hand = {i for _, i in finite[:k_max]}
        assert set(np.flatnonzero(rejected)) == hand
        if finite:
            ref = sps.false_discovery_control([v for v, _ in finite], method="bh")
            assert np.sort(q[~np.isnan(pv)]) == pytest.approx(np.sort(ref), rel=1e-12)


def test_no_planted_slice_flags_at_most_alpha_plus_error() -> None:
    """200 seeded null runs of 50 slices x 120 rows through the library's own Welch and
    Benjamini-Hochberg, as eval tests a slice against the rest (its heavy-tail rule included:
    slices this small take the verdict on all rows, here not heavy): the share of runs
    flagging any slice stays within alpha plus sampling error."""
    from losscli.slices.result import heavy_slices
    from losscli.slices.state import GroupState, block_tail, tail_keys
    from losscli.spec import parse_spec

    rng = np.random.default_rng(20261204)
    runs, slices, rows = 200, 50, 120
    mse = parse_spec("mse")
    g = np.repeat(np.arange(slices), rows)
    any_flag = 0
    for _ in range(runs):
        e = rng.normal(size=(slices, rows))
        loss = e ** 2  # mse of unit-noise residuals
        top, counts = block_tail(g, slices, tail_keys(e.ravel()))
        state = GroupState(False, [(i,) for i in range(slices)], np.full(slices, rows),
                           tails=[counts], tops=[top])
        testable = ~heavy_slices(state, 0, mse, residual=True)
        n = np.full(slices, rows)
        mean, var = loss.mean(axis=1), loss.var(axis=1, ddof=1)
        total = loss.sum()
        rest_n = loss.size - n
        rest_mean = (total - loss.sum(axis=1)) / rest_n
        rest_var = np.array([np.delete(loss, i, axis=0).var(ddof=1) for i in range(slices)])
        _, _, p = welch_greater(mean, var / n, n - 1, rest_mean, rest_var / rest_n, rest_n - 1)
        rejected, _ = benjamini_hochberg(np.where(testable, p, np.nan), 0.05)
        any_flag += bool(rejected.any())
    assert any_flag / runs <= 0.08


def heavy_frame(seed: int, df_t: float = 2.2) -> pd.DataFrame:
    """Nine slices of normal residuals and one, 'hv', of t(df_t) residuals twice as large
    (a worse slice by mse, were it tested)."""
    rng = np.random.default_rng(seed)
    sizes = {f"n{i}": 3000 for i in range(9)} | {"hv": 5000}
    country = np.concatenate([np.full(n, k) for k, n in sizes.items()])
    e = rng.normal(size=country.size)
    heavy = country == "hv"
    e[heavy] = 2.0 * rng.standard_t(df_t, int(heavy.sum()))
    y = rng.normal(size=country.size)
    return pd.DataFrame({"y": y, "p": y + e, "country": country})


def test_heavy_tailed_slice_listed_never_flagged() -> None:
    """t(2.2) residuals: their squares have tail index 1.1 (infinite variance), so mse's slice
    is listed heavy-tailed by the rule of the overall warning and never flagged, in every
    seeded run; the normal slices are tested. mae (tail index 2.2) is tested there."""
    for seed in range(5):
        r = evaluate(heavy_frame(seed), "p", "y", losses=["mse", "mae"],
                     slices=SliceOptions(["country"], top=0))
        by = {s.values: s for s in r.slices[0].slices}
        hv = by["hv"].loss("mse")
        assert hv.status == "heavy-tailed" and hv.flag is None and hv.p is None
        assert by["hv"].loss("mae").status == "tested"
        for name, s in by.items():
            if name != "hv":
                assert s.loss("mse").status == "tested", (seed, name)
                assert s.loss("mae").status == "tested", (seed, name)


def test_small_slices_take_the_tail_verdict_of_all_rows() -> None:
    """Slices under TAIL_MIN_ROWS rows have no tail estimate of their own: heavy-tailed rows
    overall (t(1.5) residuals) list them all, normal rows leave them all tested."""
    from losscli.uncertainty import TAIL_MIN_ROWS

    rng = np.random.default_rng(7)
    n = 20 * 400
    assert TAIL_MIN_ROWS > 400
    country = np.repeat([f"c{i:02d}" for i in range(20)], 400)
    for e, want in ((rng.standard_t(1.5, n), "heavy-tailed"), (rng.normal(size=n), "tested")):
        df = pd.DataFrame({"y": np.zeros(n), "p": e, "country": country})
        r = evaluate(df, "p", "y", losses=["mse"], slices=SliceOptions(["country"], top=0))
        assert {s.loss("mse").status for s in r.slices[0].slices} == {want}
        warned = any("heavy-tailed" in w for w in r.warnings)
        assert warned == (want == "heavy-tailed")  # the overall warning agrees


def test_tail_histograms_merge_exactly_in_any_order() -> None:
    """A slice's tail histogram is the same counts whatever the blocks and merge order: the
    window's lowest bucket takes everything below it under any re-anchoring."""
    from losscli.slices.state import GroupState, block_tail, tail_keys

    rng = np.random.default_rng(3)
    values = np.concatenate([rng.standard_t(2.0, 3000) * 10.0 ** rng.integers(-12, 12, 3000),
                             np.zeros(5)])
    g = rng.integers(0, 4, values.size)

    def state(lo: int, hi: int) -> GroupState:
        top, counts = block_tail(g[lo:hi], 4, tail_keys(values[lo:hi]))
        return GroupState(False, [(i,) for i in range(4)], np.bincount(g[lo:hi], minlength=4),
                          [np.zeros((5, 4))], tails=[counts], tops=[top])

    whole = state(0, values.size)
    for cuts in ([0, 1000, 2000, values.size], [0, 7, 2500, values.size]):
        parts = [state(a, b) for a, b in itertools.pairwise(cuts)]
        for order in (parts, parts[::-1]):
            merged = GroupState(False)
            for p in [GroupState(False, list(x.keys), x.rows.copy(), [d.copy() for d in x.data],
                                 tails=[t.copy() for t in x.tails], tops=list(x.tops))
                      for x in order]:
                merged = merged.merge(p, 100)
            idx = [merged.keys.index(k) for k in whole.keys]
            assert merged.tops == whole.tops
            assert np.array_equal(merged.tails[0][:, idx], whole.tails[0])


def test_block_tail_counts_every_value_in_its_bucket() -> None:
    """The tail histogram against a count value by value: signed values, zeros, subnormals,
    infinities, all zeros (a window reaching below key 0), a range wider than the window."""
    from losscli.slices.state import _TAIL_SHIFT, TAIL_BUCKETS, block_tail, tail_keys

    rng = np.random.default_rng(5)
    for v in (rng.normal(size=2000), np.abs(rng.standard_t(1.0, 2000)) * 1e-300,
              np.zeros(40), np.array([0.0, 5e-324, 1e-320, 1.0, np.inf, -3.0, -0.0]),
              rng.normal(size=500) * 10.0 ** rng.integers(-40, 40, 500)):
        keys = tail_keys(v)
        want_keys = np.right_shift(np.abs(v).view(np.int64), _TAIL_SHIFT)
        assert np.array_equal(keys.astype(np.int64), want_keys)
        if (np.signbit(v) == 0).all():
            assert np.array_equal(tail_keys(v, non_negative=True), keys)
        g = rng.integers(0, 3, v.size)
        top, counts = block_tail(g, 3, keys)
        want = np.zeros((TAIL_BUCKETS, 3), dtype=np.int64)
        for gi, k in zip(g, want_keys, strict=True):
            want[max(int(k) - (top - TAIL_BUCKETS + 1), 0), gi] += 1
        assert top == want_keys.max() and np.array_equal(counts, want)


@pytest.mark.parametrize("weighted", [False, True])
def test_sorted_and_scattered_folds_agree(weighted: bool,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Blocks of up to 65,535 slices are folded sorted by slice (segment sums), larger ones by
    bincount: both give pandas' values, and the same statuses."""
    import losscli.slices.fold as fold

    df = regression_frame(n=5000, seed=8, nulls=True)
    args = (df, "p", "y", "w" if weighted else None, ["mse", "mae", "huber", "log_cosh"])
    kw = {"slices": ["country", "country,device,tier"]}
    a = evaluate(*args, **kw)
    monkeypatch.setattr(fold, "SORT_MAX_SLICES", 0)
    b = evaluate(*args, **kw)
    for ga, gb in zip(a.slices, b.slices, strict=True):
        for sa, sb in zip(ga.slices, gb.slices, strict=True):
            assert sa.by == sb.by and sa.rows == sb.rows
            for xa, xb in zip(sa.losses, sb.losses, strict=True):
                assert xa.value == pytest.approx(xb.value, rel=1e-12)
                assert xa.se == pytest.approx(xb.se, rel=1e-9)
                assert xa.status == xb.status


def test_no_planted_slice_end_to_end_rarely_flags() -> None:
    flagged = sum(bool(evaluate(planted(100 + s, n=10_000, bad=None), "p", "y",
                                losses=["mae"], slices=["country"]).slices[0].flagged("mae"))
                  for s in range(20))
    assert flagged <= 4  # 20 runs at a 5% family rate: P(> 4) < 0.3%


# --- the command line ---------------------------------------------------------------------


@pytest.fixture()
def data(tmp_path: Path) -> Path:
    path = tmp_path / "d.parquet"
    df = planted(5)
    df["age"] = np.random.default_rng(0).uniform(18, 90, len(df))
    df.to_parquet(path)
    return path


def invoke(*args: str) -> Any:
    return runner.invoke(app, list(args))


@pytest.mark.parametrize("args,message", [
    (["--by", "nope"], "nope"),
    (["--by", "age"], "bins"),
    (["--by", "age:bins=0"], "bins must be a whole number >= 1"),
    (["--by", "country", "--top", "-1"], "--top"),
    (["--by", "country", "--min-rows", "1"], "--min-rows"),
    (["--max-slice", "mse=2"], "--max-slice needs --by"),
    (["--by", "country", "--max-slice", "mse=x"], "limit must be a number"),
    (["--by", "age:edges=3,2"], "edges must increase"),
])
def test_bad_input_exits_2(data: Path, args: list[str], message: str) -> None:
    res = invoke("eval", str(data), "-p", "p", "-t", "y", "-l", "mse", *args)
    assert res.exit_code == 2, res.output
    assert message in res.output


def test_csv_fractional_key_without_bins_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    planted(1, n=200).assign(score=np.linspace(0, 1, 200)).to_csv(path, index=False)
    res = invoke("eval", str(path), "-p", "p", "-t", "y", "-l", "mse", "--by", "score")
    assert res.exit_code == 2 and "bins" in res.output


@pytest.mark.parametrize("fmt", ["table", "json", "markdown", "csv", "junit", "github"])
def test_max_slice_gate_fails_in_every_format(data: Path, fmt: str) -> None:
    res = invoke("eval", str(data), "-p", "p", "-t", "y", "-l", "mse", "--by", "country",
                 "--max-slice", "mse=2.5", "--format", fmt)
    assert res.exit_code == 1, res.output
    assert "c07" in res.stdout
    ok = invoke("eval", str(data), "-p", "p", "-t", "y", "-l", "mse", "--by", "country",
                "--max-slice", "mse=100", "--format", fmt)
    assert ok.exit_code == 0, ok.output


def test_json_slices_schema(data: Path) -> None:
    res = invoke("eval", str(data), "-p", "p", "-t", "y", "-l", "mse", "--by", "country",
                 "--format", "json")
    doc = json.loads(res.stdout)
    first = doc["slices"][0]
    assert first["by"] == {"country": "c07"} and first["rows"] > 0
    assert set(first["losses"][0]) >= {"spec", "value", "se", "ci", "gap", "contribution",
                                       "flag"}
    assert first["losses"][0]["flag"] == "worse"
    assert doc["slicing"][0]["values"] == 50


def test_table_reads_at_80_columns(data: Path) -> None:
    import io

    from rich.console import Console

    from losscli.render.table import print_eval

    r = evaluate(str(data), "p", "y", losses=["mse", "huber"],
                 slices=["country", "age:bins=5"])
    buf = io.StringIO()
    print_eval(r, Console(file=buf, width=80, no_color=True, color_system=None))
    text = buf.getvalue()
    assert "…" not in text and max(len(line) for line in text.splitlines()) <= 80
    assert "WORSE" in text and "Benjamini-Hochberg" in text


def test_config_keys(data: Path, tmp_path: Path) -> None:
    conf = tmp_path / "pyproject.toml"
    conf.write_text('[tool.losscli]\nby = "country"\nmin_rows = 40\n'
                    '[tool.losscli.max_slice]\nmse = 2.5\n')
    res = invoke("eval", str(data), "-p", "p", "-t", "y", "-l", "mse", "--config", str(conf),
                 "--format", "json")
    assert res.exit_code == 1, res.output
    doc = json.loads(res.stdout)
    assert doc["slicing"][0]["min_rows"] == 40
    assert any(g["kind"] == "slice" and not g["passed"] for g in doc["gates"])


# --- compare --by ---------------------------------------------------------------------------


def paired_frame(seed: int = 8, n: int = 20_000) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    country = np.array([f"c{i:02d}" for i in range(20)])[rng.integers(0, 20, n)]
    y = rng.normal(size=n)
    return pd.DataFrame({"y": y, "base": y + rng.normal(size=n), "country": country,
                         "cand": y + rng.normal(size=n) * np.where(country == "c03", 1.6, 0.97),
                         "w": rng.uniform(0.2, 2.0, n)})


@pytest.mark.parametrize("weighted", [False, True])
def test_compare_slices_are_paired_deltas(weighted: bool) -> None:
    from losscli.compare import compare
    from losscli.sources import open_table

    df = paired_frame()
    c = compare(open_table(df), None, pred="cand", baseline_pred="base", target="y",
                weight="w" if weighted else None, losses=["mse", "rmse", "mae"], ci="t",
                slices=["country"])
    for s in c.slices[0].slices:
        part = df[df.country == s.by["country"]]
        w = part.w.to_numpy() if weighted else None
        for spec, fn in (("mse", mean_squared_error), ("mae", mean_absolute_error)):
            x = s.loss(spec)
            base, cand = fn(part.y, part.base, sample_weight=w), fn(part.y, part.cand,
                                                                   sample_weight=w)
            assert (x.baseline, x.candidate) == pytest.approx((base, cand), rel=1e-12)
            assert x.value == pytest.approx(cand - base, rel=1e-10)
        x = s.loss("rmse")
        rb = math.sqrt(mean_squared_error(part.y, part.base, sample_weight=w))
        rc = math.sqrt(mean_squared_error(part.y, part.cand, sample_weight=w))
        assert x.value == pytest.approx(rc - rb, rel=1e-10)
        if not weighted:  # the paired interval is the one-sample t interval of d
            d = ((part.cand - part.y) ** 2 - (part.base - part.y) ** 2).to_numpy()
            low, high = sps.t.interval(0.95, d.size - 1, loc=d.mean(), scale=sps.sem(d))
            m = s.loss("mse")
            assert (m.ci.low, m.ci.high) == pytest.approx((low, high), rel=1e-9, abs=1e-12)
            ref = sps.ttest_1samp(d, 0.0, alternative="greater")
            if m.p is not None:
                assert m.p == pytest.approx(ref.pvalue, rel=1e-8, abs=1e-300)
    flagged = [s.values for s in c.slices[0].flagged("mse")]
    assert flagged == ["c03"] and c.slices[0].slices[0].values == "c03"


def test_compare_by_two_files_cli(tmp_path: Path) -> None:
    df = paired_frame(n=6000)
    base, cand = tmp_path / "base.parquet", tmp_path / "cand.parquet"
    df[["y", "base", "country"]].rename(columns={"base": "p"}).to_parquet(base)
    df[["y", "cand"]].rename(columns={"cand": "p"}).to_parquet(cand)
    res = invoke("compare", str(base), str(cand), "-p", "p", "-t", "y", "-l", "mse",
                 "--by", "country", "--format", "json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    first = doc["slices"][0]
    assert first["by"] == {"country": "c03"} and first["losses"][0]["flag"] == "regressed"
    md = invoke("compare", str(base), str(cand), "-p", "p", "-t", "y", "-l", "mse",
                "--by", "country", "--format", "markdown")
    assert "**regressed**" in md.stdout


def test_csv_rows_per_slice_match_json(data: Path, tmp_path: Path) -> None:
    import csv
    import io

    args = ["-p", "p", "-t", "y", "-l", "mse", "--by", "country"]
    doc = json.loads(invoke("eval", str(data), *args, "--format", "json").stdout)
    rows = list(csv.DictReader(io.StringIO(invoke("eval", str(data), *args,
                                                  "--format", "csv").stdout)))
    sliced = [r for r in rows if r["slice"]]
    assert len(sliced) == 50 and rows[0]["slice"] == ""
    by_label = {s["label"]: s for s in doc["slices"]}
    for r in sliced:
        want = by_label[r["slice"]]
        assert float(r["value"]) == want["losses"][0]["value"]
        assert int(r["rows"]) == want["rows"]
        assert r["flag"] == (want["losses"][0]["flag"] or "")
    df = paired_frame(n=6000)
    path = tmp_path / "pair.parquet"
    df.to_parquet(path)
    out = invoke("compare", str(path), "--baseline-pred", "base", "--pred", "cand", "-t", "y",
                 "-l", "mse", "--by", "country", "--format", "csv")
    crow = [r for r in csv.DictReader(io.StringIO(out.stdout)) if r["slice"]]
    first = next(r for r in crow if r["slice"] == "country=c03")
    part = df[df.country == "c03"]
    assert float(first["delta"]) == pytest.approx(
        mean_squared_error(part.y, part.cand) - mean_squared_error(part.y, part.base), rel=1e-10)
    assert first["verdict"] == "regressed"
