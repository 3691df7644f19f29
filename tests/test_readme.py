"""The shell examples of the README and of docs/*.md, extracted and run as a newcomer would run
them, in order (the README, then the pages in the order of DOCS), with the placeholder files
(preds.parquet, preds.csv, train.csv) made from the shipped samples: the documentation cannot
drift from the tool. Also: CI (.ci/run) runs exactly the Quick start's test command."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
#: The reference pages, in the order their examples run (a baseline is recorded before it is read).
DOCS = ("eval", "plugins", "recommend", "compare", "reports", "ci", "benchmarks", "python-api",
        "distributed", "development")


def docs_text() -> str:
    """The README and every page of docs/, one text."""
    pages = sorted(p.stem for p in (ROOT / "docs").glob("*.md"))
    assert sorted(DOCS) == pages, "a page of docs/ that DOCS does not list (or the reverse)"
    return "\n\n".join([README, *((ROOT / "docs" / f"{d}.md").read_text(encoding="utf-8")
                                   for d in DOCS)])


TEXT = docs_text()
SAMPLES = ROOT / "sample_data"
GATES = ("--max", "--baseline", "[tool.losscli]", "--fail-if-worse", "--require-not-worse")


def blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", TEXT, flags=re.S)


def commands() -> list[tuple[str, str]]:
    """(command, comment) of every README shell line that runs losscli, in README order. The
    losscli part of 'pip install . && losscli ...' is kept; pip, python and pytest lines are
    the Quick start's and CI's business (tested below)."""
    found = []
    for block in blocks("bash"):
        for line in block.splitlines():
            mark = re.search(r"\s#\s", line + " ")  # a comment: ' # ' after the command
            code, comment = (line[:mark.start()], line[mark.end():]) if mark else (line, "")
            code, comment = code.strip(), comment.strip()
            if "&&" in code:
                code = next((p.strip() for p in code.split("&&") if "losscli " in p), "")
            if code.startswith("losscli ") or re.match(r"cat \S+ \| losscli ", code):
                found.append((code, comment))
    return found


def workspace(tmp_path: Path) -> Path:
    """A working directory with the samples, the README's Python files (a block whose first line
    is '# NAME.py') and the placeholder inputs: preds.* (regression, with two models' columns
    old_score and new_score besides y_hat), baseline / candidate.parquet (binary, with an id),
    base / cand.parquet (regression), train.csv (a price target alone)."""
    shutil.copytree(SAMPLES, tmp_path / "sample_data")
    reg = pq.read_table(SAMPLES / "regression.parquet")
    y_hat = np.asarray(reg.column("y_hat"), dtype=float)
    noise = np.random.default_rng(12).normal(0.0, 0.3, y_hat.size)
    pq.write_table(reg.append_column("old_score", pa.array(y_hat + noise))
                   .append_column("new_score", pa.array(y_hat)), tmp_path / "preds.parquet")
    shutil.copy(SAMPLES / "regression.csv", tmp_path / "preds.csv")
    pq.write_table(reg, tmp_path / "base.parquet")
    pq.write_table(reg.set_column(reg.schema.get_field_index("y_hat"), "y_hat",
                                  pa.array(y_hat + noise)), tmp_path / "cand.parquet")
    binary = pq.read_table(SAMPLES / "binary.parquet")
    ids = pa.array(np.arange(binary.num_rows))
    prob = np.asarray(binary.column("prob"), dtype=float)
    pq.write_table(binary.append_column("id", ids), tmp_path / "baseline.parquet")
    pq.write_table(binary.set_column(binary.schema.get_field_index("prob"), "prob",
                                     pa.array(np.clip(prob * 0.95 + 0.02, 0.0, 1.0)))
                   .append_column("id", ids), tmp_path / "candidate.parquet")
    with open(SAMPLES / "regression.csv", newline="", encoding="utf-8") as f:
        prices = [row["y"] for row in csv.DictReader(f)]
    (tmp_path / "train.csv").write_text("price\n" + "\n".join(prices) + "\n", encoding="utf-8")
    for block in blocks("python"):
        first = block.splitlines()[0]
        if re.fullmatch(r"# [\w.]+\.py", first):
            (tmp_path / first[2:]).write_text(block, encoding="utf-8")
    return tmp_path


def readme_config() -> str:
    [toml] = [b for b in blocks("toml") if b.startswith("[tool.losscli]")]
    return toml


def test_readme_has_examples() -> None:
    cmds = [c for c, _ in commands()]
    assert len(cmds) >= 15
    for needed in ("losscli eval sample_data/regression.parquet", "--write-baseline",
                   "losscli recommend", "losscli losses"):
        assert any(needed in c for c in cmds), needed


def test_readme_examples_run(tmp_path: Path) -> None:
    cwd = workspace(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GITHUB_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    failures = []
    for code, comment in commands():
        config = cwd / "pyproject.toml"
        if "[tool.losscli]" in comment:  # the line that reads the README's configuration
            config.write_text(readme_config(), encoding="utf-8")
        proc = subprocess.run(["bash", "-o", "pipefail", "-c", code], cwd=cwd, env=env,
                              capture_output=True, text=True, timeout=120, check=False)
        config.unlink(missing_ok=True)
        gated = any(g in code + comment for g in GATES)
        ok = proc.returncode == 0 or (proc.returncode == 1 and gated and all(
            line.startswith("losscli: gate failed:") for line in proc.stderr.splitlines()))
        if not ok or "losscli: error" in proc.stderr or "Traceback" in proc.stderr:
            failures.append(f"{code}\n  exit {proc.returncode}: {proc.stderr.strip()}")
        elif not proc.stdout.strip() and ">" not in code:
            failures.append(f"{code}\n  printed nothing")
    assert not failures, "\n".join(failures)
    assert (cwd / "ci" / "baseline.json").is_file() and (cwd / "losscli.xml").is_file()


def test_first_command_prints_no_warning(tmp_path: Path) -> None:
    """The Quick start's evaluation: a result on stdout and nothing on stderr."""
    first = commands()[0][0]
    assert first == "losscli eval sample_data/regression.parquet"
    cwd = workspace(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "losscli", *first.split()[1:]], cwd=cwd,
                          capture_output=True, text=True, timeout=60, check=False)
    assert (proc.returncode, proc.stderr) == (0, "")
    assert "mse" in proc.stdout and "smooth_l1" not in proc.stdout


def quick_start() -> list[str]:
    section = README.split("## Quick start", 1)[1]
    return re.search(r"```bash\n(.*?)```", section, flags=re.S).group(1).splitlines()


def test_quick_start_has_a_virtual_environment_step() -> None:
    """Two commands, each doing its own set-up: a virtual environment first, then the install."""
    lines = quick_start()
    assert len(lines) == 2
    for line in lines:
        assert line.startswith("python3 -m venv .venv && . .venv/bin/activate && pip install ")
    assert lines[0].endswith(" && losscli eval sample_data/regression.parquet")
    assert lines[1].endswith(" && pytest")


@pytest.mark.parametrize("script", [".ci/run"])
def test_ci_runs_exactly_the_readme_test_command(script: str) -> None:
    """The Quick start's test command, which makes its own virtual environment, is the last
    command of .ci/run, character for character."""
    [test_line] = [x for x in quick_start() if "pytest" in x]
    ci = [x for x in (ROOT / script).read_text().splitlines() if x and not x.startswith("#")]
    assert ci[-1] == test_line
    assert any("python3 -m venv" in x for x in ci)
    # and the development page points at the same script
    assert ".ci/run" in README and ".ci/run" in (ROOT / "docs" / "development.md").read_text()


def test_readme_is_a_landing_page() -> None:
    """What losscli does, the Quick start, an example per command, CI in a few lines and links
    to every page of docs/, in at most 200 lines."""
    assert len(README.splitlines()) <= 200
    for command in ("losscli eval ", "losscli compare ", "losscli recommend ", "losscli losses"):
        assert command in README.split("## Quick start", 1)[1], command
    for page in DOCS:
        assert f"(docs/{page}.md)" in README, page
    for page in DOCS:  # the pages link to each other by file, not by README anchors
        assert "](#losscli" not in (ROOT / "docs" / f"{page}.md").read_text(), page


def test_python_api_example_runs(tmp_path: Path) -> None:
    """The Python API page's example, run as a notebook would run it, on the placeholder
    preds.parquet; its gates and the comparison say what the data say."""
    section = (ROOT / "docs" / "python-api.md").read_text(encoding="utf-8")
    code = re.findall(r"```python\n(.*?)```", section, flags=re.S)[0]
    where = workspace(tmp_path)
    (where / "ci").mkdir()
    # a baseline 1% better than the data on mse, 3% on huber: the 2% tolerance passes mse only
    losses = [{"spec": "mse", "value": 9.12725 / 1.01},
              {"spec": "huber:delta=2", "value": 1.40718 / 1.03}]
    (where / "ci" / "baseline.json").write_text(
        json.dumps({"schema": "losscli.eval/1", "losses": losses}))
    check = (code + "\nassert mse.value == report.to_dict()['losses'][0]['value']"
             "\nassert c.losses[0].verdict == 'better' and c.passed"
             "\nassert rec.recommended.spec and rec.reasons"
             "\nprint('GATES', [g.passed for g in report.gates])\n")
    proc = subprocess.run([sys.executable, "-c", check], cwd=where,
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "column 'no_such_column' not found" in proc.stdout
    assert proc.stdout.endswith("GATES [True, True, False]\n")  # max mse, mse, huber
