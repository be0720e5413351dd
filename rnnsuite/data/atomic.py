"""Write-then-rename helpers, so an interrupted write never leaves a half file behind."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO


@contextlib.contextmanager
def temp_beside(dest: Path, suffix: str = ".part") -> Iterator[Path]:
    """A temporary path in ``dest``'s directory (same file system, so os.replace is atomic).

    The temporary file is removed on the way out unless the body moved it into place."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=suffix, dir=dest.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def atomic_write(dest: Path, write: Callable[[BinaryIO], None]) -> Path:
    """Call ``write`` on a temporary file, then rename it to ``dest``."""
    dest = Path(dest)
    with temp_beside(dest) as tmp:
        with open(tmp, "wb") as fh:
            write(fh)
        os.replace(tmp, dest)
    return dest


def atomic_write_bytes(dest: Path, data: bytes) -> Path:
    return atomic_write(dest, lambda fh: fh.write(data))
