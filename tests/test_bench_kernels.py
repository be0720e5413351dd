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
