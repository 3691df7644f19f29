"""Odd and hostile inputs: no silent wrong value, no crash, no harm to the files around it.

Each test is the regression test of one defect class; values are checked against independent
references (scikit-learn, exact rational arithmetic with ``fractions.Fraction``, hand formulas).
"""

from __future__ import annotations

import json
import math
import os
import stat
import subprocess
import sys
import warnings
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from _helpers.cli import assert_input_error, cli

from losscli.render.ci import junit
from losscli.state import ExactSum, bucket_value

# --- weights near the float64 limits (scale-invariant weighted means and norms) ---------------

W_ROWS = [(1.0, 2.0), (3.0, 5.0), (2.0, 2.5)]  # (y, pred)


def _weighted_reference(weights: list[float], loss: str) -> tuple[float, float]:
    """(sum w l / sum w, sqrt(sum (w g)^2) / sum w) in exact rational arithmetic; only the
    logarithm of poisson is taken in floats, row by row."""
    ws = [Fraction(w) for w in weights]
    ls: list[Fraction] = []
    gs: list[Fraction] = []
    for y, p in W_ROWS:
        fy, fp = Fraction(y), Fraction(p)
        if loss == "mse":
            ls.append((fp - fy) ** 2)
            gs.append(2 * (fp - fy))
        else:  # poisson deviance 2 (y log(y/mu) - y + mu), gradient 2 (1 - y/mu)
            ls.append(2 * (fy * Fraction(math.log(y / p)) - fy + fp))
            gs.append(2 * (1 - fy / fp))
    total = sum(ws)
    mean = sum(w * v for w, v in zip(ws, ls, strict=True)) / total
    norm2 = sum((w * g) ** 2 for w, g in zip(ws, gs, strict=True)) / total**2
    return float(mean), math.sqrt(float(norm2))


@pytest.mark.parametrize("weights", [
    [1e308, 1e308, 1e308],      # sum w overflows: poisson read 0.0, mse null
    [1e308, 5e307, 1.7e308],
    [1e-200, 3e-200, 2e-200],   # (w g)^2 underflows: the norm read 0.0
    [5e-324, 1e-323, 5e-324],   # subnormal weights
    [1e300, 1.0, 1e-300],       # a range wider than the float64 exponent
])
@pytest.mark.parametrize("loss", ["mse", "poisson"])
def test_extreme_weights_give_the_exact_weighted_mean_and_norm(
        capfd: pytest.CaptureFixture[str], tmp_path: Path, weights: list[float],
        loss: str) -> None:
    f = tmp_path / "w.csv"
    f.write_text("y,p,w\n" + "".join(f"{y!r},{p!r},{w!r}\n"
                                     for (y, p), w in zip(W_ROWS, weights, strict=True)))
    for chunk in ("1", "131072"):
        rc, out, err = cli(capfd, "eval", f, "--weight", "w", "--loss", loss, "-f", "json",
                           "--chunk-rows", chunk)
        assert rc == 0, err
        got = json.loads(out)["losses"][0]
        mean, norm = _weighted_reference(weights, loss)
        assert got["value"] == pytest.approx(mean, rel=1e-14)
        assert got["gradient"]["norm"] == pytest.approx(norm, rel=1e-14)


@pytest.mark.parametrize("weight", [2.0, 1e10, 2.0**64])
def test_weight_times_a_huge_loss_is_not_read_as_inf(capfd: pytest.CaptureFixture[str],
                                                      tmp_path: Path, weight: float) -> None:
    """A per-row loss near the float64 maximum on a row of weight above 1: w l passes the
    maximum, the weighted mean does not (fuzzing found it reported as inf, null in JSON)."""
    big = 9.480751908109177e153  # its square, 8.99e307, is the row's mse
    f = tmp_path / "w.csv"
    f.write_text("y,p,w\n" + "0,0,0\n" * 29 + f"0,{big!r},{weight!r}\n")
    rc, out, err = cli(capfd, "eval", f, "--weight", "w", "--loss", "mse", "--loss", "mae",
                       "-f", "json")
    assert rc == 0, err
    mse, mae = json.loads(out)["losses"]
    exact = Fraction(big) ** 2  # weights 0 except this row: the mean is its loss
    assert mse["value"] == pytest.approx(float(exact), rel=1e-15)
    assert mae["value"] == pytest.approx(big, rel=1e-15)
    assert mse["gradient"]["norm"] == pytest.approx(2 * big, rel=1e-15)  # |w g| / w


def test_extreme_weights_still_fail_a_gate(capfd: pytest.CaptureFixture[str],
                                           tmp_path: Path) -> None:
    f = tmp_path / "w.csv"
    f.write_text("y,p,w\n1,2,1e308\n3,5,1e308\n")
    rc, _, err = cli(capfd, "eval", f, "--weight", "w", "--loss", "poisson",
                     "--max", "poisson=0.1")
    assert rc == 1, err
    assert "poisson = 0.77437" in err


@pytest.mark.parametrize("scale", [2.0**1022, 2.0**-1060, 1.0])
def test_recommend_class_values_with_extreme_weights(capfd: pytest.CaptureFixture[str],
                                                     tmp_path: Path, scale: float) -> None:
    """bce and cce candidate values of recommend (per-class sums) with weights near the float64
    limits: scikit-learn's log_loss with the same weights at ordinary size (a power-of-two
    scale changes nothing exactly)."""
    from sklearn.metrics import log_loss

    w = [3.0, 1.0, 2.0, 0.5, 1.5]
    y = [0, 1, 1, 0, 1]
    p = [0.2, 0.7, 0.9, 0.4, 0.35]
    f = tmp_path / "b.csv"
    f.write_text("y,p,w\n" + "".join(f"{a},{b!r},{c * scale!r}\n"
                                     for a, b, c in zip(y, p, w, strict=True)))
    rc, out, err = cli(capfd, "recommend", f, "--weight", "w", "-f", "json", "--chunk-rows", "2")
    assert rc == 0, err
    expected = log_loss(y, p, sample_weight=w)
    assert json.loads(out)["recommended"]["value"] == pytest.approx(expected, rel=1e-14)
    probs = [[1 - x, x * 0.5, x * 0.5] for x in p]
    m = tmp_path / "m.csv"
    m.write_text("label,prob_0,prob_1,prob_2,w\n" + "".join(
        f"{2 * a},{','.join(map(repr, row))},{c * scale!r}\n"
        for a, row, c in zip(y, probs, w, strict=True)))
    rc, out, err = cli(capfd, "recommend", m, "--weight", "w", "-f", "json")
    assert rc == 0, err
    expected = log_loss([2 * a for a in y], probs, sample_weight=w, labels=[0, 1, 2])
    assert json.loads(out)["recommended"]["value"] == pytest.approx(expected, rel=1e-14)


def _weight_chunks(kind: str) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(5)
    if kind == "scales":
        return [(rng.normal(size=7), rng.normal(size=7), rng.uniform(0.5, 2.0, 7) * scale)
                for scale in (1e-300, 1.0, 1e300, 1e-160, 5e-310)]
    # found by Hypothesis: zero weights, then the smallest subnormal (w l rounds up in floats)
    return [(np.array([0.0]), np.array([0.0]), np.array([0.0])),
            (np.array([0.9]), np.array([0.0]), np.array([5e-324])),
            (rng.normal(size=3), rng.normal(size=3), rng.uniform(0.5, 2.0, 3))]


@pytest.mark.parametrize("kind", ["scales", "subnormal"])
def test_merge_is_exact_for_weights_of_any_scale(kind: str) -> None:
    """States built from chunks whose weights differ by up to 2**2000 have bit-identical sums
    however the chunks are ordered, grouped and merged: each chunk is summed at its own weight
    scale, and rescaling the integer sums is exact."""
    from itertools import permutations

    from losscli.losses import Batch
    from losscli.spec import parse_spec
    from losscli.state import EvalState

    chunks = _weight_chunks(kind)
    specs = [parse_spec(s) for s in ("mse", "mae", "huber", "log_cosh", "0.5*mse+0.5*mae")]

    def build(order: tuple[int, ...], split: int) -> list[int]:
        """The exact integer sums and the weight scale they are at."""
        left, right = EvalState(specs), EvalState(specs)
        for k, i in enumerate(order):
            pred, target, w = chunks[i]
            (left if k < split else right).update(Batch(pred, target, w))
        left.merge(right)
        out = [left.weight_exp, left.weight_sum.units]
        for st in left.losses:
            out += [st.value.units, st.grad.sq_weighted.units]
        return out

    ref = build(tuple(range(len(chunks))), len(chunks))
    for order in permutations(range(len(chunks))):
        for split in range(len(chunks) + 1):
            assert build(order, split) == ref, (order, split)


def test_exact_sum_survives_overflow_and_infinities() -> None:
    s = ExactSum()
    for _ in range(3):
        s.add(1.7e308)
    assert s.value == math.inf  # 5.1e308 is beyond float64: +inf, not an exception
    n = ExactSum()
    n.add(3.0)
    assert s.ratio(n) == float(Fraction(1.7e308) * 3 / 3)
    s.add(-1.7e308)
    s.add(-1.7e308)
    assert s.value == 1.7e308
    s.add(math.inf)
    s.add(-math.inf)
    assert math.isnan(s.value)


# --- logits of +-1e308 -------------------------------------------------------------------------

LOGIT_ROWS = [(0, 1e308), (1, -1e308), (0, -3.0), (1, 2.0)]


def _bce_logits_reference() -> float:
    """mean of softplus(z) - y z = max(z, 0) - y z + log1p(exp(-|z|)), summed exactly."""
    total = sum(Fraction(max(z, 0.0)) - y * Fraction(z) + Fraction(math.log1p(math.exp(-abs(z))))
                for y, z in LOGIT_ROWS)
    return float(total / len(LOGIT_ROWS))


def test_recommend_and_eval_on_logits_of_1e308(capfd: pytest.CaptureFixture[str],
                                               tmp_path: Path) -> None:
    f = tmp_path / "logits.csv"
    f.write_text("y,logit\n" + "".join(f"{y},{z!r}\n" for y, z in LOGIT_ROWS))
    ref = _bce_logits_reference()  # 5e307: finite although sum l is not
    rc, out, err = cli(capfd, "recommend", f, "--logits", "-f", "json")
    assert rc == 0, err
    assert json.loads(out)["recommended"]["value"] == pytest.approx(ref, rel=1e-15)
    rc, out, err = cli(capfd, "eval", f, "--logits", "--loss", "bce", "-f", "json")
    assert rc == 0, err
    assert json.loads(out)["losses"][0]["value"] == pytest.approx(ref, rel=1e-15)


# --- no RuntimeWarning on stderr ---------------------------------------------------------------


def test_infinite_residuals_warn_nothing_under_quiet(tmp_path: Path) -> None:
    f = tmp_path / "inf.csv"
    f.write_text("y,p\n" + "".join("1e308,-1e308\n-1e308,1e308\n" for _ in range(50)))
    for command in ("eval", "recommend"):
        proc = subprocess.run([sys.executable, "-W", "error::RuntimeWarning", "-m", "losscli",
                               command, str(f), "--quiet"],
                              capture_output=True, text=True, timeout=60, check=False)
        assert proc.returncode == 0, proc.stderr
        assert proc.stderr == ""


def test_histogram_bucket_of_infinity_is_infinity() -> None:
    keys = np.right_shift(np.array([np.inf, np.finfo(np.float64).max]).view(np.int64), 45)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        values = bucket_value(keys)
    assert values[0] == math.inf
    assert math.isfinite(values[1]) and values[1] <= np.finfo(np.float64).max



# --- the command line contract ----------------------------------------------------------------


def _csv(tmp_path: Path, text: str = "y,pred\n1,1.5\n2,2\n3,2\n4,5\n") -> Path:
    f = tmp_path / "data.csv"
    f.write_text(text)
    return f


@pytest.mark.parametrize(("args", "needles"), [
    (["--chunk-rows", "abc"], ("--chunk-rows", "'abc'", "--help")),
    (["--nan", "foo"], ("--nan", "'foo'")),
    (["--bogus"], ("--bogus",)),
    (["--format"], ("--format", "requires an argument")),
    (["--output", "."], ("--output", "directory")),
])
def test_option_parsing_errors_are_one_line(capfd: pytest.CaptureFixture[str], tmp_path: Path,
                                            args: list[str], needles: tuple[str, ...]) -> None:
    assert_input_error(cli(capfd, "eval", _csv(tmp_path), *args), *needles)


def test_unknown_command_and_missing_argument_are_one_line(
        capfd: pytest.CaptureFixture[str]) -> None:
    assert_input_error(cli(capfd, "nope"), "'nope'")
    assert_input_error(cli(capfd, "eval"), "SOURCE")


@pytest.mark.parametrize("pred", [",", " , ,"])
def test_pred_naming_no_column_is_a_usage_error(capfd: pytest.CaptureFixture[str],
                                                tmp_path: Path, pred: str) -> None:
    assert_input_error(cli(capfd, "eval", _csv(tmp_path), "--pred", pred), "--pred",
                       "names no column")


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
@pytest.mark.parametrize("command", ["eval", "recommend"])
def test_huge_chunk_rows_work(capfd: pytest.CaptureFixture[str], tmp_path: Path, fmt: str,
                              command: str) -> None:
    src = _csv(tmp_path)
    if fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        src = tmp_path / "data.parquet"
        pq.write_table(pa.table({"y": [1.0, 2, 3, 4], "pred": [1.5, 2, 2, 5]}), src)
    rc, out, err = cli(capfd, command, src, "--chunk-rows", "99999999999999999999", "-f", "json")
    assert rc == 0, err
    if command == "eval":
        mse = json.loads(out)["losses"][0]
        assert mse["spec"] == "mse" and mse["value"] == pytest.approx(0.5625, rel=1e-15)


def test_a_loss_parameter_given_twice_is_refused(capfd: pytest.CaptureFixture[str],
                                                 tmp_path: Path) -> None:
    assert_input_error(cli(capfd, "eval", _csv(tmp_path), "--loss", "huber:delta=1,delta=2"),
                       "'delta'", "twice")


def test_pyproject_that_is_not_utf8(capfd: pytest.CaptureFixture[str], tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    src = _csv(tmp_path)
    (tmp_path / "pyproject.toml").write_bytes(b"[tool.losscli]\npred = \"\xff\xfe\"\n")
    monkeypatch.chdir(tmp_path)
    assert_input_error(cli(capfd, "eval", src), "pyproject.toml", "UTF-8")


# --- baselines ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("losses", "needles"), [
    ("5", ("'losses' must be a list",)),
    ("null", ("'losses' must be a list",)),
    ('{"mse": 1}', ("'losses' must be a list",)),
    ('[{"spec": "mse", "value": "0.5"}]', ("'mse'", "number or null")),
    ('[{"spec": "mse", "value": true}]', ("'mse'", "number or null")),
    ('[{"spec": "mse", "value": 1' + "0" * 400 + "}]", ("'mse'", "float64 range")),
    ('[{"spec": "mse", "value": 1' + "0" * 5000 + "}]", ("not a losscli JSON report",)),
    ("[5]", ("lacks 'spec' or 'value'",)),
], ids=["number", "null", "object", "string-value", "bool-value", "400-digits", "5000-digits",
        "number-entry"])
def test_malformed_baseline_is_an_input_error(capfd: pytest.CaptureFixture[str], tmp_path: Path,
                                              losses: str, needles: tuple[str, ...]) -> None:
    base = tmp_path / "base.json"
    base.write_text('{"schema": "losscli.eval/1", "losses": ' + losses + "}")
    assert_input_error(cli(capfd, "eval", _csv(tmp_path), "--loss", "mse", "--baseline", base),
                       "baseline", *needles)


def test_baseline_null_is_reported_as_null_not_missing(capfd: pytest.CaptureFixture[str],
                                                       tmp_path: Path) -> None:
    base = tmp_path / "base.json"
    base.write_text(json.dumps({"schema": "losscli.eval/1", "losses": [
        {"spec": "mse", "value": None}, {"spec": "mae", "value": 0.625}]}))
    rc, out, err = cli(capfd, "eval", _csv(tmp_path), "-l", "mse", "-l", "mae", "-l", "huber",
                       "--baseline", base, "-f", "json")
    assert rc == 1
    gates = {g["loss"]: g for g in json.loads(out)["gates"]}
    assert "recorded no value (null)" in gates["mse"]["detail"] and not gates["mse"]["passed"]
    assert gates["mae"]["passed"]
    assert "missing from the baseline" in gates["huber"]["detail"]
    assert "mse = 0.5625: the baseline recorded no value (null)" in err


# --- output files -------------------------------------------------------------------------------


def test_output_where_no_file_can_be_created_fails_before_the_pass(
        capfd: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    # the source would fail too, later: the --output error must come first
    src = _csv(tmp_path, "y,pred\n1,abc\n")
    assert_input_error(cli(capfd, "eval", src, "-o", "/proc/losscli-out.json"),
                       "--output /proc/losscli-out.json", "cannot create a file in /proc")


def test_output_to_dev_stdout_on_a_pipe_is_written_through(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "losscli", "eval", str(_csv(tmp_path)), "-l",
                           "mse", "-f", "json", "-o", "/dev/stdout"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["losses"][0]["value"] == 0.5625


def test_output_to_a_fifo_writes_through_and_keeps_the_fifo(capfd: pytest.CaptureFixture[str],
                                                            tmp_path: Path) -> None:
    import threading

    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()), daemon=True)
    reader.start()
    rc, _, err = cli(capfd, "eval", _csv(tmp_path), "-l", "mse", "-f", "json", "-o", fifo)
    assert rc == 0, err
    reader.join(timeout=10)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)  # not replaced by a regular file
    assert got and json.loads(got[0])["losses"][0]["value"] == 0.5625
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.csv", "out.fifo"]


@pytest.mark.parametrize("umask", [0o022, 0o027, 0o077])
def test_output_file_honours_the_umask(capfd: pytest.CaptureFixture[str], tmp_path: Path,
                                       umask: int) -> None:
    dest = tmp_path / "report.json"
    old = os.umask(umask)
    try:
        rc, _, err = cli(capfd, "eval", _csv(tmp_path), "-f", "json", "-o", dest)
    finally:
        os.umask(old)
    assert rc == 0, err
    assert stat.S_IMODE(dest.stat().st_mode) == 0o666 & ~umask


def test_replaced_output_file_keeps_its_permissions(capfd: pytest.CaptureFixture[str],
                                                    tmp_path: Path) -> None:
    dest = tmp_path / "report.json"
    dest.write_text("old")
    dest.chmod(0o640)
    rc, _, err = cli(capfd, "eval", _csv(tmp_path), "-f", "json", "-o", dest)
    assert rc == 0, err
    assert stat.S_IMODE(dest.stat().st_mode) == 0o640
    assert json.loads(dest.read_text())["schema"] == "losscli.eval/1"


# --- a closed stdout ---------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["table", "json", "junit"])
@pytest.mark.parametrize(("limit", "code"), [("0", 1), ("100", 0)])
def test_closed_stdout_keeps_the_gate_exit_code(tmp_path: Path, fmt: str, limit: str,
                                                code: int) -> None:
    read, write = os.pipe()
    os.close(read)  # every write to stdout fails with EPIPE
    try:
        proc = subprocess.run([sys.executable, "-m", "losscli", "eval", str(_csv(tmp_path)),
                               "-l", "mse", "--max", f"mse={limit}", "-f", fmt],
                              stdout=write, stderr=subprocess.PIPE, text=True, timeout=60,
                              check=False)
    finally:
        os.close(write)
    assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stderr
    expected = "losscli: gate failed: mse = 0.5625 > max 0\n" if code else ""
    assert proc.stderr == expected


# --- JUnit XML ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["a\x01b.csv", "tab\tand\x1bescape.csv", "bell\x07.csv"])
def test_junit_is_well_formed_for_any_source_path(capfd: pytest.CaptureFixture[str],
                                                  tmp_path: Path, name: str) -> None:
    import xml.etree.ElementTree as ET

    src = tmp_path / name
    src.write_text("y,pred\n1,1.5\n2,2\n3,2\n4,5\n")
    rc, out, err = cli(capfd, "eval", src, "-l", "mse", "--max", "mse=1", "-f", "junit")
    assert rc == 0, err
    suite = ET.fromstring(out).find("testsuite")
    assert suite is not None
    shown = name.replace("\x01", "\\x01").replace("\x1b", "\\x1b").replace("\x07", "\\x07")
    assert suite.get("name") == f"losscli eval {tmp_path / shown}"


def test_junit_escapes_lone_surrogates() -> None:
    import xml.etree.ElementTree as ET

    from losscli import evaluate

    report = evaluate({"y": [1.0, 2.0], "pred": [1.0, 3.0]}, losses=["mse"])
    report.source.path = "bad\udcff\x00name.csv"
    text = junit(report)
    text.encode("utf-8")  # no lone surrogate left
    suite = ET.fromstring(text).find("testsuite")
    assert suite is not None and suite.get("name") == "losscli eval bad\\udcff\\x00name.csv"


# --- multiclass targets: one rule for labels and positions, in every format -------------------

PROBA = [[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6], [0.5, 0.3, 0.2]]


def _multiclass_file(tmp_path: Path, fmt: str, names: list[str], target: list[object]) -> Path:
    import pyarrow as pa
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    columns: dict[str, object] = {"label": pa.array(target)}
    for k, name in enumerate(names):
        columns[name] = [row[k] for row in PROBA]
    table = pa.table(columns)
    path = tmp_path / f"m.{fmt}"
    if fmt == "csv":
        pcsv.write_csv(table, path)
    else:
        pq.write_table(table, path)
    return path


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
@pytest.mark.parametrize(("names", "target", "labels"), [
    (["prob_1", "prob_2", "prob_3"], [1, 2, 3, 1], [1, 2, 3]),           # 1-based ratings
    (["prob_2", "prob_0", "prob_1"], [0, 1, 2, 2], [2, 0, 1]),           # any column order
    (["prob_0", "prob_1", "prob_2"], [0, 1, 2, 1], [0, 1, 2]),           # labels = positions
    (["prob_0", "prob_1", "prob_2"], [0.0, 1.0, 2.0, 1.0], [0, 1, 2]),   # floats (pandas)
    (["prob_10", "prob_20", "prob_30"], [30, 10, 20, 30], [10, 20, 30]),
])
def test_numbered_class_columns_are_labels_in_every_format(
        capfd: pytest.CaptureFixture[str], tmp_path: Path, fmt: str, names: list[str],
        target: list[float], labels: list[int]) -> None:
    from sklearn.metrics import log_loss

    src = _multiclass_file(tmp_path, fmt, names, target)
    rc, out, err = cli(capfd, "eval", src, "--pred", "prob_*", "--loss", "cce", "-f", "json")
    assert rc == 0, err
    doc = json.loads(out)
    assert doc["columns"]["classes"] == [n.split("_")[1] for n in names]
    # scikit-learn orders its columns by sorted label: reorder ours to match
    order = np.argsort(labels)
    expected = log_loss([int(t) for t in target], np.array(PROBA)[:, order],
                        labels=sorted(labels))
    assert doc["losses"][0]["value"] == pytest.approx(expected, rel=1e-14)


def test_float_text_targets_in_csv_equal_parquet(capfd: pytest.CaptureFixture[str],
                                                  tmp_path: Path) -> None:
    """'1.0, 0.0, 2.0', as pandas writes a float column, is read as 1, 0, 2 (it was refused in
    CSV while the same Parquet column worked)."""
    from sklearn.metrics import log_loss

    f = tmp_path / "m.csv"
    f.write_text("label,prob_a,prob_b,prob_c\n" + "".join(
        f"{t},{','.join(map(repr, row))}\n" for t, row in zip(["1.0", "0.0", " 2.0", "1e0"],
                                                              PROBA, strict=True)))
    rc, out, err = cli(capfd, "eval", f, "--loss", "cce", "-f", "json")
    assert rc == 0, err
    expected = log_loss([1, 0, 2, 1], PROBA, labels=[0, 1, 2])
    assert json.loads(out)["losses"][0]["value"] == pytest.approx(expected, rel=1e-14)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
@pytest.mark.parametrize(("names", "target", "needles"), [
    (["prob_1", "prob_2", "prob_3"], [0, 1, 2, 1], ("has class 0", "not a class label (1, 2, 3",
                                                    "not positions 0..2")),
    (["prob_0", "prob_cat", "prob_dog"], [0, 1, 2, 1], ("include the number '0'",
                                                         "a label or a position 0..2")),
    (["p_0.5", "p_1.5", "p_2.5"], [0, 1, 2, 1], ("include the number '0.5'",)),
])
def test_ambiguous_class_targets_are_refused(capfd: pytest.CaptureFixture[str], tmp_path: Path,
                                             fmt: str, names: list[str], target: list[int],
                                             needles: tuple[str, ...]) -> None:
    src = _multiclass_file(tmp_path, fmt, names, target)
    glob = names[0].split("_")[0] + "_*"
    assert_input_error(cli(capfd, "eval", src, "--pred", glob, "--loss", "cce"),
                       "column 'label' row 1", *needles)


# --- duplicate column names ---------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["csv", "parquet", "feather"])
def test_duplicate_column_name_is_refused(capfd: pytest.CaptureFixture[str], tmp_path: Path,
                                          fmt: str) -> None:
    import pyarrow as pa
    import pyarrow.feather as feather
    import pyarrow.parquet as pq

    table = pa.Table.from_arrays([pa.array([1.0, 2.0]), pa.array([1.5, 2.5]),
                                  pa.array([9.0, 9.0])], names=["y", "pred", "pred"])
    src = tmp_path / f"d.{fmt}"
    if fmt == "csv":
        src.write_text("y,pred,pred\n1,1.5,9\n2,2.5,9\n")
    elif fmt == "parquet":
        pq.write_table(table, src)
    else:
        feather.write_feather(table, src)
    assert_input_error(cli(capfd, "eval", src), "2 columns are named 'pred'")
    for args in ([], ["--target-only", "--target", "pred"], ["--target", "pred"]):
        assert_input_error(cli(capfd, "recommend", src, *args), "2 columns are named 'pred'")
    # a duplicate that is not read does no harm
    if fmt == "csv":
        src.write_text("y,pred,x,x\n1,1.5,a,b\n2,2.5,c,d\n")
        rc, out, err = cli(capfd, "eval", src, "-l", "mse", "-f", "json")
        assert rc == 0, err
        assert json.loads(out)["losses"][0]["value"] == 0.25


# --- line endings, long lines and headers --------------------------------------------------------

Y4 = [1.0, 2.0, 3.0, 4.0]
P4 = [1.5, 2.0, 2.0, 5.0]
MSE4 = math.fsum((p - y) ** 2 for y, p in zip(Y4, P4, strict=True)) / 4


def _lines(eol: str) -> bytes:
    return ("y,pred" + eol + "".join(f"{y!r},{p!r}{eol}"
                                     for y, p in zip(Y4, P4, strict=True))).encode()


@pytest.mark.parametrize("eol", ["\r", "\r\n", "\n"], ids=["cr", "crlf", "lf"])
def test_line_endings_in_files_and_on_stdin(capfd: pytest.CaptureFixture[str], tmp_path: Path,
                                            eol: str) -> None:
    f = tmp_path / "eol.csv"
    f.write_bytes(_lines(eol))
    rc, out, err = cli(capfd, "eval", f, "-l", "mse", "-f", "json")
    assert rc == 0, err
    assert json.loads(out)["losses"][0]["value"] == MSE4
    proc = subprocess.run([sys.executable, "-m", "losscli", "eval", "-", "-l", "mse", "-f",
                           "json"], input=_lines(eol), capture_output=True, timeout=60,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["losses"][0]["value"] == MSE4


def test_cr_only_file_without_final_line_break(capfd: pytest.CaptureFixture[str],
                                               tmp_path: Path) -> None:
    f = tmp_path / "eol.csv"
    f.write_bytes(_lines("\r")[:-1])
    rc, out, err = cli(capfd, "eval", f, "-l", "mse", "-f", "json")
    assert rc == 0, err
    assert json.loads(out)["losses"][0]["value"] == MSE4


def _wide_csv(classes: int) -> tuple[bytes, float]:
    """A header far over 64 KiB (long class column names) and the cce reference."""
    names = [f"prob_class_number_{k:05d}_of_a_very_wide_softmax" for k in range(classes)]
    rows = []
    targets = [0, classes - 1, 7]
    for t in targets:
        p = [0.5 / (classes - 1)] * classes
        p[t] = 0.5
        rows.append(f"{t}," + ",".join(repr(v) for v in p))
    text = "label," + ",".join(names) + "\n" + "\n".join(rows) + "\n"
    return text.encode(), -math.log(0.5)


def test_header_over_64_kib_in_a_file_and_on_stdin(capfd: pytest.CaptureFixture[str],
                                                   tmp_path: Path) -> None:
    data, expected = _wide_csv(4000)
    assert data.index(b"\n") > 64 << 10
    f = tmp_path / "wide.csv"
    f.write_bytes(data)
    rc, out, err = cli(capfd, "eval", f, "--pred", "prob_*", "-l", "cce", "-f", "json")
    assert rc == 0, err
    doc = json.loads(out)
    assert doc["losses"][0]["value"] == pytest.approx(expected, rel=1e-15)
    assert len(doc["columns"]["classes"]) == 4000
    proc = subprocess.run([sys.executable, "-m", "losscli", "eval", "-", "--pred", "prob_*",
                           "-l", "cce", "-f", "json"], input=data, capture_output=True,
                          timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["losses"][0]["value"] == pytest.approx(expected, rel=1e-15)


def test_a_file_without_line_breaks_is_not_read_whole(capfd: pytest.CaptureFixture[str],
                                                      tmp_path: Path) -> None:
    from losscli import sources

    f = tmp_path / "zeros.csv"
    f.write_bytes(b"\0" * (sources.MAX_HEADER_BYTES + (1 << 16)))
    assert_input_error(cli(capfd, "eval", f), "no line break in the first 64 MiB")


def test_line_longer_than_the_parse_block(capfd: pytest.CaptureFixture[str],
                                          tmp_path: Path) -> None:
    from losscli.sources import CSV_PIECE_SIZE

    f = tmp_path / "long.csv"
    long_note = "x" * (CSV_PIECE_SIZE + (1 << 20))  # longer than a piece and a parse block
    f.write_text("y,pred,note\n1,1.5,a\n2,2," + long_note + "\n3,2,b\n4,5,c\n")
    rc, out, err = cli(capfd, "eval", f, "-l", "mse", "-f", "json")
    assert rc == 0, err
    assert json.loads(out)["losses"][0]["value"] == MSE4


# --- streams that are not stdin -------------------------------------------------------------------


def test_fifo_as_source(capfd: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    import threading

    fifo = tmp_path / "in.csv"
    os.mkfifo(fifo)
    writer = threading.Thread(target=lambda: fifo.write_bytes(_lines("\n")), daemon=True)
    writer.start()
    rc, out, err = cli(capfd, "eval", fifo, "-l", "mse", "-f", "json")
    writer.join(timeout=10)
    assert rc == 0, err
    doc = json.loads(out)
    assert doc["losses"][0]["value"] == MSE4
    assert doc["source"]["format"] == "csv (stream)"


@pytest.mark.parametrize("command", [
    "cat {f} | {losscli} eval /dev/stdin -l mse -f json",
    "{losscli} eval <(cat {f}) -l mse -f json",
    "cat {f} | {losscli} recommend /dev/stdin -f json",
])
def test_dev_stdin_and_process_substitution(tmp_path: Path, command: str) -> None:
    f = tmp_path / "in.csv"
    f.write_bytes(_lines("\n"))
    losscli = f"{sys.executable} -m losscli"
    proc = subprocess.run(["bash", "-c", command.format(f=f, losscli=losscli)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    if "losses" in doc:
        assert doc["losses"][0]["value"] == MSE4
    else:
        assert doc["evidence"]["rows"] == 4


def test_parquet_through_a_pipe_is_refused(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    f = tmp_path / "p.parquet"
    pq.write_table(pa.table({"y": Y4, "pred": P4}), f)
    proc = subprocess.run(["bash", "-c", f"cat {f} | {sys.executable} -m losscli eval "
                                         "/dev/stdin"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and "need a file" in proc.stderr


# --- dictionary-encoded numeric columns -----------------------------------------------------------


@pytest.mark.parametrize("fmt", ["feather", "arrow-stream", "parquet", "memory"])
def test_dictionary_encoded_numbers_read_in_every_format(capfd: pytest.CaptureFixture[str],
                                                         tmp_path: Path, fmt: str) -> None:
    import pandas as pd
    import pyarrow as pa
    import pyarrow.feather as feather
    import pyarrow.parquet as pq

    from losscli import evaluate

    df = pd.DataFrame({"y": pd.Categorical(Y4), "pred": pd.Categorical(P4),
                       "w": pd.Categorical([1.0, 2.0, 1.0, 2.0])})
    table = pa.Table.from_pandas(df, preserve_index=False)
    assert pa.types.is_dictionary(table.schema.field("pred").type)
    expected = math.fsum(w * (p - y) ** 2 for y, p, w in
                         zip(Y4, P4, [1.0, 2.0, 1.0, 2.0], strict=True)) / 6
    if fmt == "memory":
        value = evaluate(df, pred="pred", target="y", weight="w", losses=["mse"]).losses[0].value
        assert value == expected
        return
    src = tmp_path / ("d.parquet" if fmt == "parquet" else "d.arrow")
    if fmt == "feather":
        feather.write_feather(df, src)
    elif fmt == "parquet":
        pq.write_table(table, src)
    else:
        with pa.OSFile(str(src), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as w:
            w.write_table(table)
    rc, out, err = cli(capfd, "eval", src, "-w", "w", "-l", "mse", "-f", "json")
    assert rc == 0, err
    assert json.loads(out)["losses"][0]["value"] == expected


def test_dictionary_encoded_multiclass_target(capfd: pytest.CaptureFixture[str],
                                              tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.feather as feather
    from sklearn.metrics import log_loss

    target = pa.array([1, 2, 3, 1]).dictionary_encode()
    table = pa.table({"label": target, **{f"prob_{k + 1}": [r[k] for r in PROBA]
                                          for k in range(3)}})
    src = tmp_path / "m.feather"
    feather.write_feather(table, src)
    rc, out, err = cli(capfd, "eval", src, "--pred", "prob_*", "-l", "cce", "-f", "json")
    assert rc == 0, err
    expected = log_loss([1, 2, 3, 1], PROBA, labels=[1, 2, 3])
    assert json.loads(out)["losses"][0]["value"] == pytest.approx(expected, rel=1e-14)
