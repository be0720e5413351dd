"""Elman RNN cell: h' = act(W_ih x + b_ih + W_hh h + b_hh), act tanh or relu (nn.RNN)."""

from __future__ import annotations

import torch

from .base import Cell, ManualStepBase, State, StepFn

NONLINEARITIES = {"tanh": torch.tanh, "relu": torch.relu}


class ElmanCell(Cell):
    gates = 1
    state_size = 1
    hidden_adds_to_projection = True
    manual = True
    sequence_kernel = "rnn"

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        nonlinearity: str = "tanh",
        **where: object,
    ) -> None:
        if nonlinearity not in NONLINEARITIES:
            raise ValueError(
                f"nonlinearity={nonlinearity!r} is not supported; use one of {sorted(NONLINEARITIES)}"
            )
        super().__init__(input_size, hidden_size, bias, **where)  # type: ignore[arg-type]
        self.nonlinearity = nonlinearity

    def step_fn(self, weight_hh: torch.Tensor | None = None) -> StepFn:
        w_hh_t = (self.recurrent_weight() if weight_hh is None else weight_hh).t()
        act = NONLINEARITIES[self.nonlinearity]

        def step(xp: torch.Tensor, state: State) -> State:
            return (act(torch.addmm(xp, state[0], w_hh_t)),)

        return step

    def manual_step(self, weight_hh: torch.Tensor, bias_hh, batch: int) -> _ManualStep:
        return _ManualStep(weight_hh, batch, self.nonlinearity)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", nonlinearity={self.nonlinearity!r}"


class _ManualStep(ManualStepBase):
    """The training step, gradient by hand: h' = act(xp + h W_hhᵀ), so the pre-activation
    gradient is dh (1 − h'²) for tanh, dh [h' > 0] for relu, and dh_prev = that W_hh."""

    def __init__(self, weight: torch.Tensor, batch: int, nonlinearity: str) -> None:
        super().__init__(weight, None, batch)
        self.tanh = nonlinearity == "tanh"

    def forward(self, xp: torch.Tensor, state: State, out: torch.Tensor):
        pre = self.matmul(state[0], xp)
        if self.tanh:
            torch.mul(pre, 2, out=out).sigmoid_().mul_(2).sub_(1)  # tanh as 2σ(2x) − 1
        else:
            torch.clamp_min(pre, 0, out=out)
        return (out,), ()

    def backward(self, grad: State, saved, h, grad_xp: torch.Tensor, grad_hp) -> State:
        gh = grad[0]
        if self.tanh:
            torch.mul(h, h, out=grad_xp).neg_().add_(1).mul_(gh)
        else:
            torch.mul(gh, h > 0, out=grad_xp)
        return (self.grad_matmul(grad_xp, None),)
