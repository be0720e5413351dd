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
    """True when oneDNN can take these tensors (CPU float32, not while Dynamo traces)."""
    if not (_HAVE and torch.backends.mkldnn.enabled):
        return False
    if torch.compiler.is_compiling():
        return False
    return all(t.device.type == "cpu" and t.dtype == torch.float32 for t in tensors)


def _dnn_linear(x2d: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    return torch.ops.mkldnn._linear_pointwise(x2d, weight, bias, "none", [], "")


class _Linear(torch.autograd.Function):
    """y = x Wᵀ + b with oneDNN forward and input gradient; dW through mm (faster here)."""

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        # keep only what a gradient will read: x for dW, W for dx (a first layer's input
        # needs no gradient, so its projection saves x alone)
        ctx.save_for_backward(
            x if ctx.needs_input_grad[1] else None, weight if ctx.needs_input_grad[0] else None
        )
        ctx.has_bias = bias is not None
        x2d = x.reshape(-1, x.shape[-1])
        return _dnn_linear(x2d, weight, bias).view(*x.shape[:-1], weight.shape[0])

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: Tensor):
        x, weight = ctx.saved_tensors
        g2d = grad.reshape(-1, grad.shape[-1])
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_x = _dnn_linear(g2d, weight.t(), None).view(*grad.shape[:-1], weight.shape[1])
        if ctx.needs_input_grad[1]:
            grad_w = g2d.t().mm(x.reshape(-1, x.shape[-1]))
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = g2d.sum(0)
        return grad_x, grad_w, grad_b


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """F.linear, through oneDNN where usable (forward and backward)."""
    tensors = (x, weight) if bias is None else (x, weight, bias)
    if x.numel() == 0 or not usable(*tensors):
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
            # the addition rides on the GEMM as a oneDNN post-op: no second pass over memory
            return torch.ops.mkldnn._linear_pointwise.binary(h, add, packed, None, "add")

        return step
    w_t = weight.t()
    return lambda h, add: torch.addmm(add, h, w_t)


def fused_step_matmul(
    weight: Tensor, bias: Tensor | None, batch: int
) -> Callable[[Tensor], Tensor] | None:
    """A function z -> sigmoid(z Wᵀ + b) with the sigmoid as a oneDNN post-op, or None
    where oneDNN cannot serve (the caller then takes its ordinary path)."""
    if not usable(weight) or (bias is not None and not usable(bias)):
        return None
    packed = torch.ops.mkldnn._reorder_linear_weight(weight.contiguous(), batch)
    return lambda z: torch.ops.mkldnn._linear_pointwise(z, packed, bias, "sigmoid", [], "")
