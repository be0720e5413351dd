"""What the throughput report judges and matches on: the performance bars, their shapes,
and the few architecture names the report's sentences still spell out.

Every module of the report reads these as ``spec.NAME`` at call time, so a test can
patch one (``monkeypatch.setattr(bench.report.spec, "BAR_SPEC", ...)``).
"""

from __future__ import annotations

from .. import archs
from ..throughput.axes import BUILTIN_SIZES, DOC_SIZES

# What the report says of architectures comes from their registry records (bench/archs.py),
# read when asked, so a plugin's architecture is in them:
#   VARIANT_OF          a scratch-only cell → the scratch cell it is held to (within 10%)
#   BAR_ARCHS           the architectures the bars judge, in their table order
#   FLOP_FRACTION_ARCH  the one the FLOP-fraction-by-shape finding names beside the median
#   FLOP_FRACTION_OVER  the architectures that median is over, as the finding words it
_FROM_REGISTRY = {
    "VARIANT_OF": archs.variants,
    "BAR_ARCHS": archs.bar_archs,
    "FLOP_FRACTION_ARCH": lambda: archs.bar_archs()[0],
    "FLOP_FRACTION_OVER": lambda: "/".join(archs.bar_archs()),
}


def __getattr__(name: str):
    if name in _FROM_REGISTRY:
        return _FROM_REGISTRY[name]()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# The performance bars, as (label, mode, input, threshold, shapes): shapes None is the bar
# shape (BAR_SPEC, one layer); "docs" the documents' shapes, each at its own layer count.
BARS = (
    ("scratch fwd+bwd ≥ 1.0× built-in (padded)", "train", "padded", 1.0, None),
    ("scratch forward ≥ 0.8× built-in (padded)", "fwd", "padded", 0.8, None),
    ("scratch packed fwd+bwd ≥ 1.0× built-in packed", "train", "packed", 1.0, None),
    (
        "scratch ≥ 1.0× built-in at the documents' shapes: fwd+bwd, padded",
        "train",
        "padded",
        1.0,
        "docs",
    ),
    (
        "scratch ≥ 1.0× built-in at the documents' shapes: forward, padded",
        "fwd",
        "padded",
        1.0,
        "docs",
    ),
    (
        "scratch ≥ 1.0× built-in at the documents' shapes: fwd+bwd, packed",
        "train",
        "packed",
        1.0,
        "docs",
    ),
    (
        "scratch ≥ 1.0× built-in at the documents' shapes: forward, packed",
        "fwd",
        "packed",
        1.0,
        "docs",
    ),
)
BAR_SPEC = "T64-B64-I256-H256"
#: the documents' shapes as cell specs, with their layer counts (bench/axes.py DOC_SIZES)
DOC_SPECS = {BUILTIN_SIZES[name].spec: layers for name, layers in DOC_SIZES.items()}
HARNESS_BAR = 0.02

#: the columns a transformer cell and its RNN built-ins must share to stand side by side
TRANSFORMER_MATCH = ["spec", "lengths", "threads", "device", "seed", "layers", "reg", "optimizer"]
#: the columns a scratch-only variant and its scratch twin must share
VARIANT_MATCH = ["spec", "lengths", "threads", "device", "seed", "layers", "input", "reg"]
