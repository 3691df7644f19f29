"""Gates (losscli/gates.py) and their exit codes: ``--max``, ``--baseline``, ``--tolerance``.

Unit tests for Tolerance, parse_max and Gate messages, then the CLI end to end through
:func:`losscli.cli.run`. Expected loss values are computed here with NumPy from the inputs the
tests write, never read back from losscli's output.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from _helpers.cli import Result, assert_input_error, cli
from _helpers.references import huber

from losscli.errors import UsageError
from losscli.gates import Gate, Tolerance, distinct, parse_max

# Four rows whose losses are exact binary fractions, so boundaries (value == limit) are exact.
Y = np.array([1.0, 2.0, 3.0, 4.0])
PRED = np.array([1.5, 2.0, 2.0, 7.0])


E = PRED - Y
MSE = float(np.mean(E**2))  # 2.5625
MAE = float(np.mean(np.abs(E)))  # 1.125
HUBER1 = float(np.mean(huber(E, 1.0)))  # 0.78125
HUBER2 = float(np.mean(huber(E, 2.0)))  # 1.15625

GATE_FAILED = "losscli: gate failed:"
GATE_KEYS = ("loss", "kind", "limit", "value", "passed")
NUMBER = re.compile(r"(?<![\w.=])[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?(?![\w.])")


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No configuration file from the caller's directory, no GitHub step summary."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)


def parquet(path: Path, y: np.ndarray = Y, pred: np.ndarray = PRED) -> Path:
    pq.write_table(pa.table({"y": pa.array(y, pa.float64()),
                             "pred": pa.array(pred, pa.float64())}), path)
    return path


def baseline_file(path: Path, values: dict[str, float]) -> Path:
    """A minimal ``losscli.eval/1`` document with chosen loss values (spec -> value)."""
    doc = {"schema": "losscli.eval/1",
           "losses": [{"name": spec.split(":")[0], "spec": spec, "value": value}
                      for spec, value in values.items()]}
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def gates_of(result: Result) -> list[dict[str, Any]]:
    rc, out, err = result
    doc = json.loads(out)
    assert doc["passed"] is (rc == 0), (rc, doc["passed"], err)
    gates: list[dict[str, Any]] = doc["gates"]
    return gates


def failed_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith(GATE_FAILED)]


def numbers(text: str) -> list[float]:
    return [float(m) for m in NUMBER.findall(text)]


# --- Tolerance -------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "amount", "relative"), [
    ("2%", 2 / 100, True),
    ("0%", 0.0, True),
    ("12.5%", 0.125, True),
    (" 2% ", 2 / 100, True),
    ("0.01", 0.01, False),
    ("0", 0.0, False),
    ("1e-3", 0.001, False),
    (0.01, 0.01, False),  # a number from the configuration file
    (2, 2.0, False),
    (None, 0.0, False),  # the default
])
def test_tolerance_parse(text: str | float | None, amount: float, relative: bool) -> None:
    tol = Tolerance.parse(text)
    assert tol.amount == amount
    assert tol.relative is relative


@pytest.mark.parametrize("text", ["abc", "-1", "-2%", "nan", "inf", "%", "", "2%%", "2 percent"])
def test_tolerance_parse_rejects(text: str) -> None:
    with pytest.raises(UsageError, match="--tolerance"):
        Tolerance.parse(text)


def test_tolerance_limit_by_hand() -> None:
    base = 2.5
    assert Tolerance.parse("2%").limit(base) == pytest.approx(base + base * 0.02, rel=1e-15)
    assert Tolerance.parse("2%").limit(base) == pytest.approx(2.55, rel=1e-15)
    assert Tolerance.parse("0.01").limit(base) == pytest.approx(2.51, rel=1e-15)
    assert Tolerance.parse(None).limit(base) == base
    assert Tolerance.parse("100%").limit(1.28125) == 2.5625  # exact in binary


# --- parse_max -------------------------------------------------------------------------------


@pytest.mark.parametrize(("items", "expected"), [
    (["mse=0.25"], {"mse": 0.25}),
    (["mse = 0.25"], {"mse": 0.25}),
    (["mse=1e-3"], {"mse": 0.001}),
    (["huber:delta=2=0.3"], {"huber:delta=2": 0.3}),  # the value follows the last '='
    (["huber:delta=2.0=0.3"], {"huber:delta=2": 0.3}),
    (["huber:delta=1=0.5"], {"huber": 0.5}),  # parameters at their default are dropped
    (["quantile:q=0.9=1.5"], {"quantile:q=0.9": 1.5}),
    (["0.7*mse+0.3*mae=1"], {"0.7*mse+0.3*mae": 1.0}),
    (["mse=0.25", "mae=0.5"], {"mse": 0.25, "mae": 0.5}),
    ({"huber:delta=2.0": 0.3, "mse": 1}, {"huber:delta=2": 0.3, "mse": 1.0}),  # config table
])
def test_parse_max(items: list[str] | dict[str, float], expected: dict[str, float]) -> None:
    assert parse_max(items) == expected


@pytest.mark.parametrize(("item", "needle"), [
    ("mse", "LOSS=VALUE"),
    ("=0.3", "LOSS=VALUE"),
    ("mse=", "number"),
    ("mse=abc", "number"),
    ("mse=nan", "number"),
    ("msx=1", "'msx'"),
    ("huber:delta=2", "delta"),  # the limit was forgotten: 'huber:delta' is not a spec
])
def test_parse_max_rejects(item: str, needle: str) -> None:
    with pytest.raises(UsageError, match=re.escape(needle)):
        parse_max([item])


# --- messages --------------------------------------------------------------------------------


def test_message_digits_tell_value_and_limit_apart_in_the_9th_digit() -> None:
    value, limit = 0.123456789, 0.123456788
    msg = Gate("mse", "max", limit, value, False).message()
    nums = numbers(msg)
    assert value in nums and limit in nums, msg
    assert msg.index("0.123456789") < msg.index("0.123456788"), msg  # value, then limit


def test_message_digits_for_adjacent_floats() -> None:
    limit = 0.3
    value = float(np.nextafter(limit, 1.0))
    sv, sl = distinct(value, limit)
    assert sv != sl
    assert float(sv) == value and float(sl) == limit
    msg = Gate("mse", "max", limit, value, False).message()
    assert sv in msg and sl in msg


def test_message_of_equal_numbers_is_short() -> None:
    assert distinct(0.5625, 0.5625) == ("0.5625", "0.5625")
    assert "0.5625 <= max 0.5625" in Gate("mse", "max", 0.5625, 0.5625, True).message()


# --- --max through the CLI -------------------------------------------------------------------


@pytest.mark.parametrize(("limit", "rc"), [
    (MSE + 1.0, 0),
    (MSE, 0),  # boundary: value == limit passes
    (float(np.nextafter(MSE, 0.0)), 1),  # one ulp below fails
    (MSE - 1.0, 1),
])
def test_max_gate(capfd: pytest.CaptureFixture[str], tmp_path: Path, limit: float,
                  rc: int) -> None:
    src = parquet(tmp_path / "p.parquet")
    result = cli(capfd, "eval", src, "-l", "mse", "-l", "mae", "--max", f"mse={limit!r}",
                 "-f", "json")
    assert result[0] == rc, result
    [gate] = gates_of(result)
    assert {k: gate[k] for k in GATE_KEYS} == {"loss": "mse", "kind": "max", "limit": limit,
                                                "value": MSE, "passed": rc == 0}
    assert len(failed_lines(result[2])) == rc


@pytest.mark.parametrize(("limit", "rc"), [(HUBER2, 0), (HUBER2 - 0.01, 1)])
def test_max_full_spec_value_after_last_equals(capfd: pytest.CaptureFixture[str],
                                               tmp_path: Path, limit: float, rc: int) -> None:
    src = parquet(tmp_path / "p.parquet")
    result = cli(capfd, "eval", src, "-l", "huber", "-l", "huber:delta=2",
                 "--max", f"huber:delta=2={limit!r}", "-f", "json")
    assert result[0] == rc, result
    [gate] = gates_of(result)
    assert (gate["loss"], gate["limit"], gate["value"]) == ("huber:delta=2", limit, HUBER2)
    assert HUBER1 != HUBER2  # the gate is on delta=2, not on the default huber


@pytest.mark.parametrize(("loss", "gate_spec", "value"), [
    ("huber", "huber:delta=1", HUBER1),
    ("huber:delta=1", "huber", HUBER1),
    ("huber:delta=1.0", "huber:delta=1", HUBER1),
    ("huber:delta=2", "huber:delta=2.00", HUBER2),
    ("0.7*mse+0.3*mae", "0.70*mse+0.3*mae", 0.7 * MSE + 0.3 * MAE),
])
def test_max_matches_canonical_spec(capfd: pytest.CaptureFixture[str], tmp_path: Path, loss: str,
                                    gate_spec: str, value: float) -> None:
    src = parquet(tmp_path / "p.parquet")
    result = cli(capfd, "eval", src, "-l", loss, "--max", f"{gate_spec}=100", "-f", "json")
    assert result[0] == 0, result
    [gate] = gates_of(result)
    assert gate["value"] == pytest.approx(value, rel=1e-14)
    assert gate["passed"] is True
    assert json.loads(result[1])["losses"][0]["spec"] == gate["loss"]


@pytest.mark.parametrize(("losses", "gate_spec"), [
    (["mse"], "mae"),
    (["huber:delta=2"], "huber"),  # a different parameter is a different loss
    (["huber"], "huber:delta=2"),
    ([], "bce"),  # default losses of a regression file do not include bce
])
def test_max_on_loss_not_evaluated_is_usage_error(capfd: pytest.CaptureFixture[str],
                                                  tmp_path: Path, losses: list[str],
                                                  gate_spec: str) -> None:
    src = parquet(tmp_path / "p.parquet")
    args = [a for spec in losses for a in ("-l", spec)]
    assert_input_error(cli(capfd, "eval", src, *args, "--max", f"{gate_spec}=1"),
                       f"--max {gate_spec}", "not evaluated")


def test_max_on_loss_not_evaluated_writes_no_output_file(capfd: pytest.CaptureFixture[str],
                                                         tmp_path: Path) -> None:
    src = parquet(tmp_path / "p.parquet")
    dest = tmp_path / "report.json"
    assert_input_error(cli(capfd, "eval", src, "-l", "mse", "--max", "mae=1", "-f", "json",
                           "-o", dest), "mae")
    assert not dest.exists()


def test_one_stderr_line_per_failed_gate(capfd: pytest.CaptureFixture[str],
                                         tmp_path: Path) -> None:
    src = parquet(tmp_path / "p.parquet")
    rc, out, err = cli(capfd, "eval", src, "-l", "mse", "-l", "mae", "-l", "huber",
                       "--max", "mse=2", "--max", "mae=2", "--max", "huber=0.5")
    assert rc == 1
    assert "mse" in out and "huber" in out  # the report is still printed, on stdout
    assert GATE_FAILED not in out
    lines = failed_lines(err)
    assert len(lines) == 2, err
    by_loss = {line.split()[3]: line for line in lines}
    assert set(by_loss) == {"mse", "huber"}  # mae passed: no line
    assert MSE in numbers(by_loss["mse"]) and 2.0 in numbers(by_loss["mse"])
    assert HUBER1 in numbers(by_loss["huber"]) and 0.5 in numbers(by_loss["huber"])


def test_stderr_digits_distinguish_value_and_limit(capfd: pytest.CaptureFixture[str],
                                                   tmp_path: Path) -> None:
    src = parquet(tmp_path / "p.parquet")
    limit = 2.56249999  # MSE = 2.5625: the two differ in the 9th significant digit
    assert f"{MSE:.8g}" == f"{limit:.8g}"
    rc, out, err = cli(capfd, "eval", src, "-l", "mse", "--max", f"mse={limit}")
    assert rc == 1
    [line] = failed_lines(err)
    nums = numbers(line)
    assert MSE in nums and limit in nums, line
    assert "2.56249999" in out  # the table's gate row shows the limit with its digits too


# --- --baseline through the CLI --------------------------------------------------------------


@pytest.mark.parametrize(("base", "tolerance", "fraction"), [
    (2.5, "2%", 0.02),  # limit 2.55 < 2.5625
    (2.5, "3%", 0.03),  # limit 2.575
    (1.28125, "100%", 1.0),  # limit exactly 2.5625: boundary passes
    (1.28125, "99.9%", 0.999),
    (2.6, "0%", 0.0),  # better than the baseline
])
def test_baseline_relative_tolerance(capfd: pytest.CaptureFixture[str], tmp_path: Path,
                                     base: float, tolerance: str, fraction: float) -> None:
    src = parquet(tmp_path / "p.parquet")
    bl = baseline_file(tmp_path / "base.json", {"mse": base})
    limit = base + abs(base) * fraction
    expect_pass = limit >= MSE
    result = cli(capfd, "eval", src, "-l", "mse", "--baseline", bl, "--tolerance", tolerance,
                 "-f", "json")
    assert result[0] == (0 if expect_pass else 1), result
    [gate] = gates_of(result)
    assert (gate["loss"], gate["kind"], gate["value"], gate["passed"]) == (
        "mse", "baseline", MSE, expect_pass)
    assert gate["limit"] == pytest.approx(limit, rel=1e-15)


@pytest.mark.parametrize(("base", "tolerance", "amount"), [
    (2.5, "0.06", 0.06),
    (2.5, "0.07", 0.07),
    (2.5, "0.0625", 0.0625),  # limit exactly 2.5625: boundary passes
    (2.5, None, 0.0),  # default tolerance 0
    (MSE, None, 0.0),  # unchanged: passes
    (float(np.nextafter(MSE, 0.0)), None, 0.0),  # worse by one ulp: fails
])
def test_baseline_absolute_tolerance(capfd: pytest.CaptureFixture[str], tmp_path: Path,
                                     base: float, tolerance: str | None, amount: float) -> None:
    src = parquet(tmp_path / "p.parquet")
    bl = baseline_file(tmp_path / "base.json", {"mse": base})
    limit = base + amount
    expect_pass = limit >= MSE
    tol = [] if tolerance is None else ["--tolerance", tolerance]
    result = cli(capfd, "eval", src, "-l", "mse", "--baseline", bl, *tol, "-f", "json")
    assert result[0] == (0 if expect_pass else 1), result
    [gate] = gates_of(result)
    assert gate["passed"] is expect_pass
    assert gate["limit"] == pytest.approx(limit, rel=1e-15)
    assert len(failed_lines(result[2])) == (0 if expect_pass else 1)


def test_baseline_loss_missing_fails_with_message(capfd: pytest.CaptureFixture[str],
                                                  tmp_path: Path) -> None:
    src = parquet(tmp_path / "p.parquet")
    bl = baseline_file(tmp_path / "base.json", {"mse": 10.0, "huber:delta=2": 10.0})
    result = cli(capfd, "eval", src, "-l", "mse", "-l", "mae", "-l", "huber", "--baseline", bl,
                 "-f", "json")
    rc, _, err = result
    assert rc == 1
    gates = {g["loss"]: g for g in gates_of(result)}
    assert set(gates) == {"mse", "mae", "huber"}
    assert gates["mse"]["passed"] is True
    for spec in ("mae", "huber"):  # huber (delta=1) is not huber:delta=2
        assert gates[spec]["passed"] is False
        assert gates[spec]["kind"] == "baseline"
    lines = failed_lines(err)
    assert len(lines) == 2, err
    for line in lines:
        assert "missing from the baseline" in line
    assert {line.split()[3] for line in lines} == {"mae", "huber"}


def test_baseline_recorded_by_losscli_round_trips(capfd: pytest.CaptureFixture[str],
                                                  tmp_path: Path) -> None:
    src = parquet(tmp_path / "p.parquet")
    bl = tmp_path / "baseline.json"
    rc, out, err = cli(capfd, "eval", src, "-f", "json", "--output", bl)
    assert (rc, out, err) == (0, "", "")
    recorded = json.loads(bl.read_text(encoding="utf-8"))["losses"]
    result = cli(capfd, "eval", src, "--baseline", bl, "-f", "json")
    assert result[0] == 0, result
    gates = gates_of(result)
    assert [g["loss"] for g in gates] == [r["spec"] for r in recorded]
    for g, r in zip(gates, recorded, strict=True):
        assert g["kind"] == "baseline" and g["passed"] is True
        assert g["limit"] == r["value"] == g["value"]  # tolerance 0: the baseline value itself


def test_baseline_spec_is_canonical(capfd: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    src = parquet(tmp_path / "p.parquet")
    bl = tmp_path / "baseline.json"
    assert cli(capfd, "eval", src, "-l", "huber", "-l", "huber:delta=2.0", "-f", "json",
               "-o", bl)[0] == 0
    result = cli(capfd, "eval", src, "-l", "huber:delta=1.0", "-l", "huber:delta=2",
                 "--baseline", bl, "-f", "json")
    assert result[0] == 0, result
    assert [(g["loss"], g["passed"]) for g in gates_of(result)] == [
        ("huber", True), ("huber:delta=2", True)]


def test_baseline_uses_unrounded_values(capfd: pytest.CaptureFixture[str],
                                        tmp_path: Path) -> None:
    """Worse by ~1e-7 relative (invisible at 6 digits) still fails, and the message shows it."""
    rng = np.random.default_rng(7)
    y = rng.normal(10.0, 2.0, 500)
    noise = rng.normal(0.0, 0.5, 500)
    before = parquet(tmp_path / "before.parquet", y, y + noise)
    after = parquet(tmp_path / "after.parquet", y, y + noise + 1e-8 * np.sign(noise))
    e0, e1 = noise, noise + 1e-8 * np.sign(noise)
    mse0, mse1 = float(np.mean(e0**2)), float(np.mean(e1**2))
    mae0, mae1 = float(np.mean(np.abs(e0))), float(np.mean(np.abs(e1)))
    assert 1e-9 < mse1 / mse0 - 1 < 1e-6 and 1e-9 < mae1 / mae0 - 1 < 1e-6
    assert f"{mse0:.6g}" == f"{mse1:.6g}" and f"{mae0:.6g}" == f"{mae1:.6g}"
    bl = tmp_path / "baseline.json"
    assert cli(capfd, "eval", before, "-l", "mse", "-l", "mae", "-f", "json", "-o", bl)[0] == 0
    result = cli(capfd, "eval", after, "-l", "mse", "-l", "mae", "--baseline", bl, "-f", "json")
    rc, _, err = result
    assert rc == 1, result
    gates = {g["loss"]: g for g in gates_of(result)}
    assert gates["mse"]["value"] == pytest.approx(mse1, rel=1e-12)
    assert gates["mse"]["limit"] == pytest.approx(mse0, rel=1e-12)
    assert gates["mae"]["value"] == pytest.approx(mae1, rel=1e-12)
    assert not gates["mse"]["passed"] and not gates["mae"]["passed"]
    lines = failed_lines(err)
    assert len(lines) == 2
    for line, value, limit in zip(lines, (mse1, mae1), (mse0, mae0), strict=True):
        shown = [n for n in numbers(line) if n == pytest.approx(value, rel=1e-6)]
        # the printed value and limit differ, are ordered as the verdict says, and are
        # each within the rounding of their digits of the true numbers
        assert len(set(shown)) >= 2, line
        assert max(shown) == pytest.approx(value, rel=1e-6), line
        assert min(shown) == pytest.approx(limit, rel=1e-6), line


def test_baseline_message_digits(capfd: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    src = parquet(tmp_path / "p.parquet")
    bl = baseline_file(tmp_path / "base.json", {"mse": 2.56249999})
    rc, _, err = cli(capfd, "eval", src, "-l", "mse", "--baseline", bl)
    assert rc == 1
    [line] = failed_lines(err)
    assert MSE in numbers(line) and 2.56249999 in numbers(line), line


# --- every exit code -------------------------------------------------------------------------


def test_exit_0_when_every_gate_passes(capfd: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    src = parquet(tmp_path / "p.parquet")
    bl = baseline_file(tmp_path / "base.json", {"mse": MSE, "mae": MAE})
    rc, out, err = cli(capfd, "eval", src, "-l", "mse", "-l", "mae", "--max", f"mse={MSE}",
                       "--max", "mae=2", "--baseline", bl)
    assert (rc, err) == (0, "")
    assert "mse" in out


def test_exit_1_when_a_gate_fails(capfd: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    src = parquet(tmp_path / "p.parquet")
    bl = baseline_file(tmp_path / "base.json", {"mse": MSE, "mae": MAE - 0.1})
    rc, out, err = cli(capfd, "eval", src, "-l", "mse", "-l", "mae", "--max", "mse=3",
                       "--baseline", bl)
    assert rc == 1
    assert "mae" in out
    [line] = failed_lines(err)
    assert line.split()[3] == "mae"
    assert err.count("\n") == 1  # nothing else on stderr


@pytest.mark.parametrize(("args", "needles"), [
    (["--max", "mse"], ("LOSS=VALUE", "'mse'")),
    (["--max", "mse=low"], ("--max mse", "'low'")),
    (["--max", "msx=1"], ("'msx'",)),
    (["--max", "mae=1"], ("mae", "not evaluated")),
    (["--tolerance", "abc"], ("--tolerance", "'abc'")),
    (["--tolerance=-1%"], ("--tolerance", ">= 0")),
    (["--format", "xml"], ("--format", "'xml'")),
])
def test_exit_2_usage(capfd: pytest.CaptureFixture[str], tmp_path: Path, args: list[str],
                      needles: tuple[str, ...]) -> None:
    src = parquet(tmp_path / "p.parquet")
    assert_input_error(cli(capfd, "eval", src, "-l", "mse", *args), *needles)


def test_exit_2_baseline_missing(capfd: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    src = parquet(tmp_path / "p.parquet")
    missing = tmp_path / "nope.json"
    assert_input_error(cli(capfd, "eval", src, "-l", "mse", "--baseline", missing),
                       str(missing), "no such file")


@pytest.mark.parametrize("text", ["not json", '{"losses": []}', "[1, 2]",
                                  '{"schema": "losscli.eval/1", "losses": [{"value": 1}]}'],
                         ids=["not-json", "no-schema", "a-list", "entry-without-spec"])
def test_exit_2_baseline_not_a_report(capfd: pytest.CaptureFixture[str], tmp_path: Path,
                                      text: str) -> None:
    src = parquet(tmp_path / "p.parquet")
    bl = tmp_path / "base.json"
    bl.write_text(text, encoding="utf-8")
    assert_input_error(cli(capfd, "eval", src, "-l", "mse", "--baseline", bl),
                       f"baseline {bl}")


@pytest.mark.parametrize("text", ["[" * 100_000 + "]" * 100_000,
                                  '{"schema": "losscli.eval/1", "losses": [{"spec": "mse", '
                                  '"value": 1, "x": ' + "[" * 100_000 + "]" * 100_000 + "}]}"],
                         ids=["top-level", "inside-an-entry"])
def test_deeply_nested_baseline_json_is_refused(capfd: pytest.CaptureFixture[str],
                                                tmp_path: Path, text: str) -> None:
    """Found by fuzzing: json's decoder raised RecursionError, an internal error (exit 3)."""
    src = parquet(tmp_path / "p.parquet")
    bl = tmp_path / "base.json"
    bl.write_text(text, encoding="utf-8")
    assert_input_error(cli(capfd, "eval", src, "-l", "mse", "--baseline", bl),
                       f"baseline {bl}", "nested too deeply")


@pytest.mark.parametrize("target", ["check", "load_baseline"])
def test_exit_3_internal_error(capfd: pytest.CaptureFixture[str], tmp_path: Path,
                               monkeypatch: pytest.MonkeyPatch, target: str) -> None:
    import losscli.gates

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("gate bug")

    monkeypatch.setattr(losscli.gates, target, boom)
    monkeypatch.delenv("LOSSCLI_DEBUG", raising=False)
    src = parquet(tmp_path / "p.parquet")
    bl = baseline_file(tmp_path / "base.json", {"mse": MSE})
    rc, out, err = cli(capfd, "eval", src, "-l", "mse", "--max", "mse=3", "--baseline", bl)
    assert rc == 3
    assert out == ""
    assert "internal error" in err and "RuntimeError: gate bug" in err
    assert "Traceback" not in err
    assert GATE_FAILED not in err
