"""The library API: losscli.evaluate / compare / recommend on in-memory data give the CLI's
JSON on the same data written to Parquet; inputs of every kind; gates and errors from Python;
``import losscli`` and ``losscli --help`` stay light."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import losscli
from losscli.cli import run

SAMPLES = Path(__file__).resolve().parent.parent / "sample_data"
SAMPLE_NAMES = ["binary", "counts", "multiclass", "regression"]


def cli_json(capfd: pytest.CaptureFixture[str], *args: object) -> dict[str, Any]:
    rc = run([str(a) for a in args] + ["--format", "json", "--no-config"])
    out, err = capfd.readouterr()
    assert rc == 0, err
    doc: dict[str, Any] = json.loads(out)
    return doc


def where_aside(doc: dict[str, Any]) -> dict[str, Any]:
    """The document without what names the input (its path and format, recommend's command
    lines that name a file) and the timing."""
    doc = json.loads(json.dumps(doc))
    doc.pop("elapsed_seconds", None)
    for choice in [doc.get("recommended"), *doc.get("alternatives", [])]:
        if isinstance(choice, dict):
            choice.pop("command", None)
    for part in ("source", "baseline", "candidate"):
        if isinstance(doc.get(part), dict):
            doc[part].pop("path", None)
            doc[part].pop("format", None)
    return doc


def sample(name: str) -> pd.DataFrame:
    return pd.read_csv(SAMPLES / f"{name}.csv")


def pred_columns(df: pd.DataFrame) -> list[str]:
    """The sample's prediction columns, as the CLI recognises them."""
    probs = [c for c in df.columns if c.startswith("prob_")]
    return probs or (["prob"] if "prob" in df.columns else ["y_hat"])


def candidate(df: pd.DataFrame, cols: list[str]) -> pd.DataFrame:
    """A second model's predictions in the same domain: shrunk towards the mean (probability
    rows still sum to 1)."""
    return pd.DataFrame({c: 0.8 * df[c] + 0.2 * df[c].mean() for c in cols})


@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_evaluate_and_recommend_equal_the_cli(name: str, tmp_path: Path,
                                              capfd: pytest.CaptureFixture[str]) -> None:
    df = sample(name)
    path = tmp_path / f"{name}.parquet"
    df.to_parquet(path, index=False)
    report = losscli.evaluate(df)
    assert where_aside(report.to_dict()) == where_aside(cli_json(capfd, "eval", path))
    assert report.source.path == "<memory>" and report.source.format == "memory"
    rec = losscli.recommend(df)
    assert where_aside(rec.to_dict()) == where_aside(cli_json(capfd, "recommend", path))


@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_compare_equals_the_cli(name: str, tmp_path: Path,
                                capfd: pytest.CaptureFixture[str]) -> None:
    df = sample(name)
    cols = pred_columns(df)
    cand = candidate(df, cols)
    # one DataFrame with both models' columns
    both = df.assign(**{f"cand_{c}": cand[c] for c in cols})
    both_path = tmp_path / "both.parquet"
    both.to_parquet(both_path, index=False)
    new = [f"cand_{c}" for c in cols]
    one = losscli.compare(both, baseline_pred=cols, pred=new, fail_if_worse=True)
    flags = ["--baseline-pred", ",".join(cols), "--pred", ",".join(new), "--fail-if-worse"]
    rc = run(["compare", str(both_path), *flags, "--format", "json", "--no-config"])
    out, err = capfd.readouterr()
    assert rc == (0 if one.passed else 1), err
    assert where_aside(one.to_dict()) == where_aside(json.loads(out))
    assert one.gates and all(g.kind == "fail_if_worse" for g in one.gates)
    # two DataFrames, rows in the same order
    second = df.assign(**{c: cand[c] for c in cols})
    base_path, cand_path = tmp_path / "base.parquet", tmp_path / "cand.parquet"
    df.to_parquet(base_path, index=False)
    second.to_parquet(cand_path, index=False)
    two = losscli.compare(df, second, fail_if_worse=True, tolerance="5%")
    # (a tolerance alone gates nothing: the CLI asks for the gate it is the margin of)
    rc = run(["compare", str(base_path), str(cand_path), "--fail-if-worse", "--tolerance", "5%",
              "--format", "json", "--no-config"])
    out, err = capfd.readouterr()
    assert rc == (0 if two.passed else 1), err
    assert where_aside(two.to_dict()) == where_aside(json.loads(out))
    # the same pairs of rows: the deltas of both ways agree
    assert [r.delta for r in two.losses] == pytest.approx([r.delta for r in one.losses],
                                                          rel=1e-12)


def test_pred_as_a_list_equals_the_comma_list() -> None:
    df = sample("multiclass")
    names = [c for c in df.columns if c.startswith("prob_")]
    by_list = losscli.evaluate(df, pred=names, target="label", loss="cce")
    by_text = losscli.evaluate(df, pred=",".join(names), target="label", losses=["cce"])
    assert where_aside(by_list.to_dict()) == where_aside(by_text.to_dict())
    # scikit-learn's log_loss over the same rows and classes
    from sklearn.metrics import log_loss

    labels = sorted(n.removeprefix("prob_") for n in names)  # as scikit-learn orders them
    expected = log_loss(df["label"], df[[f"prob_{c}" for c in labels]].to_numpy(),
                        labels=labels)
    assert by_list.losses[0].value == pytest.approx(expected, rel=1e-12)
    one = losscli.evaluate(df.assign(p=df[names[0]], y=(df["label"] == labels[0]) * 1.0),
                           pred=("p",), target="y", loss="bce")
    assert one.columns["pred"] == ["p"] and one.task == "binary"


def test_every_kind_of_input_gives_the_same_report(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    y = rng.normal(size=3000)
    p = y + rng.standard_t(3, size=3000)
    w = rng.uniform(0.5, 2.0, size=3000)
    df = pd.DataFrame({"y": y, "p": p, "w": w})
    table = pa.Table.from_pandas(df, preserve_index=False)
    kw: dict[str, Any] = {"pred": "p", "target": "y", "weight": "w", "loss": ["mse", "mae"]}
    docs = [where_aside(losscli.evaluate(data, **kw).to_dict()) for data in (
        df, table, {"y": y, "p": p, "w": w}, {"y": list(y), "p": pa.array(p), "w": w},
        pa.RecordBatchReader.from_batches(table.schema, table.to_batches(max_chunksize=700)),
        str(tmp_path / "f.parquet") if df.to_parquet(tmp_path / "f.parquet") is None else "")]
    assert all(d == docs[0] for d in docs[1:])
    mse = docs[0]["losses"][0]["value"]
    assert mse == pytest.approx(float(np.sum(w * (p - y) ** 2) / np.sum(w)), rel=1e-13)


def test_a_two_dimensional_array_is_a_list_column() -> None:
    rng = np.random.default_rng(4)
    probs = rng.dirichlet(np.ones(3), size=500)
    labels = rng.integers(0, 3, size=500)
    report = losscli.evaluate({"label": labels, "probs": probs}, pred="probs", loss="cce")
    from sklearn.metrics import log_loss

    assert report.task == "multiclass"
    assert report.losses[0].value == pytest.approx(log_loss(labels, probs), rel=1e-12)


def test_a_record_batch_reader_is_read_once() -> None:
    table = pa.table({"y": [1.0, 2.0, 3.0], "y_hat": [1.5, 2.0, 2.0]})
    rec = losscli.recommend(pa.RecordBatchReader.from_batches(table.schema,
                                                              table.to_batches()))
    assert rec.source is not None and rec.source["format"] == "memory (stream)"
    from losscli.sources import open_input, record_batches, resolve_columns

    src = open_input(pa.RecordBatchReader.from_batches(table.schema, table.to_batches()))
    cols = resolve_columns(src, None, None, None)
    assert sum(b.num_rows for _, b in record_batches(src, cols, 10, False)) == 3
    with pytest.raises(losscli.InputError, match="read once"):
        list(record_batches(src, cols, 10, False))


def test_errors_are_exported_with_the_cli_exit_codes(capfd: pytest.CaptureFixture[str],
                                                     tmp_path: Path) -> None:
    df = pd.DataFrame({"y": [1.0, 2.0], "y_hat": [1.0, 2.5]})
    with pytest.raises(losscli.InputError, match="column 'nope' not found") as info:
        losscli.evaluate(df, pred="nope")
    with pytest.raises(losscli.InputError, match="column 'nope' not found"):
        losscli.compare(df, df.copy(), pred="nope")
    with pytest.raises(losscli.InputError, match="target column 'nope' not found"):
        losscli.recommend(df, target="nope")
    with pytest.raises(losscli.UsageError, match="cannot read a int"):
        losscli.evaluate(5)
    with pytest.raises(losscli.InputError, match="cannot read the dict"):
        losscli.evaluate({"y": [1.0, 2.0], "y_hat": [1.0]})
    path = tmp_path / "f.parquet"
    df.to_parquet(path)
    assert run(["eval", str(path), "--pred", "nope", "--no-config"]) == info.value.exit_code
    assert run(["eval", str(path), "--loss", "nope", "--no-config"]) == \
        losscli.UsageError.exit_code == 2
    capfd.readouterr()
    assert issubclass(losscli.DuplicateColumnError, losscli.InputError)
    assert all(issubclass(e, losscli.LossCliError) for e in (
        losscli.UsageError, losscli.InputError, losscli.ConfigError, losscli.PluginError))


def test_gates_from_python() -> None:
    rng = np.random.default_rng(5)
    y = rng.normal(size=400)
    df = pd.DataFrame({"y": y, "y_hat": y + rng.normal(scale=0.5, size=400)})
    mse = float(np.mean((df.y_hat - df.y) ** 2))
    report = losscli.evaluate(df, loss=["mse", "mae"], max={"mse": mse * 1.01})
    assert report.passed and [g.kind for g in report.gates] == ["max"]
    gates = report.check(max=["mse=" + repr(mse * 0.99)])
    assert not report.passed and gates == report.gates and not gates[0].passed
    # a baseline 1% better than this run: fails at 0.5% tolerance, passes at 2%
    better = {"mse": mse / 1.01, "mae": report.losses[1].value / 1.01}
    assert not report.check(baseline=better, tolerance="0.5%")[0].passed
    assert report.check(baseline=better, tolerance="2%") and report.passed
    assert report.check(baseline=report) and report.passed  # itself: equal values pass
    with pytest.raises(losscli.UsageError, match="not evaluated"):
        report.check(max={"huber": 1.0})
    with pytest.raises(losscli.UsageError, match="--tolerance"):
        losscli.evaluate(df, tolerance="lots")  # before the pass
    assert losscli.gates.Tolerance.parse("2%").limit(10.0) == pytest.approx(10.2)


def test_results_read_as_tables_and_markdown() -> None:
    df = sample("regression")
    report = losscli.evaluate(df, loss=["mse", "huber:delta=2"])
    text = repr(report)
    assert "huber:delta=2" in text and f"{report.losses[0].value:.6g}" in text
    assert max(len(line) for line in text.splitlines()) <= 80
    assert report._repr_markdown_().startswith("#") or "|" in report._repr_markdown_()
    assert json.loads(report.to_json()) == json.loads(json.dumps(report.to_dict()))
    comparison = losscli.compare(df.assign(mean=df.y.mean()), pred="mean", baseline_pred="y_hat",
                                 loss="mse")
    assert "mse" in repr(comparison) and "|" in comparison.render("markdown")
    rec = losscli.recommend(df)
    assert f"Recommended  {rec.recommended.name}" in repr(rec)
    with pytest.raises(losscli.UsageError, match="no format 'junit'"):
        rec.render("junit")
    rules = losscli.recommend(task="regression", outliers=True)
    assert rules.mode == "rules" and rules.recommended.spec != "mse"


def test_the_functions_survive_an_import_of_their_modules() -> None:
    from losscli.compare import Comparison
    from losscli.recommend import Recommendation

    assert callable(losscli.compare) and callable(losscli.recommend)
    assert losscli.Comparison is Comparison and losscli.Recommendation is Recommendation
    assert losscli.evaluate.__module__ == "losscli.api"


LIGHT = ("pandas", "pyarrow", "numpy", "losscli.engine", "rich")


@pytest.mark.parametrize("code", [
    "import losscli; losscli.__version__; losscli.InputError",
    "from losscli.cli import run; run(['--help'])",
    "from losscli.cli import run; run(['eval', '--help'])",
])
def test_import_and_help_stay_light(code: str) -> None:
    check = (f"import sys\n{code}\nheavy = [m for m in {LIGHT[:4]!r} if m in sys.modules]\n"
             "print('HEAVY', heavy)")
    out = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True,
                         timeout=60, check=True).stdout
    assert out.strip().endswith("HEAVY []"), out[-300:]


def test_version_has_one_source() -> None:
    import importlib.metadata

    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]

    root = Path(__file__).resolve().parent.parent
    project = tomllib.loads((root / "pyproject.toml").read_text())
    assert "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {
        "attr": "losscli._version.__version__"}
    assert importlib.metadata.version("losscli") == losscli.__version__
    from losscli._version import __version__

    assert losscli.__version__ is __version__
