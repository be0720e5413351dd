"""pytest-benchmark over the hot kernels: one recurrent step per architecture.

These run in the normal test suite (quickly, and never assert on time). To track
them across commits, use pytest-benchmark's JSON storage::

    pytest tests/test_bench_kernels.py --benchmark-only --benchmark-autosave \\
        --benchmark-compare --benchmark-compare-fail=median:25%

which saves each run under .benchmarks/ and fails when a kernel's median is 25%
slower than the last saved run on this machine.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import rnnsuite
from rnnsuite.registry import REGISTRY

B, H = 64, 256
BUILTIN_CELLS = {"rnn": nn.RNNCell, "lstm": nn.LSTMCell, "gru": nn.GRUCell}


def _cell(arch: str):
    torch.manual_seed(0)
    cell = REGISTRY[arch].cell(H, H)
    x = torch.randn(B, H)
    return cell, x, cell.initial_state(B, x)


@pytest.mark.benchmark(group="scratch step (projected input)", max_time=0.25, min_rounds=10)
@pytest.mark.parametrize("arch", rnnsuite.ARCHITECTURES)
def test_scratch_step(benchmark, arch):
    cell, x, state = _cell(arch)
    with torch.no_grad():
        xp = cell.project(x)
        step = cell.step_fn()
        new = benchmark(step, xp, state)
    assert len(new) == cell.state_size and new[0].shape == (B, H)
    assert all(torch.isfinite(s).all() for s in new)


@pytest.mark.benchmark(group="cell step with projection", max_time=0.25, min_rounds=10)
@pytest.mark.parametrize("arch", rnnsuite.ARCHITECTURES)
def test_scratch_cell(benchmark, arch):
    cell, x, state = _cell(arch)
    with torch.no_grad():
        new = benchmark(cell, x, state)
    assert new[0].shape == (B, H)


@pytest.mark.benchmark(group="cell step with projection", max_time=0.25, min_rounds=10)
@pytest.mark.parametrize("arch", sorted(BUILTIN_CELLS))
def test_builtin_cell(benchmark, arch):
    torch.manual_seed(0)
    cell = BUILTIN_CELLS[arch](H, H)
    x = torch.randn(B, H)
    h = torch.zeros(B, H)
    state = (h, h.clone()) if arch == "lstm" else h
    with torch.no_grad():
        out = benchmark(cell, x, state)
    assert (out[0] if arch == "lstm" else out).shape == (B, H)


MANUAL = [a for a in rnnsuite.ARCHITECTURES if REGISTRY[a].cell.manual]


@pytest.mark.benchmark(group="training step, hand-written gradient", max_time=0.25, min_rounds=10)
@pytest.mark.parametrize("arch", MANUAL)
def test_manual_train_step(benchmark, arch):
    """One step of the hand-written BPTT, forward and backward (rnnsuite.bptt)."""
    cell, x, state = _cell(arch)
    w_ih, b_ih, w_hh, b_hh = (t.detach() if t is not None else None for t in cell.manual_weights())
    xp = torch.nn.functional.linear(x, w_ih, b_ih)
    step = cell.manual_step(w_hh, b_hh, B)
    out = torch.empty(B, H)
    grad_xp = torch.empty(B, w_ih.shape[0])
    grad_hp = torch.empty_like(grad_xp) if cell.manual_hidden_bias else None
    grad = tuple(torch.randn(B, H) for _ in range(cell.state_size))
    # a step that folds its output's gradient in (the LSTM's) takes it as one more argument
    extra = (torch.randn(B, H),) if step.folds_output_grad else ()

    def fwd_bwd():
        _, saved = step.forward(xp, state, out)
        return step.backward(grad, saved, out, grad_xp, grad_hp, *extra)

    with torch.no_grad():
        prev = benchmark(fwd_bwd)
    assert len(prev) == cell.state_size and prev[0].shape == (B, H)
    assert torch.isfinite(grad_xp).all()
