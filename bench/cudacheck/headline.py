"""summary.md: the steps, the device, and the headline numbers read from the results.

Ratios are the bench's own in-run throughput ratios (median over repeat pairs; > 1: the
first-named is faster): scratch ÷ cuDNN, packed ÷ padded, compiled ÷ scratch. The
recipes' metrics stand beside the committed CPU run's for the same seed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .envinfo import REPO

CPU_RECIPES_RUN = REPO / "results" / "reproduction-cpu-2" / "results.jsonl"
MODES = ("train", "fwd")


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:  # a torn last line of a killed run
            continue
    return out


def _ratio(rec: dict | None, mode: str, ref: str) -> str:
    r = (rec or {}).get("ratios", {}).get(mode, {}).get(ref)
    return f"{r['median']:.2f}" if r else "—"


def _find(recs: list[dict], impl: str, inp: str) -> dict | None:
    for r in recs:
        if r["cell"]["impl"] == impl and r["cell"]["input"] == inp and r["status"] == "ok":
            return r
    return None


def ratio_rows(records: list[dict]) -> list[str]:
    """One table row per timing group's architecture and mode (a variant architecture,
    lstm_peephole, is timed in its base's group but gets rows of its own)."""
    groups: dict[str, list[dict]] = {}
    for r in records:
        if r.get("status") == "ok" and "cell" in r:
            groups.setdefault((r["group"], r["cell"]["arch"]), []).append(r)
    rows = []
    for recs in groups.values():
        c = recs[0]["cell"]
        cudnn = _find(recs, "builtin", "padded")
        where = f"{c['block']} T{c['T']}-B{c['B']}-I{c['I']}-H{c['H']} L{c['layers']}"
        for mode in MODES:
            ms = f"{cudnn['timing'][mode]['median_s'] * 1e3:.2f}" if cudnn else "—"
            rows.append(
                f"| {where} | {c['arch']} | {mode} | {ms} "
                f"| {_ratio(_find(recs, 'scratch', 'padded'), mode, 'vs_builtin')} "
                f"| {_ratio(_find(recs, 'scratch', 'packed'), mode, 'vs_builtin')} "
                f"| {_ratio(_find(recs, 'builtin', 'packed'), mode, 'vs_padded')} "
                f"| {_ratio(_find(recs, 'scratch', 'packed'), mode, 'vs_padded')} "
                f"| {_ratio(_find(recs, 'compiled', 'padded'), mode, 'vs_scratch')} |"
            )
    return rows


RATIO_HEAD = [
    "| shape | arch | mode | cuDNN padded ms | scratch ÷ cuDNN | scratch ÷ cuDNN, packed "
    "| packed ÷ padded, cuDNN | packed ÷ padded, scratch | compiled ÷ scratch |",
    "|---|---|---|---|---|---|---|---|---|",
]


def _cpu_metrics() -> dict[str, dict]:
    return {
        r["cell"]["recipe"]: r["result"]["metrics"]
        for r in read_jsonl(CPU_RECIPES_RUN)
        if r.get("status") == "ok" and r["cell"]["seed"] == 0
    }


def _metrics(m: dict | None) -> str:
    if not m:
        return "—"
    return ", ".join(f"{k} {v:.4g}" for k, v in m.items() if isinstance(v, int | float))


def recipe_rows(records: list[dict]) -> list[str]:
    cpu = _cpu_metrics()
    rows = []
    for r in records:
        name = r["cell"]["recipe"]
        got = r.get("result", {}).get("metrics") if r["status"] == "ok" else None
        detail = _metrics(got) if got else r.get("error", "")[:200]
        rows.append(
            f"| {r['cell_id']} | {r['status']} | {r.get('seconds', 0):.1f} | {detail} "
            f"| {_metrics(cpu.get(name))} |"
        )
    return rows


def _device_lines(env: dict) -> list[str]:
    prov = env.get("provenance", {})
    smi = env.get("nvidia_smi") or ["—"]
    return [
        f"- device: {env.get('gpu_name') or prov.get('device_name', '—')} "
        f"(compute {env.get('compute_capability', '—')}, {env.get('sm_count', '—')} SMs)",
        f"- nvidia-smi: {'; '.join(smi)}",
        f"- torch {prov.get('torch_version', '—')}, CUDA {prov.get('cuda_version', '—')}, "
        f"cuDNN {prov.get('cudnn_version', '—')}, triton {env.get('triton_version', '—')}, "
        f"Python {prov.get('python', '—')}",
        f"- cuDNN TF32 {env.get('cudnn_allow_tf32', '—')}, "
        f"matmul TF32 {env.get('matmul_allow_tf32', '—')} (torch's defaults, as measured)",
        f"- git {prov.get('git_commit') or 'unknown (no .git in the copy)'}; "
        f"source digest {env.get('source_digest', '—')}",
    ]


def summary(
    *, title: str, steps: list[dict], env: dict, matrix: list[dict], recipes: list[dict]
) -> str:
    lines = [f"# {title}", "", *_device_lines(env), "", "## Steps", ""]
    lines += ["| step | status | seconds | limit s | exit | note |", "|---|---|---|---|---|---|"]
    for s in steps:
        rc = "" if s.get("rc") is None else s["rc"]
        lines.append(
            f"| {s['step']} | {s['status']} | {s.get('seconds', 0):.1f} "
            f"| {s.get('limit_s', 0):.0f} | {rc} | {s.get('note', '')} |"
        )
    lines += ["", "## Throughput ratios (> 1: the first-named is faster)", ""]
    rows = ratio_rows(matrix)
    lines += [*RATIO_HEAD, *rows] if rows else ["No matrix results."]
    lines += ["", "## Recipes (seed 0) beside the committed CPU run", ""]
    if recipes:
        lines += [
            "| cell | status | seconds | metrics here | metrics on CPU |",
            "|---|---|---|---|---|",
        ]
        lines += recipe_rows(recipes)
    else:
        lines.append("No recipe results.")
    lines += [
        "",
        "Unpack at the repository root: `tar -xzf cuda-check.tar.gz` gives results/<run>/ "
        "(with cuda-check/: env.json, steps.jsonl, summary.md, pytest.xml) and reports/<run>/.",
    ]
    return "\n".join(lines) + "\n"
