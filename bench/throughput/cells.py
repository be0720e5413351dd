"""Cells: expand a matrix's blocks into concrete cells, filter them, group them.

A cell is one configuration measured once: architecture, implementation,
device, input kind, layers, direction, regularizer, size, length
distribution, optimizer and seed. Its ``id`` is built from those values only
(never from measurement settings), so a rerun finds the same ids and can
resume. Cells that differ only in ``impl`` and ``input`` form a *group*: the
runner times a group's variants interleaved, which is what makes the
scratch/built-in and packed/padded ratios trustworthy on a noisy machine. A variant
architecture (the registry's ``variant_of``: lstm_peephole of lstm) joins its base's
group, so its ratio to the base is interleaved too.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from .. import archs
from ..study.kexpr import parse
from .axes import CELL_KEYS, DEVICES, FIELDS, SETTING_KEYS, Matrix, MatrixError

_FIX = 'use {fix} for it, or add exclude = ["{expr}"] to the block'


def capability_problem(v: dict[str, Any]) -> tuple[str, str] | None:
    """(key, reason) when a cell asks for something its architecture lacks.

    What an architecture supports is its record in rnnsuite's registry: its implementations,
    a reverse direction, packed input, a weight_hh for weight_drop/awd's DropConnect (the
    Transformer baseline has none of these but the built-in). Such combinations are matrix
    errors naming the key, not silent drops.
    """
    arch = archs.get(v["arch"])
    name = arch.name
    impls = arch.implementations
    if v["impl"] not in impls:
        fix, expr = (
            (f'impl = "{impls[0]}"', f"{name} and impl!={impls[0]}")
            if len(impls) == 1
            else ("another impl", f"{name} and impl={v['impl']}")
        )
        return "impl", _reason(arch, "impl", f"impl {v['impl']!r}", fix, expr)
    if v["bidirectional"] and not arch.bidirectional:
        fix, expr = "bidirectional = false", f"{name} and bidirectional"
        return "bidirectional", _reason(arch, "bidirectional", "bidirectional = true", fix, expr)
    if v["input"] == "packed" and not arch.packed:
        fix, expr = 'input = "padded"', f"{name} and packed"
        return "input", _reason(arch, "packed", "input 'packed'", fix, expr)
    if v["reg"] in ("weight_drop", "awd") and not arch.weight_hh:
        fix, expr = "another reg", f"{name} and reg={v['reg']}"
        return "reg", _reason(arch, "weight_hh", f"reg {v['reg']!r}", fix, expr)
    return None


def _reason(arch: archs.Arch, capability: str, asked: str, fix: str, expr: str) -> str:
    why = arch.why.get(capability, f"{arch.name} does not support {asked}")
    return f"arch {arch.name!r} × {asked}: {why}; " + _FIX.format(fix=fix, expr=expr)


def implementations(arch: str) -> tuple[str, ...]:
    """The implementations an architecture has (its registry record's)."""
    return archs.get(arch).implementations


def present_devices() -> list[str]:
    """The devices this machine has: always cpu, plus cuda / mps when usable."""
    import torch

    found = ["cpu"]
    if torch.cuda.is_available():
        found.append("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        found.append("mps")
    return found


@dataclass(frozen=True)
class Cell:
    arch: str
    impl: str
    device: str
    input: str
    layers: int
    bidirectional: bool
    reg: str
    size: str
    T: int
    B: int
    I: int
    H: int
    lengths: str
    optimizer: str
    seed: int
    threads: int = 0  # torch threads for the cell; 0: the machine's default
    block: str = "main"
    settings: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def spec(self) -> str:
        return f"T{self.T}-B{self.B}-I{self.I}-H{self.H}"

    def _parts(self, *, variant: bool) -> list[str]:
        parts = [self.arch if variant else self.base_arch]
        if variant:
            parts.append(self.impl)
        parts.append(self.device)
        if variant:
            parts.append(self.input)
        parts += [
            f"L{self.layers}" + ("-bi" if self.bidirectional else ""),
            self.reg,
            self.spec,
            self.lengths,
            self.optimizer,
            f"s{self.seed}",
        ]
        if self.threads:
            parts.append(f"t{self.threads}")
        return parts

    @property
    def id(self) -> str:
        return "/".join(self._parts(variant=True))

    @property
    def base_arch(self) -> str:
        """The architecture this one is a variant of (its registry record's), else itself."""
        return archs.variants().get(self.arch, self.arch)

    @property
    def group_key(self) -> str:
        """The id without impl and input, a variant under its base architecture's name:
        cells with the same key are timed together."""
        return "/".join(self._parts(variant=False))

    @property
    def variant(self) -> str:
        return f"{self.impl}/{self.input}"

    def config(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("settings")
        return d

    def fields(self) -> dict[str, str]:
        d = self.config()
        return {k: (str(v).lower() if isinstance(v, bool) else str(v)) for k, v in d.items()}

    def keywords(self) -> set[str]:
        words = {
            self.arch,
            self.impl,
            self.device,
            self.input,
            self.reg,
            self.size,
            self.spec,
            self.lengths,
            self.optimizer,
            self.block,
            f"L{self.layers}",
            "bidirectional" if self.bidirectional else "unidirectional",
        }
        if self.optimizer != "none":
            words.add("optimizer")
        if self.threads:
            words.add(f"t{self.threads}")
        return words

    @staticmethod
    def from_config(config: dict[str, Any], settings: dict[str, Any] | None = None) -> Cell:
        known = {k: config[k] for k in Cell.__dataclass_fields__ if k in config}
        return Cell(**known, settings=dict(settings or {}))


def select(cells: Iterable[Cell], expr: str | None) -> list[Cell]:
    """Cells matching a -k expression (all of them when expr is empty)."""
    cells = list(cells)
    if not expr:
        return cells
    pred = parse(expr, FIELDS)
    return [c for c in cells if pred(c.keywords(), c.fields())]


def expand(
    matrix: Matrix,
    *,
    seeds: Sequence[int] | None = None,
    devices: Sequence[str] | None = None,
    blocks: Sequence[str] | None = None,
    check_devices: bool = True,
    unsupported: list[tuple[str, str]] | None = None,
) -> list[Cell]:
    """Every cell of the matrix, in declaration order, without duplicates.

    ``devices`` replaces every block's device axis; ``auto`` means the devices
    present (just ``cpu`` when ``check_devices`` is false, as during loading).
    Architecture × implementation pairs that do not exist (a built-in for an
    architecture that has none) are left out. Cells their architecture cannot
    run (see capability_problem) are left out too, and, when ``unsupported`` is a
    list, each one's (key, reason) is appended to it (matrix loading turns the first
    into an error).
    """
    present = present_devices() if check_devices else ["cpu"]
    out: dict[str, Cell] = {}
    for block in matrix.blocks:
        if blocks is not None and block.name not in blocks:
            continue
        values: dict[str, tuple[Any, ...]] = {}
        for key, (_, default) in CELL_KEYS.items():
            if key in block.axes:
                values[key] = block.axes[key]
            else:
                values[key] = (block.fixed.get(key, default),)
        if devices is not None:
            values["device"] = tuple(devices)
        dev: list[str] = []
        for d in values["device"]:
            for e in present if d == "auto" else [d]:
                if e not in dev:
                    dev.append(e)
        values["device"] = tuple(dev)
        settings = {k: block.fixed.get(k, default) for k, (_, default) in SETTING_KEYS.items()}
        excludes = [parse(e, FIELDS) for e in (*matrix.exclude, *block.exclude)]
        keys = list(values)
        block_seeds = block.seeds if block.seeds is not None else matrix.seeds
        for seed in seeds if seeds is not None else block_seeds:
            for combo in itertools.product(*(values[k] for k in keys)):
                v = dict(zip(keys, combo, strict=True))
                if v["impl"] == "builtin" and "builtin" not in implementations(v["arch"]):
                    continue
                size = matrix.size(v["size"])
                cell = Cell(
                    **v,
                    T=size.T,
                    B=size.B,
                    I=size.I,
                    H=size.H,
                    seed=int(seed),
                    block=block.name,
                    settings=dict(settings),
                )
                if any(ex(cell.keywords(), cell.fields()) for ex in excludes):
                    continue
                problem = capability_problem(v)
                if problem is not None:
                    if unsupported is not None:
                        unsupported.append(problem)
                    continue
                out.setdefault(cell.id, cell)
    return list(out.values())


def groups(cells: Iterable[Cell]) -> list[list[Cell]]:
    """Cells grouped by group_key, in first-appearance order."""
    out: dict[str, list[Cell]] = {}
    for c in cells:
        out.setdefault(c.group_key, []).append(c)
    return list(out.values())


def parse_seeds(text: str) -> list[int]:
    """'0,1,2' or '0-4' (inclusive) → list of seeds; ValueError on bad input."""
    seeds: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        if "-" in part:
            lo, hi = part.split("-", 1)
            a, b = int(lo), int(hi)
            if a > b:
                raise ValueError(f"seed range {part!r} runs backwards")
            seeds += range(a, b + 1)
        else:
            seeds.append(int(part))
    if not seeds or any(s < 0 for s in seeds):
        raise ValueError(f"--seeds needs non-negative integers like 0,1,2 or 0-4, got {text!r}")
    return list(dict.fromkeys(seeds))


def parse_devices(text: str) -> list[str]:
    devs = [d.strip() for d in text.split(",") if d.strip()]
    bad = [d for d in devs if d not in DEVICES]
    if not devs or bad:
        raise ValueError(f"--device takes a comma list of {', '.join(DEVICES)}; got {text!r}")
    return devs


__all__ = [
    "Cell",
    "MatrixError",
    "capability_problem",
    "expand",
    "groups",
    "implementations",
    "parse_devices",
    "parse_seeds",
    "present_devices",
    "select",
]
