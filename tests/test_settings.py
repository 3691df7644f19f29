"""One settings model for every command (losscli/settings.py): recommend reads [tool.losscli] as
eval does, the shared options have one text, ``threads`` and ``task`` are keys, ``--no-config``
and ``--write-baseline`` make recording a baseline possible under the README's configuration."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import typer
from _helpers.cli import assert_input_error, cli, write

from losscli.cli import app

TRUTH = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 2.5])
GUESS = np.array([1.5, 2.0, 2.0, 7.0, 4.0, 2.0])
MSE = float(np.mean((GUESS - TRUTH) ** 2))

# the README's configuration, with a baseline that does not exist yet
PYPROJECT = """\
[tool.losscli]
pred = "guess"
target = "truth"
losses = ["mse", "huber:delta=2"]
baseline = "ci/baseline.json"
tolerance = "2%"
threads = 0

[tool.losscli.max]
mse = 10
"""


@pytest.fixture(autouse=True)
def _cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)


@pytest.fixture
def data(tmp_path: Path) -> Path:
    path = tmp_path / "preds.parquet"
    pq.write_table(pa.table({"truth": TRUTH, "guess": GUESS}), path)
    return path


def doc_of(result: tuple[int, str, str], rc: int = 0) -> dict[str, Any]:
    got, out, err = result
    assert got == rc, (got, out, err)
    return json.loads(out)


# --- recording a baseline under a configured one (item 2) ------------------------------------


def test_write_baseline_records_then_compares(capfd: pytest.CaptureFixture[str],
                                              tmp_path: Path, data: Path) -> None:
    write(tmp_path / "pyproject.toml", PYPROJECT)
    (tmp_path / "ci").mkdir()
    # without it: the configured baseline does not exist yet
    assert_input_error(cli(capfd, "eval", data), "baseline", "ci/baseline.json",
                       "no such file; record one with --write-baseline")
    rc, out, err = cli(capfd, "eval", data, "--write-baseline", "ci/baseline.json")
    assert (rc, err) == (0, "losscli: wrote baseline ci/baseline.json (2 loss(es)); compare "
                            "with it: --baseline ci/baseline.json\n")
    assert "mse" in out  # the table still goes to stdout
    base = json.loads((tmp_path / "ci" / "baseline.json").read_text())
    assert base["schema"] == "losscli.eval/1"
    assert [r["spec"] for r in base["losses"]] == ["mse", "huber:delta=2"]
    assert base["losses"][0]["value"] == pytest.approx(MSE, rel=1e-14)
    assert [g["kind"] for g in base["gates"]] == ["max"]  # --max still applies; no baseline gate
    # and the next run compares with it
    doc = doc_of(cli(capfd, "eval", data, "--format", "json"))
    assert {g["kind"] for g in doc["gates"]} == {"max", "baseline"} and doc["passed"]


def test_write_baseline_updates_a_failing_one(capfd: pytest.CaptureFixture[str],
                                              tmp_path: Path, data: Path) -> None:
    write(tmp_path / "pyproject.toml", PYPROJECT)
    (tmp_path / "ci").mkdir()
    write(tmp_path / "ci" / "baseline.json", json.dumps(
        {"schema": "losscli.eval/1", "losses": [{"spec": "mse", "value": MSE / 2}]}))
    assert cli(capfd, "eval", data)[0] == 1  # worse than the recorded baseline
    assert cli(capfd, "eval", data, "--write-baseline", "ci/baseline.json")[0] == 0
    assert cli(capfd, "eval", data)[0] == 0


def test_write_baseline_with_baseline_flag_is_usage_error(capfd: pytest.CaptureFixture[str],
                                                          tmp_path: Path, data: Path) -> None:
    out = tmp_path / "b.json"
    assert_input_error(cli(capfd, "eval", data, "--pred", "guess", "--target", "truth",
                           "--write-baseline", out, "--baseline", out),
                       "--write-baseline", "--baseline")
    assert not out.exists()
    assert_input_error(cli(capfd, "eval", data, "--pred", "guess", "--target", "truth",
                           "--write-baseline", tmp_path), "--write-baseline", "directory")
    # a missing directory is made, but only once the evaluation succeeded
    deep = tmp_path / "ci" / "new" / "b.json"
    assert_input_error(cli(capfd, "eval", data, "--pred", "nope", "--write-baseline", deep),
                       "'nope'")
    assert not (tmp_path / "ci").exists()
    assert cli(capfd, "eval", data, "--pred", "guess", "--target", "truth",
               "--write-baseline", deep)[0] == 0
    assert json.loads(deep.read_text())["schema"] == "losscli.eval/1"


def test_no_config_ignores_the_file(capfd: pytest.CaptureFixture[str], tmp_path: Path,
                                    data: Path) -> None:
    write(tmp_path / "pyproject.toml", PYPROJECT)
    doc = doc_of(cli(capfd, "eval", data, "--no-config", "--pred", "guess", "--target", "truth",
                     "--format", "json"))
    assert doc["gates"] == [] and "huber:delta=2" not in [r["spec"] for r in doc["losses"]]
    # the columns came from the file only: without it they are unknown
    assert_input_error(cli(capfd, "eval", data, "--no-config"), "truth", "guess")
    doc = doc_of(cli(capfd, "recommend", data, "--no-config", "--format", "json"))
    assert doc["columns"]["pred"] is None  # 'truth' is a recognised target name; 'guess' no pred
    assert_input_error(cli(capfd, "eval", data, "--no-config", "--config", "pyproject.toml"),
                       "--config", "--no-config")


# --- recommend reads the same settings (item 4) ----------------------------------------------


def test_recommend_reads_tool_losscli(capfd: pytest.CaptureFixture[str], tmp_path: Path,
                                      data: Path) -> None:
    write(tmp_path / "pyproject.toml", PYPROJECT)
    doc = doc_of(cli(capfd, "recommend", data, "--format", "json", "--show-config"))
    assert doc["columns"]["pred"] == ["guess"] and doc["columns"]["target"] == "truth"
    label = "pyproject.toml [tool.losscli]"
    assert doc["config"]["threads"] == {"value": 0, "source": label}
    assert doc["config"]["pred"] == {"value": "guess", "source": label}
    assert "max" not in doc["config"]  # eval's gates are not recommend's settings
    # --config names another file, as for eval
    conf = write(tmp_path / "other.toml", 'pred = "truth"\ntarget = "guess"\n')
    doc = doc_of(cli(capfd, "recommend", data, "--config", conf, "--format", "json"))
    assert doc["columns"]["pred"] == ["truth"]


def test_threads_and_task_are_config_keys(capfd: pytest.CaptureFixture[str], tmp_path: Path,
                                          data: Path) -> None:
    write(tmp_path / "losscli.toml", 'pred = "guess"\ntarget = "truth"\nthreads = 2\n'
          'task = "regression"\n')
    for command in ("eval", "recommend"):
        doc = doc_of(cli(capfd, command, data, "--format", "json", "--show-config"))
        assert doc["config"]["threads"] == {"value": 2, "source": "losscli.toml"}
        assert doc["config"]["task"] == {"value": "regression", "source": "losscli.toml"}
        assert doc["task"] == "regression"  # integer-free data, but the key is read
    write(tmp_path / "losscli.toml", 'threads = -1\n')
    for command in ("eval", "recommend"):
        assert_input_error(cli(capfd, command, data), "threads", "-1")


def test_format_from_config_recommend_cannot_write(capfd: pytest.CaptureFixture[str],
                                                   tmp_path: Path, data: Path) -> None:
    write(tmp_path / "losscli.toml", 'pred = "guess"\ntarget = "truth"\nformat = "junit"\n')
    assert cli(capfd, "eval", data)[1].startswith("<?xml")
    assert_input_error(cli(capfd, "recommend", data), "junit", "losscli.toml", "--format table")
    rc, out, err = cli(capfd, "recommend", data, "--format", "markdown")
    assert (rc, err) == (0, "") and out.startswith("### losscli recommend: regression")


def _options(command: str) -> dict[str, Any]:
    cmd = typer.main.get_command(app).commands[command]  # type: ignore[attr-defined]
    return {p.name: p for p in cmd.params if p.name}


def test_shared_options_are_identical() -> None:
    """--logits/--probabilities, --format and every input option: same flags, same text."""
    ev, rec = _options("eval"), _options("recommend")
    shared = ["pred", "target", "weight", "task", "logits", "nan", "chunk_rows", "threads",
              "output", "quiet", "config", "no_config", "show_config"]
    # --format lists the formats each command writes
    assert ev["fmt"].opts == rec["fmt"].opts and "junit" not in (rec["fmt"].help or "")
    for name in shared:
        a, b = ev[name], rec[name]
        assert (a.opts, a.secondary_opts, getattr(a, "help", None)) == (
            b.opts, b.secondary_opts, getattr(b, "help", None)), name
    assert ev["logits"].secondary_opts == ["--probabilities"]


def test_show_config_prints_plain_values(capfd: pytest.CaptureFixture[str], tmp_path: Path,
                                         data: Path) -> None:
    write(tmp_path / "pyproject.toml", PYPROJECT.replace('baseline = "ci/baseline.json"\n', ""))
    for command in ("eval", "recommend"):
        rc, out, err = cli(capfd, command, data, "--show-config")
        assert (rc, err) == (0, "")
        conf = out.split("Configuration")[1]
        assert "'guess'" not in conf and "None" not in conf and "True" not in conf
        line = next(x for x in conf.splitlines() if " pred " in x)
        assert "guess" in line and "pyproject.toml" in line
        if command == "eval":
            assert "mse, huber:delta=2" in conf and "mse=10" in conf
