"""Beyond one machine: Parquet named by URIs (S3 through moto's server on 127.0.0.1) and the
Dask executor (dask's synchronous scheduler, and one LocalCluster of two worker processes for
the session). Every distributed result is compared with the local run on the same data: the
same JSON, bit for bit, timings aside."""

from __future__ import annotations

import io
import itertools
import json
import logging
import os
import re
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import losscli
from losscli.cli import run as cli
from losscli.compare import compare
from losscli.errors import InputError, PluginError, UsageError
from losscli.recommend import recommend
from losscli.run.dask import DaskExecutor
from losscli.run.plan import PairedPlan, ReadPlan, split_rows
from losscli.sources import Columns, Source, open_source, resolve_columns

BUCKET = "preds"


def _doc(obj: Any) -> str:
    """A result's JSON without its timings and settings."""
    def strip(d: Any) -> Any:
        if isinstance(d, dict):
            return {k: strip(v) for k, v in d.items() if k not in ("elapsed_seconds",
                                                                    "settings")}
        return [strip(v) for v in d] if isinstance(d, list) else d
    return json.dumps(strip(obj.to_dict()), sort_keys=True)


def _cli_json(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """(exit code, JSON without timings, stderr) of an in-process CLI run."""
    code = cli([*args, "--format", "json", "--no-config"])
    out, err = capsys.readouterr()
    if code != 0:
        return code, "", err
    doc = json.loads(out)
    doc.pop("elapsed_seconds", None)
    return code, json.dumps(doc, sort_keys=True), err


# --- data -----------------------------------------------------------------------------------


def _write_dir(root: Path, files: int, seed: int, rows: tuple[int, int] = (500, 3000)) -> Path:
    """Files of unequal lengths with a column for every task: regression (y, a, b, w),
    counts (n, mu), binary (click, p) and three classes (label, prob_x, prob_y, prob_z)."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True)
    for i in range(files):
        n = int(rng.integers(*rows))
        y = rng.gamma(2.0, 3.0, n)
        mu = rng.uniform(0.5, 6.0, n)
        p = rng.uniform(0.02, 0.98, n)
        probs = rng.dirichlet([2.0, 1.0, 1.5], n)
        pq.write_table(pa.table({
            "y": y, "a": y + rng.standard_t(3, n), "b": y + 1.05 * rng.standard_t(3, n),
            "w": np.exp(rng.uniform(-5, 5, n)), "n": rng.poisson(mu).astype(np.int64),
            "mu": mu, "click": (rng.uniform(size=n) < p).astype(np.int64), "p": p,
            "label": np.array(["x", "y", "z"])[[rng.choice(3, p=q) for q in probs]],
            "prob_x": probs[:, 0], "prob_y": probs[:, 1], "prob_z": probs[:, 2],
        }), root / f"part-{i:03d}.parquet", row_group_size=700)
    return root


@pytest.fixture(scope="module")
def small_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _write_dir(tmp_path_factory.mktemp("dask") / "small", 6, seed=3)


@pytest.fixture(scope="module")
def many_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _write_dir(tmp_path_factory.mktemp("dask") / "many", 64, seed=4, rows=(200, 900))


@pytest.fixture(scope="module")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One file of 700,001 rows in row groups of 100,000 (not a multiple of a block's
    131,072 rows: units cut inside row groups)."""
    rng = np.random.default_rng(9)
    n = 700_001
    y = rng.normal(size=n)
    path = tmp_path_factory.mktemp("dask") / "big.parquet"
    pq.write_table(pa.table({"y": y, "pred": y + rng.standard_t(4, n),
                             "w": rng.uniform(0.1, 3.0, n)}), path, row_group_size=100_000)
    return path


# --- servers: moto's S3 and one cluster, both on 127.0.0.1 -------------------------------------


@pytest.fixture(scope="session")
def s3() -> Iterator[str]:
    """moto's S3 server; AWS_* variables point at it (dummy keys) for this process and the
    cluster's workers, which are started after it and inherit them."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {"AWS_ACCESS_KEY_ID": "testing-key-id", "AWS_SECRET_ACCESS_KEY": "testing-secret-1",
           "AWS_ENDPOINT_URL": f"http://{host}:{port}", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_EC2_METADATA_DISABLED": "true"}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    import boto3

    boto3.client("s3").create_bucket(Bucket=BUCKET)
    yield env["AWS_ENDPOINT_URL"]
    server.stop()
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="session")
def cluster(s3: str) -> Iterator[Any]:
    """The session's LocalCluster: two worker processes, no dashboard, on 127.0.0.1."""
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None, host="127.0.0.1",
                      silence_logs=logging.ERROR) as lc:
        yield lc


@pytest.fixture(scope="session")
def client(cluster: Any) -> Iterator[Any]:
    from distributed import Client

    with Client(cluster) as c:
        yield c


def _upload(local: Path, prefix: str) -> str:
    import boto3

    s3c = boto3.client("s3")
    for f in sorted(local.iterdir()):
        s3c.upload_file(str(f), BUCKET, f"{prefix}/{f.name}")
    return f"s3://{BUCKET}/{prefix}/"


# --- units ------------------------------------------------------------------------------------


def test_units_are_whole_blocks_that_cover_the_file() -> None:
    rng = np.random.default_rng(5)
    for _ in range(300):
        block = int(rng.integers(1, 50))
        groups = [(int(r), int(r) * 8) for r in rng.integers(0, 200, rng.integers(1, 12))]
        unit = int(rng.integers(1, 3000))
        ranges = split_rows(groups, unit, block)
        total = sum(r for r, _ in groups)
        assert ranges[0][0] == 0 and ranges[-1][1] == total
        for (_, stop), (start, _) in itertools.pairwise(ranges):
            assert stop == start and stop % block == 0  # contiguous, cut at block boundaries
        assert all(stop > start for start, stop in ranges) or ranges == [(0, 0)]
        # no unit is much larger than asked for, unless one row group or block is
        cap = unit + 8 * (max(r for r, _ in groups) + 2 * block)
        assert all((stop - start) * 8 <= cap for start, stop in ranges)


def test_sync_scheduler_row_range_units_give_the_local_bits(big_file: Path) -> None:
    src = open_source(str(big_file))
    plan = ReadPlan(src, resolve_columns(src, "pred", "y", "w"), 1 << 17)
    units = plan.units(1 << 20)
    assert len(units) == 6 and units[0].rows == (0, 131_072)  # 1.6 MB of groups a unit
    assert units[-1].rows is not None and units[-1].rows[1] == 700_001
    want = _doc(losscli.evaluate(str(big_file), weight="w", losses=["mse", "mae", "huber"]))
    got = _doc(losscli.evaluate(str(big_file), weight="w", losses=["mse", "mae", "huber"],
                                executor=DaskExecutor("sync", unit_bytes=1 << 20)))
    assert got == want
    boot = {"losses": ["mse"], "ci": "bootstrap", "bootstrap_samples": 30}
    assert _doc(losscli.evaluate(str(big_file), **boot,  # type: ignore[arg-type]
                                 executor=DaskExecutor("sync", unit_bytes=1 << 19))) == _doc(
        losscli.evaluate(str(big_file), **boot))  # type: ignore[arg-type]


# --- the cluster gives the local bits -----------------------------------------------------------

TASKS: list[dict[str, Any]] = [
    {"pred": "a", "target": "y", "weight": "w"},
    {"pred": "a", "target": "y", "losses": ["mse", "mae", "quantile:q=0.9", "log_cosh"]},
    {"pred": "mu", "target": "n"},
    {"pred": "p", "target": "click", "weight": "w"},
    {"pred": "prob_*", "target": "label"},
    {"pred": "prob_*", "target": "label", "weight": "w", "ci": "bootstrap",
     "bootstrap_samples": 25},
    {"pred": "a", "target": "y", "weight": "w", "by": ["label", "click"]},
]


@pytest.mark.parametrize("opts", TASKS, ids=["weighted", "regression", "counts", "binary",
                                             "multiclass", "multiclass-bootstrap", "slices"])
def test_eval_on_the_cluster_is_the_local_run(small_dir: Path, client: Any,
                                              opts: dict[str, Any]) -> None:
    local = losscli.evaluate(str(small_dir), **opts)
    remote = losscli.evaluate(str(small_dir), executor=DaskExecutor(client=client,
                                                                    unit_bytes=20_000), **opts)
    assert _doc(remote) == _doc(local)
    assert local.task in ("regression", "counts", "binary", "multiclass")
    assert "by" not in opts or len(local.to_dict()["slices"]) == 5  # 3 labels, 2 clicks


def test_compare_and_recommend_on_the_cluster(small_dir: Path, client: Any) -> None:
    ex = DaskExecutor(client=client)
    kw = {"baseline_pred": "a", "pred": "b", "target": "y", "weight": "w"}
    assert _doc(compare(str(small_dir), executor=ex, **kw)) == _doc(compare(str(small_dir), **kw))
    for opts in ({"pred": "a", "target": "y", "weight": "w"}, {"pred": "p", "target": "click"}):
        assert _doc(recommend(str(small_dir), executor=ex, **opts)) == _doc(
            recommend(str(small_dir), **opts))


def test_compare_two_inputs_a_unit_a_pair_of_files(small_dir: Path, tmp_path: Path,
                                                   client: Any) -> None:
    files = sorted(small_dir.iterdir())
    for side, cols in (("base", ["y", "a", "w"]), ("cand", ["y", "b"])):
        (tmp_path / side).mkdir()
        for f in files:
            pq.write_table(pq.read_table(f, columns=cols), tmp_path / side / f.name,
                           row_group_size=900)
    whole = tmp_path / "cand.parquet"  # the same rows in one file: one unit, read in step
    pq.write_table(pq.read_table(tmp_path / "cand"), whole)
    kw: dict[str, Any] = {"baseline_pred": "a", "pred": "b", "target": "y", "weight": "w"}
    ex = DaskExecutor(client=client)
    for cand in (tmp_path / "cand", whole):
        local = compare(str(tmp_path / "base"), str(cand), **kw)
        assert _doc(compare(str(tmp_path / "base"), str(cand), executor=ex, **kw)) == _doc(local)
    base_src, cand_src = open_source(str(tmp_path / "base")), open_source(str(tmp_path / "cand"))
    plan = PairedPlan(ReadPlan(base_src, resolve_columns(base_src, "a", "y", "w"), 1000),
                      ReadPlan(cand_src, resolve_columns(cand_src, "b", "y", None), 1000))
    units = plan.units(1 << 28)
    assert [(u.file, Path(u.path).name, Path(u.pair or "").name) for u in units] == [
        (i, f.name, f.name) for i, f in enumerate(files)]


def test_64_files_local_cluster_cli_same_bits_twice(many_dir: Path, cluster: Any,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    args = ["eval", str(many_dir), "--pred", "a", "--target", "y", "--weight", "w"]
    code, local, _ = _cli_json(args, capsys)
    assert code == 0 and json.loads(local)["source"]["rows"] > 64 * 200
    code, on_local2, _ = _cli_json([*args, "--scheduler", "local:2"], capsys)
    assert code == 0 and on_local2 == local
    code, on_tcp, _ = _cli_json([*args, "--scheduler", cluster.scheduler_address], capsys)
    assert code == 0 and on_tcp == local


def test_a_worker_killed_mid_run_changes_nothing(many_dir: Path, client: Any) -> None:
    pids = client.run(os.getpid)
    killed: list[int] = []

    def kill_once(rows: int) -> None:
        if not killed:  # one unit is in: the others are queued or running on both workers
            killed.append(next(iter(pids.values())))
            os.kill(killed[0], signal.SIGKILL)

    opts: dict[str, Any] = {"pred": "a", "target": "y", "weight": "w"}
    remote = losscli.evaluate(str(many_dir), executor=DaskExecutor(client=client),
                              progress=kill_once, **opts)
    assert killed
    assert _doc(remote) == _doc(losscli.evaluate(str(many_dir), **opts))
    client.wait_for_workers(2, timeout=60)  # the nanny restarts it for the next tests
    assert killed[0] not in client.run(os.getpid).values()


# --- object storage -----------------------------------------------------------------------------


def test_s3_directory_is_the_local_copy(small_dir: Path, client: Any, s3: str,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    uri = _upload(small_dir, "run1")
    local_name = str(small_dir)

    def same(args: list[str], here_too: bool = False) -> None:
        code, want, _ = _cli_json([*args[:1], local_name, *args[1:]], capsys)
        assert code == 0
        for extra in ([], ["--scheduler", client.scheduler.address])[not here_too:]:
            code, got, err = _cli_json([*args[:1], uri, *args[1:], *extra], capsys)
            assert code == 0, err
            root = re.escape(uri.rstrip("/"))
            named = re.sub(root + r"/?(?=[\" ])", local_name, got)  # the prefix, as given
            assert re.sub(root, local_name, named) == want  # and its files

    same(["eval", "--pred", "a", "--target", "y", "--weight", "w"], here_too=True)
    same(["eval", "--pred", "prob_*", "--target", "label"])
    same(["recommend", "--pred", "a", "--target", "y"])
    same(["compare", "--baseline-pred", "a", "--pred", "b", "--target", "y"])
    # one object, and the endpoint in the URI's query instead of the environment
    one = f"s3://{BUCKET}/run1/part-002.parquet?endpoint_override={s3}"
    file = str(small_dir / "part-002.parquet")
    assert _doc(losscli.evaluate(one, pred="a", target="y")).replace(one, file) == _doc(
        losscli.evaluate(file, pred="a", target="y"))


def test_s3_errors_name_the_uri_and_no_secret(s3: str, capsys: pytest.CaptureFixture[str]
                                              ) -> None:
    for uri, says in ((f"s3://no-such-bucket-{os.getpid()}/x/", "no such file"),
                      (f"s3://{BUCKET}/nothing-here/", "no such file")):
        assert cli(["eval", uri]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"losscli: error: {uri}: {says}") and err.count("\n") == 1
    secret = f"s3://{BUCKET}/x.parquet?access_key=AKIDOOPS&secret_key=hunter22&region=us-east-1"
    with pytest.raises(InputError) as err_info:
        open_source(secret)
    text = str(err_info.value)
    assert "hunter22" not in text and "AKIDOOPS" not in text and "secret_key=***" in text
    # a store that does not answer: the network error, one line, the keys' values scrubbed
    dead = f"s3://{BUCKET}/x/?endpoint_override=http://127.0.0.1:9&region=us-east-1"
    assert cli(["eval", dead]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"losscli: error: {dead}: cannot list") and "Traceback" not in err
    assert "testing-secret-1" not in err


# --- what is refused ----------------------------------------------------------------------------


def test_csv_stdin_and_bad_schedulers_are_refused(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    csv = tmp_path / "p.csv"
    csv.write_text("y,pred\n1,2\n3,4\n")
    assert cli(["eval", str(csv), "--scheduler", "local:2"]) == 2
    assert "distributed runs read Parquet or Arrow files" in capsys.readouterr().err
    stdin = Source("-", "csv", ["y", "pred"], _stdin=io.BufferedReader(io.BytesIO(b"")))
    with pytest.raises(UsageError, match="stdin is a stream read once"):
        DaskExecutor("local:2").run(ReadPlan(stdin, Columns(["pred"], "y"), 1), None)  # type: ignore[arg-type]
    for bad in ("local:0", "http://x:1", "yarn"):
        assert cli(["eval", str(csv), "--scheduler", bad]) == 2
        assert "--scheduler" in capsys.readouterr().err


def test_an_unreadable_unit_is_exit_2_naming_the_file(small_dir: Path, tmp_path: Path,
                                                      cluster: Any,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    for f in sorted(small_dir.iterdir())[:3]:
        (broken / f.name).write_bytes(f.read_bytes())
    bad = broken / "part-001.parquet"
    bad.write_bytes(bad.read_bytes()[: bad.stat().st_size // 2] + b"PAR1")
    code = cli(["eval", str(broken), "--pred", "a", "--target", "y",
                "--scheduler", cluster.scheduler_address])
    err = capsys.readouterr().err
    assert code == 2 and str(bad) in err and "Traceback" not in err


@pytest.fixture
def fresh_registry() -> Iterator[None]:
    """The plugins a test loads leave the registry with it (later tests list the losses)."""
    from losscli import registry

    saved, loaded = dict(registry.PLUGINS), set(registry._loaded)
    yield
    registry.PLUGINS.clear()
    registry.PLUGINS.update(saved)
    registry._loaded.clear()
    registry._loaded.update(loaded)


@pytest.mark.usefixtures("fresh_registry")
def test_a_plugin_the_workers_cannot_import_fails_clearly(small_dir: Path, tmp_path: Path,
                                                          client: Any) -> None:
    from losscli.registry import load_plugins

    mod = tmp_path / "plugin_only_here_21.py"
    mod.write_text(textwrap.dedent("""
        import numpy as np
        from losscli.plugin import loss

        @loss("cube21", task="regression", formula="|p - y|^3")
        def cube21(pred, target):
            e = pred - target
            return np.abs(e) ** 3, 3 * e * np.abs(e)
        """))
    sys.path.insert(0, str(tmp_path))  # this process only: the workers do not have it
    try:
        load_plugins(["plugin_only_here_21"])
        with pytest.raises(PluginError, match="imported on each worker"):
            losscli.evaluate(str(small_dir), pred="a", target="y", losses=["cube21"],
                             executor=DaskExecutor(client=client))
    finally:
        sys.path.remove(str(tmp_path))
    # by file path, which the workers of this machine can read: the local bits
    path = tmp_path / "by_path.py"
    path.write_text(mod.read_text().replace("cube21", "cube21f"))
    load_plugins([str(path)])
    opts: dict[str, Any] = {"pred": "a", "target": "y", "losses": ["cube21f", "mse"]}
    assert _doc(losscli.evaluate(str(small_dir), executor=DaskExecutor(client=client),
                                 **opts)) == _doc(losscli.evaluate(str(small_dir), **opts))


def test_start_up_imports_neither_dask_nor_distributed(small_dir: Path) -> None:
    code = textwrap.dedent(f"""
        import sys
        from losscli.cli import run
        assert run(["--help"]) == 0
        assert run(["eval", {str(small_dir / 'part-000.parquet')!r}, "--pred", "a",
                    "--target", "y", "--no-config"]) == 0
        bad = sorted(m for m in sys.modules if m.split(".")[0] in ("dask", "distributed"))
        assert not bad, bad
        """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr


def test_without_dask_the_option_says_what_to_install(small_dir: Path) -> None:
    code = textwrap.dedent(f"""
        import sys
        sys.modules["distributed"] = None  # as if not installed
        from losscli.cli import run
        sys.exit(run(["eval", {str(small_dir)!r}, "--pred", "a", "--target", "y",
                      "--scheduler", "local:2", "--no-config"]))
        """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip() == ("losscli: error: --scheduler local:2 needs Dask "
                                   "distributed: pip install 'losscli[dask]'")
