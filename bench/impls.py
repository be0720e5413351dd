"""The implementations the bench measures: ``scratch``, ``builtin``, ``compiled``.

``scratch`` and ``builtin`` come straight from ``rnnsuite.build``. ``compiled``
is the scratch model with each cell's *per-step function* compiled by
``torch.compile`` — not the whole model: Dynamo graph-breaks on nn.LSTM/nn.GRU,
and compiling the unrolled time loop compiles slowly, grows with T and
recompiles for every new sequence length. The step of one layer-direction is
a small fixed graph (one addmm and the gate arithmetic), compiled once per
grad mode (and once more with a dynamic batch dimension for packed input,
whose batch shrinks step by step). The layer loop, packing and the
backward-in-time walk stay rnnsuite's own Python.

Every implementation of a cell starts from the same weights: a scratch model
is built under the cell's seed and copied into the others.
"""

from __future__ import annotations

import itertools
import types

import torch
from torch import nn

import rnnsuite

_counter = itertools.count()


def _cell_step(cell, weight_hh, xp, state):
    # type(cell).step_fn, not cell.step_fn: the instance attribute is the compiled wrapper.
    # weight_hh: the (detached) W_hh the layer passes when it owns W_hh's gradient.
    make = type(cell).step_fn
    return (make(cell) if weight_hh is None else make(cell, weight_hh))(xp, state)


def _configure_dynamo() -> None:
    cfg = torch._dynamo.config
    # One code object per cell (see compile_cells) keeps each cell's cache small, but a
    # 3-layer bidirectional model in both grad modes still needs room; never fall back
    # to eager silently: a cell that cannot compile must fail and say so.
    for name, value in (("recompile_limit", 16), ("cache_size_limit", 16)):
        if hasattr(cfg, name):
            setattr(cfg, name, value)
    if hasattr(cfg, "fail_on_recompile_limit_hit"):
        cfg.fail_on_recompile_limit_hit = True


def compile_cells(model: nn.Module) -> nn.Module:
    """Compile the per-step function of every cell of a ScratchRNN, in place.

    Each cell gets its own copy of the step's code object, so Dynamo keeps a
    separate cache (and recompile budget) per cell instead of one shared one.
    """
    if not hasattr(model, "cells"):
        raise TypeError(f"compile_cells needs a scratch model, got {type(model).__name__}")
    _configure_dynamo()
    compiled_fns = []
    for _, cell in model.cells():
        code = _cell_step.__code__.replace(co_name=f"_cell_step_{next(_counter)}")
        fn = types.FunctionType(code, _cell_step.__globals__, code.co_name)
        compiled = torch.compile(fn, fullgraph=True, dynamic=None)

        def step_fn(weight_hh=None, *, _cell=cell, _compiled=compiled):
            return lambda xp, state: _compiled(_cell, weight_hh, xp, state)

        cell.step_fn = step_fn  # instance attribute: the layers call cell.step_fn()
        compiled_fns.append(code)
    model._bench_compiled_codes = compiled_fns  # type: ignore[attr-defined]
    return model


def compiled_graph_count(model: nn.Module) -> int | None:
    """How many graphs Dynamo holds for the model's cells (None if torch hides it)."""
    codes = getattr(model, "_bench_compiled_codes", None)
    if not codes:
        return None
    try:
        from torch._dynamo.eval_frame import _debug_get_cache_entry_list

        return sum(len(_debug_get_cache_entry_list(c)) for c in codes)
    except Exception:
        return None


def build_rnn(
    arch: str,
    impl: str,
    *,
    input_size: int,
    hidden_size: int,
    num_layers: int,
    bidirectional: bool,
    seed: int,
    dropout: float = 0.0,
) -> nn.Module:
    """The recurrent module of one cell, with weights drawn under ``seed``."""
    torch.manual_seed(seed)
    kwargs = dict(
        input_size=input_size,
        hidden_size=hidden_size,
        num_layers=num_layers,
        bidirectional=bidirectional,
        dropout=dropout,
    )
    ref = rnnsuite.build(arch, "scratch", **kwargs)
    if impl == "scratch":
        return ref
    if impl == "builtin":
        return rnnsuite.copy_weights(ref, rnnsuite.build(arch, "builtin", **kwargs))
    if impl == "compiled":
        return compile_cells(ref)
    raise ValueError(f"unknown implementation {impl!r}")
