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

For training the step's gradient is written out (``manual_step``, run by
``rnnsuite.bptt``): the forward keeps the four activations, the previous c and
σ(−2c') (which gives tanh(c')), and the backward forms the gates' gradient in one
(B, 4H) block.

Where the native kernels are built (``rnnsuite.native``; float32 on the CPU), the whole
time loop of this manual step, forward and backward, and of the inference step runs in
one native call instead (``sequence_kernel``, on torch's own weight layout: see
``sequence_weights``); ``native = False`` on a cell keeps the torch ops below.
"""

from __future__ import annotations

import weakref

import torch

from . import gemm
from .base import Cell, ManualStepBase, State, StepFn
from .plain import plain

#: each cell's joined inference weight (see LSTMCell._joined_weights); weak, so a cell that
#: goes away takes its entry with it, and outside the module so deepcopy never meets it
_JOINED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _equal(snapshot: tuple, params: tuple) -> bool:
    """Every parameter equal to its snapshot: same dtype, device, shape and values."""
    for a, b in zip(snapshot, params, strict=True):
        if a is None or b is None:
            if a is not b:
                return False
        elif a.dtype != b.dtype or a.device != b.device or not torch.equal(a, b):
            return False
    return True


class _StepOrder(torch.autograd.Function):
    """torch's gate blocks (i, f, g, o) to step order (i, f, o, g), g scaled by `g_scale`.

    Why a Function: the row gather ``t[index]`` this replaces has index_put as its backward,
    which measured ~0.75 ms per (1024, 256) weight here, every training step; the blocks'
    own backward is one cat."""

    @staticmethod
    def forward(ctx, t: torch.Tensor, H: int, g_scale: float) -> torch.Tensor:
        ctx.H, ctx.g_scale = H, g_scale
        g = t[2 * H : 3 * H]
        return torch.cat([t[: 2 * H], t[3 * H :], g * g_scale if g_scale != 1.0 else g])

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        H, k = ctx.H, ctx.g_scale
        g = grad[3 * H :]
        g = g * k if k != 1.0 else g
        return torch.cat([grad[: 2 * H], g, grad[2 * H : 3 * H]]), None, None


class LSTMCell(Cell):
    gates = 4
    state_size = 2
    hidden_adds_to_projection = True
    manual = True
    sequence_kernel = "lstm"
    param_names = (*Cell.param_names, "weight_hr")

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        *,
        proj_size: int = 0,
        owner: torch.nn.Module | None = None,
        suffix: str = "",
    ) -> None:
        super().__init__(
            input_size, hidden_size, bias, owner=owner, suffix=suffix, output_size=proj_size or None
        )
        self.proj_size = proj_size
        if proj_size:  # h = W_hr (o ⊙ tanh c'): the torch-ops step alone computes it, under
            # autograd throughout (RecurrentWeightGrad's detached W_hh would cost the exact
            # second derivatives the rest of this path gives)
            self.manual = False
            self.hidden_adds_to_projection = False
            self.sequence_kernel = None  # the native loop has no projection either

    def own_parameters(self) -> None:
        super().own_parameters()
        if self.output_size != self.hidden_size:  # the projection (proj_size)
            self.weight_hr = torch.nn.Parameter(torch.empty(self.output_size, self.hidden_size))
            self.reset_parameters()

    def _bind(self, t: torch.Tensor | None, double_g: bool | None = None) -> torch.Tensor | None:
        """Rows of a weight or bias in step order, g rows doubled when `double_g` (default:
        when autograd is off, for the inference step); differentiable either way."""
        if t is None:
            return None
        if plain():  # the same rows by plain ops, g never doubled (the plain step reads tanh)
            H = self.hidden_size
            return torch.cat([t[: 2 * H], t[3 * H :], t[2 * H : 3 * H]])
        double = double_g if double_g is not None else self._inference()
        return _StepOrder.apply(t, self.hidden_size, 2.0 if double else 1.0)

    def _inference(self) -> bool:
        """Whether this call takes the no-autograd step (g rows doubled, see the module doc)."""
        return not (torch.is_grad_enabled() or plain() or self.proj_size)

    def projection_params(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self._bind(self.weight_ih), self._bind(self.folded_bias())

    def recurrent_weight(self) -> torch.Tensor:
        return self._bind(self.weight_hh)

    def manual_weights(self):
        """Step order with g rows doubled: one sigmoid then serves all four gates."""
        bind = self._bind
        return (
            bind(self.weight_ih, True),
            bind(self.folded_bias(), True),
            bind(self.weight_hh, True),
            None,
        )

    def run_padded(self, x: torch.Tensor, state: State) -> tuple[torch.Tensor, State] | None:
        """Inference over a padded (T, B, I) sequence in one GEMM per step.

        gates_t = [x_t | h] [W_ih | W_hh]ᵀ + b: no separate input projection and no addition.
        The loop keeps m = −2c, so both tanh become one sigmoid each and each update one
        fused op: with s = σ(2g), tanh(g) = 2s − 1, m' = f m + 2 i − 4 i s, and with
        u = σ(m') = 1 − σ(2c'), tanh(c') = 1 − 2u and h' = o − 2 o u. h is written straight
        into the output and joined with the next x_t into the GEMM's input. Each torch call
        costs ~2.5 µs of dispatch here, more than its arithmetic, so the step is eight."""
        T, B = x.shape[:2]
        if self.proj_size:
            return None
        matmul = self._joined_weights(B)
        if matmul is None or not gemm.usable(x):
            return None
        h0, c0 = state
        xs = x.unbind(0)
        z = torch.cat((xs[0], h0), 1)
        m = c0 * -2
        out = x.new_empty(T, B, self.hidden_size)
        outs = out.unbind(0)
        u = x.new_empty(B, self.hidden_size)
        for t in range(T):
            i, f, o, s = matmul(z).sigmoid_().chunk(4, 1)  # s = σ(2g)
            m.mul_(f).add_(i, alpha=2).addcmul_(i, s, value=-4)
            torch.sigmoid(m, out=u)
            h = torch.addcmul(o, o, u, value=-2, out=outs[t])
            if t + 1 < T:
                torch.cat((xs[t + 1], h), 1, out=z)
        return out, (out[-1], m.mul_(-0.5))

    def _joined_weights(self, batch: int):
        """run_padded's [W_ih | W_hh] and bias in step order, reordered for oneDNN; reused
        while the weights are *equal* to a snapshot taken when it was built. Why equality,
        not a key: no key — version counters, data pointers — sees an edit through
        ``.data``, and a stale weight is a silent wrong answer. Measured at T64-B64-I=H=256
        inference: the comparison costs ~3% of a forward, a rebuild every call ~12%."""
        params = (self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)
        hit = _JOINED.get(self)
        if hit is not None and hit[0] == batch and _equal(hit[1], params):
            return hit[2]
        weight = torch.cat([self._bind(self.weight_ih), self._bind(self.weight_hh)], 1)
        matmul = gemm.step_matmul(weight, self._bind(self.folded_bias()), batch)
        snapshot = tuple(None if p is None else p.detach().clone() for p in params)
        _JOINED[self] = (batch, snapshot, matmul)
        return matmul

    def step_fn(self, weight_hh: torch.Tensor | None = None) -> StepFn:
        w_hh = self.recurrent_weight() if weight_hh is None else weight_hh
        if self._inference():
            return _inference_step(w_hh)
        w_hh_t = w_hh.t()
        H = self.hidden_size
        w_hr_t = self.weight_hr.t() if self.proj_size else None

        def step(xp: torch.Tensor, state: State) -> State:
            h, c = state
            gates = torch.addmm(xp, h, w_hh_t)
            ifo, g = gates.split([3 * H, H], 1)
            i, f, o = torch.sigmoid(ifo).chunk(3, 1)
            c = torch.addcmul(f * c, i, torch.tanh(g))
            h = o * torch.tanh(c)
            return (h if w_hr_t is None else h.mm(w_hr_t)), c

        return step

    def manual_reference_step(self, weight_hh: torch.Tensor, bias_hh) -> StepFn:
        """The manual step on its own weights (step order, g rows doubled), in
        differentiable torch ops: what rnnsuite.bptt recomputes for second derivatives."""
        w_hh_t = weight_hh.t()

        def step(xp: torch.Tensor, state: State) -> State:
            h, c = state
            i, f, o, s = torch.sigmoid(torch.addmm(xp, h, w_hh_t)).chunk(4, 1)
            c = f * c + i * (2 * s - 1)
            return o * torch.tanh(c), c

        return step

    def sequence_weights(self):
        """torch's layout as it is: the native loop reads the gates in torch's order and
        forms tanh(g) = 2σ(2g) − 1 itself, so nothing is reordered per call."""
        return self.weight_ih, self.folded_bias(), self.weight_hh, None

    def sequence_recurrent(self):
        return self.weight_hh, None

    def sequence_projection(self):
        """W_ih with b_ih and b_hh apart: the native loop sums them itself."""
        return self.weight_ih, self.bias_ih, self.bias_hh

    def sequence_reference_step(self, weight_hh: torch.Tensor, bias_hh) -> StepFn:
        """The step on torch's layout, in differentiable torch ops (second derivatives)."""
        w_hh_t = weight_hh.t()

        def step(xp: torch.Tensor, state: State) -> State:
            h, c = state
            i, f, g, o = torch.addmm(xp, h, w_hh_t).chunk(4, 1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            return torch.sigmoid(o) * torch.tanh(c), c

        return step

    def manual_step(self, weight_hh: torch.Tensor, bias_hh, batch: int) -> _ManualStep:
        return _ManualStep(weight_hh, None, batch)


class _ManualStep(ManualStepBase):
    """The training step, gradient by hand, on weights in step order (i, f, o, g) with the g
    rows doubled, so one sigmoid gives i, f, o and s = σ(2g), tanh(g) = 2s − 1; and with
    u = σ(−2c'), tanh(c') = 1 − 2u (one sigmoid instead of tanh, and h' = o − 2 o u):

    c' = f c + i (2s − 1);  with σ' = σ(1 − σ) for all four blocks and 1 − tanh²(c') =
    4u(1 − u):  dc = dc_next + 4 dh o u (1 − u), the gates' gradient
    [dc (2s − 1), dc c, dh (1 − 2u), 2 dc i] ⊙ σ', dc_prev = dc f, dh_prev = d W_hh."""

    folds_output_grad = True

    def forward(self, xp: torch.Tensor, state: State, out: torch.Tensor):
        h, c = state
        gates = self.matmul(h, xp).sigmoid_()  # fresh (b, 4H): i, f, o, σ(2g)
        i, f, o, s = gates.chunk(4, 1)
        c_new = torch.mul(f, c).addcmul_(i, s, value=2).sub_(i)
        u = torch.mul(c_new, -2).sigmoid_()
        torch.addcmul(o, o, u, value=-2, out=out)
        return (out, c_new), (gates, c, u)

    def backward(self, grad: State, saved, h, grad_xp: torch.Tensor, grad_hp, grad_out) -> State:
        gh, gc = grad
        gates, c, u = saved
        gh = gh + grad_out
        i, f, o, s = gates.chunk(4, 1)
        d_i, d_f, d_o, d_g = grad_xp.chunk(4, 1)
        dc = torch.addcmul(gc, torch.mul(gh, o), torch.addcmul(u, u, u, value=-1), value=4)
        torch.mul(dc, s, out=d_i).mul_(2).sub_(dc)  # dc (2s − 1)
        torch.mul(dc, c, out=d_f)
        torch.addcmul(gh, gh, u, value=-2, out=d_o)  # dh tanh(c')
        torch.mul(dc, i, out=d_g).mul_(2)
        grad_xp.mul_(torch.addcmul(gates, gates, gates, value=-1))
        return self.grad_matmul(grad_xp, None), dc.mul_(f)


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
