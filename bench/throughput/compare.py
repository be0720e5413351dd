"""``bench compare A B``: cell-by-cell changes from run A to run B.

For every cell id in both runs: status, forward and training throughput (and
their relative change), the in-run scratch/built-in ratio, and whether the
deterministic quantities (FLOPs, saved bytes, losses) are unchanged. Cells
found in only one run are listed. Changes larger than ``threshold`` are
marked with ``!`` — absolute throughput moves with the machine's load, so
trust the ratio columns more.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..report.frame import frame, short_name
from ..study.results import resolve_run


def _pct(a, b) -> tuple[str, float | None]:
    if a is None or b is None or pd.isna(a) or pd.isna(b) or a == 0:
        return "–", None
    d = b / a - 1
    return f"{d:+.1%}", d


def _num(v, spec: str) -> str:
    return "–" if v is None or pd.isna(v) else format(v, spec)


def compare_frames(fa: pd.DataFrame, fb: pd.DataFrame, threshold: float = 0.10) -> str:
    a = fa.set_index("cell_id")
    b = fb.set_index("cell_id")
    both = [c for c in a.index if c in b.index]
    rows = []
    changed = 0
    for cid in both:
        ra, rb = a.loc[cid], b.loc[cid]
        marks = []
        cells = [
            short_name(ra),
            f"{ra.status}→{rb.status}" if ra.status != rb.status else ra.status,
        ]
        if ra.status != rb.status:
            marks.append("status")
        for mode in ("fwd", "train"):
            text, d = _pct(ra[f"{mode}_tok_s"], rb[f"{mode}_tok_s"])
            if d is not None and abs(d) > threshold:
                marks.append(f"{mode} tok/s")
            cells.append(
                f"{_num(ra[f'{mode}_tok_s'] / 1e3 if pd.notna(ra[f'{mode}_tok_s']) else None, ',.1f')}k→"
                f"{_num(rb[f'{mode}_tok_s'] / 1e3 if pd.notna(rb[f'{mode}_tok_s']) else None, ',.1f')}k ({text})"
            )
        ratio_text, d = _pct(ra.train_vs_builtin, rb.train_vs_builtin)
        if d is not None and abs(d) > threshold:
            marks.append("ratio")
        cells.append(
            f"{_num(ra.train_vs_builtin, '.2f')}→{_num(rb.train_vs_builtin, '.2f')} ({ratio_text})"
        )
        det = []
        for col in ("train_flops", "saved_bytes"):
            va, vb = ra[col], rb[col]
            if not (pd.isna(va) and pd.isna(vb)) and va != vb:
                det.append(col)
        if ra.losses != rb.losses and not (ra.losses is None and rb.losses is None):
            det.append("losses")
        if det:
            marks.append("deterministic")
        cells.append("same" if not det else "CHANGED: " + ", ".join(det))
        cells.insert(0, "!" if marks else "")
        changed += bool(marks)
        rows.append(cells)
    header = [
        "",
        "cell",
        "status",
        "fwd tok/s A→B",
        "train tok/s A→B",
        "train vs built-in",
        "deterministic",
    ]
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(str(c).ljust(w) for c, w in zip(header, widths, strict=True)).rstrip(),
        "  ".join("-" * w for w in widths),
    ]
    lines += [
        "  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows
    ]
    only_a = [c for c in a.index if c not in b.index]
    only_b = [c for c in b.index if c not in a.index]
    lines.append("")
    lines.append(
        f"{len(both)} cells in both runs, {changed} marked '!' (change > {threshold:.0%} or "
        f"status/deterministic change); {len(only_a)} only in A, {len(only_b)} only in B."
    )
    for title, ids in (("only in A", only_a), ("only in B", only_b)):
        for cid in ids:
            lines.append(f"  {title}: {cid}")
    return "\n".join(lines)


def compare_runs(run_a: str, run_b: str, results_dir: Path | str, threshold: float = 0.10) -> str:
    sa = resolve_run(results_dir, run_a)
    sb = resolve_run(results_dir, run_b)
    head = f"compare {sa.run_id} (A) → {sb.run_id} (B)\n"
    return head + compare_frames(frame(sa.require_latest()), frame(sb.require_latest()), threshold)
