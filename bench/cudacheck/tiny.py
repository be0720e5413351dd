"""The dry run's matrix: cuda.toml itself, moved to the CPU and shrunk to a tiny shape.

Derived from the file, never kept beside it, so a block added to the CUDA matrix is in
the dry run too. Every size becomes TINY (cells that then coincide are measured once),
the device cpu, one thread, few repeats; the compiled cells shrink to one (an inductor
compile on a small CPU costs seconds per cell).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

try:
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10: the tomli backport
    import tomli as tomllib  # type: ignore[no-redef]

SOURCE = Path(__file__).resolve().parents[1] / "matrices" / "cuda.toml"
TINY = "T6-B3-I8-H8"
SETTINGS = {"device": "cpu", "threads": 1, "warmup": 1, "repeats": 3, "budget_s": 1}
EXCLUDE = "compiled and not (rnn and padded and lengths=agnews)"


def _shrink_sizes(table: dict[str, Any]) -> dict[str, Any]:
    out = dict(table)
    if "size" in out:
        out["size"] = [TINY] if isinstance(out["size"], list) else TINY
    return out


def tiny_matrix(source: Path = SOURCE) -> dict[str, Any]:
    """The dry-run variant of ``source`` as TOML data."""
    data = tomllib.loads(source.read_text(encoding="utf-8"))
    data["name"] = f"{data.get('name', source.stem)}-dry"
    data["description"] = f"dry run of {source.name} on the CPU at {TINY}"
    data.pop("sizes", None)
    data["fixed"] = {**data.get("fixed", {}), **SETTINGS, "det_steps": 1}
    data["exclude"] = [*data.get("exclude", []), EXCLUDE]
    for block in data.get("blocks", []):
        block["axes"] = _shrink_sizes(block.get("axes", {}))
        block["fixed"] = _shrink_sizes(block.get("fixed", {}))
        for key in SETTINGS:
            block["fixed"].pop(key, None)
    return data


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, list):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(f"cannot write {type(v).__name__} as TOML")


def dumps(data: dict[str, Any]) -> str:
    """TOML for a matrix's shape of data: scalars and lists at the top, tables of
    scalars, arrays of tables (``[[blocks]]``) whose values are inline."""
    lines = [f"{k} = {_value(v)}" for k, v in data.items() if not isinstance(v, dict | list)]
    lines += [f"{k} = {_value(v)}" for k, v in data.items() if _is_plain_list(v)]
    for key, table in data.items():
        if isinstance(table, dict):
            lines += ["", f"[{key}]", *(f"{k} = {_value(v)}" for k, v in table.items())]
    for key, rows in data.items():
        if isinstance(rows, list) and not _is_plain_list(rows):
            for row in rows:
                lines += ["", f"[[{key}]]", *(f"{k} = {_value(v)}" for k, v in row.items())]
    return "\n".join(lines) + "\n"


def _is_plain_list(v: Any) -> bool:
    return isinstance(v, list) and not any(isinstance(x, dict) for x in v)


def compiled_blocks(path: Path) -> list[str]:
    """The blocks of a matrix file that have compiled cells (their groups are timed again
    with them, for the compiled ÷ scratch ratio)."""
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    names = []
    for block in data.get("blocks", []):
        impl = {**data.get("fixed", {}), **block.get("fixed", {}), **block.get("axes", {})}
        impl = impl.get("impl", "scratch")
        if "compiled" in (impl if isinstance(impl, list) else [impl]):
            names.append(block["name"])
    return names


def write(path: Path, source: Path = SOURCE) -> Path:
    path.write_text(dumps(tiny_matrix(source)), encoding="utf-8")
    return path
