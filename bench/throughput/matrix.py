"""Matrices as data: parse and validate ``bench/matrices/*.toml``.

A matrix file declares what to measure::

    name = "quick"
    description = "..."
    seeds = [0]
    exclude = ["impl=compiled and reg=weight_drop"]   # -k expressions, dropped cells

    [fixed]                 # one value per key, for every block
    device = "auto"
    repeats = 7

    [sizes]                 # named sizes, besides the built-in ones
    mine = { T = 50, B = 32, I = 128, H = 128 }

    [[blocks]]              # the union of the blocks' products is the matrix
    name = "impls"
    axes = { arch = ["lstm", "gru"], impl = ["scratch", "builtin"] }
    fixed = { size = "bars" }
    exclude = ["..."]

A file without ``[[blocks]]`` may put its axes in a top-level ``[axes]``
table instead (one block). Axis values are lists, fixed values scalars. Any
error — unknown key, unknown or ill-typed value, a bad size, an empty axis or
an empty product — raises :class:`MatrixError` naming the file and the key.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ..study.kexpr import KExprError, parse
from ..study.source import parse_toml
from .axes import (  # the matrix language; re-exported as this module's public names
    BLOCK_KEYS,
    BUILTIN_SIZES,
    CELL_KEYS,
    DEVICES,
    FIELDS,
    IMPLS,
    INPUTS,
    LENGTHS,
    OPTIMIZERS,
    REGULARIZERS,
    SETTING_KEYS,
    TOP_KEYS,
    Block,
    Matrix,
    MatrixError,
    Size,
    checked_size,
    resolve_size,
)
from .cells import expand

MATRIX_DIR = Path(__file__).resolve().parents[1] / "matrices"


# -- loading ---------------------------------------------------------------------------
def available() -> list[str]:
    return sorted(p.stem for p in MATRIX_DIR.glob("*.toml"))


def locate(name_or_path: str) -> Path:
    """A matrix name (``quick``) or a path to a .toml file."""
    looks_like_path = name_or_path.endswith(".toml") or "/" in name_or_path or "\\" in name_or_path
    if looks_like_path:
        path = Path(name_or_path)
        if not path.is_file():
            raise MatrixError(name_or_path, "", "no such matrix file")
        return path
    path = MATRIX_DIR / f"{name_or_path}.toml"
    if not path.is_file():
        raise MatrixError(
            name_or_path, "", f"no matrix of that name; choose one of {', '.join(available())}"
        )
    return path


def load(name_or_path: str) -> Matrix:
    """Load and validate a matrix by name or path; raises MatrixError."""
    path = locate(name_or_path)
    return loads(path.read_text(encoding="utf-8"), source=path.name, path=path)


def loads(text: str, source: str = "<matrix>", path: Path | None = None) -> Matrix:
    data = parse_toml(text, source, lambda message: MatrixError(source, "", message))
    return _validate(data, source, path, text)


def _validate(data: dict[str, Any], source: str, path: Path | None, text: str) -> Matrix:
    def err(key: str, message: str) -> MatrixError:
        return MatrixError(source, key, message)

    _check_kind(data, err)
    name = data.get("name", Path(source).stem)
    if not isinstance(name, str) or not re.fullmatch(r"[\w.\-]+", name):
        raise err("name", f"must be a simple name (letters, digits, _ . -), got {name!r}")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise err("description", "must be a string")
    seeds = _seeds(data.get("seeds", [0]), "seeds", err)
    sizes = _sizes(data.get("sizes", {}), err)
    top_fixed = _fixed(data.get("fixed", {}), "fixed", sizes, err)
    top_exclude = _excludes(data.get("exclude", []), "exclude", err)
    blocks = _blocks(data, top_fixed, sizes, err)
    matrix = Matrix(
        name=name,
        source=source,
        path=path,
        description=description,
        seeds=seeds,
        blocks=tuple(blocks),
        sizes=sizes,
        exclude=top_exclude,
        text="",
    )
    _check_products(matrix, err)
    return Matrix(**{**matrix.__dict__, "text": text})


def _check_kind(data: dict[str, Any], err) -> None:
    """A throughput matrix: not empty, not another kind's, no unknown top-level key."""
    if not data:  # a default one-cell matrix would hide a truncated or misnamed file
        raise err(
            "",
            "empty matrix file (no keys): a matrix needs [axes] or [[blocks]], as in "
            f"{MATRIX_DIR / 'quick.toml'}",
        )
    for kind, command in (("recipes", "reproduce"), ("quality", "quality")):
        if data.get("kind") == kind:
            article = "a recipe" if kind == "recipes" else "a quality"
            raise err(
                "kind",
                f"{article} matrix, not a throughput one: run it with "
                f"`python -m bench {command}` (or `nox -s {command}`)",
            )
    unknown = set(data) - set(TOP_KEYS)
    if unknown:
        raise err(sorted(unknown)[0], f"unknown top-level key; known keys: {', '.join(TOP_KEYS)}")


def _sizes(raw_sizes: Any, err) -> dict[str, Size]:
    if not isinstance(raw_sizes, dict):
        raise err("sizes", "must be a table of name = { T = .., B = .., I = .., H = .. }")
    sizes: dict[str, Size] = {}
    for sname, dims in raw_sizes.items():
        try:
            sizes[sname] = checked_size(sname, dims)
        except ValueError as e:
            raise err(f"sizes.{sname}", str(e)) from None
    return sizes


def _blocks(data: dict[str, Any], top_fixed: dict[str, Any], sizes, err) -> list[Block]:
    if "blocks" in data and "axes" in data:
        raise err("axes", "use either a top-level [axes] table or [[blocks]], not both")
    blocks: list[Block] = []
    if "blocks" in data:
        raw_blocks = data["blocks"]
        if not isinstance(raw_blocks, list) or not raw_blocks:
            raise err("blocks", "must be a non-empty array of tables ([[blocks]])")
        blocks = [_block(n, raw, top_fixed, sizes, err) for n, raw in enumerate(raw_blocks)]
    else:
        axes = _axes(data.get("axes", {}), "axes", sizes, err)
        both = set(top_fixed) & set(axes)
        if both:
            raise err(f"axes.{sorted(both)[0]}", "is both an axis and a fixed value")
        blocks.append(Block("main", "axes", axes, top_fixed))
    names = [b.name for b in blocks]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise err("blocks", f"block names must be unique; repeated: {', '.join(sorted(dup))}")
    return blocks


def _block(n: int, raw: Any, top_fixed: dict[str, Any], sizes, err) -> Block:
    key = f"blocks[{n}]"
    if not isinstance(raw, dict):
        raise err(key, "must be a table")
    bad = set(raw) - set(BLOCK_KEYS)
    if bad:
        raise err(
            f"{key}.{sorted(bad)[0]}",
            f"unknown block key; known: {', '.join(BLOCK_KEYS)} (axes go under axes)",
        )
    bname = raw.get("name", f"block{n}")
    if not isinstance(bname, str) or not re.fullmatch(r"[\w.\-]+", bname):
        raise err(f"{key}.name", f"must be a simple name, got {bname!r}")
    own_fixed = _fixed(raw.get("fixed", {}), f"{key}.fixed", sizes, err)
    axes = _axes(raw.get("axes", {}), f"{key}.axes", sizes, err)
    both = set(own_fixed) & set(axes)
    if both:
        raise err(f"{key}.axes.{sorted(both)[0]}", "is both an axis and a fixed value")
    # A block's axes override top-level fixed values of the same key.
    fixed = {k: v for k, v in {**top_fixed, **own_fixed}.items() if k not in axes}
    excl = _excludes(raw.get("exclude", []), f"{key}.exclude", err)
    bseeds = _seeds(raw["seeds"], f"{key}.seeds", err) if "seeds" in raw else None
    return Block(bname, key, axes, fixed, excl, bseeds)


def _check_products(matrix: Matrix, err) -> None:
    """Every block must yield a cell, and ask nothing of an architecture it lacks."""
    for b in matrix.blocks:
        problems: list[tuple[str, str]] = []
        cells = expand(matrix, blocks=[b.name], check_devices=False, unsupported=problems)
        if problems:
            key, reason = problems[0]
            axes_at, fixed_at = ("axes", "fixed") if b.key == "axes" else (
                f"{b.key}.axes", f"{b.key}.fixed"
            )  # fmt: skip
            if key not in b.axes and key not in b.fixed:
                key = "arch"  # the default value is at fault only with this architecture
            raise err(f"{axes_at if key in b.axes else fixed_at}.{key}", reason)
        if not cells:
            raise err(
                b.key,
                "empty product: no cell is left after unsupported combinations "
                "(e.g. a built-in for an architecture without one) and excludes",
            )


def _seeds(seeds: Any, key: str, err) -> tuple[int, ...]:
    if (
        not isinstance(seeds, list)
        or not seeds
        or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds)
    ):
        raise err(key, f"must be a non-empty list of non-negative integers, got {seeds!r}")
    if len(set(seeds)) != len(seeds):
        raise err(key, f"repeats a seed: {seeds!r}")
    return tuple(seeds)


def _fixed(raw: Any, key: str, sizes: dict[str, Size], err) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise err(key, "must be a table of key = value")
    out: dict[str, Any] = {}
    for k, v in raw.items():
        spec = CELL_KEYS.get(k) or SETTING_KEYS.get(k)
        if spec is None:
            raise err(
                f"{key}.{k}",
                f"unknown key; known: {', '.join([*CELL_KEYS, *SETTING_KEYS])}",
            )
        if isinstance(v, list):
            raise err(f"{key}.{k}", "a fixed value is a single value; put lists under axes")
        try:
            out[k] = spec[0](v)
            if k == "size":
                resolve_size(v, sizes)
        except ValueError as e:
            raise err(f"{key}.{k}", str(e)) from None
    return out


def _axes(raw: Any, key: str, sizes: dict[str, Size], err) -> dict[str, tuple[Any, ...]]:
    if not isinstance(raw, dict):
        raise err(key, "must be a table of axis = [values]")
    out: dict[str, tuple[Any, ...]] = {}
    for k, values in raw.items():
        if k in SETTING_KEYS:
            raise err(f"{key}.{k}", "is a measurement setting, not an axis; put it under fixed")
        spec = CELL_KEYS.get(k)
        if spec is None:
            raise err(f"{key}.{k}", f"unknown axis; known axes: {', '.join(CELL_KEYS)}")
        if not isinstance(values, list):
            raise err(f"{key}.{k}", f"an axis is a list of values, got {values!r}")
        if not values:
            raise err(f"{key}.{k}", "empty axis: the product would be empty")
        checked = []
        for n, v in enumerate(values):
            try:
                checked.append(spec[0](v))
                if k == "size":
                    resolve_size(v, sizes)
            except ValueError as e:
                raise err(f"{key}.{k}[{n}]", str(e)) from None
        if len(set(map(repr, checked))) != len(checked):
            raise err(f"{key}.{k}", f"repeats a value: {values!r}")
        out[k] = tuple(checked)
    return out


def _excludes(raw: Any, key: str, err) -> tuple[str, ...]:
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
        raise err(key, "must be a list of selection expressions (strings)")
    for n, expr in enumerate(raw):
        try:
            parse(expr, FIELDS)
        except KExprError as e:
            raise err(f"{key}[{n}]", str(e)) from None
    return tuple(raw)


__all__ = [
    "BUILTIN_SIZES",
    "CELL_KEYS",
    "DEVICES",
    "FIELDS",
    "IMPLS",
    "INPUTS",
    "LENGTHS",
    "MATRIX_DIR",
    "OPTIMIZERS",
    "REGULARIZERS",
    "SETTING_KEYS",
    "Block",
    "Matrix",
    "MatrixError",
    "Size",
    "available",
    "load",
    "loads",
    "locate",
    "resolve_size",
]
