"""Edges met by using the commands as a new user and a CI author would: each test is the
regression test of one defect, run through the command line (exit code, stdout, stderr)."""

from __future__ import annotations

from pathlib import Path

import pytest
from _helpers.cli import assert_input_error, cli

SAMPLES = Path(__file__).resolve().parent.parent / "sample_data"
REGRESSION = SAMPLES / "regression.parquet"


def test_write_baseline_with_an_impossible_directory_is_an_input_error(
        capfd: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A name too long for the file system was an internal error (exit 3) while the missing
    directory was looked for; now one line before the pass, and no file is left."""
    target = tmp_path / ("d" * 300) / "baseline.json"
    assert_input_error(cli(capfd, "eval", REGRESSION, "--write-baseline", target),
                       "--write-baseline", "File name too long")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("key", ["y", "y_hat", "w"])
def test_compare_key_that_is_a_selected_column_is_refused(
        capfd: pytest.CaptureFixture[str], key: str) -> None:
    """--key naming the target (or a prediction or the weight) was a KeyError (exit 3)."""
    assert_input_error(cli(capfd, "compare", REGRESSION, REGRESSION, "--key", key,
                           "--weight", "w", "--loss", "mse"),
                       f"--key {key}", "a column of its own")


MULTICLASS = SAMPLES / "multiclass.csv"


@pytest.mark.parametrize("spec", ["cce:class_weights=,,,", "cce:class_weights=1,,2,3",
                                  "cce:class_weights=1,2,3,4,,", "cce:,class_weights=1,2,3,4"])
def test_an_empty_item_in_a_spec_is_refused(capfd: pytest.CaptureFixture[str],
                                            spec: str) -> None:
    """Empty comma items were skipped: 'class_weights=,,,' ran plain cce and '1,,2,3' the
    weights 1,2,3 (then refused for their count), each silently."""
    assert_input_error(cli(capfd, "eval", MULTICLASS, "--pred", "prob_*", "--target", "label",
                           "--loss", spec), "empty item", spec)


def test_a_trailing_comma_in_a_spec_still_reads(capfd: pytest.CaptureFixture[str]) -> None:
    import json

    rc, out, err = cli(capfd, "eval", MULTICLASS, "--pred", "prob_*", "--target", "label",
                       "--loss", "cce:class_weights=1,2,3,4,", "--format", "json")
    assert rc == 0, err
    assert json.loads(out)["losses"][0]["params"]["class_weights"] == [1.0, 2.0, 3.0, 4.0]


@pytest.mark.parametrize("command", [
    ["eval", MULTICLASS, "--pred", "prob_*"],
    ["compare", MULTICLASS, MULTICLASS, "--pred", "prob_*"]])
def test_a_single_column_loss_on_class_columns_says_so_in_words(
        capfd: pytest.CaptureFixture[str], command: list[object]) -> None:
    """eval said 'need(s) a single column', compare 'mse, mae do(es) not fit 4 prediction
    column(s)': one message, in words, from both."""
    err = assert_input_error(cli(capfd, *command, "--target", "label", "--loss", "mse",
                                 "--loss", "mae"),
                             "4 prediction columns were selected", "mse, mae are losses of a "
                             "single column")
    assert "(s)" not in err


def test_compare_of_a_class_loss_on_one_column_names_what_it_needs(
        capfd: pytest.CaptureFixture[str]) -> None:
    assert_input_error(cli(capfd, "compare", REGRESSION, "--baseline-pred", "y_hat", "--pred",
                           "w", "--target", "y", "--loss", "cce"),
                       "cce needs one prediction column per class")


@pytest.mark.parametrize(("args", "needle"), [
    (["--check", "bce", "--data", REGRESSION], "must be a binary target 0 or 1"),
    (["--check", "bce", "--data", SAMPLES / "binary.csv", "--pred", "logit"], "--logits"),
    (["--check", "cce", "--data", SAMPLES / "multiclass.parquet", "--pred", "logit_vec",
      "--target", "label_id"], "--logits")])
def test_gradient_check_data_outside_the_losss_task_is_refused(
        capfd: pytest.CaptureFixture[str], args: list[object], needle: str) -> None:
    """--check bce --data on regression targets compared gradients at targets of 40 and
    reported a worst error of 3.6e20 (exit 1: 'the gradient is wrong'); logits read as
    probabilities likewise. The data are refused as eval refuses them."""
    assert_input_error(cli(capfd, "losses", *args), needle)


@pytest.mark.parametrize("columns", [80, 100])
@pytest.mark.parametrize("ci", ["johnson", "bootstrap"])
def test_compare_table_with_long_verdicts_reads_on_a_narrow_terminal(
        columns: int, ci: str) -> None:
    """The first table (delta .. verdict) was always kept whole: with the verdict 'no
    significant difference' it was wider than 80 columns and Rich cut every column into an
    ellipsis and dropped the loss names. Its columns now move to the next table instead."""
    from terminal import run_tty

    rc, out = run_tty("compare", SAMPLES / "binary.parquet", SAMPLES / "binary.csv", "--pred",
                      "prob", "--target", "label", "--loss", "bce",
                      "--loss", "focal", "--ci", ci, columns=columns)
    assert rc == 0, out
    assert "…" not in out
    assert max(len(line) for line in out.splitlines()) <= columns
    rows = [line for line in out.splitlines() if line.startswith("│ bce ")]
    assert any("no significant difference" in r for r in rows), out
    assert any("[0, 0]" in r for r in rows), out


@pytest.mark.parametrize("command", [
    ["eval", REGRESSION, "--loss", "mse"],
    ["compare", REGRESSION, "--baseline-pred", "y_hat", "--pred", "w", "--target", "y"]])
@pytest.mark.parametrize("seed", ["-1", str(1 << 64)])
def test_a_seed_outside_64_bits_is_refused(capfd: pytest.CaptureFixture[str],
                                           command: list[object], seed: str) -> None:
    """The replicate hash takes the seed modulo 2^64: -1 ran as 2^64 - 1 and 2^64 as 0,
    reported as given, so two 'different' seeds gave the same interval."""
    assert_input_error(cli(capfd, *command, "--ci", "bootstrap", f"--seed={seed}"),
                       "--seed must be an integer from 0 to 2^64 - 1", seed)


def test_the_largest_seed_runs_and_is_reported(capfd: pytest.CaptureFixture[str]) -> None:
    import json

    seed = (1 << 64) - 1
    rc, out, err = cli(capfd, "eval", REGRESSION, "--loss", "mse", "--ci", "bootstrap",
                       "--bootstrap-samples", "20", f"--seed={seed}", "--format", "json")
    assert rc == 0, err
    assert json.loads(out)["losses"][0]["ci"]["seed"] == seed


def test_a_configured_seed_outside_64_bits_names_the_file(
        capfd: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    cfg = tmp_path / "losscli.toml"
    cfg.write_text("seed = -3\n", encoding="utf-8")
    assert_input_error(cli(capfd, "eval", REGRESSION, "--config", cfg), "--seed", "-3",
                       "losscli.toml")


def test_eval_and_compare_state_gate_results_in_the_same_words(
        capfd: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """eval's and compare's markdown verdicts, table lines and '|' escaping come from one
    helper each (they were two copies)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "a|b.parquet"
    y = [float(i % 7) for i in range(40)]
    pq.write_table(pa.table({"y": y, "old": [v + 0.1 for v in y],
                             "new": [v + 1.0 for v in y]}), path)
    ev = ["eval", path, "--pred", "new", "--target", "y", "--loss", "mse", "--loss", "mae",
          "--max", "mse=0.5", "--max", "mae=5"]
    cmp = ["compare", path, "--baseline-pred", "old", "--pred", "new", "--target", "y",
           "--loss", "mse", "--loss", "mae", "--fail-if-worse", "--tolerance", "0.95"]
    for args in (ev, cmp):
        rc, out, err = cli(capfd, *args, "--format", "markdown")
        assert rc == 1, err
        assert "Gates: **FAILED (1 of 2 gates)**" in out
        assert "a\\|b.parquet" in out and "a|b" not in out.replace("a\\|b", "")
        rc, out, err = cli(capfd, *args)
        assert rc == 1, err
        assert "FAILED: 1 of 2 gates" in out


def test_a_default_loss_compare_leaves_out_is_a_note_as_in_eval(
        capfd: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """compare printed 'losscli: warning: poisson skipped' on stderr (and under 'warnings') for
    a loss nobody asked for, where eval writes a note under the table and in 'notes'."""
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "counts.parquet"
    y = [i % 5 for i in range(50)]  # an integer column: counts
    pq.write_table(pa.table({"y": y, "old": [v + 0.3 for v in y],
                             "new": [v - 0.2 for v in y]}), path)
    docs = []
    for args in (["eval", path, "--pred", "new"],
                 ["compare", path, "--baseline-pred", "old", "--pred", "new"]):
        rc, out, err = cli(capfd, *args, "--target", "y", "--format", "json")
        assert rc == 0 and err == "", err
        docs.append(json.loads(out))
        for fmt in ("table", "markdown"):  # the markdown of eval had no notes at all
            rc, out, err = cli(capfd, *args, "--target", "y", "--format", fmt)
            assert rc == 0 and err == "", err
            assert "note: poisson skipped" in out, fmt
    for doc in docs:
        assert doc["task"] == "counts" and doc["warnings"] == []
        assert [n.startswith("poisson skipped") for n in doc["notes"]] == [True]
        assert "poisson" not in [r["spec"] for r in doc["losses"]]


def test_compare_show_config_shows_the_settings_in_the_table(
        capfd: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """compare --show-config put the settings in the JSON only; the table printed nothing of
    them (eval's and recommend's tables end with the configuration table)."""
    cfg = tmp_path / "losscli.toml"
    cfg.write_text("alpha = 0.01\n", encoding="utf-8")
    rc, out, err = cli(capfd, "compare", REGRESSION, "--baseline-pred", "y_hat", "--pred", "w",
                       "--target", "y", "--loss", "mse", "--config", cfg, "--show-config")
    assert rc == 0, err
    assert "Configuration" in out
    row = next(line for line in out.splitlines() if line.startswith("│ alpha "))
    assert "0.01" in row and "losscli.toml" in row


@pytest.mark.parametrize("columns", [80, 200])
def test_catalog_parameters_read_as_specs_without_python_reprs(columns: int) -> None:
    """The catalog printed 'alpha=None' and 'class_weights=None' (Python's repr) and did not
    say which parameters take 'balanced'."""
    from terminal import run_tty

    rc, out = run_tty("losses", columns=columns)
    assert rc == 0, out
    assert "None" not in out
    for text in ("delta=1 (> 0)", "pos_weight=1 (> 0, or balanced)",
                 "alpha: not set (in [0, 1], or balanced)", "class_weights: not set"):
        assert text in out, text


@pytest.mark.parametrize("second", ["-", "/dev/stdin"])
def test_compare_of_stdin_with_itself_says_stdin_is_read_once(second: str) -> None:
    """'cat f.csv | losscli compare - -' read the header for the baseline and then said
    'stdin: no CSV data (empty input)' about data that had been given."""
    from _helpers.cli import cli_stdin

    data = (SAMPLES / "regression.csv").read_bytes()
    assert_input_error(cli_stdin(data, "compare", "-", second, "--loss", "mse"),
                       "both inputs are stdin")


def test_compare_ci_none_is_refused_naming_the_file_and_not_offered_in_help(
        capfd: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """compare --help offered '--ci ... or none', which compare refuses; 'ci = "none"' in a
    settings file shared with eval was refused without naming the file."""
    cfg = tmp_path / "losscli.toml"
    cfg.write_text('ci = "none"\n', encoding="utf-8")
    assert_input_error(cli(capfd, "compare", REGRESSION, "--baseline-pred", "y_hat", "--pred",
                           "w", "--target", "y", "--config", cfg),
                       "compare needs an interval", "losscli.toml")
    rc, out, _ = cli(capfd, "compare", "--help-all")
    assert rc == 0
    ci_help = " ".join(out[out.index("--ci "):out.index("--confidence")].split())
    assert "bootstrap" in ci_help and "none" not in ci_help


@pytest.mark.parametrize("command", ["eval", "compare", "recommend", "losses"])
def test_help_words_options_one_way_across_commands(command: str) -> None:
    """compare's help named columns COL and COLUMN and showed '[default: error]', losses'
    showed '<float>', '[default: 1e-06]' and '<table|json>': every command now says defaults
    in the text and names a column COL."""
    from terminal import run_tty

    rc, out = run_tty(command, "--help")
    assert rc == 0, out
    for word in ("[default:", "COLUMN ", "<float>", "<int>"):
        assert word not in out, (word, out)


def test_losses_format_error_is_worded_as_the_other_commands(
        capfd: pytest.CaptureFixture[str]) -> None:
    assert_input_error(cli(capfd, "losses", "--format", "csv"),
                       "--format must be one of table, json for losses, got 'csv'")


def test_a_compare_report_as_baseline_points_to_write_baseline(
        capfd: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """The refusal of a report that is not eval's told the user to record one with '--format
    json --output FILE'; the documented way is --write-baseline (which also skips the
    configured comparison)."""
    report = tmp_path / "compare.json"
    rc, _out, err = cli(capfd, "compare", REGRESSION, "--baseline-pred", "y_hat", "--pred", "w",
                       "--target", "y", "--loss", "mse", "--format", "json", "--output", report)
    assert rc == 0, err
    err = assert_input_error(cli(capfd, "eval", REGRESSION, "--baseline", report),
                             "not a losscli eval JSON report", "--write-baseline FILE")
    assert "--output" not in err


def test_an_underflowed_p_value_reads_as_below_1e_300_not_zero(
        capfd: pytest.CaptureFixture[str]) -> None:
    """A paired t-test far in the tail underflows to 0.0; compare printed 'p = 0', a
    probability no test gives. The JSON keeps the number; the text says '< 1e-300'."""
    import json

    import pyarrow.parquet as pq
    import scipy.stats

    t = pq.read_table(REGRESSION)
    y, a, b = (t[c].to_numpy() for c in ("y", "y_hat", "w"))
    assert scipy.stats.ttest_rel((b - y) ** 2, (a - y) ** 2).pvalue < 1e-300  # the reference
    args = ["compare", REGRESSION, "--baseline-pred", "y_hat", "--pred", "w", "--target", "y",
            "--loss", "mse"]
    rc, out, err = cli(capfd, *args)
    assert rc == 0, err
    assert "mse: significantly worse" in out and "p < 1e-300" in out
    assert "p = 0 " not in out
    row = next(line for line in out.splitlines() if line.startswith("│ mse "))
    assert "<1e-300" in row
    rc, out, err = cli(capfd, *args, "--format", "json")
    assert rc == 0, err
    assert json.loads(out)["losses"][0]["p_value"] < 1e-300


@pytest.mark.parametrize("ci", ["johnson", "t", "bootstrap"])
def test_one_row_has_no_interval_whatever_the_method(capfd: pytest.CaptureFixture[str],
                                                     tmp_path: Path, ci: str) -> None:
    """On one row johnson and t gave no interval (null) while the bootstrap gave [1, 1], a
    zero-width interval from resampling a single row; now every method gives none."""
    import json

    path = tmp_path / "one.csv"
    path.write_text("y,pred\n1.5,2.5\n", encoding="utf-8")
    rc, out, err = cli(capfd, "eval", path, "--loss", "mse", "--loss", "rmse", "--ci", ci,
                       "--format", "json")
    assert rc == 0, err
    for loss in json.loads(out)["losses"]:
        assert loss["value"] == 1.0
        assert loss["se"] is None
        assert loss["ci"]["low"] is None and loss["ci"]["high"] is None
        assert loss["ci"]["method"] == ci


def test_a_long_spec_folds_and_keeps_value_and_interval_in_the_first_table() -> None:
    """A weighted sum as long as the terminal is narrow: the loss column folds, the value, its
    standard error and its interval stay together in 'Losses' (not moved to a table titled
    'Gradient statistics'), and nothing becomes an ellipsis."""
    from terminal import run_tty

    spec = "0.1*mse+0.2*mae+0.3*huber:delta=2+0.4*log_cosh"
    rc, out = run_tty("eval", REGRESSION, "--loss", spec, "--loss", "quantile:q=0.9")
    assert rc == 0, out
    assert "…" not in out and max(len(line) for line in out.splitlines()) <= 80
    losses = out[out.index("Losses"):out.index("Gradient statistics")]
    for header in ("value", "se", "95% CI (johnson)"):
        assert header in losses, header
