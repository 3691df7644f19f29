"""Custom losses: the ``@loss`` decorator, the three ways to load a plugin, failures that exit 2
naming the plugin, plugins through weights, chunks, threads, gates and every output format, the
two shipped examples against hand formulas, and ``losses --check`` (built-in losses pass it; a
gradient off by a factor 1.001 fails it)."""

from __future__ import annotations

import json
import math
import pickle
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _helpers.tester import sweep

import losscli
from losscli import registry
from losscli.cli import run
from losscli.errors import PluginError
from losscli.losses import CATALOG
from losscli.registry import PLUGINS
from losscli.spec import parse_spec

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
ASYM = str(EXAMPLES / "asymmetric_cost.py")
CAPPED = str(EXAMPLES / "capped_relative.py")


@pytest.fixture(autouse=True)
def fresh_registry() -> Iterator[None]:
    """Each test starts without plugins and leaves none behind."""
    saved, loaded = dict(PLUGINS), set(registry._loaded)
    PLUGINS.clear()
    registry._loaded.clear()
    yield
    PLUGINS.clear()
    PLUGINS.update(saved)
    registry._loaded.clear()
    registry._loaded.update(loaded)
    registry.reset_entry_points()


def write(tmp_path: Path, name: str, body: str) -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return str(path)


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = run(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def data() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(5)
    y = rng.gamma(2.0, 3.0, 5000) * rng.choice([-1.0, 1.0], 5000)
    pred = y + rng.standard_t(3, 5000) * (1.0 + 0.3 * np.abs(y))
    return {"pred": pred, "target": y, "w": rng.uniform(0.1, 3.0, 5000)}


def fsum_mean(values: np.ndarray, w: np.ndarray) -> float:
    return math.fsum((values * w).tolist()) / math.fsum(w.tolist())


# --- the two examples against hand formulas ------------------------------------------------------


def asym_ref(pred: np.ndarray, y: np.ndarray, under: float, over: float) -> tuple[np.ndarray,
                                                                                    np.ndarray]:
    e = pred - y
    return (np.array([under * x * x if x < 0 else over * x * x for x in e]),
            np.array([2 * under * x if x < 0 else 2 * over * x for x in e]))


def capped_ref(pred: np.ndarray, y: np.ndarray, cap: float, floor: float) -> tuple[np.ndarray,
                                                                                     np.ndarray]:
    values, grads = [], []
    for p, t in zip(pred.tolist(), y.tolist(), strict=True):
        s = max(abs(t), floor)
        r = (p - t) / s
        values.append(cap * -math.expm1(-r * r / cap))
        grads.append(2 * r * math.exp(-r * r / cap) / s)
    return np.array(values), np.array(grads)


@pytest.mark.parametrize(("ref", "plugin", "spec", "params"), [
    (asym_ref, ASYM, "asym", (3.0, 1.0)),
    (asym_ref, ASYM, "asym:under=5,over=0.5", (5.0, 0.5)),
    (capped_ref, CAPPED, "capped_rel", (1.0, 1.0)),
    (capped_ref, CAPPED, "capped_rel:cap=4,floor=2", (4.0, 2.0)),
])
def test_examples_match_their_formulas(data: dict[str, np.ndarray], ref: Any, plugin: str,
                                       spec: str, params: tuple[float, float],
                                       tmp_path: Path) -> None:
    from losscli.registry import load_plugins

    load_plugins([plugin])
    values, grads = ref(data["pred"], data["target"], *params)
    r = losscli.evaluate(data, pred="pred", target="target", weight="w", losses=[spec])
    loss = r.losses[0]
    assert loss.spec == spec
    assert loss.value == pytest.approx(fsum_mean(values, data["w"]), rel=1e-12)
    g = loss.gradient
    assert g.mean == pytest.approx(math.fsum(grads.tolist()) / grads.size, rel=1e-10)
    assert g.abs_max == pytest.approx(float(np.abs(grads).max()), rel=1e-13)
    w = data["w"]
    assert g.norm == pytest.approx(math.sqrt(math.fsum(((w * grads) ** 2).tolist()))
                                   / math.fsum(w.tolist()), rel=1e-12)
    # inputs, chunks and threads
    sweep("eval", {k: v[:1500] for k, v in data.items()}, tmp_path, chunks=(1 << 17, 1000, 777),
          pred="pred", target="target", weight="w", losses=[spec])


def test_asym_with_under_one_is_mse(data: dict[str, np.ndarray]) -> None:
    from losscli.registry import load_plugins

    load_plugins([ASYM])
    r = losscli.evaluate(data, pred="pred", target="target", losses=["asym:under=1", "mse"])
    assert r.losses[0].value == pytest.approx(r.losses[1].value, rel=1e-14)


# --- loading ------------------------------------------------------------------------------------


def test_plugin_flag_runs_through_gates_and_every_format(capsys: pytest.CaptureFixture[str],
                                                          tmp_path: Path) -> None:
    src = str(ROOT / "sample_data" / "regression.csv")
    code, out, _ = cli(capsys, "eval", src, "--plugin", ASYM, "--plugin", CAPPED, "--loss",
                       "asym:under=4", "--loss", "capped_rel", "--format", "json")
    assert code == 0
    doc = json.loads(out)
    value = doc["losses"][0]["value"]
    assert [x["spec"] for x in doc["losses"]] == ["asym:under=4", "capped_rel"]
    for fmt in ("table", "markdown", "csv", "junit", "github"):
        code, out, _ = cli(capsys, "eval", src, "--plugin", ASYM, "--loss", "asym:under=4",
                           "--format", fmt, "--max", f"asym:under=4={value * 2}")
        assert code == 0, fmt
        assert "asym:under=4" in out, fmt
    code, _, err = cli(capsys, "eval", src, "--plugin", ASYM, "--loss", "asym:under=4",
                       "--max", f"asym:under=4={value / 2}")
    assert code == 1 and "asym:under=4" in err
    # a baseline written with a plugin loss gates the next run
    base = tmp_path / "base.json"
    assert cli(capsys, "eval", src, "--plugin", ASYM, "--loss", "asym",
               "--write-baseline", str(base))[0] == 0
    assert cli(capsys, "eval", src, "--plugin", ASYM, "--loss", "asym", "--baseline",
               str(base))[0] == 0


def test_plugins_from_pyproject_relative_to_it(capsys: pytest.CaptureFixture[str],
                                               tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "costs").mkdir()
    (tmp_path / "costs" / "asym.py").write_text(Path(ASYM).read_text())
    (tmp_path / "pyproject.toml").write_text(
        '[tool.losscli]\nplugins = ["costs/asym.py"]\nlosses = ["asym:under=2"]\n')
    monkeypatch.chdir(tmp_path)
    src = str(ROOT / "sample_data" / "regression.csv")
    code, out, _ = cli(capsys, "eval", src, "--format", "json")
    assert code == 0
    assert json.loads(out)["losses"][0]["spec"] == "asym:under=2"
    # flags add to the configured plugins
    code, out, _ = cli(capsys, "eval", src, "--plugin", CAPPED, "--loss", "asym",
                       "--loss", "capped_rel", "--format", "json")
    assert code == 0 and len(json.loads(out)["losses"]) == 2
    code, out, _ = cli(capsys, "losses", "--format", "json")
    assert "asym" in [d["name"] for d in json.loads(out)["losses"]]


def test_plugin_as_a_module_name(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path, "team_losses.py", Path(ASYM).read_text())
    monkeypatch.syspath_prepend(str(tmp_path))
    code, out, _ = cli(capsys, "eval", str(ROOT / "sample_data" / "regression.csv"),
                       "--plugin", "team_losses", "--loss", "asym", "--format", "json")
    assert code == 0 and json.loads(out)["losses"][0]["name"] == "asym"
    monkeypatch.delitem(sys.modules, "team_losses")


def install_entry_point(where: Path, monkeypatch: pytest.MonkeyPatch, dist: str,
                        entry: str) -> None:
    """A distribution ``dist`` on sys.path whose ``losscli.losses`` group holds ``entry``."""
    info = where / f"{dist.replace('-', '_')}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[losscli.losses]\n{entry}\n")
    monkeypatch.syspath_prepend(str(where))
    registry.reset_entry_points()


def test_entry_point_group(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                           monkeypatch: pytest.MonkeyPatch) -> None:
    """An installed package's ``losscli.losses`` entry point is found when a spec names it."""
    write(tmp_path, "shop_costs.py", Path(ASYM).read_text().replace('"asym"', '"shop_asym"'))
    install_entry_point(tmp_path, monkeypatch, "shop-costs", "shop = shop_costs")
    code, out, err = cli(capsys, "eval", str(ROOT / "sample_data" / "regression.csv"),
                         "--loss", "shop_asym:under=2", "--format", "json")
    assert code == 0, err
    assert json.loads(out)["losses"][0]["spec"] == "shop_asym:under=2"
    monkeypatch.delitem(sys.modules, "shop_costs")


def test_parse_spec_runs_no_entry_point_unless_asked(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A spec naming an unknown loss imports no installed package's code by itself; the CLI
    and the top-level functions ask for the entry points, and then the loss is found."""
    write(tmp_path, "depot_costs.py", Path(ASYM).read_text().replace('"asym"', '"depot_asym"'))
    install_entry_point(tmp_path, monkeypatch, "depot-costs", "depot = depot_costs")
    with pytest.raises(losscli.UsageError, match="unknown loss 'depot_asym'"):
        parse_spec("depot_asym")
    assert "depot_costs" not in sys.modules and "depot_asym" not in PLUGINS
    registry.entry_points_on_demand()
    assert parse_spec("depot_asym:under=2").spec == "depot_asym:under=2"
    assert "depot_costs" in sys.modules
    monkeypatch.delitem(sys.modules, "depot_costs")


def test_broken_entry_point_names_itself(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    install_entry_point(tmp_path, monkeypatch, "broken", "broken = no_such_module_xyz")
    code, out, err = cli(capsys, "eval", str(ROOT / "sample_data" / "regression.csv"),
                         "--loss", "nothing_like_this")
    assert code == 2 and out == ""
    assert "plugin broken (entry point no_such_module_xyz" in err


# --- failures: exit 2, one line, naming the plugin ------------------------------------------------


BROKEN = {
    "syntax.py": ("def broken(:\n", "plugin {path}: cannot import it: SyntaxError"),
    "clash.py": ("""
        import numpy as np
        from losscli.plugin import loss

        @loss(name="mse", task="regression")
        def mse(pred, target):
            return (pred - target) ** 2, 2 * (pred - target)
        """, "plugin {path}: loss 'mse' clashes with the built-in loss"),
    "shape.py": ("""
        import numpy as np
        from losscli.plugin import loss

        @loss(name="short", task="regression")
        def short(pred, target):
            return (pred - target)[:-1], 2 * (pred - target)
        """, "plugin loss 'short' ({path}) must return values of shape"),
    "nonfinite.py": ("""
        import numpy as np
        from losscli.plugin import loss

        @loss(name="logabs", task="regression")
        def logabs(pred, target):
            e = pred - target
            return np.log(np.abs(e) * 0.0), 1.0 / e
        """, "plugin loss 'logabs' ({path}) returned non-finite values for finite input"),
    "raises.py": ("""
        from losscli.plugin import loss

        @loss(name="oops", task="regression", params={"k": 1.0})
        def oops(pred, target, k):
            raise ZeroDivisionError("k is zero")
        """, "plugin loss 'oops' ({path}) raised ZeroDivisionError: k is zero"),
    "tuple.py": ("""
        from losscli.plugin import loss

        @loss(name="single", task="regression")
        def single(pred, target):
            return pred - target
        """, "plugin loss 'single' ({path}) must return (values, gradients)"),
    "empty.py": ("x = 1\n", "plugin {path} defines no loss"),
}


@pytest.mark.parametrize("name", list(BROKEN))
def test_failing_plugin_is_exit_2_naming_it(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                            name: str) -> None:
    body, message = BROKEN[name]
    path = write(tmp_path, name, body)
    loss_name = {"shape.py": "short", "nonfinite.py": "logabs", "raises.py": "oops",
                 "tuple.py": "single"}.get(name, "mse")
    code, out, err = cli(capsys, "eval", str(ROOT / "sample_data" / "regression.csv"),
                         "--plugin", path, "--loss", loss_name)
    assert code == 2 and out == ""
    shown = str(Path(path).resolve())
    assert message.format(path=path if name in ("syntax.py", "empty.py") else shown) in err, err
    assert err.startswith("losscli: error: ") and err.count("\n") == 1


def test_missing_plugin_file_and_module(capsys: pytest.CaptureFixture[str]) -> None:
    src = str(ROOT / "sample_data" / "regression.csv")
    code, _, err = cli(capsys, "eval", src, "--plugin", "nowhere/costs.py")
    assert code == 2 and "plugin nowhere/costs.py: no such file" in err
    code, _, err = cli(capsys, "eval", src, "--plugin", "no_such_module_abc")
    assert code == 2 and "plugin no_such_module_abc: cannot import it: ModuleNotFoundError" in err


def test_two_plugins_with_one_name_clash(tmp_path: Path) -> None:
    from losscli.registry import load_plugins

    other = write(tmp_path, "other.py", Path(ASYM).read_text())
    load_plugins([ASYM])
    with pytest.raises(PluginError, match="loss 'asym' is also defined by plugin"):
        load_plugins([other])


def test_bad_declarations(tmp_path: Path) -> None:
    from losscli.registry import load_plugins

    for body, message in (
            ('from losscli.plugin import loss\n@loss(name="Bad Name", task="regression")\n'
             'def f(p, t):\n    return p, p\n', "must be lower-case"),
            ('from losscli.plugin import loss\n@loss(name="f", task="ranking")\n'
             'def f(p, t):\n    return p, p\n', "has task 'ranking'"),
            ('from losscli.plugin import loss\n@loss(name="f", task="regression", '
             'params={"k": "x"})\ndef f(p, t, k):\n    return p, p\n', "needs a finite number")):
        path = tmp_path / f"decl{len(message)}.py"
        path.write_text(body)
        with pytest.raises(PluginError, match=message):
            load_plugins([str(path)])


def test_plugin_cannot_modify_the_shared_batch(capsys: pytest.CaptureFixture[str],
                                               tmp_path: Path) -> None:
    path = write(tmp_path, "inplace.py", """
        from losscli.plugin import loss

        @loss(name="inplace", task="regression")
        def inplace(pred, target):
            pred -= target
            return pred * pred, 2 * pred
        """)
    code, _, err = cli(capsys, "eval", str(ROOT / "sample_data" / "regression.csv"),
                       "--plugin", path, "--loss", "inplace", "--loss", "mse")
    assert code == 2 and "raised ValueError" in err and "read-only" in err


# --- multiclass plugins ---------------------------------------------------------------------------


def test_multiclass_plugin_gradient_row_norm(tmp_path: Path) -> None:
    from losscli.registry import load_plugins

    path = write(tmp_path, "brier.py", """
        import numpy as np
        from losscli.plugin import loss

        @loss(name="brier_mc", task="multiclass")
        def brier_mc(pred, target):
            onehot = np.zeros_like(pred)
            onehot[target.astype(int), np.arange(target.size)] = 1.0
            d = pred - onehot
            return (d * d).sum(axis=0), 2.0 * d
        """)
    load_plugins([path])
    rng = np.random.default_rng(9)
    P = rng.dirichlet(np.ones(3), 500)
    y = rng.integers(0, 3, 500).astype(float)
    cols = {"a": P[:, 0], "b": P[:, 1], "c": P[:, 2], "y": y}
    r = losscli.evaluate(cols, pred="a,b,c", target="y", losses=["brier_mc"]).losses[0]
    onehot = np.eye(3)[y.astype(int)]
    assert r.value == pytest.approx(float(np.mean(((P - onehot) ** 2).sum(axis=1))), rel=1e-12)
    norms = np.sqrt((4 * (P - onehot) ** 2).sum(axis=1))
    assert r.gradient.abs_mean == pytest.approx(float(norms.mean()), rel=1e-12)


# --- pickling by name ---------------------------------------------------------------------------


def test_specs_pickle_by_name_and_a_plugin_reloads_in_a_new_process() -> None:
    from losscli.registry import load_plugins

    load_plugins([ASYM])
    spec = parse_spec("asym:under=7")
    assert pickle.loads(pickle.dumps(spec)) == spec
    assert pickle.loads(pickle.dumps(CATALOG["huber"])) is CATALOG["huber"]
    blob = pickle.dumps(spec)
    code = ("import pickle, sys, numpy as np; from losscli.losses import Batch; "
            "s = pickle.loads(sys.stdin.buffer.read()); t = s.terms[0]; "
            "c = t.loss.compute(Batch(np.array([1.0, 3.0]), np.array([2.0, 2.0]), None), "
            "t.params); print(s.spec, c.values.tolist())")
    out = subprocess.run([sys.executable, "-c", code], input=blob, capture_output=True,
                         check=True).stdout.decode()
    assert out.strip() == "asym:under=7 [7.0, 1.0]"


# --- losses --check ------------------------------------------------------------------------------


def test_check_passes_for_the_examples_on_grid_and_data(capsys: pytest.CaptureFixture[str]
                                                        ) -> None:
    for plugin, spec in ((ASYM, "asym:under=5"), (CAPPED, "capped_rel:cap=4")):
        code, out, _ = cli(capsys, "losses", "--plugin", plugin, "--check", spec, "--data",
                           str(ROOT / "sample_data" / "regression.csv"))
        assert code == 0, out
        assert "grid:" in out and "regression.csv: 2,000 points" in " ".join(out.split())
        assert out.strip().splitlines()[-1].startswith("PASS: worst relative error")


def test_check_fails_for_a_gradient_off_by_a_factor_1_001(capsys: pytest.CaptureFixture[str],
                                                         tmp_path: Path) -> None:
    path = write(tmp_path, "off.py", """
        import numpy as np
        from losscli.plugin import loss

        @loss(name="asym_off", task="regression", params={"under": 3.0})
        def asym_off(pred, target, under):
            e = pred - target
            return (np.where(e < 0, under * e * e, e * e),
                    1.001 * np.where(e < 0, 2 * under * e, 2 * e))
        """)
    code, out, err = cli(capsys, "losses", "--plugin", path, "--check", "asym_off")
    assert code == 1 and err == ""
    worst = float(out.split("worst relative error ")[1].split()[0])
    assert worst == pytest.approx(1e-3, rel=1e-3)  # |1.001 g - g| / |g|
    assert out.strip().splitlines()[-1].startswith("FAIL")
    # a looser tolerance lets it through
    assert cli(capsys, "losses", "--plugin", path, "--check", "asym_off", "--rtol", "2e-3")[0] == 0


def test_check_reports_the_data_row_of_the_worst_error(capsys: pytest.CaptureFixture[str],
                                                       tmp_path: Path) -> None:
    """A gradient wrong only for targets above 50: the grid passes, the data row is named."""
    path = write(tmp_path, "big.py", """
        import numpy as np
        from losscli.plugin import loss

        @loss(name="sq_big", task="regression")
        def sq_big(pred, target):
            e = pred - target
            return e * e, np.where(target > 50, 2.1 * e, 2 * e)
        """)
    csv = tmp_path / "d.csv"
    csv.write_text("y,y_hat\n1,2\n3,2.5\n60,61\n4,4.5\n")
    code, out, _ = cli(capsys, "losses", "--plugin", path, "--check", "sq_big", "--data",
                       str(csv))
    assert code == 1
    assert "row 3, pred=61, target=60" in " ".join(out.split())  # lines wrap at 80 columns
    assert max(len(line) for line in out.splitlines()) <= 80


BUILTIN_CHECKS = ["mse", "rmse", "mae", "huber", "huber:delta=0.3", "smooth_l1:beta=4",
                  "log_cosh", "quantile:q=0.9", "poisson", "bce", "bce:pos_weight=7", "focal",
                  "focal:gamma=0.5,alpha=0.3", "cce", "cce:class_weights=1,2,3"]


@pytest.mark.parametrize("spec", BUILTIN_CHECKS)
def test_builtin_losses_pass_the_check(capsys: pytest.CaptureFixture[str], spec: str) -> None:
    task = parse_spec(spec).task
    for logits in ([False, True] if task != "regression" else [False]):
        code, out, _ = cli(capsys, "losses", "--check", spec, *(["--logits"] if logits else []))
        assert code == 0, out
        assert "points" in out and "PASS" in out


def test_builtin_check_on_sample_data(capsys: pytest.CaptureFixture[str]) -> None:
    for spec, sample, extra in (("huber", "regression.csv", []),
                                ("poisson", "counts.csv", []),
                                ("bce", "binary.csv", ["--pred", "logit", "--logits"]),
                                ("focal", "binary.csv", ["--pred", "prob"]),
                                ("cce", "multiclass.csv", [])):
        code, out, _ = cli(capsys, "losses", "--check", spec, "--data",
                           str(ROOT / "sample_data" / sample), *extra)
        assert code == 0, out
        assert f"{sample}: " in out


def test_check_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    for args, message in ((["--check", "0.5*mse+0.5*mae"], "takes one loss"),
                          (["--check", "bce:pos_weight=balanced"], "measured from data"),
                          (["--check", "mse", "--logits"], "--logits applies"),
                          (["--check", "mse", "--rtol", "0"], "--rtol must be"),
                          (["--data", "x.csv"], "go with --check"),
                          (["--check", "cce", "--data", str(ROOT / "sample_data" /
                                                            "regression.csv")],
                           "needs several prediction columns")):
        code, out, err = cli(capsys, "losses", *args)
        assert code == 2 and out == "" and message in err, (args, err)
