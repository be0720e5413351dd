"""The ``compiled`` implementation: each cell's per-step function compiled by torch.compile.

Not the whole model: Dynamo graph-breaks on nn.LSTM/nn.GRU, and compiling the unrolled
time loop compiles slowly, grows with T and recompiles for every new sequence length.
The step of one layer-direction is a small fixed graph (one addmm and the gate
arithmetic), compiled once per grad mode (and once more with a dynamic batch dimension
for packed input, whose batch shrinks step by step). The layer loop, packing and the
backward-in-time walk stay rnnsuite's own Python, and every step runs under autograd
(the cell's ``steps_only``: no fused, hand-written or native path).
"""

from __future__ import annotations

import itertools
import types

import torch
from torch import nn

_counter = itertools.count()


def _cell_step(cell, weight_hh, xp, state):
    # type(cell).step_fn, not cell.step_fn: the instance attribute is the compiled wrapper.
    # weight_hh: the (detached) W_hh the layer passes when it owns W_hh's gradient.
    make = type(cell).step_fn
    return (make(cell) if weight_hh is None else make(cell, weight_hh))(xp, state)


def _configure_dynamo() -> None:
    cfg = torch._dynamo.config
    # One code object per cell (see compile_steps) keeps each cell's cache small, but a
    # 3-layer bidirectional model in both grad modes still needs room; never fall back
    # to eager silently: a cell that cannot compile must fail and say so.
    for name, value in (("recompile_limit", 16), ("cache_size_limit", 16)):
        if hasattr(cfg, name):
            setattr(cfg, name, value)
    if hasattr(cfg, "fail_on_recompile_limit_hit"):
        cfg.fail_on_recompile_limit_hit = True
    # A drop-in twin's cell reads its parameters from its module, an nn.GRU/nn.LSTM
    # subclass, which Dynamo refuses to touch by default ("Attempted to wrap RNN, GRU, or
    # LSTM"); the compiled step only reads parameters from it, never runs its forward.
    if hasattr(cfg, "allow_rnn"):
        cfg.allow_rnn = True


def compile_steps(model: nn.Module) -> nn.Module:
    """Compile the per-step function of every cell of a scratch model, in place.

    Each cell gets its own copy of the step's code object, so Dynamo keeps a separate
    cache (and recompile budget) per cell instead of one shared one."""
    if not hasattr(model, "cells"):
        raise TypeError(f"compile_steps needs a scratch model, got {type(model).__name__}")
    _configure_dynamo()
    codes = []
    for _, cell in model.cells():
        code = _cell_step.__code__.replace(co_name=f"_cell_step_{next(_counter)}")
        fn = types.FunctionType(code, _cell_step.__globals__, code.co_name)
        compiled = torch.compile(fn, fullgraph=True, dynamic=None)

        def step_fn(weight_hh=None, *, _cell=cell, _compiled=compiled):
            return lambda xp, state: _compiled(_cell, weight_hh, xp, state)

        cell.step_fn = step_fn  # instance attribute: the layers call cell.step_fn()
        cell.steps_only = True  # every step through it, under autograd
        codes.append(code)
    model.__dict__["_compiled_codes"] = codes
    return model


def compiled_graph_count(model: nn.Module) -> int | None:
    """How many graphs Dynamo holds for the model's cells (None if torch hides it)."""
    codes = getattr(model, "_compiled_codes", None)
    if not codes:
        return None
    try:
        from torch._dynamo.eval_frame import _debug_get_cache_entry_list

        return sum(len(_debug_get_cache_entry_list(c)) for c in codes)
    except Exception:
        return None
