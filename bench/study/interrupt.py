"""SIGINT and SIGTERM alike: stop between writes, say what is saved, exit 128 + signal.

A CI runner or SLURM stops a job with SIGTERM, a person with Ctrl-C (SIGINT). While a
run, quality or reproduce loop is in ``stoppable()``, either raises ``Interrupted``
(a KeyboardInterrupt) at the next Python instruction — except inside ``critical()``
(a record being appended), where it waits until the write is complete. The command
line exits 130 for SIGINT and 143 for SIGTERM, as shells report them.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Iterator

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(KeyboardInterrupt):
    def __init__(self, signum: int = signal.SIGINT) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = int(signum)

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def resume_hint(run_id: str, command: str = "run") -> str:
    return (
        f"interrupted: every finished cell is saved; rerun `python -m bench {command}` "
        f"with --run-id {run_id} to resume"
    )


class _State:
    depth = 0  # > 0 inside critical()
    pending: int | None = None


@contextlib.contextmanager
def stoppable(run_id: str | None = None, command: str = "run") -> Iterator[None]:
    """SIGINT/SIGTERM raise Interrupted in this block (main thread only; else a no-op);
    with a run id, an interruption leaving the block prints how to resume."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        if _State.depth:
            _State.pending = signum
        else:
            raise Interrupted(signum)

    previous = {s: signal.signal(s, handler) for s in SIGNALS}
    try:
        yield
    except KeyboardInterrupt:
        if run_id:
            print(resume_hint(run_id, command), file=sys.stderr)
        raise
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
        _State.pending = None


@contextlib.contextmanager
def critical() -> Iterator[None]:
    """A signal arriving in this block is raised when it ends, not in the middle."""
    _State.depth += 1
    try:
        yield
    finally:
        _State.depth -= 1
    if not _State.depth and _State.pending is not None:  # only after a complete write
        signum, _State.pending = _State.pending, None
        raise Interrupted(signum)
