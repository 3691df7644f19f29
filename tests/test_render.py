"""Output formats (losscli/render/): json gates, JUnit XML, markdown, csv, GitHub annotations,
the GitHub step summary, colour handling and ``--output``.

Every format is parsed with a real parser (json, xml.etree, csv) where one exists. Expected loss
values are computed with NumPy from the data each test writes.
"""

from __future__ import annotations

import csv
import io
import json
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from _helpers.cli import Result, cli

FORMATS = ["table", "json", "markdown", "csv", "junit", "github"]
LOSSES = ["mse", "mae", "huber"]

RNG = np.random.default_rng(11)
Y = RNG.normal(3.0, 1.5, 400)
PRED = Y + RNG.normal(0.2, 0.9, 400)
E = PRED - Y
EXPECTED = {
    "mse": float(np.mean(E**2)),
    "mae": float(np.mean(np.abs(E))),
    "huber": float(np.mean(np.where(np.abs(E) <= 1, 0.5 * E**2, np.abs(E) - 0.5))),
}
MSE_LIMIT = EXPECTED["mse"] + 1.0  # passes
MAE_LIMIT = EXPECTED["mae"] / 2  # fails
FAILING = ["--max", f"mse={MSE_LIMIT!r}", "--max", f"mae={MAE_LIMIT!r}"]
PASSING = ["--max", f"mse={MSE_LIMIT!r}", "--max", "mae=100"]


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for var in ("GITHUB_STEP_SUMMARY", "NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE",
                "TTY_INTERACTIVE"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def src(tmp_path: Path) -> Path:
    path = tmp_path / "preds.parquet"
    pq.write_table(pa.table({"y": Y, "pred": PRED}), path)
    return path


def evaluate(capfd: pytest.CaptureFixture[str], src: Path, fmt: str, *gates: str) -> Result:
    args: list[object] = ["eval", src]
    for spec in LOSSES:
        args += ["-l", spec]
    return cli(capfd, *args, *gates, "--format", fmt)


# --- json ------------------------------------------------------------------------------------


def test_json_gates_and_passed(capfd: pytest.CaptureFixture[str], src: Path) -> None:
    rc, out, err = evaluate(capfd, src, "json", *FAILING)
    assert rc == 1
    doc = json.loads(out)
    assert doc["passed"] is False
    values = {r["spec"]: r["value"] for r in doc["losses"]}
    for spec in LOSSES:
        assert values[spec] == pytest.approx(EXPECTED[spec], rel=1e-12)
    gates = doc["gates"]
    assert len(gates) == 2
    for gate in gates:
        assert {"loss", "kind", "limit", "value", "passed"} <= set(gate)
    assert [(g["loss"], g["kind"], g["limit"], g["passed"]) for g in gates] == [
        ("mse", "max", MSE_LIMIT, True), ("mae", "max", MAE_LIMIT, False)]
    for gate in gates:
        assert gate["value"] == values[gate["loss"]]  # unrounded, the same number
    assert err.count("losscli: gate failed:") == 1


def test_json_all_gates_passed(capfd: pytest.CaptureFixture[str], src: Path) -> None:
    rc, out, err = evaluate(capfd, src, "json", *PASSING)
    assert (rc, err) == (0, "")
    doc = json.loads(out)
    assert doc["passed"] is True
    assert [g["passed"] for g in doc["gates"]] == [True, True]


def test_json_without_gates(capfd: pytest.CaptureFixture[str], src: Path) -> None:
    rc, out, err = evaluate(capfd, src, "json")
    assert (rc, err) == (0, "")
    doc = json.loads(out)
    assert (doc["gates"], doc["passed"]) == ([], True)


# --- junit -----------------------------------------------------------------------------------


def _suite(text: str) -> ET.Element:
    root = ET.fromstring(text.encode("utf-8"))
    if root.tag == "testsuite":
        return root
    assert root.tag == "testsuites"
    suites = root.findall("testsuite")
    assert len(suites) == 1
    return suites[0]


def test_junit_failing(capfd: pytest.CaptureFixture[str], src: Path) -> None:
    rc, out, _ = evaluate(capfd, src, "junit", *FAILING)
    assert rc == 1
    assert out.startswith("<?xml")
    suite = _suite(out)
    cases = suite.findall("testcase")
    assert len(cases) == 2 + len(LOSSES)  # a testcase per gate and per loss
    assert suite.get("tests") == str(len(cases))
    assert suite.get("failures") == "1"
    assert suite.get("errors") in (None, "0")
    failed = [c for c in cases if c.find("failure") is not None]
    assert len(failed) == 1
    [case] = failed
    assert "mae" in case.get("name", "")
    failure = case.find("failure")
    assert failure is not None
    assert "mae" in (failure.get("message") or "")
    assert [c for c in cases if c.find("error") is not None or c.find("skipped") is not None] == []
    names = [c.get("name", "") for c in cases]
    for spec in LOSSES:  # one testcase per loss, named by the loss
        assert sum(n == spec for n in names) == 1, names
    for case in cases:
        assert case.get("classname") and case.get("name")
    root = ET.fromstring(out.encode("utf-8"))
    if root.tag == "testsuites":
        assert root.get("tests") == str(len(cases)) and root.get("failures") == "1"


def test_junit_passing_and_without_gates(capfd: pytest.CaptureFixture[str], src: Path) -> None:
    rc, out, _ = evaluate(capfd, src, "junit", *PASSING)
    assert rc == 0
    suite = _suite(out)
    assert (suite.get("tests"), suite.get("failures")) == ("5", "0")
    assert suite.findall("testcase/failure") == []
    rc, out, _ = evaluate(capfd, src, "junit")
    assert rc == 0
    suite = _suite(out)
    assert len(suite.findall("testcase")) == len(LOSSES)
    assert suite.get("failures") == "0"


def test_junit_missing_baseline_is_a_failure(capfd: pytest.CaptureFixture[str], src: Path,
                                             tmp_path: Path) -> None:
    base = tmp_path / "base.json"
    base.write_text(json.dumps({"schema": "losscli.eval/1", "losses": [
        {"spec": "mse", "value": EXPECTED["mse"] * 2}]}), encoding="utf-8")
    rc, out, _ = evaluate(capfd, src, "junit", "--baseline", str(base))
    assert rc == 1
    suite = _suite(out)
    cases = suite.findall("testcase")
    assert len(cases) == 3 + len(LOSSES)
    failed = [c for c in cases if c.find("failure") is not None]
    assert suite.get("failures") == str(len(failed)) == "2"  # mae and huber are not in it
    for case in failed:
        failure = case.find("failure")
        assert failure is not None and "baseline" in (failure.get("message") or "")


# --- markdown --------------------------------------------------------------------------------


def _cells(line: str) -> list[str]:
    return [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]


def check_markdown(text: str, gates_failed: bool | None) -> None:
    """Loss rows with values (6 significant digits; huber with its delta), a gate table and
    the verdict."""
    rows = [_cells(line) for line in text.splitlines() if line.startswith("|")]
    loss_rows = [r for r in rows if r[0].strip("`").split(":")[0] in LOSSES]
    assert [r[0].strip("`") for r in loss_rows] == ["mse", "mae", "huber:delta=1"]
    for row in loss_rows:
        assert float(row[1]) == pytest.approx(EXPECTED[row[0].strip("`").split(":")[0]],
                                              rel=5e-6)
    gate_rows = [r for r in rows if r[0] in ("max", "baseline")]
    verdict = [line for line in text.splitlines() if "Gates: " in line]
    assert len(verdict) == 1, text
    if gates_failed is None:
        assert gate_rows == []
        assert "FAIL" not in text
        return
    assert [r[1].strip("`") for r in gate_rows] == ["mse", "mae"]
    # as many digits (at least 6) as tell the value from the limit
    assert float(gate_rows[0][2]) == pytest.approx(EXPECTED["mse"], rel=5e-6)
    assert float(gate_rows[0][3]) == pytest.approx(MSE_LIMIT, rel=5e-6)
    assert "FAIL" not in gate_rows[0][4]
    if gates_failed:
        assert "FAIL" in gate_rows[1][4]
        assert "FAIL" in verdict[0]
    else:
        assert "FAIL" not in gate_rows[1][4]
        assert "FAIL" not in verdict[0] and "pass" in verdict[0]


@pytest.mark.parametrize(("gates", "failed"), [(FAILING, True), (PASSING, False), ([], None)],
                         ids=["failing", "passing", "no-gates"])
def test_markdown(capfd: pytest.CaptureFixture[str], src: Path, gates: list[str],
                  failed: bool | None) -> None:
    rc, out, _ = evaluate(capfd, src, "markdown", *gates)
    assert rc == (1 if failed else 0)
    check_markdown(out, failed)


# --- csv -------------------------------------------------------------------------------------


def test_csv_round_trips_json_values(capfd: pytest.CaptureFixture[str], src: Path) -> None:
    rc, out, _ = evaluate(capfd, src, "json", *FAILING)
    doc = json.loads(out)
    rc_csv, text, _ = evaluate(capfd, src, "csv", *FAILING)
    assert rc == rc_csv == 1
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["spec"] for r in rows] == LOSSES
    for row, loss in zip(rows, doc["losses"], strict=True):
        assert float(row["value"]) == loss["value"]  # exactly, not approximately
        assert float(row["value"]) == pytest.approx(EXPECTED[row["spec"]], rel=1e-12)
        for key, value in loss["gradient"].items():
            cell = row[f"gradient_{key}"]
            if value is None:
                assert cell == ""
            else:
                assert float(cell) == value, key
    verdicts = {r["spec"]: r["passed"] for r in rows}
    assert verdicts == {"mse": "true", "mae": "false", "huber": ""}


# --- github ----------------------------------------------------------------------------------


def _commands(text: str) -> list[tuple[str, str, str]]:
    """(command, properties, data) of each workflow command line."""
    out = []
    for line in text.splitlines():
        assert line.startswith("::"), line
        head, sep, data = line[2:].partition("::")
        assert sep, line
        name, _, props = head.partition(" ")
        out.append((name, props, data))
    return out


def test_github_errors_only_for_failed_gates(capfd: pytest.CaptureFixture[str],
                                             src: Path) -> None:
    rc, out, _ = evaluate(capfd, src, "github", *FAILING)
    assert rc == 1
    errors = [c for c in _commands(out) if c[0] == "error"]
    assert len(errors) == 1
    data = errors[0][2]
    assert "mae" in data and "mse" not in data
    rc, out, _ = evaluate(capfd, src, "github", *PASSING)
    assert rc == 0
    assert [c for c in _commands(out) if c[0] == "error"] == []
    assert "::error" not in out


def test_github_properties_are_escaped(capfd: pytest.CaptureFixture[str],
                                       tmp_path: Path) -> None:
    """Property values escape ',' (and ':'), or a spec such as focal:gamma=3,alpha=0.25 splits
    the title into a bogus property (GitHub's toolkit: escapeProperty)."""
    path = tmp_path / "b.csv"
    path.write_text("y,p\n0,0.2\n1,0.7\n1,0.9\n0,0.4\n", encoding="utf-8")
    spec = "focal:gamma=3,alpha=0.25"
    rc, out, _ = cli(capfd, "eval", path, "--pred", "p", "--target", "y", "-l", spec, "-l", "bce",
                     "--max", f"{spec}=0.00001", "--format", "github")
    assert rc == 1
    known = {"title", "file", "line", "col", "endLine", "endColumn"}
    for _name, props, _data in _commands(out):
        if props:
            keys = [p.partition("=")[0] for p in props.split(",")]
            assert set(keys) <= known, props


# --- GitHub step summary ---------------------------------------------------------------------


def test_step_summary_appended(capfd: pytest.CaptureFixture[str], src: Path, tmp_path: Path,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    summary = tmp_path / "summary.md"
    earlier = "## an earlier step\n\nits text\n"
    summary.write_text(earlier, encoding="utf-8")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    rc, out, _ = evaluate(capfd, src, "json", *FAILING)
    assert rc == 1
    json.loads(out)  # stdout is the result only
    text = summary.read_text(encoding="utf-8")
    assert text.startswith(earlier)
    first = text[len(earlier):]
    check_markdown(first, True)
    # a second run appends again
    rc, _, _ = evaluate(capfd, src, "csv", *PASSING)
    assert rc == 0
    text = summary.read_text(encoding="utf-8")
    assert text.startswith(earlier + first)
    check_markdown(text[len(earlier + first):], False)


def test_step_summary_unwritable_keeps_exit_code(capfd: pytest.CaptureFixture[str], src: Path,
                                                 tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path))  # a directory
    rc, out, err = evaluate(capfd, src, "json", *PASSING)
    assert rc == 0
    assert json.loads(out)["passed"] is True
    assert "GITHUB_STEP_SUMMARY" in err and "Traceback" not in err


# --- colour ----------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_redirected_output_has_no_ansi(capfd: pytest.CaptureFixture[str], src: Path,
                                       fmt: str) -> None:
    assert not sys.stdout.isatty()
    rc, out, err = evaluate(capfd, src, fmt, *FAILING, "--show-config")
    assert rc == 1
    assert out
    assert "\x1b[" not in out
    assert "\x1b[" not in err


def pretend_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make stdout look like a colour terminal to losscli and to Rich. Called inside the test:
    capfd installs its sys.stdout only when the test body starts."""
    from rich.console import Console

    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    assert Console(file=sys.stdout).is_terminal  # the simulation works


COLOUR_SGR = re.compile(r"\x1b\[(?:[0-9;]*;)?(?:3[0-9]|4[0-9]|9[0-7]|10[0-7])(?:;[0-9;]*)?m")


def test_no_color_on_terminal_has_no_colour_codes(capfd: pytest.CaptureFixture[str],
                                                  src: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    assert COLOUR_SGR.search("\x1b[1;31m") and COLOUR_SGR.search("\x1b[36m")
    assert not COLOUR_SGR.search("\x1b[1m") and not COLOUR_SGR.search("\x1b[2;3m")
    pretend_terminal(monkeypatch)
    monkeypatch.setenv("NO_COLOR", "1")
    rc, out, _ = evaluate(capfd, src, "table", *FAILING, "--show-config")
    assert rc == 1
    assert "mse" in out
    assert COLOUR_SGR.findall(out) == []


def test_no_color_on_terminal_has_no_escape_codes(capfd: pytest.CaptureFixture[str],
                                                  src: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    pretend_terminal(monkeypatch)
    """The issue's contract: with NO_COLOR the output contains no ANSI escape at all."""
    monkeypatch.setenv("NO_COLOR", "1")
    rc, out, _ = evaluate(capfd, src, "table", *FAILING, "--show-config")
    assert rc == 1
    assert "mse" in out
    assert sorted(set(re.findall(r"\x1b\[[0-9;]*m", out))) == []


# --- --output --------------------------------------------------------------------------------


def _normalise(text: str, fmt: str) -> str:
    """Remove the run time, the only part that may differ between two runs."""
    if fmt == "json":
        return re.sub(r'"elapsed_seconds": [0-9.e-]+', '"elapsed_seconds": 0', text)
    if fmt == "junit":
        return re.sub(r'time="[^"]*"', 'time=""', text)
    return text


@pytest.mark.parametrize("fmt", FORMATS)
def test_output_file_equals_stdout(capfd: pytest.CaptureFixture[str], src: Path, tmp_path: Path,
                                   fmt: str) -> None:
    rc1, out, err1 = evaluate(capfd, src, fmt, *FAILING)
    dest = tmp_path / f"report.{fmt}"
    rc2, out2, err2 = evaluate(capfd, src, fmt, *FAILING, "--output", str(dest))
    assert rc1 == rc2 == 1
    assert out2 == ""
    assert err1 == err2
    written = dest.read_text(encoding="utf-8")
    assert written
    assert _normalise(written, fmt) == _normalise(out, fmt)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["preds.parquet", dest.name]


def test_output_json_is_the_same_document(capfd: pytest.CaptureFixture[str], src: Path,
                                          tmp_path: Path) -> None:
    _, out, _ = evaluate(capfd, src, "json", *FAILING)
    dest = tmp_path / "r.json"
    evaluate(capfd, src, "json", *FAILING, "-o", str(dest))
    a, b = json.loads(out), json.loads(dest.read_text(encoding="utf-8"))
    a.pop("elapsed_seconds")
    b.pop("elapsed_seconds")
    assert a == b

