"""``bench merge RUN... --into RUN``: put shard runs (or any runs of one matrix) together.

Refused, with the reason, before anything is written: runs of different matrices (name
or file checksum), a cell recorded in more than one run (a duplicate: which one would
count?), an ``--into`` run that already exists, and timing results from more than one
machine (different ``machine_fingerprint``s: a throughput ratio or a cross-group
comparison is only meaningful on one machine) unless ``--side-by-side``, which keeps
them in one run labelled by machine (each record's ``machine``), never compared as one.
Missing cells (in a shard's matrix selection but in no run) are reported, and the exit
status is 1 while any are missing; the merged run is written all the same, and its
manifest lists where every record came from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .provenance import machine_fingerprint
from .results import ResultStore, check_run_id, resolve_run
from .source import StudyError


@dataclass
class Merged:
    into: Path
    cells: int
    missing: list[str] = field(default_factory=list)
    machines: list[str] = field(default_factory=list)


def fingerprint_of(rec: dict[str, Any]) -> str:
    prov = rec.get("provenance") or {}
    return prov.get("machine_fingerprint") or machine_fingerprint(prov)


def _timed(rec: dict[str, Any]) -> bool:
    return rec.get("kind") == "throughput" and rec.get("status") == "ok" and bool(rec.get("timing"))


def _matrix_key(manifest: dict[str, Any]) -> tuple:
    m = manifest.get("matrix")
    if isinstance(m, dict):
        return (m.get("name"), m.get("sha256"))
    return (m, None)


def _sources(runs: list[str], results_dir: Path) -> list[tuple[ResultStore, dict, list[dict]]]:
    out = []
    for run in runs:
        store = resolve_run(results_dir, run)
        manifest = store.read_manifest() or {}
        out.append((store, manifest, store.require_latest("run")))
    keys = {_matrix_key(m) for _, m, _ in out}
    if len(keys) > 1:
        raise StudyError(
            "these runs are of different matrices ("
            + "; ".join(f"{s.run_id}: {_matrix_key(m)[0]}" for s, m, _ in out)
            + "): merge runs of one matrix only"
        )
    return out


def _check_duplicates(sources) -> None:
    seen: dict[str, str] = {}
    dup: list[str] = []
    for store, _, recs in sources:
        for r in recs:
            if r["cell_id"] in seen:
                dup.append(f"{r['cell_id']} ({seen[r['cell_id']]} and {store.run_id})")
            seen[r["cell_id"]] = store.run_id
    if dup:
        more = f" and {len(dup) - 5} more" if len(dup) > 5 else ""
        raise StudyError(
            f"{len(dup)} cell(s) are recorded in more than one run: {'; '.join(dup[:5])}{more}; "
            "merge each cell from one run only (shards of one split never overlap)"
        )


def merge(
    runs: list[str], into: str, *, results_dir: Path | str = "results", side_by_side: bool = False
) -> Merged:
    results_dir = Path(results_dir)
    check_run_id(into)
    target = ResultStore(results_dir / into)
    if target.exists():
        raise StudyError(f"run {into!r} already exists in {results_dir}: merge into a new run id")
    sources = _sources(runs, results_dir)
    _check_duplicates(sources)
    machines = sorted({fingerprint_of(r) for _, _, recs in sources for r in recs if _timed(r)})
    if len(machines) > 1 and not side_by_side:
        raise StudyError(
            f"timing results from {len(machines)} machines ({', '.join(machines)}): timings "
            "of different machines are never one comparison; rerun the shards on one kind of "
            "node, or pass --side-by-side to keep them in one run labelled by machine"
        )
    expected: dict[str, None] = {}
    for _, m, recs in sources:
        expected.update(dict.fromkeys(m.get("matrix_cell_ids") or m.get("cell_ids") or []))
        expected.update(dict.fromkeys(r["cell_id"] for r in recs))
    have = {r["cell_id"] for _, _, recs in sources for r in recs}
    first = sources[0][1]
    manifest = {
        "run_id": into,
        "kind": first.get("kind", "throughput"),
        "matrix": first.get("matrix"),
        "created_at": first.get("created_at"),
        "cell_ids": list(expected),
        "merged_from": [
            {
                "run": s.run_id,
                "shard": m.get("shard"),
                "cells": len(recs),
                "machines": sorted({fingerprint_of(r) for r in recs if _timed(r)}),
            }
            for s, m, recs in sources
        ],
        "sessions": [x for _, m, _ in sources for x in m.get("sessions", [])],
    }
    with target.writing("merge"):
        target.write_manifest(manifest)
        for _, _, recs in sources:
            for r in recs:
                if side_by_side and _timed(r):
                    r = {**r, "machine": fingerprint_of(r)}
                target.append(r)
    missing = [c for c in expected if c not in have]
    return Merged(target.dir, len(have), missing, machines)
