"""The time loops of the layer machinery: a cell's step over padded or packed input.

Padded input (T, B, ·) and packed input (the ``data`` of a PackedSequence plus its
``batch_sizes``) go through one loop. A padded batch is simply a packed one whose batch
never shrinks. For packed input the batch shrinks step by step (sequences are sorted
longest first), so a finished sequence stops being computed at all — its final state is
set aside the step it ends — instead of running padded steps and masking them afterwards.
Used by rnnsuite.layers (forward) and rnnsuite.bptt (its recomputation for second
derivatives).
"""

from __future__ import annotations

import torch
from torch import Tensor

from .cells import State, StepFn


def _steps(xp: Tensor, batch_sizes: list[int] | None) -> tuple[Tensor, ...]:
    """Per-step views of the projected input; unbind/split, never index in a loop."""
    if batch_sizes is None:
        return xp.unbind(0)
    return xp.split(batch_sizes, 0)


def _join(outs: list[Tensor], batch_sizes: list[int] | None) -> Tensor:
    return torch.stack(outs) if batch_sizes is None else torch.cat(outs)


def unroll(
    xp_all: Tensor, step: StepFn, state: State, batch_sizes: list[int] | None, prev=None
) -> tuple[Tensor, State]:
    """Run `step` forward in time over the projected input; appends each step's entering
    h to `prev` when given (RecurrentWeightGrad's rows)."""
    outs: list[Tensor] = []
    finished: list[State] = []  # states of sequences that ended, in order of ending
    for xp in _steps(xp_all, batch_sizes):
        b = xp.shape[0]
        if b < state[0].shape[0]:
            finished.append(tuple(s[b:] for s in state))
            state = tuple(s[:b] for s in state)
        if prev is not None:
            prev.append(state[0])
        state = step(xp, state)
        outs.append(state[0])
    if finished:  # rows are sorted longest first: later-ending rows come first
        state = tuple(
            torch.cat([s, *(f[k] for f in reversed(finished))]) for k, s in enumerate(state)
        )
    return _join(outs, batch_sizes), state


def unroll_reversed(
    xp_all: Tensor, step: StepFn, state: State, batch_sizes: list[int] | None, prev=None
) -> tuple[Tensor, State]:
    """Run `step` backward in time; with packed input each sequence starts at its own last
    valid step (the batch grows as the loop walks back)."""
    steps = _steps(xp_all, batch_sizes)
    initial = state
    state = tuple(s[: steps[-1].shape[0]] for s in initial)
    outs: list[Tensor] = []
    for xp in reversed(steps):
        b, have = xp.shape[0], state[0].shape[0]
        if b > have:
            state = tuple(torch.cat([s, s0[have:b]]) for s, s0 in zip(state, initial, strict=True))
        if prev is not None:
            prev.append(state[0])
        state = step(xp, state)
        outs.append(state[0])
    outs.reverse()
    if prev is not None:
        prev.reverse()  # into xp's row order (forward time)
    return _join(outs, batch_sizes), state
