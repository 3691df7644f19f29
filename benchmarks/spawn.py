"""A lean process that starts ``bench.py``'s measured children and reports their cost.

Why it exists: on Linux a child's ``ru_maxrss`` includes the RSS of the process it was forked
from (the kernel records the old memory map's high-water mark at ``exec``). ``bench.py`` holds
NumPy and pyarrow, about 100 MiB, so every child it spawned itself would report at least that.
This helper is started once as ``python -S -I benchmarks/spawn.py`` (standard library only, about
10 MiB) and spawns the children instead, so their peak RSS is their own.

Protocol: one JSON request per stdin line, ``{"argv": [...], "stdout": path, "stderr": path,
"timeout": seconds}``; one JSON reply per stdout line, ``{"wall_s", "maxrss_kib", "user_s",
"sys_s", "returncode", "timed_out"}`` or ``{"error": message}`` when the child could not be
started. The working directory and environment are this process's own.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from typing import Any


def run(argv: list[str], stdout: str, stderr: str, timeout: float) -> dict[str, Any]:
    """Spawn ``argv`` with stdio redirected, wait for it, return wall time and its rusage."""
    wr = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, stdout, wr, 0o600),
        (os.POSIX_SPAWN_OPEN, 2, stderr, wr, 0o600),
    ]
    t0 = time.perf_counter()
    pid = os.posix_spawnp(argv[0], argv, os.environ, file_actions=actions)
    lock = threading.Lock()
    state = {"exited": False, "killed": False}

    def kill() -> None:
        with lock:
            if not state["exited"]:
                os.kill(pid, signal.SIGKILL)
                state["killed"] = True

    timer = threading.Timer(timeout, kill)
    timer.start()
    # Wait without reaping, so the timer can never signal a recycled pid; then reap with wait4,
    # which is what gives this child's own rusage.
    os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
    wall = time.perf_counter() - t0
    with lock:
        state["exited"] = True
    timer.cancel()
    _, status, usage = os.wait4(pid, 0)
    return {
        "wall_s": wall,
        "maxrss_kib": usage.ru_maxrss,  # KiB on Linux
        "user_s": usage.ru_utime,
        "sys_s": usage.ru_stime,
        "returncode": os.waitstatus_to_exitcode(status),
        "timed_out": state["killed"],
    }


def main() -> int:
    for line in sys.stdin:
        req = json.loads(line)
        try:
            reply = run(req["argv"], req["stdout"], req["stderr"], float(req["timeout"]))
        except OSError as exc:
            reply = {"error": f"could not start {req['argv'][0]}: {exc}"}
        print(json.dumps(reply), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
