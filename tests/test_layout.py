"""What a person sees on an 80-column terminal (a pseudo-terminal, as tmux): every command's
help, the loss catalog and recommend, with nothing cut into an ellipsis and the recommendation
on the screen at the end."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from _helpers.cli import cli
from terminal import run_tty

from losscli.losses import CATALOG

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample_data"


def lines_of(text: str) -> list[str]:
    return [line.rstrip() for line in text.splitlines()]


def assert_fits(text: str, width: int = 80) -> None:
    """Every line fits, except the printed command, which is never wrapped so that it can be
    copied whole."""
    for line in lines_of(text):
        assert len(line) <= width or line.startswith("  losscli eval "), line
    assert "…" not in text


def _commands() -> list[list[str]]:
    import typer

    from losscli.cli import app

    group = typer.main.get_command(app)
    return [[], *([name] for name in group.commands)]  # type: ignore[attr-defined]


def test_command_summaries_have_no_hard_line_break() -> None:
    """The root help lists each command's summary (its docstring's first paragraph): one line
    of text, wrapped only by the terminal (recommend's used to break mid-sentence)."""
    import typer

    from losscli.cli import app

    for name, cmd in typer.main.get_command(app).commands.items():  # type: ignore[attr-defined]
        summary = (cmd.help or "").strip().split("\n\n")[0]
        assert "\n" not in summary and len(summary) <= 90, name


@pytest.mark.parametrize("command", _commands())
def test_help_reads_at_80_columns(command: list[str]) -> None:
    rc, out = run_tty(*command, "--help", cwd=ROOT)
    assert rc == 0
    assert_fits(out)
    assert len(lines_of(out)) <= 50  # eval's was 94, then 66
    rc, full = run_tty(*command, "--help-all", cwd=ROOT) if command else (0, out)
    assert rc == 0
    assert_fits(full)
    if command == ["eval"]:
        for panel in ("Input", "Task", "Losses", "Gradients", "Gates", "Output", "Settings"):
            assert f"╭─ {panel} " in full
        assert "╭─ Slices " in full
    if command == ["recommend"]:
        for panel in ("Input", "Task", "Without data", "Output", "Settings"):
            assert f"╭─ {panel} " in full
    # the help column is not squeezed (it was 25 characters wide): it starts by column 50
    for line in lines_of(out):
        if line.startswith("│ --"):
            body = line.rstrip("│ ")
            start = len(body) - len(re.split(r"\s{2,}", body)[-1])
            assert start <= 50, line


def test_losses_catalog_at_80_columns() -> None:
    rc, out = run_tty("losses", cwd=ROOT)
    assert rc == 0
    assert_fits(out)
    flat = " ".join(out.split())  # wrapped lines joined again
    for d in CATALOG.values():
        assert " ".join(d.formula.split()) in flat, d.name
        assert " ".join(d.gradient.split()) in flat, d.name
        for alias in d.aliases:
            assert alias in flat
    assert "[eps, 1 - eps]" in flat  # brackets are text, not markup
    # on a wide terminal: the table
    rc, wide = run_tty("losses", columns=200, cwd=ROOT)
    assert rc == 0 and "┃ loss" in wide and "…" not in wide


@pytest.mark.parametrize("args", [
    ["regression.parquet"], ["regression.parquet", "--target-only"], ["counts.csv"],
    ["binary.csv"], ["multiclass.csv", "--pred", "prob_*"]])
def test_recommend_ends_with_the_recommendation(args: list[str]) -> None:
    rc, out = run_tty("recommend", SAMPLES / args[0], *args[1:], cwd=ROOT)
    assert rc == 0, out
    assert_fits(out)
    lines = [x for x in lines_of(out) if x]
    assert len(lines) <= 60, len(lines)  # was 70-82
    # the recommendation is the last thing printed: its panel, then the command to run it
    end = next(i for i in range(len(lines) - 1, -1, -1) if lines[i].startswith("╰"))
    assert len(lines) - end <= 3 and any("Recommended" in x for x in lines[end - 25:end])
    assert "Selection rules" not in out
    if "--target-only" not in args:
        assert "on its own loss's scale" in " ".join(out.split())


def test_rules_behind_an_option(capfd: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = cli(capfd, "recommend", SAMPLES / "regression.csv", "--rules")
    assert rc == 0 and "Selection rules for regression" in out
    rc, out, _ = cli(capfd, "recommend", "--task", "binary")  # without data: the rules are it
    assert rc == 0 and "Selection rules for binary" in out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_positive_target_histogram_has_no_empty_negative_bins(
        capfd: pytest.CaptureFixture[str], tmp_path: Path, seed: int) -> None:
    """A price-like target (all > 0): bins start at the minimum, end labels agree with
    min / max, and every row is counted."""
    rng = np.random.default_rng(seed)
    price = rng.lognormal(11.5, 0.6 + 0.4 * seed, 20_000)
    path = tmp_path / "train.parquet"
    pq.write_table(pa.table({"price": price}), path)
    rc, out, err = cli(capfd, "recommend", path, "--target", "price", "--format", "json")
    assert rc == 0, err
    doc = json.loads(out)
    bins = doc["histogram"]["bins"]
    lo, hi = float(price.min()), float(price.max())
    assert sum(b["count"] for b in bins) == price.size
    assert all(b["lo"] >= lo and b["hi"] <= hi for b in bins)
    assert bins[0]["count"] > 0 and bins[-1]["count"] > 0
    for b in bins:
        label = b.get("label", "")
        if label.startswith("< "):  # '< X (min Y)': the minimum is below X
            x = float(label[2:].split(" ")[0])
            assert lo < x
        if label.startswith(">= "):
            x = float(label[3:].split(" ")[0])
            assert hi >= x
    rc, text, _ = cli(capfd, "recommend", path, "--target", "price")
    assert f"min {lo:.4g}" in text and f"max {hi:.4g}" in text
    assert not math.isnan(doc["evidence"]["min"])
