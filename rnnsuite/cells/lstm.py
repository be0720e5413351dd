"""LSTM cell with fused gates, parameters in torch's layout (rows i, f, g, o).

c' = σ(f) ⊙ c + σ(i) ⊙ tanh(g);  h' = σ(o) ⊙ tanh(c'), the four gate
pre-activations coming from one input and one hidden matrix multiply.

For speed the step reads the gates in the order (i, f, o, g): the rows of the
weights are permuted once per sequence, so the three sigmoid gates form one
contiguous block and take one sigmoid call instead of three. Without autograd
(inference) the step works in place and allocates nothing but the new state.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .base import Cell, State, StepFn


class LSTMCell(Cell):
    gates = 4
    state_size = 2
    hidden_adds_to_projection = True

    def _step_order(self) -> torch.Tensor:
        """Row indices taking torch's (i, f, g, o) blocks to (i, f, o, g)."""
        H, dev = self.hidden_size, self.weight_ih.device
        rows = torch.arange(4 * H, device=dev)
        return torch.cat([rows[: 2 * H], rows[3 * H :], rows[2 * H : 3 * H]])

    def project(self, x: torch.Tensor) -> torch.Tensor:
        order = self._step_order()
        bias = self.folded_bias()
        return F.linear(x, self.weight_ih[order], None if bias is None else bias[order])

    def recurrent_weight(self) -> torch.Tensor:
        return self.weight_hh[self._step_order()]

    def step_fn(self, weight_hh: torch.Tensor | None = None) -> StepFn:
        w_hh_t = (self.recurrent_weight() if weight_hh is None else weight_hh).t()
        H = self.hidden_size

        def step(xp: torch.Tensor, state: State) -> State:
            h, c = state
            gates = torch.addmm(xp, h, w_hh_t)
            if not torch.is_grad_enabled():  # inference: in place, nothing saved
                ifo = gates[:, : 3 * H].sigmoid_()
                g = gates[:, 3 * H :].tanh_()
                i, f, o = ifo.chunk(3, 1)
                c = (f * c).addcmul_(i, g)
                return torch.tanh(c).mul_(o), c
            ifo, g = gates.split([3 * H, H], 1)
            i, f, o = torch.sigmoid(ifo).chunk(3, 1)
            c = torch.addcmul(f * c, i, torch.tanh(g))
            return o * torch.tanh(c), c

        return step
