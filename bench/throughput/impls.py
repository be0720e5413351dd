"""The implementations the bench measures, built by the library: one builder table.

``rnnsuite.build`` makes every implementation (``scratch``, ``scratch_torch``,
``compiled``, ``builtin``) of every registered architecture, the Transformer baseline
and a plugin's included; the bench only fixes the weights. Every implementation of a
cell starts from the same weights: the scratch implementations are built under the
cell's seed (they draw alike), and a built-in with a scratch twin gets the twin's
weights copied in (torch's own draws differ); a baseline without a scratch twin is built
under the seed.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

import rnnsuite
from rnnsuite.compiled import compiled_graph_count  # noqa: F401  (re-exported for measure)


def _scratch_twin_weights(arch: str, impl: str, **kwargs) -> nn.Module:
    """A built-in with the weights its scratch twin draws under the current seed."""
    ref = rnnsuite.build(arch, "scratch", **kwargs)
    return rnnsuite.copy_weights(ref, rnnsuite.build(arch, impl, **kwargs))


def _as_drawn(arch: str, impl: str, **kwargs) -> nn.Module:
    return rnnsuite.build(arch, impl, **kwargs)


def builder(arch: str, impl: str) -> Callable[..., nn.Module]:
    """How (arch, impl) gets its weights: the builder table's row."""
    spec = rnnsuite.architecture(arch)
    if impl == "builtin" and spec.scratch is not None:
        return _scratch_twin_weights
    return _as_drawn


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
    """The sequence module of one cell, with weights drawn under ``seed``."""
    torch.manual_seed(seed)
    return builder(arch, impl)(
        arch,
        impl,
        input_size=input_size,
        hidden_size=hidden_size,
        num_layers=num_layers,
        bidirectional=bidirectional,
        dropout=dropout,
    )
