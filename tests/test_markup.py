"""Rich markup never swallows text: every command's table output shows bracketed column names,
file names, labels, formulas and plugin texts verbatim (Rich reads ``[eps, 1 - eps]`` or
``[bold]`` as markup unless it is escaped)."""

from __future__ import annotations

import json
import shlex
import textwrap
from pathlib import Path

import numpy as np
import pytest

from losscli import registry
from losscli.cli import run
from losscli.registry import PLUGINS


@pytest.fixture
def bracketed(tmp_path: Path) -> Path:
    """A directory ``[runs] b`` with regression, binary and multiclass files whose file and
    column names (and class labels) hold markup-like brackets."""
    d = tmp_path / "[runs] b"
    d.mkdir()
    rng = np.random.default_rng(1)
    n = 400
    y = rng.normal(size=n)
    w = rng.uniform(0.5, 2.0, n)
    rows = [f"{a!r},{b!r},{c!r}" for a, b, c in zip(y.tolist(), (y + rng.standard_t(3, n)).tolist(),
                                                     w.tolist(), strict=True)]
    (d / "reg [bold]v2.csv").write_text('"[target]","[pred] hat","[w]"\n' + "\n".join(rows) + "\n")
    yb = (rng.random(n) < 0.07).astype(int)
    p = np.clip(0.07 + 0.5 * yb + rng.normal(0, 0.1, n), 0.01, 0.99)
    (d / "bin [red].csv").write_text('"[label]","[prob]"\n' + "\n".join(
        f"{a},{b!r}" for a, b in zip(yb.tolist(), p.tolist(), strict=True)) + "\n")
    labels = np.array(["[cat]", "[dog]", "[eps]"])[rng.choice(3, n, p=[0.8, 0.15, 0.05])]
    P = rng.dirichlet(np.ones(3), n)
    (d / "multi [i].csv").write_text('"[y]","prob_[cat]","prob_[dog]","prob_[eps]"\n' + "\n".join(
        f'"{lab}",{a!r},{b!r},{c!r}' for lab, (a, b, c) in zip(labels, P.tolist(), strict=True))
        + "\n")
    return d


@pytest.fixture(autouse=True)
def fresh_registry() -> object:
    saved, loaded = dict(PLUGINS), set(registry._loaded)
    yield
    PLUGINS.clear()
    PLUGINS.update(saved)
    registry._loaded.clear()
    registry._loaded.update(loaded)


def table(capsys: pytest.CaptureFixture[str], *args: str, code: int = 0) -> str:
    """stdout of a run that exits with ``code`` (0: no gate or every gate passes)."""
    got = run(list(args))
    out, err = capsys.readouterr()
    assert got == code, err
    return out


def test_eval_tables_show_bracketed_names(capsys: pytest.CaptureFixture[str],
                                          bracketed: Path) -> None:
    src = str(bracketed / "reg [bold]v2.csv")
    out = table(capsys, "eval", src, "--pred", "[pred] hat", "--target", "[target]", "--weight",
                "[w]", "--loss", "mse", "--max", "mse=1e9", "--show-config")
    for text in (src, "[pred] hat", "[target]", "[w]"):
        assert text in out, text
    # mse of t3 noise is about 3: a limit of 1e-9 fails (exit 1) and the table still shows them
    out = table(capsys, "eval", src, "--pred", "[pred] hat", "--target", "[target]", "--weight",
                "[w]", "--loss", "mse", "--max", "mse=1e-9", "-q", code=1)
    for text in (src, "[pred] hat", "[target]", "[w]"):
        assert text in out, text
    src = str(bracketed / "bin [red].csv")
    out = table(capsys, "eval", src, "--loss", "bce:pos_weight=balanced", "--pred", "[prob]",
                "--target", "[label]")
    assert src in out and "[prob]" in out and "[label]" in out
    src = str(bracketed / "multi [i].csv")
    out = table(capsys, "eval", src, "--pred", "prob_*", "--target", "[y]")
    assert src in out and "prob_[cat]" in out and "[y]" in out


def test_recommend_tables_show_bracketed_names(capsys: pytest.CaptureFixture[str],
                                               bracketed: Path) -> None:
    src = str(bracketed / "multi [i].csv")
    out = table(capsys, "recommend", src, "--pred", "prob_*", "--target", "[y]")
    for text in (src, "prob_[cat]", "[y]", "[cat]: ", "[eps]: ", "class [eps]"):
        assert text in out, text
    src = str(bracketed / "reg [bold]v2.csv")
    out = table(capsys, "recommend", src, "--pred", "[pred] hat", "--target", "[target]",
                "--weight", "[w]")
    assert src in out and "[pred] hat" in out and "'[pred] hat'" in out  # the command quotes it
    out = table(capsys, "recommend", src, "--target", "[target]", "--target-only")
    assert "[target]" in out


def test_recommended_command_selects_bracketed_columns(capsys: pytest.CaptureFixture[str],
                                                       bracketed: Path) -> None:
    """An exact column name wins over its reading as a glob: 'prob_[cat],prob_[dog],...'."""
    src = str(bracketed / "multi [i].csv")
    rec = json.loads(table(capsys, "recommend", src, "--pred", "prob_*", "--target", "[y]",
                           "--format", "json"))["recommended"]
    argv = shlex.split(rec["command"])
    assert argv[argv.index("--pred") + 1] == "prob_[cat],prob_[dog],prob_[eps]"
    doc = json.loads(table(capsys, *argv[1:], "--format", "json"))
    assert doc["losses"][0]["value"] == pytest.approx(rec["value"], rel=1e-12)


def test_losses_catalog_and_plugin_texts_are_verbatim(capsys: pytest.CaptureFixture[str],
                                                      tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    out = table(capsys, "losses")
    assert "Probabilities are clipped to [eps, 1 - eps]" in out
    assert "clipped to , eps" not in out
    assert "[eps, 1 - eps]" in out.split("bce")[1]  # in bce's formula as well
    path = tmp_path / "[team] costs.py"
    path.write_text(textwrap.dedent('''
        from losscli.plugin import loss

        @loss(name="brk", task="regression", params={"k": 1.0},
              formula="l = [bold]k e^2[/bold] on [0, inf)", gradient="g = [red]2 k e")
        def brk(pred, target, k):
            e = pred - target
            return k * e * e, 2 * k * e
        '''))
    monkeypatch.chdir(tmp_path)  # the table names the plugin file relative to here
    out = table(capsys, "losses", "--plugin", str(path))
    assert "[bold]k e^2[/bold] on [0, inf)" in out and "[red]2 k e" in out
    assert "plugin [team] costs.py" in out
    out = table(capsys, "losses", "--plugin", str(path), "--check", "brk")
    assert "[team] costs.py" in " ".join(out.split()) and "PASS" in out
