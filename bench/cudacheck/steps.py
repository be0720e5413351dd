"""The steps of a cuda-check run, their commands and their time limits.

Each step has a cap (its own limit) and a floor (the least time worth starting it with).
The run has a budget: a step gets at most its cap and never so much that the steps after
it could not have their floors, and one left without its floor is skipped and recorded.
On one H200 the budget (440 s) keeps the whole run, packing included, under 8 minutes.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from . import tiny

RECIPES = ("hn_lmmodel7", "mt_seq2seq")
# The dry run's recipes: one epoch of two batches, a 64-pair translation set.
DRY_LIMITS = ("epochs=1", "max_batches=2", "num_train=64", "num_val=16")
BUDGET_S = {"cuda": 440.0, "dry": 240.0}
# name: (cap, floor) in seconds on the GPU, in the order they run. The compiled cells come
# after the recipes: compiling is what most likely runs long, and it gets what is left.
CAPS = {
    "env": (60, 20),
    "tests": (90, 30),
    "matrix": (170, 60),
    "recipes": (90, 30),
    "matrix-compiled": (150, 30),
    "report": (45, 15),
    "report-recipes": (30, 10),
}
DRY_CAP = (60, 5)
NAMES = tuple(CAPS)


@dataclass(frozen=True)
class Step:
    name: str
    argv: tuple[str, ...]
    cap_s: float
    floor_s: float
    env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Plan:
    """Where one run puts things: everything under ``work``, never in the repository."""

    root: Path
    work: Path
    run_id: str
    dry: bool
    python: str = sys.executable

    @property
    def results(self) -> Path:
        return self.work / "results"

    @property
    def reports(self) -> Path:
        return self.work / "reports"

    @property
    def recipes_id(self) -> str:
        return f"{self.run_id}-recipes"

    @property
    def matrix(self) -> str:
        return str(self.work / "cuda-dry.toml") if self.dry else "cuda"

    @property
    def env_json(self) -> Path:
        return self.work / "env.json"

    @property
    def junit(self) -> Path:
        return self.work / "pytest.xml"

    def log(self, step: str) -> Path:
        return self.work / "logs" / f"{step}.log"


def compiled_pick(p: Plan) -> str:
    """-k for the second matrix step: the compiled cells' whole groups (the cells already
    recorded are timed again beside them, not written), so compiled ÷ scratch is in-run."""
    blocks = tiny.compiled_blocks(Path(p.matrix) if p.dry else tiny.SOURCE)
    return " or ".join(f"block={b}" for b in blocks) or "compiled"


def _commands(p: Plan) -> dict[str, tuple[tuple[str, ...], dict[str, str]]]:
    bench = (p.python, "-m", "bench")
    where = ("--results-dir", str(p.results))
    run = (*bench, "run", "--matrix", p.matrix, "--run-id", p.run_id, *where)
    rec = (*bench, "reproduce", "--run-id", p.recipes_id, *where)
    rec_out = ("--out", str(p.reports / p.recipes_id))
    pick = " or ".join(f"recipe={r}" for r in RECIPES)
    device = "cpu" if p.dry else "cuda"
    limits = [a for lim in DRY_LIMITS for a in ("--limit", lim)] if p.dry else []
    tests_env = {"CUBLAS_WORKSPACE_CONFIG": ":4096:8"}
    if p.dry:
        tests_env["RNNSUITE_TEST_DEVICE"] = "cpu"
    pytest = (p.python, "-m", "pytest", "-m", "cuda", "tests/test_cuda.py", "-q", "-rs")
    # compile workers: bench/__init__ keeps one for a small shared CPU; a GPU host has cores
    compile_env = {} if p.dry else {"TORCHINDUCTOR_COMPILE_THREADS": str(os.cpu_count() or 1)}
    env_argv = (p.python, "-m", "bench.cudacheck.envinfo", str(p.env_json))
    return {
        "env": (env_argv if p.dry else (*env_argv, "--require-cuda"), {}),
        "tests": ((*pytest, "-p", "no:cacheprovider", f"--junitxml={p.junit}"), tests_env),
        "matrix": ((*run, "-k", "not compiled"), {}),
        "matrix-compiled": ((*run, "-k", compiled_pick(p)), compile_env),
        "recipes": ((*rec, *rec_out, "-k", pick, "--seeds", "0", "--device", device, *limits), {}),
        "report": ((*bench, "report", p.run_id, *where, "--out", str(p.reports / p.run_id)), {}),
        "report-recipes": ((*rec, *rec_out, "--report-only"), {}),
    }


def steps(p: Plan, only: tuple[str, ...] = NAMES) -> list[Step]:
    commands = _commands(p)
    out = []
    for name in NAMES:
        if name in only:
            cap, floor = DRY_CAP if p.dry else CAPS[name]
            argv, env = commands[name]
            out.append(Step(name, argv, cap, floor, env))
    return out


def limit_for(todo: list[Step], index: int, left_s: float, grace_s: float) -> float:
    """Seconds step ``index`` may run, with ``left_s`` of the budget left: its cap, less
    whatever the later steps need for their floors (and each its grace period)."""
    reserve = sum(s.floor_s + grace_s for s in todo[index + 1 :])
    return min(todo[index].cap_s, left_s - reserve - grace_s)
