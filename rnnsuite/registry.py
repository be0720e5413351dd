"""The one registry of architectures and the `build` factory.

Each entry names its scratch cell, its torch built-in (or None where torch has
none) and the extra options it accepts. Everything else — the runner, the
bench, the tests — loops over this table, so adding an architecture is one
cell file plus one entry here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import nn

from .builtin import BuiltinGRU, BuiltinLSTM, BuiltinRNN
from .cells import Cell
from .network import GRU, LSTM, RNN, ChoGRU, PeepholeLSTM, ScratchRNNBase


@dataclass(frozen=True)
class Architecture:
    name: str
    scratch: type[ScratchRNNBase]
    builtin: type[nn.RNNBase] | None
    summary: str
    options: frozenset[str] = field(default_factory=frozenset)

    @property
    def cell(self) -> type[Cell]:
        return self.scratch.cell_type

    @property
    def implementations(self) -> tuple[str, ...]:
        return ("scratch", "builtin") if self.builtin is not None else ("scratch",)


_ENTRIES = (
    Architecture("rnn", RNN, BuiltinRNN, "Elman RNN, tanh (or relu)", frozenset({"nonlinearity"})),
    Architecture(
        "lstm", LSTM, BuiltinLSTM, "LSTM, fused gates, no peepholes", frozenset({"proj_size"})
    ),
    Architecture(
        "lstm_peephole", PeepholeLSTM, None, "LSTM with peepholes (Element-Research nn.LSTM)"
    ),
    Architecture("gru", GRU, BuiltinGRU, "GRU, torch/cuDNN candidate r ⊙ (W_hn h + b_hn)"),
    Architecture("gru_cho", ChoGRU, None, "GRU, Cho et al./d2l candidate W_hn (r ⊙ h)"),
)

REGISTRY: dict[str, Architecture] = {a.name: a for a in _ENTRIES}
ARCHITECTURES: tuple[str, ...] = tuple(REGISTRY)
IMPLEMENTATIONS: tuple[str, ...] = ("scratch", "builtin")


def architecture(arch: str) -> Architecture:
    """Look an architecture up, or raise a ValueError listing the known ones."""
    try:
        return REGISTRY[arch]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown architecture {arch!r}; choose one of {', '.join(ARCHITECTURES)}"
        ) from None


def implementations_of(arch: str) -> tuple[str, ...]:
    return architecture(arch).implementations


def build(
    arch: str,
    impl: str = "scratch",
    *,
    input_size: int,
    hidden_size: int,
    num_layers: int = 1,
    bidirectional: bool = False,
    batch_first: bool = False,
    dropout: float = 0.0,
    bias: bool = True,
    device: object = None,
    dtype: object = None,
    **arch_options: object,
) -> nn.Module:
    """Build `arch` in implementation `impl`; call it as ``out, state = m(x, state)``.

    Scratch: an rnnsuite.RNN / LSTM / GRU (or a scratch-only twin), built-in: torch's
    module; both take torch's constructor arguments."""
    spec = architecture(arch)
    if impl not in IMPLEMENTATIONS:
        raise ValueError(
            f"unknown implementation {impl!r}; choose one of {', '.join(IMPLEMENTATIONS)}"
        )
    if impl == "builtin" and spec.builtin is None:
        have = [a.name for a in _ENTRIES if a.builtin is not None]
        raise ValueError(
            f"architecture {arch!r} has no torch built-in; use impl='scratch', or pick one "
            f"that has: {', '.join(have)}"
        )
    unknown = set(arch_options) - spec.options
    if unknown:
        allowed = ", ".join(sorted(spec.options)) or "none"
        raise TypeError(
            f"{arch!r} does not take option(s) {', '.join(sorted(unknown))}; its options: {allowed}"
        )
    for name, value in (
        ("input_size", input_size),
        ("hidden_size", hidden_size),
        ("num_layers", num_layers),
    ):  # torch's exception types, rnnsuite's messages
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{name} must be an integer, got {value!r}")
        if value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if isinstance(dropout, bool) or not 0.0 <= float(dropout) <= 1.0:
        raise ValueError(f"dropout must be a number in [0, 1], got {dropout!r}")
    common = dict(
        input_size=input_size,
        hidden_size=hidden_size,
        num_layers=num_layers,
        bias=bias,
        batch_first=batch_first,
        dropout=float(dropout),
        bidirectional=bidirectional,
        device=device,
        dtype=dtype,
    )
    cls = spec.scratch if impl == "scratch" else spec.builtin
    assert cls is not None
    return cls(**common, **arch_options)
