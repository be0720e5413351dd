"""GRU cell as torch/cuDNN compute it (rows r, z, n): r gates the hidden *product*.

r = σ(x_r + h_r)   z = σ(x_z + h_z)   n = tanh(x_n + r ⊙ (W_hn h + b_hn))
h' = (1 - z) ⊙ n + z ⊙ h
Because b_hn sits inside r ⊙ (...), the hidden bias cannot be folded into the
input projection here; the step does one addmm with b_hh instead.
"""

from __future__ import annotations

import torch

from . import gemm
from .base import Cell, State, StepFn


class GRUCell(Cell):
    gates = 3
    state_size = 1

    def project(self, x: torch.Tensor) -> torch.Tensor:
        return gemm.linear(x, self.weight_ih, self.bias_ih)

    def step_fn(self, weight_hh: torch.Tensor | None = None) -> StepFn:
        w_hh_t = (self.weight_hh if weight_hh is None else weight_hh).t()
        b_hh = self.bias_hh

        def step(xp: torch.Tensor, state: State) -> State:
            h = state[0]
            hp = h @ w_hh_t if b_hh is None else torch.addmm(b_hh, h, w_hh_t)
            x_r, x_z, x_n = xp.chunk(3, 1)
            h_r, h_z, h_n = hp.chunk(3, 1)
            r = torch.sigmoid(x_r + h_r)
            z = torch.sigmoid(x_z + h_z)
            n = torch.tanh(x_n + r * h_n)
            return (n + z * (h - n),)

        return step
