"""The matrix multiplies of the scratch cells, routed to oneDNN on CPU where torch has it.

Why: torch's CPU ``addmm``/``linear`` go to MKL, which on some CPUs (AMD's among them)
runs its slower generic kernels, while ``nn.LSTM`` on CPU runs oneDNN's RNN primitive.
The same fp32 GEMM through oneDNN (``torch.ops.mkldnn._linear_pointwise``) is 20–30%
faster there, and the gap would otherwise be measured as "scratch is slower" when it is
"MKL is slower". The maths is unchanged — a plain fp32 matrix multiply — so results agree
with ``F.linear`` to rounding. Everything else (CUDA, float64, no oneDNN in the build,
inside ``torch.compile``) takes the ordinary path.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from .plain import plain

_OPS = getattr(torch.ops, "mkldnn", None)


def _op_exists(name: str) -> bool:
    try:
        return _OPS is not None and hasattr(_OPS, name)
    except (AttributeError, RuntimeError):
        return False


_HAVE = (
    torch.backends.mkldnn.is_available()
    and _op_exists("_linear_pointwise")
    and _op_exists("_reorder_linear_weight")
)


def usable(*tensors: Tensor) -> bool:
    """True when oneDNN can take these tensors (CPU float32, not while Dynamo traces nor
    inside plain_ops())."""
    if not (_HAVE and torch.backends.mkldnn.enabled):
        return False
    if plain() or torch.compiler.is_compiling():
        return False
    return all(t.device.type == "cpu" and t.dtype == torch.float32 for t in tensors)


#: the op's overload itself: calling it skips the overload lookup of each call
_LINEAR = torch.ops.mkldnn._linear_pointwise.default if _HAVE else None


def _dnn_linear(x2d: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    return _LINEAR(x2d, weight, bias, "none", [], "")


class _Linear(torch.autograd.Function):
    """y = x Wᵀ + b with oneDNN forward and input gradient; dW through mm (faster here)."""

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        ctx.save_for_backward(x, weight)  # references to the inputs, no copies
        ctx.has_bias = bias is not None
        x2d = x.reshape(-1, x.shape[-1])
        return _dnn_linear(x2d, weight, bias).view(*x.shape[:-1], weight.shape[0])

    @staticmethod
    def backward(ctx, grad: Tensor):
        x, weight = ctx.saved_tensors
        g2d = grad.reshape(-1, grad.shape[-1])
        x2d = x.reshape(-1, x.shape[-1])
        need = ctx.needs_input_grad
        # create_graph (grad mode on): differentiable ops, so a second derivative is exact
        plain_ops = torch.is_grad_enabled()
        grad_x = grad_w = grad_b = None
        if need[0]:
            w_t = weight.t()
            grad_x = g2d.mm(weight) if plain_ops else _dnn_linear(g2d, w_t, None)
            grad_x = grad_x.view(*grad.shape[:-1], weight.shape[1])
        if need[1]:
            grad_w = g2d.t().mm(x2d)
        if ctx.has_bias and need[2]:
            grad_b = g2d.sum(0)
        return grad_x, grad_w, grad_b


#: below this many multiply-adds a linear stays on F.linear: measured here (AMD EPYC, one
#: thread) oneDNN's op costs ~20 µs a call whatever its size (16·16·64: 22 µs against
#: F.linear's 4), is even at 64·64·256 and twice as fast from 256·64·256 on
LINEAR_MIN_MACS = 1 << 20


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """F.linear, through oneDNN where usable and large enough (forward and backward)."""
    tensors = (x, weight) if bias is None else (x, weight, bias)
    if x.numel() * weight.shape[0] < LINEAR_MIN_MACS or not usable(*tensors):
        return F.linear(x, weight, bias)
    if not torch.is_grad_enabled() or not any(t.requires_grad for t in tensors):
        return _dnn_linear(x.reshape(-1, x.shape[-1]), weight, bias).view(
            *x.shape[:-1], weight.shape[0]
        )
    return _Linear.apply(x, weight, bias)


def recurrent_matmul(weight: Tensor, batch: int) -> Callable[[Tensor, Tensor], Tensor]:
    """A function (h, add) -> add + h Wᵀ for the per-step product of a loop without autograd.

    On oneDNN the weight is reordered once into the kernel's blocked layout (for `batch`
    rows), so every step skips that work; elsewhere it is one addmm.
    """
    if usable(weight):
        packed = torch.ops.mkldnn._reorder_linear_weight(weight.contiguous(), batch)

        def step(h: Tensor, add: Tensor) -> Tensor:
            # add_ after the GEMM, not oneDNN's binary "add" post-op: measured here, the
            # post-op made each step ~60% slower than the GEMM followed by an in-place add
            return _LINEAR(h, packed, None, "none", [], "").add_(add)

        return step
    w_t = weight.t()
    return lambda h, add: torch.addmm(add, h, w_t)


def step_matmul(
    weight: Tensor, bias: Tensor | None, batch: int
) -> Callable[[Tensor], Tensor] | None:
    """A function z -> z Wᵀ + b on a weight reordered once for `batch` rows, or None where
    oneDNN cannot serve (the caller then takes its ordinary path). The caller applies its
    activation in place afterwards: measured here, oneDNN's fused sigmoid post-op was
    slower than the GEMM plus a separate sigmoid_."""
    if not usable(weight) or (bias is not None and not usable(bias)):
        return None
    packed = torch.ops.mkldnn._reorder_linear_weight(weight.contiguous(), batch)
    return lambda z: _LINEAR(z, packed, bias, "none", [], "")


def input_grad_matmul(weight: Tensor, batch: int) -> Callable[[Tensor, Tensor | None], Tensor]:
    """A function (grad, add) -> grad W (+ add): the gradient reaching the previous h through
    h Wᵀ, for the hand-written backward steps. On oneDNN Wᵀ is reordered once for `batch`
    rows and the addition rides on the GEMM; elsewhere it is mm / addmm."""
    if usable(weight):
        packed = torch.ops.mkldnn._reorder_linear_weight(weight.t().contiguous(), batch)

        def step(grad: Tensor, add: Tensor | None) -> Tensor:
            out = _LINEAR(grad, packed, None, "none", [], "")
            return out if add is None else out.add_(add)

        return step

    def plain(grad: Tensor, add: Tensor | None) -> Tensor:
        return grad.mm(weight) if add is None else torch.addmm(add, grad, weight)

    return plain


def weight_grad(grad: Tensor, inp: Tensor) -> Tensor:
    """gradᵀ inp over all rows: a weight's gradient from its output's gradient, (N, G) and
    (N, K) -> (G, K). Through oneDNN as (inpᵀ gradᵀ)ᵀ, with gradᵀ a strided view oneDNN
    reads as it is: measured here, 1.5x faster than copying the (N, G) gradient transposed
    first (a 16 MB strided copy at the bar shape) and ~1.7x faster than MKL's mm."""
    if grad.shape[0] == 0 or not usable(grad, inp):
        return grad.t().mm(inp)
    return _dnn_linear(inp.t().contiguous(), grad.t(), None).t().contiguous()


def weight_grads(
    grad: Tensor, inputs: list[Tensor], stack: Callable[[list[Tensor]], Tensor] | None = None
) -> list[Tensor]:
    """[weight_grad(grad, inp) for inp in inputs] as one product gradᵀ [inp₀ | inp₁ | …]
    split by columns: the gradient is read once and the product is wider (an LSTM's W_ih and
    W_hh share their gates' gradient). Measured here (AMD EPYC, one thread, oneDNN) 9% less
    time than two products at Human Numbers' shape (N=1024, G=256, K=64+64), 19% at Time
    Machine's, 2% at the bars'; same arithmetic, rounding aside.

    ``stack`` (the native loops' ``stack_transposed``, where they run) makes the stacked
    transpose [inp₀ᵀ; inp₁ᵀ; …] in blocks: torch's copy of the transposed views took ~1 ns
    an element, 78 µs of a 1.3 ms AG News training step and 4.7 ms at the bars' shape,
    measured here (AMD EPYC, AVX-512, one thread); it also turns the product's (K_i, G)
    blocks back into the weights' (G, K_i), where torch's copy took 29 µs of the 0.75 ms
    weight gradients at Human Numbers' shape."""
    if len(inputs) < 2 or grad.shape[0] == 0 or not usable(grad, *inputs):
        return [weight_grad(grad, inp) for inp in inputs]
    rows_contiguous = all(inp.dim() == 2 and inp.stride(1) == 1 for inp in inputs)
    if stack is not None and rows_contiguous:
        stacked = stack(inputs)
    else:
        stacked = torch.cat([inp.t() for inp in inputs])  # (ΣK, N): one transposing copy
    both = _dnn_linear(stacked, grad.t(), None)  # (ΣK, G)
    parts = both.split([inp.shape[1] for inp in inputs])
    if stack is not None:  # each (K_i, G) block back to (G, K_i), the same blocked copy
        return [stack([p]) for p in parts]
    return [p.t().contiguous() for p in parts]


def hidden_matmul(weight: Tensor, bias: Tensor | None, batch: int) -> Callable[[Tensor], Tensor]:
    """A function h -> h Wᵀ + b for a step that keeps its hidden product apart (GRU)."""
    if usable(weight) and (bias is None or usable(bias)):
        packed = torch.ops.mkldnn._reorder_linear_weight(weight.contiguous(), batch)
        return lambda h: _LINEAR(h, packed, bias, "none", [], "")
    w_t = weight.t()
    return lambda h: h.mm(w_t) if bias is None else torch.addmm(bias, h, w_t)


def tanh_(x: Tensor) -> Tensor:
    """tanh in place as 2σ(2x) − 1: on CPU torch's tanh costs several times its sigmoid."""
    return x.mul_(2).sigmoid_().mul_(2).sub_(1)
