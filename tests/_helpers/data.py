"""Seeded test data and the input kinds a command reads it from (CSV file, Parquet file, pandas
DataFrame)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq


@dataclass(frozen=True)
class Data:
    """Predictions (n,) or (n, C), targets and weights of one seeded data set."""

    pred: np.ndarray
    target: np.ndarray
    weight: np.ndarray
    #: more columns read by some losses: ``var`` (gaussian_nll's --var), ``q_0`` .. (soft
    #: targets, in place of ``target``)
    extra: Mapping[str, np.ndarray] | None = None

    def columns(self, weighted: bool = True) -> dict[str, Any]:
        """Named columns: ``pred`` (or ``prob_0`` .. ``prob_{C-1}``), ``target`` and ``w``
        (and the ``extra`` ones)."""
        d: dict[str, Any] = {"target": self.target, **(self.extra or {})}
        if self.pred.ndim == 2:
            for k in range(self.pred.shape[1]):
                d[f"prob_{k}"] = self.pred[:, k]
        else:
            d["pred"] = self.pred
        if weighted:
            d["w"] = self.weight
        return d


def regression_data(n: int, seed: int = 0) -> Data:
    """A biased linear model with 3% gross outliers, 40 exact hits (e = 0) and weights 0 to 2.5."""
    from sklearn.datasets import make_regression
    from sklearn.linear_model import LinearRegression

    X, y = make_regression(n_samples=n, n_features=5, noise=20.0, random_state=seed)
    pred = LinearRegression().fit(X[: n // 2], y[: n // 2]).predict(X) + 3.0  # biased model
    rng = np.random.default_rng(seed)
    outliers = rng.random(n) < 0.03
    pred[outliers] += rng.normal(0.0, 300.0, int(outliers.sum()))
    pred[: min(40, n // 10)] = y[: min(40, n // 10)]  # exact hits: e = 0
    return Data(pred, y, rng.choice([0.0, 0.5, 1.0, 2.5], n))


def count_data(n: int, seed: int = 5) -> Data:
    """Poisson counts with log-normal means and noisy positive predictions."""
    rng = np.random.default_rng(seed)
    mu = np.exp(rng.normal(0.5, 0.8, n))
    y = rng.poisson(mu).astype(float)
    return Data(mu * np.exp(rng.normal(0.0, 0.3, n)), y, rng.uniform(0.2, 2.0, n))


def classification_data(n: int, classes: int, seed: int) -> tuple[Data, np.ndarray]:
    """A logistic model's probabilities (of class 1 when binary, (n, C) otherwise), targets,
    weights, and the matching logits."""
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression

    X, y = make_classification(n_samples=n, n_features=8, n_informative=6, n_classes=classes,
                               flip_y=0.05, random_state=seed)
    model = LogisticRegression(max_iter=1000).fit(X[: n // 2], y[: n // 2])
    w = np.random.default_rng(seed).uniform(0.0, 2.0, n)
    proba = model.predict_proba(X)
    if classes == 2:
        return Data(proba[:, 1], y.astype(float), w), model.decision_function(X)
    return Data(proba, y.astype(float), w), model.decision_function(X)


#: the input kinds every command is run from
INPUT_KINDS = ("csv", "parquet", "dataframe")


def as_input(kind: str, columns: Mapping[str, Any], directory: Path | None,
             row_group_size: int = 777) -> Any:
    """The columns as a CSV file, a Parquet file (row groups of ``row_group_size`` rows, so
    chunks cross their boundaries) in ``directory``, or a pandas DataFrame."""
    table = pa.table({k: np.asarray(v) for k, v in columns.items()})
    if kind == "dataframe":
        return table.to_pandas()
    assert directory is not None, f"a {kind} input needs a directory"
    if kind == "csv":
        path = directory / "data.csv"
        pcsv.write_csv(table, path)  # shortest round-trip text: the same float64 values
        return path
    if kind == "parquet":
        path = directory / "data.parquet"
        pq.write_table(table, path, row_group_size=row_group_size)
        return path
    raise ValueError(f"unknown input kind {kind!r}")
