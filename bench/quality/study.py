"""The quality matrix: cells of task × axes → trained for a fixed budget → report.

Where the throughput bench asks "how fast", this asks "how well, and how soon": each
cell trains one model of bench/matrices/quality.toml with a task loop of
rnnsuite/recipes/tasks/ for the task's budget and records its final metrics, its
curve, and time-to-target — the training seconds (validation excluded) until the
curve first reaches the task's target. Results go through the same append-only store
as every other run (resumable, failed cells recorded while the rest go on); ``report``
writes reports/<run-id>/README.md with one table per task, the scratch-vs-builtin
gap, and plots.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

from .. import archs, plugins
from ..study import StudyError, kexpr, read_toml
from ..study.execute import TrainingRun, records_of, run_each, write_page
from ..study.failures import console_reason

MATRIX = Path(__file__).resolve().parents[1] / "matrices" / "quality.toml"
AXES = ("arch", "impl", "layers", "reg", "input", "decoder")
FIELDS = ("task", *AXES, "seed", "device")
DEFAULTS = {"arch": "gru", "impl": "builtin", "layers": None, "reg": "none", "input": "padded"}
LOOPS = ("human_numbers", "time_machine", "ag_news", "translation", "ptb")
GOALS = ("max", "min")


class QualityError(StudyError):
    """A malformed quality matrix; the message names the file and key."""


# -- matrix ---------------------------------------------------------------------------------
def load_matrix(path: Path | str = MATRIX) -> dict[str, Any]:
    """Read and validate a quality matrix (unknown axis, value or loop → QualityError)."""
    path = Path(path)
    m = read_toml(path, error=lambda message: QualityError(f"{path}: {message}"))
    return validate(m, str(path))


def validate(m: dict[str, Any], source: str) -> dict[str, Any]:
    def err(key: str, msg: str) -> QualityError:
        return QualityError(f"{source}: key {key!r}: {msg}")

    if not m:
        raise QualityError(
            f"{source}: empty matrix file (no keys): a quality matrix needs kind = 'quality', "
            f"seeds and [tasks.<name>] tables, as in {MATRIX}"
        )
    if m.get("kind") != "quality":
        raise err("kind", f"must be 'quality', got {m.get('kind')!r}")
    seeds = m.get("seeds")
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) for s in seeds):
        raise err("seeds", "must list at least one integer seed")
    tasks = m.get("tasks")
    if not isinstance(tasks, dict) or not tasks:
        raise err("tasks", "must define at least one [tasks.<name>] table")
    known = {
        "arch": set(archs.NAMES),
        "impl": {"scratch", "builtin"},
        "reg": {"none", "dropout", "awd"},
        "input": {"padded", "packed"},
        "decoder": {"plain", "additive", "multiplicative"},
    }
    for name, t in tasks.items():
        where = f"tasks.{name}"
        if t.get("loop") not in LOOPS:
            raise err(f"{where}.loop", f"must be one of {list(LOOPS)}, got {t.get('loop')!r}")
        for key in ("metric", "curve"):
            if not isinstance(t.get(key), str):
                raise err(f"{where}.{key}", "must be a string naming a result key")
        for key in ("goal", "curve_goal"):
            if t.get(key, "max") not in GOALS:
                raise err(f"{where}.{key}", f"must be 'max' or 'min', got {t.get(key)!r}")
        if not isinstance(t.get("target"), int | float):
            raise err(f"{where}.target", "must be a number")
        axes = t.get("axes")
        if not isinstance(axes, dict) or not axes:
            raise err(f"{where}.axes", "must name at least one axis")
        for axis, values in axes.items():
            if axis not in AXES:
                raise err(f"{where}.axes.{axis}", f"unknown axis; known: {list(AXES)}")
            if not isinstance(values, list) or not values:
                raise err(f"{where}.axes.{axis}", "must be a non-empty list")
            for v in values:
                if axis == "layers":
                    if not isinstance(v, int) or not 1 <= v <= 4:
                        raise err(f"{where}.axes.layers", f"layer counts are 1..4, got {v!r}")
                elif v not in known[axis]:
                    raise err(
                        f"{where}.axes.{axis}", f"unknown value {v!r}; known: {sorted(known[axis])}"
                    )
        for axis in AXES:
            for value, over in (t.get(axis) or {}).items():
                if not isinstance(over, dict) or set(over) - {"model", "train"}:
                    raise err(f"{where}.{axis}.{value}", "may hold only 'model' and 'train' tables")
        for i, expr in enumerate(t.get("exclude", [])):
            try:
                kexpr.parse(expr, FIELDS)
            except kexpr.KExprError as e:
                raise err(f"{where}.exclude[{i}]", str(e)) from None
    if not plan(m, "cpu", None):
        raise err("tasks", "the axes and excludes leave no cell")
    return m


def _cell_fields(task: str, combo: dict[str, Any], seed: int, device: str) -> dict[str, str]:
    fields = {"task": task, "seed": str(seed), "device": device}
    for axis in AXES:
        v = combo.get(axis, DEFAULTS.get(axis))
        fields[axis] = "" if v is None else str(v)
    return fields


def plan(
    m: dict[str, Any], device: str, k: str | None, seeds: list[int] | None = None
) -> list[dict]:
    """Every selected cell: its fields, seed and id, in matrix order."""
    import itertools

    pred = kexpr.parse(k, FIELDS) if k else None
    cells = []
    for task, t in m["tasks"].items():
        axes = t["axes"]
        excludes = [kexpr.parse(e, FIELDS) for e in t.get("exclude", [])]
        for values in itertools.product(*axes.values()):
            combo = dict(zip(axes, values, strict=True))
            for seed in seeds or m["seeds"]:
                fields = _cell_fields(task, combo, seed, device)
                words = {v for v in fields.values() if v} | {f"{a}={fields[a]}" for a in AXES}
                if any(ex(words, fields) for ex in excludes):
                    continue
                if pred is not None and not pred(words, fields):
                    continue
                _check_impl(task, fields)
                parts = [task] + [f"{a}={combo[a]}" for a in axes] + [f"s{seed}", device]
                cells.append({**fields, "seed": seed, "combo": combo, "cell_id": "/".join(parts)})
    return cells


def _check_impl(task: str, fields: dict[str, Any]) -> None:
    """A cell whose architecture lacks its implementation is a matrix error (its record
    in rnnsuite's registry says what it has), not a cell that fails later."""
    arch, impl = fields.get("arch"), fields.get("impl")
    if not arch or not impl or arch not in archs.names():
        return
    have = archs.get(arch).implementations
    if impl not in have:
        raise QualityError(
            f"tasks.{task}: arch {arch!r} has no implementation {impl!r} (it has "
            f'{", ".join(have)}): add exclude = ["arch={arch} and impl={impl}"] to the task'
        )


def cell_config(m: dict[str, Any], cell: dict[str, Any]) -> tuple[dict, dict, dict]:
    """(model_cfg, train_cfg, limits) of a cell: the task's, then each axis value's overrides."""
    t = m["tasks"][cell["task"]]
    model, train = copy.deepcopy(t.get("model", {})), copy.deepcopy(t.get("train", {}))
    for axis in AXES:
        over = (t.get(axis) or {}).get(str(cell["combo"].get(axis, DEFAULTS.get(axis))), {})
        model.update(over.get("model", {}))
        train.update(over.get("train", {}))
    combo = cell["combo"]
    model["arch"] = combo.get("arch", model.get("arch", "gru"))
    model["impl"] = combo.get("impl", model.get("impl", "builtin"))
    if "layers" in combo:
        model["num_layers"] = combo["layers"]
    if "decoder" in combo:
        model["decoder"] = combo["decoder"]
    model["packed"] = combo.get("input") == "packed"
    return model, train, dict(t.get("limits", {}))


# -- time-to-target -------------------------------------------------------------------------
def curve_points(result: dict[str, Any], key: str) -> list[tuple[float, float]]:
    """(training seconds, value) at each point of a result's curve for `key`."""
    curves, timing = result.get("curves", {}), result.get("timing", {})
    if key == "running_accuracy":
        values = [acc for _, acc in curves.get("running_accuracy", [])]
        seconds = timing.get("running_accuracy", [])
    else:
        values = [row[key] for row in curves.get("epochs", [])]
        seconds = timing.get("epochs", [])
    return list(zip(seconds, values, strict=False))


def time_to_target(points: list[tuple[float, float]], target: float, goal: str) -> float | None:
    """Seconds at the first point meeting the target (>= for max, <= for min), else None."""
    for seconds, value in points:
        if (value >= target) if goal == "max" else (value <= target):
            return float(seconds)
    return None


# -- run --------------------------------------------------------------------------------------
def run(run_id: str, **options: Any) -> tuple[int, int]:
    """Run every selected cell not yet recorded; returns (ok, failed). ``options`` are a
    TrainingRun's (results_dir, k, seeds, device, matrix_path, threads, limits, echo);
    ``limits`` overrides every task's budget (tests and smoke runs)."""
    import torch

    from rnnsuite.recipes.tasks import TASKS

    opts = TrainingRun(run_id, **{"matrix_path": MATRIX, **options})
    m = load_matrix(opts.matrix_path)
    opts.matrix_threads(m)
    cells = plan(m, opts.device, opts.k, opts.seeds)
    device, limits = opts.device, opts.limits

    def start(cell: dict[str, Any]) -> dict[str, Any]:
        model_cfg, train_cfg, task_limits = cell_config(m, cell)
        task_limits.update(limits or {})
        rec = {
            "cell": {k_: v for k_, v in cell.items() if k_ != "combo"} | {"combo": cell["combo"]},
            "config": {"model": model_cfg, "train": train_cfg, "limits": task_limits},
        }
        return plugins.stamp(rec, model_cfg.get("arch"))

    def execute_cell(cell: dict[str, Any], rec: dict[str, Any]) -> dict[str, Any]:
        task, cfg = m["tasks"][cell["task"]], rec["config"]
        torch.manual_seed(cell["seed"])
        result = TASKS[task["loop"]](
            cfg["model"], cfg["train"], seed=cell["seed"], device=device, limits=cfg["limits"]
        )
        value = result["metrics"].get(task["metric"])
        if value is None or (isinstance(value, float) and not math.isfinite(value)):
            raise FloatingPointError(f"metric {task['metric']!r} is {value!r}")
        points = curve_points(result, task["curve"])
        goal = task.get("curve_goal", task.get("goal", "max"))
        return {
            "result": result,
            "metric": value,
            "time_to_target_s": time_to_target(points, task["target"], goal),
            "train_seconds": points[-1][0] if points else None,
        }

    def shown(rec: dict[str, Any]) -> str:
        return (
            f" {rec['metric']:.4g}" if rec["status"] == "ok" else f" {console_reason(rec['error'])}"
        )

    out = run_each(
        opts.store(), cells, kind="quality", record_kind="quality", start=start,
        execute_cell=execute_cell, manifest={"matrix": str(opts.matrix_path), "k": opts.k},
        device=device, echo=opts.echo, shard=opts.shard,
        executor=opts.executor_factory(), shown=shown,
    )  # fmt: skip
    return out.ok, out.failed


# -- report -----------------------------------------------------------------------------------
def report(
    run_id: str, *, results_dir: Path, out_dir: Path | None = None, matrix_path: Path | str = MATRIX
) -> Path:
    """reports/<run-id>/README.md (+ PNGs) from the run's results only; the page is
    bench/report/quality.py's."""
    from ..report.quality import render

    m = load_matrix(matrix_path)
    recs = records_of(run_id, results_dir, "quality", "quality")
    out = Path(out_dir or Path("reports") / run_id)
    return write_page(out, lambda d: render(run_id, m, recs, d))
