"""Small shared helpers for the architecture tests."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence

import rnnsuite


def as_tuple(state: Tensor | tuple[Tensor, ...]) -> tuple[Tensor, ...]:
    return (state,) if isinstance(state, Tensor) else tuple(state)


def make_input(
    steps: int, batch: int, size: int, dtype: torch.dtype, batch_first: bool, device=None
) -> Tensor:
    shape = (batch, steps, size) if batch_first else (steps, batch, size)
    return torch.randn(shape, dtype=dtype, device=device, requires_grad=True)


def initial_state(
    arch: str, layers_dirs: int, batch: int, hidden: int, dtype: torch.dtype, device=None
):
    kw = dict(dtype=dtype, device=device, requires_grad=True)
    h = torch.randn(layers_dirs, batch, hidden, **kw)
    if rnnsuite.architecture(arch).cell.state_size == 2:
        c = torch.randn(layers_dirs, batch, hidden, **kw)
        return (h, c)
    return h


def run_and_backprop(model: nn.Module, x: Tensor, lengths, state, batch_first: bool):
    """Forward (packed when lengths is given), a fixed random loss, backward.

    Returns (output tensor, final states, parameter grads by torch name,
    input grad, initial-state grads)."""
    model.zero_grad()
    leaves = (x, *as_tuple(state)) if state is not None else (x,)
    for t in leaves:
        t.grad = None
    inp = rnnsuite.pack_padded(x, lengths, batch_first=batch_first) if lengths else x
    out, final = model(inp, state)
    out_t = out.data if isinstance(out, PackedSequence) else out
    gen = torch.Generator().manual_seed(123)

    def weights(t: Tensor) -> Tensor:  # drawn on the CPU: the same loss on every device
        return torch.randn(t.shape, generator=gen, dtype=t.dtype).to(t.device)

    loss = (out_t * weights(out_t)).sum()
    for s in as_tuple(final):
        loss = loss + (s * weights(s)).sum()
    loss.backward()
    grads = {k: p.grad.clone() for k, p in rnnsuite.canonical_parameters(model).items()}
    state_grads = tuple(s.grad.clone() for s in as_tuple(state)) if state is not None else ()
    return (
        out_t.detach(),
        tuple(s.detach() for s in as_tuple(final)),
        grads,
        x.grad.clone(),
        state_grads,
    )


def assert_results_close(got, want, tol: float) -> None:
    """Two run_and_backprop results equal within tol: output, states, every gradient."""
    for a, b in zip(got, want, strict=True):
        if isinstance(a, dict):
            for k in a:
                torch.testing.assert_close(a[k], b[k], rtol=tol, atol=tol, msg=k)
        else:
            for u, v in zip(as_tuple(a), as_tuple(b), strict=True):
                torch.testing.assert_close(u, v, rtol=tol, atol=tol)
