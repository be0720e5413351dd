"""The one registry of architectures, and the `build` factory.

An architecture's record is the only place that knows it: its scratch network (and so
its cell), its torch built-in twin (or None), its cost model (the gates its cell declares
and a declared count of pointwise FLOPs, or a model that counts its own), what it
supports (implementations, packed input, a reverse direction, a ``weight_hh`` for weight
drop, its state), and how reports show it (display order is registration order, a plot
marker, whether the performance bars judge it, the architecture it is a variant of). The
bench, the recipes and the tests read this table; none of them names an architecture's
properties.

A user's own architecture joins with one call, ``rnnsuite.register(Architecture(...))``
(see examples/custom_cell.py): a Cell subclass alone is enough (it gets a ScratchRNN
network); it is then built, benchmarked and reported like the shipped ones.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from torch import nn

from .builtin import BuiltinGRU, BuiltinLSTM, BuiltinRNN
from .cells import Cell
from .models.transformer import CausalTransformer
from .network import GRU, LSTM, RNN, ChoGRU, PeepholeLSTM, ScratchRNN, ScratchRNNBase

#: every implementation `build` knows: the scratch model (native whole-sequence loops where
#: they build), the same model on torch ops alone, the same model with each cell's step
#: compiled by torch.compile, and torch's own module
IMPLEMENTATIONS: tuple[str, ...] = ("scratch", "scratch_torch", "compiled", "builtin")
#: the implementations every scratch architecture has
SCRATCH_IMPLEMENTATIONS: tuple[str, ...] = ("scratch", "scratch_torch", "compiled")
COSTS = ("recurrent", "attention")
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


@dataclass(frozen=True)
class Architecture:
    """One architecture. ``scratch`` is its scratch network (a ScratchRNNBase subclass, or
    a Cell subclass, which `register` wraps in a ScratchRNN) or None for a baseline that
    has only its built-in (the Transformer); ``builtin`` its torch module or None.

    Cost model (``forward_flops``): a recurrent cell with G = ``cell.gates`` gate blocks
    does 2·G·H·(I_l + H) FLOPs a token in its two matrix multiplies plus ``pointwise``·H
    elementwise ones (a sigmoid or tanh counts one); ``cost = "attention"`` asks the
    built-in's own ``forward_flops``. ``why`` names, per missing capability ("impl",
    "packed", "bidirectional", "weight_hh"), the reason a matrix error gives."""

    name: str
    scratch: type[ScratchRNNBase] | None
    builtin: type[nn.Module] | None
    summary: str
    options: frozenset[str] = field(default_factory=frozenset)
    pointwise: int = 0
    cost: str = "recurrent"
    marker: str = "o"
    bar_rank: int | None = None  # position among the archs the performance bars judge
    variant_of: str | None = None  # the architecture its report compares it with
    packed: bool = True
    bidirectional: bool = True
    why: Mapping[str, str] = field(default_factory=dict)

    @property
    def cell(self) -> type[Cell]:
        if self.scratch is None:
            raise TypeError(f"{self.name!r} is a baseline without a scratch cell")
        return self.scratch.cell_type

    @property
    def recurrent(self) -> bool:
        return self.cost == "recurrent"

    @property
    def gates(self) -> int:
        return self.cell.gates if self.scratch is not None else 0

    @property
    def weight_hh(self) -> bool:
        """Whether it has a recurrent weight (weight drop's DropConnect needs one)."""
        return self.scratch is not None

    @property
    def state_size(self) -> int:
        """1: the state is h; 2: (h, c); 0: none (the baseline returns None)."""
        return self.scratch.state_size if self.scratch is not None else 0

    @property
    def implementations(self) -> tuple[str, ...]:
        own = SCRATCH_IMPLEMENTATIONS if self.scratch is not None else ()
        return (*own, "builtin") if self.builtin is not None else own

    def forward_flops(
        self, *, T: int, B: int, I: int, H: int, layers: int, bidirectional: bool, tokens: int
    ) -> int:
        """FLOPs of one forward pass over `tokens` computed (step, sequence) pairs of a
        (T, B, I) batch (T·B when padded: the padding is computed too)."""
        if not self.recurrent:
            return int(self.builtin.forward_flops(T=T, B=B, I=I, H=H, layers=layers))
        dirs = 2 if bidirectional else 1
        total = 0
        for k in range(layers):
            size_in = I if k == 0 else H * dirs
            total += dirs * tokens * (2 * self.gates * H * (size_in + H) + self.pointwise * H)
        return int(total)


_TRANSFORMER_WHY = {
    "impl": "a Transformer has only the built-in implementation (nn.TransformerEncoder)",
    "bidirectional": "the Transformer baseline is causal, one direction only",
    "packed": (
        "a Transformer takes no PackedSequence (its padded cell masks the loss, and "
        "the causal mask keeps padding out of every valid position)"
    ),
    "weight_hh": "weight_drop (DropConnect on weight_hh) needs a recurrent weight",
}

_REGISTRY: dict[str, Architecture] = {}
#: read-only view of every registered architecture, in display order
REGISTRY: Mapping[str, Architecture] = MappingProxyType(_REGISTRY)


def register(arch: Architecture, *, replace: bool = False) -> Architecture:
    """Add an architecture (a user's own included); returns its record as stored.

    Checked here, with the fix named: the name (lower-case, digits, '_'), not taken unless
    ``replace``, a scratch network or cell, a built-in module class, a known cost model."""
    if not isinstance(arch, Architecture):
        raise TypeError(f"register takes an rnnsuite.Architecture, got {type(arch).__name__}")
    if not _NAME.match(arch.name):
        raise ValueError(
            f"architecture name {arch.name!r}: use lower-case letters, digits and '_', "
            "starting with a letter (at most 40)"
        )
    if arch.name in _REGISTRY and not replace:
        raise ValueError(
            f"architecture {arch.name!r} is already registered; pick another name, or pass "
            "replace=True to redefine it"
        )
    if arch.cost not in COSTS:
        raise ValueError(f"cost {arch.cost!r}: choose one of {', '.join(COSTS)}")
    scratch = arch.scratch
    if isinstance(scratch, type) and issubclass(scratch, Cell) and scratch is not Cell:
        scratch = type(
            scratch.__name__.removesuffix("Cell") or f"{scratch.__name__}Network",
            (ScratchRNN,),
            {"arch": arch.name, "cell_type": scratch, "state_size": scratch.state_size,
             "__module__": scratch.__module__},
        )  # fmt: skip
        arch = _replace(arch, scratch=scratch)
    if scratch is not None and not (
        isinstance(scratch, type) and issubclass(scratch, ScratchRNNBase)
    ):
        raise TypeError(
            f"{arch.name}: scratch must be a Cell subclass or an rnnsuite ScratchRNNBase "
            f"subclass, got {scratch!r}"
        )
    if arch.builtin is not None and not (
        isinstance(arch.builtin, type) and issubclass(arch.builtin, nn.Module)
    ):
        raise TypeError(f"{arch.name}: builtin must be an nn.Module subclass or None")
    if scratch is None and arch.builtin is None:
        raise ValueError(f"{arch.name}: give a scratch cell or network, a builtin, or both")
    if not arch.recurrent and not hasattr(arch.builtin, "forward_flops"):
        raise TypeError(f"{arch.name}: cost 'attention' needs a builtin with forward_flops()")
    _REGISTRY[arch.name] = arch
    return arch


def unregister(name: str) -> None:
    """Remove an architecture (tests, or a plugin that redefines one)."""
    _REGISTRY.pop(name, None)


def _replace(arch: Architecture, **changes) -> Architecture:
    from dataclasses import replace

    return replace(arch, **changes)


for _entry in (
    Architecture(
        "rnn", RNN, BuiltinRNN, "Elman RNN, tanh (or relu)", frozenset({"nonlinearity"}),
        pointwise=3, marker="^", bar_rank=2,
    ),
    Architecture(
        "lstm", LSTM, BuiltinLSTM, "LSTM, fused gates, no peepholes", frozenset({"proj_size"}),
        pointwise=14, marker="o", bar_rank=0,
    ),
    Architecture(
        "lstm_peephole", PeepholeLSTM, None, "LSTM with peepholes (Element-Research nn.LSTM)",
        pointwise=20, marker="D", variant_of="lstm",
    ),
    Architecture(
        "gru", GRU, BuiltinGRU, "GRU, torch/cuDNN candidate r ⊙ (W_hn h + b_hn)",
        pointwise=14, marker="s", bar_rank=1,
    ),
    Architecture(
        "gru_cho", ChoGRU, None, "GRU, Cho et al./d2l candidate W_hn (r ⊙ h)",
        pointwise=10, marker="v", variant_of="gru",
    ),
    Architecture(
        "transformer", None, CausalTransformer, "Transformer baseline (causal, pre-norm)",
        cost="attention", packed=False, bidirectional=False, why=_TRANSFORMER_WHY,
    ),
):  # fmt: skip
    register(_entry)

#: the recurrent architectures rnnsuite ships (each from scratch, proven equal to its
#: built-in where torch has one); architectures() gives the live list, a user's included
ARCHITECTURES: tuple[str, ...] = tuple(n for n, a in _REGISTRY.items() if a.recurrent)


def architectures(*, recurrent: bool | None = None) -> tuple[str, ...]:
    """Every registered architecture's name in display order (a user's own included);
    ``recurrent=True`` the RNNs only, ``False`` the baselines only."""
    return tuple(n for n, a in _REGISTRY.items() if recurrent is None or a.recurrent == recurrent)


def architecture(arch: str) -> Architecture:
    """Look an architecture up, or raise a ValueError listing the known ones."""
    try:
        return _REGISTRY[arch]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown architecture {arch!r}; choose one of {', '.join(_REGISTRY)} (or "
            "register your own: rnnsuite.register, see examples/custom_cell.py)"
        ) from None


def implementations_of(arch: str) -> tuple[str, ...]:
    return architecture(arch).implementations


def _check_dims(input_size, hidden_size, num_layers, dropout) -> None:
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


def _check_impl(spec: Architecture, impl: str) -> None:
    if impl not in IMPLEMENTATIONS:
        raise ValueError(
            f"unknown implementation {impl!r}; choose one of {', '.join(IMPLEMENTATIONS)}"
        )
    if impl == "builtin" and spec.builtin is None:
        have = [a.name for a in _REGISTRY.values() if a.builtin is not None]
        raise ValueError(
            f"architecture {spec.name!r} has no torch built-in; use impl='scratch', or pick "
            f"one that has: {', '.join(have)}"
        )
    if impl not in spec.implementations:
        raise ValueError(
            f"architecture {spec.name!r} has only {', '.join(spec.implementations)}; "
            f"got impl={impl!r}"
        )


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

    ``scratch``: rnnsuite's network (rnnsuite.LSTM ... or a user's); ``scratch_torch``: the
    same with the native loops off (torch ops alone, ``use_native(False)``); ``compiled``:
    the same with each cell's step compiled by torch.compile (``compile_steps()``);
    ``builtin``: torch's module. All take torch's constructor arguments, and the three
    scratch ones draw the same weights under the same seed."""
    spec = architecture(arch)
    _check_impl(spec, impl)
    unknown = set(arch_options) - spec.options
    if unknown:
        allowed = ", ".join(sorted(spec.options)) or "none"
        raise TypeError(
            f"{arch!r} does not take option(s) {', '.join(sorted(unknown))}; its options: {allowed}"
        )
    _check_dims(input_size, hidden_size, num_layers, dropout)
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
    if impl == "builtin":
        assert spec.builtin is not None
        return spec.builtin(**common, **arch_options)
    assert spec.scratch is not None
    model = spec.scratch(**common, **arch_options)
    if impl == "scratch_torch":
        return model.use_native(False)
    if impl == "compiled":
        return model.compile_steps()
    return model
