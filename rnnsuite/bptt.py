"""Backpropagation through time with each step's gradient written out by its cell.

Why: under autograd a training step records a dozen small nodes per time step
(the recurrent product, each gate's activation, every product of the cell
update) and walks them back one by one; on a CPU that bookkeeping and the
extra passes over memory, not the arithmetic, decide the speed. A cell that
can write its step's gradient by hand (``Cell.manual_step``, a
``cells.base.ManualStepBase``) runs here as one
autograd node per layer-direction, input projection included: the forward
loop runs without autograd and keeps only what the cell asks for, and the
backward loop walks the steps in reverse, calling the cell's backward step.
The weights' gradients are then one matrix multiply each over all steps, on the gates'
gradient (W_ih's and W_hh's read the same).

Padded input is (T, B, G) with every step of batch B; packed input is the
PackedSequence's data with its ``batch_sizes`` (sorted longest first, so the
batch shrinks forward in time). The bookkeeping for packed rows — states set
aside when a sequence ends (forward), initial states joining when one begins
(reversed) — mirrors ``layers.Layer`` and ``layers.ReversedLayer`` exactly.
The gradient is checked against the autograd path and the built-ins by the
parity tests.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import torch
from torch import Tensor

from .cells import gemm
from .cells.base import Cell, State
from .cells.plain import plain, plain_ops
from .native import sequence
from .unroll import unroll, unroll_reversed

_ENABLED = True


@contextlib.contextmanager
def autograd_steps() -> Iterator[None]:
    """Run every layer through autograd's per-step graph instead (for tests and
    comparisons): same maths, so outputs and gradients agree to rounding."""
    global _ENABLED
    before, _ENABLED = _ENABLED, False
    try:
        yield
    finally:
        _ENABLED = before


class _Scratchpad:
    """Buffers a backward pass fills and drops before it returns (the gates' gradient, and
    the hidden product's where a cell keeps it apart), kept from one call to the next.

    Why: on this kind of VM a fresh 16 MB buffer costs ~4,000 page faults per call, which
    measured 5-8 ms of an 80 ms LSTM training step, for no arithmetic at all. One buffer per
    (role, dtype, device), grown to the largest request and taken out while in use, so a
    concurrent or re-entrant backward allocates its own. ``release()`` frees them all (the
    bench calls it before it measures a step's memory, so the step pays for them again)."""

    def __init__(self) -> None:
        self._free: dict[tuple, Tensor] = {}

    @contextlib.contextmanager
    def take(self, role: str, shape: tuple[int, ...], like: Tensor) -> Iterator[Tensor]:
        key = (role, like.dtype, like.device)
        numel = math.prod(shape)
        buf = self._free.pop(key, None)
        if buf is None or buf.numel() < numel:
            buf = like.new_empty(numel)
        try:
            yield buf[:numel].view(shape)
        finally:
            self._free[key] = buf

    def release(self) -> None:
        self._free.clear()


SCRATCHPAD = _Scratchpad()


def release_workspace() -> None:
    """Free the buffers the manual backward keeps between calls."""
    SCRATCHPAD.release()


def run(
    cell: Cell, x: Tensor, state: State, batch_sizes: list[int] | None, reverse: bool
) -> tuple[Tensor, State] | None:
    """The layer's output (rows of x) and final state, differentiable by hand; None when
    this path does not apply (the cell has no manual step, autograd is off or tracing, or
    nothing needs a gradient): the caller's own loop is then the right one. A cell with a
    native loop but no manual step in Python (the peephole LSTM, the Cho GRU) comes here
    only where that loop applies."""
    if not (_ENABLED and torch.is_grad_enabled()):
        return None
    if torch.compiler.is_compiling() or plain():
        return None
    native = sequence.kernels(cell, x, cell.weight_hh, *state)
    if native is None and not cell.manual:
        return None
    # the native loop reads its own layout of the weights (the LSTM's: torch's as it is)
    w_ih, b_ih, w_hh, b_hh = cell.sequence_weights() if native else cell.manual_weights()
    extras = cell.sequence_extras() if native else ()
    inputs = (x, w_ih, b_ih, w_hh, b_hh, *extras, *state)
    if not any(t is not None and t.requires_grad for t in inputs):
        return None
    outs = _ManualBPTT.apply(cell, batch_sizes, reverse, native, len(extras), *inputs)
    return outs[0], tuple(outs[1:])


def infer(
    cell: Cell, x: Tensor, state: State, batch_sizes: list[int] | None, reverse: bool
) -> tuple[Tensor, State] | None:
    """The layer's output and final state without autograd, the whole loop in one native
    call (rnnsuite.native.sequence); None when that does not apply (no native loop for
    this cell or these tensors, a gradient is wanted, tracing, plain_ops)."""
    if torch.compiler.is_compiling() or plain():
        return None
    if torch.is_grad_enabled() and any(t.requires_grad for t in (x, *state, *_read(cell))):
        return None
    native = sequence.kernels(cell, x, cell.weight_hh, *state)
    if native is None:
        return None
    with torch.no_grad():
        w_hh, b_hh = cell.sequence_recurrent()
        sizes = [x.shape[1]] * x.shape[0] if batch_sizes is None else batch_sizes
        rows = x.reshape(-1, x.shape[-1]) if batch_sizes is None else x
        out, final, _ = sequence.forward(
            native, cell, rows, w_hh, b_hh, cell.sequence_extras(), state, sizes, reverse,
            False, projection=cell.sequence_projection(),
        )  # fmt: skip
    return (out if batch_sizes is not None else out.view(*x.shape[:-1], out.shape[-1])), final


def _read(cell: Cell) -> tuple[Tensor, ...]:
    """The parameters a cell computes with: its own, or those it reads from its owner."""
    return tuple(
        t for name in type(cell).param_names if (t := getattr(cell, name, None)) is not None
    )


class _ManualBPTT(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx, cell, batch_sizes, reverse, native, n_extra, x, w_ih, b_ih, weight, bias, *rest
    ):
        extras, state0 = rest[:n_extra], rest[n_extra:]
        x2 = x.reshape(-1, x.shape[-1]) if batch_sizes is None else x
        sizes = [x.shape[1]] * x.shape[0] if batch_sizes is None else batch_sizes
        ctx.native = native
        saved: list[Tensor] = []
        if native is not None:  # the whole loop, the input's projection too, in one call
            out, state, kept = sequence.forward(
                native, cell, x2, weight, bias, extras, state0, sizes, reverse, keep=True,
                projection=(w_ih, b_ih),
            )  # fmt: skip
            saved += kept
        else:
            xp = gemm.linear(x2, w_ih, b_ih)
            out, state = _python_forward(cell, xp, weight, bias, state0, sizes, reverse, saved)
        ctx.cell, ctx.sizes, ctx.reverse = cell, sizes, reverse
        ctx.per_step = len(saved) // len(sizes)
        ctx.padded_shape = None if batch_sizes is not None else x.shape
        ctx.has_bias, ctx.has_b_ih = bias is not None, b_ih is not None
        # the inputs themselves (references, no copies): the higher-order path recomputes
        # the layer from them
        ctx.n_extra, ctx.n_state = n_extra, len(state0)
        ctx.save_for_backward(x, w_ih, b_ih, weight, bias, out, *extras, *state0, *saved)
        result = out if batch_sizes is not None else out.view(*x.shape[:-1], cell.hidden_size)
        return (result, *state)

    @staticmethod
    def backward(ctx, grad_out, *grad_final):
        x, w_ih, b_ih, weight, bias, out, *rest = ctx.saved_tensors
        extras = tuple(rest[: ctx.n_extra])
        state0 = rest[ctx.n_extra : ctx.n_extra + ctx.n_state]
        saved = rest[ctx.n_extra + ctx.n_state :]
        if torch.is_grad_enabled():  # create_graph: a gradient that is itself differentiable
            inputs = (x, w_ih, b_ih, weight, bias, *extras, *state0)
            grads = _differentiable_grads(ctx, inputs, grad_out, grad_final)
            return (None, None, None, None, None, *grads)
        x2 = x.reshape(-1, x.shape[-1]) if ctx.padded_shape is not None else x
        sizes, reverse, cell, native = ctx.sizes, ctx.reverse, ctx.cell, ctx.native
        rows, G = out.shape[0], weight.shape[0]
        # after (cell, batch_sizes, reverse, native, n_extra): x, w_ih, b_ih, w_hh, b_hh,
        # the extras, the initial state
        need = ctx.needs_input_grad[5:]
        with contextlib.ExitStack() as pad:
            grad_xp = pad.enter_context(SCRATCHPAD.take("grad_xp", (rows, G), out))
            grad_hp = None
            if cell.manual_hidden_bias:
                grad_hp = pad.enter_context(SCRATCHPAD.take("grad_hp", (rows, G), out))
            grad_out = grad_out.reshape(-1, grad_out.shape[-1])
            if native is not None:
                grad_state0 = sequence.backward(
                    native, cell, weight, extras, tuple(saved), out, grad_out, grad_final,
                    sizes, reverse, grad_xp, grad_hp, any(need[5 + ctx.n_extra :]),
                )  # fmt: skip
            else:
                step = cell.manual_step(weight, None, sizes[0])
                grad_state0 = _walk_back(
                    step, sizes, reverse, ctx.per_step, saved, out, grad_out, grad_final,
                    grad_xp, grad_hp,
                )  # fmt: skip
            grad_w_ih = grad_b_ih = grad_w = grad_b = grad_x = None
            # W_hh's gradient reads the hidden product's own gradient where the cell keeps
            # it apart (GRU's n rows), else the gates' gradient
            grad_h = grad_xp if grad_hp is None else grad_hp
            h_prev = _previous_h(out, state0[0], sizes, reverse) if need[3] else None
            shared = grad_h is grad_xp and (native is None or sequence.plain_weight_hh_grad(cell))
            if need[1] and need[3] and shared:  # one product for both (LSTM, RNN)
                stack = None if native is None else native.stack_transposed
                grad_w_ih, grad_w = gemm.weight_grads(grad_xp, [x2, h_prev], stack)
            else:
                if need[1]:
                    grad_w_ih = gemm.weight_grad(grad_xp, x2)
                if need[3]:
                    if native is not None:
                        grad_w = sequence.weight_hh_grad(cell, grad_h, h_prev, tuple(saved))
                    else:
                        grad_w = gemm.weight_grad(grad_h, h_prev)
            if ctx.has_b_ih and need[2]:
                grad_b_ih = grad_xp.sum(0)
            if ctx.has_bias and need[4]:
                # the same sum where both biases read the gates' gradient: made once
                grad_b = (
                    grad_b_ih.clone()
                    if grad_h is grad_xp and grad_b_ih is not None
                    else grad_h.sum(0)
                )
            grad_extras: tuple = (None,) * ctx.n_extra
            if any(need[5 : 5 + ctx.n_extra]):
                grad_extras = sequence.extra_grads(cell, grad_xp, tuple(saved))
            if need[0]:
                grad_x = gemm.linear(grad_xp, w_ih.t())
                if ctx.padded_shape is not None:
                    grad_x = grad_x.view(ctx.padded_shape)
        return (
            None, None, None, None, None,
            grad_x, grad_w_ih, grad_b_ih, grad_w, grad_b, *grad_extras, *grad_state0,
        )  # fmt: skip


def _differentiable_grads(ctx, inputs, grad_out, grad_final) -> list[Tensor | None]:
    """The layer's gradients as differentiable functions of its inputs and of the incoming
    gradients: the forward recomputed in plain torch ops (the cell's manual step, same
    maths) and differentiated by autograd with create_graph, so second derivatives are
    exact. Only a backward that builds a graph (create_graph=True) comes here."""
    x, w_ih, b_ih, weight, bias, *rest = inputs
    state0 = rest[ctx.n_extra :]  # the extras enter through the cell's own step
    batch_sizes = None if ctx.padded_shape is not None else ctx.sizes
    with plain_ops():
        xp = torch.nn.functional.linear(x, w_ih, b_ih)
        walk = unroll_reversed if ctx.reverse else unroll
        cell = ctx.cell  # the step of the layout the forward's weights are in
        step = (cell.sequence_reference_step if ctx.native else cell.manual_reference_step)(
            weight, bias
        )
        out, final = walk(xp, step, tuple(state0), batch_sizes)
    need = ctx.needs_input_grad[5:]
    wrt = [t for t, n in zip(inputs, need, strict=True) if n]
    grads = iter(
        torch.autograd.grad(
            (out, *final), wrt, (grad_out, *grad_final), create_graph=True, allow_unused=True
        )
    )
    return [next(grads) if n else None for n in need]


def _python_forward(cell, xp, weight, bias, state0, sizes, reverse, saved) -> tuple[Tensor, State]:
    """The forward loop in Python, one manual step per time step (appends to `saved`)."""
    out = xp.new_empty(xp.shape[0], cell.hidden_size)
    step = cell.manual_step(weight, bias, sizes[0])
    xp_t, out_t = xp.split(sizes), out.split(sizes)
    order = range(len(sizes) - 1, -1, -1) if reverse else range(len(sizes))
    if sizes[0] == sizes[-1]:  # every step has the whole batch (padded input)
        state = tuple(state0)
        for t in order:
            state, keep = step.forward(xp_t[t], state, out_t[t])
            saved += keep
        return out, (state[0].clone(), *state[1:])  # the last h is a view of `out`
    return out, _packed_forward(step, reverse, sizes, xp_t, out_t, state0, saved)


def _packed_forward(step, reverse, sizes, xp_t, out_t, state0, saved) -> State:
    """The forward walk over a packed batch (it shrinks forward in time, grows backward)."""
    finished: list[State] = []
    state = tuple(s[: sizes[-1]] for s in state0) if reverse else tuple(state0)
    for t in range(len(sizes) - 1, -1, -1) if reverse else range(len(sizes)):
        b, have = sizes[t], state[0].shape[0]
        if b < have:  # forward in time: sequences ending here keep their state
            finished.append(tuple(s[b:] for s in state))
            state = tuple(s[:b] for s in state)
        elif b > have:  # backward in time: sequences starting here join with theirs
            state = tuple(torch.cat([s, s0[have:b]]) for s, s0 in zip(state, state0, strict=True))
        state, keep = step.forward(xp_t[t], state, out_t[t])
        saved += keep
    if not finished:
        return (state[0].clone(), *state[1:])  # the last h is a view of `out`
    # rows are sorted longest first: later-ending rows come first
    return tuple(torch.cat([s, *(f[k] for f in reversed(finished))]) for k, s in enumerate(state))


def _walk_back(step, sizes, reverse, k, saved, out, grad_out, grad_final, grad_xp, grad_hp):
    """Visit the forward's steps in reverse, filling grad_xp (and grad_hp) row by row;
    returns the gradient of the initial state."""
    T = len(sizes)
    out_t, gout_t, gxp_t = out.split(sizes), grad_out.split(sizes), grad_xp.split(sizes)
    ghp_t = (None,) * T if grad_hp is None else grad_hp.split(sizes)
    order = range(T) if reverse else range(T - 1, -1, -1)
    carry: State | None = None
    init_parts: list[State] = []  # reversed layers: gradients of initial-state rows
    for t in order:
        b = sizes[t]
        if carry is None:
            g = tuple(gf[:b] for gf in grad_final)
        elif carry[0].shape[0] < b:  # forward layer: rows that ended at step t
            have = carry[0].shape[0]
            g = tuple(torch.cat([c, gf[have:b]]) for c, gf in zip(carry, grad_final, strict=True))
        elif carry[0].shape[0] > b:  # reversed layer: rows that began at the step before
            init_parts.append(tuple(c[b:] for c in carry))
            g = tuple(c[:b] for c in carry)
        else:
            g = carry
        p = (T - 1 - t if reverse else t) * k  # saved in the forward's order of visits
        if step.folds_output_grad:  # the step adds the output's gradient in its own pass
            extra: tuple[Tensor, ...] = (gout_t[t],)
        else:
            g, extra = (g[0] + gout_t[t], *g[1:]), ()
        carry = step.backward(g, saved[p : p + k], out_t[t], gxp_t[t], ghp_t[t], *extra)
    assert carry is not None
    if not reverse:
        return carry
    # rows of the initial state: the last step's first, then those that began later
    return tuple(torch.cat([c, *(p[j] for p in reversed(init_parts))]) for j, c in enumerate(carry))


def _previous_h(out: Tensor, h0: Tensor, sizes: list[int], reverse: bool) -> Tensor:
    """h entering each step, in the rows of xp: the step before's output, or h0's rows for
    the first step of a sequence."""
    T = len(sizes)
    if sizes[0] == sizes[-1]:  # padded: whole steps shift by one
        B = sizes[0]
        return torch.cat([out[B:], h0], 0) if reverse else torch.cat([h0, out[:-B]], 0)
    out_t = out.split(sizes)
    parts: list[Tensor] = []
    for t in range(T):
        b = sizes[t]
        if not reverse:
            parts.append(h0 if t == 0 else out_t[t - 1][:b])
        else:
            nxt = sizes[t + 1] if t + 1 < T else 0
            if nxt:
                parts.append(out_t[t + 1])
            if b > nxt:
                parts.append(h0[nxt:b])
    return torch.cat(parts, 0)
