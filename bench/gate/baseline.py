"""The gate's baseline on disk, checked whole before anything is compared with it.

``results/baseline/`` holds ``results.jsonl`` (one gate run), ``run.json`` (its
manifest), ``gate.json`` (the timing calibration) and ``inventory.json``: the cell
ids the baseline must hold, their count, and the size and SHA-256 of
``results.jsonl``. ``gate --calibrate`` writes all four; ``gate --write-inventory``
adds the inventory to an intact baseline written before inventories existed.

Anything missing, truncated, edited or malformed is one ``BaselineError`` (exit 2)
naming the file and the fix — never a gate that passes on fewer cells than listed.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

from ..study.results import RESULTS_FILE, ResultsError, ResultStore, atomic_write_text
from ..study.schema import SCHEMA

GATE_FILE = "gate.json"
INVENTORY_FILE = "inventory.json"
RECALIBRATE = "recalibrate with `python -m bench gate --calibrate 5`"


class BaselineError(ResultsError):
    """A damaged, truncated, missing or malformed part of the baseline."""

    def __init__(self, path: Path, problem: str, fix: str = RECALIBRATE) -> None:
        super().__init__(f"baseline file {path}: {problem}; {fix}")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _strict_records(store: ResultStore) -> list[dict[str, Any]]:
    """The baseline's records; a single line that is not one is damage, not noise."""
    if not store.results_path.is_file():
        raise BaselineError(store.results_path, "missing")
    records = store.latest(report=False)  # the error below says it once
    if store.skipped:
        raise BaselineError(store.results_path, store.skipped_text().split(": ", 1)[1])
    if not any(r["status"] == "ok" for r in records):
        raise BaselineError(store.results_path, "holds no ok cell")
    return records


def inventory(directory: Path) -> dict[str, Any]:
    """The inventory of the baseline in ``directory`` as it is now."""
    store = ResultStore(directory)
    records = _strict_records(store)
    data = store.results_path.read_bytes()
    return {
        "schema": SCHEMA,
        "results_file": RESULTS_FILE,
        "bytes": len(data),
        "sha256": _sha256(data),
        "cells": len(records),
        "cell_ids": [r["cell_id"] for r in records],
    }


def write_inventory(directory: Path) -> Path:
    path = directory / INVENTORY_FILE
    atomic_write_text(path, json.dumps(inventory(directory), indent=2) + "\n")
    return path


def add_inventory(directory: Path) -> Path:
    """``gate --write-inventory``: inventory an intact baseline that has none, after
    checking its records against the cell list of its own manifest."""
    path = directory / INVENTORY_FILE
    if path.exists():
        verify(directory)
        return path
    store = ResultStore(directory)
    ids = [r["cell_id"] for r in _strict_records(store)]
    listed = (store.read_manifest() or {}).get("cell_ids")
    if listed is not None and sorted(listed) != sorted(ids):
        missing = [c for c in listed if c not in ids]
        raise BaselineError(
            store.results_path,
            f"holds {len(ids)} cells but its run.json lists {len(listed)}"
            + (f" (missing {missing[0]} and {len(missing) - 1} more)" if missing else ""),
        )
    return write_inventory(directory)


def _read_json(path: Path, fix: str = RECALIBRATE) -> dict[str, Any]:
    try:
        value = json.loads(path.read_bytes())
    except (OSError, ValueError) as e:
        raise BaselineError(path, f"not valid JSON ({e})", fix) from None
    if not isinstance(value, dict):
        raise BaselineError(path, f"a JSON {type(value).__name__}, not an object", fix)
    return value


def _inventory_problem(inv: dict[str, Any]) -> str | None:
    ids = inv.get("cell_ids")
    if not isinstance(ids, list) or not ids or not all(isinstance(c, str) for c in ids):
        return "'cell_ids' is not a non-empty list of cell ids"
    if not isinstance(inv.get("cells"), int) or inv["cells"] != len(ids):
        return f"'cells' is not the number of cell ids ({len(ids)})"
    sha = inv.get("sha256")
    if not isinstance(sha, str) or len(sha) != 64:
        return "'sha256' is not a SHA-256 hex digest"
    if not isinstance(inv.get("bytes"), int):
        return "'bytes' is not an integer"
    return None


def verify(directory: Path) -> list[dict[str, Any]]:
    """The baseline's records, after checking them against its inventory."""
    store = ResultStore(directory)
    inv_path = directory / INVENTORY_FILE
    if not store.results_path.is_file():
        raise BaselineError(store.results_path, "missing")
    if not inv_path.is_file():
        raise BaselineError(
            inv_path,
            "missing (the list of the baseline's cells and the checksum of its results)",
            RECALIBRATE + " (a baseline written before inventories: "
            "`python -m bench gate --write-inventory` adds one)",
        )
    inv = _read_json(inv_path)
    bad = _inventory_problem(inv)
    if bad:
        raise BaselineError(inv_path, bad)
    data = store.results_path.read_bytes()
    if _sha256(data) != inv["sha256"]:
        raise BaselineError(
            store.results_path,
            f"changed, truncated or damaged: {len(data)} bytes with SHA-256 {_sha256(data)[:16]}…, "
            f"its inventory lists {inv['bytes']} bytes with {inv['sha256'][:16]}…",
            "restore it (`git checkout -- " + str(directory) + "`) or " + RECALIBRATE,
        )
    records = _strict_records(store)
    if [r["cell_id"] for r in records] != inv["cell_ids"]:
        raise BaselineError(
            store.results_path, f"its cells differ from the {inv['cells']} its inventory lists"
        )
    return records


def _calibration_problem(cfg: dict[str, Any]) -> str | None:
    if "matrix" in cfg and not isinstance(cfg["matrix"], str):
        return "'matrix' is not a string"
    timing = cfg.get("timing")
    if not isinstance(timing, dict) or not timing:
        return "'timing' is not a non-empty object of calibrated ratios"
    for key, cal in timing.items():
        if not isinstance(cal, dict):
            return f"timing[{key!r}] is not an object"
        b, thr, sigma = cal.get("baseline"), cal.get("threshold_log"), cal.get("sigma_log")
        numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (b, thr))
        if not numbers or not (math.isfinite(b) and b > 0 and math.isfinite(thr) and thr >= 0):
            return f"timing[{key!r}]: 'baseline' and 'threshold_log' are not positive numbers"
        if not isinstance(sigma, int | float) or cal.get("gating", "fail") not in ("fail", "warn"):
            return f"timing[{key!r}]: 'sigma_log' or 'gating' is malformed"
    return None


def read_config(directory: Path, *, need_timing: bool) -> dict[str, Any] | None:
    """gate.json, checked; None when it is absent and only deterministic checks run."""
    path = directory / GATE_FILE
    if not path.is_file():
        if not need_timing:
            return None
        raise BaselineError(
            path,
            "missing, so the timing thresholds are unknown",
            RECALIBRATE + ", or pass --deterministic-only to check the deterministic "
            "quantities alone",
        )
    cfg = _read_json(path)
    bad = _calibration_problem(cfg)
    if bad:
        raise BaselineError(path, bad)
    return cfg


def load(directory: Path, *, need_timing: bool) -> tuple[list[dict[str, Any]], dict | None]:
    """(records, gate.json) of a verified baseline; BaselineError names what is wrong."""
    records = verify(directory)
    return records, read_config(directory, need_timing=need_timing)
