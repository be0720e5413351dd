"""The throughput matrix language: its cell keys (axes) and measurement settings with
their checks, the workload sizes, and the Matrix and Block a matrix file loads into.

bench/matrix.py parses and validates a file into these; bench/cells.py expands a Matrix
into cells. Neither imports the other's caller: this module imports neither.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import archs
from ..study import StudyError

IMPLS = ("scratch", "scratch_torch", "builtin", "compiled")
DEVICES = ("auto", "cpu", "cuda", "mps")
INPUTS = ("padded", "packed")
REGULARIZERS = (
    "none",
    "weight_drop",
    "locked_dropout",
    "embedding_dropout",
    "ar_tar",
    "awd",  # all of the above together, AWD-LSTM style
)
LENGTHS = ("full", "uniform", "agnews")
OPTIMIZERS = ("none", "sgd", "adam")


@dataclass(frozen=True)
class Size:
    """A workload shape: T steps, B sequences, I input features, H hidden units."""

    name: str
    T: int
    B: int
    I: int
    H: int

    @property
    def spec(self) -> str:
        return f"T{self.T}-B{self.B}-I{self.I}-H{self.H}"


def _size(name: str, T: int, B: int, I: int, H: int) -> Size:
    return Size(name, T, B, I, H)


# PyTorch's fastrnns default (benchmarks/fastrnns: seqLength 100, miniBatch 64,
# inputSize = hiddenSize = 512) and DeepBench-like RNN training shapes (Baidu
# DeepBench's LSTM/GRU table: hidden 512..2048, batch 16..128, 25..50 steps).
BUILTIN_SIZES: dict[str, Size] = {
    s.name: s
    for s in (
        _size("tiny", 8, 4, 16, 16),
        _size("small", 32, 32, 128, 128),
        _size("bars", 64, 64, 256, 256),
        _size("fastrnns", 100, 64, 512, 512),
        _size("deepbench_h512_b16_t25", 25, 16, 512, 512),
        _size("deepbench_h512_b64_t25", 25, 64, 512, 512),
        _size("deepbench_h1024_b32_t25", 25, 32, 1024, 1024),
        _size("deepbench_h1024_b64_t50", 50, 64, 1024, 1024),
        _size("deepbench_h2048_b32_t25", 25, 32, 2048, 2048),
        _size("deepbench_h1536_b16_t50", 50, 16, 1536, 1536),
        # the shapes the five documents train at (../shared/REFERENCE.md), and a
        # fastrnns-like small one; DOC_SIZES gives each its layer count
        _size("doc_agnews", 50, 16, 64, 32),
        _size("doc_human_numbers", 16, 64, 64, 64),
        _size("doc_ptb", 35, 20, 200, 200),
        _size("doc_time_machine", 32, 1024, 28, 32),
        _size("doc_seq2seq", 9, 128, 256, 256),
        _size("fastrnns_small", 35, 32, 128, 128),
    )
}
#: the documents' shapes (plus fastrnns_small) with the layer count each trains at: the
#: block of the bar "scratch ≥ 1.0× built-in at the documents' shapes"
DOC_SIZES: dict[str, int] = {
    "doc_agnews": 1,
    "doc_human_numbers": 2,
    "doc_ptb": 2,
    "doc_time_machine": 1,
    "doc_seq2seq": 2,
    "fastrnns_small": 1,
}
_SPEC = re.compile(r"^T(\d+)-B(\d+)-I(\d+)-H(\d+)$")
_SIZE_LIMIT = {"T": 100_000, "B": 65_536, "I": 65_536, "H": 65_536}


class MatrixError(StudyError):
    """A matrix file that cannot be used; the message names the file and the key."""

    def __init__(self, source: str, key: str, message: str) -> None:
        self.source, self.key = source, key
        super().__init__(f"{source}: {key}: {message}" if key else f"{source}: {message}")


# -- keys ------------------------------------------------------------------------------
def _choice(choices: tuple[str, ...]):
    def check(v: Any) -> str:
        if not isinstance(v, str) or v not in choices:
            raise ValueError(f"unknown value {v!r}; choose one of {', '.join(choices)}")
        return v

    return check


def _arch(v: Any) -> str:
    # the registry's names when asked (a plugin's included): bench/archs.py
    return _choice(archs.names())(v)


def _int(lo: int, hi: int):
    def check(v: Any) -> int:
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            raise ValueError(f"must be an integer in {lo}..{hi}, got {v!r}")
        return v

    return check


def _bool(v: Any) -> bool:
    if not isinstance(v, bool):
        raise ValueError(f"must be true or false, got {v!r}")
    return v


def _size_name(v: Any) -> str:
    if not isinstance(v, str) or not v:
        raise ValueError(f"a size is a name or 'T64-B64-I256-H256', got {v!r}")
    return v


#: a timed sample's least length in milliseconds, filled with consecutive calls
DEFAULT_BLOCK_MS = 10

# Keys that can be an axis (a list) or fixed (a scalar), and their defaults.
CELL_KEYS: dict[str, tuple[Any, Any]] = {
    "arch": (_arch, "lstm"),
    "impl": (_choice(IMPLS), "scratch"),
    "device": (_choice(DEVICES), "auto"),
    "input": (_choice(INPUTS), "padded"),
    "layers": (_int(1, 16), 1),
    "bidirectional": (_bool, False),
    "reg": (_choice(REGULARIZERS), "none"),
    "size": (_size_name, "bars"),
    "lengths": (_choice(LENGTHS), "full"),
    "optimizer": (_choice(OPTIMIZERS), "none"),
    "threads": (_int(0, 1024), 0),  # torch.set_num_threads for the cell; 0: the default
}
# Measurement settings: fixed only; not part of a cell's identity.
SETTING_KEYS: dict[str, tuple[Any, Any]] = {
    "warmup": (_int(0, 1000), 2),
    "repeats": (_int(1, 10_000), 7),
    "det_steps": (_int(1, 100), 3),
    "timing": (_bool, True),
    "budget_s": (_int(0, 86_400), 0),  # stop timing a group after this long (>= 3 repeats)
    # a timed sample: consecutive calls filling this many ms (0: one call; see timing.py)
    "block_ms": (_int(0, 10_000), DEFAULT_BLOCK_MS),
}
TOP_KEYS = ("name", "description", "seeds", "fixed", "sizes", "axes", "blocks", "exclude")
BLOCK_KEYS = ("name", "axes", "fixed", "exclude", "seeds")
# Fields a -k expression can compare (key=value); see cells.Cell.fields.
FIELDS = (*CELL_KEYS, "seed", "block", "T", "B", "I", "H")


@dataclass(frozen=True)
class Block:
    name: str
    key: str  # where it sits in the file, for error messages: "blocks[2]" or "axes"
    axes: dict[str, tuple[Any, ...]]
    fixed: dict[str, Any]
    exclude: tuple[str, ...] = ()
    seeds: tuple[int, ...] | None = None  # None: the matrix's seeds


@dataclass(frozen=True)
class Matrix:
    name: str
    source: str  # file name used in messages
    path: Path | None
    description: str
    seeds: tuple[int, ...]
    blocks: tuple[Block, ...]
    sizes: dict[str, Size] = field(default_factory=dict)
    exclude: tuple[str, ...] = ()
    text: str = ""

    def size(self, name: str) -> Size:
        """Resolve a size name (validated on load, so this cannot fail for its cells)."""
        return resolve_size(name, self.sizes)


def resolve_size(name: str, sizes: dict[str, Size]) -> Size:
    if name in sizes:
        return sizes[name]
    if name in BUILTIN_SIZES:
        return BUILTIN_SIZES[name]
    m = _SPEC.match(name)
    if m:
        T, B, I, H = (int(g) for g in m.groups())
        return checked_size(name, {"T": T, "B": B, "I": I, "H": H})
    known = sorted({*sizes, *BUILTIN_SIZES})
    raise ValueError(
        f"unknown size {name!r}; use a name from [sizes] or a built-in one "
        f"({', '.join(known)}), or spell it 'T64-B64-I256-H256'"
    )


def checked_size(name: str, dims: Any) -> Size:
    if not isinstance(dims, dict):
        raise ValueError(f"size {name!r} must be a table {{ T = .., B = .., I = .., H = .. }}")
    unknown = set(dims) - set(_SIZE_LIMIT)
    missing = set(_SIZE_LIMIT) - set(dims)
    if unknown or missing:
        raise ValueError(
            f"size {name!r} needs exactly T, B, I, H"
            + (f"; unknown {sorted(unknown)}" if unknown else "")
            + (f"; missing {sorted(missing)}" if missing else "")
        )
    for dim, hi in _SIZE_LIMIT.items():
        v = dims[dim]
        if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= hi:
            raise ValueError(f"size {name!r}: {dim} must be an integer in 1..{hi}, got {v!r}")
    return Size(name, dims["T"], dims["B"], dims["I"], dims["H"])
