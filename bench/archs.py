"""The bench's view of rnnsuite's registry: the one place that knows an architecture.

Every bench file asks here instead of branching on an architecture's name: the cost model
(``flops``), what a cell may ask of it (matrix validation, ``cells``), how it is built
(``impls``), and how it is shown (``plots``, ``report``, ``quality``). The records are
``rnnsuite.Architecture``s (rnnsuite/registry.py), the Transformer baseline's included,
and a plugin's (``--plugin``, bench/plugins.py) join them when it is imported, so the
names below are read from the registry each time they are asked for, never copied.
"""

from __future__ import annotations

import rnnsuite
from rnnsuite import Architecture

Arch = Architecture  # the record's name in bench code


def get(name: str) -> Architecture:
    """The record of ``name``; an unknown one is a ValueError naming the known ones."""
    return rnnsuite.architecture(name)


def names() -> tuple[str, ...]:
    """Every architecture a matrix may name, in display order (plots' x axes)."""
    return rnnsuite.architectures()


def baselines() -> tuple[str, ...]:
    """The architectures beside the RNNs (the Transformer)."""
    return rnnsuite.architectures(recurrent=False)


def bar_archs() -> tuple[str, ...]:
    """The architectures the report's performance bars judge, in their table order."""
    ranked = [(a.bar_rank, n) for n, a in rnnsuite.REGISTRY.items() if a.bar_rank is not None]
    return tuple(n for _, n in sorted(ranked))


def markers() -> dict[str, str]:
    """Plot markers of the recurrent architectures."""
    return {n: a.marker for n, a in rnnsuite.REGISTRY.items() if a.recurrent}


def variants() -> dict[str, str]:
    """Each architecture that is a variant of another (lstm_peephole → lstm)."""
    return {n: a.variant_of for n, a in rnnsuite.REGISTRY.items() if a.variant_of}


def is_baseline(name: str) -> bool:
    return name in baselines()


_LIVE = {
    "NAMES": names,
    "ORDER": names,
    "BASELINES": baselines,
    "BAR_ARCHS": bar_archs,
    "MARKERS": markers,
    "VARIANT_OF": variants,
}


def __getattr__(name: str):
    """NAMES, ORDER, BASELINES, BAR_ARCHS, MARKERS, VARIANT_OF: read from the registry
    when asked (so a plugin registered after import is in them)."""
    if name in _LIVE:
        return _LIVE[name]()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
