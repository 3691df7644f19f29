"""Run losscli on a pseudo-terminal of a given width, as a person sees it (tmux at 80 columns)."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios
from pathlib import Path


def run_tty(*args: object, columns: int = 80, cwd: Path | None = None) -> tuple[int, str]:
    """(exit code, what the terminal shows): stdout and stderr on one pty, without the style
    codes (bold, dim) that NO_COLOR leaves in."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    env.update(NO_COLOR="1", TERM="xterm")
    proc = subprocess.Popen([sys.executable, "-m", "losscli", *map(str, args)],
                            stdin=subprocess.DEVNULL, stdout=follower, stderr=follower,
                            cwd=cwd, env=env)
    os.close(follower)
    chunks = []
    while True:
        try:
            data = os.read(leader, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    rc = proc.wait(timeout=60)
    os.close(leader)
    text = b"".join(chunks).decode("utf-8").replace("\r\n", "\n")
    return rc, re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text)
