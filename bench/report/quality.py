"""The quality report's Markdown and plots (``bench quality`` → reports/<run-id>/): one
table per task of metric and time-to-target, the scratch-vs-builtin gap, a plot, and
findings computed from the same records. The page is SECTIONS in order, each a small
function of a Page returning lines that end with the blank line after them; a task's part
of the page is TASK_PARTS in order, and its findings TASK_FINDINGS."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import archs
from .markdown import mean_std, table


def _mean_text(values: list[float], digits: int = 3) -> str:
    if not values:
        return "—"
    mean, std = mean_std(values)
    return f"{mean:.{digits}f}" + (f" ± {std:.{digits}f}" if len(values) > 1 else "")


def _ttt(values: list[float | None]) -> str:
    reached = [v for v in values if v is not None]
    if not reached:
        return "not reached"
    shown = f"{sum(reached) / len(reached):.1f} s"
    return shown if len(reached) == len(values) else f"{shown} ({len(reached)}/{len(values)} seeds)"


def _better(a: float, b: float, goal: str) -> bool:
    return a > b if goal == "max" else a < b


def _gaps(t: dict, rows: list[dict]) -> tuple[list[str], list[list[str]], list[float]]:
    """Scratch against built-in on cells alike but for the implementation: (the axes that
    pair them, a table row per pair, each pair's absolute gap of the mean metric)."""
    pair_axes = [a for a in t["axes"] if a != "impl"]
    by_rest: dict[tuple, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        by_rest[tuple(r["cell"][a] for a in pair_axes)][r["cell"]["impl"]].append(r["metric"])
    gap_rows, gaps = [], []
    for rest, impls in by_rest.items():
        if "scratch" in impls and "builtin" in impls:
            s_, b_ = mean_std(impls["scratch"])[0], mean_std(impls["builtin"])[0]
            gaps.append(abs(s_ - b_))
            gap_rows.append([*rest, f"{b_:.4f}", f"{s_:.4f}", f"{s_ - b_:+.4f}"])
    return pair_axes, gap_rows, gaps


@dataclass
class Task:
    """One task of the matrix with its ok records, grouped as its table shows them: a row
    per combination of the axes but reg (in matrix order), a column pair per regularizer."""

    name: str
    t: dict[str, Any]
    rows: list[dict[str, Any]]
    axes: list[str]
    regs: list[str]
    groups: dict[tuple, dict[str, list[dict]]]
    keys: list[tuple]

    @classmethod
    def of(cls, name: str, t: dict[str, Any], rows: list[dict[str, Any]]) -> Task:
        axes = [a for a in t["axes"] if a != "reg"]
        groups: dict[tuple, dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
        for r in rows:
            groups[tuple(r["cell"][a] for a in axes)][r["cell"]["reg"]].append(r)
        order = {a: [str(v) for v in t["axes"][a]] for a in axes}
        keys = sorted(
            groups, key=lambda k: tuple(order[a].index(v) for a, v in zip(axes, k, strict=True))
        )
        regs = list(t["axes"].get("reg", ["none"]))
        return cls(name, t, rows, axes, regs, groups, keys)

    @property
    def goal(self) -> str:
        return self.t.get("goal", "max")

    @property
    def label(self) -> str:
        return self.t.get("metric_label", self.t["metric"])


@dataclass
class Page:
    """What the quality report's sections read: the run's records and its tasks."""

    run_id: str
    m: dict[str, Any]
    recs: list[dict[str, Any]]
    out_dir: Path
    ok: list[dict[str, Any]] = field(init=False)
    failed: list[dict[str, Any]] = field(init=False)
    tasks: list[Task] = field(init=False)

    def __post_init__(self) -> None:
        self.ok = [r for r in self.recs if r["status"] == "ok"]
        self.failed = [r for r in self.recs if r["status"] != "ok"]
        self.tasks = []
        for name, t in self.m["tasks"].items():
            rows = [r for r in self.ok if r["cell"]["task"] == name]
            if rows:
                self.tasks.append(Task.of(name, t, rows))


def _commits(recs: list[dict[str, Any]]) -> str:
    """Each commit the cells ran at (dirty or not), with its number of cells."""
    commits: dict[str, int] = defaultdict(int)
    for r in recs:
        p = r["provenance"]
        dirty = " (dirty)" if p.get("git_dirty") else ""
        commits[f"`{(p.get('git_commit') or 'unknown')[:10]}`{dirty}"] += 1
    return ", ".join(f"{c} ({n} cells)" for c, n in commits.items())


def header(page: Page) -> list[str]:
    """The run, its machine and commits, and how to read time-to-target."""
    recs, prov = page.recs, page.recs[0]["provenance"]
    threads = "/".join(sorted({str(r["provenance"]["torch_threads"]) for r in recs}))
    seeds = ", ".join(sorted({str(r["cell"]["seed"]) for r in recs}))
    return [
        "# Quality matrix: how well, and how soon, each variant trains",
        "",
        f"Run `{page.run_id}`, started {prov['run_started_at']}; {prov['device_name']} "
        f"({prov.get('cpu_model', '')}), {threads} torch thread(s), torch {prov['torch_version']}, "
        f"commit {_commits(recs)}. {len(page.ok)} cells ok, {len(page.failed)} failed; seeds "
        f"{seeds} (a cell's seeds are averaged: mean ± sample std).",
        f"Every number is read from `results/{page.run_id}/results.jsonl`; the matrix is "
        "`bench/matrices/quality.toml` (each cell's full settings are in its record).",
        "",
        "Each cell trains for its task's fixed budget under its seed; the same seed gives the same "
        "metrics. **Time-to-target** is the training time (validation excluded) until the task's "
        "curve first reaches the stated target, read at the curve's points (per epoch, or every "
        "50 batches for AG News's running accuracy); it is wall-clock on a shared machine, so "
        "compare it within a table, not across runs.",
        "",
    ]


def task_table(page: Page, task: Task) -> list[str]:
    """The task's heading, metric and target, and its table: metric and time-to-target of
    every cell, a column pair per regularizer."""
    t, regs = task.t, task.regs
    header = [*task.axes]
    for reg in regs:
        suffix = f" ({reg})" if len(regs) > 1 else ""
        header += [f"{task.label}{suffix}", f"time to target{suffix}"]
    rows = []
    for key in task.keys:
        row = list(key)
        for reg in regs:
            cells = task.groups[key].get(reg, [])
            row += [
                _mean_text([c["metric"] for c in cells]),
                _ttt([c["time_to_target_s"] for c in cells]) if cells else "—",
            ]
        rows.append(row)
    cond = "≥" if t.get("curve_goal", task.goal) == "max" else "≤"
    better = "higher" if task.goal == "max" else "lower"
    return [
        f"## {task.name}: {t.get('title', '')}",
        "",
        f"Metric: {task.label} at the end of the budget ({better} is better). Target: "
        f"`{t['curve']}` {cond} {t['target']}.",
        "",
        table(rows, header),
        "",
    ]


def task_notes(page: Page, task: Task) -> list[str]:
    """The notes the task loop left in its results (each once)."""
    notes = sorted({n for r in task.rows for n in r["result"].get("notes", [])})
    return [f"> {n}" for n in notes] + ([""] if notes else [])


def task_gaps(page: Page, task: Task) -> list[str]:
    """Scratch against built-in, same cell otherwise."""
    pair_axes, gap_rows, _ = _gaps(task.t, task.rows)
    if not gap_rows:
        return []
    return [
        "Scratch against built-in, same cell otherwise (same seed, same initial weights "
        "where the maths is the same; the two then drift apart by float rounding):",
        "",
        table(gap_rows, [*pair_axes, "builtin", "scratch", "scratch − builtin"]),
        "",
    ]


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


def _bar_values(task: Task, reg: str) -> tuple[list[float], list[float]]:
    """Per row of the task's table: the mean metric and the mean time-to-target of one
    regularizer's cells (NaN where none, or none reached the target)."""
    vals, ttt = [], []
    for k in task.keys:
        cells = task.groups[k].get(reg, [])
        vals.append(mean_std([c["metric"] for c in cells])[0] if cells else math.nan)
        reached = [c["time_to_target_s"] for c in cells if c["time_to_target_s"] is not None]
        ttt.append(sum(reached) / len(reached) if reached else math.nan)
    return vals, ttt


def _plot_task(task: Task, out_dir: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .plots import save_png

    t, keys, regs = task.t, task.keys, task.regs
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, max(3.5, 0.32 * len(keys) + 1.5)))
    height = 0.8 / len(regs)
    for j, reg in enumerate(regs):
        ys = [i + (j - (len(regs) - 1) / 2) * height for i in range(len(keys))]
        vals, ttt = _bar_values(task, reg)
        ax1.barh(ys, vals, height=height, label=reg)
        ax2.barh(ys, ttt, height=height, label=reg)
    for ax in (ax1, ax2):
        ax.set_yticks(range(len(keys)))
        ax.set_yticklabels([" ".join(str(v) for v in k) for k in keys], fontsize=8)
        ax.invert_yaxis()
        ax.grid(axis="x", alpha=0.3)
    ax2.set_yticklabels([])
    ax1.set_xlabel(
        task.label + (" (higher is better)" if task.goal == "max" else " (lower is better)")
    )
    cond = "≥" if t.get("curve_goal", task.goal) == "max" else "≤"
    ax2.set_xlabel(f"seconds to target ({t['curve']} {cond} {t['target']}); empty = not reached")
    if len(regs) > 1:
        ax1.legend(title="regularization", fontsize=8)
    fig.suptitle(f"{task.name}: " + " × ".join(task.axes), fontsize=10)
    fig.tight_layout()
    return save_png(fig, out_dir / f"quality_{task.name}.png", dpi=110)


def task_plot(page: Page, task: Task) -> list[str]:
    """The task's plot (drawn here): mean metric and time-to-target per cell."""
    png = _plot_task(task, page.out_dir)
    return [f"![{task.name}]({png.name})", ""]


#: a task's part of the page, in order
TASK_PARTS: tuple[Callable[[Page, Task], list[str]], ...] = (
    task_table,
    task_notes,
    task_gaps,
    task_plot,
)


def gap_finding(task: Task) -> list[str]:
    _, _, gaps = _gaps(task.t, task.rows)
    if not gaps:
        return []
    return [
        f"**{task.name}**: scratch and built-in reach the same quality to within "
        f"{max(gaps):.4f} {task.label} (largest gap over {len(gaps)} pairs; median "
        f"{sorted(gaps)[len(gaps) // 2]:.4f})."
    ]


def best_cell(task: Task) -> list[str]:
    means = _seed_means(task.rows)
    best = max(means, key=lambda k: means[k] if task.goal == "max" else -means[k])
    return [
        f"**{task.name}**: best cell `{best}` with {task.label} {means[best]:.4f} (mean over "
        "its seeds)."
    ]


def reg_findings(task: Task) -> list[str]:
    """For each regularizer: mean change of the metric against `none` on matching cells."""
    regs = task.t["axes"].get("reg", [])
    if "none" not in regs or len(regs) < 2:
        return []
    rest_axes = [a for a in task.t["axes"] if a != "reg"]
    base = {
        tuple(r["cell"][a] for a in rest_axes): r["metric"]
        for r in task.rows
        if r["cell"]["reg"] == "none"
    }
    out = []
    for reg in (r for r in regs if r != "none"):
        deltas = [
            r["metric"] - base[k]
            for r in task.rows
            if r["cell"]["reg"] == reg and (k := tuple(r["cell"][a] for a in rest_axes)) in base
        ]
        if deltas:
            helped = sum(1 for d in deltas if (d > 0) == (task.goal == "max") and d != 0)
            out.append(
                f"**{task.name}**: `{reg}` changes {task.label} by "
                f"{sum(deltas) / len(deltas):+.4f} on average against no regularization "
                f"(better in {helped} of {len(deltas)} matching cells, within this budget)."
            )
    return out


def transformer_finding(task: Task) -> list[str]:
    """The best Transformer cell against the best RNN cell (means over seeds)."""
    means = _seed_means(task.rows)
    tr = {k: v for k, v in means.items() if _is_baseline_cell(k)}
    rnn = {k: v for k, v in means.items() if k not in tr}
    if not tr or not rnn:
        return []
    sign = 1 if task.goal == "max" else -1
    bt = max(tr, key=lambda k: sign * tr[k])
    br = max(rnn, key=lambda k: sign * rnn[k])
    word = "beats" if _better(tr[bt], rnn[br], task.goal) else "trails"
    return [
        f"**{task.name}**: the best Transformer (`{bt}`, {tr[bt]:.4f}) {word} the best "
        f"RNN (`{br}`, {rnn[br]:.4f}) at this budget (means over seeds)."
    ]


def packed_finding(task: Task) -> list[str]:
    """Packed against padded input, pair by pair (same cell and seed otherwise)."""
    pairs: dict[tuple, dict[str, dict]] = defaultdict(dict)
    for r in task.rows:
        c = r["cell"]
        pairs[(c["arch"], c["impl"], c["layers"], c["reg"], c["seed"])][c["input"]] = r
    wins = [
        (p["packed"]["metric"], p["padded"]["metric"])
        for p in pairs.values()
        if "packed" in p and "padded" in p
    ]
    if not wins:
        return []
    better = sum(1 for a, b in wins if _better(a, b, task.goal))
    mean = sum(a - b for a, b in wins) / len(wins)
    return [
        f"**{task.name}**: packed input scores {mean:+.4f} against padded on average, better in "
        f"{better} of {len(wins)} pairs (a padded batch's last state has run over the padding)."
    ]


#: a task's findings, in order
TASK_FINDINGS: tuple[Callable[[Task], list[str]], ...] = (
    gap_finding,
    best_cell,
    reg_findings,
    transformer_finding,
    packed_finding,
)


def tasks(page: Page) -> list[str]:
    """Every task's part of the page (TASK_PARTS), in matrix order."""
    return [line for task in page.tasks for part in TASK_PARTS for line in part(page, task)]


def findings(page: Page) -> list[str]:
    found = [f for task in page.tasks for finding in TASK_FINDINGS for f in finding(task)]
    if not found:
        return []
    return ["## Findings (computed from the tables above)", "", *[f"- {f}" for f in found], ""]


def failed(page: Page) -> list[str]:
    if not page.failed:
        return []
    rows = [[r["cell_id"], str(r.get("error", "")).replace("|", "\\|")[:300]] for r in page.failed]
    return ["## Failed cells", "", table(rows, ["cell", "error"]), ""]


#: the page, in order
SECTIONS: tuple[Callable[[Page], list[str]], ...] = (header, tasks, findings, failed)


def render(run_id: str, m: dict[str, Any], recs: list[dict[str, Any]], out_dir: Path) -> str:
    """The quality report's Markdown (drawing each task's plot into out_dir)."""
    page = Page(run_id, m, recs, out_dir)
    return "\n".join(line for section in SECTIONS for line in section(page))
