"""The implementations the bench measures: ``scratch``, ``scratch_torch``, ``builtin``,
``compiled``.

``scratch`` and ``builtin`` come straight from ``rnnsuite.build``; ``scratch`` runs the
native whole-sequence loops where they built (rnnsuite.native: every scratch cell has one).
``scratch_torch`` is the same scratch model with those loops switched off, every step on
torch ops alone — the pure-PyTorch number beside the loops' one. ``compiled``
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

``transformer`` is the baseline beside the RNNs: a causal pre-norm
nn.TransformerEncoder (``CausalTransformer``), built-in only, taking the same
(T, B, I) batch as the RNN cells and returning (T, B, H) like them.
"""

from __future__ import annotations

import itertools
import types

import torch
from torch import nn

import rnnsuite
from rnnsuite.models.transformer import PositionalEncoding, _encoder, causal_mask

from . import archs

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
    # A drop-in twin's cell reads its parameters from its module, an nn.GRU/nn.LSTM
    # subclass, which Dynamo refuses to touch by default ("Attempted to wrap RNN, GRU, or
    # LSTM"); the compiled step only reads parameters from it, never runs its forward.
    if hasattr(cfg, "allow_rnn"):
        cfg.allow_rnn = True


def compile_cells(model: nn.Module) -> nn.Module:
    """Compile the per-step function of every cell of a scratch model, in place.

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
        cell.run_padded = lambda x, state: None  # the compiled step, not the eager fused path
        cell.manual = False  # nor the hand-written BPTT: autograd over the compiled step
        cell.native = False  # nor the native whole-sequence loops
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
    """The recurrent module of one cell, with weights drawn under ``seed``.

    ``transformer`` (built-in only, one direction) gives the causal Transformer baseline.
    """
    if not archs.get(arch).recurrent:  # the baseline: bench/archs.py
        if impl != "builtin" or bidirectional:
            raise ValueError(
                "the Transformer baseline is built-in and causal only: "
                f"got impl={impl!r}, bidirectional={bidirectional}"
            )
        return build_transformer(
            input_size=input_size,
            hidden_size=hidden_size,
            num_layers=num_layers,
            seed=seed,
            dropout=dropout,
        )
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
    if impl == "scratch_torch":
        for _, cell in ref.cells():
            cell.native = False
        return ref
    if impl == "builtin":
        return rnnsuite.copy_weights(ref, rnnsuite.build(arch, "builtin", **kwargs))
    if impl == "compiled":
        return compile_cells(ref)
    raise ValueError(f"unknown implementation {impl!r}")


def transformer_heads(hidden_size: int) -> int:
    """Attention heads of the bench Transformer: 64 features a head (H // 64), at least
    one, lowered until it divides H (H = 256 → 4 heads)."""
    heads = max(1, hidden_size // 64)
    while hidden_size % heads:
        heads -= 1
    return heads


class CausalTransformer(nn.Module):
    """The Transformer baseline of the throughput bench, behind the RNN cells' interface.

    (T, B, I) features → Linear I→H (only when I ≠ H) → sinusoidal positions →
    ``layers`` pre-norm nn.TransformerEncoder layers (d_model H, H // 64 heads, feed-forward
    4H, ReLU, no dropout unless asked; rnnsuite.models.transformer._encoder, so nested
    tensors are off) with a causal mask → final LayerNorm → (T, B, H). Returns
    ``(output, None)`` as an RNN returns (output, state). The encoder is batch-first (the
    layout its fused inference kernel takes), so the input is transposed in and out.
    """

    def __init__(
        self, input_size: int, hidden_size: int, num_layers: int, dropout: float = 0.0
    ) -> None:
        super().__init__()
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.num_heads = transformer_heads(hidden_size)
        self.proj = nn.Linear(input_size, hidden_size) if input_size != hidden_size else None
        self.pos = PositionalEncoding(hidden_size, max_len=4096)
        self.encoder = _encoder(hidden_size, self.num_heads, num_layers, None, dropout)
        self._masks: dict[tuple[int, str, torch.dtype], torch.Tensor] = {}

    def mask(self, steps: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        """The (T, T) causal mask, built once per length, device and dtype."""
        key = (steps, str(device), dtype)
        if key not in self._masks:
            self._masks[key] = causal_mask(steps, device=device, dtype=dtype)
        return self._masks[key]

    def forward(self, x: torch.Tensor, state: None = None) -> tuple[torch.Tensor, None]:
        if not isinstance(x, torch.Tensor) or x.dim() != 3:
            raise TypeError(
                "the Transformer baseline takes a padded (T, B, I) tensor, got "
                f"{type(x).__name__}{'' if not isinstance(x, torch.Tensor) else tuple(x.shape)}"
            )
        h = self.proj(x) if self.proj is not None else x
        h = self.pos(h.transpose(0, 1))  # (B, T, H)
        steps = h.shape[1]
        h = self.encoder(h, mask=self.mask(steps, h.device, h.dtype), is_causal=True)
        return h.transpose(0, 1), None


def build_transformer(
    *, input_size: int, hidden_size: int, num_layers: int, seed: int, dropout: float = 0.0
) -> CausalTransformer:
    """The Transformer baseline with weights drawn under ``seed``."""
    torch.manual_seed(seed)
    return CausalTransformer(input_size, hidden_size, num_layers, dropout)
