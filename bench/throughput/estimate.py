"""The planner's cost estimate of a throughput cell and group, in seconds on a machine
like the committed example's (2-core AMD EPYC VM, one torch thread).

A group's wall time ≈ 0.58 s a cell (build, first calls, memory, the matmul probe) +
0.0096 s per GFLOP of its timed work (training FLOPs × (repeats + warmup) × 4/3 for the
forward beside it, plus the fixed determinism steps twice and the first calls) + 8.1 s a
compiled cell (compilation): least squares over the 76 groups of results/example-cpu,
median error 10% a group, total 431 s predicted for 434 s measured (each timed sample
since counted as at least its block of calls, block_ms). Used to balance
shards (study/shard.py) and to say beforehand how long a matrix takes; it is an
estimate, and the report always shows the measured time.
"""

from __future__ import annotations

from collections.abc import Iterable

from .axes import DEFAULT_BLOCK_MS
from .cells import Cell
from .flops import cell_forward_flops, train_flops

PER_CELL_S = 0.58
S_PER_GFLOP = 0.0096
PER_COMPILED_S = 8.1


def cell_seconds(cell: Cell) -> float:
    """Estimated seconds for one cell (padded work counted for packed input too)."""
    s = cell.settings
    repeats = s.get("repeats", 7) + s.get("warmup", 2)
    if not s.get("timing", True):
        repeats = 0
    det = s.get("det_steps", 3)
    try:
        flops = train_flops(cell_forward_flops(cell, cell.T * cell.B))
    except ValueError:  # an architecture not registered here: count the cell only
        flops = 0
    train_s = S_PER_GFLOP * flops / 1e9  # one training step; its forward, a third of it
    # a timed sample is at least a block of calls (timing.py): each mode takes that long
    block_s = s.get("block_ms", DEFAULT_BLOCK_MS) / 1000
    timed = repeats * (max(train_s, block_s) + max(train_s / 3, block_s)) if repeats else 0.0
    return (
        PER_CELL_S
        + timed
        + train_s * (2 * det + 2)
        + (PER_COMPILED_S if cell.impl == "compiled" else 0)
    )


def group_seconds(group: Iterable[Cell]) -> float:
    return sum(cell_seconds(c) for c in group)
