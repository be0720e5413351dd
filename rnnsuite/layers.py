"""The layer machinery: unroll any Cell over time, forwards or backwards.

Padded input (T, B, ·) and packed input (the ``data`` of a PackedSequence plus
its ``batch_sizes``) go through one loop. A padded batch is simply a packed
one whose batch never shrinks. For packed input the batch shrinks step by step
(sequences are sorted longest first), so a finished sequence stops being
computed at all — its final state is set aside the step it ends — instead of
running padded steps and masking them afterwards.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .cells import Cell, State


def _steps(xp: Tensor, batch_sizes: list[int] | None) -> tuple[Tensor, ...]:
    """Per-step views of the projected input; unbind/split, never index in a loop."""
    if batch_sizes is None:
        return xp.unbind(0)
    return xp.split(batch_sizes, 0)


def _join(outs: list[Tensor], batch_sizes: list[int] | None) -> Tensor:
    return torch.stack(outs) if batch_sizes is None else torch.cat(outs)


class Layer(nn.Module):
    """One cell unrolled forward in time."""

    def __init__(self, cell: Cell) -> None:
        super().__init__()
        self.cell = cell

    def forward(
        self, x: Tensor, batch_sizes: list[int] | None, state: State
    ) -> tuple[Tensor, State]:
        step = self.cell.step_fn()
        outs: list[Tensor] = []
        finished: list[State] = []  # states of sequences that ended, in order of ending
        for xp in _steps(self.cell.project(x), batch_sizes):
            b = xp.shape[0]
            if b < state[0].shape[0]:
                finished.append(tuple(s[b:] for s in state))
                state = tuple(s[:b] for s in state)
            state = step(xp, state)
            outs.append(state[0])
        if finished:  # rows are sorted longest first: later-ending rows come first
            state = tuple(
                torch.cat([s, *(f[k] for f in reversed(finished))]) for k, s in enumerate(state)
            )
        return _join(outs, batch_sizes), state


class ReversedLayer(Layer):
    """One cell unrolled backward in time; with packed input each sequence starts
    at its own last valid step (the batch grows as the loop walks back)."""

    def forward(
        self, x: Tensor, batch_sizes: list[int] | None, state: State
    ) -> tuple[Tensor, State]:
        step = self.cell.step_fn()
        steps = _steps(self.cell.project(x), batch_sizes)
        initial = state
        state = tuple(s[: steps[-1].shape[0]] for s in initial)
        outs: list[Tensor] = []
        for xp in reversed(steps):
            b, have = xp.shape[0], state[0].shape[0]
            if b > have:
                state = tuple(
                    torch.cat([s, s0[have:b]]) for s, s0 in zip(state, initial, strict=True)
                )
            state = step(xp, state)
            outs.append(state[0])
        outs.reverse()
        return _join(outs, batch_sizes), state


class BidirectionalLayer(nn.Module):
    """A forward and a reversed layer over the same input, outputs concatenated."""

    def __init__(self, forward_cell: Cell, backward_cell: Cell) -> None:
        super().__init__()
        self.forward_layer = Layer(forward_cell)
        self.backward_layer = ReversedLayer(backward_cell)

    def forward(
        self, x: Tensor, batch_sizes: list[int] | None, states: tuple[State, State]
    ) -> tuple[Tensor, tuple[State, State]]:
        out_f, state_f = self.forward_layer(x, batch_sizes, states[0])
        out_b, state_b = self.backward_layer(x, batch_sizes, states[1])
        return torch.cat([out_f, out_b], -1), (state_f, state_b)
