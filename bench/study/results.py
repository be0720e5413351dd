"""The results store: ``results/<run-id>/results.jsonl`` plus ``run.json``.

One JSON object per line, one line per cell, appended as each cell finishes:
the line is written with a single ``write`` on an O_APPEND descriptor and
fsync'd before the runner moves on, so a finished cell survives Ctrl-C,
kill -9 or a power cut. A kill in the middle of a write can leave at most one
torn last line: readers skip it, and the next append cuts it off first, so the
file never holds garbage between good lines. A write that fails (disk full,
no permission) is cut back off the same way and raised as ``WriteError``.
``run.json`` (the manifest: run id, matrix, selection, start time) is replaced
atomically (write a temporary file, fsync, rename; the temporary is removed if
any step fails).

One writer per run: ``ResultStore.writer()`` holds an exclusive ``flock`` on
``.lock`` in the run directory; the kernel drops it when the holder exits or is
killed, so a lock file left behind is never an obstacle. A second writer gets
``RunLocked`` naming the holder's PID.

Every reader sees only lines that match the record schema (``schema.py``);
the others are skipped and reported once, with their line numbers.

A cell's line can appear more than once (``--retry-failed`` re-measures
failed cells); the last line for a cell id wins.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .interrupt import stoppable
from .schema import SCHEMA as SCHEMA
from .schema import migrate, problem

RESULTS_FILE = "results.jsonl"
#: a finished run kept compressed (``gzip -n results.jsonl``): read as the file; not appended to
ARCHIVE_FILE = RESULTS_FILE + ".gz"
MANIFEST_FILE = "run.json"
LOCK_FILE = ".lock"
# ASCII only, matched in full (``$`` would let a final newline through; ``\w`` non-ASCII).
_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}")
_REPORTED: set[tuple[str, tuple[int, ...]]] = set()


class ResultsError(ValueError):
    """A run that does not exist or cannot be read."""


class RunLocked(ResultsError):
    """Another live process is writing this run."""


class WriteError(OSError):
    """A write to the store or a report failed; the message names the path and the cause."""

    def __init__(self, path: Path | str, cause: OSError) -> None:
        reason = cause.strerror or str(cause)
        super().__init__(cause.errno, f"cannot write {path}: {reason}")
        self.path = Path(path)

    def __str__(self) -> str:
        return self.strerror

    def with_hint(self, hint: str) -> WriteError:
        self.strerror = f"{self.strerror}; {hint}"
        return self


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


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        if n == 0:  # pragma: no cover - the kernel reports ENOSPC instead
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        view = view[n:]


def mkdir(path: Path) -> None:
    """``mkdir -p`` raising WriteError."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise WriteError(path, e) from None


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` all at once: a failure (WriteError) leaves the old
    file as it was and no temporary behind."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException as e:  # a full disk, no permission, or Ctrl-C: no temporary stays
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(e, OSError):
            raise WriteError(path, e) from None
        raise
    _fsync_dir(path.parent)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


class ResultStore:
    """Append-only JSON Lines of one run, safe against interruption."""

    def __init__(self, directory: Path | str) -> None:
        self.dir = Path(directory)
        self.results_path = self.dir / RESULTS_FILE
        self.archive_path = self.dir / ARCHIVE_FILE
        self.manifest_path = self.dir / MANIFEST_FILE
        self.lock_path = self.dir / LOCK_FILE
        self.skipped: list[tuple[int, str]] = []  # (line number, why) of the last read

    @property
    def run_id(self) -> str:
        return self.dir.name

    @property
    def skipped_lines(self) -> int:
        return len(self.skipped)

    def exists(self) -> bool:
        return any(p.is_file() for p in (self.results_path, self.archive_path, self.manifest_path))

    @property
    def data_path(self) -> Path:
        """The file holding the records: results.jsonl, else its archive if there is one."""
        if not self.results_path.is_file() and self.archive_path.is_file():
            return self.archive_path
        return self.results_path

    def has_results(self) -> bool:
        return self.data_path.is_file()

    def _read(self) -> bytes:
        """The results file's bytes, or its archive's, decompressed (FileNotFoundError if
        neither is there)."""
        try:
            return self.results_path.read_bytes()
        except FileNotFoundError:
            if not self.archive_path.is_file():
                raise
        import gzip

        try:
            return gzip.decompress(self.archive_path.read_bytes())
        except (OSError, EOFError) as e:
            raise ResultsError(f"{self.archive_path}: not a readable gzip file ({e})") from None

    # -- one writer ----------------------------------------------------------------------------
    @contextlib.contextmanager
    def writer(self) -> Iterator[ResultStore]:
        """Hold the run's lock while writing it; RunLocked if a live process holds it;
        ResultsError for an archived run (its records are read-only)."""
        if self.archive_path.is_file() and not self.results_path.is_file():
            raise ResultsError(
                f"run {self.run_id} is archived ({self.archive_path}): "
                f"`gunzip {self.archive_path}` to add to it, or use another --run-id"
            )
        mkdir(self.dir)
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX: no lock to take
            yield self
            return
        try:
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise WriteError(self.lock_path, e) from None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
                raise RunLocked(
                    f"run {self.run_id!r} is being written by another process (PID {holder}, "
                    f"lock {self.lock_path}): wait for it to finish, stop it, or use another "
                    "--run-id"
                ) from None
            with contextlib.suppress(OSError):  # the PID is for the message above only
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            yield self
        finally:
            os.close(fd)  # closing drops the flock; the file stays (unlinking it would race)

    @contextlib.contextmanager
    def writing(self, command: str = "run") -> Iterator[ResultStore]:
        """What every writer of a run holds: the lock, SIGINT/SIGTERM as Interrupted (with
        how to resume), and a failed write that says what is kept."""
        with self.writer(), stoppable(self.run_id, command):
            try:
                yield self
            except WriteError as e:
                raise e.with_hint(
                    f"every cell finished before is kept in {self.results_path}; free space or "
                    f"fix permissions and rerun `python -m bench {command}` with "
                    f"--run-id {self.run_id} to resume"
                ) from None

    # -- manifest ------------------------------------------------------------------------------
    def read_manifest(self) -> dict[str, Any] | None:
        try:
            manifest = json.loads(self.manifest_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as e:
            raise ResultsError(f"{self.manifest_path}: unreadable manifest ({e})") from None
        if not isinstance(manifest, dict):
            raise ResultsError(f"{self.manifest_path}: unreadable manifest (not a JSON object)")
        return manifest

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        mkdir(self.dir)
        atomic_write_text(self.manifest_path, json.dumps(manifest, indent=2, sort_keys=True) + "\n")

    # -- records -------------------------------------------------------------------------------
    def records(self, *, report: bool = True) -> list[dict[str, Any]]:
        """Every record in file order. A torn, unparsable or non-record line is skipped,
        kept in ``self.skipped`` and (``report``) reported once on stderr."""
        out: list[dict[str, Any]] = []
        self.skipped = []
        try:
            data = self._read()
        except FileNotFoundError:
            return out
        except OSError as e:
            raise ResultsError(f"{self.results_path}: unreadable ({e.strerror})") from None
        for number, line in enumerate(data.split(b"\n"), 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError):
                self.skipped.append((number, "not JSON"))
                continue
            rec = migrate(rec)  # an older schema's record, lifted (bench/schema.py)
            why = problem(rec)
            if why:
                self.skipped.append((number, why))
            else:
                out.append(rec)
        if report:
            self._report_skipped()
        return out

    def skipped_text(self) -> str:
        """'skipped 2 lines ...: line 3 (not JSON), ...' for the last read, or ''."""
        if not self.skipped:
            return ""
        n = len(self.skipped)
        shown = "; ".join(f"line {i} ({why})" for i, why in self.skipped[:10])
        more = f"; and {n - 10} more" if n > 10 else ""
        return (
            f"{self.results_path}: skipped {n} line{'s' if n > 1 else ''} that "
            f"{'are' if n > 1 else 'is'} not a record of schema {SCHEMA}: {shown}{more}"
        )

    def _report_skipped(self) -> None:
        key = (str(self.results_path.resolve()), tuple(i for i, _ in self.skipped))
        if self.skipped and key not in _REPORTED:
            _REPORTED.add(key)
            print(f"bench: warning: {self.skipped_text()}", file=sys.stderr)

    def latest(self, *, report: bool = True) -> list[dict[str, Any]]:
        """One record per cell id (the last written), in first-appearance order."""
        by_id: dict[str, dict[str, Any]] = {}
        for rec in self.records(report=report):
            by_id[rec["cell_id"]] = rec  # dicts keep first-insertion order
        return list(by_id.values())

    def require_latest(self, command: str = "run") -> list[dict[str, Any]]:
        """``latest()``, or ResultsError when the run has no record yet (nothing to report)."""
        records = self.latest()
        if not records:
            skipped = f"; {self.skipped_text()}" if self.skipped else ""
            raise ResultsError(
                f"run {self.run_id!r} has no results yet ({self.results_path} holds no "
                f"record{skipped}): run `python -m bench {command} --run-id {self.run_id}` first"
            )
        return records

    def finished_ids(self, *, retry_failed: bool = False) -> set[str]:
        """Cells a resumed run skips: all recorded ones, or only the ok/skipped ones; never
        one of a plugin architecture whose code has changed since (plugins.is_current)."""
        from ..plugins import is_current

        return {
            rec["cell_id"]
            for rec in self.latest()
            if (not retry_failed or rec.get("status") in ("ok", "skipped")) and is_current(rec)
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
        """Append one record durably (single write + fsync), repairing a torn tail first.

        A failed write is cut back off (the file keeps its complete lines only) and
        raised as WriteError."""
        mkdir(self.dir)
        line = (json.dumps(record, sort_keys=True, allow_nan=True) + "\n").encode("utf-8")
        try:
            fd = os.open(self.results_path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        except OSError as e:
            raise WriteError(self.results_path, e) from None
        try:
            with contextlib.suppress(ImportError, OSError):
                import fcntl

                fcntl.flock(fd, fcntl.LOCK_EX)
            self._repair_tail(fd)
            size = os.fstat(fd).st_size
            try:
                _write_all(fd, line)
                os.fsync(fd)
            except OSError as e:
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, size)
                raise WriteError(self.results_path, e) from None
        finally:
            os.close(fd)


def resolve_run(results_dir: Path | str, run_id: str) -> ResultStore:
    """The store of an existing run; ``latest`` means the most recently started one."""
    root = Path(results_dir)
    stores = [ResultStore(p) for p in sorted(root.glob("*/"))]
    have = [s for s in stores if s.has_results()]
    if run_id == "latest":
        runs = [s for s in have if s.run_id != "baseline"]
        if not runs:
            raise ResultsError(f"no runs under {root}/ yet: run `python -m bench run` first")

        def started(s: ResultStore) -> tuple[str, float]:
            try:
                m = json.loads(s.manifest_path.read_text())
                return (str(m.get("created_at", "")), s.data_path.stat().st_mtime)
            except (OSError, ValueError, AttributeError):  # no manifest, or not one
                return ("", s.data_path.stat().st_mtime)

        return max(runs, key=started)
    path = Path(run_id)
    if path.is_dir() and ResultStore(path).has_results():
        return ResultStore(path)
    check_run_id(run_id)
    store = ResultStore(root / run_id)
    if not store.has_results():
        known = sorted(s.run_id for s in have)
        raise ResultsError(
            f"no results for run {run_id!r} under {root}/"
            + (f"; runs there: {', '.join(known)}" if known else "")
        )
    return store
