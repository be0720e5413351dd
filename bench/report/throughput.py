"""The sections of the throughput report (``reports/<run-id>/README.md``): each a small
function of the run (data.Run) returning its Markdown lines, each section's lines
starting with the blank line that parts it from the one before; the page is SECTIONS
in order (render)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from . import spec
from .data import Run, transformer_pairs
from .environment import _environment
from .frame import short_name
from .markdown import Column, column_table, fmt, mib, ratio, table, tok_iqr
from .throughput_findings import harness_max, run_findings

#: the plots (bench/plots.py names) the page shows where the run drew them, in order
PLOTS = (
    ("throughput_by_arch", "Throughput by architecture and implementation"),
    ("ratio_scratch_builtin", "Scratch / built-in ratio"),
    ("packed_vs_padded", "Packed vs padded against padding fraction"),
    ("scaling_layers", "Scaling with layers"),
    ("scaling_seqlen", "Scaling with sequence length"),
    ("memory", "Memory"),
)
_KIND_WORDS = {"oom": "out of memory", "non_finite_loss": "non-finite loss"}


def _rows(df: pd.DataFrame) -> Iterator[pd.Series]:
    return (r for _, r in df.iterrows())


def _failure_status(status: str, kind: str | None) -> str:
    """``failed (out of memory)`` for a cell whose record says why it failed."""
    words = _KIND_WORDS.get(kind or "")
    return f"{status} ({words})" if words else status


def title(run: Run) -> list[str]:
    """The run, its matrix, and how many cells ran, failed, were skipped or are to come."""
    df, manifest, matrix = run.df, run.manifest, run.matrix
    n = df.status.value_counts().to_dict() if not df.empty else {}
    pending = len(manifest.get("cell_ids", [])) - len(df) if manifest else 0
    return [
        f"# Bench report — run `{run.run_id}`",
        "",
        f"Matrix **{matrix.get('name', '?')}** — {matrix.get('description', '')}. "
        f"{len(df)} cells: {n.get('ok', 0)} ok, {n.get('failed', 0)} failed, "
        f"{n.get('skipped', 0)} skipped."
        + (f" {pending} selected cells have no result yet." if pending > 0 else ""),
    ]


def method(run: Run) -> list[str]:
    """Where the numbers come from and what a ratio is."""
    return [
        "",
        "Every number below is read from `results.jsonl` of this run. Throughput is in "
        "valid (non-padding) tokens per second; **ratios are medians of per-repeat ratios** "
        "between variants timed interleaved in the same process (the number that survives a "
        "noisy machine), with the interquartile range in parentheses. *fwd* is inference "
        "(eval, no_grad); *train* is one training step (forward, loss, backward, plus the "
        "optimizer step where the cell names one).",
    ]


def injected(run: Run) -> list[str]:
    """A warning when any cell ran with a slowdown injected for testing."""
    inj = sorted({i for i in run.df.get("injected", pd.Series(dtype=str)).dropna() if i})
    if not inj:
        return []
    return ["", f"> **Warning: slowdown injected for testing: {', '.join(inj)}.**"]


def environment(run: Run) -> list[str]:
    return ["", "## Environment", "", table(_environment(run.records), ["", "value"])]


def findings(run: Run) -> list[str]:
    return ["", "## Findings", ""] + ([f"- {s}" for s in run_findings(run)] or ["- (no ok cells)"])


BAR_COLUMNS: list[Column] = [
    ("bar", lambda b: b["bar"]),
    ("shape", lambda b: f"{b['spec']} L{b['layers']}"),
    ("arch", lambda b: b["arch"]),
    ("lengths", lambda b: b["lengths"]),
    ("threads", lambda b: str(b["threads"] or "–")),
    ("load", lambda b: fmt(b["load"], ".1f")),
    ("scratch / built-in", lambda b: f"{b['ratio']:.2f} ({b['q1']:.2f}–{b['q3']:.2f})"),
    ("verdict", lambda b: "holds" if b["holds"] else "**misses**"),
]


def performance_bars(run: Run) -> list[str]:
    """Every bar check of the run, and the timing harness's overhead against its bar."""
    lines = [
        "",
        "## Performance bars",
        "",
        "*load* is the machine's 1-minute load average when the cell's group started (2 CPUs; "
        "other jobs share them). With 2 torch threads a loaded machine stalls every parallel "
        "region; the single-threaded rows are the steadier reading.",
        "",
    ]
    if not run.bars:
        return [*lines, f"(this run has no {spec.BAR_SPEC} scratch/built-in cells)"]
    hmax = harness_max(run.ok)
    return [
        *lines,
        column_table(run.bars, BAR_COLUMNS),
        "",
        "Harness overhead per timed call (the timer, mode switch and clearing grads, timed "
        f"alone): at most {fmt(hmax, '.3%')} of the call "
        f"(bar < {spec.HARNESS_BAR:.0%}): "
        + ("holds." if pd.notna(hmax) and hmax < spec.HARNESS_BAR else "**misses**."),
    ]


def plots(run: Run) -> list[str]:
    """The PNGs the run drew, each under its title."""
    lines: list[str] = []
    for name, heading in PLOTS:
        if name in run.plot_files:
            lines += ["", f"### {heading}", "", f"![{heading}]({run.plot_files[name].name})"]
    return lines


THROUGHPUT_COLUMNS: list[Column] = [
    ("cell", short_name),
    ("fwd tok/s (±IQR)", lambda r: tok_iqr(r, "fwd")),
    ("train tok/s (±IQR)", lambda r: tok_iqr(r, "train")),
    ("fwd vs built-in", lambda r: ratio(r, "fwd", "vs_builtin")),
    ("train vs built-in", lambda r: ratio(r, "train", "vs_builtin")),
    ("train vs scratch", lambda r: ratio(r, "train", "vs_scratch") if r.impl != "scratch" else "–"),
    ("fwd FLOP frac", lambda r: fmt(r.fwd_flop_frac, ".0%")),
    ("train FLOP frac", lambda r: fmt(r.train_flop_frac, ".0%")),
]


def throughput(run: Run) -> list[str]:
    """Every ok cell's throughput, ratios and FLOP fraction."""
    ok = run.ok
    cut = "cut_by_budget" in ok and ok.cut_by_budget.fillna(False).astype(bool).any()
    budget = (
        f"{int(ok.cut_by_budget.fillna(False).astype(bool).sum())} cell(s) stopped timing "
        "early at their group's time budget (fewer repeats, same method). "
        if cut
        else ""
    )
    return [
        "",
        "## Throughput, ratios and FLOP fraction",
        "",
        column_table(_rows(ok), THROUGHPUT_COLUMNS),
        "",
        budget + "FLOP fraction = analytic FLOPs of the cell / its median time, divided by the "
        "attainable FLOP/s of a plain matrix multiply of the same shapes timed interleaved "
        "in the same run (training counted as 3× forward).",
    ]


def _packed_row(r: pd.Series, pad: pd.DataFrame) -> list[str]:
    key = (r.group, r.arch, r.impl)
    twin = pad.loc[key] if key in pad.index else None
    saved = (
        f"{r.saved_bytes / twin.saved_bytes:.2f}" if twin is not None and twin.saved_bytes else "–"
    )
    return [
        short_name(r).replace(" packed", ""),
        f"{r.padding_fraction:.2f}",
        ratio(r, "fwd", "vs_padded"),
        ratio(r, "train", "vs_padded"),
        f"{1 / (1 - r.padding_fraction):.2f}",
        saved,
        ratio(r, "train", "vs_builtin") if r.impl != "builtin" else "–",
    ]


def packed_vs_padded(run: Run) -> list[str]:
    """Each packed cell against its padded twin (same group, architecture and implementation)."""
    ok = run.ok
    pk = ok[(ok.input == "packed") & ok.train_vs_padded.notna()]
    if pk.empty:
        return []
    pad = ok[ok.input == "padded"].set_index(["group", "arch", "impl"])
    rows = [
        _packed_row(r, pad) for r in _rows(pk.sort_values(["arch", "impl", "padding_fraction"]))
    ]
    header = ["cell", "padding fraction", "fwd packed/padded", "train packed/padded", "ideal",
              "saved bytes packed/padded", "packed train vs built-in packed"]  # fmt: skip
    src = sorted(set(ok.lengths_source.dropna()))
    return ["", "## Packed vs padded", "", table(rows, header), "",
            f"Length sources: {'; '.join(src)}."]  # fmt: skip


def _transformer_row(r: pd.Series, o: dict[str, Any] | None) -> list[str]:
    """A transformer cell (o None) or one of its RNN built-ins with the transformer's ratios."""
    return [
        short_name(r),
        tok_iqr(r, "fwd"),
        tok_iqr(r, "train"),
        mib(r.saved_bytes),
        fmt(r.fwd_flop_frac, ".0%"),
        fmt(r.train_flop_frac, ".0%"),
        f"{o['fwd']:.2f}×" if o else "–",
        f"{o['train']:.2f}×" if o else "–",
    ]


TRANSFORMER_NOTE = (
    "The transformer (a causal pre-norm nn.TransformerEncoder: d_model H, H/64 heads, "
    "feed-forward 4H, an I→H projection when I ≠ H) takes the same padded (T, B, I) "
    "batch and masked loss as the RNN cells; it has no scratch twin, so its ratio "
    "columns elsewhere are –. It is timed in its own group, so the ratios here are of "
    "medians from separate timing loops, not per-repeat pairs. Its FLOPs count the full "
    "T×T attention square (flops.py)."
)


def transformer(run: Run) -> list[str]:
    """Each transformer cell above the RNN built-ins measured at its shape."""
    pairs = transformer_pairs(run.ok)
    if not pairs:
        return []
    rows = []
    for p in pairs:
        rows.append(_transformer_row(p["row"], None))
        rows += [_transformer_row(o["row"], o) for o in p["rnns"]]
    header = ["cell", "fwd tok/s (±IQR)", "train tok/s (±IQR)", "saved for backward (MiB)",
              "fwd FLOP frac", "train FLOP frac", "transformer fwd ÷ this",
              "transformer train ÷ this"]  # fmt: skip
    return ["", "## Transformer baseline vs RNN built-ins", "", table(rows, header), "",
            TRANSFORMER_NOTE]  # fmt: skip


def _per_token(r: pd.Series) -> Any:
    return r.saved_bytes / r.tokens_valid if r.saved_bytes and r.tokens_valid else None


MEMORY_COLUMNS: list[Column] = [
    ("cell", short_name),
    ("saved for backward (MiB)", lambda r: mib(r.saved_bytes)),
    ("saved tensors", lambda r: fmt(r.saved_tensors, ".0f")),
    ("saved bytes / token", lambda r: fmt(_per_token(r), ",.0f")),
    ("peak RSS growth (MiB)", lambda r: mib(r.rss_growth_bytes)),
    ("CUDA peak (MiB)", lambda r: mib(r.cuda_peak_bytes)),
]


def memory(run: Run) -> list[str]:
    return ["", "## Memory", "", column_table(_rows(run.ok), MEMORY_COLUMNS)]


COMPILED_COLUMNS: list[Column] = [
    ("cell", short_name),
    ("compile s", lambda r: fmt(r.compile_s, ".1f")),
    ("graphs", lambda r: fmt(r.compile_graphs, ".0f")),
    ("first fwd s", lambda r: fmt(r.first_fwd_s, ".2f")),
    ("first train s", lambda r: fmt(r.first_train_s, ".2f")),
    ("fwd vs scratch", lambda r: ratio(r, "fwd", "vs_scratch")),
    ("train vs scratch", lambda r: ratio(r, "train", "vs_scratch")),
]


def compiled(run: Run) -> list[str]:
    """torch.compile's cells: compile time apart from their steady state."""
    comp = run.ok[run.ok.impl == "compiled"]
    if comp.empty:
        return []
    return [
        "",
        "## torch.compile (compiled)",
        "",
        column_table(_rows(comp), COMPILED_COLUMNS),
        "",
        "Compile time = first forward + first training call minus their steady-state "
        "medians; steady-state numbers above exclude it. Only the per-step cell function is "
        "compiled (one graph per grad mode, plus a dynamic-batch graph for packed input).",
    ]


def determinism(run: Run) -> list[str]:
    """How many cells repeat their losses bit for bit, and which do not."""
    ok = run.ok
    lines = ["", "## Determinism", ""]
    if ok.empty:
        return lines
    same = ok.repeat_identical.fillna(False).astype(bool)
    lines.append(
        f"{int(same.sum())} of {len(ok)} cells gave bit-identical losses over their fixed "
        "training steps when run twice from the same seed."
    )
    bad = ok[~same]
    if not bad.empty:
        lines += ["", column_table(_rows(bad), [("not identical", short_name)])]
    return lines


def _reason(r: pd.Series) -> str:
    return str(r.error or "").replace("|", "\\|").replace("\n", " ")[:300]


FAILED_COLUMNS: list[Column] = [
    ("cell", lambda r: r.cell_id),
    ("status", lambda r: _failure_status(r.status, r.error_kind)),
    ("error / reason", _reason),
]


def failed(run: Run) -> list[str]:
    bad = run.df[run.df.status != "ok"]
    if bad.empty:
        return []
    return ["", "## Failed and skipped cells", "", column_table(_rows(bad), FAILED_COLUMNS)]


def reproduce(run: Run) -> list[str]:
    """The commands that ran this matrix and wrote this report (the page ends here)."""
    return [
        "",
        "## Reproduce",
        "",
        "```",
        f"python -m bench run --matrix {run.matrix.get('name', 'quick')} --run-id {run.run_id}",
        f"python -m bench report {run.run_id}",
        "```",
        "",
    ]


#: the page, in order
SECTIONS: tuple[Callable[[Run], list[str]], ...] = (
    title,
    method,
    injected,
    environment,
    findings,
    performance_bars,
    plots,
    throughput,
    packed_vs_padded,
    transformer,
    memory,
    compiled,
    determinism,
    failed,
    reproduce,
)


def render(
    run_id: str,
    manifest: dict[str, Any] | None,
    records: list[dict[str, Any]],
    plot_files: dict[str, Path],
) -> str:
    """The report's Markdown: every section of SECTIONS in order."""
    run = Run.of_records(run_id, manifest, records, plot_files)
    return "\n".join(line for section in SECTIONS for line in section(run))
