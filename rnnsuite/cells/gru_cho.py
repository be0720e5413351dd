"""GRU cell with the candidate of Cho et al. 2014 and d2l's GRUScratch.

r is applied to h *before* the hidden matrix multiply:
    n = tanh(x_n + W_hn (r ⊙ h) + b_hn)
Everything else (rows r, z, n; h' = (1 - z) ⊙ n + z ⊙ h) matches torch's GRU,
so parameters have the same shapes — but the maths differs and no built-in
computes it: scratch-only.
"""

from __future__ import annotations

import torch

from .base import Cell, State, StepFn


class ChoGRUCell(Cell):
    gates = 3
    state_size = 1
    #: the native loop (rnnsuite/native/sequence.cpp); without it, autograd over step_fn
    sequence_kernel = "gru_cho"

    def step_fn(self, weight_hh: torch.Tensor | None = None) -> StepFn:
        H = self.hidden_size
        w_hh = self.weight_hh if weight_hh is None else weight_hh
        w_rz_t, w_n_t = w_hh[: 2 * H].t(), w_hh[2 * H :].t()

        def step(xp: torch.Tensor, state: State) -> State:
            h = state[0]
            x_rz, x_n = xp[:, : 2 * H], xp[:, 2 * H :]
            r, z = torch.sigmoid(torch.addmm(x_rz, h, w_rz_t)).chunk(2, 1)
            n = torch.tanh(torch.addmm(x_n, r * h, w_n_t))
            return (n + z * (h - n),)

        return step
