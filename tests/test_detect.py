"""The one task detector (losscli/detect.py), through the CLI: eval and recommend read the data
the same way, say the same task in the same words, and ask instead of guessing when the data
reads two ways."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from _helpers.cli import assert_input_error, cli, write

from losscli.detect import TargetFacts

SAMPLES = Path(__file__).resolve().parent.parent / "sample_data"


def read_csv(path: Path) -> dict[str, list[str]]:
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return {k: [r[k] for r in rows] for k in rows[0]}


def run_json(capfd: pytest.CaptureFixture[str], *args: object) -> dict:
    rc, out, err = cli(capfd, *args, "--format", "json")
    assert rc == 0, (rc, out, err)
    return json.loads(out)


@pytest.fixture(autouse=True)
def _no_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no pyproject.toml of the project in force


@pytest.mark.parametrize("command", ["eval", "recommend"])
def test_zero_one_target_with_logit_predictions_is_ambiguous(
        capfd: pytest.CaptureFixture[str], command: str) -> None:
    """The README's binary sample without --logits: not mse of logits (eval said 'task
    regression, mse 18.28'), not poisson (recommend): exit 2 naming both readings."""
    err = assert_input_error(cli(capfd, command, SAMPLES / "binary.csv", "--pred", "logit",
                                 "--target", "label"),
                             "'label'", "0 and 1", "'logit'", "--logits", "--task regression")
    data = read_csv(SAMPLES / "binary.csv")
    assert f"min {min(float(x) for x in data['logit']):g}"[:8] in err


@pytest.mark.parametrize("labels", [(-1.0, 1.0), (1.0, 2.0)])
@pytest.mark.parametrize("command", ["eval", "recommend"])
def test_two_valued_target_with_probabilities_is_ambiguous(
        capfd: pytest.CaptureFixture[str], tmp_path: Path, command: str,
        labels: tuple[float, float]) -> None:
    rng = np.random.default_rng(3)
    y = np.where(rng.random(500) < 0.3, labels[1], labels[0])
    path = tmp_path / "pm.parquet"
    pq.write_table(pa.table({"y": y, "p": rng.random(500)}), path)
    assert_input_error(cli(capfd, command, path), "two values", "0/1", "--task regression")
    doc = run_json(capfd, command, path, "--task", "regression")
    assert doc["task"] == "regression"
    # two values with predictions outside [0, 1]: plainly values, no question
    pq.write_table(pa.table({"y": y, "p": 3.0 * y + rng.normal(size=500)}), path)
    assert run_json(capfd, command, path)["task"] in ("regression", "counts")


def test_each_reading_when_asked(capfd: pytest.CaptureFixture[str]) -> None:
    data = read_csv(SAMPLES / "binary.csv")
    z = np.array(data["logit"], dtype=float)
    y = np.array(data["label"], dtype=float)
    args = (SAMPLES / "binary.csv", "--pred", "logit", "--target", "label")
    doc = run_json(capfd, "eval", *args, "--logits")
    assert (doc["task"], doc["input"]) == ("binary", "logits")
    bce = float(np.mean(np.logaddexp(0.0, z) - y * z))  # log(1 + e^z) - y z
    assert math.isclose(doc["losses"][0]["value"], bce, rel_tol=1e-12)
    doc = run_json(capfd, "eval", *args, "--task", "regression", "--loss", "mse")
    assert doc["task"] == "regression"
    assert math.isclose(doc["losses"][0]["value"], math.fsum((z - y) ** 2) / z.size,
                        rel_tol=1e-12)
    rec = run_json(capfd, "recommend", *args, "--logits")
    assert rec["task"] == "binary"
    rec = run_json(capfd, "recommend", *args, "--task", "regression")
    assert rec["task"] == "regression" and rec["task_reason"] == "--task regression was given."


@pytest.mark.parametrize(("sample", "task"), [("regression.csv", "regression"),
                                              ("counts.csv", "counts"),
                                              ("binary.csv", "binary"),
                                              ("multiclass.csv", "multiclass")])
def test_eval_and_recommend_say_the_same_task(capfd: pytest.CaptureFixture[str], sample: str,
                                              task: str) -> None:
    """One vocabulary: eval said 'regression' for counts.csv where recommend said 'counts'."""
    pred = ["--pred", "prob_*"] if sample == "multiclass.csv" else []
    assert run_json(capfd, "eval", SAMPLES / sample, *pred)["task"] == task
    assert run_json(capfd, "recommend", SAMPLES / sample, *pred)["task"] == task


def test_counts_default_losses_include_poisson(capfd: pytest.CaptureFixture[str]) -> None:
    data = read_csv(SAMPLES / "counts.csv")
    y = np.array(data["y"], dtype=float)
    mu = np.array(data["y_hat"], dtype=float)
    doc = run_json(capfd, "eval", SAMPLES / "counts.csv")
    assert [r["name"] for r in doc["losses"]][-1] == "poisson"
    # mean Poisson deviance, by hand (y log(y / mu) is 0 at y = 0)
    ylog = np.where(y > 0, y * np.log(np.where(y > 0, y, 1.0) / mu), 0.0)
    dev = 2.0 * math.fsum(ylog - y + mu) / y.size
    assert math.isclose(doc["losses"][-1]["value"], dev, rel_tol=1e-12)


def test_task_flag_must_fit_the_losses(capfd: pytest.CaptureFixture[str]) -> None:
    assert_input_error(cli(capfd, "eval", SAMPLES / "regression.csv", "--task", "binary",
                           "--loss", "mse"), "--task binary", "mse")
    assert_input_error(cli(capfd, "eval", SAMPLES / "regression.csv", "--task", "counts"),
                       "non-negative integer count", "row ")
    assert_input_error(cli(capfd, "eval", SAMPLES / "regression.csv", "--task", "dogs"),
                       "--task", "'dogs'", "regression, counts, binary, multiclass")


def test_counts_detected_from_first_rows_then_negative(capfd: pytest.CaptureFixture[str],
                                                       tmp_path: Path) -> None:
    """Detection reads the first 65,536 rows; a later row that contradicts it is an error that
    names the rows looked at and the way out."""
    n = 70_000
    y = np.arange(n) % 7  # integer counts (a float column is regression)
    y[68_000] = -3
    path = tmp_path / "late.parquet"
    pq.write_table(pa.table({"y": y, "pred": y + 0.5}), path)
    for chunk in ("131072", "1000", "70000"):  # the same rows decide, whatever the chunk size
        assert_input_error(cli(capfd, "eval", path, "--chunk-rows", chunk), "row 68001",
                           "65,536", "--task regression")
    doc = run_json(capfd, "eval", path, "--task", "regression")
    assert doc["task"] == "regression" and "poisson" not in [r["name"] for r in doc["losses"]]


def test_negative_targets_leave_poisson_out_silently(capfd: pytest.CaptureFixture[str],
                                                     tmp_path: Path) -> None:
    """The README's first command: no warning about a loss nobody asked for."""
    rc, out, err = cli(capfd, "eval", SAMPLES / "regression.parquet", "--format", "json")
    assert (rc, err) == (0, "")
    doc = json.loads(out)
    assert "poisson" not in [r["name"] for r in doc["losses"]]
    assert doc["warnings"] == doc["notes"] == []


def test_default_loss_left_out_is_a_footnote(capfd: pytest.CaptureFixture[str],
                                             tmp_path: Path) -> None:
    """Counts with a zero prediction: poisson cannot be evaluated; a note under the table,
    nothing on stderr (also in machine formats)."""
    src = write(tmp_path / "c.csv", "y,pred\n1,1.5\n0,0\n3,2\n2,2\n")
    for fmt in ("table", "json", "junit"):
        rc, out, err = cli(capfd, "eval", src, "--format", fmt)
        assert (rc, err) == (0, ""), fmt
    rc, out, _ = cli(capfd, "eval", src)
    assert "note: poisson skipped" in out
    assert "row 2" in out.split("note: poisson skipped")[1]


def test_huber_and_smooth_l1_not_both_by_default(capfd: pytest.CaptureFixture[str]) -> None:
    names = [r["name"] for r in run_json(capfd, "eval", SAMPLES / "regression.csv")["losses"]]
    assert "huber" in names and "smooth_l1" not in names
    assert len(names) == len(set(names))


@pytest.mark.parametrize("seed", range(5))
def test_target_facts_do_not_depend_on_chunking(seed: int) -> None:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3 + seed * 30, 5000).astype(float)
    p = rng.normal(size=5000)
    whole = TargetFacts.of(y, p)
    cuts = np.sort(rng.choice(np.arange(1, 5000), 7, replace=False))
    parts = TargetFacts()
    for a, b in zip([0, *cuts], [*cuts, 5000], strict=True):
        parts.merge(TargetFacts.of(y[a:b], p[a:b]))
    assert parts == whole
    assert (whole.minimum, whole.maximum) == (y.min(), y.max())
    assert (whole.pred_min, whole.pred_max) == (p.min(), p.max())
    distinct = set(np.unique(y).tolist())
    assert whole.distinct == (distinct if len(distinct) <= 64 else None)


def test_detection_rules_documented_once() -> None:
    from test_readme import TEXT as readme

    assert readme.count("**Task detection**") == 1
    section = readme.split("**Task detection**")[1].split("\n\n")[0]
    for needle in ("--task", "multiclass", "0 and 1", "--logits", "--task regression", "counts"):
        assert needle in section
