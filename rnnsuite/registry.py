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
from .cells import Cell, ChoGRUCell, ElmanCell, GRUCell, LSTMCell, PeepholeLSTMCell
from .network import ScratchRNN


@dataclass(frozen=True)
class Architecture:
    name: str
    cell: type[Cell]
    builtin: type[nn.RNNBase] | None
    summary: str
    options: frozenset[str] = field(default_factory=frozenset)

    @property
    def implementations(self) -> tuple[str, ...]:
        return ("scratch", "builtin") if self.builtin is not None else ("scratch",)


_ENTRIES = (
    Architecture(
        "rnn", ElmanCell, BuiltinRNN, "Elman RNN, tanh (or relu)", frozenset({"nonlinearity"})
    ),
    Architecture("lstm", LSTMCell, BuiltinLSTM, "LSTM, fused gates, no peepholes"),
    Architecture(
        "lstm_peephole", PeepholeLSTMCell, None, "LSTM with peepholes (Element-Research nn.LSTM)"
    ),
    Architecture("gru", GRUCell, BuiltinGRU, "GRU, torch/cuDNN candidate r ⊙ (W_hn h + b_hn)"),
    Architecture("gru_cho", ChoGRUCell, None, "GRU, Cho et al./d2l candidate W_hn (r ⊙ h)"),
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
    **arch_options: object,
) -> nn.Module:
    """Build `arch` in implementation `impl`; call it as ``out, state = m(x, state)``."""
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
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if not 0.0 <= float(dropout) < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
    common = dict(
        input_size=input_size,
        hidden_size=hidden_size,
        num_layers=num_layers,
        bias=bias,
        batch_first=batch_first,
        dropout=float(dropout),
        bidirectional=bidirectional,
    )
    if impl == "builtin":
        assert spec.builtin is not None
        return spec.builtin(**common, **arch_options)
    return ScratchRNN(arch, spec.cell, **common, **arch_options)
