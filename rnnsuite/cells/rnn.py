"""Elman RNN cell: h' = act(W_ih x + b_ih + W_hh h + b_hh), act tanh or relu (nn.RNN)."""

from __future__ import annotations

import torch

from .base import Cell, State, StepFn

NONLINEARITIES = {"tanh": torch.tanh, "relu": torch.relu}


class ElmanCell(Cell):
    gates = 1
    state_size = 1
    hidden_adds_to_projection = True

    def __init__(
        self, input_size: int, hidden_size: int, bias: bool = True, nonlinearity: str = "tanh"
    ) -> None:
        if nonlinearity not in NONLINEARITIES:
            raise ValueError(
                f"nonlinearity={nonlinearity!r} is not supported; use one of {sorted(NONLINEARITIES)}"
            )
        self.nonlinearity = nonlinearity
        super().__init__(input_size, hidden_size, bias)

    def step_fn(self, weight_hh: torch.Tensor | None = None) -> StepFn:
        w_hh_t = (self.recurrent_weight() if weight_hh is None else weight_hh).t()
        act = NONLINEARITIES[self.nonlinearity]

        def step(xp: torch.Tensor, state: State) -> State:
            return (act(torch.addmm(xp, state[0], w_hh_t)),)

        return step

    def extra_repr(self) -> str:
        return super().extra_repr() + f", nonlinearity={self.nonlinearity!r}"
