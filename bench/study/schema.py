"""The versioned schema of a results.jsonl line, checked by every reader.

One record shape for the three kinds of study that share the store: ``kind`` is
``throughput`` (cells of ``bench run``), ``quality`` or ``recipe`` (``bench reproduce``),
and every record carries ``schema``. A line that does not match — valid JSON pasted in by
hand, a record of another version — is not a record: readers skip it and say so
(``ResultStore.records``), so it can never be counted as a cell.

Versions: schema 1 had no ``kind`` on throughput records, and quality and recipe records
written before it had no ``schema``. Committed results stay as they were written; every reader
takes a line through ``migrate`` first, which lifts an old record to this schema (so the
committed reports regenerate from them unchanged).
"""

from __future__ import annotations

import math
from typing import Any

SCHEMA = 2
STATUSES = ("ok", "failed", "skipped")
_SECTIONS = (
    "settings",
    "provenance",
    "flops",
    "memory",
    "determinism",
    "timing",
    "ratios",
    "workload",
    "first_call",
    "compile",
    "result",
    "config",
)
_THROUGHPUT_CELL = {
    **dict.fromkeys(("arch", "impl", "device", "input", "reg", "size"), str),
    **dict.fromkeys(("lengths", "optimizer", "block"), str),
    **dict.fromkeys(("layers", "T", "B", "I", "H", "seed", "threads"), int),
    "bidirectional": bool,
}
# kind -> (cell fields and their types, top-level fields an ok record needs)
KINDS: dict[str, tuple[dict[str, type], dict[str, type]]] = {
    "throughput": (_THROUGHPUT_CELL, {}),
    "quality": ({"task": str, "seed": int, "device": str}, {"result": dict, "metric": float}),
    "recipe": ({"recipe": str, "seed": int, "device": str}, {"result": dict}),
}


def _is(value: Any, kind: type) -> bool:
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, kind)


def _cell_problem(cell: Any, fields: dict[str, type]) -> str | None:
    if not isinstance(cell, dict):
        return "no 'cell' object"
    for name, kind in fields.items():
        if not _is(cell.get(name), kind):
            return f"cell.{name} is not {kind.__name__}"
    return None


def migrate(rec: Any) -> Any:
    """An older record lifted to this schema (a copy); anything else as it is.

    1 → 2: a throughput record (schema 1, no kind) gets ``kind: throughput``; a quality
    or recipe record from before schema 1 (no schema) gets the version. Nothing else
    changed."""
    if not isinstance(rec, dict):
        return rec
    version = rec.get("schema")
    if version == 1 and "kind" not in rec:
        return {**rec, "kind": "throughput", "schema": SCHEMA}
    if version == 1 and rec.get("kind") in ("quality", "recipe"):
        return {**rec, "schema": SCHEMA}
    if version is None and rec.get("kind") in ("quality", "recipe"):
        return {**rec, "schema": SCHEMA}
    return rec


def problem(rec: Any) -> str | None:
    """Why ``rec`` is not a record of this schema, or None when it is one."""
    if not isinstance(rec, dict):
        return f"a JSON {type(rec).__name__}, not an object"
    if not _is(rec.get("schema"), int):
        return "no integer 'schema'"
    if rec["schema"] != SCHEMA:
        return f"schema {rec['schema']} (this bench reads schema {SCHEMA})"
    kind = rec.get("kind")
    if kind not in KINDS:
        return f"unknown kind {kind!r}"
    if not isinstance(rec.get("cell_id"), str) or not rec["cell_id"]:
        return "cell_id is not a non-empty string"
    if rec.get("status") not in STATUSES:
        return f"status {rec.get('status')!r} is not one of {', '.join(STATUSES)}"
    cell_fields, ok_fields = KINDS[kind]
    bad = _cell_problem(rec.get("cell"), cell_fields)
    if bad:
        return bad
    for name in _SECTIONS:
        if name in rec and rec[name] is not None and not isinstance(rec[name], dict):
            return f"'{name}' is not an object"
    if rec["status"] == "ok":
        for name, kind_ in ok_fields.items():
            if not _is(rec.get(name), kind_) or (kind_ is float and not math.isfinite(rec[name])):
                return f"an ok record without '{name}'"
    elif rec["status"] == "failed" and not isinstance(rec.get("error"), str):
        return "a failed record without 'error'"
    return None
