"""Execute → record: the one run/resume/failure loop of every study kind.

A study (throughput ``bench run``, ``bench quality``, ``bench reproduce``) plans its
cells into *units*: what must run together (a timing group: the variants compared in
one interleaved loop) or alone (one training cell). ``drive`` runs the units not yet
recorded through an executor and is the only writer of the results store: each record
a unit returns is appended at once, atomically (``critical``: a Ctrl-C waits for the
line), so finished cells are never lost and a rerun with the same run id resumes.

A unit whose cells are partly recorded runs whole (a timing group's references must be
timed alongside) but only its missing cells are written. A cell that raises is recorded
failed by the study's own ``execute`` (``failure_fields``) and the others go on; a
unit that raises anyway is recorded failed cell by cell here. Ctrl-C stops after the
record in hand; what finished is kept and ``Interrupted``-style handling is the
caller's.

The executor is the seam for scale-out: ``LocalExecutor`` runs units one after another
in this process; another executor may run them elsewhere, as long as it hands the
records back to this loop.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from .failures import failure_fields
from .interrupt import critical
from .provenance import now_iso

Record = dict[str, Any]


@dataclass
class Unit:
    """Cells that run together; ``ids`` their cell ids, ``label`` what progress shows."""

    cells: list[Any]
    ids: list[str]
    label: str = ""
    estimate_s: float = 0.0  # the planner's cost estimate (balancing, ETA)


@dataclass
class Outcome:
    """What a drive did: counts, the failed ids, and whether it was interrupted."""

    todo: int = 0
    ok: int = 0
    failed: int = 0
    skipped: int = 0
    failed_ids: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0

    def count(self, rec: Record) -> None:
        status = rec.get("status")
        if status == "ok":
            self.ok += 1
        elif status == "skipped":
            self.skipped += 1
        else:
            self.failed += 1
            self.failed_ids.append(rec["cell_id"])


def guarded(
    execute: Callable[[Unit], list[Record]], failed: Callable[[Any, BaseException], Record]
) -> Callable[[Unit], list[Record]]:
    """``execute`` whose unit, if it raises (not KeyboardInterrupt), is every cell of it
    recorded failed by ``failed(cell, error)``, so the matrix goes on."""

    def run(unit: Unit) -> list[Record]:
        try:
            return execute(unit)
        except Exception as e:
            return [failed(cell, e) for cell in unit.cells]

    return run


def new_record(kind: str, cell_id: str, provenance: dict[str, Any], **fields: Any) -> Record:
    """The fields every record of every study starts with (bench.study.results.SCHEMA)."""
    from .results import SCHEMA

    return {
        "schema": SCHEMA,
        "cell_id": cell_id,
        "kind": kind,
        **fields,
        "provenance": provenance,
        "started_at": now_iso(),
    }


def failed_fields(error: BaseException) -> Record:
    """A failed cell's status and reason (bench.study.failures)."""
    return failure_fields(error)


def pending(units: Iterable[Unit], done: set[str]) -> Iterator[tuple[Unit, list[str]]]:
    """Each unit with a cell not yet recorded, with those cells' ids."""
    for unit in units:
        missing = [i for i in unit.ids if i not in done]
        if missing:
            yield unit, missing


def drive(
    store,
    units: list[Unit],
    execute: Callable[[Unit], list[Record]],
    *,
    done: set[str],
    executor=None,
    on_record: Callable[[Record, int, int, float], None] | None = None,
    outcome: Outcome | None = None,
) -> Outcome:
    """Run every unit with a cell not in ``done``; append each missing cell's record.

    ``on_record(rec, i, n, eta_s)`` is called after each append (progress): i of n cells,
    and the remaining estimate from the time per cell so far."""
    from .executors import LocalExecutor

    executor = executor or LocalExecutor()
    outcome = outcome or Outcome()
    work = list(pending(units, done))
    wanted = {cid for _, ids in work for cid in ids}
    outcome.todo = len(wanted)
    t0 = time.perf_counter()
    written = 0
    try:
        for _, records in executor.map(execute, (u for u, _ in work)):
            for rec in records:
                if rec["cell_id"] not in wanted:
                    continue
                wanted.discard(rec["cell_id"])
                with critical():
                    store.append(rec)
                written += 1
                outcome.count(rec)
                if on_record is not None:
                    spent = time.perf_counter() - t0
                    eta = spent / written * (outcome.todo - written)
                    on_record(rec, written, outcome.todo, eta)
    finally:
        outcome.elapsed_s = time.perf_counter() - t0
    return outcome


@dataclass
class TrainingRun:
    """What a training study's run is asked (``bench quality``, ``bench reproduce``): the
    run id and store, the -k selection, seeds, device, matrix, torch threads (default the
    matrix's), budget limits (smoke runs), and where progress goes."""

    run_id: str
    results_dir: Any
    matrix_path: Any
    k: str | None = None
    seeds: list[int] | None = None
    device: str = "cpu"
    threads: int | None = None
    limits: dict[str, int] | None = None
    echo: Callable[[str], None] = print
    shard: tuple[int, int] | None = None  # (i, n): only shard i of n (study/shard.py)
    executor: str = "local"  # or "ray" (study/executors.py)
    ray_address: str = "local"

    def executor_factory(self) -> Callable[[Callable], Any]:
        """Makes the executor once the study can say how a dead task's cell is recorded."""
        from .executors import make

        return lambda failed: make(
            self.executor, address=self.ray_address, timing=False, failed=failed,
            device=self.device,
        )  # fmt: skip

    def matrix_threads(self, m: dict[str, Any]) -> None:
        """Set torch's threads before anything runs: these models are small, and two
        OpenMP threads on a busy 2-core machine can run ten times slower than one."""
        import torch

        threads = self.threads or m.get("threads")
        if threads:
            torch.set_num_threads(int(threads))

    def store(self):
        from pathlib import Path

        from .results import ResultStore, check_run_id

        return ResultStore(Path(self.results_dir) / check_run_id(self.run_id))


def run_each(
    store,
    cells: list[dict[str, Any]],
    *,
    kind: str,
    record_kind: str,
    start: Callable[[dict[str, Any]], Record],
    execute_cell: Callable[[dict[str, Any], Record], Record],
    manifest: dict[str, Any],
    device: str,
    echo: Callable[[str], None] = print,
    estimate_s: Callable[[dict[str, Any]], float] | None = None,
    shown: Callable[[Record], str] | None = None,
    executor=None,
    shard: tuple[int, int] | None = None,
) -> Outcome:
    """A study whose cells run one at a time (quality, reproduce): lock the run, resume,
    write the manifest once, record each cell (``start(cell)``'s fields, then
    ``execute_cell(cell, rec)``'s for an ok one; an exception is a failed cell), show
    progress with an ETA. Returns the Outcome."""
    from .provenance import collect, injections

    with store.writing(kind):  # one writer per run id; SIGTERM like Ctrl-C
        done = store.finished_ids(retry_failed=True)
        units = [Unit([c], [c["cell_id"]], c["cell_id"], (estimate_s or _one)(c)) for c in cells]
        label = None
        if shard is not None:
            from . import shard as shard_mod

            where = shard_mod.assign(
                [u.estimate_s for u in units], [u.ids[0] for u in units], shard[1]
            )
            units = [u for u, s in zip(units, where, strict=True) if s == shard[0]]
            label = shard_mod.label(*shard)
            manifest = {
                **manifest,
                "shard": label,
                "matrix_cell_ids": [c["cell_id"] for c in cells],
            }
        todo = [u for u, _ in pending(units, done)]
        n = sum(len(u.ids) for u in units)
        header = (
            f"{kind}: {n} cells selected{f' (shard {label})' if label else ''}, "
            f"{n - len(todo)} already done, {len(todo)} to run"
        )
        if estimate_s is not None:
            header += f"; estimated {sum(u.estimate_s for u in todo) / 60:.0f} min on a 2-core CPU"
        echo(header)
        started = now_iso()
        if store.read_manifest() is None:
            store.write_manifest(
                {"run_id": store.run_id, "kind": kind, "started_at": started, **manifest,
                 "injections": injections()}
            )  # fmt: skip
        prov = collect(device, started)

        def failed(cell: dict[str, Any], why: str) -> Record:
            rec = new_record(record_kind, cell["cell_id"], prov, **start(cell))
            return {**rec, "status": "failed", "error": why, "error_kind": "worker_died"}

        if callable(executor):  # a factory: it needs the failed-record maker
            executor = executor(failed)
        executor_name = getattr(executor, "name", "local")

        def execute(unit: Unit) -> list[Record]:
            from ..study.provenance import node_facts

            cell, t0 = unit.cells[0], time.perf_counter()
            # the node it ran on (an executor's), and which executor
            here = {**prov, **node_facts(device), "executor": executor_name}
            rec = new_record(record_kind, cell["cell_id"], here, **start(cell))
            if label is not None:
                rec["shard"] = label
            try:
                rec.update(status="ok", **execute_cell(cell, rec))
            except Exception as e:  # a failed cell is recorded; the matrix goes on
                rec.update(failed_fields(e))
            rec["seconds"] = time.perf_counter() - t0
            return [rec]

        def progress(rec: Record, i: int, n: int, eta: float) -> None:
            detail = (shown or _no_detail)(rec)
            busy = executor.activity() if hasattr(executor, "activity") else ""
            echo(
                f"[{i}/{n}] {rec['cell_id']}: {rec['status']}{detail} "
                f"in {rec.get('seconds', 0):.0f}s (ETA {eta / 60:.1f} min"
                + (f", {busy})" if busy else ")")
            )

        try:
            return drive(store, units, execute, done=done, on_record=progress, executor=executor)
        finally:
            if hasattr(executor, "close"):
                executor.close()


def _one(cell: dict[str, Any]) -> float:
    return 1.0  # no estimate: every cell alike


def _no_detail(rec: Record) -> str:
    from .failures import console_reason

    return f" ({console_reason(rec['error'])})" if rec["status"] != "ok" else ""


def records_of(run_id: str, results_dir, kind: str, command: str) -> list[Record]:
    """The latest record of each cell of ``kind`` in a run, for its report; a run without
    one is a ValueError naming the command that makes them."""
    from pathlib import Path

    from .results import ResultStore, check_run_id

    store = ResultStore(Path(results_dir) / check_run_id(run_id))
    recs = [r for r in store.latest() if r.get("kind") == kind]
    if not recs:
        what = "quality" if kind == "quality" else "recipe"
        raise ValueError(
            f"run {run_id!r} in {results_dir} has no {what} results: run "
            f"`python -m bench {command} --run-id {run_id}` first, or name an earlier run"
        )
    return recs


def write_page(out_dir, text_of: Callable[[Any], str]):
    """``out_dir``/README.md written atomically from ``text_of(out_dir)`` (which may write
    its PNGs there first); returns the path."""
    from pathlib import Path

    from .results import atomic_write_text, mkdir

    out_dir = Path(out_dir)
    mkdir(out_dir)
    path = out_dir / "README.md"
    atomic_write_text(path, text_of(out_dir))
    return path
