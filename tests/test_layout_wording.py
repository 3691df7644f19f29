"""Layout and wording of the tables and lines a user reads (issue 17, item 16): no trailing
padding in a pipe or a file, continuation tables that never hold a lone column nor wrap their
titles, rows better / tied / worse, signed changes, one significant-digit rule, sentence and
gate lines that fit 80 columns, no redundant multiclass gradient column."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_cli import cli

from losscli.api import compare, evaluate
from losscli.render import fmt, pct
from losscli.render.table import _pack

ROOT = Path(__file__).resolve().parent.parent
S = ROOT / "sample_data"


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The regression sample and a worse candidate of it (as the README's base / cand)."""
    d = tmp_path_factory.mktemp("pair")
    df = pd.read_parquet(S / "regression.parquet")
    base, cand = d / "base.parquet", d / "cand.parquet"
    df.to_parquet(base, index=False)
    noise = np.random.default_rng(12).normal(0.0, 0.3, len(df))
    df.assign(y_hat=df.y_hat + noise).to_parquet(cand, index=False)
    return base, cand


def _tables(text: str) -> list[tuple[str, int]]:
    """(the line above, number of columns) of each boxed table in ``text``."""
    lines = text.splitlines()
    return [(lines[i - 1] if i else "", lines[i].count("┳") + 1)
            for i, line in enumerate(lines) if line.startswith("┏")]


# --- 1: no trailing padding ----------------------------------------------------------------


@pytest.mark.parametrize("columns", ["80", "160"])
def test_piped_output_has_no_trailing_whitespace(capfd: pytest.CaptureFixture[str],
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 pair: tuple[Path, Path], columns: str,
                                                 tmp_path: Path) -> None:
    monkeypatch.setenv("COLUMNS", columns)
    base, cand = pair
    for args in (["eval", S / "regression.csv"], ["eval", S / "multiclass.csv"],
                 ["compare", base, cand, "--fail-if-worse"],
                 ["recommend", S / "regression.csv"], ["recommend", S / "counts.csv"],
                 ["recommend", S / "regression.csv", "--target-only", "--rules"]):
        rc, out, _ = cli(capfd, *args)
        assert rc in (0, 1), out
        padded = [line for line in out.splitlines() if line != line.rstrip()]
        assert not padded, (args, padded)
        assert "Losses" in out or "Paired comparison" in out or "recommend" in out
    out_file = tmp_path / "report.txt"
    rc, _, _ = cli(capfd, "compare", base, cand, "--output", out_file)
    assert rc == 0
    text = out_file.read_text(encoding="utf-8")
    assert "Paired comparison" in text
    assert all(line == line.rstrip() for line in text.splitlines())


# --- 2: continuation tables ------------------------------------------------------------------


def test_no_continuation_table_holds_a_lone_column(pair: tuple[Path, Path]) -> None:
    base, cand = pair
    c = compare(str(base), str(cand))
    e = evaluate(str(S / "regression.csv"))
    m = evaluate(str(S / "multiclass.csv"))
    for width in range(80, 241):
        for result in (c, e, m):
            text = result.render("table", width=width)
            tables = _tables(text)
            for title, ncols in tables[1:]:
                assert ncols >= 3, f"{width} columns: {title!r} holds a lone column\n{text}"
            for title, _ in tables:  # every title on one line of its own, above its table
                assert title and not title.startswith(("┃", "│", "└")), (width, title)
            assert max(len(line) for line in text.splitlines()) <= width


def test_compare_at_80_columns_folds_the_rows_column() -> None:
    """The 'rows better / tied / worse' column, alone in 'Both models, part 2' at 80 columns,
    takes the column before it along."""
    def col(name: str, width: int) -> tuple[str, list[str]]:
        return name, ["x" * (width - 3)]

    first = [col("delta", 13), col("rel.", 10), col("CI", 28), col("p (adj.)", 11),
             col("verdict", 10)]
    rest = [col("baseline", 11), col("candidate", 12), col("se", 11), col("p", 10),
            col("rows", 29)]
    groups = _pack(first, rest, 63, 63)
    assert [len(g) for g in groups] == [4, 4, 2]
    assert [h for h, _ in groups[-1]] == ["p", "rows"]
    # a lone column with nothing to take joins an earlier continuation table with room
    groups = _pack([col("a", 60)], [col("b", 20), col("c", 20), col("d", 30), col("e", 30),
                                    col("f", 10)], 63, 63)
    assert [[h for h, _ in g] for g in groups] == [["a"], ["b", "c", "f"], ["d", "e"]]


# --- 3, 4: rows better / tied / worse; signed changes ------------------------------------------


def test_compare_says_rows_and_signs_changes(capfd: pytest.CaptureFixture[str],
                                             monkeypatch: pytest.MonkeyPatch,
                                             pair: tuple[Path, Path]) -> None:
    base, cand = pair
    monkeypatch.setenv("COLUMNS", "240")
    rc, out, _ = cli(capfd, "compare", base, cand, "--loss", "mse", "--loss", "mae")
    assert rc == 0
    assert "rows better / tied / worse" in out and "wins" not in out and "ties" not in out
    rows = [line.strip("│").split("│") for line in out.splitlines()
            if line.startswith("│ mse ")]
    heads = [h.strip() for h in next(line for line in out.splitlines()
                                     if line.startswith("┃ loss")).strip("┃").split("┃")]
    delta = rows[0][heads.index("delta")].strip()
    ci = rows[0][next(i for i, h in enumerate(heads) if h.startswith("95% CI"))].strip()
    assert delta.startswith("+") and re.fullmatch(r"\[\+[\d.]+, \+[\d.]+\]", ci), (delta, ci)
    assert rows[0][heads.index("rel.")].strip().startswith("+")
    rc, md, _ = cli(capfd, "compare", base, cand, "--loss", "mse", "--loss", "mae",
                    "--format", "markdown")
    assert rc == 0
    assert "| rows better / tied / worse |" in md and "wins" not in md
    row = next(line for line in md.splitlines() if line.startswith("| `mse`"))
    assert f"| {delta} |" in row and f"| {ci} |" in row
    # a sentence says the change signed, its percentages in 3 significant digits
    sentence = next(line for line in md.splitlines() if line.startswith("- mse:"))
    percents = re.findall(r"[-+][\d.]+%", sentence)
    assert len(percents) == 3
    assert all(len(p.strip("+-%").replace(".", "").lstrip("0")) == 3 for p in percents), sentence


# --- 5: one significant-digit rule -----------------------------------------------------------


def test_one_significant_digit_rule() -> None:
    assert fmt(8.2094007) == "8.20940" and fmt(8.35776) == "8.35776"  # 6 beside 6, not 5
    assert fmt(1.0, 4) == "1.000" and fmt(0.94851, 4) == "0.9485"
    assert fmt(123456.0) == "123456" and fmt(1234567.0) == "1.23457e+06"
    assert fmt(1e-5) == "1.00000e-05" and fmt(0.0) == "0" and fmt(None) == "-"
    assert fmt(0.14836, sign=True) == "+0.148360" and fmt(-0.14836, sign=True) == "-0.148360"
    assert fmt(0.0, sign=True) == "0"
    assert pct(0.009, sign=True) == "+0.900%" and pct(0.0181, sign=True) == "+1.81%"
    assert pct(0.0) == "0%" and pct(1.0) == "100%"


def test_value_column_has_six_significant_digits(capfd: pytest.CaptureFixture[str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "240")
    rc, out, _ = cli(capfd, "eval", S / "regression.csv")
    assert rc == 0
    heads = [h.strip() for h in next(line for line in out.splitlines()
                                     if line.startswith("┃ loss")).strip("┃").split("┃")]
    at = heads.index("value")
    values = [line.strip("│").split("│")[at].strip() for line in out.splitlines()
              if line.startswith("│ ")]
    assert len(values) == 5 and "8.20940" in values
    for v in values:
        assert len(v.replace(".", "").replace("-", "").lstrip("0")) == 6, v


# --- 6: sentence and gate lines at 80 columns ------------------------------------------------


def test_sentences_and_gate_lines_fit_80_columns(pair: tuple[Path, Path]) -> None:
    from terminal import run_tty

    base, cand = pair
    rc, text = run_tty("compare", base.name, cand.name, "--fail-if-worse", columns=80,
                       cwd=base.parent)
    assert rc == 1, text
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 80, text
    sentences = [line for line in lines if re.match(r"(mse|rmse|mae|huber|log_cosh): ", line)]
    assert len(sentences) == 5 and not any("adjusted over" in s for s in sentences), sentences
    assert sum("adjusted over 4 distinct tests" in line for line in lines) == 1
    # a gate failure longer than the terminal: wrapped between words, later lines indented
    at = [i for i, line in enumerate(lines) if line.startswith("losscli: gate failed: ")]
    assert len(at) == 5
    for i in at:
        assert lines[i + 1].startswith("  ") and lines[i + 1].strip(), lines[i:i + 2]
    # joined at a space again, each reads whole: no word or number was cut
    joined = [" ".join(" ".join(lines[i:i + 2]).split()) for i in at]
    assert all(j.endswith("> margin 0 (a significant regression)") for j in joined), joined
    assert re.search(r"mse: lower bound of delta \+0\.0\d{6} > margin 0", joined[0]), joined


def test_gate_lines_stay_whole_in_a_pipe(capfd: pytest.CaptureFixture[str],
                                         pair: tuple[Path, Path]) -> None:
    base, cand = pair
    rc, _, err = cli(capfd, "compare", base, cand, "--loss", "mse", "--fail-if-worse")
    assert rc == 1
    assert err.count("\n") == 1 and err.startswith("losscli: gate failed: mse: ")


# --- 8: multiclass gradient columns ----------------------------------------------------------


def test_multiclass_has_no_abs_mean_column(capfd: pytest.CaptureFixture[str],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "240")
    rc, out, _ = cli(capfd, "eval", S / "multiclass.csv")
    assert rc == 0
    assert "g mean" in out and "|g| mean" not in out
    rc, out, _ = cli(capfd, "eval", S / "regression.csv")
    assert rc == 0
    assert "|g| mean" in out
