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
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from . import archs, kexpr
from .failures import console_reason, failure_fields
from .interrupt import critical
from .provenance import collect, injections, now_iso
from .results import ResultStore, atomic_write_text, check_run_id, mkdir
from .schema import SCHEMA
from .study import StudyError, read_toml

MATRIX = Path(__file__).with_name("matrices") / "quality.toml"
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
                parts = [task] + [f"{a}={combo[a]}" for a in axes] + [f"s{seed}", device]
                cells.append({**fields, "seed": seed, "combo": combo, "cell_id": "/".join(parts)})
    return cells


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
def run(
    run_id: str,
    *,
    results_dir: Path,
    k: str | None = None,
    seeds: list[int] | None = None,
    device: str = "cpu",
    matrix_path: Path | str = MATRIX,
    threads: int | None = None,
    limits: dict[str, int] | None = None,
    echo=print,
) -> tuple[int, int]:
    """Run every selected cell not yet recorded; returns (ok, failed).

    `limits` overrides every task's budget (tests and smoke runs)."""
    import torch

    from rnnsuite.recipes.tasks import TASKS

    m = load_matrix(matrix_path)
    threads = threads or m.get("threads")
    if threads:
        torch.set_num_threads(int(threads))
    cells = plan(m, device, k, seeds)
    store = ResultStore(Path(results_dir) / check_run_id(run_id))
    with store.writing("quality"):  # one writer per run id; SIGTERM like Ctrl-C
        done = store.finished_ids(retry_failed=True)
        todo = [c for c in cells if c["cell_id"] not in done]
        echo(
            f"quality: {len(cells)} cells selected, {len(cells) - len(todo)} already done, {len(todo)} to run"
        )
        started = now_iso()
        if store.read_manifest() is None:
            store.write_manifest(
                {
                    "run_id": run_id,
                    "kind": "quality",
                    "matrix": str(matrix_path),
                    "started_at": started,
                    "k": k,
                    "injections": injections(),
                }
            )
        prov = collect(device, started)
        ok = failed = 0
        t_run = time.perf_counter()
        for i, cell in enumerate(todo, 1):
            t0 = time.perf_counter()
            task = m["tasks"][cell["task"]]
            model_cfg, train_cfg, task_limits = cell_config(m, cell)
            task_limits.update(limits or {})
            rec: dict[str, Any] = {
                "schema": SCHEMA,
                "cell_id": cell["cell_id"],
                "kind": "quality",
                "cell": {k_: v for k_, v in cell.items() if k_ != "combo"}
                | {"combo": cell["combo"]},
                "config": {"model": model_cfg, "train": train_cfg, "limits": task_limits},
                "provenance": prov,
                "started_at": now_iso(),
            }
            try:
                torch.manual_seed(cell["seed"])
                result = TASKS[task["loop"]](
                    model_cfg, train_cfg, seed=cell["seed"], device=device, limits=task_limits
                )
                value = result["metrics"].get(task["metric"])
                if value is None or (isinstance(value, float) and not math.isfinite(value)):
                    raise FloatingPointError(f"metric {task['metric']!r} is {value!r}")
                points = curve_points(result, task["curve"])
                goal = task.get("curve_goal", task.get("goal", "max"))
                rec.update(
                    status="ok",
                    result=result,
                    metric=value,
                    time_to_target_s=time_to_target(points, task["target"], goal),
                    train_seconds=points[-1][0] if points else None,
                )
                ok += 1
            except Exception as e:  # a failed cell is recorded; the matrix goes on
                rec.update(failure_fields(e))
                failed += 1
            rec["seconds"] = time.perf_counter() - t0
            with critical():
                store.append(rec)
            elapsed = time.perf_counter() - t_run
            eta = elapsed / i * (len(todo) - i)
            shown = (
                f"{rec['metric']:.4g}" if rec["status"] == "ok" else console_reason(rec["error"])
            )
            echo(
                f"[{i}/{len(todo)}] {cell['cell_id']}: {rec['status']} {shown} "
                f"in {rec['seconds']:.0f}s (ETA {eta / 60:.1f} min)"
            )
        return ok, failed


# -- report -----------------------------------------------------------------------------------
def _table(rows: list[list[str]], header: list[str]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def _mean_std(values: list[float]) -> tuple[float, float]:
    mean = sum(values) / len(values)
    var = sum((v - mean) ** 2 for v in values) / (len(values) - 1) if len(values) > 1 else 0.0
    return mean, math.sqrt(var)


def _fmt(values: list[float], digits: int = 3) -> str:
    if not values:
        return "—"
    mean, std = _mean_std(values)
    return f"{mean:.{digits}f}" + (f" ± {std:.{digits}f}" if len(values) > 1 else "")


def _ttt(values: list[float | None]) -> str:
    reached = [v for v in values if v is not None]
    if not reached:
        return "not reached"
    shown = f"{sum(reached) / len(reached):.1f} s"
    return shown if len(reached) == len(values) else f"{shown} ({len(reached)}/{len(values)} seeds)"


def _label(fields: dict[str, str], axes: list[str]) -> str:
    return " ".join(
        fields[a] if a in ("arch", "impl", "decoder", "input") else f"{a}={fields[a]}" for a in axes
    )


def _better(a: float, b: float, goal: str) -> bool:
    return a > b if goal == "max" else a < b


def report(
    run_id: str, *, results_dir: Path, out_dir: Path | None = None, matrix_path: Path | str = MATRIX
) -> Path:
    """reports/<run-id>/README.md (+ PNGs) from the run's results only."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    m = load_matrix(matrix_path)
    store = ResultStore(Path(results_dir) / check_run_id(run_id))
    recs = [r for r in store.latest() if r.get("kind") == "quality"]
    if not recs:
        raise ValueError(
            f"run {run_id!r} in {results_dir} has no quality results: run "
            f"`python -m bench quality --run-id {run_id}` first, or name an earlier run"
        )
    out_dir = Path(out_dir or Path("reports") / run_id)
    mkdir(out_dir)
    prov = recs[0]["provenance"]
    ok = [r for r in recs if r["status"] == "ok"]
    failed = [r for r in recs if r["status"] != "ok"]
    threads = "/".join(sorted({str(r["provenance"]["torch_threads"]) for r in recs}))
    commits: dict[str, int] = defaultdict(int)
    for r in recs:
        p = r["provenance"]
        commits[
            f"`{(p.get('git_commit') or 'unknown')[:10]}`"
            + (" (dirty)" if p.get("git_dirty") else "")
        ] += 1
    commit_text = ", ".join(f"{c} ({n} cells)" for c, n in commits.items())
    lines = [
        "# Quality matrix: how well, and how soon, each variant trains",
        "",
        f"Run `{run_id}`, started {prov['run_started_at']}; {prov['device_name']} "
        f"({prov.get('cpu_model', '')}), {threads} torch thread(s), torch {prov['torch_version']}, "
        f"commit {commit_text}. {len(ok)} cells ok, {len(failed)} failed; seeds "
        f"{', '.join(sorted({str(r['cell']['seed']) for r in recs}))} (a cell's seeds are "
        "averaged: mean ± sample std).",
        f"Every number is read from `results/{run_id}/results.jsonl`; the matrix is "
        "`bench/matrices/quality.toml` (each cell's full settings are in its record).",
        "",
        "Each cell trains for its task's fixed budget under its seed; the same seed gives the same "
        "metrics. **Time-to-target** is the training time (validation excluded) until the task's "
        "curve first reaches the stated target, read at the curve's points (per epoch, or every "
        "50 batches for AG News's running accuracy); it is wall-clock on a shared machine, so "
        "compare it within a table, not across runs.",
        "",
    ]
    findings: list[str] = []
    for task, t in m["tasks"].items():
        rows_t = [r for r in ok if r["cell"]["task"] == task]
        if not rows_t:
            continue
        goal = t.get("goal", "max")
        axes = [a for a in t["axes"] if a != "reg"]
        regs = list(t["axes"].get("reg", ["none"]))
        groups: dict[tuple, dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
        for r in rows_t:
            key = tuple(r["cell"][a] for a in axes)
            groups[key][r["cell"]["reg"]].append(r)
        order = {a: [str(v) for v in t["axes"][a]] for a in axes}
        keys = sorted(
            groups, key=lambda k: tuple(order[a].index(v) for a, v in zip(axes, k, strict=True))
        )
        header = [*axes]
        for reg in regs:
            suffix = f" ({reg})" if len(regs) > 1 else ""
            header += [f"{t.get('metric_label', t['metric'])}{suffix}", f"time to target{suffix}"]
        table = []
        for key in keys:
            row = list(key)
            for reg in regs:
                cells = groups[key].get(reg, [])
                row += [
                    _fmt([c["metric"] for c in cells]),
                    _ttt([c["time_to_target_s"] for c in cells]) if cells else "—",
                ]
            table.append(row)
        cond = "≥" if t.get("curve_goal", goal) == "max" else "≤"
        lines += [
            f"## {task}: {t.get('title', '')}",
            "",
            f"Metric: {t.get('metric_label', t['metric'])} at the end of the budget "
            f"({'higher' if goal == 'max' else 'lower'} is better). Target: `{t['curve']}` {cond} "
            f"{t['target']}.",
            "",
            _table(table, header),
            "",
        ]
        notes = sorted({n for r in rows_t for n in r["result"].get("notes", [])})
        lines += [f"> {n}" for n in notes] + ([""] if notes else [])
        # scratch vs builtin: same cell otherwise
        gap_rows, gaps = [], []
        pair_axes = [a for a in t["axes"] if a != "impl"]
        by_rest: dict[tuple, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
        for r in rows_t:
            by_rest[tuple(r["cell"][a] for a in pair_axes)][r["cell"]["impl"]].append(r["metric"])
        for rest, impls in by_rest.items():
            if "scratch" in impls and "builtin" in impls:
                s_, b_ = _mean_std(impls["scratch"])[0], _mean_std(impls["builtin"])[0]
                gaps.append(abs(s_ - b_))
                gap_rows.append([*rest, f"{b_:.4f}", f"{s_:.4f}", f"{s_ - b_:+.4f}"])
        if gap_rows:
            lines += [
                "Scratch against built-in, same cell otherwise (same seed, same initial weights "
                "where the maths is the same; the two then drift apart by float rounding):",
                "",
                _table(gap_rows, [*pair_axes, "builtin", "scratch", "scratch − builtin"]),
                "",
            ]
            findings.append(
                f"**{task}**: scratch and built-in reach the same quality to within "
                f"{max(gaps):.4f} {t.get('metric_label', t['metric'])} (largest gap over "
                f"{len(gaps)} pairs; median {sorted(gaps)[len(gaps) // 2]:.4f})."
            )
        means = _seed_means(rows_t)
        best = max(means, key=lambda k: means[k] if goal == "max" else -means[k])
        findings.append(
            f"**{task}**: best cell `{best}` with {t.get('metric_label', t['metric'])} "
            f"{means[best]:.4f} (mean over its seeds)."
        )
        findings += _reg_findings(task, t, rows_t, goal)
        findings += _transformer_finding(task, t, rows_t, goal)
        findings += _packed_finding(task, rows_t, goal)
        png = _plot_task(task, t, keys, groups, axes, regs, out_dir, plt)
        lines += [f"![{task}]({png.name})", ""]
    if findings:
        lines[len(lines) :] = (
            ["## Findings (computed from the tables above)", ""]
            + [f"- {f}" for f in findings]
            + [""]
        )
    if failed:
        lines += ["## Failed cells", ""]
        lines += [
            _table(
                [[r["cell_id"], str(r.get("error", "")).replace("|", "\\|")[:300]] for r in failed],
                ["cell", "error"],
            ),
            "",
        ]
    path = out_dir / "README.md"
    atomic_write_text(path, "\n".join(lines))
    return path


def _reg_findings(task: str, t: dict, rows: list[dict], goal: str) -> list[str]:
    """For each regularizer: mean change of the metric against `none` on matching cells."""
    regs = t["axes"].get("reg", [])
    if "none" not in regs or len(regs) < 2:
        return []
    rest_axes = [a for a in t["axes"] if a != "reg"]
    base = {
        tuple(r["cell"][a] for a in rest_axes): r["metric"]
        for r in rows
        if r["cell"]["reg"] == "none"
    }
    out = []
    for reg in regs:
        if reg == "none":
            continue
        deltas = [
            r["metric"] - base[k]
            for r in rows
            if r["cell"]["reg"] == reg and (k := tuple(r["cell"][a] for a in rest_axes)) in base
        ]
        if deltas:
            helped = sum(1 for d in deltas if (d > 0) == (goal == "max") and d != 0)
            out.append(
                f"**{task}**: `{reg}` changes {t.get('metric_label', t['metric'])} by "
                f"{sum(deltas) / len(deltas):+.4f} on average against no regularization "
                f"(better in {helped} of {len(deltas)} matching cells, within this budget)."
            )
    return out


def _seed_means(rows: list[dict]) -> dict[str, float]:
    """Mean metric per cell over its seeds, keyed by the cell id without the seed."""
    by: dict[str, list[float]] = defaultdict(list)
    for r in rows:
        by["/".join(p for p in r["cell_id"].split("/") if p != f"s{r['cell']['seed']}")].append(
            r["metric"]
        )
    return {k: sum(v) / len(v) for k, v in by.items()}


def _is_baseline_cell(cell_id: str) -> bool:
    return any(f"arch={a}" in cell_id.split("/") for a in archs.BASELINES)


def _transformer_finding(task: str, t: dict, rows: list[dict], goal: str) -> list[str]:
    means = _seed_means(rows)
    tr = {k: v for k, v in means.items() if _is_baseline_cell(k)}
    rnn = {k: v for k, v in means.items() if k not in tr}
    if not tr or not rnn:
        return []
    sign = 1 if goal == "max" else -1
    bt = max(tr, key=lambda k: sign * tr[k])
    br = max(rnn, key=lambda k: sign * rnn[k])
    word = "beats" if _better(tr[bt], rnn[br], goal) else "trails"
    return [
        f"**{task}**: the best Transformer (`{bt}`, {tr[bt]:.4f}) {word} the best "
        f"RNN (`{br}`, {rnn[br]:.4f}) at this budget (means over seeds)."
    ]


def _packed_finding(task: str, rows: list[dict], goal: str) -> list[str]:
    pairs = defaultdict(dict)
    for r in rows:
        c = r["cell"]
        pairs[(c["arch"], c["impl"], c["layers"], c["reg"], c["seed"])][c["input"]] = r
    out = []
    wins = [
        (p["packed"]["metric"], p["padded"]["metric"])
        for p in pairs.values()
        if "packed" in p and "padded" in p
    ]
    if wins:
        better = sum(1 for a, b in wins if _better(a, b, goal))
        mean = sum(a - b for a, b in wins) / len(wins)
        out.append(
            f"**{task}**: packed input scores {mean:+.4f} against padded on average, better in "
            f"{better} of {len(wins)} pairs (a padded batch's last state has run over the padding)."
        )
    return out


def _plot_task(task, t, keys, groups, axes, regs, out_dir: Path, plt) -> Path:
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, max(3.5, 0.32 * len(keys) + 1.5)))
    labels = [" ".join(str(v) for v in k) for k in keys]
    height = 0.8 / len(regs)
    for j, reg in enumerate(regs):
        ys = [i + (j - (len(regs) - 1) / 2) * height for i in range(len(keys))]
        vals = [
            _mean_std([c["metric"] for c in groups[k].get(reg, [])])[0]
            if groups[k].get(reg)
            else math.nan
            for k in keys
        ]
        ttt = []
        for k in keys:
            reached = [
                c["time_to_target_s"]
                for c in groups[k].get(reg, [])
                if c["time_to_target_s"] is not None
            ]
            ttt.append(sum(reached) / len(reached) if reached else math.nan)
        ax1.barh(ys, vals, height=height, label=reg)
        ax2.barh(ys, ttt, height=height, label=reg)
    for ax in (ax1, ax2):
        ax.set_yticks(range(len(keys)))
        ax.set_yticklabels(labels, fontsize=8)
        ax.invert_yaxis()
        ax.grid(axis="x", alpha=0.3)
    ax2.set_yticklabels([])
    ax1.set_xlabel(
        t.get("metric_label", t["metric"])
        + (" (higher is better)" if t.get("goal", "max") == "max" else " (lower is better)")
    )
    ax2.set_xlabel(
        f"seconds to target ({t['curve']} {'≥' if t.get('curve_goal', t.get('goal', 'max')) == 'max' else '≤'} {t['target']}); empty = not reached"
    )
    if len(regs) > 1:
        ax1.legend(title="regularization", fontsize=8)
    fig.suptitle(f"{task}: " + " × ".join(axes), fontsize=10)
    fig.tight_layout()
    from .plots import save_png

    return save_png(fig, out_dir / f"quality_{task}.png", dpi=110)
