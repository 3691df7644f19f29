"""Configuration (losscli/config.py): ``[tool.losscli]`` in pyproject.toml, losscli.toml,
``--config``, precedence under flags, ``--show-config`` and exit-2 errors that name the key.

Every test runs in its own ``tmp_path`` as the working directory, where it writes the files.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from _helpers.cli import assert_input_error, cli, write

# Column names that are not recognised automatically, so only a configuration can name them.
TRUTH = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
GUESS = np.array([1.5, 2.0, 2.0, 7.0, 4.0])
W = np.array([1.0, 2.0, 0.5, 1.0, 3.0])
E = GUESS - TRUTH
MSE = float(np.mean(E**2))
MAE = float(np.mean(np.abs(E)))
WMSE = float(np.sum(W * E**2) / np.sum(W))
HUBER2 = float(np.mean(np.where(np.abs(E) <= 2, 0.5 * E**2, 2 * (np.abs(E) - 1))))

PYPROJECT = """\
[project]
name = "model"

[tool.losscli]
pred = "guess"
target = "truth"
losses = ["mse", "huber:delta=2"]

[tool.losscli.max]
mse = {mse_max}
"""


@pytest.fixture(autouse=True)
def _cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)


@pytest.fixture
def data(tmp_path: Path) -> Path:
    path = tmp_path / "preds.parquet"
    pq.write_table(pa.table({"truth": TRUTH, "guess": GUESS, "w": W}), path)
    return path


def run_json(capfd: pytest.CaptureFixture[str], *args: object) -> tuple[int, dict[str, Any], str]:
    rc, out, err = cli(capfd, "eval", *args, "--format", "json")
    assert out, (rc, err)
    return rc, json.loads(out), err


def values(doc: dict[str, Any]) -> dict[str, float]:
    return {r["spec"]: r["value"] for r in doc["losses"]}


def baseline_file(path: Path, mse: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"schema": "losscli.eval/1",
                                "losses": [{"name": "mse", "spec": "mse", "value": mse}]}),
                    encoding="utf-8")
    return path


def test_columns_need_configuration(capfd: pytest.CaptureFixture[str], data: Path) -> None:
    """The control for the tests below: without a configuration the columns are unknown."""
    assert_input_error(cli(capfd, "eval", data), "truth", "guess")


# --- where the configuration comes from ------------------------------------------------------


@pytest.mark.parametrize(("mse_max", "rc"), [(MSE, 0), (MSE - 0.01, 1)])
def test_pyproject_tool_losscli(capfd: pytest.CaptureFixture[str], tmp_path: Path, data: Path,
                                mse_max: float, rc: int) -> None:
    write(tmp_path / "pyproject.toml", PYPROJECT.format(mse_max=repr(mse_max)))
    got_rc, doc, err = run_json(capfd, data)
    assert got_rc == rc, err
    assert doc["columns"]["pred"] == ["guess"] and doc["columns"]["target"] == "truth"
    assert list(values(doc)) == ["mse", "huber:delta=2"]
    assert values(doc)["mse"] == pytest.approx(MSE, rel=1e-14)
    assert values(doc)["huber:delta=2"] == pytest.approx(HUBER2, rel=1e-14)
    [gate] = doc["gates"]
    assert (gate["loss"], gate["kind"], gate["limit"], gate["passed"]) == (
        "mse", "max", mse_max, rc == 0)


def test_losscli_toml_top_level_keys(capfd: pytest.CaptureFixture[str], tmp_path: Path,
                                     data: Path) -> None:
    write(tmp_path / "losscli.toml", 'pred = "guess"\ntarget = "truth"\nweight = "w"\n'
          'losses = ["mse", "mae"]\nformat = "json"\n\n[max]\nmae = 0.01\n')
    rc, out, err = cli(capfd, "eval", data)  # format = "json" comes from the file too
    assert rc == 1
    doc = json.loads(out)
    assert doc["columns"]["weight"] == "w"
    assert values(doc)["mse"] == pytest.approx(WMSE, rel=1e-14)
    assert [(g["loss"], g["limit"], g["passed"]) for g in doc["gates"]] == [("mae", 0.01, False)]
    assert err.startswith("losscli: gate failed: mae")


def test_explicit_config_path(capfd: pytest.CaptureFixture[str], tmp_path: Path,
                              data: Path) -> None:
    conf = tmp_path / "ci" / "settings.toml"
    conf.parent.mkdir()
    write(conf, 'pred = "guess"\ntarget = "truth"\nlosses = ["mae"]\n')
    # a configuration in the working directory is ignored when --config is given
    write(tmp_path / "losscli.toml", 'pred = "nope"\ntarget = "nope"\n')
    rc, doc, err = run_json(capfd, data, "--config", conf)
    assert (rc, err) == (0, "")
    assert values(doc) == {"mae": pytest.approx(MAE, rel=1e-14)}


def test_explicit_config_with_tool_table(capfd: pytest.CaptureFixture[str], tmp_path: Path,
                                         data: Path) -> None:
    conf = write(tmp_path / "other.toml", PYPROJECT.format(mse_max="100"))
    rc, doc, err = run_json(capfd, data, "--config", conf)
    assert (rc, err) == (0, "")
    assert list(values(doc)) == ["mse", "huber:delta=2"]
    assert [g["limit"] for g in doc["gates"]] == [100.0]


def test_pyproject_without_losscli_table_is_ignored(capfd: pytest.CaptureFixture[str],
                                                    tmp_path: Path, data: Path) -> None:
    write(tmp_path / "pyproject.toml", '[project]\nname = "x"\n\n[tool.black]\nline-length = 9\n')
    rc, doc, err = run_json(capfd, data, "--pred", "guess", "--target", "truth", "-l", "mse",
                            "--show-config")
    assert (rc, err) == (0, "")
    assert doc["gates"] == []
    assert {k for k, v in doc["config"].items() if v["source"] != "default"} == {
        "pred", "target", "losses", "format"}


def test_missing_config_file(capfd: pytest.CaptureFixture[str], tmp_path: Path,
                             data: Path) -> None:
    missing = tmp_path / "nope.toml"
    assert_input_error(cli(capfd, "eval", data, "--config", missing), "--config", str(missing))


# --- precedence: flags over the file over defaults -------------------------------------------


def test_flags_override_file(capfd: pytest.CaptureFixture[str], tmp_path: Path,
                             data: Path) -> None:
    write(tmp_path / "pyproject.toml",
          '[tool.losscli]\npred = "truth"\ntarget = "guess"\nlosses = ["mse"]\nformat = "csv"\n'
          'tolerance = "0%"\n\n[tool.losscli.max]\nmse = 0.001\n')
    rc, doc, err = run_json(capfd, data, "--pred", "guess", "--target", "truth", "-l", "mae",
                            "--max", f"mae={MAE!r}", "--show-config")
    assert (rc, err) == (0, "")
    assert doc["columns"]["pred"] == ["guess"] and doc["columns"]["target"] == "truth"
    assert values(doc) == {"mae": pytest.approx(MAE, rel=1e-14)}
    assert [(g["loss"], g["limit"], g["passed"]) for g in doc["gates"]] == [("mae", MAE, True)]
    conf = doc["config"]
    for key in ("pred", "target", "losses", "max", "format"):
        assert conf[key]["source"] == "flag", key
    assert conf["tolerance"]["source"] == "pyproject.toml [tool.losscli]"


def test_file_overrides_defaults(capfd: pytest.CaptureFixture[str], tmp_path: Path,
                                 data: Path) -> None:
    write(tmp_path / "pyproject.toml",
          '[tool.losscli]\npred = "guess"\ntarget = "truth"\nlosses = ["mse"]\n'
          'vanish_tol = 0.75\nchunk_rows = 2\n')
    rc, doc, err = run_json(capfd, data)
    assert (rc, err) == (0, "")
    assert doc["settings"]["vanish_tol"] == 0.75
    assert doc["settings"]["chunk_rows"] == 2
    g = 2 * E
    assert doc["losses"][0]["gradient"]["vanishing_fraction"] == pytest.approx(
        float(np.mean(np.abs(g) <= 0.75)), abs=1e-15)
    # and a flag beats the file
    rc, doc, err = run_json(capfd, data, "--vanish-tol", "2.5")
    assert (rc, err) == (0, "")
    assert doc["settings"]["vanish_tol"] == 2.5


def test_show_config_origins(capfd: pytest.CaptureFixture[str], tmp_path: Path,
                             data: Path) -> None:
    write(tmp_path / "pyproject.toml", PYPROJECT.format(mse_max="100"))
    rc, doc, err = run_json(capfd, data, "--target", "truth", "--show-config")
    assert (rc, err) == (0, "")
    conf = doc["config"]
    label = "pyproject.toml [tool.losscli]"
    assert conf["pred"] == {"value": "guess", "source": label}
    assert conf["target"] == {"value": "truth", "source": "flag"}
    assert conf["losses"] == {"value": ["mse", "huber:delta=2"], "source": label}
    assert conf["max"]["source"] == label
    assert conf["format"] == {"value": "json", "source": "flag"}
    assert conf["weight"] == {"value": None, "source": "default"}
    assert conf["nan"] == {"value": "error", "source": "default"}
    assert conf["baseline"]["source"] == "default"


def test_show_config_names_losscli_toml(capfd: pytest.CaptureFixture[str], tmp_path: Path,
                                        data: Path) -> None:
    write(tmp_path / "losscli.toml", 'pred = "guess"\ntarget = "truth"\nlosses = ["mse"]\n')
    rc, doc, err = run_json(capfd, data, "--show-config")
    assert (rc, err) == (0, "")
    assert doc["config"]["pred"]["source"] == "losscli.toml"
    assert doc["config"]["tolerance"]["source"] == "default"


def test_without_show_config_no_config_key(capfd: pytest.CaptureFixture[str], tmp_path: Path,
                                           data: Path) -> None:
    write(tmp_path / "losscli.toml", 'pred = "guess"\ntarget = "truth"\nlosses = ["mse"]\n')
    rc, doc, err = run_json(capfd, data)
    assert (rc, err) == (0, "")
    assert "config" not in doc


# --- baseline and tolerance from the file ----------------------------------------------------


def test_baseline_relative_to_config_file(capfd: pytest.CaptureFixture[str], tmp_path: Path,
                                          data: Path) -> None:
    (tmp_path / "ci").mkdir()
    conf = write(tmp_path / "ci" / "losscli.toml",
                 'pred = "guess"\ntarget = "truth"\nlosses = ["mse"]\nbaseline = "base.json"\n')
    baseline_file(tmp_path / "ci" / "base.json", MSE)  # the one the file means: passes
    baseline_file(tmp_path / "base.json", MSE - 0.5)  # same name in the working directory: fails
    rc, doc, err = run_json(capfd, data, "--config", conf, "--show-config")
    assert (rc, err) == (0, "")
    [gate] = doc["gates"]
    assert (gate["kind"], gate["limit"], gate["passed"]) == ("baseline", MSE, True)
    assert Path(doc["config"]["baseline"]["value"]).resolve() == (
        tmp_path / "ci" / "base.json").resolve()
    # --baseline on the command line is relative to the working directory and wins
    rc, doc, err = run_json(capfd, data, "--config", conf, "--baseline", "base.json")
    assert rc == 1
    assert doc["gates"][0]["limit"] == MSE - 0.5


def test_baseline_in_pyproject(capfd: pytest.CaptureFixture[str], tmp_path: Path,
                               data: Path) -> None:
    baseline_file(tmp_path / "ci" / "baseline.json", 2.0)
    write(tmp_path / "pyproject.toml",
          '[tool.losscli]\npred = "guess"\ntarget = "truth"\nlosses = ["mse"]\n'
          'baseline = "ci/baseline.json"\ntolerance = "5%"\n')
    rc, doc, err = run_json(capfd, data)
    limit = 2.0 + 2.0 * 0.05
    assert err.count("gate failed") == rc
    assert rc == (0 if limit >= MSE else 1)
    [gate] = doc["gates"]
    assert gate["limit"] == pytest.approx(limit, rel=1e-15)
    assert gate["passed"] is (limit >= MSE)


@pytest.mark.parametrize(("tolerance", "limit"), [("0.5", 2.5), ('"0.5"', 2.5), ('"25%"', 2.5),
                                                  ("0", 2.0)])
def test_tolerance_from_file(capfd: pytest.CaptureFixture[str], tmp_path: Path, data: Path,
                             tolerance: str, limit: float) -> None:
    baseline_file(tmp_path / "base.json", 2.0)
    write(tmp_path / "losscli.toml", f'pred = "guess"\ntarget = "truth"\nlosses = ["mse"]\n'
          f'baseline = "base.json"\ntolerance = {tolerance}\n')
    rc, doc, err = run_json(capfd, data)
    [gate] = doc["gates"]
    assert gate["limit"] == pytest.approx(limit, rel=1e-15)
    assert err.count("gate failed") == rc
    assert rc == (0 if limit >= MSE else 1)


def test_max_table_with_full_spec_key(capfd: pytest.CaptureFixture[str], tmp_path: Path,
                                      data: Path) -> None:
    write(tmp_path / "losscli.toml", 'pred = "guess"\ntarget = "truth"\n'
          'losses = ["huber:delta=2.0", "mse"]\n\n[max]\n"huber:delta=2" = 0.5\nmse = 100\n')
    rc, doc, err = run_json(capfd, data)
    assert rc == (0 if HUBER2 <= 0.5 else 1)
    assert err.count("gate failed: huber:delta=2 ") == rc
    assert [(g["loss"], g["limit"]) for g in doc["gates"]] == [("huber:delta=2", 0.5),
                                                              ("mse", 100.0)]


# --- malformed files: exit 2, one line, naming the key ---------------------------------------


def test_malformed_toml(capfd: pytest.CaptureFixture[str], tmp_path: Path, data: Path) -> None:
    conf = write(tmp_path / "pyproject.toml", '[tool.losscli\npred = "guess"\n')
    assert_input_error(cli(capfd, "eval", data), str(conf), "TOML", "line 1")


def test_malformed_toml_losscli_toml(capfd: pytest.CaptureFixture[str], tmp_path: Path,
                                     data: Path) -> None:
    conf = write(tmp_path / "losscli.toml", 'pred = "guess\n')
    assert_input_error(cli(capfd, "eval", data), str(conf), "TOML")


@pytest.mark.parametrize("name", ["pyproject.toml", "losscli.toml"])
def test_deeply_nested_toml_is_refused(capfd: pytest.CaptureFixture[str], tmp_path: Path,
                                       data: Path, name: str) -> None:
    """Found by fuzzing: tomllib raised RecursionError on deeply nested arrays, an internal
    error (exit 3)."""
    prefix = "[tool.losscli]\n" if name == "pyproject.toml" else ""
    conf = write(tmp_path / name, prefix + "losses = " + "[" * 5000 + "]" * 5000 + "\n")
    assert_input_error(cli(capfd, "eval", data), str(conf), "TOML", "nested too deeply")


@pytest.mark.parametrize("name", ["pyproject.toml", "losscli.toml"])
def test_unknown_key(capfd: pytest.CaptureFixture[str], tmp_path: Path, data: Path,
                     name: str) -> None:
    prefix = "[tool.losscli]\n" if name == "pyproject.toml" else ""
    write(tmp_path / name, prefix + 'pred = "guess"\nprd = "guess"\n')
    assert_input_error(cli(capfd, "eval", data), name, "unknown key 'prd'", "pred")


@pytest.mark.parametrize(("body", "key"), [
    ('losses = "mse"', "losses"),
    ("losses = [1, 2]", "losses"),
    ("pred = 3", "pred"),
    ("weight = false", "weight"),
    ("max = 0.25", "max"),
    ('[tool.losscli.max]\nmse = "low"', "max"),
    ("[tool.losscli.max]\nmse = true", "max"),
    ("tolerance = true", "tolerance"),
    ("tolerance = [1]", "tolerance"),
    ('logits = "yes"', "logits"),
    ('nan = "maybe"', "nan"),
    ("chunk_rows = 0", "chunk_rows"),
    ("chunk_rows = 1.5", "chunk_rows"),
    ('vanish_tol = "1e-6"', "vanish_tol"),
    ("explode_tol = true", "explode_tol"),
    ('grad_clip = "1"', "grad_clip"),
    ("baseline = 1", "baseline"),
    ("format = 2", "format"),
])
def test_wrong_type_names_key(capfd: pytest.CaptureFixture[str], tmp_path: Path, data: Path,
                              body: str, key: str) -> None:
    write(tmp_path / "pyproject.toml",
          body if body.startswith("[") else f"[tool.losscli]\n{body}\n")
    assert_input_error(cli(capfd, "eval", data, "--pred", "guess", "--target", "truth"),
                       "pyproject.toml", f"'{key}'")


def test_wrong_type_in_losscli_toml_max_table(capfd: pytest.CaptureFixture[str],
                                              tmp_path: Path, data: Path) -> None:
    write(tmp_path / "losscli.toml", '[max]\nmse = "0.25"\n')
    assert_input_error(cli(capfd, "eval", data), "losscli.toml", "'max'")


def test_losscli_not_a_table(capfd: pytest.CaptureFixture[str], tmp_path: Path,
                             data: Path) -> None:
    write(tmp_path / "pyproject.toml", "[tool]\nlosscli = 1\n")
    assert_input_error(cli(capfd, "eval", data), "pyproject.toml", "[tool.losscli]")


def test_tool_not_a_table(capfd: pytest.CaptureFixture[str], tmp_path: Path,
                          data: Path) -> None:
    """`tool = 1` is a malformed file, not a bug in losscli: exit 2, naming the key."""
    write(tmp_path / "pyproject.toml", 'tool = 1\n[project]\nname = "x"\n')
    assert_input_error(cli(capfd, "eval", data), "pyproject.toml", "tool")


@pytest.mark.parametrize(("body", "needle"), [
    ('losses = ["msx"]', "'msx'"),
    ('format = "xml"', "'xml'"),
    ('tolerance = "lots"', "'lots'"),
    ('baseline = "missing.json"', "missing.json"),
])
def test_bad_values_in_file(capfd: pytest.CaptureFixture[str], tmp_path: Path, data: Path,
                            body: str, needle: str) -> None:
    write(tmp_path / "losscli.toml", f'pred = "guess"\ntarget = "truth"\n{body}\n')
    assert_input_error(cli(capfd, "eval", data), needle)
