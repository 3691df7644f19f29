"""The second hour of a new user: each case starts from a file a user could have written and
fails on the behaviour that was silently wrong, contradictory or led nowhere."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_cli import assert_input_error, cli


def _two_versions(tmp_path: Path, rng: np.random.Generator) -> tuple[Path, Path, pd.DataFrame,
                                                                      pd.DataFrame]:
    n = 60
    y = rng.normal(10.0, 3.0, n)
    v1 = pd.DataFrame({"id": np.arange(n), "y": y, "pred": y + rng.normal(0, 1, n)})
    v2 = pd.DataFrame({"id": np.arange(n), "y": y, "pred": y + rng.normal(0, 1, n)})
    a, b = tmp_path / "v1.parquet", tmp_path / "v2.parquet"
    v1.to_parquet(a, index=False)
    v2.sample(frac=1.0, random_state=1).to_parquet(b, index=False)
    return a, b, v1, v2


# --- 1: compare --key checks the candidate's target -------------------------------------------


def test_keyed_compare_refuses_a_changed_candidate_target(
        capfd: pytest.CaptureFixture[str], tmp_path: Path, rng: np.random.Generator) -> None:
    a, _, _, v2 = _two_versions(tmp_path, rng)
    v2.loc[3, "y"] += 100.0  # the candidate file holds another target for id 3
    b = tmp_path / "v2_changed.parquet"
    v2.sample(frac=1.0, random_state=2).to_parquet(b, index=False)
    err = assert_input_error(cli(capfd, "compare", a, b, "--key", "id"), "--key id",
                             "id 3", "the targets differ")
    y3 = float(v2.loc[3, "y"])
    assert f"= {y3 - 100.0:.6g}," in err and f"= {y3:.6g};" in err


def test_keyed_compare_scores_both_against_the_same_target(
        capfd: pytest.CaptureFixture[str], tmp_path: Path, rng: np.random.Generator) -> None:
    a, b, v1, v2 = _two_versions(tmp_path, rng)
    rc, out, err = cli(capfd, "compare", a, b, "--key", "id", "--loss", "mse", "--format",
                       "json")
    assert rc == 0, err
    doc = json.loads(out)
    (mse,) = doc["losses"]
    assert mse["baseline"] == pytest.approx(np.mean((v1.pred - v1.y) ** 2), rel=1e-12)
    assert mse["candidate"] == pytest.approx(np.mean((v2.pred - v2.y) ** 2), rel=1e-12)
    # the sides are named as their files name them, not by internal join names
    assert doc["baseline"]["pred"] == ["pred"] and doc["candidate"]["target"] == "y"
    assert doc["baseline"]["path"] == str(a) and doc["candidate"]["path"] == str(b)


def test_keyed_compare_target_of_one_side_only(
        capfd: pytest.CaptureFixture[str], tmp_path: Path, rng: np.random.Generator) -> None:
    a, _, v1, v2 = _two_versions(tmp_path, rng)
    b = tmp_path / "preds_only.parquet"
    v2[["id", "pred"]].iloc[::-1].to_parquet(b, index=False)
    rc, out, err = cli(capfd, "compare", a, b, "--key", "id", "--target", "y", "--loss",
                       "mae", "--format", "json")
    assert rc == 0, err
    (mae,) = json.loads(out)["losses"]
    assert mae["candidate"] == pytest.approx(np.mean(np.abs(v2.pred - v1.y)), rel=1e-12)


# --- 2: whole numbers in a float column are amounts, not counts --------------------------------


def _diabetes(tmp_path: Path, suffix: str) -> tuple[Path, np.ndarray, np.ndarray]:
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge

    x, y = load_diabetes(return_X_y=True)
    pred = Ridge(alpha=0.1).fit(x, y).predict(x)
    path = tmp_path / f"diabetes.{suffix}"
    frame = pd.DataFrame({"y": y, "pred": pred})  # y is float64 holding whole numbers
    frame.to_csv(path, index=False) if suffix == "csv" else frame.to_parquet(path, index=False)
    return path, y, pred


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_float_whole_number_target_is_regression(capfd: pytest.CaptureFixture[str],
                                                 tmp_path: Path, suffix: str) -> None:
    from sklearn.metrics import mean_squared_error

    path, y, pred = _diabetes(tmp_path, suffix)
    rc, out, err = cli(capfd, "eval", path, "--format", "json")
    assert rc == 0, err
    doc = json.loads(out)
    assert doc["task"] == "regression"
    assert "poisson" not in [r["name"] for r in doc["losses"]]
    mse = next(r for r in doc["losses"] if r["name"] == "mse")
    assert mse["value"] == pytest.approx(mean_squared_error(y, pred), rel=1e-12)
    rc, out, err = cli(capfd, "recommend", path, "--format", "json")
    rec = json.loads(out)
    assert rc == 0 and rec["task"] == "regression" and rec["recommended"]["name"] != "poisson"
    assert "--task counts" in rec["task_reason"]
    # with the losses given, the report names the task the same way
    rc, out, err = cli(capfd, "eval", path, "--loss", "mse", "--format", "json")
    assert rc == 0 and json.loads(out)["task"] == "regression"
    # --task counts still scores them as counts
    rc, out, err = cli(capfd, "eval", path, "--task", "counts", "--format", "json")
    assert rc == 0 and json.loads(out)["task"] == "counts"


def test_integer_target_column_is_still_counts(capfd: pytest.CaptureFixture[str],
                                               tmp_path: Path, rng: np.random.Generator) -> None:
    mu = np.exp(rng.normal(1.0, 0.4, 500))
    path = tmp_path / "counts.csv"
    pd.DataFrame({"y": rng.poisson(mu), "pred": mu}).to_csv(path, index=False)
    rc, out, _ = cli(capfd, "eval", path, "--format", "json")
    assert rc == 0 and json.loads(out)["task"] == "counts"


# --- 3: recommend never recommends a loss the data rule out; every printed command runs -------


def test_counts_with_nonpositive_predictions_recommend_a_loss_that_runs(
        capfd: pytest.CaptureFixture[str], tmp_path: Path, rng: np.random.Generator) -> None:
    import shlex

    mu = np.exp(rng.normal(1.0, 0.5, 2000))
    y = rng.poisson(mu)
    pred = mu + rng.normal(0.0, 1.5, mu.size)  # a linear model: some predictions <= 0
    assert (pred <= 0).sum() > 10
    path = tmp_path / "counts.csv"
    pd.DataFrame({"y": y, "pred": pred}).to_csv(path, index=False)
    rc, out, err = cli(capfd, "recommend", path, "--format", "json")
    assert rc == 0, err
    doc = json.loads(out)
    assert doc["task"] == "counts"
    rec = doc["recommended"]
    assert rec["name"] == "mse" and rec["value"] == pytest.approx(np.mean((pred - y) ** 2),
                                                                  rel=1e-12)
    poisson = doc["alternatives"][-1]
    assert poisson["name"] == "poisson" and poisson["command"] is None
    assert f"{int((pred <= 0).sum()):,} prediction(s) are <= 0" in doc["reasons"][0]
    for choice in [rec, *doc["alternatives"]]:
        if choice["command"] is None:
            continue
        rc, out, err = cli(capfd, *shlex.split(choice["command"])[1:], "--format", "json")
        assert rc == 0, (choice["command"], err)


# --- 4: compare counts rows, not cells, as eval does -------------------------------------------


def test_compare_counts_rows_with_bad_cells(capfd: pytest.CaptureFixture[str],
                                            tmp_path: Path) -> None:
    one = tmp_path / "both.csv"
    # row 2: no target (both sides lose it), row 3: no baseline prediction
    one.write_text("y,old,new\n1,1.1,1.2\n,2.1,2.0\n3,,3.1\n4,4.2,4.1\n5,5.1,5.3\n")
    assert_input_error(cli(capfd, "compare", one, "--baseline-pred", "old", "--pred", "new",
                           "--loss", "mse"), "2 row(s) with NaN", "row 2", "'y'")
    rc, out, _ = cli(capfd, "compare", one, "--baseline-pred", "old", "--pred", "new",
                       "--loss", "mse", "--nan", "drop", "--format", "json")
    assert rc == 0
    doc = json.loads(out)
    assert doc["rows"] == 3
    assert doc["warnings"] == ["dropped 2 row(s) with NaN, inf or empty values (first at row 2, "
                               "column 'y')"]
    # two files: a row bad on both sides counts once; the first is the candidate's
    base, cand = tmp_path / "base.csv", tmp_path / "cand.csv"
    base.write_text("y,pred\n1,1.1\n2,2.1\n3,3.3\n4,nan\n5,5.2\n")
    cand.write_text("y,pred\n1,1.2\n2,\n3,3.1\n4,inf\n5,5.1\n")
    rc, out, _ = cli(capfd, "compare", base, cand, "--loss", "mae", "--nan", "drop",
                       "--format", "json")
    doc = json.loads(out)
    assert rc == 0 and doc["rows"] == 3
    assert doc["warnings"] == ["dropped 2 row(s) with NaN, inf or empty values (first at row 2, "
                               "column 'pred')"]
    assert doc["losses"][0]["delta"] == pytest.approx(((0.2 + 0.1 + 0.1) - (0.1 + 0.3 + 0.2)) / 3)


# --- 5: formats that are not read are refused by content, in one line --------------------------


def test_json_and_excel_are_refused_naming_the_formats_read(
        capfd: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    frame = pd.DataFrame({"y": [20.18, 1.0, 3.0], "pred": [19.0, 1.5, 2.5]})
    cases = {"preds.json": (lambda p: frame.to_json(p), "JSON"),
             "preds.jsonl": (lambda p: frame.to_json(p, orient="records", lines=True), "JSON"),
             "preds.csv": (lambda p: frame.to_json(p, orient="records"), "JSON"),
             "preds.xlsx": (lambda p: p.write_bytes(b"PK\x03\x04\x14\x00" + bytes(200)), "Excel"),
             "preds.xls": (lambda p: p.write_bytes(bytes.fromhex("d0cf11e0a1b11ae1") + bytes(99)),
                           "Excel")}
    for name, (write_it, what) in cases.items():
        path = tmp_path / name
        write_it(path)
        err = assert_input_error(cli(capfd, "eval", path), what, "CSV, TSV, Parquet")
        assert "column" not in err and len(err) - len(str(path)) < 220, err
        assert_input_error(cli(capfd, "recommend", path), what)


def test_json_on_stdin_is_refused() -> None:
    from test_cli import cli_stdin

    result = cli_stdin(b'{"y":{"0":1.0},"pred":{"0":2.0}}', "eval", "-")
    assert_input_error(result, "stdin: this is JSON")


# --- 6: a quoted cell of megabytes, with line breaks -------------------------------------------


def _notes_csv(path: Path, rng: np.random.Generator, big: int) -> pd.DataFrame:
    n = 3000
    y = rng.normal(size=n)
    notes = np.array(["ok"] * n, dtype=object)
    notes[::97] = 'said "hi",\nthen left'
    notes[1500] = ("x" * 499 + "\n") * (big // 500)  # a multi-megabyte cell, 8,000 lines
    frame = pd.DataFrame({"y": y, "pred": y + rng.normal(size=n), "a": 1, "b": 2, "c": 3,
                          "d": 4, "note": notes})
    frame.to_csv(path, index=False)
    return frame


@pytest.mark.parametrize("piece", [None, 4096])
def test_quoted_cells_with_line_breaks(capfd: pytest.CaptureFixture[str], tmp_path: Path,
                                       rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch,
                                       piece: int | None) -> None:
    import losscli.sources

    path = tmp_path / "notes.csv"
    frame = _notes_csv(path, rng, 4_000_000)
    assert path.stat().st_size > 4_000_000
    if piece is not None:
        monkeypatch.setattr(losscli.sources, "CSV_PIECE_SIZE", piece)
    rc, out, err = cli(capfd, "eval", path, "--loss", "mse", "--format", "json")
    assert rc == 0, err
    doc = json.loads(out)
    assert doc["source"]["rows"] == len(pd.read_csv(path)) == 3000
    assert doc["losses"][0]["value"] == pytest.approx(
        float(np.mean((frame.pred - frame.y) ** 2)), rel=1e-12)


def test_quoted_cells_with_line_breaks_on_stdin(tmp_path: Path,
                                                rng: np.random.Generator) -> None:
    from test_cli import cli_stdin

    path = tmp_path / "notes.csv"
    frame = _notes_csv(path, rng, 200_000)
    rc, out, err = cli_stdin(path.read_bytes(), "eval", "-", "--loss", "mae", "-f", "json")
    assert rc == 0, err
    assert json.loads(out)["losses"][0]["value"] == pytest.approx(
        float(np.mean(np.abs(frame.pred - frame.y))), rel=1e-12)


def test_csv_pieces_end_outside_quotes(rng: np.random.Generator) -> None:
    import csv
    import io

    from losscli.sources import _csv_pieces

    rows = [["y", "note"]] + [[str(i), rng.choice(["a", 'b "q" \n c', "d\n\ne", ""])]
                              for i in range(400)]
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    data = buf.getvalue().encode()
    for size in (7, 64, 1000):
        pieces = list(_csv_pieces(io.BytesIO(data), size))
        assert b"".join(bytes(p) for p, _ in pieces) == data[data.index(b"\n") + 1:]
        for piece, breaks in pieces:
            got = list(csv.reader(io.StringIO(bytes(piece).decode())))
            assert all(len(r) == 2 for r in got)  # whole rows: no piece ends inside quotes
            assert breaks == any("\n" in r[1] for r in got)


# --- 7: binary targets of two text (or other) labels: --positive, as scikit-learn's pos_label --


def _cancer(tmp_path: Path) -> tuple[pd.DataFrame, np.ndarray]:
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    data = load_breast_cancer()
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    prob = model.fit(data.data, data.target).predict_proba(data.data)[:, 1]  # P(benign)
    labels = np.asarray(data.target_names)[data.target]  # 'malignant' / 'benign'
    return pd.DataFrame({"label": labels, "prob": prob}), data.target


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_positive_label_scores_a_text_target(capfd: pytest.CaptureFixture[str],
                                             tmp_path: Path, suffix: str) -> None:
    from sklearn.metrics import log_loss

    frame, y = _cancer(tmp_path)
    path = tmp_path / f"cancer.{suffix}"
    frame.to_csv(path, index=False) if suffix == "csv" else frame.to_parquet(path, index=False)
    # without it: the way forward is named
    assert_input_error(cli(capfd, "eval", path), "'label'", "--positive LABEL")
    rc, out, err = cli(capfd, "eval", path, "--positive", "benign", "--loss", "bce", "-f", "json")
    assert rc == 0, err
    bce = json.loads(out)["losses"][0]["value"]
    assert bce == pytest.approx(log_loss(y, frame.prob), rel=1e-12)
    # a typo is refused, never read as "every row negative"
    assert_input_error(cli(capfd, "eval", path, "--positive", "benin"), "'benin'",
                       "'malignant'", "'benign'")
    # recommend prints a command that carries --positive and runs
    rc, out, err = cli(capfd, "recommend", path, "--positive", "benign", "-f", "json")
    rec = json.loads(out)["recommended"]
    assert rc == 0 and "--positive benign" in rec["command"]


def test_positive_from_the_settings_file_and_numeric_labels(
        capfd: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        rng: np.random.Generator) -> None:
    from sklearn.metrics import log_loss

    y = rng.integers(0, 2, 300)
    p = np.clip(0.5 + 0.3 * (2 * y - 1) + rng.normal(0, 0.15, 300), 0.01, 0.99)
    frame = pd.DataFrame({"y": np.where(y == 1, 1, -1), "prob": p})  # an SVM's -1 / 1 labels
    frame.to_csv(tmp_path / "svm.csv", index=False)
    (tmp_path / "losscli.toml").write_text("positive = 1\n")
    monkeypatch.chdir(tmp_path)
    rc, out, err = cli(capfd, "eval", "svm.csv", "--loss", "bce", "-f", "json")
    assert rc == 0, err
    assert json.loads(out)["losses"][0]["value"] == pytest.approx(log_loss(y, p), rel=1e-12)
    frame.assign(y=np.where(y == 1, "yes", "no")).loc[:9].assign(
        y=["yes", "no", "maybe"] + ["no"] * 7).to_csv(tmp_path / "three.csv", index=False)
    assert_input_error(cli(capfd, "eval", "three.csv", "--positive", "yes", "--loss", "bce"),
                       "more than two labels", "'maybe'")


# --- 9, 17: a late bad label names a way forward; no chunk sizes in messages ---------------------


def test_a_late_bad_binary_label_advises_what_helps(capfd: pytest.CaptureFixture[str],
                                                    tmp_path: Path,
                                                    rng: np.random.Generator) -> None:
    n = 70_000
    y = rng.integers(0, 2, n)
    y[69_000] = 2
    path = tmp_path / "late.parquet"
    pd.DataFrame({"y": y, "prob": rng.uniform(0.01, 0.99, n)}).to_parquet(path)
    err = assert_input_error(cli(capfd, "eval", path), "row 69001", "--task regression")
    assert "--loss" not in err and "chunk" not in err


def test_domain_errors_name_no_chunk(capfd: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "rates.csv"
    path.write_text("y,pred\n1,0.5\n2,-16.858020159730973\n3,1.5\n")
    err = assert_input_error(cli(capfd, "eval", path, "--loss", "poisson"), "row 2")
    assert "chunk" not in err
    path.write_text("label,prob\n1,0.5\n0,1.0000000001\n")
    err = assert_input_error(cli(capfd, "eval", path, "--task", "binary"), "row 2",
                             "1.0000000001")
    assert "chunk" not in err


# --- 8: margins are not logits; numbers in messages in 6 significant digits -------------------


def test_svm_margins_get_advice_that_fits_them(capfd: pytest.CaptureFixture[str],
                                               tmp_path: Path) -> None:
    import re

    from sklearn.datasets import load_breast_cancer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import LinearSVC

    data = load_breast_cancer()
    svm = make_pipeline(StandardScaler(), LinearSVC()).fit(data.data, data.target)
    margins = svm.decision_function(data.data)
    path = tmp_path / "svm.csv"
    pd.DataFrame({"y": data.target, "score": margins}).to_csv(path, index=False)
    err = assert_input_error(cli(capfd, "eval", path), "--logits", "calibrate",
                             "--task regression")
    assert f"min {margins.min():.6g}, max {margins.max():.6g}" in err
    assert not re.search(r"\d\.\d{6,}", err), err  # no 17-digit numbers


# --- 11: a comma list of losses; scikit-learn's column names --------------------------------


def test_comma_list_of_losses_suggests_repeated_loss(capfd: pytest.CaptureFixture[str],
                                                     tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_text("y,pred\n1,1.5\n2,2.5\n")
    assert_input_error(cli(capfd, "eval", path, "--loss", "mse,mae"),
                       "--loss mse --loss mae")


def test_y_score_and_a_probs_list_column_are_recognised(
        capfd: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import log_loss

    x, y = load_iris(return_X_y=True)
    probs = LogisticRegression(max_iter=1000).fit(x, y).predict_proba(x)
    path = tmp_path / "iris.parquet"
    pq.write_table(pa.table({"y": y, "probs": pa.array(list(probs))}), path)
    rc, out, err = cli(capfd, "eval", path, "--format", "json")
    assert rc == 0, err
    doc = json.loads(out)
    assert doc["task"] == "multiclass"
    assert doc["losses"][0]["value"] == pytest.approx(log_loss(y, probs), rel=1e-12)
    binary = tmp_path / "scores.csv"
    pd.DataFrame({"y_true": (y == 2).astype(int), "y_score": probs[:, 2]}).to_csv(binary,
                                                                                  index=False)
    rc, out, err = cli(capfd, "eval", binary, "--loss", "bce", "--format", "json")
    assert rc == 0, err
    assert json.loads(out)["losses"][0]["value"] == pytest.approx(
        log_loss(y == 2, probs[:, 2]), rel=1e-12)


# --- 13: confirmations, a tolerance without a gate, re-recording a baseline -------------------


def test_baseline_written_confirmed_and_tolerance_needs_a_gate(
        capfd: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_text("y,pred\n1,1.5\n2,2.5\n3,2.0\n")
    base = tmp_path / "ci" / "base.json"
    rc, _, err = cli(capfd, "eval", path, "--loss", "mse", "--write-baseline", base)
    assert rc == 0 and f"wrote baseline {base}" in err and base.is_file()
    rc, _, err = cli(capfd, "eval", path, "--loss", "mse", "-q", "--write-baseline", base)
    assert rc == 0 and err == ""
    assert_input_error(cli(capfd, "eval", path, "--tolerance", "2%"), "--baseline FILE")
    assert_input_error(cli(capfd, "compare", path, path, "--tolerance", "1%"),
                       "--fail-if-worse")
    rc, _, err = cli(capfd, "eval", path, "--loss", "mse", "--loss", "mae", "--baseline", base)
    assert rc == 1 and "mae" in err and "--write-baseline" in err


# --- 15: markdown names what is compared and does not call the gates a verdict ----------------


def test_compare_markdown_title_and_gates_line(capfd: pytest.CaptureFixture[str],
                                               tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_text("y,old,new\n" + "".join(f"{i},{i + 0.1},{i + 2.0}\n" for i in range(30)))
    rc, out, err = cli(capfd, "compare", path, "--baseline-pred", "old", "--pred", "new",
                       "--loss", "mse", "--format", "markdown")
    assert rc == 0, err
    assert out.startswith(f"### losscli compare: {path}: old vs new\n")
    assert "Gates: none" in out and "Verdict: **no gates**" not in out
    assert "| worse |" in out


# --- 14: the defaults a loss ran with are shown in the table ------------------------------------


def test_table_shows_default_parameters(capfd: pytest.CaptureFixture[str],
                                        tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_text("y,pred\n" + "".join(f"{i},{i + 0.3 * (-1) ** i}\n" for i in range(20)))
    rc, out, err = cli(capfd, "eval", path, "--loss", "huber", "--loss", "quantile",
                       "--loss", "huber:delta=2")
    assert rc == 0, err
    assert "│ huber:delta=1 " in out and "│ quantile:q=0.5 " in out and "│ huber:delta=2 " in out
    rc, out, err = cli(capfd, "eval", path, "--loss", "huber", "--format", "json")
    assert json.loads(out)["losses"][0]["spec"] == "huber"  # the spec as asked


def test_quantile_is_no_default_but_stays_in_the_catalog(capfd: pytest.CaptureFixture[str],
                                                        tmp_path: Path) -> None:
    """quantile at its default q = 0.5 is exactly mae / 2: a default row that says nothing new."""
    path = tmp_path / "p.csv"
    path.write_text("y,pred\n" + "".join(f"{i + 0.5},{i + 0.3 * (-1) ** i}\n"
                                          for i in range(20)))
    rc, out, err = cli(capfd, "eval", path, "--format", "json")
    assert rc == 0, err
    assert [r["name"] for r in json.loads(out)["losses"]] == ["mse", "rmse", "mae", "huber",
                                                              "log_cosh"]
    rc, out, err = cli(capfd, "eval", path, "--loss", "quantile", "--loss", "mae",
                       "--format", "json")
    assert rc == 0, err
    q, mae = (r["value"] for r in json.loads(out)["losses"])
    assert q == pytest.approx(mae / 2, rel=1e-12)


def test_target_only_recommend_takes_no_delta_from_the_target(
        capfd: pytest.CaptureFixture[str], tmp_path: Path, rng: np.random.Generator) -> None:
    """House prices without predictions: huber's delta is not 1.345 x the prices' spread
    (delta=104900); the printed command measures it on a model's residuals and runs."""
    n = 3000
    price = 200_000 + 50_000 * rng.standard_t(3, n)
    pred = price + 2_000.0 * rng.standard_t(3, n)  # heavy-tailed residuals: huber again
    path = tmp_path / "prices.csv"
    pd.DataFrame({"price": price.round(2), "pred": pred.round(2)}).to_csv(path, index=False)
    rc, out, err = cli(capfd, "recommend", path, "--target", "price", "--target-only",
                       "--no-plot")
    assert rc == 0, err
    assert "Recommended  huber" in out and "delta=" not in out
    lines = out.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("Measure its delta"))
    command = lines[at + 1].strip()
    assert command == f"losscli recommend {path} --pred PRED --target price"
    rc, out, err = cli(capfd, "recommend", path, "--target", "price", "--target-only",
                       "--format", "json")
    assert rc == 0, err
    doc = json.loads(out)
    assert doc["recommended"]["params"] == {"delta": None} and doc["recommended"]["spec"] is None
    assert doc["recommended"]["command"] == command
    assert any("delta = 1.345 x the robust scale (1.4826 x MAD) of a model's residuals" in r
               for r in doc["reasons"])
    # the command, with the prediction column filled in, sets delta from the residuals
    argv = command.replace("PRED", "pred").split()[1:]
    rc, out, err = cli(capfd, *argv, "--format", "json")
    assert rc == 0, err
    residuals = pred.round(2) - price.round(2)
    mad = float(np.median(np.abs(residuals - np.median(residuals))))
    delta = json.loads(out)["recommended"]["params"]["delta"]
    assert delta == pytest.approx(1.345 * 1.4826 * mad, rel=0.01)
    assert delta < 10_000  # a residual's scale, not the prices' (about 77,000)


def test_markdown_tables_show_default_parameters(capfd: pytest.CaptureFixture[str],
                                                 tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_text("y,old,new\n" + "".join(f"{i + 0.5},{i + 0.3 * (-1) ** i},{i + 0.1}\n"
                                            for i in range(20)))
    rc, out, err = cli(capfd, "eval", path, "--pred", "new", "--loss", "huber", "--format",
                       "markdown")
    assert rc == 0, err
    assert "| `huber:delta=1` |" in out
    rc, out, err = cli(capfd, "compare", path, "--baseline-pred", "old", "--pred", "new",
                       "--loss", "huber", "--format", "markdown")
    assert rc == 0, err
    assert "| `huber:delta=1` |" in out
