"""The composite GitHub Action (action.yml, action/run.sh) and the README's workflow, run here
with a fake $GITHUB_STEP_SUMMARY and $GITHUB_OUTPUT: one evaluation writes the JUnit report and
the summary once, and the report is what the publishing step reads."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample_data"
SUMMARY_TITLE = "### losscli: "  # the markdown summary's heading


def action() -> dict[str, Any]:
    doc = yaml.safe_load((ROOT / "action.yml").read_text(encoding="utf-8"))
    assert isinstance(doc, dict)
    return doc


def github_env(tmp_path: Path, **inputs: str) -> dict[str, str]:
    """The evaluate step's environment as action.yml maps it, with losscli on PATH."""
    step = next(s for s in action()["runs"]["steps"] if s.get("id") == "evaluate")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "LOSSCLI_"))}
    defaults = {k: str(v.get("default", "")) for k, v in action()["inputs"].items()}
    for name, template in step["env"].items():
        key = re.fullmatch(r"\$\{\{ inputs\.(\w+) \}\}", template)
        assert key, template
        env[name] = inputs.get(key.group(1), defaults[key.group(1)])
    env["GITHUB_STEP_SUMMARY"] = str(tmp_path / "summary.md")
    env["GITHUB_OUTPUT"] = str(tmp_path / "output.txt")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def run_step(tmp_path: Path, **inputs: str) -> tuple[int, str, dict[str, str], str]:
    """(exit code, stderr, $GITHUB_OUTPUT as a dict, $GITHUB_STEP_SUMMARY)."""
    proc = subprocess.run([str(ROOT / "action" / "run.sh")], cwd=tmp_path,
                          env=github_env(tmp_path, **inputs), capture_output=True, text=True,
                          timeout=120, check=False)
    out_file = tmp_path / "output.txt"
    outputs = dict(line.split("=", 1) for line in out_file.read_text().splitlines()) \
        if out_file.exists() else {}
    summary = tmp_path / "summary.md"
    return proc.returncode, proc.stderr, outputs, summary.read_text() if summary.exists() else ""


def junit_cases(path: Path) -> dict[str, bool]:
    """JUnit testcase name -> passed."""
    root = ET.parse(path).getroot()
    return {c.get("name", ""): c.find("failure") is None for c in root.iter("testcase")}


def test_action_declares_its_inputs_and_publishes_the_report() -> None:
    doc = action()
    assert doc["runs"]["using"] == "composite"
    assert {"file", "losses", "gates", "baseline"} <= set(doc["inputs"])
    assert doc["inputs"]["file"]["required"] is True
    steps = doc["runs"]["steps"]
    install, evaluate, publish = steps
    assert '"$GITHUB_ACTION_PATH"' in install["run"] and "venv" in install["run"]
    assert evaluate["run"].endswith('"$GITHUB_ACTION_PATH/action/run.sh"')
    assert publish["if"] == "always()"  # also when a gate failed
    assert publish["with"]["report_paths"] == "${{ inputs.junit }}"
    assert doc["outputs"]["passed"]["value"] == "${{ steps.evaluate.outputs.passed }}"


def test_action_step_passes(tmp_path: Path) -> None:
    shutil.copy(SAMPLES / "regression.parquet", tmp_path / "preds.parquet")
    rc, err, outputs, summary = run_step(tmp_path, file="preds.parquet", gates="mse=10 mae=2",
                                         losses="mse mae 0.7*mse+0.3*mae")
    assert (rc, err) == (0, "")
    assert outputs == {"passed": "true", "junit": "losscli.xml"}
    cases = junit_cases(tmp_path / "losscli.xml")
    assert cases == {"max mse <= 10.0": True, "max mae <= 2.0": True, "mse": True, "mae": True,
                     "0.7*mse+0.3*mae": True}
    assert summary.count(SUMMARY_TITLE) == 1  # one evaluation, one summary


def test_action_specs_are_not_globbed(tmp_path: Path) -> None:
    """A spec with '*' stays one spec even when a file name matches it as a glob."""
    shutil.copy(SAMPLES / "regression.parquet", tmp_path / "preds.parquet")
    (tmp_path / "0.7_mse+0.3_mae").write_text("")
    rc, err, _, _ = run_step(tmp_path, file="preds.parquet", losses="0.7*mse+0.3*mae")
    assert (rc, err) == (0, "")
    assert list(junit_cases(tmp_path / "losscli.xml")) == ["0.7*mse+0.3*mae"]


def test_action_step_fails_a_gate(tmp_path: Path) -> None:
    shutil.copy(SAMPLES / "regression.parquet", tmp_path / "preds.parquet")
    rc, err, outputs, summary = run_step(tmp_path, file="preds.parquet", gates="mse=1")
    assert rc == 1 and "gate failed: mse" in err
    assert outputs["passed"] == "false"
    assert junit_cases(tmp_path / "losscli.xml")["max mse <= 1.0"] is False
    assert summary.count(SUMMARY_TITLE) == 1


def test_action_step_with_baseline(tmp_path: Path) -> None:
    shutil.copy(SAMPLES / "regression.parquet", tmp_path / "preds.parquet")
    env = github_env(tmp_path)
    subprocess.run(["losscli", "eval", "preds.parquet", "--loss", "mse", "--write-baseline",
                    "ci/baseline.json"], cwd=tmp_path, env=env, check=True,
                   capture_output=True, timeout=60)
    (tmp_path / "summary.md").unlink()
    rc, err, outputs, _ = run_step(tmp_path, file="preds.parquet", losses="mse",
                                   baseline="ci/baseline.json")
    assert (rc, err, outputs["passed"]) == (0, "", "true")
    cases = junit_cases(tmp_path / "losscli.xml")
    assert [v for k, v in cases.items() if k.startswith("baseline mse")] == [True]
    base = json.loads((tmp_path / "ci" / "baseline.json").read_text())
    base["losses"][0]["value"] *= 0.9  # the model got worse than the recorded baseline
    (tmp_path / "ci" / "baseline.json").write_text(json.dumps(base))
    rc, err, outputs, _ = run_step(tmp_path, file="preds.parquet", losses="mse",
                                   baseline="ci/baseline.json", tolerance="2%")
    assert rc == 1 and outputs["passed"] == "false"


def test_action_step_bad_input_is_exit_2(tmp_path: Path) -> None:
    rc, err, outputs, summary = run_step(tmp_path, file="missing.parquet")
    assert rc == 2 and err.startswith("losscli: error:") and err.count("\n") == 1
    assert outputs["passed"] == "false" and summary == ""


# --- the README's workflow ----------------------------------------------------------------------


def readme_yaml_blocks() -> list[str]:
    from test_readme import blocks

    return blocks("yaml")


def test_readme_action_step_uses_the_inputs() -> None:
    [step_block] = [b for b in readme_yaml_blocks() if "uses: OWNER/losscli@REF" in b]
    [step] = yaml.safe_load(step_block)
    assert set(step["with"]) <= set(action()["inputs"]) and "file" in step["with"]
    assert len(step["with"]) == 3


def test_readme_workflow_runs_as_written(tmp_path: Path) -> None:
    """Every step of the README's workflow, as a runner would: the install from the repository
    (already done here: the suite runs from an install of it), then one evaluation that writes
    the JUnit report the publishing step reads and the summary, once."""
    [block] = [b for b in readme_yaml_blocks() if "jobs:" in b]
    job = next(iter(yaml.safe_load(block)["jobs"].values()))
    assert job["permissions"]["checks"] == "write"
    steps = job["steps"]
    uses = [s["uses"].split("@")[0] for s in steps if "uses" in s]
    assert uses == ["actions/checkout", "actions/setup-python", "mikepenz/action-junit-report"]
    runs = [s["run"] for s in steps if "run" in s]
    assert runs[0] == "pip install ."  # from the repository (losscli is not on PyPI)
    assert len(runs) == 2  # one evaluation
    shutil.copytree(SAMPLES, tmp_path / "sample_data")  # the checkout
    env = github_env(tmp_path)
    proc = subprocess.run(["bash", "-e", "-c", runs[1]], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert (proc.returncode, proc.stderr) == (0, "")
    publish = steps[-1]
    assert publish["if"] == "always()"
    report = tmp_path / publish["with"]["report_paths"]
    assert all(junit_cases(report).values()) and len(junit_cases(report)) > 1
    assert (tmp_path / "summary.md").read_text().count(SUMMARY_TITLE) == 1


def test_action_script_is_executable() -> None:
    assert os.access(ROOT / "action" / "run.sh", os.X_OK)


def test_readme_action_example_runs_with_the_readme_settings(tmp_path: Path) -> None:
    """The README's action step, with its [tool.losscli] example in pyproject.toml: the gates
    name losses that are evaluated, so the step exits 0 or 1 and writes the JUnit report."""
    from test_readme import readme_config

    step = next(b for b in readme_yaml_blocks() if "uses: OWNER/losscli@REF" in b)
    inputs = yaml.safe_load(step)[0]["with"]
    toml = readme_config()
    shutil.copy(SAMPLES / "regression.parquet", tmp_path / inputs["file"])
    (tmp_path / "pyproject.toml").write_text(toml.replace('baseline = "ci/baseline.json"\n', ""))
    rc, err, outputs, _ = run_step(tmp_path, **{k: str(v) for k, v in inputs.items()})
    assert rc in (0, 1) and "losscli: error" not in err, err
    assert (tmp_path / outputs["junit"]).is_file()


def test_action_step_refused_input_still_writes_the_report(tmp_path: Path) -> None:
    shutil.copy(SAMPLES / "regression.parquet", tmp_path / "preds.parquet")
    rc, err, outputs, _ = run_step(tmp_path, file="preds.parquet", losses="mse", gates="mae=2")
    assert rc == 2 and "losscli: error: --max mae" in err
    root = ET.parse(tmp_path / "losscli.xml").getroot()
    [error] = list(root.iter("error"))
    assert error.get("message", "").startswith("--max mae: that loss is not evaluated")
    assert outputs["passed"] == "false"
