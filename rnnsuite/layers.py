"""The layer machinery: unroll any Cell over time, forwards or backwards.

A layer picks the path for a call — the whole-sequence native loop without autograd
(rnnsuite.bptt.infer), the cell's fused inference path, the hand-written BPTT
(rnnsuite.bptt, its loop native where it can be), or the cell's step under autograd, unrolled by rnnsuite.unroll —
and inside plain_ops() always the last, in plain torch ops.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from . import bptt
from .cells import Cell, State, StepFn
from .cells.plain import plain
from .unroll import unroll, unroll_reversed


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
    def backward(ctx, grad_xp: Tensor):
        if torch.is_grad_enabled():  # create_graph: the detached loop has no exact answer
            raise RuntimeError(
                "second derivatives (create_graph=True) do not go through this scratch cell's "
                "fast training path; run its forward inside rnnsuite.plain_ops() (plain torch "
                "ops, exact to any order)"
            )
        h_prev = torch.cat(ctx.prev).reshape(-1, ctx.prev[0].shape[-1])
        grad_w = grad_xp.reshape(-1, grad_xp.shape[-1]).t().mm(h_prev)
        return grad_xp, grad_w, None


def _prepare(cell: Cell, x: Tensor) -> tuple[Tensor, StepFn, list[Tensor] | None]:
    """Project the input and bind the step; take over W_hh's gradient where the maths allows."""
    xp = cell.project(x)
    weight = cell.recurrent_weight()
    if (
        cell.hidden_adds_to_projection
        and torch.is_grad_enabled()
        and weight.requires_grad
        and not plain()
    ):
        prev: list[Tensor] = []
        return RecurrentWeightGrad.apply(xp, weight, prev), cell.step_fn(weight.detach()), prev
    return xp, cell.step_fn(weight), None


class Layer(nn.Module):
    """One cell unrolled forward in time."""

    reverse = False

    def __init__(self, cell: Cell) -> None:
        super().__init__()
        self.cell = cell

    def forward(
        self, x: Tensor, batch_sizes: list[int] | None, state: State
    ) -> tuple[Tensor, State]:
        fast = not plain() and not self.cell.steps_only
        if fast:
            whole = bptt.infer(self.cell, x, state, batch_sizes, reverse=self.reverse)
            if whole is not None:
                return whole
        if fast and batch_sizes is None and not torch.is_grad_enabled():
            fused = self.cell.run_padded(x.flip(0) if self.reverse else x, state)
            if fused is not None:
                return (fused[0].flip(0) if self.reverse else fused[0]), fused[1]
        if fast:
            manual = bptt.run(self.cell, x, state, batch_sizes, reverse=self.reverse)
            if manual is not None:
                return manual
        xp_all, step, prev = _prepare(self.cell, x)
        walk = unroll_reversed if self.reverse else unroll
        return walk(xp_all, step, state, batch_sizes, prev)


class ReversedLayer(Layer):
    """One cell unrolled backward in time (see unroll_reversed)."""

    reverse = True


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
