"""The one executor: the fixed merge tree, the blocks, and every command giving the same bits
for any chunk size, thread count and executor (a process pool proves that plans, units and states
pickle)."""

from __future__ import annotations

import itertools
import json
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from _helpers.tester import doc_of, executor, run_matrix

import losscli
from losscli.compare import compare
from losscli.errors import UsageError
from losscli.recommend import recommend
from losscli.run import BLOCK_VALUES, ProcessExecutor, ReadPlan, TreeMerge, resolve_executor
from losscli.run.local import ordered_map
from losscli.run.plan import recut
from losscli.sources import open_source, resolve_columns

# --- the tree ----------------------------------------------------------------------------------


def _shape(a: str, b: str) -> str:
    """A merge that shows its tree: not associative, so any other grouping prints otherwise."""
    return f"({a} {b})"


def _reference(leaves: list[str]) -> str:
    """The fixed tree by another construction: the largest power-of-two prefix is a complete
    binary tree (halves merged recursively), the rest follows by the same rule, left to
    right."""
    def complete(xs: list[str]) -> str:
        if len(xs) == 1:
            return xs[0]
        half = len(xs) // 2
        return _shape(complete(xs[:half]), complete(xs[half:]))

    out: str | None = None
    rest = leaves
    while rest:
        size = 1 << (len(rest).bit_length() - 1)
        part = complete(rest[:size])
        out = part if out is None else _shape(out, part)
        rest = rest[size:]
    assert out is not None
    return out


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 13, 64, 100])
def test_tree_is_the_reference_tree_for_any_arrival_order(n: int) -> None:
    want = _reference([f"b{i}" for i in range(n)])
    shuffle = random.Random(n)
    for _ in range(5):
        order = list(range(n))
        shuffle.shuffle(order)
        tree: TreeMerge[str] = TreeMerge(_shape)
        for i in order:
            tree.add(0, i, f"b{i}")
        assert tree.result() == want


def test_tree_over_files_and_units_split_anywhere() -> None:
    sizes = [5, 1, 8, 3, 2]
    files = [_reference([f"f{f}b{i}" for i in range(k)]) for f, k in enumerate(sizes)]
    want = _reference(files)
    cut = random.Random(3)
    for _ in range(20):
        merged: TreeMerge[str] = TreeMerge(_shape)
        units = []
        for f, k in enumerate(sizes):
            edges = sorted({0, k, *(cut.randrange(k + 1) for _ in range(2))})
            units += [(f, a, b) for a, b in itertools.pairwise(edges) if b > a]
        cut.shuffle(units)
        for f, a, b in units:  # each unit folds its own blocks, as a remote worker does
            local: TreeMerge[str] = TreeMerge(_shape)
            for i in range(a, b):
                local.add(f, i, f"f{f}b{i}")
            merged.add_nodes(local.export())
        assert merged.result() == want
        closed: TreeMerge[str] = TreeMerge(_shape)  # files closed as soon as they are whole
        for f, k in enumerate(sizes):
            closed.file_size(f, k)
            for i in range(k):
                closed.add(f, i, f"f{f}b{i}")
        assert closed.result() == want


def test_recut_blocks_do_not_depend_on_the_batches() -> None:
    rows = list(range(1000))
    rng = random.Random(1)

    def blocks(cuts: list[int]) -> list[tuple[tuple[int, int], list[int]]]:
        edges = [0, *sorted(set(cuts)), len(rows)]
        items = [(0, a, rows[a:b]) for a, b in itertools.pairwise(edges) if b > a]
        out = recut(iter(items), 64, lambda it: len(it[2]), lambda it: (it[0], it[1]),
                    lambda it, a, b: (it[0], it[1] + a, it[2][a:b]),
                    lambda its: (its[0][0], its[0][1], [x for it in its for x in it[2]]))
        return [(key, item[2]) for key, item in out]

    want = [((0, b), rows[b * 64:(b + 1) * 64]) for b in range(16)]
    for _ in range(20):
        assert blocks([rng.randrange(1, 1000) for _ in range(rng.randrange(0, 40))]) == want


# --- the thread pipeline ------------------------------------------------------------------------


@pytest.mark.parametrize("workers", [0, 1, 4])
def test_ordered_map_keeps_order_and_raises_the_earliest_failure(workers: int) -> None:
    jitter = random.Random(5)
    delays = [jitter.random() * 2e-3 for _ in range(60)]

    def slow_square(i: int) -> int:
        time.sleep(delays[i])  # later items often finish first
        return i * i

    assert list(ordered_map(slow_square, range(60), workers)) == [i * i for i in range(60)]

    def fail_at(i: int) -> int:
        time.sleep(delays[59 - i])
        if i in (25, 40):
            raise ValueError(f"item {i}")
        return i

    with pytest.raises(ValueError, match="item 25"):
        list(ordered_map(fail_at, range(60), workers))


def test_executor_names() -> None:
    assert isinstance(resolve_executor("processes:3", None), ProcessExecutor)
    for bad in ("processes:0", "processes:x", "daskk", "local:0", "local:x", "http://h:1"):
        with pytest.raises(UsageError):
            resolve_executor(bad, None)


# --- every command, any chunking, threads and executor ------------------------------------------


@pytest.fixture(scope="module")
def weighted_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three Parquet files of unequal lengths (blocks restart in each), heavy-tailed residuals,
    weights spanning six orders of magnitude and a second model's predictions."""
    rng = np.random.default_rng(11)
    root = tmp_path_factory.mktemp("run") / "preds"
    root.mkdir()
    for i, n in enumerate((150_000, 9_000, 140_001)):
        y = rng.gamma(2.0, 3.0, n)
        a = y + rng.standard_t(3, n)
        b = y + 1.02 * rng.standard_t(3, n)
        w = np.exp(rng.uniform(-7, 7, n))
        pq.write_table(pa.table({"y": y, "a": a, "b": b, "w": w}), root / f"part-{i}.parquet",
                       row_group_size=40_000)
    return root


#: the chunk sizes, thread counts and executors of these runs: five cells of the harness's matrix
CELLS = [(131_072, executor("threads-1")), (1000, executor("threads-0")),
         (7777, executor("threads-3")), (50_000, executor("serial")),
         (7777, executor("processes-2"))]


def _runs(call: Any) -> list[Any]:
    """The results of ``call(**options)`` under several chunk sizes, thread counts and
    executors, after the harness has asserted that they are the same bits."""
    return list(run_matrix(call, "preds", CELLS).values())


def test_eval_same_bits_everywhere(weighted_dir: Path) -> None:
    runs = _runs(lambda **o: losscli.evaluate(
        str(weighted_dir), pred="a", target="y", weight="w",
        losses=["mse", "rmse", "mae", "huber:delta=2", "quantile:q=0.8", "log_cosh"], **o))
    doc = runs[0].to_dict()
    assert doc["source"]["rows"] == 299_001


def test_eval_bootstrap_same_bits_everywhere(weighted_dir: Path) -> None:
    _runs(lambda **o: losscli.evaluate(
        str(weighted_dir), pred="a", target="y", weight="w", losses=["mse", "mae"],
        ci="bootstrap", bootstrap_samples=40, **o))


def test_compare_same_bits_everywhere(weighted_dir: Path) -> None:
    _runs(lambda **o: compare(str(weighted_dir), baseline_pred="a", pred="b", target="y",
                              weight="w", **o))


def test_compare_two_inputs_same_bits_everywhere(weighted_dir: Path, tmp_path: Path) -> None:
    # the candidate is one file where the baseline is three: blocks follow the baseline's files
    whole = pq.read_table(sorted(weighted_dir.iterdir()))
    cand = tmp_path / "cand.parquet"
    pq.write_table(whole.select(["y", "b"]), cand, row_group_size=70_000)
    _runs(lambda **o: compare(str(weighted_dir), str(cand), baseline_pred="a", pred="b",
                              target="y", weight="w", losses=["mse", "mae"], **o))


def test_recommend_same_bits_everywhere(weighted_dir: Path) -> None:
    _runs(lambda **o: recommend(str(weighted_dir), pred="a", target="y", weight="w", **o))


def test_multiclass_blocks_follow_the_row_width(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    n, k = 20_000, 40
    z = rng.normal(size=(n, k))
    y = rng.integers(0, k, n)
    path = tmp_path / "mc.parquet"
    pq.write_table(pa.table({"label": y, "z": pa.array(list(z))}), path, row_group_size=3_000)
    src = open_source(str(path))
    plan = ReadPlan(src, resolve_columns(src, "z", "label", None), 1000)
    assert plan.block_rows == BLOCK_VALUES // k
    runs = _runs(lambda **o: losscli.evaluate(str(path), pred="z", target="label",
                                              logits=True, **o))
    ref = np.logaddexp.reduce(z, axis=1) - z[np.arange(n), y]
    assert runs[0].losses[0].value == pytest.approx(ref.mean(), rel=1e-13)


def test_bootstrap_streams_follow_the_files_not_where_they_live(weighted_dir: Path,
                                                                 tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "somewhere" / "else"
    shutil.copytree(weighted_dir, copy)
    for run in (lambda d: losscli.evaluate(str(d), pred="a", target="y", weight="w", loss="mse",
                                           ci="percentile", bootstrap_samples=50),
                lambda d: compare(str(d), baseline_pred="a", pred="b", target="y", weight="w",
                                  losses=["mse"], ci="bootstrap", bootstrap_samples=50)):
        a, b = (json.dumps(doc_of(run(d)), sort_keys=True) for d in (weighted_dir, copy))
        assert a.replace(str(weighted_dir), "X") == b.replace(str(copy), "X")


def test_compare_bootstrap_draws_each_file_apart() -> None:
    """Rows numbered from 0 in each file: with one stream for all files, row i of each would
    get the same replicate counts, and two files of the same rows would count as one."""
    from losscli.compare import PairedState
    from losscli.engine import stream_of
    from losscli.losses import Batch
    from losscli.spec import parse_spec
    from losscli.uncertainty import replicate_counts, stream_key

    rng = np.random.default_rng(5)
    y = rng.normal(size=500)
    a, b = y + rng.normal(size=500), y + rng.normal(size=500)
    streams = [stream_of(f"/data/part-{i}.parquet", "/data") for i in range(2)]
    state = PairedState([parse_spec("mse")], boot_samples=50, boot_seed=0)
    for s in streams:
        state.update(Batch(a, y, None, False), Batch(b, y, None, False), np.arange(500), 0, s)
    counts = [replicate_counts(stream_key(0, s), np.arange(500), 50) for s in streams]
    assert not np.array_equal(counts[0], counts[1])
    boot = state.losses[0].boot_base
    assert boot is not None and boot.num is not None
    want = counts[0] @ ((a - y) ** 2) + counts[1] @ ((a - y) ** 2)
    np.testing.assert_allclose(np.ldexp(boot.num, boot.exp), want, rtol=1e-12)
