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
from ..study.execute import TrainingRun, records_of, run_each, write_page

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


def run(run_id: str, **options: Any) -> tuple[int, int]:
    """Run every selected cell not already recorded. Returns (ok, failed). ``options``
    are a TrainingRun's (results_dir, k, seeds, device, matrix_path, threads, limits,
    echo); threads default to the matrix's."""
    from rnnsuite.recipes import run_recipe

    opts = TrainingRun(run_id, **{"matrix_path": MATRIX, **options})
    m = load_matrix(opts.matrix_path)
    opts.matrix_threads(m)
    seeds = opts.seeds or list(m["seeds"])
    cells = plan(list(m["recipes"]), seeds, opts.device, opts.k)
    estimate = m.get("estimate_s", {})
    device, limits = opts.device, opts.limits

    def start(cell: dict[str, Any]) -> dict[str, Any]:
        return {"cell": cell, "limits": limits or {}}

    def execute_cell(cell: dict[str, Any], rec: dict[str, Any]) -> dict[str, Any]:
        return {
            "result": run_recipe(cell["recipe"], seed=cell["seed"], device=device, limits=limits)
        }

    out = run_each(
        opts.store(),
        cells,
        kind="reproduce",
        record_kind="recipe",
        start=start,
        execute_cell=execute_cell,
        manifest={"matrix": str(opts.matrix_path), "seeds": seeds, "k": opts.k, "limits": limits},
        device=device,
        echo=opts.echo,
        shard=opts.shard,
        executor=opts.executor_factory(),
        estimate_s=lambda c: float(estimate.get(c["recipe"], 60)),
    )
    return out.ok, out.failed


# -- report ---------------------------------------------------------------------------------
def report(run_id: str, *, results_dir: Path, out_dir: Path, beside: str | None = None) -> Path:
    """reports/reproduction/README.md (+ PNGs) from the run's results only (and, beside,
    another run's run times); the page is bench/report/reproduction.py's."""
    from rnnsuite.recipes.verdicts import load_references

    from ..report.reproduction import render

    recs = records_of(run_id, results_dir, "recipe", "reproduce")
    refs = load_references()
    other = (beside, records_of(beside, results_dir, "recipe", "reproduce")) if beside else None
    return write_page(out_dir, lambda d: render(run_id, recs, refs, d, DOCUMENTS, other))
