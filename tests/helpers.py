"""Small shared helpers for the architecture tests."""

from __future__ import annotations

import contextlib
import os
import re

import pytest
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


def _scaled_atol(want: torch.Tensor, tol: float) -> float:
    """tol in units of the tensor's largest value (at least 1): a float32 gradient is a sum
    over every row and step, whose rounding error scales with its largest terms, not with
    each element — and CPUs differ in how their GEMM kernels order the sum (on an AVX2-only
    EPYC four comparisons of 7.6-sized gradients differed by 2.6e-6, 3 ulp of 7.6, where
    AVX-512 kept them under 2e-6)."""
    scale = want.abs().max().item() if want.numel() else 0.0
    return tol * max(1.0, scale)


def assert_results_close(got, want, tol: float) -> None:
    """Two run_and_backprop results equal within tol (relative, and absolute in units of
    each tensor's largest value): output, states, every gradient."""
    for a, b in zip(got, want, strict=True):
        if isinstance(a, dict):
            for k in a:
                atol = _scaled_atol(b[k], tol)
                torch.testing.assert_close(a[k], b[k], rtol=tol, atol=atol, msg=k)
        else:
            for u, v in zip(as_tuple(a), as_tuple(b), strict=True):
                torch.testing.assert_close(u, v, rtol=tol, atol=_scaled_atol(v, tol))


# --- drop-in twins: where the harnesses get them, and broken ones that prove the harnesses -----

# The torch class each drop-in twin replaces, and the twin's name in rnnsuite. The two
# harnesses (test_torch_module_db.py, test_torch_rnn_port.py) take every twin from
# twin_class(), and from nowhere else.
TWINS = {nn.RNN: "RNN", nn.LSTM: "LSTM", nn.GRU: "GRU"}

# RNNSUITE_TWIN_SELFCHECK=torch makes twin_class() hand back torch's own class: the harnesses
# then compare torch with itself and must pass. That proves the harness (its samples, weight
# copy, comparisons and ports), apart from the twins:
#   RNNSUITE_TWIN_SELFCHECK=torch pytest -q tests/test_torch_module_db.py \
#       tests/test_torch_rnn_port.py
SELFCHECK_ENV = "RNNSUITE_TWIN_SELFCHECK"


def twin_class(torch_cls: type) -> type:
    """The drop-in twin of torch_cls (rnnsuite.RNN, .LSTM or .GRU); see SELFCHECK_ENV."""
    mode = os.environ.get(SELFCHECK_ENV, "")
    if mode == "torch":
        return torch_cls
    if mode:
        raise ValueError(
            f"{SELFCHECK_ENV}={mode!r}: the only value is 'torch'; unset it to test rnnsuite"
        )
    name = TWINS[torch_cls]
    twin = getattr(rnnsuite, name, None)
    if twin is None:
        pytest.fail(f"rnnsuite.{name} does not exist: the drop-in twin of nn.{name} is missing")
    return twin


@contextlib.contextmanager
def _errors_as(kind: type[Exception] | None):
    """Re-raise RuntimeError / TypeError / ValueError as kind (None: leave them alone)."""
    try:
        yield
    except (RuntimeError, TypeError, ValueError) as e:
        if kind is None or isinstance(e, kind):
            raise
        raise kind(str(e)) from e


def _perturb(out, shift: float, grad_scale: float, curve: float = 0.0):
    """out + shift, with its gradient scaled by grad_scale, and curve * (out - out)²: zero in
    value and first derivative, 2 * curve in second derivative (PackedSequence: its data)."""
    if isinstance(out, PackedSequence):
        data = _perturb(out.data, shift, grad_scale, curve)
        return PackedSequence(data, out.batch_sizes, out.sorted_indices, out.unsorted_indices)
    delta = out - out.detach()
    return out + delta * (grad_scale - 1.0) + curve * delta * delta + shift


def broken_twin(
    torch_cls: type,
    *,
    shift: float = 0.0,
    state_shift: float = 0.0,
    grad_scale: float = 1.0,
    curve: float = 0.0,
    errors_as: type[Exception] | None = None,
) -> type:
    """A subclass of torch_cls that is wrong on purpose, to show that a harness can fail:
    output moved by shift, final states by state_shift, the output's gradient scaled by
    grad_scale, its second derivative moved by curve (value and gradient right), or its errors
    (construction and forward) re-raised as errors_as."""

    class Broken(torch_cls):
        def __init__(self, *args, **kwargs):
            with _errors_as(errors_as):
                super().__init__(*args, **kwargs)

        def forward(self, input, hx=None):
            with _errors_as(errors_as):
                out, state = super().forward(input, hx)
            moved = tuple(_perturb(s, state_shift, 1.0) for s in as_tuple(state))
            state = moved if isinstance(state, tuple) else moved[0]
            return _perturb(out, shift, grad_scale, curve), state

    Broken.__name__ = Broken.__qualname__ = f"Broken{torch_cls.__name__}"
    return Broken


def assert_raises(kind: type[Exception], fn, *args, match: str | None = None, **kwargs):
    """fn(*args, **kwargs) raises a kind (isinstance, as torch's assertRaises), with a message
    that matches the regex match when given. Anything else, another type included, is an
    AssertionError (pytest.raises would let another type through as itself)."""
    try:
        fn(*args, **kwargs)
    except Exception as e:
        assert isinstance(e, kind), f"raised {type(e).__name__}({e}), not {kind.__name__}"
        assert match is None or re.search(match, str(e)), f"{str(e)!r} !~ {match!r}"
        return e
    raise AssertionError(f"raised nothing, not {kind.__name__}")


def human_numbers_matrix(
    name: str, axes: str, *, seeds: str = "[0]", hidden: int = 8, batches: int = 2,
    valid_batches: int = 1, extra: str = "",
) -> str:  # fmt: skip
    """A quality matrix of one tiny Human Numbers task: a few batches per cell, so a test
    trains real cells in seconds. axes and extra are TOML lines of the task table."""
    return f"""
name = "{name}"
kind = "quality"
description = "tiny training cells"
seeds = {seeds}
threads = 1
[tasks.human_numbers]
title = "Human Numbers word LM, a few batches"
loop = "human_numbers"
metric = "accuracy"
metric_label = "valid accuracy"
goal = "max"
curve = "accuracy"
target = 0.3
model = {{ hidden_size = {hidden}, num_layers = 1 }}
train = {{ epochs = 1, lr = 1e-2, wd = 0.01, bs = 64, sl = 16 }}
limits = {{ max_batches = {batches}, valid_batches = {valid_batches} }}
axes = {axes}
{extra}"""


def tiny_matrix(axes: str, *, det_steps: int = 1) -> str:
    """A bench matrix of one block (`axes`, TOML inline-table text) at T4-B3-I4-H4, one
    thread, no warm-up, two repeats: seconds to run."""
    return "\n".join(
        [
            'name = "tiny"',
            "seeds = [0]",
            "[fixed]",
            'size = "T4-B3-I4-H4"',
            'lengths = "uniform"',
            "threads = 1",
            "warmup = 0",
            "repeats = 2",
            f"det_steps = {det_steps}",
            "[[blocks]]",
            'name = "main"',
            f"axes = {axes}",
            "",
        ]
    )
