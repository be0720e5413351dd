"""The results store: ``results/<run-id>/results.jsonl`` plus ``run.json``.

One JSON object per line, one line per cell, appended as each cell finishes:
the line is written with a single ``write`` on an O_APPEND descriptor and
fsync'd before the runner moves on, so a finished cell survives Ctrl-C,
kill -9 or a power cut. A kill in the middle of a write can leave at most one
torn last line: readers skip it, and the next append cuts it off first, so the
file never holds garbage between good lines. ``run.json`` (the manifest: run
id, matrix, selection, start time) is replaced atomically (write a temporary
file, fsync, rename).

A cell's line can appear more than once (``--retry-failed`` re-measures
failed cells); the last line for a cell id wins.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from pathlib import Path
from typing import Any

RESULTS_FILE = "results.jsonl"
MANIFEST_FILE = "run.json"
SCHEMA = 1
# ASCII only, matched in full (``$`` would let a final newline through; ``\w`` non-ASCII).
_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}")


class ResultsError(ValueError):
    """A run that does not exist or cannot be read."""


def check_run_id(run_id: str) -> str:
    if not isinstance(run_id, str) or not _RUN_ID.fullmatch(run_id):
        raise ResultsError(
            f"bad run id {run_id!r}: use ASCII letters, digits, '_', '.', '-', starting with "
            "a letter or digit (at most 128)"
        )
    return run_id


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


class ResultStore:
    """Append-only JSON Lines of one run, safe against interruption."""

    def __init__(self, directory: Path | str) -> None:
        self.dir = Path(directory)
        self.results_path = self.dir / RESULTS_FILE
        self.manifest_path = self.dir / MANIFEST_FILE
        self.skipped_lines = 0

    @property
    def run_id(self) -> str:
        return self.dir.name

    def exists(self) -> bool:
        return self.results_path.is_file() or self.manifest_path.is_file()

    # -- manifest ------------------------------------------------------------------------------
    def read_manifest(self) -> dict[str, Any] | None:
        try:
            return json.loads(self.manifest_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, json.JSONDecodeError) as e:
            raise ResultsError(f"{self.manifest_path}: unreadable manifest ({e})") from None

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.manifest_path, json.dumps(manifest, indent=2, sort_keys=True) + "\n")

    # -- records -------------------------------------------------------------------------------
    def records(self) -> list[dict[str, Any]]:
        """Every complete record in file order; a torn or garbled line is skipped."""
        out: list[dict[str, Any]] = []
        self.skipped_lines = 0
        try:
            data = self.results_path.read_bytes()
        except FileNotFoundError:
            return out
        for line in data.split(b"\n"):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError):
                self.skipped_lines += 1
                continue
            if isinstance(rec, dict) and "cell_id" in rec:
                out.append(rec)
            else:
                self.skipped_lines += 1
        return out

    def latest(self) -> list[dict[str, Any]]:
        """One record per cell id (the last written), in first-appearance order."""
        by_id: dict[str, dict[str, Any]] = {}
        for rec in self.records():
            by_id[rec["cell_id"]] = rec  # dicts keep first-insertion order
        return list(by_id.values())

    def finished_ids(self, *, retry_failed: bool = False) -> set[str]:
        """Cells a resumed run skips: all recorded ones, or only the ok/skipped ones."""
        return {
            rec["cell_id"]
            for rec in self.latest()
            if not retry_failed or rec.get("status") in ("ok", "skipped")
        }

    def _repair_tail(self, fd: int) -> None:
        """Cut a torn last line (no trailing newline) left by a killed writer."""
        size = os.fstat(fd).st_size
        if size == 0:
            return
        os.lseek(fd, size - 1, os.SEEK_SET)
        if os.read(fd, 1) == b"\n":
            return
        block = 1 << 16
        end = size
        keep = 0
        while end > 0:
            start = max(0, end - block)
            os.lseek(fd, start, os.SEEK_SET)
            chunk = os.read(fd, end - start)
            nl = chunk.rfind(b"\n")
            if nl >= 0:
                keep = start + nl + 1
                break
            end = start
        os.ftruncate(fd, keep)

    def append(self, record: dict[str, Any]) -> None:
        """Append one record durably (single write + fsync), repairing a torn tail first."""
        self.dir.mkdir(parents=True, exist_ok=True)
        line = (json.dumps(record, sort_keys=True, allow_nan=True) + "\n").encode("utf-8")
        fd = os.open(self.results_path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            try:
                import fcntl

                fcntl.flock(fd, fcntl.LOCK_EX)
            except (ImportError, OSError):
                pass
            self._repair_tail(fd)
            view = memoryview(line)
            while view:
                n = os.write(fd, view)
                view = view[n:]
            os.fsync(fd)
        finally:
            os.close(fd)


def resolve_run(results_dir: Path | str, run_id: str) -> ResultStore:
    """The store of an existing run; ``latest`` means the most recently started one."""
    root = Path(results_dir)
    if run_id == "latest":
        runs = [p for p in root.glob("*/") if (p / RESULTS_FILE).is_file() and p.name != "baseline"]
        if not runs:
            raise ResultsError(f"no runs under {root}/ yet: run `python -m bench run` first")

        def started(p: Path) -> tuple[str, float]:
            try:
                m = json.loads((p / MANIFEST_FILE).read_text())
                return (str(m.get("created_at", "")), (p / RESULTS_FILE).stat().st_mtime)
            except (OSError, json.JSONDecodeError):
                return ("", (p / RESULTS_FILE).stat().st_mtime)

        return ResultStore(max(runs, key=started))
    path = Path(run_id)
    if path.is_dir() and (path / RESULTS_FILE).is_file():
        return ResultStore(path)
    check_run_id(run_id)
    store = ResultStore(root / run_id)
    if not store.results_path.is_file():
        known = sorted(p.name for p in root.glob("*/") if (p / RESULTS_FILE).is_file())
        raise ResultsError(
            f"no results for run {run_id!r} under {root}/"
            + (f"; runs there: {', '.join(known)}" if known else "")
        )
    return store
