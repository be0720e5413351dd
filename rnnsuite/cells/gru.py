"""GRU cell as torch/cuDNN compute it (rows r, z, n): r gates the hidden *product*.

r = σ(x_r + h_r)   z = σ(x_z + h_z)   n = tanh(x_n + r ⊙ (W_hn h + b_hn))
h' = (1 - z) ⊙ n + z ⊙ h
Because b_hn sits inside r ⊙ (...), the hidden bias cannot be folded into the
input projection here; the step does one addmm with b_hh instead.

For training the step's gradient is written out (``manual_step``, run by
``rnnsuite.bptt``), keeping the hidden product's gradient apart from the input
projection's: they differ in the n rows, where d(W_hn h + b_hn) = d_n ⊙ r.
"""

from __future__ import annotations

import functools

import torch

from . import gemm
from .base import Cell, ManualStepBase, State, StepFn


class GRUCell(Cell):
    gates = 3
    state_size = 1
    manual = True
    manual_hidden_bias = True
    sequence_kernel = "gru"

    def projection_params(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self.weight_ih, self.bias_ih

    def step_fn(self, weight_hh: torch.Tensor | None = None) -> StepFn:
        return self.manual_reference_step(
            self.weight_hh if weight_hh is None else weight_hh, self.bias_hh
        )

    def manual_reference_step(self, weight_hh: torch.Tensor, b_hh) -> StepFn:
        """The step on the given W_hh and b_hh, in differentiable torch ops."""
        w_hh_t = weight_hh.t()

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

    def manual_step(self, weight_hh: torch.Tensor, bias_hh, batch: int) -> _ManualStep:
        return _ManualStep(weight_hh, bias_hh, batch)


class _ManualStep(ManualStepBase):
    """The training step, gradient by hand. With hp = W_hh h + b_hh and
    h' = n + z (h − n): d_n = dh (1 − z) (1 − n²) for x_n, d_n ⊙ r for hp_n;
    d_r = d_n ⊙ hp_n σ'(r); d_z = dh (h − n) σ'(z); dh_prev = d_hp W_hh + dh z."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, batch: int) -> None:
        super().__init__(weight, bias, batch)
        self.H = weight.shape[1]

    @functools.cached_property
    def matmul(self):
        """h -> h W_hhᵀ + b_hh: the hidden product stays apart from the projection."""
        return gemm.hidden_matmul(self.weight, self.bias, self.batch)

    def forward(self, xp: torch.Tensor, state: State, out: torch.Tensor):
        h = state[0]
        H2 = 2 * self.H
        hp = self.matmul(h)
        rz = torch.add(xp[:, :H2], hp[:, :H2]).sigmoid_()
        r, z = rz.chunk(2, 1)
        n = gemm.tanh_(torch.addcmul(xp[:, H2:], r, hp[:, H2:]))
        diff = h - n
        torch.addcmul(n, z, diff, out=out)
        return (out,), (rz, n, hp, diff)

    def backward(self, grad: State, saved, h, grad_xp: torch.Tensor, grad_hp) -> State:
        gh = grad[0]
        rz, n, hp, diff = saved
        H2 = 2 * self.H
        r, z = rz.chunk(2, 1)
        d_xr, d_xz, d_xn = grad_xp.chunk(3, 1)
        dn = torch.mul(n, n, out=d_xn).neg_().add_(1).mul_(torch.addcmul(gh, gh, z, value=-1))
        torch.mul(dn, hp[:, H2:], out=d_xr)
        torch.mul(gh, diff, out=d_xz)
        grad_xp[:, :H2].mul_(torch.addcmul(rz, rz, rz, value=-1))
        grad_hp[:, :H2].copy_(grad_xp[:, :H2])
        torch.mul(dn, r, out=grad_hp[:, H2:])
        return (self.grad_matmul(grad_hp, gh * z),)
