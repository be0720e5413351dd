"""LSTM with peephole connections, as Element-Research's Lua ``nn.LSTM``.

The input and forget gates look at the previous cell c, the output gate at the
new cell c' (Gers & Schmidhuber 2000); peephole weights are diagonal (one per
unit, Lua's ``nn.CMul``):
    i = σ(x_i + h_i + w_ci ⊙ c)      f = σ(x_f + h_f + w_cf ⊙ c)
    c' = f ⊙ c + i ⊙ tanh(x_g + h_g)  o = σ(x_o + h_o + w_co ⊙ c')   h' = o ⊙ tanh(c')
torch has no built-in equivalent, so this architecture is scratch-only.
"""

from __future__ import annotations

import torch
from torch import nn

from .base import Cell, State, StepFn


class PeepholeLSTMCell(Cell):
    gates = 4
    state_size = 2
    hidden_adds_to_projection = True
    #: the native loop (rnnsuite/native/sequence.cpp); without it, autograd over step_fn
    sequence_kernel = "lstm_peephole"

    #: the diagonal peephole weights; in a network ``weight_ci_l0`` ... like torch's names
    peephole_names = ("weight_ci", "weight_cf", "weight_co")
    param_names = (*Cell.param_names, *peephole_names)

    def own_parameters(self) -> None:
        super().own_parameters()
        for name in self.peephole_names:
            setattr(self, name, nn.Parameter(torch.empty(self.hidden_size)))
        self.reset_parameters()  # again, now that the peephole weights exist

    def sequence_projection(self):
        """W_ih with b_ih and b_hh apart: the native loop sums them itself."""
        return self.weight_ih, self.bias_ih, self.bias_hh

    def sequence_extras(self) -> tuple[torch.Tensor, ...]:
        return (self.weight_ci, self.weight_cf, self.weight_co)

    def step_fn(self, weight_hh: torch.Tensor | None = None) -> StepFn:
        w_hh_t = (self.recurrent_weight() if weight_hh is None else weight_hh).t()
        w_ci, w_cf, w_co = self.weight_ci, self.weight_cf, self.weight_co

        def step(xp: torch.Tensor, state: State) -> State:
            h, c = state
            i, f, g, o = torch.addmm(xp, h, w_hh_t).chunk(4, 1)
            i = torch.sigmoid(i + w_ci * c)
            f = torch.sigmoid(f + w_cf * c)
            c = f * c + i * torch.tanh(g)
            h = torch.sigmoid(o + w_co * c) * torch.tanh(c)
            return h, c

        return step
