"""The documents' training recipes, declared in recipes.toml and run by tasks/.

result = run_recipe("hn_lmmodel6", seed=0)            # the faithful run
result = run_recipe("hn_lmmodel6", limits={"epochs": 1, "max_batches": 2})  # a smoke run
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

try:
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10: the tomli backport
    import tomli as tomllib  # type: ignore[no-redef]
import torch

from .tasks import TASKS

RECIPES_FILE = Path(__file__).with_name("recipes.toml")


def load_recipes(path: Path = RECIPES_FILE) -> dict[str, dict[str, Any]]:
    with open(path, "rb") as fh:
        recipes = tomllib.load(fh)
    for name, spec in recipes.items():
        missing = {"document", "task", "model", "train"} - spec.keys()
        if missing:
            raise ValueError(f"{path}: recipe [{name}] lacks {', '.join(sorted(missing))}")
        if spec["task"] not in TASKS:
            raise ValueError(
                f"{path}: recipe [{name}] has task {spec['task']!r}; known: {', '.join(TASKS)}"
            )
    return recipes


RECIPES = load_recipes()


def run_recipe(
    name: str,
    *,
    seed: int = 0,
    device: str = "cpu",
    limits: dict[str, int] | None = None,
    root: str | Path | None = None,
) -> dict[str, Any]:
    """Run one recipe; returns its result plus recipe, seed, device and wall time."""
    if name not in RECIPES:
        raise ValueError(f"unknown recipe {name!r}; choose one of {', '.join(RECIPES)}")
    spec = RECIPES[name]
    torch.manual_seed(seed)
    start = time.perf_counter()
    result = TASKS[spec["task"]](
        dict(spec["model"]),
        dict(spec["train"]),
        seed=seed,
        device=device,
        limits=limits or {},
        root=root,
    )
    result.update(
        recipe=name,
        document=spec["document"],
        task=spec["task"],
        title=spec.get("title", name),
        seed=seed,
        device=device,
        limits=limits or {},
        seconds=time.perf_counter() - start,
    )
    return result
