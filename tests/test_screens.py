"""Every help page and every command on the shipped samples, on an 80-column pseudo-terminal as a
person sees it: no line wider than the terminal and no number cut across two lines."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest
from terminal import run_tty

ROOT = Path(__file__).resolve().parent.parent
S = "sample_data/"
SCREENS = [
    ["losses"],  # the help pages: tests/test_help.py
    ["eval", S + "regression.parquet"], ["eval", S + "regression.csv", "--weight", "w"],
    ["eval", S + "binary.csv"], ["eval", S + "binary.parquet", "--pred", "logit", "--logits"],
    ["eval", S + "multiclass.csv"], ["eval", S + "counts.csv"],
    ["recommend", S + "regression.parquet"], ["recommend", S + "binary.csv"],
    ["recommend", S + "multiclass.csv"], ["recommend", S + "counts.csv"],
    ["compare", S + "regression.parquet", S + "regression.csv"],
    ["compare", S + "binary.parquet", S + "binary.csv", "--ci", "bootstrap"],
    # a weighted sum longer than a line: broken between terms, never inside a number
    ["eval", S + "regression.parquet", "--loss", "mse", "--loss",
     "0.25*quantile:q=0.25+0.25*quantile:q=0.75+0.25*huber:delta=1.5+0.25*mae"],
    ["compare", S + "regression.parquet", S + "regression.csv", "--loss",
     "0.25*quantile:q=0.25+0.25*quantile:q=0.75+0.25*huber:delta=1.5+0.25*mae"],
]
NUMBER_END = re.compile(r"[-+]?\d[\d.,]*(?:e[-+]?)?$")
NUMBER_START = re.compile(r"^[\d.,%]|^e[-+]?\d")


def cut_numbers(text: str) -> list[str]:
    """Lines where a number runs on into the next line: in a table cell whose row continues on
    the next line (its first cell empty), or in text that fills the line to the edge."""
    found = []
    lines = text.splitlines()
    for a, b in itertools.pairwise(lines):
        if a.startswith("│") and b.startswith("│"):
            ca, cb = a.strip("│").split("│"), b.strip("│").split("│")
            if len(ca) != len(cb) or cb[0].strip():
                continue  # another row starts
            for x, y in zip(ca, cb, strict=True):
                if NUMBER_END.search(x.strip()) and NUMBER_START.search(y.strip()):
                    found.append(f"{a}\n{b}")
        elif len(a.rstrip()) >= 79 and NUMBER_END.search(a.rstrip()) and \
                NUMBER_START.search(b.strip()):
            found.append(f"{a}\n{b}")
    return found


@pytest.mark.parametrize("args", SCREENS, ids=[" ".join(a) for a in SCREENS])
def test_screen_at_80_columns(args: list[str]) -> None:
    rc, text = run_tty(*args, columns=80, cwd=ROOT)
    assert rc == 0, text
    # the printed command is never wrapped, so that it can be copied whole
    wide = [line for line in text.splitlines() if len(line) > 80
            and not line.startswith("  losscli ")]
    assert not wide, wide
    assert not cut_numbers(text), "\n\n".join(cut_numbers(text))


def test_the_detector_finds_a_cut_number() -> None:
    table = ("│ mse      │ 0.12345 │\n"
             "│          │ 678     │\n")
    assert cut_numbers(table)
    assert not cut_numbers("│ mse │ 0.1 │\n│ mae │ 2.5 │\n")
    assert cut_numbers("x" * 75 + " 12.3\n45 more words\n")


def test_spec_lines_break_between_terms_only() -> None:
    from losscli.render.table import spec_lines

    spec = "0.25*quantile:q=0.25+0.25*huber:delta=1e+20+mae+0.5*pinball:q=0.9"
    lines = spec_lines(spec, 24)
    assert "".join(lines) == spec
    assert lines == ["0.25*quantile:q=0.25+", "0.25*huber:delta=1e+20+", "mae+0.5*pinball:q=0.9"]
    assert spec_lines("huber:delta=2") == ["huber:delta=2"]


def test_piped_output_honours_columns() -> None:
    import os
    import subprocess
    import sys

    env = {**os.environ, "COLUMNS": "80"}
    proc = subprocess.run([sys.executable, "-m", "losscli", "eval", S + "regression.parquet",
                           "--max", "mse=100"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60, check=True)
    lines = proc.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert "passed: the gate" in proc.stdout  # not 'passed: 1 gates'
    env.pop("COLUMNS")
    wide = subprocess.run([sys.executable, "-m", "losscli", "eval", S + "regression.parquet"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
                          check=True)
    assert max(len(line) for line in wide.stdout.splitlines()) > 80  # a file: one wide table
