"""Run a matrix: expand, select, resume, measure group by group, append, show progress.

The run directory is ``<results_dir>/<run_id>/``. Rerunning with the same run
id resumes: cells already recorded are skipped (``retry_failed`` measures
failed ones again), and a group with some cells missing is measured whole —
its references must be timed alongside — but only the missing cells are
written. Cells on a device this machine lacks are recorded as ``skipped``.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
import signal
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from rich.markup import escape

from ..study import executors
from ..study import shard as shard_mod
from ..study.execute import Unit, drive, pending
from ..study.failures import console_reason
from ..study.interrupt import resume_hint
from ..study.kexpr import KExprError
from ..study.provenance import collect, injections, now_iso
from ..study.results import ResultsError, ResultStore, check_run_id
from . import allocator
from . import matrix as matrix_mod
from .cells import Cell, expand, groups, present_devices, select
from .estimate import group_seconds
from .measure import fault_from_env, measure_group, skipped_record
from .timing import Timer, injection_from_env


class UsageError(ValueError):
    """Bad command-line input: exit code 2."""


@dataclass
class RunSummary:
    run_id: str
    directory: Path
    selected: int
    already_done: int
    ok: int = 0
    failed: int = 0
    skipped: int = 0
    failed_ids: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0
    interrupted: bool = False
    signal: int | None = None  # SIGINT or SIGTERM when interrupted

    @property
    def exit_code(self) -> int:
        """0 ok, 1 failed cells, 128 + signal when interrupted (130 Ctrl-C, 143 SIGTERM)."""
        if self.interrupted:
            return 128 + (self.signal or signal.SIGINT)
        return 1 if self.failed else 0


def plan(
    matrix_name: str,
    *,
    k: str | None = None,
    devices: list[str] | None = None,
    seeds: list[int] | None = None,
    timing: bool | None = None,
    shard: tuple[int, int] | None = None,
) -> tuple[matrix_mod.Matrix, list[Cell]]:
    """Load the matrix and return the selected cells (of ``shard`` (i, n) only, when
    given: study/shard.py); UsageError/MatrixError on bad input."""
    m = matrix_mod.load(matrix_name)
    cells = expand(m, seeds=seeds, devices=devices)
    try:
        cells = select(cells, k)
    except KExprError as e:
        raise UsageError(f"-k: {e}") from None
    if not cells:
        raise UsageError(
            f"-k {k!r} selects no cell of matrix {m.name!r}" if k else f"matrix {m.name} is empty"
        )
    if timing is not None:
        cells = [replace(c, settings={**c.settings, "timing": timing}) for c in cells]
    if shard is not None:
        cells = shard_cells(cells, *shard)
    return m, cells


def shard_cells(cells: list[Cell], i: int, n: int) -> list[Cell]:
    """The cells of shard i of n: whole timing groups, balanced by the estimate."""
    gs = groups(cells)
    where = shard_mod.assign([group_seconds(g) for g in gs], [g[0].id for g in gs], n)
    keep = {c.id for g, s in zip(gs, where, strict=True) if s == i for c in g}
    return [c for c in cells if c.id in keep]


def default_run_id(matrix_name: str) -> str:
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return f"{matrix_name}-{stamp}"


def _progress(quiet: bool):
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    console = Console(stderr=True, quiet=quiet)
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("cells"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
        transient=False,
        disable=quiet,
    )
    return console, progress


def run(
    matrix_name: str = "quick",
    *,
    k: str | None = None,
    devices: list[str] | None = None,
    seeds: list[int] | None = None,
    run_id: str | None = None,
    results_dir: Path | str = "results",
    retry_failed: bool = False,
    timing: bool | None = None,
    threads: int | None = None,
    quiet: bool = False,
    shard: tuple[int, int] | None = None,
    executor: str = "local",
    ray_address: str = "local",
) -> RunSummary:
    """Measure the selected cells (of ``shard`` (i, n) only, when given) not yet recorded."""
    import torch

    if threads is not None:
        torch.set_num_threads(threads)
    try:
        inject = injection_from_env()
        fault_from_env()  # a malformed expression stops the run before any cell
        allocator.mode()  # so does a bad RNNSUITE_BENCH_ALLOCATOR
    except ValueError as e:
        raise UsageError(str(e)) from None
    m, cells = plan(matrix_name, k=k, devices=devices, seeds=seeds, timing=timing)
    sharding = None
    if shard is not None:
        sharding = {"shard": shard_mod.label(*shard), "matrix_cell_ids": [c.id for c in cells]}
        n_groups = len(groups(cells))
        cells = shard_cells(cells, *shard)
        if not cells:
            raise UsageError(
                f"shard {sharding['shard']} of matrix {m.name!r} holds no cell: the selection "
                f"has {n_groups} timing groups and a group is never split; use at most "
                f"{n_groups} shards"
            )
    run_id = default_run_id(m.name) if run_id is None else run_id
    try:
        check_run_id(run_id)
    except ResultsError as e:
        raise UsageError(str(e)) from None
    store = ResultStore(Path(results_dir) / run_id)
    with store.writing("run"):  # one writer per run id: a second one stops here (RunLocked)
        return _run_locked(
            store, m, cells, k, devices, seeds, inject, retry_failed, quiet, sharding,
            (executor, ray_address),
        )  # fmt: skip


class _GroupMeasure:
    """A timing group's records: measured here (one timer and provenance a device,
    made when first needed), or skipped when this machine lacks its device."""

    def __init__(
        self, run_id: str, started_at: str, inject, present: set[str], shard: str | None = None
    ) -> None:
        self.run_id, self.started_at, self.inject = run_id, started_at, inject
        self.present, self.shard = present, shard
        self.provs: dict[str, dict[str, Any]] = {}
        self.timers: dict[str, Timer] = {}
        self.overhead: dict[str, float] = {}

    def __call__(self, unit: Unit) -> list[dict[str, Any]]:
        started = time.time()
        records = self._records(unit.cells)
        window = [started, time.time()]  # when the group held the machine (epoch seconds)
        for rec in records:
            rec["group_window"] = window
            if self.shard is not None:
                rec["shard"] = self.shard
        return records

    def failed(self, cell: Cell, why: str) -> dict[str, Any]:
        """The record of a cell whose worker died twice (an executor's)."""
        rec = skipped_record(cell, self.run_id, {"device": cell.device}, why)
        rec.update(status="failed", error=why, error_kind="worker_died", error_phase="worker")
        rec.pop("reason", None)
        if self.shard is not None:
            rec["shard"] = self.shard
        return rec

    def _records(self, group: list[Cell]) -> list[dict[str, Any]]:
        device = group[0].device
        if device not in self.present:
            return [
                skipped_record(c, self.run_id, {"device": device}, f"device {device} not present")
                for c in group
            ]
        if device not in self.provs:
            allocator.pin()  # before anything is timed in this process (a worker's too)
            self.provs[device] = collect(device, self.started_at, self.inject)
            self.timers[device] = Timer(device, self.inject)
            self.overhead[device] = self.timers[device].overhead()
        records = measure_group(
            group,
            run_id=self.run_id,
            provenance=self.provs[device],
            timer=self.timers[device],
            harness_overhead_s=self.overhead[device],
        )
        for rec in records:
            rec["elapsed_s"] = rec.pop("group_elapsed_s", None)
        return records


def _run_locked(
    store: ResultStore,
    m: matrix_mod.Matrix,
    cells: list[Cell],
    k: str | None,
    devices: list[str] | None,
    seeds: list[int] | None,
    inject: dict[str, float],
    retry_failed: bool,
    quiet: bool,
    sharding: dict[str, Any] | None = None,
    executing: tuple[str, str] = ("local", "local"),
) -> RunSummary:
    executor_name, ray_address = executing
    run_id = store.run_id
    started_at = now_iso()
    manifest = store.read_manifest()
    if manifest is not None and manifest.get("matrix", {}).get("name") != m.name:
        raise UsageError(
            f"run {run_id!r} was started with matrix {manifest.get('matrix', {}).get('name')!r}, "
            f"not {m.name!r}: use another --run-id"
        )
    session = {
        "started_at": started_at,
        "pid": os.getpid(),
        "k": k,
        "devices": devices,
        "seeds": seeds,
        "selected": len(cells),
        "argv": sys.argv[1:],
        "injected_slowdown": inject,
        "injections": injections(),
    }
    shard_label = sharding["shard"] if sharding else None
    if manifest is not None and manifest.get("shard") != shard_label:
        raise UsageError(
            f"run {run_id!r} was started as shard {manifest.get('shard')!r}, not "
            f"{shard_label!r}: use another --run-id"
        )
    if manifest is None:
        manifest = {
            "run_id": run_id,
            "created_at": started_at,
            "matrix": {
                "name": m.name,
                "file": str(m.path) if m.path else None,
                "sha256": hashlib.sha256(m.text.encode()).hexdigest(),
                "description": m.description,
            },
            "sessions": [],
            **(sharding or {}),
        }
    manifest["sessions"].append(session)
    manifest["cell_ids"] = list(
        dict.fromkeys([*manifest.get("cell_ids", []), *(c.id for c in cells)])
    )
    store.write_manifest(manifest)

    present = set(present_devices())
    latest = {r["cell_id"]: r for r in store.latest()}
    done = store.finished_ids(retry_failed=retry_failed)
    for c in cells:  # skipped earlier for want of the device, which is here now
        if latest.get(c.id, {}).get("status") == "skipped" and c.device in present:
            done.discard(c.id)
    units = [
        Unit(g, [c.id for c in g], f"{g[0].arch} {g[0].device} {g[0].block}") for g in groups(cells)
    ]
    todo = {cid for _, ids in pending(units, done) for cid in ids}
    summary = RunSummary(run_id, store.dir, len(cells), len(cells) - len(todo))
    console, progress = _progress(quiet)
    console.print(
        f"bench run [bold]{run_id}[/]: matrix {m.name}, {len(cells)} cells selected, "
        f"{summary.already_done} already recorded, {len(todo)} to measure"
        + (f" — INJECTED SLOWDOWN {inject}" if inject else "")
    )
    measure = _GroupMeasure(run_id, started_at, inject, present, shard_label)
    t0 = time.perf_counter()
    try:
        with progress:
            task = progress.add_task("measuring", total=len(todo))

            def execute(unit: Unit) -> list[dict[str, Any]]:
                progress.update(task, description=unit.label)
                return measure(unit)

            def on_record(rec: dict[str, Any], *_: Any) -> None:
                progress.advance(task, 1)
                busy = executor.activity() if hasattr(executor, "activity") else ""
                if busy:
                    progress.update(task, description=f"groups: {busy}")
                if rec["status"] == "failed":
                    reason = escape(console_reason(rec.get("error", "")))
                    console.print(
                        f"[red]failed[/] ({rec.get('error_kind', 'error')}) "
                        f"{rec['cell_id']}: {reason}"
                    )

            executor = executors.make(
                executor_name, address=ray_address, timing=True, failed=measure.failed
            )
            try:
                out = drive(
                    store, units, execute if executor.name == "local" else measure,
                    done=done, on_record=on_record, executor=executor,
                )  # fmt: skip
            finally:
                if hasattr(executor, "close"):
                    executor.close()
            summary.ok, summary.failed, summary.skipped = out.ok, out.failed, out.skipped
            summary.failed_ids = out.failed_ids
    except KeyboardInterrupt as e:
        summary.interrupted = True
        summary.signal = getattr(e, "signum", signal.SIGINT)
        print(resume_hint(run_id), file=sys.stderr)  # even with --quiet
    summary.elapsed_s = time.perf_counter() - t0
    console.print(
        f"done in {summary.elapsed_s:.0f}s: {summary.ok} ok, {summary.failed} failed, "
        f"{summary.skipped} skipped, {summary.already_done} from before → {store.results_path}"
    )
    return summary
