"""Shared Markdown pieces of every report: tables, number formats, ratios with their
interquartile range, thread counts, mean ± sample std."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import pandas as pd

#: one column of a table drawn from frame rows: (header, text of a row)
Column = tuple[str, Callable[[Any], str]]


def table(rows: list[list[str]], header: list[str]) -> str:
    """A Markdown table; cells are written with str()."""
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def column_table(rows: Iterable[Any], columns: list[Column]) -> str:
    """A table with one row per item of `rows`, each column's text from its function."""
    return table([[text(r) for _, text in columns] for r in rows], [h for h, _ in columns])


def fmt(v: Any, spec: str = ".2f", suffix: str = "") -> str:
    """A number in `spec`, or – when there is none (None or NaN)."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    return f"{v:{spec}}{suffix}"


def ktok(v: Any) -> str:
    """Tokens per second in thousands: 123.4k."""
    return "–" if v is None or pd.isna(v) else f"{v / 1e3:,.1f}k"


def mib(v: Any) -> str:
    """Bytes in MiB."""
    return "–" if v is None or pd.isna(v) else f"{v / 2**20:,.2f}"


def ratio(r: pd.Series, mode: str, ref: str) -> str:
    """A row's median ratio with its interquartile range: 1.23 (1.20–1.30)."""
    m = r.get(f"{mode}_{ref}")
    if m is None or pd.isna(m):
        return "–"
    return f"{m:.2f} ({r[f'{mode}_{ref}_q1']:.2f}–{r[f'{mode}_{ref}_q3']:.2f})"


def tok_iqr(r: pd.Series, mode: str) -> str:
    """A row's throughput with its relative interquartile range: 123.4k ±5%."""
    return f"{ktok(r[f'{mode}_tok_s'])} ±{fmt(r[f'{mode}_iqr_rel'], '.0%')}"


def threads(n: Any) -> str:
    """1 thread, 2 threads."""
    return f"{n} thread" + ("s" if n != 1 else "")


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for one value)."""
    mean = sum(values) / len(values)
    var = sum((v - mean) ** 2 for v in values) / (len(values) - 1) if len(values) > 1 else 0.0
    return mean, math.sqrt(var)
