"""``bench report RUN_ID`` → ``reports/<run-id>/README.md`` plus PNG plots.

Everything in the report is read from the run's results.jsonl: environment
(provenance), the performance bars, throughput, ratios, FLOP fraction, memory,
packed vs padded, compile time, determinism, failures, and a short findings
section whose sentences are computed from those same numbers.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import pandas as pd

from . import archs, plots
from .axes import BUILTIN_SIZES, DOC_SIZES
from .frame import frame, short_name
from .results import (
    RESULTS_FILE,
    ResultsError,
    ResultStore,
    atomic_write_text,
    check_run_id,
    mkdir,
    resolve_run,
)

# The performance bars, as (label, mode, input, threshold, shapes): shapes None is the bar
# shape (BAR_SPEC, one layer); "docs" the documents' shapes, each at its own layer count.
BARS = (
    ("scratch fwd+bwd ≥ 1.0× built-in (padded)", "train", "padded", 1.0, None),
    ("scratch forward ≥ 0.8× built-in (padded)", "fwd", "padded", 0.8, None),
    ("scratch packed fwd+bwd ≥ 1.0× built-in packed", "train", "packed", 1.0, None),
    (
        "scratch ≥ 1.0× built-in at the documents' shapes: fwd+bwd, padded",
        "train",
        "padded",
        1.0,
        "docs",
    ),
    (
        "scratch ≥ 1.0× built-in at the documents' shapes: forward, padded",
        "fwd",
        "padded",
        1.0,
        "docs",
    ),
    (
        "scratch ≥ 1.0× built-in at the documents' shapes: fwd+bwd, packed",
        "train",
        "packed",
        1.0,
        "docs",
    ),
    (
        "scratch ≥ 1.0× built-in at the documents' shapes: forward, packed",
        "fwd",
        "packed",
        1.0,
        "docs",
    ),
)
BAR_SPEC = "T64-B64-I256-H256"
#: the documents' shapes as cell specs, with their layer counts (bench/axes.py DOC_SIZES)
DOC_SPECS = {BUILTIN_SIZES[name].spec: layers for name, layers in DOC_SIZES.items()}
BAR_ARCHS = archs.BAR_ARCHS
HARNESS_BAR = 0.02


def _fmt(v: Any, spec: str = ".2f", suffix: str = "") -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    return f"{v:{spec}}{suffix}"


def _ktok(v: Any) -> str:
    return "–" if v is None or pd.isna(v) else f"{v / 1e3:,.1f}k"


def _mib(v: Any) -> str:
    return "–" if v is None or pd.isna(v) else f"{v / 2**20:,.2f}"


def _ratio(r: pd.Series, mode: str, ref: str) -> str:
    m = r.get(f"{mode}_{ref}")
    if m is None or pd.isna(m):
        return "–"
    return f"{m:.2f} ({r[f'{mode}_{ref}_q1']:.2f}–{r[f'{mode}_{ref}_q3']:.2f})"


def _table(rows: list[list[str]], header: list[str]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def _bar_shapes(shapes: str | None) -> dict[str, int]:
    return DOC_SPECS if shapes == "docs" else {BAR_SPEC: 1}


def bar_rows(df: pd.DataFrame, impl: str = "scratch") -> list[dict[str, Any]]:
    """The performance-bar checks this run can answer, with their measured ratios (the bars
    judge ``scratch``; ``scratch_torch`` rows answer the same questions for the torch ops)."""
    out = []
    ok = df[
        (df.status == "ok")
        & (~df.bidirectional.astype(bool))
        & (df.reg == "none")
        & (df.optimizer == "none")
        & (df.impl == impl)
    ]
    for label, mode, inp, threshold, shapes in BARS:
        for spec, layers in _bar_shapes(shapes).items():
            at = ok[(ok.spec == spec) & (ok.layers == layers) & (ok.input == inp)]
            if inp == "packed":  # the packed bars are about real lengths
                at = at[at.lengths == "agnews"]
            for arch in BAR_ARCHS:
                for _, r in at[at.arch == arch].iterrows():
                    m = r.get(f"{mode}_vs_builtin")
                    if m is None or pd.isna(m):
                        continue
                    out.append(
                        {
                            "bar": label,
                            "mode": mode,
                            "input": inp,
                            "spec": spec,
                            "layers": layers,
                            "arch": arch,
                            "threads": int(r.torch_threads) if pd.notna(r.torch_threads) else None,
                            "load": r.load_1m,
                            "seed": r.seed,
                            "lengths": r.lengths,
                            "ratio": m,
                            "q1": r[f"{mode}_vs_builtin_q1"],
                            "q3": r[f"{mode}_vs_builtin_q3"],
                            "threshold": threshold,
                            "holds": bool(m >= threshold),
                        }
                    )
    return out


def _worst_bar_finding(bars: list[dict[str, Any]]) -> list[str]:
    """The headline: the worst ratio over every bar cell of the run, every shape and thread
    count, and how many cells miss their bar."""
    if not bars:
        return []
    worst = min(bars, key=lambda b: b["ratio"] / b["threshold"])
    missed = [b for b in bars if not b["holds"]]
    what = {"train": "fwd+bwd", "fwd": "forward"}[worst["mode"]]
    threads = f"{worst['threads']} thread" + ("s" if worst["threads"] != 1 else "")
    return [
        f"**worst case over every bar cell** ({len(bars)} cells: "
        f"{len({b['spec'] for b in bars})} shapes, threads "
        f"{', '.join(str(t) for t in sorted({b['threads'] or 0 for b in bars}))}): scratch "
        f"{worst['arch']} {what} {worst['input']} at {worst['spec']} (L{worst['layers']}, "
        f"{threads}) runs at {worst['ratio']:.2f}× the built-in against a bar of "
        f"{worst['threshold']:.1f}×; {len(missed)} of {len(bars)} bar cells miss"
        + (
            ": "
            + ", ".join(
                sorted({f"{b['arch']} {b['mode']} {b['input']} {b['spec']}" for b in missed})
            )
            if missed and len(missed) <= 12
            else ""
        )
        + "."
    ]


TRANSFORMER_MATCH = ["spec", "lengths", "threads", "device", "seed", "layers", "reg", "optimizer"]


def transformer_pairs(ok: pd.DataFrame) -> list[dict[str, Any]]:
    """Each ok transformer cell with the RNN built-ins (padded) measured at the same shape,
    lengths, threads, device, seed, layers, regularizer and optimizer: their throughput,
    saved bytes, and the transformer's ratio to each (transformer / RNN). Transformer and
    RNN cells are separate timing groups, so these ratios are of medians, not per-repeat."""
    if ok.empty:
        return []
    baseline = ok.arch.isin(archs.BASELINES)
    tf = ok[baseline & ok.fwd_tok_s.notna()]
    rnn = ok[~baseline & (ok.impl == "builtin") & (ok.input == "padded")]
    out = []
    for _, t in tf.iterrows():
        same = rnn[(rnn[TRANSFORMER_MATCH] == t[TRANSFORMER_MATCH]).all(axis=1)]
        same = same[same.fwd_tok_s.notna()]
        if same.empty:
            continue
        others = []
        for _, r in same.sort_values("arch").iterrows():
            others.append(
                {
                    "row": r,
                    "fwd": t.fwd_tok_s / r.fwd_tok_s,
                    "train": t.train_tok_s / r.train_tok_s,
                    "saved": (
                        t.saved_bytes / r.saved_bytes
                        if pd.notna(t.saved_bytes) and pd.notna(r.saved_bytes) and r.saved_bytes
                        else None
                    ),
                }
            )
        out.append({"row": t, "rnns": others})
    return out


def _vs(pair: dict[str, Any], mode: str) -> str:
    return ", ".join(f"{o[mode]:.2f}× nn.{o['row'].arch.upper()}" for o in pair["rnns"])


def _transformer_finding(pairs: list[dict[str, Any]]) -> list[str]:
    out = []
    by_shape: dict[tuple, list[dict[str, Any]]] = {}
    for p in pairs:
        t = p["row"]
        by_shape.setdefault(
            (t.spec, t.lengths, t.threads, t.device, t.reg, t.optimizer, t.seed), []
        ).append(p)
    for (spec, lengths, threads, device, reg, opt, seed), ps in by_shape.items():
        parts = []
        for p in sorted(ps, key=lambda p: p["row"].layers):
            t = p["row"]
            parts.append(
                f"L{t.layers}: forward {_ktok(t.fwd_tok_s)} tok/s ({_vs(p, 'fwd')}), "
                f"training {_ktok(t.train_tok_s)} tok/s ({_vs(p, 'train')})"
            )
        where = [spec, f"lengths {lengths}", "padded"]
        if threads:
            where.append(f"{threads} thread" + ("s" if threads != 1 else ""))
        if device != "cpu":
            where.append(device)
        if reg != "none":
            where.append(reg)
        if opt != "none":
            where.append(opt)
        if seed:
            where.append(f"seed {seed}")
        saved = [o["saved"] for p in ps for o in p["rnns"] if o["saved"] is not None]
        mem = (
            f" It saves {min(saved):.2f}–{max(saved):.2f}× the RNN built-ins' bytes for backward."
            if saved
            else ""
        )
        out.append(
            f"**Transformer baseline vs RNN built-ins** ({', '.join(where)}; the transformer "
            f"(causal nn.TransformerEncoder) as a multiple of each RNN's valid tokens/s, "
            f"medians of separately timed groups): {'; '.join(parts)}.{mem}"
        )
    return out


def _torch_ops_findings(df: pd.DataFrame) -> list[str]:
    """The bar-shape ratios of scratch_torch (the scratch cells without their native
    kernels), beside scratch's: what the kernels are worth, measured in the same groups."""
    rows = [b for b in bar_rows(df, "scratch_torch") if b["spec"] == BAR_SPEC]
    if not rows:
        return []
    key = ("bar", "spec", "arch", "threads", "lengths")
    mine = {tuple(b[k] for k in key): b for b in bar_rows(df)}
    parts = []
    for b in rows:
        s = mine.get(tuple(b[k] for k in key))
        threads = f"{b['threads']} thread" + ("s" if b["threads"] != 1 else "")
        with_kernels = f" (with them {s['ratio']:.2f}×)" if s else ""
        what = {"train": "fwd+bwd", "fwd": "forward"}[b["mode"]]
        what = f"packed {what}" if b["input"] == "packed" else what
        parts.append(f"{b['arch']} {what}, {threads}: {b['ratio']:.2f}×{with_kernels}")
    return [
        "**the scratch cells without their native loops** (scratch_torch, torch ops "
        "alone; the bars judge scratch, which runs the loops), "
        f"{BAR_SPEC}, vs the built-in: {'; '.join(parts)}."
    ]


def _doc_bar_finding(label: str, rows: list[dict[str, Any]]) -> str:
    """One bar over many shapes: each architecture's worst and median ratio, and where it
    misses."""
    parts = []
    for arch in BAR_ARCHS:
        mine = [b for b in rows if b["arch"] == arch]
        if not mine:
            continue
        worst = min(mine, key=lambda b: b["ratio"])
        med = float(pd.Series([b["ratio"] for b in mine]).median())
        parts.append(
            f"{arch} worst {worst['ratio']:.2f}× ({worst['spec']}, {worst['threads']} "
            f"thread{'s' if worst['threads'] != 1 else ''}), median {med:.2f}× over {len(mine)}"
        )
    missed = sorted({f"{b['arch']} {b['spec']} t{b['threads']}" for b in rows if not b["holds"]})
    verdict = "holds for all" if not missed else f"misses at {', '.join(missed)}"
    return f"**{label}**: {'; '.join(parts)}; the bar {verdict}."


def _flop_fraction_by_shape(ok: pd.DataFrame) -> list[str]:
    """Scratch's training FLOP fraction (of the in-run GEMM probe) at the bar shape and at
    each of the documents' shapes, one thread, padded: median over architectures, and the
    LSTM's."""
    shapes = {BAR_SPEC: 1, **DOC_SPECS}
    sc = ok[
        (ok.impl == "scratch")
        & (ok.input == "padded")
        & (ok.torch_threads == 1)
        & ok.train_flop_frac.notna()
        & (~ok.bidirectional.astype(bool))
        & (ok.reg == "none")
    ]
    parts = []
    for spec, layers in shapes.items():
        at = sc[(sc.spec == spec) & (sc.layers == layers) & sc.arch.isin(BAR_ARCHS)]
        if at.empty:
            continue
        lstm = at[at.arch == "lstm"].train_flop_frac
        lstm_text = f", lstm {lstm.median():.0%}" if not lstm.empty else ""
        parts.append(f"{spec} L{layers} {at.train_flop_frac.median():.0%}{lstm_text}")
    if not parts:
        return []
    return [
        "**FLOP fraction of the GEMM probe, scratch training step, 1 thread, padded** "
        f"(median over lstm/gru/rnn): {'; '.join(parts)}."
    ]


#: the scratch-only cells and the scratch cell of the same size each is held to (within 10%)
VARIANT_OF = {"lstm_peephole": "lstm", "gru_cho": "gru"}
VARIANT_MATCH = ["spec", "lengths", "threads", "device", "seed", "layers", "input", "reg"]


def _variant_finding(ok: pd.DataFrame) -> list[str]:
    """The peephole LSTM's and the Cho GRU's scratch throughput as a multiple of the scratch
    LSTM's and GRU's at the same shape (separate timing groups: ratios of medians)."""
    sc = ok[(ok.impl == "scratch") & ok.train_tok_s.notna() & ok.fwd_tok_s.notna()]
    parts = []
    for variant, base in VARIANT_OF.items():
        for _, v in sc[sc.arch == variant].iterrows():
            same = sc[(sc.arch == base) & (sc[VARIANT_MATCH] == v[VARIANT_MATCH]).all(axis=1)]
            if same.empty:
                continue
            b = same.iloc[0]
            parts.append(
                f"{variant}/{base} {v.input} {v.spec} t{v.torch_threads}: training "
                f"{v.train_tok_s / b.train_tok_s:.2f}×, forward {v.fwd_tok_s / b.fwd_tok_s:.2f}×"
            )
    if not parts:
        return []
    return [
        "**the scratch-only cells beside their scratch twins** (goal: within 10%, i.e. ≥ "
        "0.90×; separately timed groups, so ratios of medians): " + "; ".join(parts) + "."
    ]


def findings(df: pd.DataFrame, bars: list[dict[str, Any]]) -> list[str]:
    ok = df[df.status == "ok"]
    out: list[str] = []
    out += _worst_bar_finding(bars)
    for label, mode, inp, _, shapes in BARS:
        rows = [b for b in bars if b["bar"] == label]
        if not rows:
            continue
        if shapes == "docs":
            out.append(_doc_bar_finding(label, rows))
            continue
        parts, missed = [], []
        for arch in BAR_ARCHS:
            mine = [b for b in rows if b["arch"] == arch]
            by_threads: dict[Any, list[float]] = {}
            for b in mine:
                by_threads.setdefault(b["threads"], []).append(b["ratio"])
            texts = []
            for threads, vals in sorted(by_threads.items(), key=lambda kv: -(kv[0] or 0)):
                vals = sorted(vals)
                med = float(pd.Series(vals).median())
                text = f"{med:.2f}×"
                detail = [f"{threads} thread" + ("s" if threads != 1 else "")] if threads else []
                if len(vals) > 1:
                    detail.append(f"median of {len(vals)} cells, {vals[0]:.2f}–{vals[-1]:.2f}")
                texts.append(text + (f" ({', '.join(detail)})" if detail else ""))
            if texts:
                parts.append(f"{arch} " + " / ".join(texts))
            if any(not b["holds"] for b in mine):
                missed.append(arch)
        verdict = "holds for all" if not missed else f"misses for {', '.join(missed)}"
        what = {"train": "training step (fwd+bwd)", "fwd": "forward-only"}[mode]
        out.append(
            f"**{what}, {inp}, {BAR_SPEC}**: scratch runs at {', '.join(parts)} the built-in's "
            f"throughput (median of per-repeat ratios); the bar ({label}) {verdict}."
        )
    out += _torch_ops_findings(df)
    out += _variant_finding(ok)
    bp = ok[(ok.impl == "builtin") & (ok.input == "packed") & ok.train_vs_padded.notna()]
    if not bp.empty:
        worst = bp.loc[bp.train_vs_padded.idxmin()]
        out.append(
            f"**built-in packed vs its own padded path**: packing makes nn.{worst.arch.upper()} "
            f"training {worst.train_vs_padded:.2f}× as fast as padding at padding fraction "
            f"{worst.padding_fraction:.2f} ({short_name(worst)}), though packing skips that "
            f"fraction of the work; median over {len(bp)} cells "
            f"{bp.train_vs_padded.median():.2f}× (pytorch/pytorch#149194)."
        )
    sp = ok[(ok.impl == "scratch") & (ok.input == "packed") & ok.train_vs_padded.notna()]
    if not sp.empty:
        best = sp.loc[sp.padding_fraction.idxmax()]
        out.append(
            f"**scratch packed vs padded**: at padding fraction {best.padding_fraction:.2f} "
            f"scratch training is {best.train_vs_padded:.2f}× faster packed than padded "
            f"(ideal {1 / (1 - best.padding_fraction):.2f}×); median over {len(sp)} cells "
            f"{sp.train_vs_padded.median():.2f}×."
        )
    comp = ok[(ok.impl == "compiled") & ok.train_vs_scratch.notna()]
    if not comp.empty:
        out.append(
            f"**compiled (per-step torch.compile) vs scratch**: training step "
            f"{comp.train_vs_scratch.median():.2f}× (range {comp.train_vs_scratch.min():.2f}–"
            f"{comp.train_vs_scratch.max():.2f}), forward {comp.fwd_vs_scratch.median():.2f}×, "
            f"over {len(comp)} cells; one-time compile cost {comp.compile_s.min():.1f}–"
            f"{comp.compile_s.max():.1f} s per cell, reported apart from steady state."
        )
    sb = ok[(ok.impl == "scratch") & ok.saved_bytes.notna()]
    bb = ok[(ok.impl == "builtin") & ok.saved_bytes.notna()]
    if not sb.empty and not bb.empty:
        key = ["group", "input"]
        m = sb.merge(bb, on=key, suffixes=("_s", "_b"))
        if not m.empty:
            ratio = (m.saved_bytes_s / m.saved_bytes_b).median()
            out.append(
                f"**memory**: scratch saves {ratio:.2f}× the bytes for backward that the "
                f"built-in saves (median over {len(m)} matched cells; exact counts from "
                "saved_tensors_hooks)."
            )
    out += _transformer_finding(transformer_pairs(ok))
    frac = ok[ok.train_flop_frac.notna()]
    if not frac.empty:
        best = frac.loc[frac.train_flop_frac.idxmax()]
        out.append(
            f"**FLOP fraction**: training steps reach {frac.train_flop_frac.median():.0%} of the "
            f"attainable matmul FLOP/s (median); best {best.train_flop_frac:.0%} "
            f"({short_name(best)})."
        )
    out += _flop_fraction_by_shape(ok)
    h = ok[["fwd_harness_frac", "train_harness_frac"]].max().max() if not ok.empty else None
    if h is not None and not pd.isna(h):
        out.append(
            f"**harness overhead** per timed call (the timer, mode switch and clearing grads, "
            f"timed alone) is at most {h:.3%} of the call (bar: < {HARNESS_BAR:.0%})."
        )
    if "repeat_identical" in ok and not ok.empty:
        n_id = int(ok.repeat_identical.fillna(False).astype(bool).sum())
        out.append(
            f"**determinism**: {n_id} of {len(ok)} cells gave bit-identical losses when their "
            "fixed training steps were run twice."
        )
    return out


def _native_text(status: dict[str, Any]) -> str:
    if status.get("active"):
        return (
            f"in use (RNNSUITE_NATIVE={status.get('mode')}, "
            f"{' '.join(status.get('cflags', []))}): every scratch cell's time loop"
        )
    why = f": {status['error']}" if status.get("error") else ""
    return f"not in use (RNNSUITE_NATIVE={status.get('mode')}{why}): torch ops alone"


def _injections_text(env: dict[str, str]) -> str:
    return ", ".join(f"`{k}={v}`" for k, v in env.items()) if env else "none"


def _environment(records: list[dict[str, Any]]) -> list[list[str]]:
    keys = [
        ("device", "device"),
        ("device name", "device_name"),
        ("CPU model", "cpu_model"),
        ("CPU count", "cpu_count"),
        ("torch threads", "torch_threads"),
        ("torch", "torch_version"),
        ("CUDA", "cuda_version"),
        ("Python", "python"),
        ("platform", "platform"),
        ("git commit", "git_commit"),
        ("git dirty", "git_dirty"),
        ("run started", "run_started_at"),
        ("load average (1 min) at group start", "load_avg"),
        ("injected slowdown", "injected_slowdown"),
        ("injection variables set (testing only)", "injections"),
        ("allocator / threading environment", "runtime_env"),
        ("native whole-sequence loops (scratch)", "native_kernels"),
    ]
    rows = []
    provs = [r.get("provenance", {}) for r in records if r.get("status") != "skipped"]
    for label, k in keys:
        if k == "injections":
            vals = list(dict.fromkeys(_injections_text(p[k]) for p in provs if k in p))
            if vals:
                rows.append([label, "; ".join(vals)])
            continue
        if k == "native_kernels":
            vals = list(dict.fromkeys(_native_text(p[k]) for p in provs if p.get(k)))
            if vals:
                rows.append([label, "; ".join(vals)])
            continue
        if k == "load_avg":
            loads = [p[k][0] for p in provs if p.get(k)]
            if loads:
                rows.append(
                    [
                        label,
                        f"min {min(loads):.2f}, median {sorted(loads)[len(loads) // 2]:.2f}, "
                        f"max {max(loads):.2f} (on {provs[0].get('cpu_count')} CPUs)",
                    ]
                )
            continue
        vals = list(dict.fromkeys(str(p.get(k)) for p in provs if k in p))
        if vals:
            rows.append([label, "; ".join(vals)])
    return rows


def render(
    run_id: str,
    manifest: dict[str, Any] | None,
    records: list[dict[str, Any]],
    plot_files: dict[str, Path],
) -> str:
    df = frame(records)
    ok = df[df.status == "ok"].copy()
    n = df.status.value_counts().to_dict() if not df.empty else {}
    lines: list[str] = []
    matrix = (manifest or {}).get("matrix", {})
    lines.append(f"# Bench report — run `{run_id}`")
    lines.append("")
    lines.append(
        f"Matrix **{matrix.get('name', '?')}** — {matrix.get('description', '')}. "
        f"{len(df)} cells: {n.get('ok', 0)} ok, {n.get('failed', 0)} failed, "
        f"{n.get('skipped', 0)} skipped."
        + (
            f" {len(manifest.get('cell_ids', [])) - len(df)} selected cells have no result yet."
            if manifest and len(manifest.get("cell_ids", [])) > len(df)
            else ""
        )
    )
    lines.append("")
    lines.append(
        "Every number below is read from `results.jsonl` of this run. Throughput is in "
        "valid (non-padding) tokens per second; **ratios are medians of per-repeat ratios** "
        "between variants timed interleaved in the same process (the number that survives a "
        "noisy machine), with the interquartile range in parentheses. *fwd* is inference "
        "(eval, no_grad); *train* is one training step (forward, loss, backward, plus the "
        "optimizer step where the cell names one)."
    )
    inj = sorted({i for i in df.get("injected", pd.Series(dtype=str)).dropna() if i})
    if inj:
        lines += ["", f"> **Warning: slowdown injected for testing: {', '.join(inj)}.**"]
    lines += ["", "## Environment", "", _table(_environment(records), ["", "value"])]

    bars = bar_rows(df)
    lines += ["", "## Findings", ""]
    lines += [f"- {s}" for s in findings(df, bars)] or ["- (no ok cells)"]

    lines += [
        "",
        "## Performance bars",
        "",
        "*load* is the machine's 1-minute load average when the cell's group started (2 CPUs; "
        "other jobs share them). With 2 torch threads a loaded machine stalls every parallel "
        "region; the single-threaded rows are the steadier reading.",
        "",
    ]
    if bars:
        rows = [
            [
                b["bar"],
                f"{b['spec']} L{b['layers']}",
                b["arch"],
                b["lengths"],
                str(b["threads"] or "–"),
                _fmt(b["load"], ".1f"),
                f"{b['ratio']:.2f} ({b['q1']:.2f}–{b['q3']:.2f})",
                "holds" if b["holds"] else "**misses**",
            ]
            for b in bars
        ]
        lines.append(
            _table(
                rows,
                [
                    "bar",
                    "shape",
                    "arch",
                    "lengths",
                    "threads",
                    "load",
                    "scratch / built-in",
                    "verdict",
                ],
            )
        )
        hmax = ok[["fwd_harness_frac", "train_harness_frac"]].max().max()
        lines += [
            "",
            "Harness overhead per timed call (the timer, mode switch and clearing grads, timed "
            f"alone): at most {_fmt(hmax, '.3%')} of the call "
            f"(bar < {HARNESS_BAR:.0%}): "
            + ("holds." if pd.notna(hmax) and hmax < HARNESS_BAR else "**misses**."),
        ]
    else:
        lines.append(f"(this run has no {BAR_SPEC} scratch/built-in cells)")

    for name, title in (
        ("throughput_by_arch", "Throughput by architecture and implementation"),
        ("ratio_scratch_builtin", "Scratch / built-in ratio"),
        ("packed_vs_padded", "Packed vs padded against padding fraction"),
        ("scaling_layers", "Scaling with layers"),
        ("scaling_seqlen", "Scaling with sequence length"),
        ("memory", "Memory"),
    ):
        if name in plot_files:
            lines += ["", f"### {title}", "", f"![{title}]({plot_files[name].name})"]

    lines += ["", "## Throughput, ratios and FLOP fraction", ""]
    rows = []
    for _, r in ok.iterrows():
        rows.append(
            [
                short_name(r),
                f"{_ktok(r.fwd_tok_s)} ±{_fmt(r.fwd_iqr_rel, '.0%')}",
                f"{_ktok(r.train_tok_s)} ±{_fmt(r.train_iqr_rel, '.0%')}",
                _ratio(r, "fwd", "vs_builtin"),
                _ratio(r, "train", "vs_builtin"),
                _ratio(r, "train", "vs_scratch") if r.impl != "scratch" else "–",
                _fmt(r.fwd_flop_frac, ".0%"),
                _fmt(r.train_flop_frac, ".0%"),
            ]
        )
    lines.append(
        _table(
            rows,
            [
                "cell",
                "fwd tok/s (±IQR)",
                "train tok/s (±IQR)",
                "fwd vs built-in",
                "train vs built-in",
                "train vs scratch",
                "fwd FLOP frac",
                "train FLOP frac",
            ],
        )
    )
    lines += [
        "",
        (
            f"{int(ok.cut_by_budget.fillna(False).astype(bool).sum())} cell(s) stopped timing "
            "early at their group's time budget (fewer repeats, same method). "
            if "cut_by_budget" in ok and ok.cut_by_budget.fillna(False).astype(bool).any()
            else ""
        )
        + "FLOP fraction = analytic FLOPs of the cell / its median time, divided by the "
        "attainable FLOP/s of a plain matrix multiply of the same shapes timed interleaved "
        "in the same run (training counted as 3× forward).",
    ]

    pk = ok[(ok.input == "packed") & ok.train_vs_padded.notna()]
    if not pk.empty:
        lines += ["", "## Packed vs padded", ""]
        pad = ok[ok.input == "padded"].set_index(["group", "impl"])
        rows = []
        for _, r in pk.sort_values(["arch", "impl", "padding_fraction"]).iterrows():
            twin = pad.loc[(r.group, r.impl)] if (r.group, r.impl) in pad.index else None
            mem = (
                f"{r.saved_bytes / twin.saved_bytes:.2f}"
                if twin is not None and twin.saved_bytes
                else "–"
            )
            rows.append(
                [
                    short_name(r).replace(" packed", ""),
                    f"{r.padding_fraction:.2f}",
                    _ratio(r, "fwd", "vs_padded"),
                    _ratio(r, "train", "vs_padded"),
                    f"{1 / (1 - r.padding_fraction):.2f}",
                    mem,
                    _ratio(r, "train", "vs_builtin") if r.impl != "builtin" else "–",
                ]
            )
        lines.append(
            _table(
                rows,
                [
                    "cell",
                    "padding fraction",
                    "fwd packed/padded",
                    "train packed/padded",
                    "ideal",
                    "saved bytes packed/padded",
                    "packed train vs built-in packed",
                ],
            )
        )
        src = sorted(set(ok.lengths_source.dropna()))
        lines += ["", f"Length sources: {'; '.join(src)}."]

    pairs = transformer_pairs(ok)
    if pairs:
        lines += ["", "## Transformer baseline vs RNN built-ins", ""]
        rows = []
        for p in pairs:
            t = p["row"]
            rows.append(
                [
                    short_name(t),
                    f"{_ktok(t.fwd_tok_s)} ±{_fmt(t.fwd_iqr_rel, '.0%')}",
                    f"{_ktok(t.train_tok_s)} ±{_fmt(t.train_iqr_rel, '.0%')}",
                    _mib(t.saved_bytes),
                    _fmt(t.fwd_flop_frac, ".0%"),
                    _fmt(t.train_flop_frac, ".0%"),
                    "–",
                    "–",
                ]
            )
            for o in p["rnns"]:
                r = o["row"]
                rows.append(
                    [
                        short_name(r),
                        f"{_ktok(r.fwd_tok_s)} ±{_fmt(r.fwd_iqr_rel, '.0%')}",
                        f"{_ktok(r.train_tok_s)} ±{_fmt(r.train_iqr_rel, '.0%')}",
                        _mib(r.saved_bytes),
                        _fmt(r.fwd_flop_frac, ".0%"),
                        _fmt(r.train_flop_frac, ".0%"),
                        f"{o['fwd']:.2f}×",
                        f"{o['train']:.2f}×",
                    ]
                )
        lines.append(
            _table(
                rows,
                [
                    "cell",
                    "fwd tok/s (±IQR)",
                    "train tok/s (±IQR)",
                    "saved for backward (MiB)",
                    "fwd FLOP frac",
                    "train FLOP frac",
                    "transformer fwd ÷ this",
                    "transformer train ÷ this",
                ],
            )
        )
        lines += [
            "",
            "The transformer (a causal pre-norm nn.TransformerEncoder: d_model H, H/64 heads, "
            "feed-forward 4H, an I→H projection when I ≠ H) takes the same padded (T, B, I) "
            "batch and masked loss as the RNN cells; it has no scratch twin, so its ratio "
            "columns elsewhere are –. It is timed in its own group, so the ratios here are of "
            "medians from separate timing loops, not per-repeat pairs. Its FLOPs count the full "
            "T×T attention square (flops.py).",
        ]

    lines += ["", "## Memory", ""]
    rows = [
        [
            short_name(r),
            _mib(r.saved_bytes),
            _fmt(r.saved_tensors, ".0f"),
            _fmt(
                r.saved_bytes / r.tokens_valid if r.saved_bytes and r.tokens_valid else None, ",.0f"
            ),
            _mib(r.rss_growth_bytes),
            _mib(r.cuda_peak_bytes),
        ]
        for _, r in ok.iterrows()
    ]
    lines.append(
        _table(
            rows,
            [
                "cell",
                "saved for backward (MiB)",
                "saved tensors",
                "saved bytes / token",
                "peak RSS growth (MiB)",
                "CUDA peak (MiB)",
            ],
        )
    )

    comp = ok[ok.impl == "compiled"]
    if not comp.empty:
        lines += ["", "## torch.compile (compiled)", ""]
        rows = [
            [
                short_name(r),
                _fmt(r.compile_s, ".1f"),
                _fmt(r.compile_graphs, ".0f"),
                _fmt(r.first_fwd_s, ".2f"),
                _fmt(r.first_train_s, ".2f"),
                _ratio(r, "fwd", "vs_scratch"),
                _ratio(r, "train", "vs_scratch"),
            ]
            for _, r in comp.iterrows()
        ]
        lines.append(
            _table(
                rows,
                [
                    "cell",
                    "compile s",
                    "graphs",
                    "first fwd s",
                    "first train s",
                    "fwd vs scratch",
                    "train vs scratch",
                ],
            )
        )
        lines += [
            "",
            "Compile time = first forward + first training call minus their steady-state "
            "medians; steady-state numbers above exclude it. Only the per-step cell function is "
            "compiled (one graph per grad mode, plus a dynamic-batch graph for packed input).",
        ]

    lines += ["", "## Determinism", ""]
    if not ok.empty:
        same = ok.repeat_identical.fillna(False).astype(bool)
        lines.append(
            f"{int(same.sum())} of {len(ok)} cells gave bit-identical losses over their fixed "
            "training steps when run twice from the same seed."
        )
        bad = ok[~same]
        if not bad.empty:
            lines.append("")
            lines.append(_table([[short_name(r)] for _, r in bad.iterrows()], ["not identical"]))

    bad = df[df.status != "ok"]
    if not bad.empty:
        lines += ["", "## Failed and skipped cells", ""]
        rows = [
            [
                r.cell_id,
                _failure_status(r.status, r.error_kind),
                str(r.error or "").replace("|", "\\|").replace("\n", " ")[:300],
            ]
            for _, r in bad.iterrows()
        ]
        lines.append(_table(rows, ["cell", "status", "error / reason"]))

    lines += [
        "",
        "## Reproduce",
        "",
        "```",
        f"python -m bench run --matrix {matrix.get('name', 'quick')} --run-id {run_id}",
        f"python -m bench report {run_id}",
        "```",
        "",
    ]
    return "\n".join(lines)


_KIND_WORDS = {"oom": "out of memory", "non_finite_loss": "non-finite loss"}


def _failure_status(status: str, kind: str | None) -> str:
    """``failed (out of memory)`` for a cell whose record says why it failed."""
    words = _KIND_WORDS.get(kind or "")
    return f"{status} ({words})" if words else status


def _run_argument(run_id: str) -> str:
    """A run id as given, or a run directory's path resolved (so ``x/..`` has its real name)."""
    path = Path(run_id)
    if (path / RESULTS_FILE).is_file():
        return str(path.resolve())
    if {"/", os.sep} & set(run_id) or run_id in (".", ".."):
        raise ResultsError(
            f"{run_id}: no {RESULTS_FILE} there; give a run directory (results/<run-id>) "
            "or a run id"
        )
    return run_id


def _default_out(store: ResultStore) -> Path:
    """reports/<run-id>: only for a run whose name is a run id (so it stays in reports/)."""
    try:
        return Path("reports") / check_run_id(store.run_id)
    except ResultsError:
        raise ResultsError(
            f"run directory {store.dir} is named {store.run_id!r}, which cannot name a report "
            "directory under reports/: give one with --out DIR"
        ) from None


def write_report(
    run_id: str, *, results_dir: Path | str = "results", out_dir: Path | str | None = None
) -> Path:
    store = resolve_run(results_dir, _run_argument(run_id))
    records = store.require_latest()
    manifest = store.read_manifest()
    out = Path(out_dir) if out_dir else _default_out(store)
    mkdir(out)
    plot_files = plots.all_plots(frame(records), out)
    path = out / "README.md"
    atomic_write_text(path, render(store.run_id, manifest, records, plot_files))
    return path
