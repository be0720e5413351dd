"""LSTM cell with fused gates, parameters in torch's layout (rows i, f, g, o).

c' = σ(f) ⊙ c + σ(i) ⊙ tanh(g);  h' = σ(o) ⊙ tanh(c'), the four gate
pre-activations coming from one input and one hidden matrix multiply.

For speed the step reads the gates in the order (i, f, o, g): the rows of the
weights are permuted once per sequence, so the three sigmoid gates form one
contiguous block and take one sigmoid call instead of three.

Without autograd (inference) the step goes further, because on CPU tanh costs
several times what sigmoid does per element: the g rows are scaled by 2 when
the weights are bound, so a single sigmoid over all four gates gives σ(2g), and
tanh(g) = 2σ(2g) − 1 enters the cell update as 2·i·σ(2g) − i; likewise
tanh(c') = 2σ(2c') − 1. The step works in place and allocates only the new state.
"""

from __future__ import annotations

import torch

from . import gemm
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

    def _bind(self, t: torch.Tensor | None) -> torch.Tensor | None:
        """Rows of a weight or bias in step order; g rows doubled for the inference step."""
        if t is None:
            return None
        t = t[self._step_order()]
        if not torch.is_grad_enabled():
            t[3 * self.hidden_size :] *= 2  # t is a fresh copy: indexing gathers
        return t

    def project(self, x: torch.Tensor) -> torch.Tensor:
        return gemm.linear(x, self._bind(self.weight_ih), self._bind(self.folded_bias()))

    def recurrent_weight(self) -> torch.Tensor:
        return self._bind(self.weight_hh)

    def run_padded(self, x: torch.Tensor, state: State) -> tuple[torch.Tensor, State] | None:
        """Inference over a padded (T, B, I) sequence in one GEMM per step.

        gates_t = [x_t | h] [W_ih | W_hh]ᵀ + b with the sigmoid fused into the GEMM: no
        separate input projection, no addition, no sigmoid pass over memory. h is written
        straight into the output and into the GEMM's input buffer for the next step."""
        T, B, I = x.shape
        H = self.hidden_size
        weight = torch.cat([self._bind(self.weight_ih), self._bind(self.weight_hh)], 1)
        gemm_sig = gemm.fused_step_matmul(weight, self._bind(self.folded_bias()), B)
        if gemm_sig is None or not gemm.usable(x):
            return None
        h0, c0 = state
        z = x.new_empty(B, I + H)
        z[:, I:] = h0
        c = c0.clone()
        out = x.new_empty(T, B, H)
        tanh_c = x.new_empty(B, H)
        for t in range(T):
            z[:, :I] = x[t]
            i, f, o, s = gemm_sig(z).chunk(4, 1)  # s = σ(2g)
            c.mul_(f).addcmul_(i, s, value=2).sub_(i)  # c' = f c + i (2σ(2g) − 1)
            torch.mul(c, 2, out=tanh_c).sigmoid_().mul_(2).sub_(1)  # tanh(c') = 2σ(2c') − 1
            h = torch.mul(tanh_c, o, out=out[t])
            z[:, I:] = h
        return out, (out[-1], c)

    def step_fn(self, weight_hh: torch.Tensor | None = None) -> StepFn:
        w_hh = self.recurrent_weight() if weight_hh is None else weight_hh
        if not torch.is_grad_enabled():
            return _inference_step(w_hh)
        w_hh_t = w_hh.t()
        H = self.hidden_size

        def step(xp: torch.Tensor, state: State) -> State:
            h, c = state
            gates = torch.addmm(xp, h, w_hh_t)
            ifo, g = gates.split([3 * H, H], 1)
            i, f, o = torch.sigmoid(ifo).chunk(3, 1)
            c = torch.addcmul(f * c, i, torch.tanh(g))
            return o * torch.tanh(c), c

        return step


def _inference_step(w_hh: torch.Tensor) -> StepFn:
    """The no-autograd step on weights bound with doubled g rows (see the module doc)."""
    matmul = None

    def step(xp: torch.Tensor, state: State) -> State:
        nonlocal matmul
        h, c = state
        if matmul is None:  # bound at the first step, when the batch size is known
            matmul = gemm.recurrent_matmul(w_hh, h.shape[0])
        gates = matmul(h, xp).sigmoid_()
        i, f, o, s = gates.chunk(4, 1)
        c = (f * c).addcmul_(i, s, value=2).sub_(i)
        h = torch.mul(c, 2).sigmoid_().mul_(2).sub_(1).mul_(o)
        return h, c

    return step
