"""The shape every scratch cell has, so one layer machinery can unroll them all.

A cell is one layer in one direction. Its parameters are laid out exactly as
torch's built-ins lay them out (``weight_ih`` is ``(gates*H, I)``, gate rows in
torch's order). A cell built on its own holds them; a cell of a network
(``rnnsuite.LSTM`` ...) holds none and reads its owner's, under torch's names
(``weight_hh_l1_reverse``), at the moment it is asked: ``cell.weight_hh`` is
``getattr(owner, "weight_hh" + suffix)``, so parametrizations, ``functional_call``'s
substitutes and ``load_state_dict`` are what the cell computes with — there is no
second copy. The layer asks it for
two things: ``project`` — the input projection of every time step in one
matrix multiply — and ``step_fn`` — a closure that advances the state by one
step given that step's projected input. Binding the weights once per sequence
into the closure keeps Python work out of the time loop.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import ClassVar

import torch
from torch import Tensor, nn

from . import gemm
from .plain import plain, plain_ops  # noqa: F401  (re-exported)

State = tuple[Tensor, ...]
StepFn = Callable[[Tensor, State], State]


class Cell(nn.Module):
    """Base for one recurrent layer-direction: parameters, projection and step."""

    gates: ClassVar[int] = 1
    state_size: ClassVar[int] = 1  # 1: state is (h,); 2: state is (h, c)
    #: True when a step computes its gates as x_t + h @ recurrent_weight().T. The layer can
    #: then leave W_hh out of the per-step graph and form its gradient in one matrix
    #: multiply over all steps (layers.RecurrentWeightGrad) instead of one per step.
    hidden_adds_to_projection: ClassVar[bool] = False
    #: True when the cell writes its step's gradient by hand (manual_step): a training
    #: pass then runs as one autograd node per layer-direction (rnnsuite.bptt).
    manual: ClassVar[bool] = False
    #: True when the hidden bias stays inside the step (not folded into the projection),
    #: so the manual path must return b_hh's gradient too (GRU).
    manual_hidden_bias: ClassVar[bool] = False
    #: the native whole-sequence loop of this cell (rnnsuite.native.sequence: "lstm", "gru",
    #: "rnn", "lstm_peephole", "gru_cho"), or None; with one, training takes rnnsuite.bptt's
    #: one-node path wherever the loop applies, even without a Python manual step
    sequence_kernel: ClassVar[str | None] = None
    #: False keeps this cell off rnnsuite.native's kernels (``scratch_torch``)
    native = True
    #: True runs every step through step_fn under autograd: no fused, hand-written or
    #: native path (``compiled``, whose step_fn is torch.compile's)
    steps_only = False

    #: the parameters a cell reads (torch's names without the layer suffix)
    param_names: ClassVar[tuple[str, ...]] = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        *,
        owner: nn.Module | None = None,
        suffix: str = "",
        output_size: int | None = None,
    ) -> None:
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        #: width of h (an LSTM's projection narrows it)
        self.output_size = hidden_size if output_size is None else output_size
        self.bias = bias
        # not a submodule (the owner holds this cell): plain attributes, never registered
        self.__dict__["_owner"], self.__dict__["_suffix"] = owner, suffix
        if owner is None:
            self.own_parameters()

    def own_parameters(self) -> None:
        """A cell on its own holds its parameters (shapes as the built-ins have them)."""
        rows = self.gates * self.hidden_size
        self.weight_ih = nn.Parameter(torch.empty(rows, self.input_size))
        self.weight_hh = nn.Parameter(torch.empty(rows, self.output_size))
        if self.bias:
            self.bias_ih = nn.Parameter(torch.empty(rows))
            self.bias_hh = nn.Parameter(torch.empty(rows))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def __getattr__(self, name: str):
        owner = self.__dict__.get("_owner")
        if owner is not None and name in type(self).param_names:
            # absent (bias=False) reads as None, as a cell of its own registers it
            return getattr(owner, name + self.__dict__["_suffix"], None)
        return super().__getattr__(name)

    def reset_parameters(self) -> None:
        """torch's default for its RNNs: every parameter ~ U(-1/sqrt(H), 1/sqrt(H))."""
        bound = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0.0
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def folded_bias(self) -> Tensor | None:
        """b_ih + b_hh, for cells whose maths lets both biases enter the projection."""
        if self.bias_ih is None:
            return None
        return self.bias_ih + self.bias_hh

    def projection_params(self) -> tuple[Tensor, Tensor | None]:
        """(weight, bias) of the input projection, rows in the order the step reads them."""
        return self.weight_ih, self.folded_bias()

    def project(self, x: Tensor) -> Tensor:
        """Input projection for all steps at once: (..., I) -> (..., gates*H)."""
        return gemm.linear(x, *self.projection_params())

    def recurrent_weight(self) -> Tensor:
        """W_hh with rows in the order the step reads them (torch's, unless a cell says)."""
        return self.weight_hh

    def step_fn(self, weight_hh: Tensor | None = None) -> StepFn:
        """A closure (projected x_t, state) -> new state; output is new state[0].

        `weight_hh` replaces recurrent_weight() (the layer passes a detached one when it
        takes over W_hh's gradient)."""
        raise NotImplementedError

    def run_padded(self, x: Tensor, state: State) -> tuple[Tensor, State] | None:
        """Optional whole-sequence path for padded input without autograd; None = use the
        layer's loop. A cell overrides it where fusing the steps pays (see lstm.py)."""
        return None

    def manual_weights(self) -> tuple[Tensor, Tensor | None, Tensor, Tensor | None]:
        """(W_ih, b_ih, W_hh, b_hh) as the manual step reads them: the projection's, the
        recurrent weight, and b_hh only where it stays inside the step. Differentiable
        functions of the parameters, so any reordering or scaling is undone by autograd."""
        w_ih, b_ih = self.projection_params()
        b_hh = self.bias_hh if self.manual_hidden_bias else None
        return w_ih, b_ih, self.recurrent_weight(), b_hh

    def manual_reference_step(self, weight_hh: Tensor, bias_hh: Tensor | None) -> StepFn:
        """The manual step on manual_weights()'s W_hh and b_hh, in differentiable torch ops:
        what rnnsuite.bptt recomputes when a second derivative is asked for."""
        return self.step_fn(weight_hh)

    def sequence_weights(self) -> tuple[Tensor, Tensor | None, Tensor, Tensor | None]:
        """(W_ih, b_ih, W_hh, b_hh) as the native whole-sequence loop reads them
        (``sequence_kernel``): manual_weights() unless a cell's loop reads another layout."""
        return self.manual_weights()

    def sequence_recurrent(self) -> tuple[Tensor, Tensor | None]:
        """(W_hh, b_hh) of sequence_weights(), without making its projection's bias (a
        folded b_ih + b_hh is a torch op a call, unused where the loop projects itself)."""
        return self.recurrent_weight(), (self.bias_hh if self.manual_hidden_bias else None)

    def sequence_projection(self) -> tuple[Tensor | None, ...]:
        """(W_ih, biases...) of sequence_weights()'s projection, the biases unsummed where a
        cell's loop adds them itself: the input projection of the native inference path."""
        w_ih, b_ih, _, _ = self.sequence_weights()
        return w_ih, b_ih

    def sequence_extras(self) -> tuple[Tensor, ...]:
        """Parameters the native loop reads besides the four weights (the peephole LSTM's)."""
        return ()

    def sequence_reference_step(self, weight_hh: Tensor, bias_hh: Tensor | None) -> StepFn:
        """manual_reference_step for sequence_weights()'s layout (second derivatives)."""
        return self.manual_reference_step(weight_hh, bias_hh)

    def manual_step(self, weight_hh: Tensor, bias_hh: Tensor | None, batch: int):
        """The step with its gradient written out (a ManualStepBase) for cells that set
        ``manual``; `weight_hh`, `bias_hh` as manual_weights() gives them, `batch` the first
        step's rows."""
        raise NotImplementedError(f"{type(self).__name__} has no manual step")

    def initial_state(self, batch: int, like: Tensor) -> State:
        h = like.new_zeros(batch, self.output_size)
        return (h,) if self.state_size == 1 else (h, like.new_zeros(batch, self.hidden_size))

    def forward(self, x: Tensor, state: State | None = None) -> State:
        """One step on un-projected input x (B, I), like nn.LSTMCell; returns the state."""
        if state is None:
            state = self.initial_state(x.shape[0], x)
        return self.step_fn()(self.project(x), state)

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, bias={self.bias}"


class ManualStepBase:
    """Shared part of the cells' hand-written steps: the weights they read and the GEMMs
    on them, each reordered for oneDNN only when first used (a backward never builds the
    forward's, and nothing outlives the step object)."""

    #: True: backward takes the step's output gradient apart (a last argument) and adds it
    #: to the gradient of h itself, in its own pass; False: bptt adds it before the call
    folds_output_grad = False

    def __init__(self, weight: Tensor, bias: Tensor | None, batch: int) -> None:
        self.weight, self.bias, self.batch = weight, bias, batch

    @functools.cached_property
    def matmul(self) -> Callable[[Tensor, Tensor], Tensor]:
        """(h, xp) -> xp + h Wᵀ."""
        return gemm.recurrent_matmul(self.weight, self.batch)

    @functools.cached_property
    def grad_matmul(self) -> Callable[[Tensor, Tensor | None], Tensor]:
        """(grad, add) -> grad W (+ add)."""
        return gemm.input_grad_matmul(self.weight, self.batch)

    def forward(self, xp: Tensor, state: State, out: Tensor) -> tuple[State, tuple[Tensor, ...]]:
        """Advance the state on the step's projected input, writing the new h into `out`;
        return the new state and what backward needs (never a view of `out`: backward gets
        the step's h as `h` instead)."""
        raise NotImplementedError

    def backward(
        self,
        grad: State,
        saved: tuple[Tensor, ...],
        h: Tensor,
        grad_xp: Tensor,
        grad_hp: Tensor | None,
    ) -> State:
        """From the gradient of the new state, write the gradient of the step's projected
        input into `grad_xp` (and of its hidden product h W_hhᵀ + b_hh into `grad_hp` when
        the cell keeps them apart) and return the gradient of the previous state. A step
        with ``folds_output_grad`` gets one more argument, the step's output gradient, that
        `grad`'s h part does not yet include."""
        raise NotImplementedError
