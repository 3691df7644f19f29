"""Every recommendation is runnable: for each shipped sample and every task, the ``losscli eval``
command that ``recommend`` prints runs, and its value equals the recommendation's value; every
choice in the JSON that has a value has a spec that eval accepts and that reproduces it."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from losscli.cli import run
from losscli.spec import parse_spec

SAMPLES = Path(__file__).resolve().parent.parent / "sample_data"

#: (sample, extra recommend arguments, task it must detect)
CASES = [
    ("regression.csv", [], "regression"),
    ("regression.parquet", ["--weight", "w"], "regression"),
    ("counts.csv", [], "counts"),
    ("counts.parquet", ["--task", "regression"], "regression"),
    ("binary.csv", [], "binary"),
    ("binary.parquet", ["--pred", "logit", "--logits"], "binary"),
    ("multiclass.csv", [], "multiclass"),
    ("multiclass.parquet", ["--pred", "prob_*"], "multiclass"),
]


def cli(capsys: pytest.CaptureFixture[str], args: list[str]) -> tuple[int, str]:
    code = run(args)
    return code, capsys.readouterr().out


def eval_value(capsys: pytest.CaptureFixture[str], command: str) -> float:
    argv = shlex.split(command)
    assert argv[:2] == ["losscli", "eval"], command
    code, out = cli(capsys, [*argv[1:], "--format", "json"])
    assert code == 0, command
    losses = json.loads(out)["losses"]
    assert len(losses) == 1
    return float(losses[0]["value"])


@pytest.mark.parametrize(("sample", "extra", "task"), CASES,
                         ids=[f"{c[0]}{'-' if c[1] else ''}{'-'.join(c[1])}" for c in CASES])
def test_printed_command_reproduces_the_value(capsys: pytest.CaptureFixture[str],
                                              monkeypatch: pytest.MonkeyPatch, sample: str,
                                              extra: list[str], task: str) -> None:
    monkeypatch.chdir(SAMPLES.parent)
    source = f"sample_data/{sample}"
    code, out = cli(capsys, ["recommend", source, *extra, "--format", "json"])
    assert code == 0
    doc = json.loads(out)
    assert doc["task"] == task
    rec = doc["recommended"]
    # the table prints the command on the line after its heading
    code, text = cli(capsys, ["recommend", source, *extra, "--no-plot"])
    assert code == 0
    lines = text.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("Evaluate it"))
    printed = lines[at + 1].strip()
    assert printed == rec["command"]
    assert parse_spec(rec["spec"]).spec == rec["spec"]
    value = eval_value(capsys, printed)
    assert value == pytest.approx(rec["value"], rel=1e-12)
    # every alternative with a value reproduces too
    for alt in doc["alternatives"]:
        if alt["value"] is None:
            continue
        assert alt["spec"] is not None and alt["command"] is not None, alt
        assert eval_value(capsys, alt["command"]) == pytest.approx(alt["value"], rel=1e-12)


def test_target_only_and_rules_modes_print_a_command_with_placeholders(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(SAMPLES.parent)
    code, out = cli(capsys, ["recommend", "sample_data/binary.csv", "--target-only",
                             "--format", "json"])
    assert code == 0
    rec = json.loads(out)["recommended"]
    assert rec["command"] == ("losscli eval sample_data/binary.csv --pred PRED --target label "
                              f"--loss {rec['spec']}")
    # with the prediction column filled in, the command runs
    filled = rec["command"].replace("PRED", "prob")
    assert eval_value(capsys, filled) > 0
    for task in ("binary", "multiclass"):
        code, out = cli(capsys, ["recommend", "--task", task, "--imbalanced", "--format", "json"])
        assert code == 0
        rec = json.loads(out)["recommended"]
        assert "=balanced" in rec["spec"] and rec["command"].endswith(rec["spec"])


def test_command_quotes_unusual_names(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "my preds [v2].csv"
    rows = ["y true,p $x"] + [f"{i % 2},{0.2 + 0.6 * (i % 2) - 0.1 * (i % 3) / 3:.6f}"
                                 for i in range(40)]
    src.write_text("\n".join(rows) + "\n")
    code, out = cli(capsys, ["recommend", str(src), "--pred", "p $x", "--target", "y true",
                             "--format", "json"])
    assert code == 0
    rec = json.loads(out)["recommended"]
    argv = shlex.split(rec["command"])
    assert argv[2] == str(src) and argv[argv.index("--pred") + 1] == "p $x"
    assert eval_value(capsys, rec["command"]) == pytest.approx(rec["value"], rel=1e-12)
