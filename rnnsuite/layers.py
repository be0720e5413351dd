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

from . import bptt
from .cells import Cell, State, StepFn


def _steps(xp: Tensor, batch_sizes: list[int] | None) -> tuple[Tensor, ...]:
    """Per-step views of the projected input; unbind/split, never index in a loop."""
    if batch_sizes is None:
        return xp.unbind(0)
    return xp.split(batch_sizes, 0)


def _join(outs: list[Tensor], batch_sizes: list[int] | None) -> Tensor:
    return torch.stack(outs) if batch_sizes is None else torch.cat(outs)


class RecurrentWeightGrad(torch.autograd.Function):
    """Identity on the projected input xp that also owns W_hh's gradient.

    When gates_t = xp_t + h_{t-1} W_hhᵀ, the gradient reaching xp_t is the gates'
    gradient, so dW_hh = Σ_t dxp_tᵀ h_{t-1}: one large matrix multiply after the
    loop instead of T small ones (each with its own accumulation) inside autograd.
    The loop runs on a detached W_hh and appends every h_{t-1} to `prev`, in the
    row order of xp; `prev` is complete by the time backward reads it.
    """

    @staticmethod
    def forward(ctx, xp: Tensor, weight_hh: Tensor, prev: list[Tensor]) -> Tensor:
        ctx.prev = prev
        return xp.view_as(xp)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_xp: Tensor):
        h_prev = torch.cat(ctx.prev).reshape(-1, ctx.prev[0].shape[-1])
        grad_w = grad_xp.reshape(-1, grad_xp.shape[-1]).t().mm(h_prev)
        return grad_xp, grad_w, None


def _prepare(cell: Cell, x: Tensor) -> tuple[Tensor, StepFn, list[Tensor] | None]:
    """Project the input and bind the step; take over W_hh's gradient where the maths allows."""
    xp = cell.project(x)
    weight = cell.recurrent_weight()
    if cell.hidden_adds_to_projection and torch.is_grad_enabled() and weight.requires_grad:
        prev: list[Tensor] = []
        return RecurrentWeightGrad.apply(xp, weight, prev), cell.step_fn(weight.detach()), prev
    return xp, cell.step_fn(weight), None


class Layer(nn.Module):
    """One cell unrolled forward in time."""

    def __init__(self, cell: Cell) -> None:
        super().__init__()
        self.cell = cell

    def forward(
        self, x: Tensor, batch_sizes: list[int] | None, state: State
    ) -> tuple[Tensor, State]:
        if batch_sizes is None and not torch.is_grad_enabled():
            fused = self.cell.run_padded(x, state)
            if fused is not None:
                return fused
        manual = bptt.run(self.cell, x, state, batch_sizes, reverse=False)
        if manual is not None:
            return manual
        xp_all, step, prev = _prepare(self.cell, x)
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


class ReversedLayer(Layer):
    """One cell unrolled backward in time; with packed input each sequence starts
    at its own last valid step (the batch grows as the loop walks back)."""

    def forward(
        self, x: Tensor, batch_sizes: list[int] | None, state: State
    ) -> tuple[Tensor, State]:
        if batch_sizes is None and not torch.is_grad_enabled():
            fused = self.cell.run_padded(x.flip(0), state)
            if fused is not None:
                return fused[0].flip(0), fused[1]
        manual = bptt.run(self.cell, x, state, batch_sizes, reverse=True)
        if manual is not None:
            return manual
        xp_all, step, prev = _prepare(self.cell, x)
        steps = _steps(xp_all, batch_sizes)
        initial = state
        state = tuple(s[: steps[-1].shape[0]] for s in initial)
        outs: list[Tensor] = []
        for xp in reversed(steps):
            b, have = xp.shape[0], state[0].shape[0]
            if b > have:
                state = tuple(
                    torch.cat([s, s0[have:b]]) for s, s0 in zip(state, initial, strict=True)
                )
            if prev is not None:
                prev.append(state[0])
            state = step(xp, state)
            outs.append(state[0])
        outs.reverse()
        if prev is not None:
            prev.reverse()  # into xp's row order (forward time)
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
