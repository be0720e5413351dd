"""What the bench knows about each architecture: one record per architecture, one table.

Every bench file reads this table instead of branching on an architecture's name: the
cost model (``flops``), what a cell may ask of it (matrix validation, ``cells``), how it
is built (``impls``), and how it is shown (``plots``, ``report``, ``quality``). The
recurrent architectures are rnnsuite's registry (``rnnsuite.ARCHITECTURES``); the
Transformer encoder is the bench's baseline beside them (``impls.build_transformer``).

The table is meant to move into ``rnnsuite.registry`` in one step: nothing outside this
file names an architecture's properties.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import rnnsuite

#: The implementations the bench adds to a scratch cell: native kernels off, and the
#: per-step function compiled (see impls.build_rnn).
SCRATCH_VARIANTS = ("scratch_torch", "compiled")


@dataclass(frozen=True)
class Arch:
    """One architecture as the bench sees it.

    ``gates`` and ``pointwise`` are the cost model of a recurrent cell (flops.py): G gate
    blocks in its two matrix multiplies, and E elementwise FLOPs per hidden unit and token.
    ``cost`` names the cost model ("recurrent" or "attention"). ``impls`` is None for a
    registry architecture (its implementations are the registry's plus SCRATCH_VARIANTS).
    ``packed``, ``bidirectional`` and ``weight_hh`` say what a cell may ask of it; a
    missing one is a matrix error whose reason is ``why[capability]``.
    """

    name: str
    marker: str = "o"  # plot marker of its lines
    gates: int = 0
    pointwise: int = 0
    cost: str = "recurrent"
    bar_rank: int | None = None  # position among the report's performance-bar archs
    impls: tuple[str, ...] | None = None
    packed: bool = True
    bidirectional: bool = True
    weight_hh: bool = True
    why: dict[str, str] = field(default_factory=dict)

    @property
    def recurrent(self) -> bool:
        return self.cost == "recurrent"

    def implementations(self) -> tuple[str, ...]:
        """The bench implementations it has (scratch_torch and compiled are variants of
        scratch)."""
        if self.impls is not None:
            return self.impls
        return (*rnnsuite.implementations_of(self.name), *SCRATCH_VARIANTS)


_TRANSFORMER = Arch(
    "transformer",
    cost="attention",
    impls=("builtin",),
    packed=False,
    bidirectional=False,
    weight_hh=False,
    why={
        "impl": "a Transformer has only the built-in implementation (nn.TransformerEncoder)",
        "bidirectional": "the Transformer baseline is causal, one direction only",
        "packed": (
            "a Transformer takes no PackedSequence (its padded cell masks the loss, and "
            "the causal mask keeps padding out of every valid position)"
        ),
        "weight_hh": "weight_drop (DropConnect on weight_hh) needs a recurrent weight",
    },
)

# Display order is table order (plots' x axes); the report's bars judge lstm, gru, rnn.
TABLE: dict[str, Arch] = {
    a.name: a
    for a in (
        Arch("rnn", marker="^", gates=1, pointwise=3, bar_rank=2),
        Arch("lstm", marker="o", gates=4, pointwise=14, bar_rank=0),
        Arch("lstm_peephole", marker="D", gates=4, pointwise=20),
        Arch("gru", marker="s", gates=3, pointwise=14, bar_rank=1),
        Arch("gru_cho", marker="v", gates=3, pointwise=10),
        _TRANSFORMER,
    )
}

#: Baselines: architectures the bench adds beside rnnsuite's registry.
BASELINES: tuple[str, ...] = tuple(n for n, a in TABLE.items() if not a.recurrent)
#: Every architecture a matrix may name: the registry's, then the baselines.
NAMES: tuple[str, ...] = (*rnnsuite.ARCHITECTURES, *BASELINES)
#: Plot order.
ORDER: tuple[str, ...] = tuple(TABLE)
#: The architectures the report's performance bars judge, in their table order.
BAR_ARCHS: tuple[str, ...] = tuple(
    sorted((n for n, a in TABLE.items() if a.bar_rank is not None), key=lambda n: TABLE[n].bar_rank)
)
#: Plot markers by architecture.
MARKERS: dict[str, str] = {n: a.marker for n, a in TABLE.items() if a.recurrent}


def get(name: str) -> Arch:
    """The record of ``name``; a registry architecture without one is a clear error."""
    try:
        return TABLE[name]
    except KeyError:
        raise KeyError(
            f"architecture {name!r} has no bench record: add an Arch(...) for it to "
            "bench/archs.py (its gates, pointwise count and marker)"
        ) from None


def is_baseline(name: str) -> bool:
    return name in BASELINES
