"""copy_weights: move parameters between implementations of one architecture.

Both sides are read under torch's parameter names (``weight_ih_l0_reverse``
...), so scratch→built-in, built-in→scratch and scratch→scratch all work, and
any mismatch — architecture, options, layer count, direction, size — is
refused before a single tensor is written.
"""

from __future__ import annotations

import torch
from torch import nn

from .network import ScratchRNNBase


def _torch_base(cls: type) -> type:
    """The torch.nn class a registered built-in is (BuiltinLSTM → nn.LSTM)."""
    return next(b for b in cls.__mro__ if b.__module__.startswith("torch.nn"))


def _unwrap(module: nn.Module) -> nn.Module:
    inner = getattr(module, "rnnsuite_inner", None)  # wrappers (WeightDrop, Stateful) expose this
    return _unwrap(inner) if isinstance(inner, nn.Module) else module


def _arch_of(module: nn.Module) -> str:
    arch = getattr(module, "arch", None)
    if isinstance(arch, str):
        return arch
    from .registry import REGISTRY

    for name, spec in REGISTRY.items():  # a plain torch module: the recurrent built-ins'
        if (
            spec.recurrent
            and spec.builtin is not None
            and isinstance(module, _torch_base(spec.builtin))
        ):
            return name
    raise TypeError(
        f"{type(module).__name__} is not a recurrent module rnnsuite knows; pass a module made "
        "by rnnsuite.build or a torch nn.RNN/nn.LSTM/nn.GRU"
    )


def _twin_of(arch: str, module: nn.Module) -> bool:
    """Whether `module` is `arch`'s registered built-in twin (a plugin's: its own cell
    with torch.nn.RNN as twin, say)."""
    from .registry import REGISTRY

    spec = REGISTRY.get(arch)
    return spec is not None and spec.builtin is not None and isinstance(module, spec.builtin)


def _maths(module: nn.Module) -> str:
    """Options that change the maths without changing parameter shapes."""
    return str(getattr(module, "nonlinearity", "tanh"))


def canonical_parameters(module: nn.Module) -> dict[str, nn.Parameter]:
    module = _unwrap(module)
    if isinstance(module, ScratchRNNBase):
        return module.canonical_parameters()
    _arch_of(module)  # raises a clear error for anything else
    return dict(module.named_parameters())


def copy_weights(src: nn.Module, dst: nn.Module) -> nn.Module:
    """Copy every parameter of src into dst (same architecture and shapes); returns dst."""
    src, dst = _unwrap(src), _unwrap(dst)
    a_src, a_dst = _arch_of(src), _arch_of(dst)
    if a_src != a_dst and not (_twin_of(a_src, dst) or _twin_of(a_dst, src)):
        raise ValueError(
            f"cannot copy weights from a {a_src!r} module into a {a_dst!r} module: "
            "build both with the same architecture"
        )
    if _maths(src) != _maths(dst):
        raise ValueError(
            f"nonlinearity differs ({_maths(src)!r} vs {_maths(dst)!r}); build both alike"
        )
    p_src, p_dst = canonical_parameters(src), canonical_parameters(dst)
    if p_src.keys() != p_dst.keys():
        only_src = sorted(p_src.keys() - p_dst.keys())
        only_dst = sorted(p_dst.keys() - p_src.keys())
        raise ValueError(
            "modules differ in layers, directions or bias: only in source "
            f"{only_src or '-'}, only in destination {only_dst or '-'}; build both with the "
            "same num_layers, bidirectional and bias"
        )
    bad = [
        f"{k}: {tuple(p_src[k].shape)} vs {tuple(p_dst[k].shape)}"
        for k in p_src
        if p_src[k].shape != p_dst[k].shape
    ]
    if bad:
        raise ValueError(
            "parameter shapes differ (build both with the same input_size and hidden_size): "
            + "; ".join(bad)
        )
    with torch.no_grad():
        for k, p in p_dst.items():
            p.copy_(p_src[k])
    if hasattr(dst, "flatten_parameters"):
        dst.flatten_parameters()
    return dst
