"""Reproduce the documents: recipes × seeds → results → reproduction report.

Each (recipe, seed, device) is one cell. Results go to ``results/<run-id>/``
through the same append-only store as the throughput bench (resumable, a
failed recipe recorded with its error while the rest go on), each line with
the run's provenance. ``report`` turns a run into ``reports/reproduction/``:
per document, reference | ours (mean ± std, min–max over seeds) | verdict —
computed by rnnsuite.recipes.verdicts — plus learning curves of every seed
over the document's own curve, and generated text beside the document's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..study import StudyError, kexpr, read_toml
from ..study.execute import run_each
from ..study.results import ResultStore, atomic_write_text, check_run_id, mkdir

MATRIX = Path(__file__).resolve().parents[1] / "matrices" / "reproduce.toml"
DOCUMENTS = {
    "ai4b": "AI-For-Beginners — AG News classification (seed 000)",
    "fastbook": "fastbook ch. 12 — Human Numbers language models (seed 001)",
    "element": "Element-Research rnn tutorial — behaviours (seed 002)",
    "udacity": "Udacity RNN summary — word2vec, TV scripts, attention on English–French (seed 003)",
    "d2l": "d2l Modern RNN — Time Machine and English–French (seed 004)",
}
FIELDS = ("recipe", "document", "task", "seed", "device")


def resolve_matrix(name_or_path: str | Path | None) -> Path:
    """A recipe matrix by path, or by name in bench/matrices/ ("reproduce-full");
    None is the routine matrix. Raises ValueError naming what was looked for."""
    if name_or_path is None:
        return MATRIX
    path = Path(name_or_path)
    if path.is_file():
        return path
    named = MATRIX.with_name(f"{name_or_path}.toml")
    if path.suffix != ".toml" and named.is_file():
        return named
    raise StudyError(
        f"no recipe matrix {str(name_or_path)!r}: give a .toml path or a name in {MATRIX.parent}"
    )


def load_matrix(path: Path = MATRIX) -> dict[str, Any]:
    from rnnsuite.recipes import RECIPES

    m = read_toml(path)
    if not m:
        raise StudyError(
            f"{path}: empty matrix file (no keys): a recipe matrix needs kind = 'recipes', "
            f"seeds and recipes, as in {MATRIX}"
        )
    recipes = m.get("recipes")
    if not isinstance(recipes, list) or not recipes:
        raise StudyError(f"{path}: key 'recipes' must list at least one recipe")
    unknown = [r for r in recipes if r not in RECIPES]
    if unknown:
        raise StudyError(f"{path}: key 'recipes' names unknown recipes {unknown}")
    if not m.get("seeds"):
        raise StudyError(f"{path}: key 'seeds' must list at least one seed")
    return m


def plan(recipes: list[str], seeds: list[int], device: str, k: str | None) -> list[dict]:
    from rnnsuite.recipes import RECIPES

    pred = kexpr.parse(k, FIELDS) if k else None
    cells = []
    for name in recipes:
        for seed in seeds:
            spec = RECIPES[name]
            fields = {
                "recipe": name,
                "document": spec["document"],
                "task": spec["task"],
                "seed": str(seed),
                "device": device,
            }
            words = {name, spec["document"], spec["task"], device}
            if pred is None or pred(words, fields):
                cells.append({**fields, "seed": seed, "cell_id": f"{name}-s{seed}-{device}"})
    return cells


def run(
    run_id: str,
    *,
    results_dir: Path,
    k: str | None = None,
    seeds: list[int] | None = None,
    device: str = "cpu",
    limits: dict[str, int] | None = None,
    matrix_path: Path = MATRIX,
    threads: int | None = None,
    echo=print,
) -> tuple[int, int]:
    """Run every selected cell not already recorded. Returns (ok, failed).

    `threads` (default: the matrix's, else torch's) is set before anything runs: these
    models are small, and two OpenMP threads on a busy 2-core machine can run ten times
    slower than one."""
    import torch

    from rnnsuite.recipes import run_recipe

    m = load_matrix(matrix_path)
    threads = threads or m.get("threads")
    if threads:
        torch.set_num_threads(int(threads))
    seeds = seeds or list(m["seeds"])
    cells = plan(list(m["recipes"]), seeds, device, k)
    estimate = m.get("estimate_s", {})

    def start(cell: dict[str, Any]) -> dict[str, Any]:
        return {"cell": cell, "limits": limits or {}}

    def execute_cell(cell: dict[str, Any], rec: dict[str, Any]) -> dict[str, Any]:
        return {
            "result": run_recipe(cell["recipe"], seed=cell["seed"], device=device, limits=limits)
        }

    store = ResultStore(Path(results_dir) / check_run_id(run_id))
    out = run_each(
        store, cells, kind="reproduce", record_kind="recipe", start=start,
        execute_cell=execute_cell,
        manifest={"matrix": str(matrix_path), "seeds": seeds, "k": k, "limits": limits},
        device=device, echo=echo, estimate_s=lambda c: float(estimate.get(c["recipe"], 60)),
    )  # fmt: skip
    return out.ok, out.failed


# -- report ---------------------------------------------------------------------------------
def report(run_id: str, *, results_dir: Path, out_dir: Path) -> Path:
    """reports/reproduction/README.md (+ PNGs) from the run's results only; the page is
    bench/report/reproduction.py's."""
    from rnnsuite.recipes.verdicts import load_references

    from ..report.reproduction import render

    store = ResultStore(Path(results_dir) / check_run_id(run_id))
    recs = [r for r in store.latest() if r.get("kind") == "recipe"]
    if not recs:
        raise ValueError(
            f"run {run_id!r} in {results_dir} has no recipe results: run "
            f"`python -m bench reproduce --run-id {run_id}` first, or name an earlier run"
        )
    refs = load_references()
    mkdir(out_dir)
    path = out_dir / "README.md"
    atomic_write_text(path, render(run_id, recs, refs, out_dir, DOCUMENTS))
    return path
