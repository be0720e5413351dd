"""``bench report RUN_ID``: the run's records → ``reports/<run-id>/README.md`` + PNGs."""

from __future__ import annotations

import os
from pathlib import Path

from ..study.results import (
    RESULTS_FILE,
    ResultsError,
    ResultStore,
    atomic_write_text,
    check_run_id,
    mkdir,
    resolve_run,
)
from . import plots
from .frame import frame
from .throughput import render


def _run_argument(run_id: str) -> str:
    """A run id as given, or a run directory's path resolved (so ``x/..`` has its real name)."""
    path = Path(run_id)
    if ResultStore(path).has_results():
        return str(path.resolve())
    if {"/", os.sep} & set(run_id) or run_id in (".", ".."):
        raise ResultsError(
            f"{run_id}: no {RESULTS_FILE} there; give a run directory (results/<run-id>) "
            "or a run id"
        )
    return run_id


def _default_out(store: ResultStore) -> Path:
    """reports/<run-id>: only for a run whose name is a run id (so it stays in reports/)."""
    try:
        return Path("reports") / check_run_id(store.run_id)
    except ResultsError:
        raise ResultsError(
            f"run directory {store.dir} is named {store.run_id!r}, which cannot name a report "
            "directory under reports/: give one with --out DIR"
        ) from None


def write_report(
    run_id: str, *, results_dir: Path | str = "results", out_dir: Path | str | None = None
) -> Path:
    store = resolve_run(results_dir, _run_argument(run_id))
    records = store.require_latest()
    manifest = store.read_manifest()
    out = Path(out_dir) if out_dir else _default_out(store)
    mkdir(out)
    plot_files = plots.all_plots(frame(records), out)
    path = out / "README.md"
    atomic_write_text(path, render(store.run_id, manifest, records, plot_files))
    return path
