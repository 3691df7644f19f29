"""Peer implementations that ``bench.py`` runs, one per child process.

Usage: ``python benchmarks/peers.py TOOL TASK FILE [CLASSES]`` with TOOL one of duckdb, polars,
pandas and TASK one of regression, binary, multiclass. It prints the loss values as a JSON list
on stdout, in the order losscli reports them (regression: mse, mae, huber(delta=1); binary: mean
BCE with logits; multiclass: mean CCE with logits).

Only the standard library is imported at the top: each tool's imports happen inside the child's
own function, so a child pays exactly its tool's import cost and nothing else (bench.py measures
wall time and peak RSS of the whole child).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

HUBER_DELTA = 1.0


def _is_csv(path: str) -> bool:
    return Path(path).suffix.lower() == ".csv"


def _logit_columns(classes: int) -> list[str]:
    return [f"logit_{k}" for k in range(classes)]


# ---------------------------------------------------------------------------------------------
# DuckDB: one SQL aggregate over read_parquet / read_csv.
# ---------------------------------------------------------------------------------------------


def _duckdb_source(path: str) -> str:
    quoted = "'" + path.replace("'", "''") + "'"
    return f"read_csv({quoted})" if _is_csv(path) else f"read_parquet({quoted})"


def duckdb_sql(task: str, path: str, classes: int) -> str:
    """The SQL query DuckDB runs for ``task`` on ``path``."""
    src = _duckdb_source(path)
    if task == "regression":
        d = HUBER_DELTA
        return (
            "SELECT avg(e * e), avg(abs(e)), "
            f"avg(CASE WHEN abs(e) <= {d} THEN 0.5 * e * e ELSE {d} * (abs(e) - {0.5 * d}) END) "
            f"FROM (SELECT y_hat - y AS e FROM {src})"
        )
    if task == "binary":
        # DuckDB has no log1p; ln(1 + exp(-|z|)) is accurate enough for a mean.
        return (
            f"SELECT avg(greatest(logit, 0) - label * logit + ln(1 + exp(-abs(logit)))) FROM {src}"
        )
    if task == "multiclass":
        cols = _logit_columns(classes)
        m = "greatest(" + ", ".join(cols) + ")"
        sum_exp = " + ".join(f"exp({c} - m)" for c in cols)
        z_y = "CASE label " + " ".join(f"WHEN {k} THEN {c}" for k, c in enumerate(cols)) + " END"
        return (
            f"SELECT avg(m + ln({sum_exp}) - z_y) "
            f"FROM (SELECT *, {m} AS m, {z_y} AS z_y FROM {src})"
        )
    raise ValueError(f"unknown task {task!r}")


def run_duckdb(task: str, path: str, classes: int) -> list[float]:
    import duckdb

    row = duckdb.connect().execute(duckdb_sql(task, path, classes)).fetchone()
    assert row is not None
    return [float(v) for v in row]


# ---------------------------------------------------------------------------------------------
# polars: lazy scan + streaming engine.
# ---------------------------------------------------------------------------------------------


def run_polars(task: str, path: str, classes: int) -> list[float]:
    import polars as pl

    lf = pl.scan_csv(path) if _is_csv(path) else pl.scan_parquet(path)
    if task == "regression":
        e = pl.col("y_hat") - pl.col("y")
        a = e.abs()
        d = HUBER_DELTA
        exprs = [
            (e * e).mean().alias("mse"),
            a.mean().alias("mae"),
            pl.when(a <= d).then(0.5 * e * e).otherwise(d * (a - 0.5 * d)).mean().alias("huber"),
        ]
    elif task == "binary":
        z = pl.col("logit")
        y = pl.col("label")
        exprs = [(pl.max_horizontal(z, 0.0) - y * z + (-z.abs()).exp().log1p()).mean()]
    elif task == "multiclass":
        cols = _logit_columns(classes)
        # The row max goes into its own column first: written inline, polars recomputes it in
        # each of the 100 exp terms (5x slower). z_y is a masked sum, as fast as a when/then chain
        # and 10x faster than concat_list(cols).list.get(label).
        lf = lf.with_columns(pl.max_horizontal(cols).alias("_m"))
        m = pl.col("_m")
        sum_exp = pl.sum_horizontal([(pl.col(c) - m).exp() for c in cols])
        label = pl.col("label")
        z_y = pl.sum_horizontal(
            [pl.when(label == k).then(pl.col(c)).otherwise(0.0) for k, c in enumerate(cols)]
        )
        exprs = [(m + sum_exp.log() - z_y).mean()]
    else:
        raise ValueError(f"unknown task {task!r}")
    query = lf.select(exprs)
    try:
        df = query.collect(engine="streaming")
    except TypeError:  # polars < 1.23 has no engine="streaming"
        df = query.collect(streaming=True)  # type: ignore[call-overload]
    return [float(v) for v in df.row(0)]


# ---------------------------------------------------------------------------------------------
# pandas + scikit-learn: read everything into memory, then sklearn.metrics.
# ---------------------------------------------------------------------------------------------


def run_pandas(task: str, path: str, classes: int) -> list[float]:
    import numpy as np
    import pandas as pd
    from sklearn.metrics import log_loss, mean_absolute_error, mean_squared_error

    def read(columns: list[str]) -> pd.DataFrame:
        if _is_csv(path):
            return pd.read_csv(path, engine="pyarrow", usecols=columns)
        return pd.read_parquet(path, columns=columns)

    if task == "regression":
        df = read(["y", "y_hat"])
        y = df["y"].to_numpy()
        y_hat = df["y_hat"].to_numpy()
        e = y_hat - y
        a = np.abs(e)
        d = HUBER_DELTA
        huber = float(np.mean(np.where(a <= d, 0.5 * e * e, d * (a - 0.5 * d))))
        return [float(mean_squared_error(y, y_hat)), float(mean_absolute_error(y, y_hat)), huber]
    if task == "binary":
        from scipy.special import expit

        df = read(["label", "logit"])
        return [float(log_loss(df["label"].to_numpy(), expit(df["logit"].to_numpy())))]
    if task == "multiclass":
        from scipy.special import softmax

        cols = _logit_columns(classes)
        df = read([*cols, "label"])
        proba = softmax(df[cols].to_numpy(), axis=1)
        return [float(log_loss(df["label"].to_numpy(), proba, labels=np.arange(classes)))]
    raise ValueError(f"unknown task {task!r}")


RUNNERS: dict[str, Callable[[str, str, int], list[float]]] = {
    "duckdb": run_duckdb,
    "polars": run_polars,
    "pandas": run_pandas,
}


def main(argv: list[str]) -> int:
    if len(argv) not in (3, 4) or argv[0] not in RUNNERS:
        print(__doc__, file=sys.stderr)
        return 2
    tool, task, path = argv[:3]
    classes = int(argv[3]) if len(argv) == 4 else 0
    print(json.dumps(RUNNERS[tool](task, path, classes)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
