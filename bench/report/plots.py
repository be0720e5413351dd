"""PNG plots for the report (matplotlib, Agg). Each takes the run's DataFrame of ok
cells, draws what the run has (returns None when it has nothing for that plot)
and writes one file."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .. import archs
from ..study.results import atomic_write_bytes

IMPL_COLORS = {
    "scratch": "#1f77b4",
    "scratch_torch": "#9467bd",
    "builtin": "#ff7f0e",
    "compiled": "#2ca02c",
}


def arch_order() -> list[str]:
    """Display order of the architectures (the registry's, a plugin's included)."""
    return list(archs.names())


IMPL_ORDER = ["scratch", "scratch_torch", "builtin", "compiled"]


def save_png(fig, path: Path, **kw) -> Path:
    """Write the figure all at once (a full disk leaves no 0-byte PNG; WriteError)."""
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", **kw)
    finally:
        plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
    return path


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    return save_png(fig, path, dpi=110)


def _ordered(values, order):
    return [v for v in order if v in set(values)] + sorted(set(values) - set(order))


def _threads_text(r) -> str:
    n = r.get("torch_threads")
    if n is None or pd.isna(n):
        return "default threads"
    return f"{int(n)} thread" + ("s" if int(n) != 1 else "")


def headline_cells(df: pd.DataFrame) -> pd.DataFrame:
    """Cells of the shape most architectures were measured at: 1 layer, one direction,
    no regularizer or optimizer, padded or packed — the 'performance bar' cells."""
    base = df[
        (df.layers == 1)
        & (~df.bidirectional.astype(bool))
        & (df.reg == "none")
        & (df.optimizer == "none")
    ]
    if base.empty:
        return base
    counts = (
        base.groupby(["spec", "lengths", "threads", "device", "seed"])
        .arch.nunique()
        .sort_values(ascending=False, kind="stable")
    )
    spec, lengths, threads, device, seed = counts.index[0]
    return base[
        (base.spec == spec)
        & (base.lengths == lengths)
        & (base.threads == threads)
        & (base.device == device)
        & (base.seed == seed)
    ]


def throughput_by_arch(df: pd.DataFrame, path: Path) -> Path | None:
    h = headline_cells(df)
    if h.empty:
        return None
    archs = _ordered(h.arch, arch_order())
    impls = _ordered(h.impl, IMPL_ORDER)
    inputs = _ordered(h.input, ["padded", "packed"])
    fig, axes = plt.subplots(
        len(inputs), 2, figsize=(11, 3.4 * len(inputs)), squeeze=False, sharex=True
    )
    width = 0.8 / max(1, len(impls))
    for i, inp in enumerate(inputs):
        for j, mode in enumerate(("fwd", "train")):
            ax = axes[i][j]
            for k, impl in enumerate(impls):
                sub = h[(h.impl == impl) & (h.input == inp)].set_index("arch")
                xs, ys, lo, hi = [], [], [], []
                for a_i, arch in enumerate(archs):
                    if arch in sub.index and pd.notna(sub.loc[arch, f"{mode}_tok_s"]):
                        r = sub.loc[arch]
                        y = r[f"{mode}_tok_s"]
                        # IQR of time → spread of tokens/s around the median
                        rel = (r[f"{mode}_iqr_rel"] or 0.0) / 2
                        xs.append(a_i + (k - (len(impls) - 1) / 2) * width)
                        ys.append(y / 1e3)
                        lo.append(y * rel / 1e3)
                        hi.append(y * rel / 1e3)
                ax.bar(
                    xs,
                    ys,
                    width,
                    yerr=[lo, hi],
                    label=impl,
                    color=IMPL_COLORS.get(impl),
                    capsize=2,
                )
            ax.set_xticks(range(len(archs)), archs)
            ax.set_ylabel("k tokens/s")
            what = "forward only (inference)" if mode == "fwd" else "training step (fwd+bwd)"
            ax.set_title(f"{what}, {inp}")
            ax.grid(axis="y", alpha=0.3)
    axes[0][0].legend()
    r0 = h.iloc[0]
    fig.suptitle(
        f"Throughput by architecture and implementation — {r0.spec}, lengths {r0.lengths}, "
        + _threads_text(r0)
    )
    return _save(fig, path)


def ratio_scratch_builtin(df: pd.DataFrame, path: Path) -> Path | None:
    h = headline_cells(df)
    h = h[(h.impl == "scratch") & h.train_vs_builtin.notna()]
    if h.empty:
        return None
    archs = _ordered(h.arch, arch_order())
    fig, ax = plt.subplots(figsize=(8, 4))
    series = [
        ("fwd", "padded", "forward, padded", "#9ecae1"),
        ("train", "padded", "fwd+bwd, padded", "#1f77b4"),
        ("fwd", "packed", "forward, packed", "#fdae6b"),
        ("train", "packed", "fwd+bwd, packed", "#e6550d"),
    ]
    width = 0.2
    for k, (mode, inp, label, color) in enumerate(series):
        sub = h[h.input == inp].set_index("arch")
        xs, ys, err_lo, err_hi = [], [], [], []
        for a_i, arch in enumerate(archs):
            if arch in sub.index and pd.notna(sub.loc[arch, f"{mode}_vs_builtin"]):
                r = sub.loc[arch]
                m = r[f"{mode}_vs_builtin"]
                xs.append(a_i + (k - 1.5) * width)
                ys.append(m)
                err_lo.append(max(0.0, m - r[f"{mode}_vs_builtin_q1"]))
                err_hi.append(max(0.0, r[f"{mode}_vs_builtin_q3"] - m))
        if xs:
            ax.bar(xs, ys, width, yerr=[err_lo, err_hi], label=label, color=color, capsize=2)
            for x, y in zip(xs, ys, strict=True):
                ax.text(x, y + 0.02, f"{y:.2f}", ha="center", va="bottom", fontsize=7)
    ax.axhline(1.0, color="k", lw=1)
    ax.axhline(0.8, color="grey", lw=1, ls="--")
    ax.set_xticks(range(len(archs)), archs)
    ax.set_ylabel("scratch / built-in throughput")
    ax.set_title(
        f"Scratch vs built-in, {h.iloc[0].spec}, {_threads_text(h.iloc[0])} "
        "(median of per-repeat ratios; bars = IQR)\n"
        "bars: fwd+bwd ≥ 1.0 (solid), forward ≥ 0.8 (dashed)"
    )
    ax.legend(fontsize=8, ncol=2)
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def packed_vs_padded(df: pd.DataFrame, path: Path) -> Path | None:
    p = df[(df.input == "packed") & df.train_vs_padded.notna() & df.padding_fraction.notna()]
    if p.empty:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for ax, mode in zip(axes, ("fwd", "train"), strict=True):
        for impl in _ordered(p.impl, IMPL_ORDER):
            s = p[p.impl == impl]
            ax.scatter(
                s.padding_fraction,
                s[f"{mode}_vs_padded"],
                label=impl,
                color=IMPL_COLORS.get(impl),
                alpha=0.8,
            )
        xs = np.linspace(0, max(0.05, float(p.padding_fraction.max())), 50)
        ax.plot(xs, 1 / (1 - xs), color="grey", ls=":", label="ideal 1/(1-padding)")
        ax.axhline(1.0, color="k", lw=1)
        ax.set_xlabel("padding fraction of the batch")
        ax.set_title("forward only" if mode == "fwd" else "training step (fwd+bwd)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("packed / padded throughput (same impl)")
    axes[0].legend(fontsize=8)
    fig.suptitle("What packing buys: > 1 means packed is faster than padding the batch")
    return _save(fig, path)


def scaling(df: pd.DataFrame, path: Path, dim: str) -> Path | None:
    """Throughput against ``layers`` or ``T`` for the shape family that varies it most.

    For T only full-length batches count (no padding), so the line is the cost of
    longer sequences and nothing else; for layers, one (size, lengths) family.
    """
    d = df[df.train_tok_s.notna() & (df.reg == "none") & (df.optimizer == "none")]
    if dim == "T":
        d = d[(d.lengths == "full") & (d.layers == 1) & (~d.bidirectional.astype(bool))]
        family = ["B", "I", "H", "lengths", "device", "threads", "seed"]
    else:
        family = ["T", "B", "I", "H", "lengths", "device", "threads", "seed"]
    if d.empty:
        return None
    spread = d.groupby(family)[dim].nunique()
    if spread.max() < 2:
        return None
    fam = dict(zip(family, spread.idxmax(), strict=True))
    d = d[np.logical_and.reduce([d[k] == v for k, v in fam.items()])]
    keys = ["arch", "impl", "input", "bidirectional"]
    lines = [(k, g.sort_values(dim)) for k, g in d.groupby(keys) if g[dim].nunique() >= 2]
    if not lines:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    markers = archs.markers()
    for k, g in lines:
        kd = dict(zip(keys, k, strict=True))
        label = f"{kd['arch']} {kd['impl']} {kd['input']}" + (" bi" if kd["bidirectional"] else "")
        style = "-" if kd["input"] == "padded" else "--"
        for ax, mode in zip(axes, ("fwd", "train"), strict=True):
            ax.plot(
                g[dim],
                g[f"{mode}_tok_s"] / 1e3,
                style,
                marker=markers.get(kd["arch"], "o"),
                color=IMPL_COLORS.get(kd["impl"]),
                alpha=0.6 if kd["bidirectional"] else 1.0,
                label=label,
            )
    for ax, mode in zip(axes, ("fwd", "train"), strict=True):
        ax.set_xlabel("layers" if dim == "layers" else "sequence length T")
        ax.set_ylabel("k tokens/s")
        if dim == "T":
            ax.set_xscale("log", base=2)
        else:
            ax.set_xticks(sorted(d[dim].unique()))
        ax.set_title(("forward only" if mode == "fwd" else "training step") + f" vs {dim}")
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=7, ncol=2 if len(lines) > 6 else 1)
    shape = f"B={fam['B']} I={fam['I']} H={fam['H']}, " + _threads_text(d.iloc[0])
    if dim == "layers":
        shape = f"T={fam['T']} " + shape + f", lengths {fam['lengths']}"
    fig.suptitle(
        f"Scaling with {'depth' if dim == 'layers' else 'sequence length'} ({shape}); "
        "solid padded, dashed packed"
    )
    return _save(fig, path)


def memory(df: pd.DataFrame, path: Path) -> Path | None:
    h = headline_cells(df)
    h = h[h.saved_bytes.notna()]
    if h.empty:
        return None
    archs = _ordered(h.arch, arch_order())
    impls = _ordered(h.impl, IMPL_ORDER)
    inputs = _ordered(h.input, ["padded", "packed"])
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    width = 0.8 / (len(impls) * len(inputs))
    k = 0
    for impl in impls:
        for inp in inputs:
            sub = h[(h.impl == impl) & (h.input == inp)].set_index("arch")
            for ax, col in zip(axes, ("saved_bytes", "rss_growth_bytes"), strict=True):
                xs, ys = [], []
                for a_i, arch in enumerate(archs):
                    if arch in sub.index and pd.notna(sub.loc[arch, col]):
                        xs.append(a_i + (k - (len(impls) * len(inputs) - 1) / 2) * width)
                        ys.append(sub.loc[arch, col] / 2**20)
                ax.bar(
                    xs,
                    ys,
                    width,
                    label=f"{impl} {inp}",
                    color=IMPL_COLORS.get(impl),
                    alpha=1.0 if inp == "padded" else 0.5,
                    hatch="" if inp == "padded" else "//",
                )
            k += 1
    axes[0].set_title("activations saved for backward (deterministic)")
    axes[1].set_title("peak RSS growth over one training step")
    for ax in axes:
        ax.set_xticks(range(len(archs)), archs)
        ax.set_ylabel("MiB")
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle(
        f"Memory per training step — {h.iloc[0].spec}, lengths {h.iloc[0].lengths}, "
        + _threads_text(h.iloc[0])
    )
    return _save(fig, path)


def all_plots(df: pd.DataFrame, out_dir: Path) -> dict[str, Path]:
    ok = df[df.status == "ok"]
    made: dict[str, Path] = {}
    for name, fn in (
        ("throughput_by_arch", lambda p: throughput_by_arch(ok, p)),
        ("ratio_scratch_builtin", lambda p: ratio_scratch_builtin(ok, p)),
        ("packed_vs_padded", lambda p: packed_vs_padded(ok, p)),
        ("scaling_layers", lambda p: scaling(ok, p, "layers")),
        ("scaling_seqlen", lambda p: scaling(ok, p, "T")),
        ("memory", lambda p: memory(ok, p)),
    ):
        path = fn(out_dir / f"{name}.png")
        if path is not None:
            made[name] = path
    return made
