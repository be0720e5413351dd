"""Shards: a deterministic, balanced part of a study's units, for schedulers that hand out
whole machines (SLURM job arrays, CI matrices).

``--shard i/n`` (i counts from 1: ``--array=1-N`` in SLURM) takes the units of shard i:
units are never split (a timing group — the variants compared in one interleaved loop —
stays whole), and they are dealt out by the planner's cost estimate, largest first, each
to the shard with the least estimated work so far (ties: the lower shard; units of equal
cost in their cell-id order), so every process computes the same assignment and the
shards' estimated times differ by at most one unit. ``bench merge`` puts the shard runs
back together.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from .source import StudyError

_SPEC = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


def parse(text: str) -> tuple[int, int]:
    """'2/4' → (2, 4); a StudyError naming the form otherwise."""
    m = _SPEC.match(text or "")
    if not m:
        raise StudyError(f"--shard {text!r}: use I/N, e.g. 1/4 (shards count from 1)")
    i, n = int(m.group(1)), int(m.group(2))
    if n < 1 or not 1 <= i <= n:
        raise StudyError(
            f"--shard {text!r}: I must be 1..N (shards count from 1; in SLURM use --array=1-N)"
        )
    return i, n


def assign(costs: Sequence[float], keys: Sequence[str], n: int) -> list[int]:
    """The shard (1..n) of each unit, given its estimated cost and a stable key."""
    order = sorted(range(len(costs)), key=lambda u: (-round(costs[u], 6), keys[u]))
    load = [0.0] * n
    out = [0] * len(costs)
    for u in order:
        k = min(range(n), key=lambda s: (load[s], s))
        out[u] = k + 1
        load[k] += costs[u]
    return out


def loads(costs: Sequence[float], shards: Sequence[int], n: int) -> list[float]:
    """Estimated seconds per shard."""
    total = [0.0] * n
    for c, s in zip(costs, shards, strict=True):
        total[s - 1] += c
    return total


def label(i: int, n: int) -> str:
    return f"{i}/{n}"
