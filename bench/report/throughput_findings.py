"""The findings of the throughput report: each a small function of the run (data.Run)
returning its sentences (none when the run cannot answer it), in the order of FINDINGS."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd

from . import spec
from .data import Run, bar_rows, transformer_pairs
from .frame import short_name
from .markdown import ktok, threads

WHAT = {"train": "fwd+bwd", "fwd": "forward"}


def worst_bar(run: Run) -> list[str]:
    """The headline: the worst ratio over every bar cell of the run, every shape and thread
    count, and how many cells miss their bar."""
    bars = run.bars
    if not bars:
        return []
    worst = min(bars, key=lambda b: b["ratio"] / b["threshold"])
    missed = [b for b in bars if not b["holds"]]
    named = sorted({f"{b['arch']} {b['mode']} {b['input']} {b['spec']}" for b in missed})
    return [
        f"**worst case over every bar cell** ({len(bars)} cells: "
        f"{len({b['spec'] for b in bars})} shapes, threads "
        f"{', '.join(str(t) for t in sorted({b['threads'] or 0 for b in bars}))}): scratch "
        f"{worst['arch']} {WHAT[worst['mode']]} {worst['input']} at {worst['spec']} "
        f"(L{worst['layers']}, {threads(worst['threads'])}) runs at {worst['ratio']:.2f}× the "
        f"built-in against a bar of {worst['threshold']:.1f}×; {len(missed)} of {len(bars)} "
        "bar cells miss" + (": " + ", ".join(named) if missed and len(missed) <= 12 else "") + "."
    ]


def _by_threads_text(mine: list[dict[str, Any]]) -> list[str]:
    """An architecture's ratios at one bar, one text per thread count (most threads first):
    the median, and its range when several cells answer."""
    by_threads: dict[Any, list[float]] = {}
    for b in mine:
        by_threads.setdefault(b["threads"], []).append(b["ratio"])
    texts = []
    for n, vals in sorted(by_threads.items(), key=lambda kv: -(kv[0] or 0)):
        vals = sorted(vals)
        med = float(pd.Series(vals).median())
        detail = [threads(n)] if n else []
        if len(vals) > 1:
            detail.append(f"median of {len(vals)} cells, {vals[0]:.2f}–{vals[-1]:.2f}")
        texts.append(f"{med:.2f}×" + (f" ({', '.join(detail)})" if detail else ""))
    return texts


def _bar_shape_finding(label: str, mode: str, inp: str, rows: list[dict[str, Any]]) -> str:
    """One bar at the bar shape: each architecture's median ratio per thread count."""
    parts, missed = [], []
    for arch in spec.BAR_ARCHS:
        mine = [b for b in rows if b["arch"] == arch]
        texts = _by_threads_text(mine)
        if texts:
            parts.append(f"{arch} " + " / ".join(texts))
        if any(not b["holds"] for b in mine):
            missed.append(arch)
    verdict = "holds for all" if not missed else f"misses for {', '.join(missed)}"
    what = {"train": "training step (fwd+bwd)", "fwd": "forward-only"}[mode]
    return (
        f"**{what}, {inp}, {spec.BAR_SPEC}**: scratch runs at {', '.join(parts)} the built-in's "
        f"throughput (median of per-repeat ratios); the bar ({label}) {verdict}."
    )


def _doc_bar_finding(label: str, rows: list[dict[str, Any]]) -> str:
    """One bar over many shapes: each architecture's worst and median ratio, and where it
    misses."""
    parts = []
    for arch in spec.BAR_ARCHS:
        mine = [b for b in rows if b["arch"] == arch]
        if not mine:
            continue
        worst = min(mine, key=lambda b: b["ratio"])
        med = float(pd.Series([b["ratio"] for b in mine]).median())
        parts.append(
            f"{arch} worst {worst['ratio']:.2f}× ({worst['spec']}, {threads(worst['threads'])}), "
            f"median {med:.2f}× over {len(mine)}"
        )
    missed = sorted({f"{b['arch']} {b['spec']} t{b['threads']}" for b in rows if not b["holds"]})
    verdict = "holds for all" if not missed else f"misses at {', '.join(missed)}"
    return f"**{label}**: {'; '.join(parts)}; the bar {verdict}."


def each_bar(run: Run) -> list[str]:
    """One sentence per bar the run answers, in the order of spec.BARS."""
    out = []
    for label, mode, inp, _, shapes in spec.BARS:
        rows = [b for b in run.bars if b["bar"] == label]
        if not rows:
            continue
        if shapes == "docs":
            out.append(_doc_bar_finding(label, rows))
        else:
            out.append(_bar_shape_finding(label, mode, inp, rows))
    return out


def torch_ops(run: Run) -> list[str]:
    """The bar-shape ratios of scratch_torch (the scratch cells without their native
    kernels), beside scratch's: what the kernels are worth, measured in the same groups."""
    rows = [b for b in bar_rows(run.df, "scratch_torch") if b["spec"] == spec.BAR_SPEC]
    if not rows:
        return []
    key = ("bar", "spec", "arch", "threads", "lengths")
    mine = {tuple(b[k] for k in key): b for b in run.bars}
    parts = []
    for b in rows:
        s = mine.get(tuple(b[k] for k in key))
        with_kernels = f" (with them {s['ratio']:.2f}×)" if s else ""
        what = f"packed {WHAT[b['mode']]}" if b["input"] == "packed" else WHAT[b["mode"]]
        parts.append(
            f"{b['arch']} {what}, {threads(b['threads'])}: {b['ratio']:.2f}×{with_kernels}"
        )
    return [
        "**the scratch cells without their native loops** (scratch_torch, torch ops "
        "alone; the bars judge scratch, which runs the loops), "
        f"{spec.BAR_SPEC}, vs the built-in: {'; '.join(parts)}."
    ]


def variants(run: Run) -> list[str]:
    """The peephole LSTM's and the Cho GRU's scratch throughput as a multiple of the scratch
    LSTM's and GRU's at the same shape: the per-repeat ratio where the runner timed them in
    one group (vs_base), else (older runs) a ratio of two groups' medians."""
    ok, match = run.ok, spec.VARIANT_MATCH
    sc = ok[(ok.impl == "scratch") & ok.train_tok_s.notna() & ok.fwd_tok_s.notna()]
    paired, apart = [], []
    for variant, base in spec.VARIANT_OF.items():
        for _, v in sc[sc.arch == variant].iterrows():
            where = f"{variant}/{base} {v.input} {v.spec} t{v.torch_threads}"
            if pd.notna(v.train_vs_base) and pd.notna(v.fwd_vs_base):
                paired.append(f"{where}: training {_q(v, 'train')}, forward {_q(v, 'fwd')}")
                continue
            same = sc[(sc.arch == base) & (sc[match] == v[match]).all(axis=1)]
            if not same.empty:
                b = same.iloc[0]
                apart.append(
                    f"{where}: training {v.train_tok_s / b.train_tok_s:.2f}×, forward "
                    f"{v.fwd_tok_s / b.fwd_tok_s:.2f}×"
                )
    how = []
    if paired:
        how.append("timed interleaved with the twin, median of per-repeat ratios (quartiles)): "
                   + "; ".join(paired))  # fmt: skip
    if apart:
        how.append("separately timed groups, so ratios of medians): " + "; ".join(apart))
    if not how:
        return []
    head = "**the scratch-only cells beside their scratch twins** (goal: within 10%, i.e. ≥ 0.90×; "
    return [head + "; and (".join(how) + "."]


def _q(r: pd.Series, mode: str) -> str:
    m, lo, hi = (r[f"{mode}_vs_base{s}"] for s in ("", "_q1", "_q3"))
    return f"{m:.2f}× ({lo:.2f}–{hi:.2f})"


def _cells(run: Run, impl: str, column: str) -> pd.DataFrame:
    """The run's ok cells of one implementation that have a value in `column`."""
    ok = run.ok
    return ok[(ok.impl == impl) & ok[column].notna()]


def _packed(run: Run, impl: str) -> pd.DataFrame:
    cells = _cells(run, impl, "train_vs_padded")
    return cells[cells.input == "packed"]


def builtin_packed(run: Run) -> list[str]:
    """The built-in's packed path against its own padded one (slower, pytorch#149194)."""
    bp = _packed(run, "builtin")
    if bp.empty:
        return []
    worst = bp.loc[bp.train_vs_padded.idxmin()]
    return [
        f"**built-in packed vs its own padded path**: packing makes nn.{worst.arch.upper()} "
        f"training {worst.train_vs_padded:.2f}× as fast as padding at padding fraction "
        f"{worst.padding_fraction:.2f} ({short_name(worst)}), though packing skips that "
        f"fraction of the work; median over {len(bp)} cells "
        f"{bp.train_vs_padded.median():.2f}× (pytorch/pytorch#149194)."
    ]


def scratch_packed(run: Run) -> list[str]:
    """Scratch's packed speed-up at the largest padding fraction, against the ideal."""
    sp = _packed(run, "scratch")
    if sp.empty:
        return []
    best = sp.loc[sp.padding_fraction.idxmax()]
    ideal = 1 / (1 - best.padding_fraction)  # the work packing skips
    return [
        f"**scratch packed vs padded**: at padding fraction {best.padding_fraction:.2f} "
        f"scratch training is {best.train_vs_padded:.2f}× faster packed than padded "
        f"(ideal {ideal:.2f}×); median over {len(sp)} cells {sp.train_vs_padded.median():.2f}×."
    ]


def compiled(run: Run) -> list[str]:
    """torch.compile's per-step cells against scratch, and their one-time compile cost."""
    comp = _cells(run, "compiled", "train_vs_scratch")
    if comp.empty:
        return []
    return [
        f"**compiled (per-step torch.compile) vs scratch**: training step "
        f"{comp.train_vs_scratch.median():.2f}× (range {comp.train_vs_scratch.min():.2f}–"
        f"{comp.train_vs_scratch.max():.2f}), forward {comp.fwd_vs_scratch.median():.2f}×, "
        f"over {len(comp)} cells; one-time compile cost {comp.compile_s.min():.1f}–"
        f"{comp.compile_s.max():.1f} s per cell, reported apart from steady state."
    ]


def memory(run: Run) -> list[str]:
    """Scratch's saved bytes for backward over the built-in's, on matched cells."""
    sb, bb = _cells(run, "scratch", "saved_bytes"), _cells(run, "builtin", "saved_bytes")
    if sb.empty or bb.empty:
        return []
    m = sb.merge(bb, on=["group", "arch", "input"], suffixes=("_s", "_b"))
    if m.empty:
        return []
    return [
        f"**memory**: scratch saves {(m.saved_bytes_s / m.saved_bytes_b).median():.2f}× the "
        f"bytes for backward that the built-in saves (median over {len(m)} matched cells; "
        "exact counts from saved_tensors_hooks)."
    ]


def _vs(pair: dict[str, Any], mode: str) -> str:
    return ", ".join(f"{o[mode]:.2f}× nn.{o['row'].arch.upper()}" for o in pair["rnns"])


def _where(t: pd.Series) -> list[str]:
    """Where a transformer cell was measured, naming only what is not the default."""
    where = [t.spec, f"lengths {t.lengths}", "padded"]
    if t.threads:
        where.append(threads(t.threads))
    if t.device != "cpu":
        where.append(t.device)
    if t.reg != "none":
        where.append(t.reg)
    if t.optimizer != "none":
        where.append(t.optimizer)
    if t.seed:
        where.append(f"seed {t.seed}")
    return where


def _transformer_sentence(ps: list[dict[str, Any]]) -> str:
    """The transformer cells of one shape (each layer count) against the RNN built-ins."""
    parts = []
    for p in sorted(ps, key=lambda p: p["row"].layers):
        t = p["row"]
        parts.append(
            f"L{t.layers}: forward {ktok(t.fwd_tok_s)} tok/s ({_vs(p, 'fwd')}), "
            f"training {ktok(t.train_tok_s)} tok/s ({_vs(p, 'train')})"
        )
    saved = [o["saved"] for p in ps for o in p["rnns"] if o["saved"] is not None]
    mem = (
        f" It saves {min(saved):.2f}–{max(saved):.2f}× the RNN built-ins' bytes for backward."
        if saved
        else ""
    )
    return (
        f"**Transformer baseline vs RNN built-ins** ({', '.join(_where(ps[0]['row']))}; the "
        f"transformer (causal nn.TransformerEncoder) as a multiple of each RNN's valid "
        f"tokens/s, medians of separately timed groups): {'; '.join(parts)}.{mem}"
    )


def transformer(run: Run) -> list[str]:
    """One sentence per shape the transformer baseline was measured at."""
    by_shape: dict[tuple, list[dict[str, Any]]] = {}
    for p in transformer_pairs(run.ok):
        t = p["row"]
        by_shape.setdefault(
            (t.spec, t.lengths, t.threads, t.device, t.reg, t.optimizer, t.seed), []
        ).append(p)
    return [_transformer_sentence(ps) for ps in by_shape.values()]


def flop_fraction(run: Run) -> list[str]:
    """The training steps' median and best FLOP fraction over the whole run."""
    frac = run.ok[run.ok.train_flop_frac.notna()]
    if frac.empty:
        return []
    median, best = frac.train_flop_frac.median(), frac.loc[frac.train_flop_frac.idxmax()]
    return [
        f"**FLOP fraction**: training steps reach {median:.0%} of the attainable matmul "
        f"FLOP/s (median); best {best.train_flop_frac:.0%} ({short_name(best)})."
    ]


def flop_fraction_by_shape(run: Run) -> list[str]:
    """Scratch's training FLOP fraction (of the in-run GEMM probe) at the bar shape and at
    each of the documents' shapes, one thread, padded: median over architectures, and the
    LSTM's."""
    ok = run.ok
    shapes = {spec.BAR_SPEC: 1, **spec.DOC_SPECS}
    sc = ok[
        (ok.impl == "scratch")
        & (ok.input == "padded")
        & (ok.torch_threads == 1)
        & ok.train_flop_frac.notna()
        & (~ok.bidirectional.astype(bool))
        & (ok.reg == "none")
    ]
    parts = []
    for spec_, layers in shapes.items():
        at = sc[(sc.spec == spec_) & (sc.layers == layers) & sc.arch.isin(spec.BAR_ARCHS)]
        if at.empty:
            continue
        named = at[at.arch == spec.FLOP_FRACTION_ARCH].train_flop_frac
        named_text = f", {spec.FLOP_FRACTION_ARCH} {named.median():.0%}" if not named.empty else ""
        parts.append(f"{spec_} L{layers} {at.train_flop_frac.median():.0%}{named_text}")
    if not parts:
        return []
    return [
        "**FLOP fraction of the GEMM probe, scratch training step, 1 thread, padded** "
        f"(median over {spec.FLOP_FRACTION_OVER}): {'; '.join(parts)}."
    ]


def harness_max(ok: pd.DataFrame) -> Any:
    """The largest harness overhead of any timed call, as a fraction of the call."""
    return ok[["fwd_harness_frac", "train_harness_frac"]].max().max()


def harness(run: Run) -> list[str]:
    """The timing harness's own overhead against its bar."""
    h = harness_max(run.ok) if not run.ok.empty else None
    if h is None or pd.isna(h):
        return []
    return [
        f"**harness overhead** per timed call (the timer, mode switch and clearing grads, "
        f"timed alone) is at most {h:.3%} of the call (bar: < {spec.HARNESS_BAR:.0%})."
    ]


def determinism(run: Run) -> list[str]:
    """How many cells repeat their fixed training steps bit for bit."""
    ok = run.ok
    if "repeat_identical" not in ok or ok.empty:
        return []
    n_id = int(ok.repeat_identical.fillna(False).astype(bool).sum())
    return [
        f"**determinism**: {n_id} of {len(ok)} cells gave bit-identical losses when their "
        "fixed training steps were run twice."
    ]


#: the findings in the order the report lists them
FINDINGS: tuple[Callable[[Run], list[str]], ...] = (
    worst_bar,
    each_bar,
    torch_ops,
    variants,
    builtin_packed,
    scratch_packed,
    compiled,
    memory,
    transformer,
    flop_fraction,
    flop_fraction_by_shape,
    harness,
    determinism,
)


def run_findings(run: Run) -> list[str]:
    """Every finding's sentences, in order."""
    return [s for finding in FINDINGS for s in finding(run)]


def findings(df: pd.DataFrame, bars: list[dict[str, Any]]) -> list[str]:
    """The findings of a run's frame and its bar checks (bar_rows(df))."""
    return run_findings(Run.of_frame(df, bars))
