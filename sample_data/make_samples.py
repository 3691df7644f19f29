"""Make the shipped sample files, deterministically (fixed seeds): ``python sample_data/make_samples.py``.

- regression.{csv,parquet}: y, y_hat = y + Gaussian noise with 3% gross outliers, sample weight w.
- binary.{csv,parquet}: label (about 6% positives), prob (a calibrated probability), logit.
- multiclass.{csv,parquet}: label (cat/dog/bird/fish, imbalanced), prob_<label> per class;
  the Parquet file also has label_id (the class index) and logit_vec, a list column of logits.
- counts.{csv,parquet}: y (Poisson counts), y_hat (a positive predicted rate).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
ROWS = 2000


def _write(name: str, table: pa.Table, csv_table: pa.Table | None = None) -> None:
    pq.write_table(table, HERE / f"{name}.parquet", compression="zstd")
    pcsv.write_csv(csv_table if csv_table is not None else table, HERE / f"{name}.csv")


def regression(rng: np.random.Generator) -> pa.Table:
    x = rng.uniform(0.0, 10.0, ROWS)
    y = 3.0 + 2.0 * x + rng.normal(0.0, 1.0, ROWS)
    y_hat = 3.1 + 1.98 * x + rng.normal(0.0, 0.3, ROWS)
    outliers = rng.random(ROWS) < 0.03
    y[outliers] += rng.choice([-1.0, 1.0], int(outliers.sum())) * rng.uniform(8.0, 25.0,
                                                                                int(outliers.sum()))
    w = rng.choice([0.5, 1.0, 2.0], ROWS)
    return pa.table({"y": np.round(y, 6), "y_hat": np.round(y_hat, 6), "w": w})


def binary(rng: np.random.Generator) -> pa.Table:
    score = rng.normal(0.0, 1.0, ROWS)
    logit = -3.8 + 1.8 * score
    label = (rng.random(ROWS) < 1.0 / (1.0 + np.exp(-logit))).astype(np.int64)
    model_logit = np.round(logit + rng.normal(0.0, 0.4, ROWS), 6)
    prob = 1.0 / (1.0 + np.exp(-model_logit))
    return pa.table({"label": label, "prob": prob, "logit": model_logit})


CLASSES = ("cat", "dog", "bird", "fish")


def multiclass(rng: np.random.Generator) -> tuple[pa.Table, pa.Table]:
    prior = np.array([0.45, 0.35, 0.15, 0.05])
    label = rng.choice(len(CLASSES), ROWS, p=prior)
    logits = rng.normal(0.0, 1.0, (ROWS, len(CLASSES))) + np.log(prior)
    logits[np.arange(ROWS), label] += 1.5
    logits = np.round(logits, 6)
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    columns: dict[str, object] = {"label": [CLASSES[i] for i in label]}
    for k, name in enumerate(CLASSES):
        columns[f"prob_{name}"] = probs[:, k]
    csv_table = pa.table(columns)
    columns["label_id"] = label
    columns["logit_vec"] = pa.array(list(logits), type=pa.list_(pa.float64()))
    return pa.table(columns), csv_table


def counts(rng: np.random.Generator) -> pa.Table:
    x = rng.uniform(0.0, 2.0, ROWS)
    rate = np.exp(0.3 + 0.8 * x)
    y = rng.poisson(rate).astype(np.int64)
    y_hat = np.round(np.exp(0.35 + 0.75 * x), 6)
    return pa.table({"y": y, "y_hat": y_hat})


def main() -> None:
    rng = np.random.default_rng(20261126)
    _write("regression", regression(rng))
    _write("binary", binary(rng))
    table, csv_table = multiclass(rng)
    _write("multiclass", table, csv_table)
    _write("counts", counts(rng))


if __name__ == "__main__":
    main()
