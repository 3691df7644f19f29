"""Every help page reads at 80 columns in at most 50 lines and shows two or three examples that
run as written (in the README's workspace of placeholder files); --help-all shows every option."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from terminal import run_tty
from test_readme import workspace
from test_screens import cut_numbers

PAGES = [[], ["eval"], ["compare"], ["recommend"], ["losses"]]


def _examples(text: str) -> list[str]:
    block = text.split("Examples:", 1)[1]
    return [line.strip() for line in block.splitlines() if line.strip().startswith("losscli ")]


@pytest.fixture(scope="module")
def pages() -> dict[str, str]:
    out = {}
    for page in PAGES:
        rc, text = run_tty(*page, "--help", columns=80)
        assert rc == 0, text
        out[" ".join(page)] = text
    return out


def test_help_pages_fit_80_columns_in_50_lines(pages: dict[str, str]) -> None:
    for name, text in pages.items():
        lines = text.rstrip().splitlines()
        assert len(lines) <= 50, (name, len(lines))
        assert all(len(line) <= 80 for line in lines), name
        assert not cut_numbers(text), name
        assert 2 <= len(_examples(text)) <= 3, name
        # a paragraph is never broken where the source broke its line (Rich wraps it)
        assert not re.search(r"\(Holm-adjusted over\s*\n", text)


def test_help_all_shows_what_help_leaves_out(pages: dict[str, str]) -> None:
    rc, full = run_tty("eval", "--help-all", columns=80)
    assert rc == 0
    for option in ("--chunk-rows", "--ci", "--grad-clip", "--config", "--quiet"):
        assert option not in pages["eval"] and option in full, option
    assert "[tool.losscli]" in full and "losscli.toml" in full
    rc, rec = run_tty("recommend", "--help-all", columns=80)
    assert "table, json or markdown." in rec and "junit" not in rec


def test_help_examples_run(pages: dict[str, str], tmp_path: Path) -> None:
    cwd = workspace(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GITHUB_")}
    (cwd / "ci").mkdir()
    subprocess.run([sys.executable, "-m", "losscli", "eval", "preds.parquet",
                    "--write-baseline", "ci/baseline.json"], cwd=cwd, env=env, check=True,
                   capture_output=True, timeout=60)
    failures = []
    for name, text in pages.items():
        for example in _examples(text):
            if "COMMAND" in example:
                continue
            proc = subprocess.run([sys.executable, "-m", "losscli", *example.split()[1:]],
                                  cwd=cwd, env=env, capture_output=True, text=True, timeout=120,
                                  check=False)
            if proc.returncode not in (0, 1) or "losscli: error" in proc.stderr:
                failures.append(f"{name}: {example}: exit {proc.returncode} {proc.stderr}")
    assert not failures, "\n".join(failures)
