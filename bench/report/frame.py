"""Records → one flat pandas DataFrame row per cell (for report, compare and gate).

Only numbers found in the records are used; nothing is measured here.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

CELL_COLUMNS = [
    "arch",
    "impl",
    "device",
    "input",
    "layers",
    "bidirectional",
    "reg",
    "size",
    "T",
    "B",
    "I",
    "H",
    "lengths",
    "optimizer",
    "seed",
    "threads",
    "block",
]
MODES = ("fwd", "train")
REFS = ("vs_builtin", "vs_scratch", "vs_padded", "vs_base")


def _get(d: Any, *path: str, default: Any = None) -> Any:
    for p in path:
        if not isinstance(d, dict) or p not in d or d[p] is None:
            return default
        d = d[p]
    return d


def row(rec: dict[str, Any]) -> dict[str, Any]:
    cell = rec.get("cell", {})
    r: dict[str, Any] = {"cell_id": rec["cell_id"], "group": rec.get("group")}
    for c in CELL_COLUMNS:
        r[c] = cell.get(c)
    r["spec"] = f"T{cell.get('T')}-B{cell.get('B')}-I{cell.get('I')}-H{cell.get('H')}"
    r["status"] = rec.get("status")
    r["error"] = rec.get("error") or rec.get("reason")
    r["error_kind"] = rec.get("error_kind")
    for mode in MODES:
        t = _get(rec, "timing", mode, default={})
        r[f"{mode}_median_s"] = t.get("median_s")
        r[f"{mode}_iqr_rel"] = t.get("iqr_rel")
        r[f"{mode}_tok_s"] = t.get("tokens_per_s")
        r[f"{mode}_harness_frac"] = t.get("harness_overhead_frac")
        r[f"{mode}_flops"] = _get(rec, "flops", mode)
        r[f"{mode}_flop_frac"] = _get(rec, "flops", f"{mode}_fraction")
        r[f"{mode}_flops_per_s"] = _get(rec, "flops", f"{mode}_flops_per_s")
        r[f"first_{mode}_s"] = _get(rec, "first_call", f"{mode}_s")
        for ref in REFS:
            ratio = _get(rec, "ratios", mode, ref)
            r[f"{mode}_{ref}"] = ratio.get("median") if ratio else None
            r[f"{mode}_{ref}_q1"] = ratio.get("q1") if ratio else None
            r[f"{mode}_{ref}_q3"] = ratio.get("q3") if ratio else None
    r["attainable_flops_per_s"] = _get(rec, "flops", "attainable_flops_per_s")
    r["saved_bytes"] = _get(rec, "memory", "saved_bytes")
    r["saved_tensors"] = _get(rec, "memory", "saved_tensors")
    r["rss_growth_bytes"] = _get(rec, "memory", "rss_growth_bytes")
    r["cuda_peak_bytes"] = _get(rec, "memory", "cuda_peak_bytes")
    r["padding_fraction"] = _get(rec, "workload", "padding_fraction")
    r["tokens_valid"] = _get(rec, "workload", "tokens_valid")
    r["lengths_source"] = _get(rec, "workload", "source")
    r["compile_s"] = _get(rec, "compile", "compile_s")
    r["compile_graphs"] = _get(rec, "compile", "graphs")
    r["losses"] = _get(rec, "determinism", "losses")
    r["repeat_identical"] = _get(rec, "determinism", "repeat_identical")
    r["elapsed_s"] = rec.get("elapsed_s")
    prov = rec.get("provenance", {})
    r["torch_threads"] = prov.get("torch_threads")
    r["load_1m"] = (prov.get("load_avg") or [None])[0]
    r["cut_by_budget"] = _get(rec, "timing", "cut_by_budget")
    r["injected"] = ",".join(f"{k}:{v}" for k, v in (prov.get("injected_slowdown") or {}).items())
    return r


def frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    df = pd.DataFrame([row(r) for r in records])
    if df.empty:
        df = pd.DataFrame(columns=["cell_id", *CELL_COLUMNS, "status"])
    return df


def short_name(r: Any) -> str:
    """A compact label for a cell: 'lstm scratch packed L2-bi awd T64-B64-I256-H256 agnews'."""
    parts = [
        r["arch"],
        r["impl"],
        r["input"],
        f"L{r['layers']}" + ("-bi" if r["bidirectional"] else ""),
    ]
    if r["reg"] != "none":
        parts.append(r["reg"])
    parts.append(r["spec"])
    if r["lengths"] != "full":
        parts.append(r["lengths"])
    if r["optimizer"] != "none":
        parts.append(r["optimizer"])
    if r.get("seed", 0):
        parts.append(f"s{r['seed']}")
    if r.get("threads", 0):
        parts.append(f"{r['threads']} thread" + ("s" if r["threads"] > 1 else ""))
    if r.get("device", "cpu") != "cpu":
        parts.append(r["device"])
    return " ".join(str(p) for p in parts)
