"""The datasets cuda-check reads, and where it finds them.

A lent machine gets a copy of the checkout but not ``../shared``: ``scripts/cuda-check
--pack-data .cuda-data`` copies just these files (checked against the registry's
checksums) into the git-ignored ``.cuda-data/``, which the device call then carries.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from .envinfo import REPO

PACKED = REPO / ".cuda-data"
SHARED = REPO.parent / "shared" / "data"
# Data each recipe's task reads (human_numbers is generated, nothing to copy).
TASK_FILES: dict[str, tuple[str, ...]] = {
    "human_numbers": (),
    "translation": ("fra_eng/fra.txt",),
}
# bench.throughput.lengths draws the matrix's "agnews" lengths from AG News's test split.
BENCH_FILES = ("ag_news/test.csv",)


class DataPackError(RuntimeError):
    pass


def needed_files(recipes: tuple[str, ...]) -> list[str]:
    """Paths under a data root that the matrix and ``recipes`` read."""
    from rnnsuite.recipes import RECIPES

    files = list(BENCH_FILES)
    for name in recipes:
        task = RECIPES[name]["task"]
        if task not in TASK_FILES:
            raise DataPackError(f"recipe {name!r}: add its task {task!r} to TASK_FILES")
        files += [f for f in TASK_FILES[task] if f not in files]
    return files


def data_root(env: dict[str, str] | None = None) -> str | None:
    """What the steps get as RNNSUITE_DATA: the caller's, else .cuda-data, else
    ../shared/data beside the checkout; None when there is none."""
    env = os.environ if env is None else env
    if env.get("RNNSUITE_DATA"):
        return env["RNNSUITE_DATA"]
    for root in (PACKED, SHARED):
        if root.is_dir():
            return str(root)
    return None


def _source(relpath: str) -> Path:
    roots = [Path(p) for p in os.environ.get("RNNSUITE_DATA", "").split(os.pathsep) if p]
    for root in [*roots, SHARED]:
        if (root / relpath).is_file():
            return root / relpath
    raise DataPackError(
        f"{relpath} is in neither $RNNSUITE_DATA nor {SHARED}: point RNNSUITE_DATA at the "
        "datasets (python -m rnnsuite.data list shows what is where)"
    )


def pack(dest: Path, recipes: tuple[str, ...]) -> list[Path]:
    """Copy the needed files into ``dest`` (verified first); returns the copies."""
    from rnnsuite.data import fetch, sources

    out = []
    for rel in needed_files(recipes):
        src = _source(rel)
        dataset, filename = rel.split("/", 1)
        fetch.verify_file(src, sources.dataset(dataset).file(filename))
        target = dest / rel
        if src.resolve() != target.resolve():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, target)
        out.append(target)
    return out
