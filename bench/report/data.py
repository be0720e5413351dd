"""What the throughput report's sections and findings read: the run's frame, its ok
cells, the performance-bar checks, and the transformer/RNN pairs. Computed here once;
nothing is written."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from .. import archs
from . import spec
from .frame import frame


def _bar_shapes(shapes: str | None) -> dict[str, int]:
    return spec.DOC_SPECS if shapes == "docs" else {spec.BAR_SPEC: 1}


def _bar_row(r: pd.Series, bar: tuple, spec_: str, layers: int, arch: str, m: float) -> dict:
    label, mode, inp, threshold, _ = bar
    return {
        "bar": label,
        "mode": mode,
        "input": inp,
        "spec": spec_,
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
    for bar in spec.BARS:
        _, mode, inp, _, shapes = bar
        for spec_, layers in _bar_shapes(shapes).items():
            at = ok[(ok.spec == spec_) & (ok.layers == layers) & (ok.input == inp)]
            if inp == "packed":  # the packed bars are about real lengths
                at = at[at.lengths == "agnews"]
            for arch in spec.BAR_ARCHS:
                for _, r in at[at.arch == arch].iterrows():
                    m = r.get(f"{mode}_vs_builtin")
                    if m is None or pd.isna(m):
                        continue
                    out.append(_bar_row(r, bar, spec_, layers, arch, m))
    return out


def _saved_ratio(t: pd.Series, r: pd.Series) -> float | None:
    if pd.notna(t.saved_bytes) and pd.notna(r.saved_bytes) and r.saved_bytes:
        return t.saved_bytes / r.saved_bytes
    return None


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
    match = spec.TRANSFORMER_MATCH
    out = []
    for _, t in tf.iterrows():
        same = rnn[(rnn[match] == t[match]).all(axis=1)]
        same = same[same.fwd_tok_s.notna()]
        if same.empty:
            continue
        others = [
            {
                "row": r,
                "fwd": t.fwd_tok_s / r.fwd_tok_s,
                "train": t.train_tok_s / r.train_tok_s,
                "saved": _saved_ratio(t, r),
            }
            for _, r in same.sort_values("arch").iterrows()
        ]
        out.append({"row": t, "rnns": others})
    return out


@dataclass
class Run:
    """One run as the report reads it: its frame, ok cells and bar checks, plus what only
    the page needs (id, manifest, records, plot files)."""

    df: pd.DataFrame
    ok: pd.DataFrame
    bars: list[dict[str, Any]]
    run_id: str = ""
    manifest: dict[str, Any] | None = None
    records: list[dict[str, Any]] = field(default_factory=list)
    plot_files: dict[str, Path] = field(default_factory=dict)

    @classmethod
    def of_frame(cls, df: pd.DataFrame, bars: list[dict[str, Any]] | None = None) -> Run:
        return cls(df, df[df.status == "ok"], bar_rows(df) if bars is None else bars)

    @classmethod
    def of_records(
        cls,
        run_id: str,
        manifest: dict[str, Any] | None,
        records: list[dict[str, Any]],
        plot_files: dict[str, Path],
    ) -> Run:
        df = frame(records)
        return cls(
            df, df[df.status == "ok"].copy(), bar_rows(df), run_id, manifest, records, plot_files
        )

    @property
    def matrix(self) -> dict[str, Any]:
        return (self.manifest or {}).get("matrix", {})
