"""LSTM cell with fused gates, torch's layout (rows i, f, g, o), no peepholes.

c' = σ(f) ⊙ c + σ(i) ⊙ tanh(g);  h' = σ(o) ⊙ tanh(c'), where the four gate
pre-activations come from one input and one hidden matrix multiply.
"""

from __future__ import annotations

import torch

from .base import Cell, State, StepFn


class LSTMCell(Cell):
    gates = 4
    state_size = 2

    def step_fn(self) -> StepFn:
        w_hh_t = self.weight_hh.t()

        def step(xp: torch.Tensor, state: State) -> State:
            h, c = state
            i, f, g, o = torch.addmm(xp, h, w_hh_t).chunk(4, 1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
            return h, c

        return step
