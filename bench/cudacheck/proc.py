"""One time-boxed subprocess: its output to a log file, a status for the record.

On time-out the whole process group gets SIGINT first (the bench runner and pytest then
save what they have and say so), and SIGKILL after a grace period (torch.compile's
worker processes included).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

GRACE_S = 10.0


@dataclass
class Outcome:
    status: str  # ok | failed | timeout
    rc: int | None
    seconds: float


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def run(
    argv: list[str],
    *,
    log: Path,
    env: dict[str, str],
    cwd: Path,
    timeout_s: float,
    grace_s: float = GRACE_S,
) -> Outcome:
    """Run ``argv`` with stdout and stderr appended to ``log``; never raises for the
    command's own failure (a missing executable is a failed step too)."""
    t0 = time.perf_counter()
    with log.open("ab") as out:
        try:
            proc = subprocess.Popen(
                argv,
                cwd=cwd,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        except OSError as e:
            out.write(f"cannot start {argv[0]}: {e}\n".encode())
            return Outcome("failed", None, time.perf_counter() - t0)
        try:
            rc = proc.wait(timeout=max(timeout_s, 0.1))
        except subprocess.TimeoutExpired:
            _signal_group(proc, signal.SIGINT)
            try:
                proc.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                _signal_group(proc, signal.SIGKILL)
                proc.wait()
            out.write(f"\n[cuda-check] stopped after its limit of {timeout_s:.0f}s\n".encode())
            return Outcome("timeout", proc.returncode, time.perf_counter() - t0)
        _signal_group(proc, signal.SIGKILL)  # leftovers of a finished step (compile workers)
    return Outcome("ok" if rc == 0 else "failed", rc, time.perf_counter() - t0)
