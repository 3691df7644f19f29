"""A new user's workflow, end to end: train scikit-learn models on its bundled datasets (a
regressor on diabetes, a binary classifier on breast cancer with text labels, a multiclass one
on iris), save the predictions with pandas, and run eval, recommend, compare, the CI example and
the Action's script on them. Every command exits as documented and every value equals
scikit-learn's."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import log_loss, mean_absolute_error, mean_squared_error
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from test_cli import cli


def run_json(capfd: pytest.CaptureFixture[str], *args: object) -> dict:
    rc, out, err = cli(capfd, *args, "--format", "json")
    assert rc == 0, (args, err)
    assert "losscli: error" not in err
    return json.loads(out)


def value(doc: dict, spec: str) -> float:
    return next(r["value"] for r in doc["losses"] if r["spec"] == spec)


@pytest.fixture(scope="module")
def regression(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    x, y = load_diabetes(return_X_y=True)
    frame = pd.DataFrame({"id": np.arange(y.size), "y": y,
                          "ridge": Ridge(alpha=1.0).fit(x, y).predict(x),
                          "ridge_small": Ridge(alpha=0.01).fit(x, y).predict(x)})
    path = tmp_path_factory.mktemp("reg") / "diabetes.parquet"
    frame.to_parquet(path, index=False)
    return path, frame


def test_regressor(capfd: pytest.CaptureFixture[str], regression: tuple[Path, pd.DataFrame],
                   tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path, f = regression
    doc = run_json(capfd, "eval", path, "--pred", "ridge", "--target", "y")
    assert doc["task"] == "regression"  # a float64 target of whole numbers: not counts
    assert value(doc, "mse") == pytest.approx(mean_squared_error(f.y, f.ridge), rel=1e-12)
    assert value(doc, "mae") == pytest.approx(mean_absolute_error(f.y, f.ridge), rel=1e-12)
    # recommend: the printed command runs and reproduces the recommended value
    rec = run_json(capfd, "recommend", path, "--pred", "ridge", "--target", "y")
    assert rec["task"] == "regression"
    again = run_json(capfd, *shlex.split(rec["recommended"]["command"])[1:])
    assert again["losses"][0]["value"] == pytest.approx(rec["recommended"]["value"], rel=1e-12)
    # compare: two columns of one file, and two files matched by id
    both = run_json(capfd, "compare", path, "--baseline-pred", "ridge", "--pred",
                    "ridge_small", "--target", "y", "--loss", "mse")
    delta = mean_squared_error(f.y, f.ridge_small) - mean_squared_error(f.y, f.ridge)
    assert both["losses"][0]["delta"] == pytest.approx(delta, rel=1e-9, abs=1e-9)
    base, cand = tmp_path / "base.parquet", tmp_path / "cand.parquet"
    f[["id", "y", "ridge"]].rename(columns={"ridge": "pred"}).to_parquet(base, index=False)
    f[["id", "y", "ridge_small"]].rename(columns={"ridge_small": "pred"}).sample(
        frac=1.0, random_state=3).to_parquet(cand, index=False)
    keyed = run_json(capfd, "compare", base, cand, "--key", "id", "--loss", "mse")
    assert keyed["losses"][0]["delta"] == pytest.approx(delta, rel=1e-9, abs=1e-9)
    # the CI example: record a baseline, then gate on it
    monkeypatch.chdir(tmp_path)
    rc, _, err = cli(capfd, "eval", base, "--write-baseline", "ci/baseline.json")
    assert rc == 0 and "wrote baseline" in err
    rc, _, err = cli(capfd, "eval", base, "--baseline", "ci/baseline.json", "--tolerance", "2%")
    assert (rc, err) == (0, "")
    rc, _, err = cli(capfd, "compare", base, cand, "--key", "id", "--fail-if-worse")
    assert rc in (0, 1) and "losscli: error" not in err


def test_binary_text_labels(capfd: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    data = load_breast_cancer()
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    prob = model.fit(data.data, data.target).predict_proba(data.data)[:, 1]
    labels = np.asarray(data.target_names)[data.target]
    path = tmp_path / "cancer.csv"
    pd.DataFrame({"diagnosis": labels, "p_benign": prob}).to_csv(path, index=False)
    doc = run_json(capfd, "eval", path, "--pred", "p_benign", "--target", "diagnosis",
                   "--positive", "benign")
    assert doc["task"] == "binary"
    assert value(doc, "bce") == pytest.approx(log_loss(data.target, prob), rel=1e-12)
    rec = run_json(capfd, "recommend", path, "--pred", "p_benign", "--target", "diagnosis",
                   "--positive", "benign")
    again = run_json(capfd, *shlex.split(rec["recommended"]["command"])[1:])
    assert again["losses"][0]["value"] == pytest.approx(rec["recommended"]["value"], rel=1e-12)


def test_multiclass_named_classes(capfd: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    data = load_iris()
    probs = LogisticRegression(max_iter=2000).fit(data.data, data.target).predict_proba(
        data.data)
    names = list(data.target_names)
    frame = pd.DataFrame({f"prob_{n}": probs[:, i] for i, n in enumerate(names)})
    frame.insert(0, "species", np.asarray(names)[data.target])
    path = tmp_path / "iris.parquet"
    frame.to_parquet(path, index=False)
    doc = run_json(capfd, "eval", path, "--target", "species")
    assert doc["task"] == "multiclass"
    assert value(doc, "cce") == pytest.approx(log_loss(data.target, probs), rel=1e-12)
    rec = run_json(capfd, "recommend", path, "--target", "species")
    assert rec["task"] == "multiclass" and rec["recommended"]["command"]


def test_action_script_on_the_regressor(regression: tuple[Path, pd.DataFrame],
                                        tmp_path: Path) -> None:
    from test_action import junit_cases, run_step

    _, f = regression
    f[["y", "ridge"]].rename(columns={"ridge": "y_pred"}).to_parquet(tmp_path / "preds.parquet")
    rc, err, outputs, _ = run_step(tmp_path, file="preds.parquet", losses="mse mae",
                                   gates=f"mse={mean_squared_error(f.y, f.ridge) * 1.01}")
    assert (rc, err, outputs["passed"]) == (0, "", "true")
    assert all(junit_cases(tmp_path / "losscli.xml").values())
