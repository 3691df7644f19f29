"""Fuzzing the command line itself: random sequences of eval's and recommend's options, each
with a value from a pool of good, odd and bad ones. Whatever the combination, losscli must keep
the exit-code contract: a result, or one ``losscli: error:`` line; never a usage panel, never
exit 3. (No --output, --write-baseline or --plugin: the fuzzer writes no files and loads no
code; --bootstrap-samples only small.)"""

from __future__ import annotations

from pathlib import Path

import pytest
from fuzzlib import Result, assert_contract, fuzz_settings, run_cli
from hypothesis import event, given
from hypothesis import strategies as st

VALUES = ["", "abc", "-1", "0", "1", "2", "3", "0.5", "1e999", "nan", "inf", "-inf",
          "99999999999999999999", "mse", "mae", "huber:delta=2", "0.7*mse+0.3*mae", "bce", "cce",
          "y", "pred", "Y", "w", ",", "*", "pred*", "json", "table", "markdown", "csv", "junit",
          "github", "1%", "mse=1", "mse=0", "=", "error", "drop", "regression", "binary",
          "counts", "multiclass", "johnson", "t", "bootstrap", "0.95", "--", "-", "é", " "]
#: option -> does it take a value
EVAL = {"--pred": True, "-p": True, "--target": True, "-t": True, "--weight": True,
        "-w": True, "--nan": True, "--chunk-rows": True, "--threads": True, "--task": True,
        "--logits": False, "--probabilities": False, "--loss": True, "-l": True,
        "--vanish-tol": True, "--explode-tol": True, "--grad-clip": True, "--max": True,
        "--tolerance": True, "--format": True, "-f": True, "--quiet": False, "-q": False,
        "--ci": True, "--confidence": True, "--seed": True, "--no-config": False,
        "--show-config": False, "--bogus": False, "--baseline": True, "--config": True}
RECOMMEND = {"--pred": True, "--target": True, "--weight": True, "--nan": True,
             "--chunk-rows": True, "--threads": True, "--task": True, "--logits": False,
             "--target-only": False, "--outliers": False, "--heavy-tails": False,
             "--outlier-fraction": True, "--imbalanced": False, "--minority-share": True,
             "--no-plot": False, "--rules": False, "--format": True, "--quiet": False,
             "--no-config": False, "--bogus": True}


@pytest.fixture(scope="module")
def csv_file(fuzz_dir: Path) -> Path:
    path = fuzz_dir / "opts.csv"
    path.write_text("y,pred,w\n0,0.2,1\n1,0.7,2\n1,0.9,1\n0,0.4,0.5\n1,0.6,1\n")
    return path


@st.composite
def argv(draw: st.DrawFn, source: str) -> list[str]:
    command = draw(st.sampled_from(["eval", "eval", "recommend"]))
    options = EVAL if command == "eval" else RECOMMEND
    args = [command]
    if draw(st.integers(0, 9)):
        args.append(source)
    for _ in range(draw(st.integers(0, 6))):
        opt = draw(st.sampled_from(sorted(options)))
        value = draw(st.sampled_from(VALUES)) if options[opt] else None
        if opt in ("--baseline", "--config") and value:
            value = source if draw(st.booleans()) else value  # a file that is not one
        if opt == "--confidence" and value not in ("0.95", "0.5", "abc"):
            value = "0.95"
        if value is None:
            args.append(opt)
        elif draw(st.booleans()):
            args.append(f"{opt}={value}")
        else:
            args += [opt, value]
    if draw(st.integers(0, 9)) == 0:
        args.insert(draw(st.integers(1, len(args))), draw(st.sampled_from(VALUES)))
    return args


@fuzz_settings(120)
@given(data=st.data())
def test_any_options_keep_the_contract(data: st.DataObject, csv_file: Path) -> None:
    args = data.draw(argv(str(csv_file)), label="argv")
    r: Result = run_cli(args)
    event(f"exit {r.rc}")
    assert_contract(r)
    assert "Usage:" not in r.err and "╭" not in r.err
