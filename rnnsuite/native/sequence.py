"""The whole-sequence loops of ``sequence.cpp``: one native call per layer-direction.

Why: the hand-written BPTT of ``rnnsuite.bptt`` runs its time loop in Python, each step a
few torch calls of ~2.5 µs dispatch plus the interpreter's own work; at the documents'
shapes (B = 16..128, H = 32..256) that is more than the step's arithmetic, and
``nn.LSTM``'s loop is C++. Here the loop, forward and backward, is C++ too: per step one
matrix multiply and one fused pass over the gates. The maths is each cell's manual step
(``cells/lstm.py``, ``gru.py``, ``rnn.py``), and the parity tests hold this path to
the torch-ops steps and to the built-ins.

A cell names its loop with ``sequence_kernel`` ("lstm", "gru", "rnn"); ``cell.native =
False`` (the bench's ``scratch_torch``) or ``RNNSUITE_NATIVE=0`` keeps the Python loop.
"""

from __future__ import annotations

from types import ModuleType

import torch
from torch import Tensor

from ..cells import gemm
from . import kernels_for


def kernels(cell, *tensors: Tensor) -> ModuleType | None:
    """The native module when this cell's whole-sequence loop applies to these tensors."""
    if getattr(cell, "sequence_kernel", None) is None or not cell.native:
        return None
    return kernels_for(*(t for t in tensors if t is not None))


def forward(
    k: ModuleType,
    cell,
    xp: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    extras: tuple[Tensor, ...],
    state0: tuple[Tensor, ...],
    sizes: list[int],
    reverse: bool,
    keep: bool,
    projection: tuple[Tensor, ...] | None = None,
) -> tuple[Tensor, tuple[Tensor, ...], tuple[Tensor, ...]]:
    """(out rows, final state, what backward needs) for one layer-direction; `extras` are
    the cell's sequence_extras() (the peephole weights). With `projection` (the cell's
    sequence_projection(): W_ih and the biases that sum into it), `xp` is the input itself
    and the loop projects it a step at a time where it can (the LSTM's), else here."""
    weight = weight.detach().contiguous()
    extras = tuple(e.detach().contiguous() for e in extras)
    xp = xp.detach().contiguous()
    state0 = tuple(s.detach() for s in state0)
    kind = cell.sequence_kernel
    fusing = kind in ("lstm", "lstm_peephole")  # the loops that project a step at a time
    if projection is not None and not (fusing and _fuse(projection[0], weight)):
        w_ih, *biases = projection
        present = [b for b in biases if b is not None]
        xp = gemm.linear(xp, w_ih, sum(present[1:], present[0]) if present else None)
        projection = None
    proj = () if projection is None else tuple(_detached(t) for t in projection)
    if kind == "lstm":
        res = k.lstm_seq_forward(xp, weight, state0[0], state0[1], sizes, reverse, keep, *proj)
        return res[0], (res[1], res[2]), tuple(res[3:])
    if kind == "gru":
        b = None if bias is None else bias.detach().contiguous()
        res = k.gru_seq_forward(xp, weight, b, state0[0], sizes, reverse, keep)
        return res[0], (res[1],), tuple(res[2:])
    if kind == "rnn":
        res = k.rnn_seq_forward(xp, weight, state0[0], sizes, reverse, cell.nonlinearity == "tanh")
        return res[0], (res[1],), ()
    if kind == "lstm_peephole":
        res = k.lstm_peephole_seq_forward(
            xp, weight, *extras, state0[0], state0[1], sizes, reverse, keep, *proj
        )
        return res[0], (res[1], res[2]), tuple(res[3:])
    if kind == "gru_cho":
        res = k.gru_cho_seq_forward(xp, weight, state0[0], sizes, reverse, keep)
        return res[0], (res[1],), tuple(res[2:])
    raise ValueError(f"no native sequence loop {kind!r}")


#: the most bytes of W_ih and W_hh together for which the loop projects the input a step at
#: a time (into the step's gate buffer, while it is in cache) rather than in one product
#: for all steps first. First measured (an earlier VM) 5-26% faster at the documents' small
#: shapes and even from 512 KiB on; since the blocked transposing copy (cd63e87) made the
#: second weight's panels cheap, measured here (AMD EPYC, AVX-512, one layer, interleaved
#: in one process) faster at every shape up to the bars' 2 MiB: forward 1.07-1.17x at
#: T35-B32-I=H=128, PTB's H=200, seq2seq's and the bars' shape (one thread; 1.05-1.11x at
#: two), training 1.03-1.04x; at fastrnns' I=H=512 (8 MiB) training was 2% slower
FUSE_MAX_WEIGHT_BYTES = 2 * 1024 * 1024


def _fuse(w_ih: Tensor, w_hh: Tensor) -> bool:
    return (w_ih.numel() + w_hh.numel()) * w_ih.element_size() <= FUSE_MAX_WEIGHT_BYTES


def _detached(t: Tensor | None) -> Tensor | None:
    return None if t is None else t.detach().contiguous()


def backward(
    k: ModuleType,
    cell,
    weight: Tensor,
    extras: tuple[Tensor, ...],
    saved: tuple[Tensor, ...],
    out: Tensor,
    grad_out: Tensor,
    grad_final: tuple[Tensor | None, ...],
    sizes: list[int],
    reverse: bool,
    grad_xp: Tensor,
    grad_hp: Tensor | None,
    initial_grad: bool = True,
) -> tuple[Tensor, ...]:
    """Fill grad_xp (and grad_hp) for every step; return the initial state's gradient
    (zeros without `initial_grad`: the last step's product is then skipped)."""
    weight = weight.detach().contiguous()
    extras = tuple(e.detach().contiguous() for e in extras)
    grad_out = grad_out.contiguous()
    kind = cell.sequence_kernel
    if kind == "lstm":
        gh, gc = grad_final
        return tuple(
            k.lstm_seq_backward(
                weight, grad_out, gh, gc, *saved, grad_xp, sizes, reverse, initial_grad
            )
        )
    if kind == "gru":
        return tuple(
            k.gru_seq_backward(
                weight,
                grad_out,
                grad_final[0],
                *saved,
                grad_xp,
                grad_hp,
                sizes,
                reverse,
                initial_grad,
            )
        )
    if kind == "rnn":
        return tuple(
            k.rnn_seq_backward(
                weight,
                grad_out,
                grad_final[0],
                out,
                grad_xp,
                sizes,
                reverse,
                cell.nonlinearity == "tanh",
                initial_grad,
            )
        )
    if kind == "lstm_peephole":
        gh, gc = grad_final
        return tuple(
            k.lstm_peephole_seq_backward(
                weight, *extras, grad_out, gh, gc, *saved, grad_xp, sizes, reverse, initial_grad
            )
        )
    if kind == "gru_cho":
        return tuple(
            k.gru_cho_seq_backward(
                weight, grad_out, grad_final[0], *saved, grad_xp, sizes, reverse, initial_grad
            )
        )
    raise ValueError(f"no native sequence loop {kind!r}")


def plain_weight_hh_grad(cell) -> bool:
    """Whether weight_hh_grad is gradᵀ h_prev alone (all but the Cho GRU), so that it can
    share one product with W_ih's gradᵀ x (gemm.weight_grads)."""
    return cell.sequence_kernel != "gru_cho"


def weight_hh_grad(cell, grad: Tensor, h_prev: Tensor, saved: tuple[Tensor, ...]) -> Tensor:
    """W_hh's gradient from the gradient of the step's hidden product (`grad`, every row)
    and h entering each step: gradᵀ h_prev, except where a cell's rows read another input
    (the Cho GRU's n rows multiply r ⊙ h, kept by its loop)."""
    if cell.sequence_kernel == "gru_cho":
        H = h_prev.shape[1]
        q = saved[2]
        # column blocks made contiguous: oneDNN reads a strided slice's transpose at a
        # crawl (measured 14 ms for a (800, 64) block)
        rz, n = grad[:, : 2 * H].contiguous(), grad[:, 2 * H :].contiguous()
        return torch.cat([gemm.weight_grad(rz, h_prev), gemm.weight_grad(n, q)])
    return gemm.weight_grad(grad, h_prev)


def extra_grads(cell, grad_xp: Tensor, saved: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
    """The gradients of sequence_extras(): the peephole weights', sums over every row of the
    gates' gradient times the cell state each looks at (c for i and f, c' for o)."""
    if cell.sequence_kernel != "lstm_peephole":
        return ()
    _, c_prev, c_new, _ = saved
    H = c_prev.shape[1]
    d_i, d_f, _, d_o = grad_xp.split(H, 1)
    return ((d_i * c_prev).sum(0), (d_f * c_prev).sum(0), (d_o * c_new).sum(0))
