"""The command line in-process and in a subprocess, and the shape of a one-line input error."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from losscli.cli import run

Result = tuple[int, str, str]


def cli(capfd: pytest.CaptureFixture[str], *args: object) -> Result:
    """Run losscli in-process; return (exit code, stdout, stderr)."""
    rc = run([str(a) for a in args])
    out, err = capfd.readouterr()
    return rc, out, err


def cli_stdin(data: bytes, *args: str) -> Result:
    """Run ``python -m losscli`` with ``data`` on stdin."""
    proc = subprocess.run([sys.executable, "-m", "losscli", *args], input=data,
                          capture_output=True, timeout=60, check=False)
    return proc.returncode, proc.stdout.decode(), proc.stderr.decode()


def assert_input_error(result: Result, *needles: str) -> str:
    """rc 2, nothing on stdout, exactly one 'losscli: error:' line naming every needle."""
    rc, out, err = result
    assert rc == 2, (rc, out, err)
    assert out == ""
    assert "Traceback" not in err
    assert err.startswith("losscli: error:"), err
    assert err.endswith("\n") and err.count("\n") == 1, f"not a single line: {err!r}"
    for needle in needles:
        assert needle in err, f"{needle!r} not in {err!r}"
    return err


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path
