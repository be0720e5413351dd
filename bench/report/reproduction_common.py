"""What every part of the reproduction report reads of a recipe and its results: its
task kind, a metric's mean or spread over seeds, a value as the tables print it, and
where a figure is drawn and saved."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .markdown import mean_std


def pyplot():
    """matplotlib.pyplot, drawing off screen."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig, path: Path) -> None:
    from .plots import save_png

    fig.tight_layout()
    save_png(fig, path, dpi=110)


def value(v: Any) -> str:
    """A reference or measured value as the tables print it."""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.4f}"
    return str(v)


def spread(results: list[dict], key: str) -> str:
    """mean ± std (n) of one metric over seeds, as the verdict tables print it."""
    vals = [float(r["metrics"][key]) for r in results if key in r["metrics"]]
    if not vals:
        return "—"
    mean, std = mean_std(vals)
    if len(vals) == 1:
        return f"{mean:.4f} (n=1)"
    return f"{mean:.4f} ± {std:.4f} (n={len(vals)})"


def mean(results: list[dict], key: str) -> float:
    vals = [r["metrics"][key] for r in results if key in r["metrics"]]
    return sum(vals) / len(vals) if vals else math.nan


def recipe(name: str) -> dict[str, Any]:
    """A recipe's spec (rnnsuite.recipes.RECIPES)."""
    from rnnsuite.recipes import RECIPES

    return RECIPES[name]


def task(name: str) -> str:
    """The task kind of a recipe (picks which extra tables and plots a document gets)."""
    return recipe(name)["task"]


def of_task(names: list[str], kind: str) -> list[str]:
    """The recipes of one task kind, in order."""
    return [n for n in names if task(n) == kind]


def for_task(kind: str) -> Callable:
    """An extra that speaks for one task kind: called with the page and the document's
    recipes of that kind, and silent (no lines) where the document has none."""

    def wrap(fn: Callable[[Any, list[str]], list[str]]) -> Callable[[Any, list[str]], list[str]]:
        @functools.wraps(fn)
        def extra(page: Any, names: list[str]) -> list[str]:
            mine = of_task(names, kind)
            return fn(page, mine) if mine else []

        return extra

    return wrap
